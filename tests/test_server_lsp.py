"""End to end over real JSON-RPC: pytest-lsp's client drives `python -m lsp_server` with the embedded model.

One server for the whole module (the model loads once); each test opens its own documents.
"""
from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient, client_capabilities

from conftest import (DATA, FAST_OPTIONS, answer_with_some_seed, execute, initialize, inline_at, lsp_session,
                      messages_since, open_document, progress_reports_of, server_config, wait_for_message,
                      wait_for_model, wait_until, wait_until_busy)
from lsp_server.completion_items import label_of
from lsp_server.positions import Snapshot

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHAPES = (DATA / "shapes.py").read_text()
RETURN_LINE, RETURN_END = 9, 11          # "    return " in rectangle_area: complete after it
INVALID_PARAMS = -32602
REQUEST_CANCELLED = -32800


def unseen(text: str, tag: str) -> str:
    """The text with a comment of its own at the end: a context no earlier request cached (or speculated)."""
    return f"{text}\n# {tag}\n"


@pytest_lsp.fixture(config=server_config(), scope="module")
async def client(lsp_client: LanguageClient):
    # Deliberately bad options (nested under the section, as VS Code sends them): each must come back as a
    # warning and a default, not stop the server.
    await initialize(lsp_client, {"diffusionInfill": {**FAST_OPTIONS, "seed": "forty-two", "device": "tpu",
                                                      "frobnicate": 1}})
    await wait_for_model(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def test_capabilities_advertise_inline_completion_and_both_commands(client: LanguageClient):
    capabilities = client.initialize_result.capabilities
    assert capabilities.inline_completion_provider is not None
    assert capabilities.completion_provider is not None and capabilities.code_action_provider is not None
    assert set(capabilities.execute_command_provider.commands) >= {"infill.fillSelection",
                                                                    "infill.rewriteSelection"}


async def test_model_loads_once_with_progress(client: LanguageClient):
    begins = progress_reports_of(client, types.WorkDoneProgressBegin)
    ends = progress_reports_of(client, types.WorkDoneProgressEnd)
    assert len(begins) == 1 and len(ends) == 1
    assert "model ready" in ends[0].message
    assert not messages_since(client, 0, kind=types.MessageType.Error)


async def test_bad_initialization_options_are_warnings_and_defaulted(client: LanguageClient):
    warning = await wait_for_message(client, 0, "seed", "forty-two", kind=types.MessageType.Warning)
    assert "using 0" in warning.message
    assert "using 'auto'" in (await wait_for_message(client, 0, "device = 'tpu'")).message
    await wait_for_message(client, 0, "unknown option", "frobnicate")


async def test_inline_completion_returns_text_and_range_at_the_cursor(client: LanguageClient):
    uri = "file:///tmp/infill-tests/shapes.py"
    open_document(client, uri, SHAPES)
    answer = await inline_at(client, uri, RETURN_LINE, RETURN_END)
    assert len(answer.items) == 1
    item = answer.items[0]
    assert isinstance(item.insert_text, str) and item.insert_text.strip()
    cursor = types.Position(RETURN_LINE, RETURN_END)
    assert item.range is not None and item.range.start == cursor and item.range.end == cursor


async def test_newer_inline_request_for_the_same_document_cancels_the_older(client: LanguageClient):
    uri = "file:///tmp/infill-tests/superseded.py"
    open_document(client, uri, unseen(SHAPES, "superseded"))
    older = asyncio.ensure_future(inline_at(client, uri, RETURN_LINE, RETURN_END))
    await wait_until_busy(client)   # the older one is denoising
    newer = await inline_at(client, uri, RETURN_LINE, RETURN_END)
    assert len((await older).items) == 0          # stopped, so it offers nothing stale
    assert len(newer.items) == 1 and newer.items[0].insert_text.strip()


async def test_typing_during_generation_drops_the_stale_suggestion(client: LanguageClient):
    # Plain text: what the weak embedded model writes after "w" in Python varies with every engine change, and
    # only the scheduling is under test here (with no grammar, any non-empty model text is offered).
    uri = "file:///tmp/infill-tests/typing.txt"
    line = "notes: the total is "
    open_document(client, uri, f"{line}\n", language_id="plaintext")
    pending = asyncio.ensure_future(inline_at(client, uri, 0, len(line)))
    await wait_until_busy(client)   # typed while the model runs
    typed = types.Range(start=types.Position(0, len(line)), end=types.Position(0, len(line)))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(range=typed, text="w")]))
    assert len((await pending).items) == 0    # its offsets belong to the text before "w"
    answer = await inline_at(client, uri, 0, len(line) + 1)
    assert len(answer.items) == 1 and answer.items[0].range.start == types.Position(0, len(line) + 1)


