"""The pygls server: thin handlers that turn LSP requests into InfillRequests and InfillResults into LSP answers.

The server only ever proposes text (inline items, workspace/applyEdit); on any problem it answers empty and says
why with window/showMessage, so the user's text is never touched by a failure.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from infill import InfillRequest, InfillResult

from . import __version__
from .config import SECTION, ServerOptions, parse_options
from .model_host import ModelHost
from .positions import Snapshot

FILL_SELECTION = "infill.fillSelection"
REWRITE_SELECTION = "infill.rewriteSelection"
LOAD_WAIT_S = 30.0   # longest a request waits for the model to finish loading before answering empty

log = logging.getLogger("infill-lsp")


class InfillServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("diffusion-infill", __version__)
        self.options = ServerOptions()
        self.option_warnings: list[str] = []   # from the command line, shown once the client is initialized
        self.host = ModelHost()
        self._shown: set[str] = set()

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning, once: bool = False) -> None:
        """window/showMessage (and the log); `once` for messages that would otherwise repeat on every keystroke."""
        if once:
            if message in self._shown:
                return
            if len(self._shown) > 1000:  # a long session with many distinct messages: forget the old ones
                self._shown.clear()
            self._shown.add(message)
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.INFO, message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Diffusion Infill: {message}"))


server = InfillServer()


# ---- lifecycle and options ----------------------------------------------------------------------------------------

@server.feature(types.INITIALIZE)
def on_initialize(ls: InfillServer, params: types.InitializeParams) -> None:
    # The command line set ls.options already; the editor's initializationOptions refine them.
    ls.options, warnings = parse_options(params.initialization_options, base=ls.options)
    ls.option_warnings += warnings


@server.feature(types.INITIALIZED)
async def on_initialized(ls: InfillServer, params: types.InitializedParams) -> None:
    for warning in ls.option_warnings:
        ls.tell(warning)
    ls.option_warnings.clear()
    await load_model(ls)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration(ls: InfillServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if not (isinstance(settings, dict) and SECTION in settings):
        # Pull model: the notification carries nothing useful, so ask for our section if the client allows it.
        workspace = ls.client_capabilities.workspace
        if not (workspace and workspace.configuration):
            return
        try:
            settings = (await ls.workspace_configuration_async(types.ConfigurationParams(
                items=[types.ConfigurationItem(section=SECTION)])))[0]
        except Exception as exc:
            log.warning("workspace/configuration failed: %s", exc)
            return
    previous = ls.options
    ls.options, warnings = parse_options(settings, base=previous)
    for warning in warnings:
        ls.tell(warning)
    if ls.options.model_key() != previous.model_key():
        await load_model(ls)


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: InfillServer, params: None) -> None:
    ls.host.close()  # stop running denoising at its next step so the process can exit promptly


async def load_model(ls: InfillServer) -> None:
    """Load the engine in the background, with $/progress when the client supports it."""
    token = str(uuid.uuid4())
    window = ls.client_capabilities.window
    progress = bool(window and window.work_done_progress)
    if progress:
        try:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title="Diffusion Infill", message="loading the model", cancellable=False))
        except Exception as exc:  # a client that refuses progress still gets its completions
            log.warning("no progress reporting: %s", exc)
            progress = False
    await asyncio.wrap_future(ls.host.load(ls.options.engine_config()))
    if ls.host.error:
        ls.tell(ls.host.error, types.MessageType.Error)
        done = "the model failed to load"
    else:
        info = ls.host.engine.describe()
        done = f"model ready on {info.get('device')} ({info.get('parameters', 0) / 1e6:.1f}M parameters)"
        ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info,
                                                     message=f"Diffusion Infill: {done}: {info}"))
    if progress:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=done))


# ---- documents and requests ---------------------------------------------------------------------------------------

@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: InfillServer, params: types.DidChangeTextDocumentParams) -> None:
    # A suggestion still being generated for the old text would be thrown away: stop spending the CPU on it.
    ls.host.cancel(document_key(params.text_document.uri))


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: InfillServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.host.cancel(document_key(params.text_document.uri))


def document_key(uri: str) -> str:
    """pygls files documents under the unquoted uri; so do we, so that %-escaped variants are one document."""
    return unquote(uri)


def snapshot(ls: InfillServer, uri: str) -> Snapshot:
    """The document as it is now; unknown documents are the client's mistake, answered with InvalidParams."""
    document = ls.workspace.text_documents.get(document_key(uri))
    if document is None:
        raise JsonRpcInvalidParams(f"unknown document {uri}: send textDocument/didOpen first")
    return Snapshot.of(document)


def is_current(ls: InfillServer, snap: Snapshot) -> bool:
    document = ls.workspace.text_documents.get(document_key(snap.uri))
    return document is not None and document.version == snap.version and document.source == snap.source


def request_for(ls: InfillServer, snap: Snapshot, mode: str, start: int, end: int,
                instruction: str | None = None) -> InfillRequest:
    return InfillRequest(text=snap.source, mode=mode, start=start, end=end, language_id=snap.language_id,
                         path=snap.path, instruction=instruction, max_new_tokens=ls.options.maxNewTokens)


