"""Bad and unusual input over the real protocol (pytest-lsp over stdio, the embedded model): the server's copy of a
document must stay exactly the editor's through any sequence of changes, an edit is proposed only onto the text it
was computed for and only claimed when the editor applied it, and however the connection ends the process exits at
once, quietly.

What the server holds is checked through the result cache, which is keyed by the text around the cursor: a request
on a fresh document opened with the expected text is answered from the cache only when the edited document's text
is exactly that text. The cursor is at the end of a plain-text line the embedded model always continues.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import subprocess
import threading
import time
from concurrent.futures import Future

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from conftest import (FAST_OPTIONS, SERVER_COMMAND, execute, initialize, inline_at, open_document, plain,
                      wait_for_message, wait_for_model, wait_until, wait_until_busy, wait_until_idle)

pytestmark = pytest.mark.asyncio(loop_scope="module")

INVOKED = types.InlineCompletionTriggerKind.Invoked
INVALID_REQUEST, INVALID_PARAMS, REQUEST_CANCELLED = -32600, -32602, -32800
LAST_LINE = "notes: the total is "
DOCSTRING = ('def total(values):\n    """Add up the values given, one after another,\n    and return the sum."""\n'
             '    return sum(values)\n')
IN_DOCSTRING = {"start": {"line": 1, "character": 11}, "end": {"line": 2, "character": 19}}


def adversarial_client() -> LanguageClient:
    """pytest-lsp's client whose workspace/applyEdit answer the test chooses (`client.apply_answer`)."""
    client = make_test_lsp_client()
    client.applied_edits = []
    client.statuses = []
    client.apply_answer = types.ApplyWorkspaceEditResult(applied=True)
    client.before_applying = None   # an async callable the test may set: runs before the answer goes back

    @client.feature("diffusionInfill/status")
    def status(params) -> None:
        client.statuses.append(plain(params))

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    async def apply_edit(params: types.ApplyWorkspaceEditParams):
        client.applied_edits.append(params)
        if client.before_applying is not None:
            await client.before_applying()
        return client.apply_answer

    return client


def config() -> ClientServerConfig:
    return ClientServerConfig(server_command=SERVER_COMMAND, client_factory=adversarial_client)


@contextlib.asynccontextmanager
async def server_of_its_own():
    """A fresh server whose connection the test ends its own way (exit, closed input, ...): killed if still there."""
    client = await config().start()
    try:
        yield client
    finally:
        if client._server.returncode is None:
            client._server.kill()
        with contextlib.suppress(RuntimeError):   # pygls's client cannot fail its own handler, still waiting
            await client.stop()


@pytest_lsp.fixture(config=config(), scope="module")
async def client(lsp_client: LanguageClient):
    await initialize(lsp_client, {"diffusionInfill": FAST_OPTIONS})
    await wait_for_model(lsp_client)
    yield
    await lsp_client.shutdown_session()


