"""A model that cannot load must be reported, must not take the server down, and must not cost the user any text.

Each test starts its own server, since the broken model is the point."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities

from conftest import (DATA, FAST_OPTIONS, code_action_request, execute, inline_at, lsp_session, messages_since,
                      progress_reports_of, server_config, initialize, wait_for_message, wait_for_model, wait_until)

SHAPES = (DATA / "shapes.py").read_text()
URI = "file:///tmp/infill-tests/shapes.py"
EMBEDDED = DATA.parent.parent / "models" / "diffusion-infill-small"


@pytest.fixture
def corrupt_model(tmp_path):
    """A real model folder (config, tokenizer) whose weights file is garbage."""
    folder = tmp_path / "corrupt-model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "diffusion_infill.json"):
        if (EMBEDDED / name).exists():
            shutil.copy(EMBEDDED / name, folder / name)
    (folder / "model.safetensors").write_bytes(b"\x8f not a safetensors file " * 200)
    return folder


async def assert_load_failure_is_reported_and_harmless(client, expected: str):
    end = await wait_for_model(client)
    assert "failed" in end.message
    error = await wait_for_message(client, 0, expected, kind=types.MessageType.Error)
    assert error.message.startswith("Diffusion Infill:")
    status = await execute(client, "infill.status")     # what the editors' status bars read
    assert status["state"] == "error" and expected in status["message"] and status["device"] is None
    assert [s["state"] for s in client.statuses][-1] == "error"

    open_document_text(client)
    seen = len(client.messages)
    assert len((await inline_at(client, URI, 9, 11)).items) == 0
    # Typing does not repeat the load error (one message is enough); asking does, with the reason.
    assert len((await inline_at(client, URI, 9, 11, types.InlineCompletionTriggerKind.Invoked)).items) == 0
    await wait_for_message(client, seen, "not available", expected)
    assert not messages_since(client, seen, "not available")[1:]   # once, from the explicit request
    selection = {"start": {"line": 9, "character": 4}, "end": {"line": 9, "character": 11}}
    answer = await execute(client, "infill.fillSelection", {"uri": URI, "range": selection})
    assert answer["applied"] is False and "not available" in answer["message"]
    assert client.applied_edits == []          # nothing was proposed, so nothing of the user's changed
    # The code-action menu shows the two actions greyed out, with the reason (VS Code shows disabled actions).
    actions = await code_action_request(client, URI, selection)
    assert [action.disabled and expected in action.disabled.reason for action in actions] == [True, True]
    # Still answering: the same request again gets the same calm empty answer.
    assert len((await inline_at(client, URI, 9, 11)).items) == 0


def open_document_text(client):
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=URI, language_id="python", version=1, text=SHAPES)))


@pytest.mark.asyncio
async def test_missing_model_folder_is_reported_then_a_good_setting_recovers(tmp_path):
    missing = tmp_path / "no-such-model"
    async with lsp_session({**FAST_OPTIONS, "model": str(missing)}) as client:
        await assert_load_failure_is_reported_and_harmless(client, "model folder not found")

        # The user fixes the setting: the server reloads (a second progress) and completes again.
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"model": ""}}))
        await wait_until(lambda: len(progress_reports_of(client, types.WorkDoneProgressEnd)) == 2,
                         180, "the reload's progress to end")
        answer = await inline_at(client, URI, 9, 11)
        assert len(answer.items) == 1 and answer.items[0].insert_text.strip()


@pytest.mark.asyncio
async def test_a_client_that_shows_no_disabled_actions_is_offered_none_while_the_model_is_missing(tmp_path):
    """Neovim's menu has no greyed-out entries: the actions were offered, and picking one only said that the model
    is not available."""
    async with lsp_session({**FAST_OPTIONS, "model": str(tmp_path / "gone")},
                           capabilities=client_capabilities("neovim")) as client:
        await wait_for_model(client)
        open_document_text(client)
        selection = {"start": {"line": 9, "character": 4}, "end": {"line": 9, "character": 11}}
        assert await code_action_request(client, URI, selection) is None


@pytest.mark.asyncio
async def test_a_failed_load_shows_in_the_status_at_once_and_its_message_outlives_a_shutdown(tmp_path):
    """A failed load's message waits a moment (a newer setting may replace it): the status said "loading" all that
    while, and a shutdown within it lost the message and left the load's progress open in the editor."""
    client = await server_config().start()
    try:
        await initialize(client, FAST_OPTIONS)
        await wait_for_model(client)
        seen = len(client.messages)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {**FAST_OPTIONS, "model": str(tmp_path / "gone")}}))
        await wait_until(lambda: client.statuses[-1]["state"] == "error", 30, "the status to say error")
        assert not messages_since(client, seen, "not found")   # (in order: a message sent before is read before)
        await asyncio.wait_for(client.shutdown_async(None), 30)
        assert messages_since(client, seen, "model folder not found", kind=types.MessageType.Error)
        assert len(progress_reports_of(client, types.WorkDoneProgressEnd)) == len(
            progress_reports_of(client, types.WorkDoneProgressBegin))
        client.exit(None)
    finally:
        if client._server is not None and client._server.returncode is None:
            await asyncio.sleep(2)
            if client._server.returncode is None:
                client._server.kill()
        await client.stop()