async def test_client_cancel_is_answered_and_the_server_keeps_going(client: LanguageClient):
    uri = "file:///tmp/infill-tests/cancelled.py"
    open_document(client, uri, unseen(SHAPES, "cancelled"))
    # Our own id, so that we can name the request in $/cancelRequest; pytest-lsp sends it once the task runs.
    request = asyncio.ensure_future(client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(RETURN_LINE, RETURN_END),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)),
        msg_id="cancel-me"))
    await wait_until_busy(client)   # started: pygls alone could no longer cancel it
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcException) as raised:
        await asyncio.wait_for(request, 60)
    assert raised.value.code == REQUEST_CANCELLED
    await assert_still_answering(client)


async def test_fill_selection_sends_apply_edit_and_returns_it(client: LanguageClient):
    uri = "file:///tmp/infill-tests/fill_me.py"
    # Inside a docstring: the embedded model is weak, and a fill that breaks the syntax is never offered.
    # Two lines of it: a fill within one line keeps to that line, and a small model often starts a middle with a
    # line break, leaving nothing.
    text = ('def rectangle_area(width, height):\n    """Width times height,\n    in square units."""\n'
            '    return width * height\n')
    open_document(client, uri, text, version=7)
    selection = {"start": {"line": 1, "character": 7}, "end": {"line": 2, "character": 19}}
    before = len(client.applied_edits)
    answer = await execute(client, "infill.fillSelection", {"uri": uri, "range": selection})

    assert answer["applied"] is True and answer["text"]
    assert len(client.applied_edits) == before + 1
    change = client.applied_edits[-1].edit.document_changes[0]
    assert change.text_document.uri == uri and change.text_document.version == 7
    # Minimal edits (tests/test_server_edits.py checks that they give exactly answer["text"]).
    assert change.edits and answer["range"] == selection
    assert answer["edits"] == [{"range": {"start": {"line": e.range.start.line, "character": e.range.start.character},
                                          "end": {"line": e.range.end.line, "character": e.range.end.character}},
                                "newText": e.new_text} for e in change.edits]
    assert all(types.Position(1, 7) <= e.range.start and e.range.end <= types.Position(2, 19) for e in change.edits)


async def test_rewrite_selection_accepts_positional_arguments(client: LanguageClient):
    uri = "file:///tmp/infill-tests/rewrite_me.py"
    text = ('def total(values):\n    """Add the values up,\n    one after another,\n'
            '    from the first to the last."""\n    return sum(values)\n')
    open_document(client, uri, text)
    selection = {"start": {"line": 1, "character": 7}, "end": {"line": 3, "character": 31}}
    before = len(client.applied_edits)
    answer = await execute(client, "infill.rewriteSelection", uri, selection, "use sum()")

    # The weak embedded model's rewrite may not parse, and is then refused with a reason; either way the
    # positional arguments were read (a misread selection is an error, or an edit outside it).
    if not answer["applied"]:
        assert "no suggestion" in answer["message"] and len(client.applied_edits) == before
        return
    assert answer["text"] and len(client.applied_edits) == before + 1
    edits = client.applied_edits[-1].edit.document_changes[0].edits
    assert edits and all(types.Position(1, 7) <= e.range.start and e.range.end <= types.Position(3, 31)
                         for e in edits)


async def test_rewriting_a_selection_longer_than_the_canvas_applies_nothing(client: LanguageClient):
    uri = "file:///tmp/infill-tests/rewrite_long.py"
    body = "".join(f"    value_{i} = compute(values[{i}], scale={i})\n" for i in range(20))
    open_document(client, uri, "def table(values):\n" + body + "    return values\n")
    before = len(client.applied_edits)
    selection = {"start": {"line": 1, "character": 0}, "end": {"line": 21, "character": 0}}
    answer = await execute(client, "infill.rewriteSelection", {"uri": uri, "range": selection})
    assert answer["applied"] is False and "too long to rewrite" in answer["message"]
    assert len(client.applied_edits) == before


async def test_an_empty_selection_applies_nothing(client: LanguageClient):
    uri = "file:///tmp/infill-tests/empty_selection.py"
    open_document(client, uri, SHAPES)
    before = len(client.applied_edits)
    point = {"line": 9, "character": 4}
    answer = await execute(client, "infill.rewriteSelection", {"uri": uri, "range": {"start": point, "end": point}})
    assert answer["applied"] is False and "select" in answer["message"]
    assert len(client.applied_edits) == before