def change(client: LanguageClient, uri: str, version: int, *changes) -> None:
    """One didChange; each change is (line, character, end line, end character, text) or a whole-document str."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=c) if isinstance(c, str) else
                         types.TextDocumentContentChangePartial(
                             range=types.Range(start=types.Position(c[0], c[1]), end=types.Position(c[2], c[3])),
                             text=c[4]) for c in changes]))


async def cache_hits(client: LanguageClient) -> int:
    return (await execute(client, "infill.status"))["counters"]["cacheHits"]


async def assert_server_holds(client: LanguageClient, uri: str, expected: str, line: int, character: int):
    """The server's copy of `uri` is exactly `expected` (see the module's docstring)."""
    seen = len(client.messages)
    edited = await inline_at(client, uri, line, character)
    assert edited.items, f"no answer on the edited document: {[m.message for m in client.messages[seen:]]}"
    hits = await cache_hits(client)
    reference = f"{uri}.expected"
    open_document(client, reference, expected, language_id="plaintext")
    answer = await inline_at(client, reference, line, character)
    assert await cache_hits(client) == hits + 1, "the server's text differs from the editor's"
    assert [i.insert_text for i in answer.items] == [i.insert_text for i in edited.items]


async def test_changes_around_form_feeds_and_unicode_line_separators(client: LanguageClient):
    # Only \n, \r\n and \r end a line in LSP; a form feed, U+2028 and U+0085 are ordinary characters inside one.
    # pygls split lines on them too, so this insertion landed in the middle of line 0.
    uri = "file:///tmp/adversarial/separators.txt"
    text = f"page one\x0cstill line zero\nline one\u2028still one\nline two\x85still two\n{LAST_LINE}"
    open_document(client, uri, text, language_id="plaintext")
    change(client, uri, 2, (1, 18, 1, 18, " [A]"), (2, 0, 2, 0, "X"))
    expected = f"page one\x0cstill line zero\nline one\u2028still one [A]\nXline two\x85still two\n{LAST_LINE}"
    await assert_server_holds(client, uri, expected, 3, len(LAST_LINE))


async def test_changes_past_line_ends_crlf_astral_and_combining_characters(client: LanguageClient):
    uri = "file:///tmp/adversarial/edits.txt"
    open_document(client, uri, "total = 0\r\nfor x in 😋 items:\r\n\ttotal += x\rprint(tota", language_id="plaintext")
    # A range ending past the end of the last line (no newline after it) ends at that line's end: pygls kept the
    # last character ("print(total)a"). A line past the end of the document is the end of the document.
    change(client, uri, 2, (3, 6, 3, 99, "total)"), (9, 0, 9, 0, f"\n{LAST_LINE}"))
    change(client, uri, 3, (1, 9, 1, 12, ""))                            # the emoji (two UTF-16 units) and a space
    change(client, uri, 4, (2, 1, 2, 1, "e\u0301"), (2, 3, 2, 3, "!"))  # after a combining accent
    # Past the end of a CRLF line is its end: pygls inserted between \r and \n, splitting the line ending.
    change(client, uri, 5, (0, 10, 0, 10, "  # sum"))
    expected = f"total = 0  # sum\r\nfor x in items:\r\n\te\u0301!total += x\rprint(total)\n{LAST_LINE}"
    await assert_server_holds(client, uri, expected, 4, len(LAST_LINE))

    # A whole-document change, then incremental ones on the new text.
    change(client, uri, 6, f"full\n{LAST_LINE}")
    change(client, uri, 7, (0, 4, 0, 4, " text"))
    await assert_server_holds(client, uri, f"full text\n{LAST_LINE}", 1, len(LAST_LINE))


async def test_a_change_to_a_document_that_is_not_open_is_ignored_with_a_message(client: LanguageClient):
    seen = len(client.messages)
    change(client, "file:///tmp/adversarial/never-opened.py", 2, (0, 0, 0, 0, "x"))
    message = await wait_for_message(client, seen, "not open", "never-opened.py")
    assert message.type == types.MessageType.Warning and "Error in server" not in message.message


async def test_parameters_outside_the_lsp_schema_are_answered_with_what_was_wrong(client: LanguageClient):
    # pygls could not read the id of such a request, so it never answered it: the client waited forever.
    uri = "file:///tmp/adversarial/schema.txt"
    open_document(client, uri, f"{LAST_LINE}\n", language_id="plaintext")
    for params, where in ((None, "$.params"),
                          ({"textDocument": {"uri": uri}, "position": {"line": -1, "character": 0},
                            "context": {"triggerKind": 1}}, "$.params.position"),
                          ({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0},
                            "context": {"triggerKind": 9}}, "$.params.context.trigger_kind")):
        with pytest.raises(JsonRpcException) as raised:
            await asyncio.wait_for(raw_request(client, types.TEXT_DOCUMENT_INLINE_COMPLETION, params), 10)
        assert raised.value.code == INVALID_PARAMS and where in str(raised.value), raised.value
    seen = len(client.messages)
    write_raw(client, {"jsonrpc": "2.0", "method": types.TEXT_DOCUMENT_DID_CHANGE, "params": {
        "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "x", "range": {
            "start": {"line": 0, "character": -3}, "end": {"line": 0, "character": 0}}}]}})
    await wait_for_message(client, seen, "ignored textDocument/didChange", "$.params.content_changes[0].range")


async def raw_request(client: LanguageClient, method: str, params):
    """A request written onto the wire as a faulty client would (pytest-lsp checks what it sends itself)."""
    msg_id = f"raw-{time.monotonic_ns()}"
    answer = Future()
    client.protocol._request_futures[msg_id] = answer   # where the client looks when the answer arrives
    write_raw(client, {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wrap_future(answer)


def write_raw(client: LanguageClient, message: dict) -> None:
    body = json.dumps(message).encode()
    client._server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)


async def test_a_reversed_selection_is_refused_as_such(client: LanguageClient):
    uri = "file:///tmp/adversarial/reversed.py"
    open_document(client, uri, DOCSTRING)
    reversed_range = {"start": IN_DOCSTRING["end"], "end": IN_DOCSTRING["start"]}
    answer = await execute(client, "infill.fillSelection", {"uri": uri, "range": reversed_range})
    assert answer["applied"] is False and "ends before it starts" in answer["message"]
    empty = {"start": IN_DOCSTRING["start"], "end": IN_DOCSTRING["start"]}   # answered without the model queue
    answer = await execute(client, "infill.rewriteSelection", {"uri": uri, "range": empty})
    assert answer["applied"] is False and "is empty: select the code first" in answer["message"]
    line, column = IN_DOCSTRING["start"]["line"] + 1, IN_DOCSTRING["start"]["character"] + 1
    assert f"(line {line}, column {column} to line {line}, column {column})" in answer["message"]   # not a dict
    assert client.applied_edits == []


@pytest.mark.parametrize("apply_answer, reason", [
    (types.ApplyWorkspaceEditResult(applied=False, failure_reason="the user said no"), "the user said no"),
    (None, "answered workspace/applyEdit with None"),   # pygls could not read it: the command never answered
], ids=["refused", "null"])
async def test_an_edit_the_editor_does_not_apply_is_never_claimed(client: LanguageClient, apply_answer, reason):
    uri = f"file:///tmp/adversarial/refused-{len(reason)}.py"
    open_document(client, uri, DOCSTRING)
    client.apply_answer, sent = apply_answer, len(client.applied_edits)
    try:
        seen = len(client.messages)
        answer = await execute(client, "infill.rewriteSelection", {"uri": uri, "range": IN_DOCSTRING})
    finally:
        client.apply_answer = types.ApplyWorkspaceEditResult(applied=True)
    assert len(client.applied_edits) == sent + 1           # it was proposed ...
    assert answer["applied"] is False and reason in answer["message"]    # ... and not claimed
    assert answer["edits"], "the edits stay in the answer for the client to use"
    await wait_for_message(client, seen, "nothing was changed", reason)


async def test_no_edit_is_sent_for_a_document_closed_or_changed_while_the_model_worked(client: LanguageClient):
    """And the run stops at its next step: before, it ran to the end for an edit that was then refused, and the
    inline requests of the user's typing waited behind it. More steps than the module's, so that the run is
    still going when the change arrives, however busy the machine."""
    set_steps(client, 48)
    try:
        await closed_or_changed_while_running(client)
    finally:
        set_steps(client, FAST_OPTIONS["steps"])


def set_steps(client: LanguageClient, steps: int) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"diffusionInfill": {**FAST_OPTIONS, "steps": steps}}))


async def closed_or_changed_while_running(client: LanguageClient) -> None:
    # (closed and opened again as it was: the close stopped the run, and the message said a newer run replaced it)
    for what in ("closed", "changed", "reopened"):
        uri = f"file:///tmp/adversarial/{what}-meanwhile.py"
        open_document(client, uri, DOCSTRING)
        sent = len(client.applied_edits)
        await wait_until_idle(client)   # so that "busy" below is this command's run
        finished = (await execute(client, "infill.metrics"))["runMeans"]["runs"]   # runs that reached their end
        pending = asyncio.ensure_future(execute(client, "infill.rewriteSelection", {"uri": uri, "range": IN_DOCSTRING}))
        await wait_until_busy(client)
        if what == "changed":
            change(client, uri, 2, (3, 0, 3, 0, "    # the user typed this\n"))
        else:
            client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri)))
            if what == "reopened":
                open_document(client, uri, DOCSTRING)
        answer = await pending
        said = "changed" if what == "changed" else "closed"
        assert answer["applied"] is False and said in answer["message"], answer
        assert f": /tmp/adversarial/{what}-meanwhile.py " in answer["message"], answer   # a path, not a URI
        assert len(client.applied_edits) == sent, f"an edit went out for a document {what} since"
        assert (await execute(client, "infill.metrics"))["runMeans"]["runs"] == finished, "the run went on"


async def test_a_change_that_leaves_the_text_as_it_was_does_not_stop_a_command(client: LanguageClient):
    """A formatter replacing a range with the same text while the model works: the command was refused as if the
    user had typed. Its edit now goes out, versioned with the document's new version."""
    set_steps(client, 48)
    try:
        uri = "file:///tmp/adversarial/same-text-meanwhile.py"
        open_document(client, uri, DOCSTRING)
        sent = len(client.applied_edits)
        await wait_until_idle(client)
        pending = asyncio.ensure_future(execute(client, "infill.rewriteSelection", {"uri": uri, "range": IN_DOCSTRING}))
        await wait_until_busy(client)
        change(client, uri, 2, (0, 0, 0, 3, "def"))
        answer = await pending
        assert answer["applied"] is True, answer
        assert len(client.applied_edits) == sent + 1
        assert client.applied_edits[-1].edit.document_changes[0].text_document.version == 2
    finally:
        set_steps(client, FAST_OPTIONS["steps"])


