"""End to end: the real `infill-lsp` server in a subprocess, driven by pytest-lsp's real LSP client over stdio,
answering with the real embedded model."""
from __future__ import annotations

import asyncio
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

PYTHON_SOURCE = '''def mean(values):
    """Average of a list of numbers."""
    total = 0
    for value in values:
        total += value
    return 
'''


def recording_client() -> LanguageClient:
    """pytest-lsp's client, plus a workspace/applyEdit handler that records and accepts every edit."""
    client = make_test_lsp_client()
    client.applied_edits = []

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        client.applied_edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return client


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server"], client_factory=recording_client)


async def wait_until(condition, timeout: float = 60.0):
    """Poll instead of awaiting a notification that may already have arrived."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for the server")
        await asyncio.sleep(0.05)


def progress_ended(client: LanguageClient) -> bool:
    return any(isinstance(v, types.WorkDoneProgressEnd) for reports in client.progress_reports.values()
               for v in reports)


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient):
    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"diffusionInfill": {"maxNewTokens": 32, "steps": 24}},
    ))
    lsp_client.server_capabilities = result.capabilities
    await wait_until(lambda: progress_ended(lsp_client))
    yield
    await lsp_client.shutdown_session()


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))


async def inline(client: LanguageClient, uri: str, line: int, character: int) -> types.InlineCompletionList:
    return await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))


def messages_since(client: LanguageClient, count: int) -> list[str]:
    return [m.message for m in client.messages[count:]]


@pytest.mark.asyncio(loop_scope="module")
async def test_capabilities_advertise_inline_completion_and_commands(client: LanguageClient):
    caps = client.server_capabilities
    assert caps.inline_completion_provider is not None and caps.inline_completion_provider is not False
    assert set(caps.execute_command_provider.commands) >= {"infill.fillSelection", "infill.rewriteSelection"}


@pytest.mark.asyncio(loop_scope="module")
async def test_model_loading_reports_progress(client: LanguageClient):
    kinds = [type(v).__name__ for reports in client.progress_reports.values() for v in reports]
    assert "WorkDoneProgressBegin" in kinds and "WorkDoneProgressEnd" in kinds
    end = [v for reports in client.progress_reports.values() for v in reports
           if isinstance(v, types.WorkDoneProgressEnd)][0]
    assert "model ready" in end.message


@pytest.mark.asyncio(loop_scope="module")
async def test_inline_completion_on_a_python_file(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/mean.py"
    open_document(client, uri, PYTHON_SOURCE)
    result = await inline(client, uri, 5, 11)  # after "    return "
    assert len(result.items) == 1
    item = result.items[0]
    assert item.insert_text.strip()
    assert "\n" not in item.insert_text  # mid-line: a single-line completion
    assert item.range.start == types.Position(line=5, character=11)


@pytest.mark.asyncio(loop_scope="module")
async def test_fill_selection_applies_an_edit(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/fill.py"
    open_document(client, uri, PYTHON_SOURCE)
    before = len(client.applied_edits)
    selection = {"start": {"line": 3, "character": 0}, "end": {"line": 5, "character": 0}}
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="infill.fillSelection", arguments=[{"uri": uri, "range": selection}]))
    assert answer["applied"] is True and answer["text"].strip()
    assert len(client.applied_edits) == before + 1
    edit = client.applied_edits[-1].edit.document_changes[0]
    assert edit.text_document.uri == uri and edit.text_document.version == 1
    assert edit.edits[0].new_text == answer["text"]
    assert edit.edits[0].range.start == types.Position(line=3, character=0)
    assert edit.edits[0].range.end == types.Position(line=5, character=0)


@pytest.mark.asyncio(loop_scope="module")
async def test_rewrite_selection_applies_an_edit(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/rewrite.py"
    open_document(client, uri, PYTHON_SOURCE)
    before = len(client.applied_edits)
    selection = {"start": {"line": 2, "character": 0}, "end": {"line": 5, "character": 0}}
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="infill.rewriteSelection", arguments=[uri, selection, "use sum()"]))
    assert answer["applied"] is True and answer["text"].strip()
    assert len(client.applied_edits) == before + 1
    assert client.applied_edits[-1].label == "Rewrite selection"


@pytest.mark.asyncio(loop_scope="module")
async def test_unknown_document_is_an_lsp_error_and_the_server_stays_up(client: LanguageClient):
    with pytest.raises(JsonRpcException, match="unknown document"):
        await inline(client, "file:///tmp/infill-e2e/never-opened.py", 0, 0)
    uri = "file:///tmp/infill-e2e/after-error.py"
    open_document(client, uri, PYTHON_SOURCE)
    assert len((await inline(client, uri, 5, 11)).items) == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_position_out_of_range_is_empty_with_a_message(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/range.py"
    open_document(client, uri, PYTHON_SOURCE)
    seen = len(client.messages)
    result = await inline(client, uri, 40, 3)
    assert result.items == []
    await wait_until(lambda: any("outside" in m for m in messages_since(client, seen)), 5)
    result = await inline(client, uri, 0, 500)  # past the end of a line
    assert result.items == []


@pytest.mark.asyncio(loop_scope="module")
async def test_nul_bytes_give_an_empty_answer_and_a_message(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/binary.py"
    open_document(client, uri, "x = 1\x00\x00\ny = ")
    seen = len(client.messages)
    result = await inline(client, uri, 1, 4)
    assert result.items == []
    await wait_until(lambda: any("NUL" in m for m in messages_since(client, seen)), 5)


@pytest.mark.asyncio(loop_scope="module")
async def test_language_without_grammar_falls_back_to_plain_text_with_a_message(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/notes.cob"
    open_document(client, uri, "IDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\n", language="cobol")
    seen = len(client.messages)
    result = await inline(client, uri, 2, 0)
    assert isinstance(result.items, list)
    await wait_until(lambda: any("no tree-sitter grammar" in m for m in messages_since(client, seen)), 5)


@pytest.mark.asyncio(loop_scope="module")
async def test_empty_file_is_answered(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/empty.py"
    open_document(client, uri, "")
    result = await inline(client, uri, 0, 0)
    assert isinstance(result.items, list)
    for item in result.items:
        assert item.range.start == types.Position(line=0, character=0)


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_command_arguments_are_an_lsp_error(client: LanguageClient):
    with pytest.raises(JsonRpcException, match="arguments"):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="infill.fillSelection", arguments=[42]))


@pytest.mark.asyncio(loop_scope="module")
async def test_a_selection_that_is_empty_applies_nothing(client: LanguageClient):
    uri = "file:///tmp/infill-e2e/empty-selection.py"
    open_document(client, uri, PYTHON_SOURCE)
    before = len(client.applied_edits)
    point = {"line": 1, "character": 0}
    answer = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="infill.fillSelection", arguments=[{"uri": uri, "range": {"start": point, "end": point}}]))
    assert answer["applied"] is False and "select" in answer["message"]
    assert len(client.applied_edits) == before
