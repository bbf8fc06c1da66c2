"""Fill and rewrite selection answer with minimal edits: applied by a real LSP client (pytest-lsp over stdio, the
embedded model), they give exactly the text the server reports and never touch anything outside the selection."""
from __future__ import annotations

import asyncio
import re

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities

from conftest import (FAST_OPTIONS, code_action_request, execute, initialize, lsp_session, open_document,
                      server_config, wait_for_model)

pytestmark = pytest.mark.asyncio(loop_scope="module")

LINE_BREAK = re.compile(r"\r\n|\r|\n")


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient):
    await initialize(lsp_client, {"diffusionInfill": FAST_OPTIONS})
    await wait_for_model(lsp_client)
    yield
    await lsp_client.shutdown_session()


def offset_at(text: str, position: types.Position) -> int:
    """What an editor does with an LSP position: line by line, then UTF-16 code units along the line."""
    starts = [0] + [m.end() for m in LINE_BREAK.finditer(text)]
    offset, units = starts[position.line], 0
    while units < position.character:
        units += 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    assert units == position.character, "a position inside a surrogate pair"
    return offset


def apply_like_an_editor(text: str, edits: list[types.TextEdit]) -> str:
    """LSP semantics: every range refers to the document before any edit; ranges must not overlap."""
    spans = sorted((offset_at(text, e.range.start), offset_at(text, e.range.end), e.new_text) for e in edits)
    for (_, end, _), (start, _, _) in zip(spans, spans[1:]):
        assert end <= start, "overlapping edits"
    for start, end, new_text in reversed(spans):
        text = text[:start] + new_text + text[end:]
    return text


async def run_command(client: LanguageClient, command: str, uri: str, text: str, selection: dict, version: int,
                      language_id: str = "python") -> tuple[dict, list[types.TextEdit] | None]:
    open_document(client, uri, text, language_id=language_id, version=version)
    before = len(client.applied_edits)
    answer = await execute(client, command, {"uri": uri, "range": selection})
    if len(client.applied_edits) == before:
        return answer, None
    (change,) = client.applied_edits[-1].edit.document_changes   # one versioned TextDocumentEdit
    assert change.text_document.uri == uri and change.text_document.version == version
    return answer, change.edits


def check_edits(text: str, selection: dict, answer: dict, edits: list[types.TextEdit]) -> None:
    start = offset_at(text, types.Position(**selection["start"]))
    end = offset_at(text, types.Position(**selection["end"]))
    assert answer["range"] == selection
    # Applied to the document, the edits give exactly the reported text in place of the selection ...
    assert apply_like_an_editor(text, edits) == text[:start] + answer["text"] + text[end:]
    # ... and never reach outside it.
    for e in edits:
        assert start <= offset_at(text, e.range.start) <= offset_at(text, e.range.end) <= end
    assert len(answer["edits"]) == len(edits)


# The embedded model is weak and a fill that breaks the syntax is never offered, so the selections below lie inside a
# docstring or a block comment: there most text parses, and the edit path runs whatever the model writes.
DOCSTRING = ('def total(values):\n    """Add up the values given, one after another,\n    and return the sum."""\n'
             '    result = 0\n    for v in values:\n        result += v\n    return result\n')


@pytest.mark.parametrize("command", ["infill.fillSelection", "infill.rewriteSelection"])
async def test_selection_edits_give_exactly_the_returned_text(client: LanguageClient, command: str):
    uri = f"file:///tmp/infill-tests/edits_{command.split('.')[1]}.py"
    selection = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}
    answer, edits = await run_command(client, command, uri, DOCSTRING, selection, version=3)
    assert answer["applied"] is True, answer.get("message")
    check_edits(DOCSTRING, selection, answer, edits)


async def test_edits_after_astral_characters_and_crlf_line_ends(client: LanguageClient):
    # Plain text: no grammar, so whatever the model writes is applied (in a docstring, a `"""` it wrote now and then
    # was refused, and the edit path never ran).
    uri = "file:///tmp/infill-tests/edits_astral.txt"
    # One astral character: with more of them about, a byte-level model writes pieces of one more often, and a
    # fill with broken characters is refused (no edit to check).
    text = 'def label():\r\n    """😀 the label shown above\r\n    the totals, in bold."""\r\n    return "total"\r\n'
    # From after "😀 the label " on line 1 (UTF-16 column 20: the astral character counts two) to the end of the
    # docstring's text.
    selection = {"start": {"line": 1, "character": 20}, "end": {"line": 2, "character": 23}}
    answer, edits = await run_command(client, "infill.rewriteSelection", uri, text, selection, version=5,
                                      language_id="plaintext")
    assert answer["applied"] is True, answer.get("message")
    check_edits(text, selection, answer, edits)


async def test_a_line_wise_selection_of_a_last_line_without_a_line_break_is_edited(client: LanguageClient):
    """Editors select a whole last line as ending on the line after it; with no line break after the last line
    that line does not exist, and the command refused the selection as outside the document. As LSP reads a text
    edit's range, it ends at the end of the document."""
    uri = "file:///tmp/infill-tests/edits_last_line.txt"
    text = "alpha beta gamma\ndelta epsilon zeta eta theta"
    selection = {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}}
    answer, edits = await run_command(client, "infill.rewriteSelection", uri, text, selection, version=2,
                                      language_id="plaintext")
    assert answer["applied"] is True, answer.get("message")
    assert apply_like_an_editor(text, edits) == text[:len("alpha beta gamma\n")] + answer["text"]