async def test_a_cancelled_command_stops_the_model_and_sends_no_edit(client: LanguageClient):
    # VS Code's progress notification has a Cancel button: pygls answered RequestCancelled but let the command run
    # on, and its edit still reached the document.
    uri = "file:///tmp/adversarial/cancelled-command.py"
    open_document(client, uri, DOCSTRING)
    sent = len(client.applied_edits)
    await wait_until_idle(client)
    request = asyncio.ensure_future(client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(
            command="infill.rewriteSelection", arguments=[{"uri": uri, "range": IN_DOCSTRING}]),
        msg_id="cancel-this-command"))
    await wait_until_busy(client)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-this-command"))
    with pytest.raises(JsonRpcException) as raised:
        await asyncio.wait_for(request, 30)
    assert raised.value.code == REQUEST_CANCELLED
    await wait_until_idle(client)
    await asyncio.sleep(0.2)   # an edit sent after the run would have arrived by now
    assert len(client.applied_edits) == sent


async def test_a_cancel_after_the_edit_went_out_is_answered_with_what_happened_to_it(client: LanguageClient):
    # The editor may apply an edit whatever the server does next: a $/cancelRequest that arrives while
    # workspace/applyEdit is out stopped the command, whose answer said "nothing was changed" over an applied edit.
    uri = "file:///tmp/adversarial/cancelled-while-applying.py"
    open_document(client, uri, DOCSTRING)
    sent, seen = len(client.applied_edits), len(client.messages)

    async def cancel_then_apply() -> None:
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-while-applying"))
        await asyncio.sleep(0.3)   # the cancel is read before the answer

    client.before_applying = cancel_then_apply
    try:
        answer = await asyncio.wait_for(client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(
                command="infill.rewriteSelection", arguments=[{"uri": uri, "range": IN_DOCSTRING}]),
            msg_id="cancel-while-applying"), 60)
    finally:
        client.before_applying = None
    assert len(client.applied_edits) == sent + 1
    answer = plain(answer)
    assert answer["applied"] is True and "message" not in answer, answer
    await asyncio.sleep(0.2)
    assert not [m for m in client.messages[seen:] if "nothing was changed" in m.message]