async def test_unknown_document_is_invalid_params_and_the_server_keeps_answering(client: LanguageClient):
    before = (await execute(client, "infill.status"))["counters"]
    with pytest.raises(JsonRpcException) as raised:
        await inline_at(client, "file:///never/opened.py", 0, 0)
    assert raised.value.code == INVALID_PARAMS and "unknown document" in str(raised.value)
    counted = {key: value - before[key] for key, value in (await execute(client, "infill.status"))["counters"].items()}
    assert counted["requests"] == 1 and counted["empty"] == 1   # every request counted has an outcome
    with pytest.raises(JsonRpcException) as raised:
        await execute(client, "infill.fillSelection", {"uri": "file:///never/opened.py",
                                                       "range": {"start": {"line": 0, "character": 0},
                                                                 "end": {"line": 0, "character": 1}}})
    assert raised.value.code == INVALID_PARAMS
    await assert_still_answering(client)


async def test_bad_command_arguments_are_invalid_params(client: LanguageClient):
    for arguments in ([], ["file:///x.py"], [{"uri": 3, "range": None}], [{"uri": "file:///x.py", "range": 5}]):
        with pytest.raises(JsonRpcException) as raised:
            await execute(client, "infill.fillSelection", *arguments)
        assert raised.value.code == INVALID_PARAMS, arguments
    await assert_still_answering(client)


async def test_position_outside_the_document_is_empty_with_a_message(client: LanguageClient):
    uri = "file:///tmp/infill-tests/short.py"
    open_document(client, uri, "x = 1\n")
    seen = len(client.messages)
    assert len((await inline_at(client, uri, 5, 0)).items) == 0   # a line past the end (a character is clamped)
    await wait_for_message(client, seen, "outside", kind=types.MessageType.Warning)

    answer = await execute(client, "infill.fillSelection", {"uri": uri, "range": {
        "start": {"line": 0, "character": 0}, "end": {"line": 40, "character": 0}}})
    assert answer["applied"] is False and "outside" in answer["message"]
    await assert_still_answering(client)


async def test_a_character_past_the_line_end_is_the_line_end(client: LanguageClient):
    """LSP 3.17, Position: "If the character value is greater than the line length it defaults back to the line
    length." For inline and completion requests, code actions and the commands alike."""
    uri = "file:///tmp/infill-tests/past_line_end.py"
    open_document(client, uri, SHAPES)
    (at_end,) = (await inline_at(client, uri, RETURN_LINE, RETURN_END)).items
    (past,) = (await inline_at(client, uri, RETURN_LINE, 10_000)).items
    line_end = types.Position(RETURN_LINE, RETURN_END)
    assert past.insert_text == at_end.insert_text and past.range.start == past.range.end == line_end
    (item,) = (await completion_at(client, uri, RETURN_LINE, 10_000)).items
    assert item.text_edit.new_text == at_end.insert_text and item.text_edit.range.start == line_end

    other = "file:///tmp/infill-tests/past_line_end_fill.py"
    open_document(client, other, 'def rectangle_area(width, height):\n    """Width times height,\n'
                                 '    in square units."""\n    return width * height\n')
    # A code action hands its range to this command as the editor sent it, so the command is where it is clamped.
    selection = {"start": {"line": 1, "character": 7}, "end": {"line": 1, "character": 10_000}}
    answer = await execute(client, "infill.fillSelection", {"uri": other, "range": selection})
    assert answer["applied"] is True, answer
    assert answer["range"] == {"start": {"line": 1, "character": 7}, "end": {"line": 1, "character": 26}}
    assert not messages_since(client, 0, "past_line_end")   # no "outside" for either document


async def test_status_tells_the_answer_source_and_keeps_the_model_latency(client: LanguageClient):
    # Plain text (no grammar to refuse what the model writes) and a seed it answers with: the subject here is where
    # answers come from, whichever model is shipped.
    uri = "file:///tmp/infill-tests/answer_sources.txt"
    text = unseen(SHAPES, "answer sources")
    open_document(client, uri, text, language_id="plaintext")
    try:
        _, answer = await answer_with_some_seed(client, uri, RETURN_LINE, RETURN_END, FAST_OPTIONS)
        await answer_sources_from(client, uri, text, answer)
    finally:
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": FAST_OPTIONS}))


async def answer_sources_from(client: LanguageClient, uri: str, text: str, answer: types.InlineCompletionList):
    (first,) = answer.items
    status = await execute(client, "infill.status")
    assert status["lastAnswerSource"] == "model" and status["lastModelLatencyMs"] == status["lastLatencyMs"] > 0
    model_ms = status["lastModelLatencyMs"]

    (again,) = (await inline_at(client, uri, RETURN_LINE, RETURN_END)).items   # the same context: cached
    status = await execute(client, "infill.status")
    assert again.insert_text == first.insert_text
    assert status["lastAnswerSource"] == "cache" and status["lastModelLatencyMs"] == model_ms

    assert len(first.insert_text) > 1, first.insert_text
    cursor = Snapshot(uri, text).offset_of(first.range.start)   # typing the suggestion's first character
    typed = text[:cursor] + first.insert_text[0] + text[cursor:]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=typed)]))
    after = Snapshot(uri, typed).position_of(cursor + 1)
    (rest,) = (await inline_at(client, uri, after.line, after.character)).items
    status = await execute(client, "infill.status")
    assert rest.insert_text == first.insert_text[1:]
    assert status["lastAnswerSource"] == "typed-through" and status["lastModelLatencyMs"] == model_ms


