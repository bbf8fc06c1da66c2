"""The pygls server: thin handlers that turn LSP requests into InfillRequests and InfillResults into LSP answers."""
from __future__ import annotations

import asyncio
import logging
import uuid

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from infill import InfillRequest, InfillResult

from . import __version__
from .config import SECTION, ServerOptions, parse_options
from .model_host import ModelHost
from .positions import offset_of, range_of

FILL_SELECTION = "infill.fillSelection"
REWRITE_SELECTION = "infill.rewriteSelection"
REQUEST_WAIT_S = 30.0   # longest a request waits behind model loading before answering empty

log = logging.getLogger("infill-lsp")


class InfillServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("diffusion-infill", __version__)
        self.options = ServerOptions()
        self.host = ModelHost()
        self.option_warnings: list[str] = []
        self.shown: set[str] = set()

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning, once: bool = False) -> None:
        """window/showMessage (and the log); `once` for messages that would repeat on every keystroke."""
        if once:
            if message in self.shown:
                return
            self.shown.add(message)
        log.info(message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Diffusion Infill: {message}"))


server = InfillServer()


def known_document(ls: InfillServer, uri: str) -> TextDocument:
    if uri not in ls.workspace.text_documents:
        raise JsonRpcInvalidParams(f"unknown document {uri}: open it (textDocument/didOpen) first")
    return ls.workspace.get_text_document(uri)


async def start_loading(ls: InfillServer) -> None:
    """Load the model once, in the background, with $/progress when the client supports it."""
    token = str(uuid.uuid4())
    progress = bool(ls.client_capabilities.window and ls.client_capabilities.window.work_done_progress)
    if progress:
        try:
            await ls.work_done_progress.create_async(token)
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title="Diffusion Infill", message="loading the model", cancellable=False))
        except Exception:  # a client that refuses progress still gets its completions
            progress = False
    await asyncio.wrap_future(ls.host.load(ls.options.engine_config()))
    if ls.host.error:
        ls.tell(ls.host.error, types.MessageType.Error)
        done = "the model failed to load"
    else:
        info = ls.host.engine.describe()
        done = f"model ready on {info['device']} ({info['parameters'] / 1e6:.1f}M parameters)"
        log.info("%s: %s", done, info)
    if progress:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=done))


@server.feature(types.INITIALIZE)
def on_initialize(ls: InfillServer, params: types.InitializeParams) -> None:
    # The command line set ls.options already; the editor's initializationOptions refine them.
    ls.options, warnings = parse_options(params.initialization_options, base=ls.options)
    ls.option_warnings += warnings


@server.feature(types.INITIALIZED)
async def on_initialized(ls: InfillServer, params: types.InitializedParams) -> None:
    for warning in ls.option_warnings:
        ls.tell(warning)
    await start_loading(ls)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration(ls: InfillServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and SECTION not in settings:
        return  # another extension's settings, or a pull-model notification without content
    previous = ls.options
    ls.options, warnings = parse_options(settings, base=previous)
    for warning in warnings:
        ls.tell(warning)
    if ls.options.model_key() != previous.model_key():
        await start_loading(ls)


async def infill(ls: InfillServer, request: InfillRequest, key: str | None) -> InfillResult:
    token = ls.host.new_token(key)
    try:
        return await asyncio.wait_for(ls.host.run(request, token), REQUEST_WAIT_S)
    except asyncio.TimeoutError:
        token.cancel()
        return InfillResult("", request.start, request.end, "the model is still loading; try again shortly")


def request_for(document: TextDocument, mode: str, start: int, end: int, ls: InfillServer,
                instruction: str | None = None) -> InfillRequest:
    return InfillRequest(text=document.source, mode=mode, start=start, end=end, language_id=document.language_id,
                         path=document.path, instruction=instruction, max_new_tokens=ls.options.maxNewTokens)


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: InfillServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    document = known_document(ls, params.text_document.uri)
    offset = offset_of(document, params.position)
    if offset is None:
        ls.tell(f"position {params.position.line}:{params.position.character} is outside "
                f"{params.text_document.uri}", once=True)
        return types.InlineCompletionList(items=[])
    result = await infill(ls, request_for(document, "inline", offset, offset, ls), key=params.text_document.uri)
    if result.message:
        ls.tell(result.message, once=True)
    if not result.text:
        return types.InlineCompletionList(items=[])
    return types.InlineCompletionList(items=[types.InlineCompletionItem(
        insert_text=result.text, range=range_of(document, result.start, result.end))])


def command_arguments(args: tuple) -> tuple[str, types.Range, str | None]:
    """Accept {uri, range, instruction?} or [uri, range, instruction?]."""
    if len(args) == 1 and isinstance(args[0], dict):
        raw = args[0]
        uri, rng, instruction = raw.get("uri"), raw.get("range"), raw.get("instruction")
    elif len(args) >= 2:
        uri, rng = args[0], args[1]
        instruction = args[2] if len(args) > 2 else None
    else:
        raise JsonRpcInvalidParams("expected arguments {uri, range, instruction?}")
    try:
        if isinstance(rng, dict):
            rng = types.Range(start=types.Position(**rng["start"]), end=types.Position(**rng["end"]))
        if not isinstance(uri, str) or not isinstance(rng, types.Range):
            raise TypeError("uri must be a string and range an LSP Range")
    except (KeyError, TypeError) as exc:
        raise JsonRpcInvalidParams(f"bad command arguments: {exc}") from exc
    if instruction is not None and not isinstance(instruction, str):
        instruction = None
    return uri, rng, instruction


async def edit_selection(ls: InfillServer, mode: str, args: tuple) -> dict:
    uri, rng, instruction = command_arguments(args)
    document = known_document(ls, uri)
    start, end = offset_of(document, rng.start), offset_of(document, rng.end)
    if start is None or end is None or start > end:
        message = "the selection is outside the document"
        ls.tell(message)
        return {"applied": False, "message": message}
    version = document.version
    result = await infill(ls, request_for(document, mode, start, end, ls, instruction), key=None)
    if not result.text:
        message = result.message or "the model had nothing to offer for this selection"
        ls.tell(message)
        return {"applied": False, "message": message}
    if result.message:
        ls.tell(result.message, once=True)
    edit_range = range_of(document, result.start, result.end)
    # A versioned edit: if the user typed meanwhile, the client refuses it instead of clobbering their text.
    edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=[types.TextEdit(range=edit_range, new_text=result.text)])])
    label = "Fill selection" if mode == "fill" else "Rewrite selection"
    response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
    return {"applied": bool(response and response.applied), "text": result.text,
            "range": {"start": {"line": edit_range.start.line, "character": edit_range.start.character},
                      "end": {"line": edit_range.end.line, "character": edit_range.end.character}},
            "details": _jsonable(result.details)}


def _jsonable(details: dict) -> dict:
    return {k: v for k, v in details.items() if isinstance(v, (str, int, float, bool, dict, list, type(None)))}


@server.command(FILL_SELECTION)
async def fill_selection(ls: InfillServer, *args) -> dict:
    return await edit_selection(ls, "fill", args)


@server.command(REWRITE_SELECTION)
async def rewrite_selection(ls: InfillServer, *args) -> dict:
    return await edit_selection(ls, "rewrite", args)