# ---- clients of another kind, and the end of the connection: a server of their own ------------------------------

def utf8_client_config() -> ClientServerConfig:
    return ClientServerConfig(server_command=SERVER_COMMAND, client_factory=adversarial_client)


async def test_a_client_that_speaks_utf8_and_cannot_apply_edits():
    # Neovim offers utf-8 first, and pygls takes the client's first choice. No workspace/applyEdit: the edits come
    # back in the answer instead of a request the client cannot take (which failed the command).
    client = await utf8_client_config().start()
    try:
        result = await client.initialize_session(types.InitializeParams(
            capabilities=types.ClientCapabilities(general=types.GeneralClientCapabilities(
                position_encodings=[types.PositionEncodingKind.Utf8])),
            initialization_options={"diffusionInfill": FAST_OPTIONS}))
        assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
        await wait_until(lambda: any(s["state"] == "ready" for s in client.statuses), 180, "the model to load")

        uri = "file:///tmp/adversarial/utf8.txt"
        open_document(client, uri, "s = 'é😋' + \n", language_id="plaintext")
        change(client, uri, 2, (0, 15, 0, 15, "x"))            # after "s = 'é😋' + ": é is 2 bytes, 😋 is 4
        answer = await inline_at(client, uri, 0, 16, INVOKED)
        assert answer.items and all(i.range.start == types.Position(0, 16) for i in answer.items)
        seen = len(client.messages)
        assert not (await inline_at(client, uri, 0, 9, INVOKED)).items   # inside the emoji's four bytes
        await wait_for_message(client, seen, "inside a character")

        uri = "file:///tmp/adversarial/utf8.py"
        open_document(client, uri, DOCSTRING.replace("values given", "valués given"))   # é: two units
        answer = await execute(client, "infill.rewriteSelection", {"uri": uri, "range": IN_DOCSTRING})
        assert answer["applied"] is False and "workspace/applyEdit" in answer["message"]
        assert answer["edits"] and client.applied_edits == []
        assert answer["range"] == IN_DOCSTRING
        await asyncio.wait_for(client.shutdown_session(), 60)
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()
        await client.stop()