async def test_nul_bytes_give_empty_and_a_message(client: LanguageClient):
    uri = "file:///tmp/infill-tests/binary.py"
    open_document(client, uri, "x = 1\x00\x00\x01\ny = ")
    seen = len(client.messages)
    assert len((await inline_at(client, uri, 1, 4)).items) == 0
    await wait_for_message(client, seen, "NUL")
    await assert_still_answering(client)


async def test_empty_document_is_answered(client: LanguageClient):
    uri = "file:///tmp/infill-tests/empty.py"
    open_document(client, uri, "")
    await inline_at(client, uri, 0, 0)   # answered (a list, not an error), whatever the model writes there
    assert len((await inline_at(client, uri, 1, 0)).items) == 0
    await assert_still_answering(client)


async def test_language_without_a_grammar_says_so_and_still_answers(client: LanguageClient):
    uri = "file:///tmp/infill-tests/report.cob"
    open_document(client, uri, "IDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\nPROCEDURE DIVISION.\n    DISPLAY ",
                  language_id="cobol")
    seen = len(client.messages)
    answer = await inline_at(client, uri, 3, 12)
    assert answer.items and all(item.range.start == types.Position(3, 12) for item in answer.items)
    await wait_for_message(client, seen, "no tree-sitter grammar", "cobol")
    await assert_still_answering(client)


async def test_utf16_positions_after_astral_characters(client: LanguageClient):
    # "😋" is one str character but two UTF-16 units: the cursor after `notes: 😋 the total is ` is at character 23.
    # Plain text, where the embedded model answers (its Python rarely passes the checks): the item's range is what
    # is checked.
    uri = "file:///tmp/infill-tests/emoji.txt"
    line = "notes: 😋 the total is "
    open_document(client, uri, f"{line}\nastral\n", language_id="plaintext")
    answer = await inline_at(client, uri, 0, 23)
    assert answer.items and all(item.range.start == types.Position(0, 23) for item in answer.items)
    seen = len(client.messages)
    assert len((await inline_at(client, uri, 0, 8)).items) == 0  # between the two halves of the emoji
    await wait_for_message(client, seen, "0:8 is inside a character of")   # (it said "outside")


async def test_positions_outside_a_document_are_reported_once_for_it(client: LanguageClient):
    """A copy out of step with the editor's is outside at every keystroke, each time at a new place: a message per
    keystroke, as each named its own position."""
    uri = "file:///tmp/infill-tests/two_lines.py"
    open_document(client, uri, "x = 1\ny = 2\n")
    seen = len(client.messages)
    for character in range(3):
        assert not (await inline_at(client, uri, 5, character)).items
    await execute(client, "infill.status")
    assert len(messages_since(client, seen, "is outside", uri)) == 1


async def test_bad_setting_change_warns_and_keeps_serving(client: LanguageClient):
    seen = len(client.messages)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"diffusionInfill": {"maxNewTokens": "lots", "noSuchOption": True}}))
    await wait_for_message(client, seen, "maxNewTokens", "not valid", kind=types.MessageType.Warning)
    await wait_for_message(client, seen, "noSuchOption")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"diffusionInfill": {"maxNewTokens": FAST_OPTIONS["maxNewTokens"]}}))
    await assert_still_answering(client)


async def test_settings_pushed_without_their_section_are_read_as_ours(client: LanguageClient):
    seen = len(client.messages)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"maxNewTokens": "lots"}))
    await wait_for_message(client, seen, "maxNewTokens", "not valid", kind=types.MessageType.Warning)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"maxNewTokens": FAST_OPTIONS["maxNewTokens"]}))
    await assert_still_answering(client)


opened: set[str] = set()


async def test_pull_model_settings_are_fetched_with_workspace_configuration(client: LanguageClient):
    # VS Code's pull model: the notification carries nothing, the server asks for its section.
    client.set_configuration({**FAST_OPTIONS, "maxNewTokens": 0}, section="diffusionInfill")
    seen = len(client.messages)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await wait_for_message(client, seen, "maxNewTokens = 0", "not valid", kind=types.MessageType.Warning)
    client.set_configuration(FAST_OPTIONS, section="diffusionInfill")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await assert_still_answering(client)


