"""A missing or corrupt model, or bad options: the real server tells the user, answers empty, and stays up."""
from __future__ import annotations

import asyncio
import shutil
import sys

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

from engine.loading import DEFAULT_MODEL_DIR

SOURCE = "def add(a, b):\n    return \n"


async def wait_for_message(client, fragment: str, timeout: float = 60.0) -> types.ShowMessageParams:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for message in client.messages:
            if fragment in message.message:
                return message
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no showMessage containing {fragment!r}: {[m.message for m in client.messages]}")
        await asyncio.sleep(0.05)


async def session(options: dict):
    client = await ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server"]).start()
    await client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim"), initialization_options={"diffusionInfill": options}))
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri="file:///tmp/bad-model/add.py", language_id="python", version=1, text=SOURCE)))
    return client


async def ask(client) -> types.InlineCompletionList:
    return await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri="file:///tmp/bad-model/add.py"),
        position=types.Position(line=1, character=11),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))


async def assert_model_error_handled(options: dict, fragment: str) -> None:
    client = await session(options)
    try:
        error = await wait_for_message(client, fragment)
        assert error.type == types.MessageType.Error
        first, second = await ask(client), await ask(client)  # still answering, every time
        assert first.items == [] and second.items == []
        assert any("not available" in m.message for m in client.messages)
    finally:
        await client.shutdown_session()
        await client.stop()


@pytest.mark.asyncio
async def test_missing_model_folder(tmp_path):
    await assert_model_error_handled({"model": str(tmp_path / "no-such-model")}, "model folder not found")


@pytest.mark.asyncio
async def test_corrupt_model_weights(tmp_path):
    broken = tmp_path / "broken-model"
    shutil.copytree(DEFAULT_MODEL_DIR, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage, not safetensors")
    await assert_model_error_handled({"model": str(broken)}, "could not load the model")


@pytest.mark.asyncio
async def test_hub_model_without_permission_is_refused():
    await assert_model_error_handled({"model": "google/diffusiongemma-26B-A4B-it"}, "allowDownload")


@pytest.mark.asyncio
async def test_bad_option_values_are_reported_and_defaulted():
    client = await session({"maxNewTokens": "lots", "device": "tpu", "frobnicate": 1})
    try:
        await wait_for_message(client, "maxNewTokens = 'lots' is not valid")
        await wait_for_message(client, "device = 'tpu' is not valid")
        await wait_for_message(client, "unknown diffusionInfill option 'frobnicate'")
        result = await ask(client)  # the defaults took over and the embedded model answers
        assert isinstance(result.items, list)
    finally:
        await client.shutdown_session()
        await client.stop()