@pytest.mark.parametrize("ending", ["shutdown", "exit", "end of input"])
async def test_the_connection_ends_while_the_model_works(ending: str, capfd):
    """Before: shutdown failed ("dictionary changed size during iteration") with a command running; exit alone or
    the editor going away wrote tracebacks on stderr and aborted the process ("terminate called without an active
    exception") with the worker still inside torch."""
    async with server_of_its_own() as client:
        server = client._server
        await initialize(client, {"diffusionInfill": {**FAST_OPTIONS, "steps": 256, "maxNewTokens": 512}})
        await wait_for_model(client)
        uri = "file:///tmp/adversarial/long.py"
        open_document(client, uri, "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(40)))
        selection = {"start": {"line": 0, "character": 0}, "end": {"line": 100, "character": 0}}
        command = asyncio.ensure_future(execute(client, "infill.rewriteSelection", {"uri": uri, "range": selection}))
        inline = asyncio.ensure_future(inline_at(client, uri, 1, 11, INVOKED))
        await wait_until_busy(client)
        if ending == "shutdown":
            await asyncio.wait_for(client.shutdown_async(None), 30)   # answered, not an internal error
            client.exit(None)
        elif ending == "exit":
            client.exit(None)
        else:
            server.stdin.close()
        await asyncio.wait_for(server.wait(), 30)   # gone, not held by the running denoising
        for request in (command, inline):   # answered (cancelled, or empty), or never after exit
            if not request.done():
                request.cancel()
        await asyncio.gather(command, inline, return_exceptions=True)
    # Not killed by a signal (an abort is -6). LSP: 1 for an exit with no shutdown before it (over stdio it was 0:
    # pygls's loop swallowed the SystemExit that carried it).
    assert server.returncode == {"shutdown": 0, "exit": 1, "end of input": 0}[ending]
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr and "terminate called" not in stderr, stderr[-2000:]


@pytest.mark.parametrize("ending", ["exit", "end of input"])
async def test_the_connection_ends_while_the_model_loads(ending: str, capfd):
    """The task waiting for the load was cancelled as the loop closed, and asyncio wrote its traceback on stderr
    (the editor's server log)."""
    async with server_of_its_own() as client:
        server = client._server
        await initialize(client, {"diffusionInfill": FAST_OPTIONS})
        if (await execute(client, "infill.status"))["state"] != "loading":
            pytest.skip("the model loaded before the connection could end")
        if ending == "exit":
            client.exit(None)
        else:
            server.stdin.close()
        await asyncio.wait_for(server.wait(), 30)
    assert server.returncode == (1 if ending == "exit" else 0)
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr[-2000:]


async def test_the_connection_ends_while_the_server_waits_for_the_client_to_take_the_progress_token(capfd):
    """The load waits (a few seconds at most) for the client's answer to window/workDoneProgress/create: a
    connection that ended meanwhile cancelled that wait, and asyncio wrote a CancelledError traceback on stderr."""
    asked = asyncio.Event()

    async def never_take_the_token(params: types.WorkDoneProgressCreateParams) -> None:
        asked.set()
        await asyncio.Event().wait()

    async with server_of_its_own() as client:
        server = client._server
        client.protocol.fm.features[types.WINDOW_WORK_DONE_PROGRESS_CREATE] = never_take_the_token
        await initialize(client, {"diffusionInfill": FAST_OPTIONS})
        await asyncio.wait_for(asked.wait(), 30)
        server.stdin.close()
        await asyncio.wait_for(server.wait(), 30)
    assert server.returncode == 0
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr[-2000:]


async def test_a_second_initialize_and_a_request_after_shutdown_are_refused_as_invalid():
    """LSP allows one initialize, and answers requests after shutdown with InvalidRequest. A second initialize made
    pygls build a new workspace (every open document was then unknown); a request after shutdown was dropped
    without an answer, and the client waited for ever."""
    async with server_of_its_own() as client:
        server = client._server
        await initialize(client, {"diffusionInfill": FAST_OPTIONS})
        await wait_for_model(client)
        uri = "file:///tmp/adversarial/initialized_twice.txt"
        open_document(client, uri, LAST_LINE + "\n", language_id="plaintext")
        with pytest.raises(JsonRpcException) as refused:
            await asyncio.wait_for(client.protocol.send_request_async(types.INITIALIZE, types.InitializeParams(
                capabilities=client_capabilities("visual-studio-code"))), 30)
        assert refused.value.code == INVALID_REQUEST and "only once" in str(refused.value)
        assert (await inline_at(client, uri, 0, len(LAST_LINE), INVOKED)).items   # the document is still known
        await asyncio.wait_for(client.shutdown_async(None), 30)
        with pytest.raises(JsonRpcException) as refused:
            await asyncio.wait_for(client.protocol.send_request_async(types.WORKSPACE_EXECUTE_COMMAND,
                                   types.ExecuteCommandParams(command="infill.status", arguments=[])), 30)
        assert refused.value.code == INVALID_REQUEST and "after shutdown" in str(refused.value)
        client.exit(None)
        await asyncio.wait_for(server.wait(), 30)
    assert server.returncode == 0


async def test_answered_cancels_and_refused_requests_write_no_warning(capfd):
    """While typing, an answer from the cache often goes out before the editor's $/cancelRequest for it arrives:
    pygls wrote "WARNING Cancel notification for unknown message id" into the editor's server log each time. A
    request refused as the client's mistake (InvalidParams) was logged at ERROR with a traceback."""
    client = await config().start()
    try:
        await initialize(client, {"diffusionInfill": FAST_OPTIONS})
        status = await execute(client, "infill.status")
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=1))   # a request answered already
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=10_000))
        assert (await execute(client, "infill.status"))["state"] in ("loading", "ready", status["state"])
        whole_line = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
        for arguments in (["file:///tmp/adversarial/never_opened.py", whole_line], [42]):
            with pytest.raises(JsonRpcException) as refused:
                await execute(client, "infill.fillSelection", *arguments)
            assert refused.value.code == INVALID_PARAMS, refused.value
        await asyncio.wait_for(client.shutdown_async(None), 30)
        client.exit(None)
        await asyncio.wait_for(client._server.wait(), 30)
    finally:
        await client.stop()
    stderr = capfd.readouterr().err
    assert "Cancel notification" not in stderr and "WARNING" not in stderr, stderr[-2000:]
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr[-2000:]


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def frames_of(stream) -> "queue.Queue[dict | None]":
    """The LSP messages the server writes to `stream`, parsed by a reader thread (None once it closes)."""
    messages: queue.Queue = queue.Queue()

    def read() -> None:
        while header := stream.readline():
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
                while stream.readline().strip():
                    pass
                messages.put(json.loads(stream.read(length)))
        messages.put(None)

    threading.Thread(target=read, daemon=True).start()
    return messages


