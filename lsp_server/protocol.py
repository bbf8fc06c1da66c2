"""pygls' LSP protocol with the built-in behaviours replaced that lost text, hung or failed on bad input.

- textDocument/didChange: pygls applies incremental changes on str.splitlines() lines (so a form feed, U+2028 or
  U+0085 starts a new line the editor does not have) and moves a character past the end of a last line without a
  newline back by one; either way its copy of the document silently differs from the editor's, and every later
  offset and edit is computed against the wrong text. Here changes follow the LSP rules (lines end at \\n, \\r\\n or
  \\r; a position past a line's end is that line's end) and a change for a document that is not open is ignored
  instead of failing with a KeyError the user sees as "Error in server".
  The cells of a notebook (notebookDocument/didChange) get the same rules.
- workspace/applyEdit answers are read as plain JSON: pygls drops an answer that does not match the schema (a
  client answering null), which leaves the server waiting forever and the command with it.
- shutdown: pygls cancels the requests still running while iterating over the dict those cancellations change
  ("dictionary changed size during iteration" when a command is still running), so shutdown itself failed.
- $/cancelRequest for a command: pygls cancels only its own wrapper around the command's handler, which ran on and
  still proposed its edit after the user pressed Cancel. A command handler inside `cancellable_command()` is
  cancelled with it, until its edit has gone out (`command_past_cancel()`): then it answers what became of it.
- a request whose parameters do not match the LSP schema: pygls could not read its id, so it never answered it
  (the client waited forever) and showed "Error in server: Invalid Params". It now gets an InvalidParams error
  naming what was wrong; a notification like that is reported with the same detail.
- a request's handler may first run after later messages were handled (over TCP pygls reads every buffered
  message before the loop turns), so an edit sent just after a request would have moved it onto text its
  positions do not refer to. The open documents as they were when each request arrived are kept for its handler
  (`documents_at_request`).
- a notification before initialize: pygls ran its handler, which read a workspace not made yet ("Error in
  server: AttributeError" shown to the user). It is dropped, as LSP says.
- a request refused with InvalidParams (the client's mistake): pygls logged it at ERROR with a traceback; it is
  one line at INFO.
- exit: pygls closes stdout and leaves the running requests to be answered onto the closed stream (a traceback per
  request on stderr). After exit nothing more is written.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from urllib.parse import unquote

import attrs
from cattrs import transform_error
from lsprotocol import types
from pygls.exceptions import (JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest,
                              JsonRpcServerNotInitialized)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCRequest
from pygls.protocol.language_server import lsp_method
from pygls.workspace import PositionCodec

from .positions import HALF_PAIR, clamped_offset_and_split, encoding_of, spliced_in_utf16_units

logger = logging.getLogger(__name__)


def document_key(uri: str) -> str:
    """pygls files documents under the unquoted uri; so do we, so that %-escaped variants are one document."""
    return unquote(uri)


def apply_change(source: str, change: types.TextDocumentContentChangeEvent, codec: PositionCodec) -> str:
    """The document after one content change, as the LSP specification defines it."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return change.text   # the whole document
    start, start_split = clamped_offset_and_split(source, change.range.start, codec)
    end, end_split = clamped_offset_and_split(source, change.range.end, codec)
    if end < start:  # a reversed range still names the same span
        start, end = end, start
    # A UTF-16 editor edits code units: a change that splits a pair, brings a half or lets two halves meet is
    # applied on them (spliced_in_utf16_units); any other is the same on characters, and cheaper.
    if encoding_of(codec) == "utf-16-le" and (
            start_split or end_split or (not change.text.isascii() and HALF_PAIR.search(change.text))
            or (start > 0 and HALF_PAIR.match(source, start - 1)) or HALF_PAIR.match(source, end)):
        first, last = change.range.start, change.range.end
        if (last.line, last.character) < (first.line, first.character):
            first, last = last, first
        return spliced_in_utf16_units(source, first, last, change.text, codec)
    return source[:start] + change.text + source[end:]


# uri -> pygls TextDocument, as the documents were when the request being handled arrived (None outside one).
# Documents are replaced, never changed in place, on each edit (see didChange below), so a copy of the dict is a
# snapshot; the handler's task inherits the value set just before pygls creates it.
documents_at_request: contextvars.ContextVar[dict | None] = contextvars.ContextVar("documents_at_request",
                                                                                     default=None)