async def test_a_setting_deleted_from_a_pulled_configuration_goes_back_to_its_default():
    """A pulled section is the whole of the user's settings (Neovim's `settings` table sends only what is set): an
    option missing from it is one the user removed, not one left as it was."""
    capabilities = client_capabilities("visual-studio-code")
    capabilities.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=capabilities) as session:
        uri = "file:///tmp/infill-tests/pulled_settings.py"
        open_document(session, uri, SHAPES)

        async def items_listed() -> bool:   # the server reads the pulled section after answering the notification
            for _ in range(100):
                listed = await completion_at(session, uri, RETURN_LINE, RETURN_END)
                if (listed is not None) == wanted:
                    return True
                await asyncio.sleep(0.1)
            return False

        session.set_configuration({"completionItems": "on"}, section="diffusionInfill")
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        wanted = True
        assert await items_listed()
        session.set_configuration({}, section="diffusionInfill")
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        wanted = False   # "auto": none on a client with ghost text
        assert await items_listed()


async def test_a_pulled_configuration_the_editor_fails_to_give_is_reported():
    """Before, only the log said so: the user's new settings were ignored without a word. (One server for both
    answers: the error's message names the exception, the empty one's the answer.)"""
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}) as session:
        for answer in ("error", "empty"):
            def configuration(params: types.ConfigurationParams):
                if answer == "error":
                    raise RuntimeError("no settings here")
                return []

            session.protocol.fm.features[types.WORKSPACE_CONFIGURATION] = configuration
            seen = len(session.messages)
            session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
            said = await wait_for_message(session, seen, "workspace/configuration", "settings stay")
            assert ("no settings here" in said.message) == (answer == "error"), said.message
            assert (await execute(session, "infill.status"))["state"] in ("loading", "ready")


async def test_a_pulled_configuration_that_is_not_one_object_keeps_the_settings_the_editor_pushed(tmp_path):
    """A section that was not an object was said to be ignored, yet every setting went back to the initialization
    options (the model loaded again); a null answer showed pygls's "Invalid Params" at every notification. One
    server for the four answers: each is said in its own words, once."""
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}) as session:
        await wait_for_model(session)
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(   # pushed: a missing model
            settings={"diffusionInfill": {"model": str(tmp_path / "gone")}}))
        await wait_until(lambda: session.statuses[-1]["state"] == "error", 30, "the pushed model's error")
        for answer in (None, ["x"], [42], {"diffusionInfill": {}}):   # null, a string, a number, no array
            session.protocol.fm.features[types.WORKSPACE_CONFIGURATION] = lambda params, answer=answer: answer
            seen = len(session.messages)
            for _ in range(2):
                session.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
            await wait_for_message(session, seen, "workspace/configuration", "settings stay")
            await asyncio.sleep(0.5)
            assert (await execute(session, "infill.status"))["state"] == "error", answer   # no embedded model load
            assert len(messages_since(session, seen, "settings stay")) == 1, answer
            assert not messages_since(session, seen, "Invalid Params"), answer


async def assert_still_answering(client: LanguageClient):
    """A follow-up completion on a healthy document still works after the bad request: the model is ready and
    the request is served, by the model or from the cache. (Whether the weak model's text survives cleaning
    there is not the point: a comment after `return ` does not.)"""
    uri = "file:///tmp/infill-tests/follow_up.py"
    if uri not in opened:
        open_document(client, uri, SHAPES)
        opened.add(uri)
    before = await execute(client, "infill.metrics")
    answer = await inline_at(client, uri, RETURN_LINE, RETURN_END)
    served = await execute(client, "infill.metrics")
    assert all(item.insert_text.strip() for item in answer.items)
    assert answer.items or served["modelRuns"] > before["modelRuns"]
    assert (await execute(client, "infill.status"))["state"] == "ready"


async def completion_at(client: LanguageClient, uri: str, line: int, character: int) -> types.CompletionList | None:
    return await asyncio.wait_for(client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character))), 120)


async def test_clients_without_ghost_text_get_the_suggestion_as_a_completion_item(client: LanguageClient):
    """pytest-lsp's VS Code 1.65 capabilities announce no inline completion, so `completionItems: auto` is on."""
    uri = "file:///tmp/infill-tests/completion_items.py"
    open_document(client, uri, SHAPES)
    (inline,) = (await inline_at(client, uri, RETURN_LINE, RETURN_END)).items
    listed = await completion_at(client, uri, RETURN_LINE, RETURN_END)
    assert listed.is_incomplete   # asked again on the next keystroke, never filtered stale
    (item,) = listed.items
    assert item.text_edit.new_text == inline.insert_text and item.text_edit.range == inline.range
    assert item.label == label_of(inline.insert_text) and item.label.strip()
    assert item.command.command == "infill.accepted"