def wait_for_frame(messages, until, timeout: float = 120) -> dict:
    """The first message from `messages` that satisfies `until`; fails after `timeout` seconds or at the end."""
    seen, deadline = [], time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = messages.get(timeout=left)
        except queue.Empty:
            break
        if message is None:
            break
        if until(message):
            return message
        seen.append(message.get("method", message.get("id")))
    raise AssertionError(f"no such message from the server; it sent {seen}")


async def test_a_message_that_is_not_utf8_is_reported_in_words_and_a_reopen_completes():
    """LSP is UTF-8; an editor sending a buffer's raw bytes (a Latin-1 file) breaks that. The message cannot be
    decoded, so the document is not opened: the user is told why in words, the server keeps serving, and the
    same file reopened as UTF-8 completes."""
    server = subprocess.Popen(SERVER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    try:
        def send(message: dict | bytes) -> None:
            server.stdin.write(frame(message if isinstance(message, bytes) else json.dumps(message).encode()))
            server.stdin.flush()

        uri = "file:///tmp/adversarial/latin1.py"
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": FAST_OPTIONS}})
        messages = frames_of(server.stdout)
        wait_for_frame(messages, lambda m: m.get("id") == 1)
        send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        send(b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "' +
             uri.encode() + b'", "languageId": "python", "version": 1, "text": "s = \'caf\xe9\'\\nx = "}}}')
        shown = wait_for_frame(messages, lambda m: m.get("method") == "window/showMessage"
                               and "not valid UTF-8" in m["params"]["message"], timeout=60)
        assert "reopen" in shown["params"]["message"] and shown["params"]["type"] == types.MessageType.Error

        send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": "s = 'caf\u00e9'\nx = "}}})
        send({"jsonrpc": "2.0", "id": 2, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}, "context": {"triggerKind": 1}}})
        answer = wait_for_frame(messages, lambda m: m.get("id") == 2)
        assert "result" in answer and "items" in answer["result"]   # answered, not an error
        send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
        wait_for_frame(messages, lambda m: m.get("id") == 3)
        send({"jsonrpc": "2.0", "method": "exit"})
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
