"""Shared helpers for the language-server and CLI tests: a real pytest-lsp client talking to `python -m lsp_server`
over stdio, with the real embedded model. Nothing here is a mock."""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Union

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from engine_fixtures import tiny_model_dir  # noqa: F401 (a fixture for every test module)

DATA = Path(__file__).parent / "data"
SERVER_COMMAND = [sys.executable, "-m", "lsp_server"]
# The machine's cores are shared with other work: one torch thread and few denoising steps keep each fill short.
# Quality does not matter here, only that the real model runs end to end.
# No latency budget: it plans steps from measured time, so automatic answers would depend on the clock; the
# budget's own test turns it on.
FAST_OPTIONS = {"threads": 1, "steps": 12, "maxNewTokens": 16, "inlineBudgetMs": 0}
MODEL_READY_S = 180.0     # the first load imports torch and transformers on a busy machine
ANSWER_S = 120.0          # one request, including waiting behind another


def recording_client() -> LanguageClient:
    """pytest-lsp's client, plus a workspace/applyEdit handler that records each edit and accepts it."""
    client = make_test_lsp_client()
    client.applied_edits = []
    client.statuses = []   # diffusionInfill/status notifications, as plain dicts

    @client.feature("diffusionInfill/status")
    def status(params) -> None:
        client.statuses.append(plain(params))

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        client.applied_edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return client


def plain(value):
    """pygls hands custom notifications over as nested namedtuples; turn them back into dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def server_config(*extra_args: str) -> ClientServerConfig:
    return ClientServerConfig(server_command=[*SERVER_COMMAND, *extra_args], client_factory=recording_client,
                              server_env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def initialize(client: LanguageClient, options: dict | None,
                     capabilities: types.ClientCapabilities | None = None,
                     root_uri: str | None = None) -> types.InitializeResult:
    """Initialize as VS Code would (work-done progress, workspace/configuration, applyEdit). pytest-lsp's VS Code
    capabilities (1.65) predate inline completion, so the server takes this client for one without ghost text."""
    result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities or client_capabilities("visual-studio-code"), initialization_options=options,
        root_uri=root_uri))
    client.initialize_result = result
    return result


@contextlib.asynccontextmanager
async def lsp_session(options: dict | None, *extra_args: str, capabilities: types.ClientCapabilities | None = None,
                      root_uri: str | None = None):
    """A fresh server for one test (for servers whose state the test breaks on purpose)."""
    client = await server_config(*extra_args).start()
    try:
        await initialize(client, options, capabilities, root_uri)
        yield client
        await asyncio.wait_for(client.shutdown_session(), 60)   # a clean exit is part of the test
    finally:
        server = client._server
        if server is not None and server.returncode is None:
            server.kill()  # the test failed midway: client.stop() would otherwise wait forever for an exit
        await client.stop()


def wait_for(condition, timeout: float, what, interval: float = 0.25):
    """Poll `condition` (a real editor's state) until it returns something true; `what` may be a callable that
    describes the state at the time of failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


async def wait_until(predicate, timeout: float, what: str):
    """Poll the client's recorded state: a notification may already have arrived, so never await one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


def progress_reports_of(client: LanguageClient, kind: type) -> list:
    """Every $/progress report of this kind (WorkDoneProgressBegin, ...End) the client has received so far."""
    return [report for reports in client.progress_reports.values() for report in reports if isinstance(report, kind)]


def progress_end(client: LanguageClient) -> types.WorkDoneProgressEnd | None:
    ends = progress_reports_of(client, types.WorkDoneProgressEnd)
    return ends[0] if ends else None


async def wait_for_model(client: LanguageClient) -> types.WorkDoneProgressEnd:
    """The server reports the end of model loading (ready or failed) as the end of its $/progress."""
    return await wait_until(lambda: progress_end(client), MODEL_READY_S, "the model-loading progress to end")


def messages_since(client: LanguageClient, index: int, *words: str,
                   kind: types.MessageType | None = None) -> list[types.ShowMessageParams]:
    """window/showMessage notifications after the first `index`, containing every word (case-insensitive)."""
    return [m for m in client.messages[index:]
            if all(w.lower() in m.message.lower() for w in words) and (kind is None or m.type == kind)]


async def wait_for_message(client: LanguageClient, index: int, *words: str,
                           kind: types.MessageType | None = None, timeout: float = 30.0) -> types.ShowMessageParams:
    found = await wait_until(lambda: messages_since(client, index, *words, kind=kind), timeout,
                             f"a window/showMessage containing {words!r}")
    return found[0]


def open_document(client: LanguageClient, uri: str, text: str, language_id: str = "python", version: int = 1):
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)))


async def inline_at(client: LanguageClient, uri: str, line: int, character: int,
                    kind=types.InlineCompletionTriggerKind.Automatic) -> types.InlineCompletionList:
    answer = await asyncio.wait_for(client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character),
        context=types.InlineCompletionContext(trigger_kind=kind))), ANSWER_S)
    assert isinstance(answer, types.InlineCompletionList), f"expected an InlineCompletionList, got {answer!r}"
    return answer


async def answer_with_some_seed(client: LanguageClient, uri: str, line: int, character: int, settings: dict,
                                seeds: range = range(32)) -> tuple[int, types.InlineCompletionList]:
    """The first `seed` setting (and its answer) under which the server answers an automatic inline request at
    (line, character) of `uri` with the shipped model; the seed stays set. Tests that need an answer where they ask
    use it: whether one sample of a small model survives the cleaning at one place is chance, and a test that took
    seed 0's luck broke when another model was shipped. Fails when no seed gives an answer there."""
    for seed in seeds:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {**settings, "seed": seed}}))
        answer = await inline_at(client, uri, line, character)
        if answer.items:
            return seed, answer
    raise AssertionError(f"the shipped model answered at line {line}, column {character} of {uri} with none of the "
                         f"seeds {seeds}")