async def test_ghost_text_clients_get_completion_items_only_when_asked():
    capabilities = client_capabilities("visual-studio-code")
    capabilities.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    capabilities.workspace.apply_edit = False
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}, capabilities=capabilities) as session:
        uri = "file:///tmp/infill-tests/completion_items_off.py"
        open_document(session, uri, SHAPES)
        assert await completion_at(session, uri, RETURN_LINE, RETURN_END) is None   # no duplicate of the ghost text
        # No workspace/applyEdit on this client: code actions, whose commands answer with one, are not offered.
        assert not await session.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=types.Position(4, 0), end=types.Position(5, 0)),
            context=types.CodeActionContext(diagnostics=[])))
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"completionItems": "on"}}))
        listed = await completion_at(session, uri, RETURN_LINE, RETURN_END)
        assert listed.is_incomplete and len(listed.items) == 1 and listed.items[0].text_edit.new_text.strip()


async def test_a_request_right_after_a_model_option_changes_runs_on_the_new_model():
    """The reload used to be queued only once the client had answered the server's progress request: an invoke
    sent in that gap ran on the old model, and its answer was cached for the new one, which then never ran there."""
    async with lsp_session({**FAST_OPTIONS, "speculate": False, "readAhead": False}) as session:
        await wait_for_model(session)
        uri = "file:///tmp/infill-tests/right_after_reload.py"
        open_document(session, uri, unseen(SHAPES, "right after a reload"))
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"contextTokens": 64}}))
        await inline_at(session, uri, RETURN_LINE, RETURN_END, types.InlineCompletionTriggerKind.Invoked)
        ends = await wait_until(lambda: progress_reports_of(session, types.WorkDoneProgressEnd)[1:], 60, "the reload")
        assert "model ready" in ends[-1].message
        metrics = await execute(session, "infill.metrics")
        assert metrics["runMeans"]["runs"] >= 1   # the request ran after the reload, on the new model


async def test_an_answer_made_after_a_settings_change_is_not_cached_for_the_old_settings():
    """The cache key was made when the request came, the request itself once the model had loaded: a setting changed
    in between filed the answer made with the new settings under the old ones, and it was served for them later."""
    async with lsp_session({**FAST_OPTIONS, "speculate": False, "readAhead": False}) as session:
        uri = "file:///tmp/infill-tests/settings_during_load.txt"   # small: its key is the same with any model
        open_document(session, uri, "notes: the total is \n", language_id="plaintext")
        invoked = types.InlineCompletionTriggerKind.Invoked
        first = asyncio.ensure_future(inline_at(session, uri, 0, 20, invoked))
        await asyncio.sleep(0.5)   # the request is sent, and waits for the model's first load (seconds) ...
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(   # ... and this comes
            settings={"diffusionInfill": {"maxNewTokens": 4}}))
        assert (await first).items   # made with maxNewTokens 4
        session.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"diffusionInfill": {"maxNewTokens": FAST_OPTIONS["maxNewTokens"]}}))
        before = (await execute(session, "infill.status"))["counters"]
        await inline_at(session, uri, 0, 20, invoked)
        assert (await execute(session, "infill.status"))["counters"]["cacheHits"] == before["cacheHits"]


async def test_an_explicit_request_completes_inside_a_comment(client: LanguageClient):
    """Typing in a comment shows nothing; asking there (Invoked) finishes the comment's line."""
    uri = "file:///tmp/infill-tests/asked_in_comment.py"
    text = unseen(SHAPES, "comment test") + "# The area of a \n"
    open_document(client, uri, text)
    line, column = text.count("\n") - 1, len("# The area of a ")
    assert not (await inline_at(client, uri, line, column)).items
    answer = await inline_at(client, uri, line, column, types.InlineCompletionTriggerKind.Invoked)
    assert answer.items and all("\n" not in item.insert_text and item.insert_text.strip() for item in answer.items)


async def test_a_completion_and_an_inline_request_for_one_keystroke_do_not_cancel_each_other(client: LanguageClient):
    """A client may ask both for the same keystroke (completionItems "on" with ghost text); each gets its answer."""
    uri = "file:///tmp/infill-tests/both_requests.py"
    open_document(client, uri, unseen(SHAPES, "both requests"))
    inline, listed = await asyncio.gather(inline_at(client, uri, RETURN_LINE, RETURN_END),
                                          completion_at(client, uri, RETURN_LINE, RETURN_END))
    assert len(inline.items) == 1 and len(listed.items) == 1
    assert listed.items[0].text_edit.new_text == inline.items[0].insert_text


GEOMETRY = "def circle_area(radius):\n    return 3.14 * radius * radius\n"   # fits a quarter of 192 tokens
TOTAL = ("from geometry import rectangle_area, circle_area\n\n\ndef total_area(shapes):\n    area = 0\n"
         "    for width, height in shapes:\n        area += rectangle_area(width, height)\n    radius = 2\n"
         "    area += \n    return area\n")