@pytest.mark.asyncio
async def test_a_client_slow_to_take_the_progress_token_still_hears_how_the_load_ended(tmp_path):
    """The load waited for the client's answer to window/workDoneProgress/create before it watched the load: a
    client that never answered never heard the load's error, and its status said "loading" for good. The answer
    that comes late must not show an error of its own (pygls did, for an answer to a request cancelled on the
    server's side)."""
    async with lsp_session(FAST_OPTIONS) as client:
        await wait_for_model(client)
        answer_now = asyncio.Event()

        async def take_the_token_late(params: types.WorkDoneProgressCreateParams) -> None:
            await answer_now.wait()

        client.protocol.fm.features[types.WINDOW_WORK_DONE_PROGRESS_CREATE] = take_the_token_late
        seen = len(client.messages)
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {**FAST_OPTIONS, "model": str(tmp_path / "gone")}}))
        await wait_for_message(client, seen, "model folder not found", kind=types.MessageType.Error, timeout=20)
        await wait_until(lambda: client.statuses[-1]["state"] == "error", 10, "the status to say error")
        answer_now.set()
        await asyncio.sleep(0.5)
        assert (await execute(client, "infill.status"))["state"] == "error"   # (a round trip after the answer)
        assert not messages_since(client, seen, "Error in server")


@pytest.mark.asyncio
async def test_a_removed_model_setting_goes_back_to_the_command_lines_model(tmp_path):
    """An editor tells the server a setting was removed with null (Neovim's setup() does): the server goes back to
    what its command line said, here a model folder, not to the built-in embedded model."""
    missing = tmp_path / "model-named-on-the-command-line"
    async with lsp_session({**FAST_OPTIONS, "model": None}, "--model", str(missing)) as client:
        await assert_load_failure_is_reported_and_harmless(client, "model folder not found")
        status = await execute(client, "infill.status")
        assert str(missing) in status["message"]


@pytest.mark.asyncio
async def test_corrupt_weights_are_reported(corrupt_model):
    async with lsp_session({**FAST_OPTIONS, "model": str(corrupt_model)}) as client:
        await assert_load_failure_is_reported_and_harmless(client, "could not load the model")


@pytest.fixture
def model_bigger_than_memory(tmp_path):
    """A real model folder whose weights file is a valid safetensors file of bfloat16 weights as large as this
    machine's memory (sparse: it takes no disk): on a CPU they load as float32, twice that."""
    total = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    numbers = total // 2
    folder = tmp_path / "huge-model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "diffusion_infill.json"):
        if (EMBEDDED / name).exists():
            shutil.copy(EMBEDDED / name, folder / name)
    header = json.dumps({"model.decoder.embed_tokens.weight": {
        "dtype": "BF16", "shape": [numbers // 256, 256], "data_offsets": [0, numbers // 256 * 256 * 2]}}).encode()
    with open(folder / "model.safetensors", "wb") as weights:
        weights.write(len(header).to_bytes(8, "little") + header)
        weights.truncate(8 + len(header) + numbers // 256 * 256 * 2)
    return folder


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="available memory is read from /proc/meminfo")
@pytest.mark.asyncio
async def test_a_model_bigger_than_memory_is_refused_before_it_loads(model_bigger_than_memory):
    """Loading it would get the server killed by the kernel, with no word to the user."""
    async with lsp_session({**FAST_OPTIONS, "model": str(model_bigger_than_memory)}) as client:
        await assert_load_failure_is_reported_and_harmless(client, "GB of memory available")


@pytest.mark.asyncio
async def test_hub_id_without_permission_is_reported():
    async with lsp_session(FAST_OPTIONS, "--model", "someone/not-a-local-folder") as client:
        await assert_load_failure_is_reported_and_harmless(client, "allowDownload")