def seed_answering(text: str, line: int, character: int, settings: dict, language_id: str = "python") -> int:
    """answer_with_some_seed on a server of its own, for an editor test to pass to the server it starts."""
    async def probe() -> int:
        async with lsp_session({"diffusionInfill": {**settings, "speculate": False, "readAhead": False}}) as client:
            await wait_for_model(client)
            uri = "file:///tmp/seed-probe/sample.py"
            open_document(client, uri, text, language_id=language_id)
            return (await answer_with_some_seed(client, uri, line, character, settings))[0]

    return asyncio.run(probe())


async def execute(client: LanguageClient, command: str, *arguments):
    return await asyncio.wait_for(client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=list(arguments))), ANSWER_S)


async def wait_until_busy(client: LanguageClient, idle: bool = False) -> None:
    """Until the model worker is running a job (or, with idle=True, has none): a test that must cancel or edit
    while a run is under way waits for it, instead of guessing how long a run takes."""
    deadline = time.monotonic() + 60
    while (await execute(client, "infill.metrics"))["idle"] != idle:
        assert time.monotonic() < deadline, "the model worker never became " + ("idle" if idle else "busy")
        await asyncio.sleep(0.005)


async def wait_until_idle(client: LanguageClient) -> None:
    await wait_until_busy(client, idle=True)


def read_code_actions_by_the_spec(client: LanguageClient) -> None:
    """lsprotocol (2025.0) reads any list item that has a `command` key as a Command, so a CodeAction carrying a
    command arrives as Command(command=<its repr>). Editors tell them apart by whether `command` is a string
    (a Command) or an object (a CodeAction's); teach the test client the same."""
    converter = client.protocol._converter

    def command_or_code_action(value, _):
        kind = types.Command if isinstance(value.get("command"), str) else types.CodeAction
        return converter.structure(value, kind)
    converter.register_structure_hook(Union[types.Command, types.CodeAction], command_or_code_action)


def code_action_request(client: LanguageClient, uri: str, selection: dict, only: list[str] | None = None):
    read_code_actions_by_the_spec(client)
    return asyncio.wait_for(client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(**selection["start"]), end=types.Position(**selection["end"])),
        context=types.CodeActionContext(diagnostics=[], only=only))), 30)