async def open_related_pair(client: LanguageClient, folder: str) -> str:
    open_document(client, f"file:///tmp/{folder}/geometry.py", GEOMETRY)
    open_document(client, f"file:///tmp/{folder}/notes.lua", "-- rectangle_area circle_area radius width height\n",
                  language_id="lua")
    uri = f"file:///tmp/{folder}/total.py"
    open_document(client, uri, TOTAL)
    return uri


async def test_a_model_option_changed_and_back_during_a_run_keeps_the_loaded_model():
    """The load for the new value waited behind the run and was replaced by the load for the old value, which read
    the weights again (minutes for a large model) and wiped the run history."""
    slow = {**FAST_OPTIONS, "steps": 64}
    async with lsp_session({"diffusionInfill": slow}) as client:
        await wait_for_model(client)
        uri = "file:///tmp/infill-tests/change_and_back.py"
        open_document(client, uri, unseen(SHAPES, "changed and back"))
        selection = {"start": {"line": RETURN_LINE, "character": 4}, "end": {"line": RETURN_LINE, "character": 11}}
        fill = asyncio.ensure_future(execute(client, "infill.fillSelection", {"uri": uri, "range": selection}))
        await wait_until_busy(client)
        for model in ("/tmp/infill-tests/a-typo", None):
            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
                settings={"diffusionInfill": {**slow, "model": model}}))
        await fill
        ends = await wait_until(lambda: progress_reports_of(client, types.WorkDoneProgressEnd)[2:], 60, "the loads")
        assert "model ready" in ends[-1].message
        metrics = await execute(client, "infill.metrics")
        assert metrics["runMeans"]["runs"] >= 1   # the fill's run: the engine that ran it is the one kept


async def test_a_model_path_typed_a_character_at_a_time_reports_only_the_last_one():
    """Each value of a model path typed into a settings box loaded and failed at once, an error pop-up each."""
    async with lsp_session({"diffusionInfill": FAST_OPTIONS}) as client:
        await wait_for_model(client)
        seen = len(client.messages)
        for path in ("/tmp/m", "/tmp/mo", "/tmp/mod"):
            client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
                settings={"diffusionInfill": {**FAST_OPTIONS, "model": path}}))
            await asyncio.sleep(0.3)
        await wait_for_message(client, seen, "/tmp/mod", kind=types.MessageType.Error)
        errors = [m.message for m in client.messages[seen:] if m.type == types.MessageType.Error]
        assert len(errors) == 1 and "/tmp/mod" in errors[0], errors


async def test_a_fill_asked_while_the_model_loads_reads_the_context_the_loaded_model_takes():
    """Built before the load ended, the request read no model's context size: `relatedFiles: auto` counted as off
    (and a notebook's cells above were cut to 4,000 characters), so the fill ran on less context than after."""
    weighted = ("def compute_weighted_total(values, weights):\n    total = 0\n"
                "    for value, weight in zip(values, weights):\n        total += value * weight\n    return total\n")
    report = ('def report(values, weights):\n    """Print the weighted total of values and weights."""\n'
              "    result = compute_weighted_total(values, weights)\n    print(result)\n")
    async with lsp_session({"diffusionInfill": {**FAST_OPTIONS, "contextTokens": 1024}},
                           root_uri="file:///tmp/during-load") as client:
        open_document(client, "file:///tmp/during-load/weighted.py", weighted)
        open_document(client, "file:///tmp/during-load/report.py", report)
        selection = {"start": {"line": 1, "character": 8}, "end": {"line": 1, "character": 40}}
        await execute(client, "infill.fillSelection", {"uri": "file:///tmp/during-load/report.py", "range": selection})
        assert len(progress_reports_of(client, types.WorkDoneProgressEnd)) == 1   # the one load, waited for
        assert (await execute(client, "infill.metrics"))["lastRun"]["relatedFiles"] == ["weighted.py"]


async def test_other_open_files_lend_snippets_when_turned_on():
    async with lsp_session({"diffusionInfill": {**FAST_OPTIONS, "relatedFiles": "on"}},
                           root_uri="file:///tmp/related-on") as client:
        await wait_for_model(client)
        uri = await open_related_pair(client, "related-on")
        # Ten Lua files edited since: before, they filled the ten places and the Python file lent nothing.
        start = types.Position(0, 0)
        for i in range(10):
            lua = f"file:///tmp/related-on/more-{i}.lua"
            open_document(client, lua, "-- rectangle_area circle_area radius\n", language_id="lua")
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=lua, version=2),
                content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=start, end=start),
                                                                        text=" ")]))
        await inline_at(client, uri, 8, 12, types.InlineCompletionTriggerKind.Invoked)
        last_run = (await execute(client, "infill.metrics"))["lastRun"]
        # The Python file that shares names with the code above the cursor; not the Lua one, not the file itself.
        assert last_run["relatedFiles"] == ["geometry.py"]   # named relative to the workspace