class InfillProtocol(LanguageServerProtocol):
    exited = False
    exit_code = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The documents whose latest change left their text as it was (a formatter replacing a range with the same
        # text, a version bump with no changes): the model's work on that text still holds. (A set: a notebook's
        # change applies to all its cells before the handler sees each.)
        self.text_kept_by_last_change: set[str] = set()
        self._command_tasks: dict = {}   # request id -> the running command handler's task (None: past cancel)

    @contextlib.contextmanager
    def cancellable_command(self):
        """Within a command handler: $/cancelRequest for its request cancels the handler's task too."""
        msg_id, task = self.msg_id, asyncio.current_task()
        self._command_tasks[msg_id] = task
        try:
            yield
        finally:
            self._command_tasks.pop(msg_id, None)

    def command_past_cancel(self) -> None:
        """Within `cancellable_command()`: from here on $/cancelRequest no longer stops the handler. Called just
        before the command's edit goes out: the editor may apply it whatever we do next, so the command must live
        to answer what happened to it (cancelled, the answer said "nothing was changed" over an applied edit)."""
        task = asyncio.current_task()
        for msg_id, running in self._command_tasks.items():
            if running is task:
                self._command_tasks[msg_id] = None   # (kept: pygls must not cancel it either)

    def _handle_request(self, msg_id, method_name, params) -> None:
        if self._workspace is None and method_name != types.INITIALIZE:
            # LSP's answer to a request before initialize (the handlers read the workspace, and raised an internal
            # error that the editor showed the user).
            error = JsonRpcServerNotInitialized(f"{method_name} before initialize")
            self._send_response(msg_id, None, error.to_response_error())
            return
        if self._workspace is not None and method_name == types.INITIALIZE:
            # LSP allows one initialize; pygls built a new workspace for a second one, and every open document
            # was then unknown to the server until the editor opened it again.
            error = JsonRpcInvalidRequest("initialize may be sent only once: this session is initialized already")
            self._send_response(msg_id, None, error.to_response_error())
            return
        # The handler's task copies the context as pygls creates it, below; then the reader's own context goes
        # back to no copy, or every notification after a request would read the documents as that request saw them.
        token = documents_at_request.set(
            dict(self._workspace.text_documents) if self._workspace is not None else None)
        try:
            super()._handle_request(msg_id, method_name, params)
        finally:
            documents_at_request.reset(token)

    def _handle_notification(self, method_name, params) -> None:
        if self._workspace is None and method_name != types.EXIT:
            # Before initialize the handlers have no workspace or client capabilities to read: each raised, and the
            # user saw "Error in server: AttributeError". LSP says to drop such notifications.
            logger.warning("ignored %s before initialize", method_name)
            return
        super()._handle_notification(method_name, params)

    def _handle_cancel_notification(self, msg_id) -> None:
        if msg_id in self._command_tasks and self._command_tasks[msg_id] is None:
            return   # past its point of no return (command_past_cancel): it answers what became of its edit
        task = self._command_tasks.pop(msg_id, None)
        if msg_id not in self._request_futures:
            # Answered already (from the cache, or a suggestion typed through) before the editor's cancel came: a
            # race of every typing session, which pygls logged as a warning per keystroke into the editor's log.
            logger.debug("cancel for %s, answered already", msg_id)
        else:
            super()._handle_cancel_notification(msg_id)
        if task is not None:
            task.cancel()

    def apply_changes(self, document_id: types.VersionedTextDocumentIdentifier,
                      changes: list[types.TextDocumentContentChangeEvent], notebook_uri: str | None = None) -> None:
        """A document's content changes, as LSP defines them; a document that is not open is left alone."""
        workspace = self.workspace
        key = document_key(document_id.uri)
        document = workspace.text_documents.get(key)
        self.text_kept_by_last_change.discard(key)
        if document is None:
            return
        source = document.source
        for change in changes:
            source = apply_change(source, change, document.position_codec)
        if source == document.source:
            self.text_kept_by_last_change.add(key)
        # A fresh TextDocument through pygls' public API: snapshots taken earlier keep the old text.
        workspace.put_text_document(types.TextDocumentItem(
            uri=document.uri, language_id=document.language_id or "", version=document_id.version, text=source),
            notebook_uri=notebook_uri)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        self.apply_changes(params.text_document, params.content_changes)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None   # the server's own handler (it tells the user about an unknown uri)

    @lsp_method(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def lsp_notebook_document__did_change(self, params: types.DidChangeNotebookDocumentParams):
        # pygls changes its cells' text in place, by its own line rules (see didChange above), and fails with a
        # KeyError on a notebook that is not open. Its structure and metadata handling is kept; the cells' text
        # changes are applied here.
        workspace, uri = self.workspace, params.notebook_document.uri
        if workspace.get_notebook_document(notebook_uri=uri) is not None:
            cells = params.change.cells
            texts = (cells.text_content if cells is not None else None) or []
            structure = params if not texts else attrs.evolve(params, change=attrs.evolve(
                params.change, cells=attrs.evolve(cells, text_content=None)))
            # pygls opens a change's new cells before it closes its closed ones: a cell closed and opened again in
            # one change (a client changing its language) would be lost, so it is closed here first.
            shape = cells.structure if cells is not None else None
            reopened = {cell.uri for cell in shape.did_open or []} & {cell.uri for cell in shape.did_close or []} \
                if shape is not None else set()
            if reopened:
                for cell_uri in reopened:
                    workspace.remove_text_document(cell_uri)
                kept = [cell for cell in shape.did_close if cell.uri not in reopened]
                structure = attrs.evolve(structure, change=attrs.evolve(structure.change, cells=attrs.evolve(
                    structure.change.cells, structure=attrs.evolve(shape, did_close=kept))))
            workspace.update_notebook_document(structure)
            for text in texts:
                self.apply_changes(text.document, text.changes, notebook_uri=uri)
        if (handler := self.fm.features.get(types.NOTEBOOK_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None   # the server's own handler (typing rhythm, stale jobs)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args):
        if (handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield handler, args, None
        current_id = self.msg_id
        # A copy: cancelling a request's future runs its callback at once, which removes it from the dict.
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True
        return None

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        self.exited = True
        self.exit_code = 0 if self._shutdown else 1   # LSP: 1 for an `exit` with no `shutdown` before it
        yield from super().lsp_exit(*args)

    def _send_data(self, data) -> None:
        if not self.exited:   # the client stopped listening: answers to requests still running go nowhere
            super()._send_data(data)

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if not (isinstance(data, dict) and isinstance(data.get("method"), str)):
                raise   # a response or something that is not JSON-RPC at all: pygls reports it
            problem = f"{data['method']}: the parameters do not fit the LSP schema ({unreadable(error)})"
            if "id" not in data:
                raise JsonRpcInvalidParams(f"ignored {problem}") from None   # shown to the user by pygls
            self._send_response(data["id"], error=JsonRpcInvalidParams(problem).to_response_error())
            return UNREADABLE

    def handle_message(self, message) -> None:
        if message is UNREADABLE:   # already answered
            return
        if self._shutdown and isinstance(message, RPCRequest) and message.method != types.EXIT:
            # LSP: a request after shutdown is answered InvalidRequest (pygls dropped it: the client waited forever)
            error = JsonRpcInvalidRequest(f"{message.method} after shutdown: the server is shutting down")
            self._send_response(message.id, None, error.to_response_error())
            return
        super().handle_message(message)

    def _send_handler_result(self, future, *, msg_id) -> None:
        # A refusal of the client's own mistake (an unknown document, a malformed command) is an answer, not a
        # server fault: pygls wrote each one to the editor's log as an ERROR with a traceback.
        if not future.cancelled() and isinstance(future.exception(), JsonRpcInvalidParams):
            self._request_futures.pop(msg_id, None)
            logger.info("refused request %s: %s", msg_id, future.exception())
            self._send_response(msg_id, error=future.exception().to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        # pygls files the future of every notification handler (and of each step of its own generator handlers)
        # under a fresh id and removes only requests' futures once answered: each keystroke's didChange stayed
        # in memory for good (about 2.6 MB per 1,000 keystrokes). A finished one goes now.
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda done: self._forget_future(msg_id, done))

    def _forget_future(self, msg_id, done) -> None:
        if self._request_futures.get(msg_id) is done:   # (not a later request that reused the id)
            self._request_futures.pop(msg_id, None)

    def get_result_type(self, method: str):
        if method in (types.WORKSPACE_APPLY_EDIT, types.WORKSPACE_CONFIGURATION):
            # Read as plain JSON and checked by the server (read_apply_edit_answer, on_configuration): a null or
            # an object where the spec says array failed in pygls, which showed "Invalid Params" to the user.
            return None
        return super().get_result_type(method)


UNREADABLE = object()   # a request answered with InvalidParams while it was read


def unreadable(error: Exception) -> str:
    """Where the parameters went wrong, as cattrs says it ("invalid value @ $.params.position")."""
    cause = error.__cause__
    try:
        return "; ".join(transform_error(cause)) if cause is not None else str(error)
    except Exception:
        return str(cause)