async def infill(ls: InfillServer, request: InfillRequest, key: str | None) -> InfillResult:
    """Run one request on the model worker; with a key, a newer request under the same key cancels this one."""
    token = ls.host.new_token(key)
    try:
        if not await ls.host.wait_ready(LOAD_WAIT_S):
            return InfillResult("", request.start, request.end, "the model is still loading; try again shortly")
        return await ls.host.run(request, token)
    finally:
        if key is not None:
            ls.host.release(key, token)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: InfillServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    nothing = types.InlineCompletionList(items=[])
    snap = snapshot(ls, params.text_document.uri)
    offset = snap.offset_of(params.position)
    if offset is None:
        ls.tell(f"position {params.position.line}:{params.position.character} is outside "
                f"{params.text_document.uri}", once=True)
        return nothing
    result = await infill(ls, request_for(ls, snap, "inline", offset, offset), key=document_key(snap.uri))
    if result.message:
        ls.tell(result.message, once=True)
    if not result.text or not is_current(ls, snap):
        return nothing  # nothing to offer, or the user typed meanwhile and the offsets no longer match
    return types.InlineCompletionList(items=[types.InlineCompletionItem(
        insert_text=result.text, range=snap.range_of(result.start, result.end))])


def command_arguments(args: tuple) -> tuple[str, types.Range, str | None]:
    """Accept one object {uri, range, instruction?} or positional [uri, range, instruction?]."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])  # some clients wrap the positional arguments once more
    if len(args) == 1 and isinstance(args[0], dict):
        uri, raw_range, instruction = args[0].get("uri"), args[0].get("range"), args[0].get("instruction")
    elif len(args) in (2, 3):
        uri, raw_range = args[0], args[1]
        instruction = args[2] if len(args) == 3 else None
    else:
        raise JsonRpcInvalidParams("expected arguments {uri, range, instruction?} or [uri, range, instruction?]")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("the command's uri must be a string")
    try:
        if isinstance(raw_range, dict):
            raw_range = types.Range(start=types.Position(**raw_range["start"]),
                                    end=types.Position(**raw_range["end"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(f"the command's range is not an LSP Range: {exc}") from None
    if not isinstance(raw_range, types.Range):
        raise JsonRpcInvalidParams("the command's range is not an LSP Range")
    if instruction is not None and not isinstance(instruction, str):
        raise JsonRpcInvalidParams("the command's instruction must be a string")
    return uri, raw_range, instruction


def range_json(rng: types.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


async def edit_selection(ls: InfillServer, mode: str, args: tuple) -> dict:
    uri, selection, instruction = command_arguments(args)
    snap = snapshot(ls, uri)
    start, end = snap.offset_of(selection.start), snap.offset_of(selection.end)
    if start is None or end is None or start > end:
        message = f"the selection {range_json(selection)} is outside {uri}"
        ls.tell(message)
        return {"applied": False, "message": message}
    request = request_for(ls, snap, mode, start, end, instruction)
    # {uri, range, options: {tabSize, insertSpaces}}: the editor's formatting options, when it sends them.
    formatting = args[0].get("options") if len(args) == 1 and isinstance(args[0], dict) else None
    if isinstance(formatting, dict):
        tab_size, insert_spaces = formatting.get("tabSize"), formatting.get("insertSpaces")
        request.tab_size = tab_size if isinstance(tab_size, int) and not isinstance(tab_size, bool) else None
        request.insert_spaces = insert_spaces if isinstance(insert_spaces, bool) else None
    result = await infill(ls, request, key=None)
    if not result.text:
        message = result.message or "the model had nothing to offer for this selection"
        ls.tell(message)
        return {"applied": False, "message": message}
    if result.message:
        ls.tell(result.message, once=True)
    edit_range = snap.range_of(result.start, result.end)
    if not result.edits:
        message = "the model wrote the selection as it already is: nothing to change"
        ls.tell(message, types.MessageType.Info)
        return {"applied": False, "message": message, "text": result.text, "range": range_json(edit_range),
                "edits": []}
    # Only what changed (a few words or lines), so undo and the editor's highlights cover just that. Versioned
    # when we know the version: if the user typed meanwhile, the client refuses the edit instead of clobbering
    # their text.
    text_edits = [types.TextEdit(range=snap.range_of(edit_start, edit_end), new_text=new_text)
                  for edit_start, edit_end, new_text in result.edits]
    edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=snap.version),
        edits=text_edits)])
    label = "Diffusion Infill: fill selection" if mode == "fill" else "Diffusion Infill: rewrite selection"
    response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    applied = bool(response and response.applied)
    answer = {"applied": applied, "text": result.text, "range": range_json(edit_range),
              "edits": [{"range": range_json(e.range), "newText": e.new_text} for e in text_edits],
              "details": jsonable(result.details)}
    if not applied:
        answer["message"] = (response and response.failure_reason) or "the editor did not apply the edit"
    return answer


def jsonable(value):
    """Details without anything the JSON encoder would choke on (timings are floats, layouts strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return str(value)


@server.command(FILL_SELECTION)
async def fill_selection(ls: InfillServer, *args) -> dict:
    return await edit_selection(ls, "fill", args)


@server.command(REWRITE_SELECTION)
async def rewrite_selection(ls: InfillServer, *args) -> dict:
    return await edit_selection(ls, "rewrite", args)