async def test_a_client_without_document_changes_gets_plain_changes():
    """The LSP spec: a client that does not announce workspaceEdit.documentChanges takes only `changes`."""
    capabilities = client_capabilities("visual-studio-code")
    capabilities.workspace.workspace_edit.document_changes = False
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=capabilities) as plain_client:
        await wait_for_model(plain_client)
        uri = "file:///tmp/infill-tests/edits_plain_changes.py"
        selection = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}
        open_document(plain_client, uri, DOCSTRING, version=3)
        answer = await execute(plain_client, "infill.rewriteSelection", {"uri": uri, "range": selection})
        assert answer["applied"] is True, answer.get("message")
        (edit,) = [params.edit for params in plain_client.applied_edits]
        assert edit.document_changes is None and list(edit.changes) == [uri]
        check_edits(DOCSTRING, selection, answer, edit.changes[uri])


async def test_javascript_fill_edits(client: LanguageClient):
    uri = "file:///tmp/infill-tests/edits.js"
    text = ("/* Area of a rectangle:\n   width times height, in square units. */\n"
            "function area(w, h) {\n  return w * h;\n}\n")
    selection = {"start": {"line": 0, "character": 3}, "end": {"line": 1, "character": 40}}
    answer, edits = await run_command(client, "infill.fillSelection", uri, text, selection, version=2,
                                      language_id="javascript")
    assert answer["applied"] is True, answer.get("message")
    check_edits(text, selection, answer, edits)


async def test_code_actions_offer_fill_and_rewrite_on_a_selection(client: LanguageClient):
    """Any LSP client's code-action menu reaches the two commands; picking one runs it like the plugins do."""
    provider = client.initialize_result.capabilities.code_action_provider
    assert types.CodeActionKind.RefactorRewrite in provider.code_action_kinds
    uri = "file:///tmp/infill-tests/code_actions.py"
    selection = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}
    open_document(client, uri, DOCSTRING, version=4)
    actions = await code_action_request(client, uri, selection)
    assert [a.command.command for a in actions] == ["infill.fillSelection", "infill.rewriteSelection"]
    assert all(a.kind == types.CodeActionKind.RefactorRewrite for a in actions)
    before = len(client.applied_edits)
    answer = await execute(client, actions[1].command.command, *actions[1].command.arguments)
    assert answer["applied"] is True, answer.get("message")
    assert len(client.applied_edits) == before + 1
    (change,) = client.applied_edits[-1].edit.document_changes
    check_edits(DOCSTRING, selection, answer, change.edits)


async def test_a_code_action_picked_after_the_document_changed_changes_nothing(client: LanguageClient):
    """The action's range was chosen in the text as it was; after an edit it would point at other code."""
    uri = "file:///tmp/infill-tests/code_actions_stale.py"
    selection = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}
    open_document(client, uri, DOCSTRING, version=4)
    (_, rewrite) = await code_action_request(client, uri, selection)
    assert rewrite.command.arguments[0]["version"] == 4
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=5),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text="import os\n" + DOCSTRING)]))
    before = len(client.applied_edits)
    answer = await execute(client, rewrite.command.command, *rewrite.command.arguments)
    assert answer["applied"] is False and "changed since the selection was made" in answer["message"]
    assert len(client.applied_edits) == before
    with pytest.raises(Exception, match="version must be a whole number"):
        await execute(client, rewrite.command.command, {**rewrite.command.arguments[0], "version": "5"})


async def test_a_client_without_code_action_literals_gets_plain_commands():
    """The LSP spec: a client that announces no codeActionLiteralSupport takes Command[] only; it got CodeActions,
    whose `command` (an object, not the command's name) such a client cannot run."""
    capabilities = client_capabilities("visual-studio-code")
    capabilities.text_document.code_action.code_action_literal_support = None
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=capabilities) as plain_client:
        uri = "file:///tmp/infill-tests/code_actions_plain.py"
        open_document(plain_client, uri, DOCSTRING, version=2)
        selection = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}
        actions = await code_action_request(plain_client, uri, selection)
        assert [type(action) for action in actions] == [types.Command, types.Command]
        assert [action.command for action in actions] == ["infill.fillSelection", "infill.rewriteSelection"]
        assert actions[0].arguments[0]["version"] == 2


async def test_no_code_actions_without_a_selection_another_kind_or_a_document(client: LanguageClient):
    uri = "file:///tmp/infill-tests/code_actions_none.py"
    open_document(client, uri, DOCSTRING)
    cursor = {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 11}}
    selection = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}
    assert not await code_action_request(client, uri, cursor)
    assert not await code_action_request(client, uri, selection, only=[types.CodeActionKind.QuickFix])
    assert len(await code_action_request(client, uri, selection, only=[types.CodeActionKind.Refactor])) == 2
    assert not await code_action_request(client, "file:///tmp/infill-tests/never_opened.py", selection)