async def test_only_files_of_the_same_workspace_folder_lend_snippets():
    """One server serves every project the editor has open (Neovim adds each project's root as a workspace folder):
    one project's files never show up in another's completions."""
    async with lsp_session({"diffusionInfill": {**FAST_OPTIONS, "relatedFiles": "on"}},
                           root_uri="file:///tmp/folders-a") as client:
        await wait_for_model(client)
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri="file:///tmp/folders-b/", name="folders-b")], removed=[])))
        open_document(client, "file:///tmp/folders-b/shapes.py",
                      "def rectangle_area(width, height):\n    return width * height\n")
        open_document(client, "file:///tmp/folders-a/geometry.py", GEOMETRY)

        async def snippet_files(uri: str) -> list[str]:
            runs = (await execute(client, "infill.metrics"))["modelRuns"]
            open_document(client, uri, TOTAL)
            await inline_at(client, uri, 8, 12, types.InlineCompletionTriggerKind.Invoked)
            metrics = await execute(client, "infill.metrics")
            assert metrics["modelRuns"] > runs   # lastRun is this request's (no answer from the cache)
            return metrics["lastRun"]["relatedFiles"]

        assert await snippet_files("file:///tmp/folders-b/total.py") == ["shapes.py"]
        assert await snippet_files("file:///tmp/folders-a/total.py") == ["geometry.py"]
        # in no folder: none of theirs (folders-b's URI ends with a slash: its files are in it all the same)
        assert await snippet_files("file:///tmp/elsewhere/total.py") == []
        # A folder inside another (a package with its own root marker) is the same project.
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(
                added=[types.WorkspaceFolder(uri="file:///tmp/folders-a/pkg", name="pkg")], removed=[])))
        lent = await snippet_files("file:///tmp/folders-a/pkg/total.py")
        assert lent and set(lent) <= {"geometry.py", "total.py"}, lent
        metrics = await execute(client, "infill.metrics")
        assert metrics["workspaceFolders"] == ["/tmp/folders-a", "/tmp/folders-a/pkg", "/tmp/folders-b"]
        # The root named at initialize, removed: no longer a project (it stayed one, as pygls' root)
        client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
            event=types.WorkspaceFoldersChangeEvent(added=[], removed=[
                types.WorkspaceFolder(uri="file:///tmp/folders-a", name="folders-a")])))
        assert (await execute(client, "infill.metrics"))["workspaceFolders"] == ["/tmp/folders-a/pkg",
                                                                                  "/tmp/folders-b"]


# Two files, each a line of names; only one of them fits the embedded model's quarter of 192 tokens.
LEFT_NAMES = "name value data path result index count items text line"
RIGHT_NAMES = "size node args kwargs config module parent child total length buffer"


def assignment(names: str) -> str:
    return " = ".join(names.split()) + " = 0\n"


async def test_the_last_requests_snippet_is_kept_while_nearly_as_good():
    """A change of snippet costs the engine the prompt after it, so the one the document's last request used stays
    while no other beats it clearly (infill/related.py). Closing the document forgets it."""
    async with lsp_session({"diffusionInfill": {**FAST_OPTIONS, "relatedFiles": "on"}},
                           root_uri="file:///tmp/related-kept") as client:
        await wait_for_model(client)
        open_document(client, "file:///tmp/related-kept/left.py", LEFT_NAMES + "\n")
        open_document(client, "file:///tmp/related-kept/right.py", RIGHT_NAMES + "\n")
        uri, first = "file:///tmp/related-kept/main.py", assignment(LEFT_NAMES)

        async def snippet_files_at_end_of(text: str, version: int) -> list[str]:
            if version == 1:
                open_document(client, uri, text + "\n")
            else:
                client.text_document_did_change(types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=text + "\n")]))
            await inline_at(client, uri, text.count("\n"), 0, types.InlineCompletionTriggerKind.Invoked)
            return (await execute(client, "infill.metrics"))["lastRun"]["relatedFiles"]

        assert await snippet_files_at_end_of(first, 1) == ["left.py"]
        # Names of right.py above the cursor too: it now shares slightly more (11 of 21 names against 10 of 21).
        # It is first unless the kept one leads (the first place; a model with a longer context has room for both).
        both = first + assignment(RIGHT_NAMES)
        assert (await snippet_files_at_end_of(both, 2))[0] == "left.py"
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        assert (await snippet_files_at_end_of(both, 1))[0] == "right.py"   # picked afresh


async def test_the_embedded_model_keeps_its_small_context_for_the_file_itself(client: LanguageClient):
    """relatedFiles: auto leaves snippets out for a model reading fewer than 1024 context tokens."""
    uri = await open_related_pair(client, "related-auto")
    await inline_at(client, uri, 8, 12, types.InlineCompletionTriggerKind.Invoked)
    assert (await execute(client, "infill.metrics"))["lastRun"]["relatedFiles"] == []
