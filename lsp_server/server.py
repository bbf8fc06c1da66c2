"""The pygls server: thin handlers that turn LSP requests into InfillRequests and InfillResults into LSP answers.

The server only ever proposes text (inline items, workspace/applyEdit); on any problem it answers empty and says
why with window/showMessage, so the user's text is never touched by a failure.

An inline request is answered, in this order, from the suggestion the user is typing through, from the cache of
recent results, or from the model after an adaptive debounce; the answer is dropped when the document moved on
meanwhile. After an answer the next suggestion is speculated, as if this one were accepted, while the model is idle.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.io_ import run_async
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from infill import ContextMemory, InfillRequest, InfillResult, RelatedDocument
from infill.languages import grammar_for
from infill.notebook import foreign_cell_magic
from infill.related import same_family
from infill.style import indent_unit_of

from . import __version__
from .completion_items import as_completion_item
from .config import CHECKS, RELATED_FILES_MIN_CONTEXT, SECTION, ServerOptions, parse_options
from .debounce import TypingRhythm, debounce_delay
from .model_host import SPECULATION_KEY, Generated, ModelHost
from .notebooks import (NOTEBOOK_SYNC, cell_name, cells_whose_context_changed, head_of, notebook_of,
                        same_notebook)
from .positions import Snapshot
from .protocol import InfillProtocol, document_key, documents_at_request
from .status import ANSWER_SOURCES, Counters, LastAnswer, SuggestionIds, status_object, suggestion_id_of
from .suggestions import (AUTO_CLOSERS, ResultCache, ShownSuggestion, auto_closes, context_key, on_the_cursors_line,
                          reach_for, window)

FILL_SELECTION = "infill.fillSelection"
REWRITE_SELECTION = "infill.rewriteSelection"
STATUS = "infill.status"
ACCEPTED = "infill.accepted"
REJECTED = "infill.rejected"
METRICS = "infill.metrics"
STATUS_NOTIFICATION = "diffusionInfill/status"
ACCEPTED_NOTIFICATION = "diffusionInfill/accepted"
REJECTED_NOTIFICATION = "diffusionInfill/rejected"
DID_SHOW_NOTIFICATION = "diffusionInfill/didShowCompletion"   # {"id"}: an item is on screen (once per id)
PRIME_NEAR_LINES = 3   # an edit this close to the model's latest prompt finds most of it cached already
LOAD_WAIT_S = 30.0   # longest a request waits for the model to finish loading before answering empty
COMPLETION_JOB = "#completion"   # the job key suffix of textDocument/completion requests
COMMAND_JOB = "#command"         # and of the fill / rewrite selection commands
INVOKED_CANDIDATES = 3   # distinct items on an explicit invoke (the editor cycles through them); 1 otherwise
MAX_RELATED_DOCUMENTS = 10   # other open files searched for snippets, the most recently edited first
MAX_CELLS_PER_NOTEBOOK = 10  # of another notebook's cells (the notebook counts as one of those files)

log = logging.getLogger("infill-lsp")


def socket_address_text(address: tuple) -> str:
    """getsockname()'s (host, port[, ...]) as HOST:PORT, an IPv6 host in brackets."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LongLineSkipper:
    """A TCP connection's reader that skips a line too long for asyncio's buffer (64 KiB), as pygls does over stdio:
    asyncio refused it with ValueError, which ended the session with a traceback (a client that sent JSON without
    headers, or a Content-Length too short for a large file, left such a line where a header belongs)."""

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader

    async def readline(self) -> bytes:
        try:
            return await self._reader.readline()
        except ValueError:   # (asyncio has dropped what it held of the line; the rest comes as lines of its own)
            log.warning("skipped a line of more than 64 KiB where a message header belongs")
            return b"(skipped)\r\n"   # neither a header nor the blank line after them: read past

    async def readexactly(self, count: int) -> bytes:
        return await self._reader.readexactly(count)


class InfillServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("diffusion-infill", __version__, protocol_cls=InfillProtocol,
                         notebook_document_sync=NOTEBOOK_SYNC)
        self.options = ServerOptions()
        # The command line's options: what a setting the editor removes (null) or gets wrong goes back to.
        self.startup_options = ServerOptions()
        # With the editor's initializationOptions: what a pulled configuration (the whole section) is read over.
        self.initialized_options = ServerOptions()
        self.option_warnings: list[str] = []   # from the command line, shown once the client is initialized
        self.warned_options: set[str] = set()  # the latest settings' warnings, shown: the same push says them once
        self.client_initialized = False        # settings before `initialized` are taken; it loads the model once
        self.configuration_serial = 0          # pulled configurations so far: the newest one's answer wins
        self.host = ModelHost()
        self._shown: set[str] = set()
        self.counters = Counters()
        self.cache = ResultCache()
        self.ids = SuggestionIds()
        self.rhythms: dict[str, TypingRhythm] = {}               # per document
        self.generations: dict[str, int] = {}                    # per job (jobs_of): the newest request
        self.closings: collections.Counter[str] = collections.Counter()   # per document: times it was closed
        self.selection_commands: collections.Counter[str] = collections.Counter()   # per document: running now
        # Numbers for generations, never reused: a document closed and reopened starts no count of its own that a
        # request from before the close could match.
        self.request_numbers = itertools.count(1)
        self.suggestions: dict[str, ShownSuggestion] = {}        # per document: the last suggestion shown
        self.recent: dict[str, None] = {}                        # documents in the order last edited or asked in
        self.context_memory: dict[str, ContextMemory] = {}       # document -> what its last run chose
        self.speculation: tuple[tuple, asyncio.Future, str] | None = None   # (context key, task, document) in flight
        self.shutdown_asked = asyncio.Event()   # ends waits that would hold a message back past the shutdown
        self.held_reports: set[Callable[[], None]] = set()   # failed loads' messages held back: shutdown says them
        self.last_displayed: str | None = None   # the id an editor last said is on screen (cycling moves it)
        # A number per document object (a new one at each opening, and at each edit: protocol.apply_changes): a
        # document closed and reopened starts again at the client's version 1 (VS Code), perhaps with other text
        # (a checkout meanwhile), so its version alone keys nothing.
        self.document_serials: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.prompt_place: tuple[str, int] | None = None         # (document, line) of the model's latest prompt
        self.last_answer = LastAnswer()
        self.published_state: str | None = None

    def shutdown(self) -> None:
        """The end of the connection, however it ended (shutdown and exit, exit alone, the editor closing our
        stdin): stop the model worker before the interpreter exits, which aborts a thread still inside torch."""
        self.host.close()
        super().shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """pygls's TCP server (the first connection is served, and its end ends the server) that says on stderr where
        it listens once the socket is bound: with port 0 the system picks one, and a script can wait for the line
        instead of retrying to connect."""
        self._stop_event = stop_event = threading.Event()
        served = False
        exit_code = None

        async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            if served:
                # One editor per server: a later connection (a port probe, a second window) would take over the
                # answers, and its end would end the server under the first editor.
                print("infill-lsp: refused a second connection (one editor per server)", file=sys.stderr, flush=True)
                writer.close()
                return
            nonlocal exit_code
            served = True
            self.protocol.set_writer(writer)
            try:
                await run_async(stop_event=stop_event, reader=LongLineSkipper(reader), protocol=self.protocol,
                                logger=log, error_handler=self.report_server_error)
            except SystemExit as end:   # the `exit` notification: pygls calls sys.exit, as over stdio
                exit_code = end.code
            except asyncio.CancelledError:   # Ctrl+C while an editor is connected: the end, not three tracebacks
                pass
            except (ConnectionError, asyncio.IncompleteReadError) as dropped:
                # The editor went away mid-message or reset the connection: the end of the session, as a closed
                # stdin is (asyncio printed it as an unhandled error with a traceback).
                log.info("the client's connection ended: %s", dropped)
            finally:   # stop the model worker first: the interpreter aborts if a thread is still inside torch
                self.shutdown()

        async def listen() -> None:
            self._server = await asyncio.start_server(serve_connection, host, port)
            where = ", ".join(socket_address_text(sock.getsockname()) for sock in self._server.sockets)
            print(f"infill-lsp: listening on {where}", file=sys.stderr, flush=True)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(listen())
        except asyncio.CancelledError:   # shutdown() closed the listening socket
            pass
        finally:   # however the loop ended (Ctrl+C too)
            self.host.close()
        if exit_code:   # LSP: 1 for an `exit` without `shutdown` before it
            raise SystemExit(exit_code)

    def report_server_error(self, error: Exception, source) -> None:
        # pygls drops a message it cannot decode and shows the codec's words; say what that means for the user.
        if isinstance(error, UnicodeDecodeError):
            self.tell("the editor sent a message that is not valid UTF-8 (LSP requires UTF-8), and it was ignored: "
                      "if it opened or changed a document, this server's copy of it is missing or out of date, so "
                      "save the file as UTF-8 and reopen it", types.MessageType.Error, once=True)
            return
        super().report_server_error(error, source)

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning, once: bool | str = False
             ) -> None:
        """window/showMessage (and the log); `once` for messages that would otherwise repeat on every keystroke
        (a string: shown once for that key, whatever the message's details)."""
        if once:
            key = once if isinstance(once, str) else message
            if key in self._shown:
                log.info("%s", message)
                return
            if len(self._shown) > 1000:  # a long session with many distinct messages: forget the old ones
                self._shown.clear()
            self._shown.add(key)
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.INFO, message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"Diffusion Infill: {message}"))

    def forget_shown(self, message: str) -> None:
        """Let a `once` message be shown again."""
        self._shown.discard(message)

    def status(self) -> dict:
        state = self.host.state
        info = self.host.info if state == "ready" else {}
        message = {"loading": "loading the model", "error": self.host.error}.get(state)
        if state == "ready":
            message = f"model ready on {info.get('device')} ({info.get('parameters', 0) / 1e6:.1f}M parameters)"
        return status_object(state, info.get("model") or self.options.model, info.get("device"), message,
                             self.last_answer, self.counters)

    def tell_engine_changes(self) -> None:
        """What the engine changed while serving a request (its compiled step failed on a new shape: the plain
        path serves from then on), said once, and the status published with it."""
        notes = self.host.take_untold_notes()
        for note in notes:
            self.tell(note)
        if notes:
            self.publish_status()

    def publish_status(self, only_if_state_changed: bool = False) -> None:
        status = self.status()
        if only_if_state_changed and status["state"] == self.published_state:
            return
        self.published_state = status["state"]
        self.protocol.notify(STATUS_NOTIFICATION, status)

    def options_key(self) -> tuple:
        options = self.options
        return options.model_key() + options.sampling_key() + (options.maxNewTokens, options.inlineBudgetMs,
                                                               options.relatedFiles)

    def serial_of(self, document) -> int:
        """The number of `document` (a workspace document object: one per opening and edit), for keys."""
        serial = self.document_serials.get(document)
        if serial is None:
            serial = self.document_serials[document] = next(self.request_numbers)
        return serial

    def touch(self, key: str) -> None:
        self.recent.pop(key, None)
        self.recent[key] = None

    def uses_related_files(self) -> bool:
        """auto: only for a model that reads enough context to spare some for other files (the embedded one
        reads 192 tokens: every one of them is better spent on the code around the cursor)."""
        choice = self.options.relatedFiles
        if choice != "auto":
            return choice == "on"
        return (self.host.info.get("max_prompt_tokens") or 0) >= RELATED_FILES_MIN_CONTEXT

    def context_reach(self) -> int:
        """How far from the cursor the loaded model's prompt can read (characters), for cache keys."""
        return reach_for(self.host.info.get("max_prompt_tokens"))

    def inline_budget_ms(self, invoked: bool) -> int | None:
        """Model time for an automatic suggestion; an explicit invoke asks for the best, however long."""
        return None if invoked or not self.options.inlineBudgetMs else self.options.inlineBudgetMs


server = InfillServer()


# ---- lifecycle and options ----------------------------------------------------------------------------------------

@server.feature(types.INITIALIZE)
def on_initialize(ls: InfillServer, params: types.InitializeParams) -> None:
    # The command line set ls.options already; the editor's initializationOptions refine them.
    ls.options, warnings = parse_options(params.initialization_options, base=ls.options,
                                         defaults=ls.startup_options)
    ls.option_warnings += warnings
    ls.initialized_options = ls.options
    root = ls.workspace.root_uri
    if not params.workspace_folders and root:
        # A client that names only a root: it is the first workspace folder, so that removing it, or adding others
        # (workspace/didChangeWorkspaceFolders), changes the projects as it says.
        ls.workspace.add_folder(types.WorkspaceFolder(uri=root, name=os.path.basename(root.rstrip("/")) or root))


@server.feature(types.INITIALIZED)
async def on_initialized(ls: InfillServer, params: types.InitializedParams) -> None:
    ls.client_initialized = True
    for warning in ls.option_warnings:
        ls.tell(warning)
    ls.warned_options = set(ls.option_warnings)
    ls.option_warnings.clear()
    await load_model(ls)


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def on_configuration(ls: InfillServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    # Our section, or its options pushed without the section around them (as initializationOptions may be).
    ours = isinstance(settings, dict) and (SECTION in settings or bool(settings.keys() & CHECKS.keys()))
    previous = base = ls.options   # pushed settings may be only the changed ones
    if not ours:
        ls.configuration_serial += 1
        serial = ls.configuration_serial
        # Pull model: the notification carries nothing useful, so ask for our section if the client allows it.
        workspace = ls.client_capabilities.workspace
        if not (workspace and workspace.configuration):
            return
        try:
            answer = await ls.workspace_configuration_async(types.ConfigurationParams(
                items=[types.ConfigurationItem(section=SECTION)]))
        except Exception as exc:
            ls.tell(f"the editor did not give the settings (workspace/configuration failed: {exc}); the current "
                    "settings stay", once=True)
            return
        # One section, an object (null: no settings at all); another value is not taken as "every setting gone".
        if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], (dict, type(None))):
            ls.tell(f"the editor answered workspace/configuration with {answer!r}, not one section; the current "
                    "settings stay", once=True)
            return
        if serial != ls.configuration_serial:
            return   # a newer pull came while the editor answered: it reads the settings again
        settings, previous = answer[0], ls.options   # (the options may have changed meanwhile)
        # The answer is the whole section: a setting the user deleted is absent, and goes back to what it was
        # before any configuration was read.
        base = ls.initialized_options
    ls.options, warnings = parse_options(settings, base=base, defaults=ls.startup_options)
    if not ls.client_initialized:
        # Between initialize and initialized: `initialized` shows the warnings and loads the model, once.
        ls.option_warnings += [warning for warning in warnings if warning not in ls.option_warnings]
        return
    # Neovim sends its settings as initializationOptions and pushes them again at once: say each problem once,
    # and again only after settings without it.
    for warning in warnings:
        if warning not in ls.warned_options:
            ls.tell(warning)
    ls.warned_options = set(warnings)
    if ls.options.model_key() != previous.model_key():
        await load_model(ls)
        return
    if ls.options.sampling_key() != previous.sampling_key():
        # Steps, seed or prefix reuse: the loaded engine takes them between runs. A reload would read the
        # weights again (and compile the step on a GPU) for a setting that changes neither.
        ls.host.retune(ls.options.engine_config())
    if ls.options.inlineBudgetMs and not previous.inlineBudgetMs:
        ls.host.time_steps()   # the load skipped it without a budget; suggestions plan their steps from it


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: InfillServer, params: None) -> None:
    # Stop running denoising at its next step so the process can exit promptly. Not waiting here: the answer
    # would wait up to 30 s for a model load, which cannot stop half-way; `exit` (InfillServer.shutdown) waits.
    ls.shutdown_asked.set()
    ls.host.close(wait=False)
    # A failed load's message held back is said now, before the answer: a client may exit as soon as it has it.
    for say in list(ls.held_reports):
        say()


STILL_LOADING = "the model is still loading; try again shortly"
LOAD_ERROR_GRACE_S = 1.0   # a failed load is said only if no newer load was asked for within this
PROGRESS_CREATE_TIMEOUT_S = 3.0   # the longest a load's progress waits for the client to take its token


async def client_takes_progress(ls: InfillServer, token: str) -> bool:
    """window/workDoneProgress/create, waited for a bounded time: a client that never answers held back the load's
    outcome (its error, the status). A late answer is left to come: pygls showed the user an error for the answer
    to a request cancelled here."""
    created = asyncio.ensure_future(ls.work_done_progress.create_async(token))
    created.add_done_callback(lambda task: task.cancelled() or task.exception())   # (a late refusal: not an error)
    await asyncio.wait({created}, timeout=PROGRESS_CREATE_TIMEOUT_S)
    if not created.done():
        log.warning("no progress reporting: the client did not take the token within %s s", PROGRESS_CREATE_TIMEOUT_S)
        return False
    if created.cancelled() or created.exception() is not None:   # a client that refuses progress gets completions
        log.warning("no progress reporting: %s", "cancelled" if created.cancelled() else created.exception())
        return False
    return True


async def load_model(ls: InfillServer) -> None:
    """Load the engine in the background, with $/progress when the client supports it."""
    # Queued before anything awaits: a request that arrives while the client answers the progress request below
    # then runs on the new model, not on the old one with the new options (its answer cached for the new model).
    loaded = ls.host.load(ls.options.engine_config(), measure_pace=ls.options.inlineBudgetMs > 0)
    generation = ls.host.latest_load
    ls.forget_shown(STILL_LOADING)   # a slow reload is said again, not only the first load
    ls.cache.clear()        # results of the previous model or options
    ls.speculation = None   # nor is a speculation still running on the old one adopted
    ls.context_memory.clear()
    ls.suggestions.clear()
    ls.publish_status(only_if_state_changed=True)
    token = str(uuid.uuid4())
    window = ls.client_capabilities.window
    progress = bool(window and window.work_done_progress)
    if progress:
        try:
            progress = await client_takes_progress(ls, token)
        except asyncio.CancelledError:   # the connection ended before the client took the token: nothing to say
            return
        if progress:
            ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title="Diffusion Infill", message="loading the model", cancellable=False))
    try:
        outcome = await asyncio.wrap_future(loaded)
    except asyncio.CancelledError:   # shutdown, or the connection ended while the model loaded
        if progress:   # (a begun progress left open shows "loading" in the editor until it goes)
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="the server is shutting down"))
        return
    if not isinstance(outcome, tuple):  # stopped: a newer load (a model option changed again) took over, or exit
        if progress:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="stopped before it finished"))
        return
    info, error = outcome
    if error:
        # A model path typed into a settings box arrives a character at a time, each value a load that fails at
        # once: say the failure only if no newer load follows within a moment (the status shows it meanwhile).
        ls.publish_status(only_if_state_changed=True)
        said = False

        def say() -> None:   # at the end of the wait, or by a shutdown within it (before its answer)
            nonlocal said
            if not said:
                said = True
                ls.tell(error, types.MessageType.Error)
                if progress:
                    ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="the model failed to load"))
                ls.publish_status()

        ls.held_reports.add(say)
        try:
            await asyncio.wait_for(ls.shutdown_asked.wait(), LOAD_ERROR_GRACE_S)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        finally:
            ls.held_reports.discard(say)
        if ls.host.latest_load != generation and not ls.shutdown_asked.is_set():   # (a shutdown said it)
            if progress:
                ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="replaced by a newer load"))
            return
        say()
        return
    done = f"model ready on {info.get('device')} ({info.get('parameters', 0) / 1e6:.1f}M parameters)"
    for note in info.get("notes", []):
        ls.tell(note, types.MessageType.Warning)
    ls.window_log_message(types.LogMessageParams(type=types.MessageType.Info,
                                                 message=f"Diffusion Infill: {done}: {info}"))
    if progress:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=done))
    ls.publish_status()   # even when the state is "ready" again: the model or the device may be new


# ---- documents ----------------------------------------------------------------------------------------------------

@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_change(ls: InfillServer, params: types.DidChangeTextDocumentParams) -> None:
    key = document_key(params.text_document.uri)
    if ls.workspace.text_documents.get(key) is None:   # protocol.py left the change out
        ls.tell(f"ignored a change to {params.text_document.uri}, which is not open (send textDocument/didOpen "
                f"first)", once=True)
        return
    ls.rhythms.setdefault(key, TypingRhythm()).keystroke(time.monotonic())
    ls.touch(key)
    if key in ls.context_memory:   # (an import added above the prefix moves its start with it)
        ls.context_memory[key] = ls.context_memory[key].moved(
            [change_lines(change) for change in params.content_changes], ls.workspace.text_documents[key].source)
    # A suggestion still being generated for the old text would be thrown away: stop spending the CPU on it.
    if key not in ls.protocol.text_kept_by_last_change:
        for job in jobs_of(key):
            ls.host.cancel(job)
    prime_after_edit(ls, key, params)


def change_lines(change: types.TextDocumentContentChangeEvent) -> tuple[int, int, int, int, str] | None:
    """An edit as ContextMemory.moved reads it; None for the whole text sent again."""
    if not isinstance(change, types.TextDocumentContentChangePartial):
        return None
    start, end = change.range.start, change.range.end
    return start.line, start.character, end.line, end.character, change.text


def prime_after_edit(ls: InfillServer, key: str, params: types.DidChangeTextDocumentParams) -> None:
    """The user started typing where the model has not read yet (another document, or far from its latest
    prompt): encode that context now, while they type, so the suggestion when they pause encodes only what they
    typed meanwhile (engine prefix reuse). Only encoding: much cheaper than speculation, so it has its own option."""
    if not (ls.options.reusePrefix and ls.options.readAhead and ls.host.state == "ready"):
        return
    change = params.content_changes[-1] if params.content_changes else None
    edited = getattr(change, "range", None)
    if edited is None:   # the whole text was sent: no place to prepare for
        return
    line = edited.start.line
    cursor_line = line + change.text.count("\n")   # where the cursor ends: an accepted suggestion's last line
    if ls.prompt_place and ls.prompt_place[0] == key and min(
            abs(ls.prompt_place[1] - at) for at in (line, cursor_line)) <= PRIME_NEAR_LINES:
        return   # (a speculation from the end of a long suggestion is not cancelled by accepting it)
    snap = snapshot_of(ls.workspace.text_documents[key])
    start = snap.offset_of(edited.start)
    if start is None:
        return
    cursor = min(len(snap.source), start + len(change.text))
    # (an editor that auto-closes a bracket or a quote sends `()` or `""` with the cursor between: the closers
    # are not typed yet)
    typed = change.text
    closers = next((len(typed) - at for at in range(len(typed) - 1, -1, -1) if typed[at] in AUTO_CLOSERS
                    and auto_closes(typed[:at], typed[at:])), 0)
    shown = ls.suggestions.get(key)
    if shown is not None and any(typed_through_shows(shown, snap.source, at) for at in {cursor, cursor - closers}):
        return   # typed through the suggestion: answered from it, while the speculation from its end goes on
    request = request_for(ls, snap, "inline", cursor, cursor, cursor_line)
    asyncio.ensure_future(run_prime(ls, snap, request))


def typed_through_shows(shown: ShownSuggestion, source: str, cursor: int) -> bool:
    """Whether typing at `cursor` is answered from `shown` (complete_inline's typed-through answer)."""
    rests = shown.remainders(source, cursor)
    return rests is not None and on_the_cursors_line(rests, source[cursor:cursor + rests.replace]) is not None


async def run_prime(ls: InfillServer, snap: Snapshot, request: InfillRequest) -> None:
    details = await ls.host.prime(request)
    if details:
        remember_context(ls, snap, details)   # the request that follows starts its context where this one did


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_close(ls: InfillServer, params: types.DidCloseTextDocumentParams) -> None:
    forget_document(ls, document_key(params.text_document.uri))


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
def on_notebook_change(ls: InfillServer, params: types.DidChangeNotebookDocumentParams) -> None:
    """A notebook's cells are typed in as documents are (protocol.py applied the text); cells taken out of it
    are closed."""
    cells = params.change.cells
    if cells is None:
        return
    for text in cells.text_content or []:
        on_change(ls, types.DidChangeTextDocumentParams(text_document=text.document, content_changes=text.changes))
    for removed in (cells.structure.did_close or []) if cells.structure is not None else []:
        forget_document(ls, document_key(removed.uri))
    # A suggestion being written for a cell below reads the old cells above it: stop it, as an edit to its own
    # text would (the client asks again). A selection command there goes on: its edit is still where it was asked.
    for uri in cells_whose_context_changed(ls.workspace, params.notebook_document.uri, cells):
        key = document_key(uri)
        for job in (key, key + COMPLETION_JOB):
            ls.host.cancel(job)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
def on_notebook_close(ls: InfillServer, params: types.DidCloseNotebookDocumentParams) -> None:
    for cell in params.cell_text_documents:
        forget_document(ls, document_key(cell.uri))


def forget_document(ls: InfillServer, key: str) -> None:
    """A closed document's jobs stop, and what was kept for it goes."""
    if key in ls.selection_commands:   # (counted for them alone: a count per document ever closed would only grow)
        ls.closings[key] += 1
    for job in jobs_of(key):
        ls.host.cancel(job)
        ls.generations.pop(job, None)
    for per_document in (ls.rhythms, ls.suggestions, ls.recent, ls.context_memory):
        per_document.pop(key, None)
    if ls.speculation and ls.speculation[2] == key:   # not one of its jobs: it would run on for a closed tab
        ls.host.cancel_speculation()
        ls.speculation = None


def jobs_of(key: str) -> tuple[str, ...]:
    """A document's model jobs: its inline requests, its completion requests (a client that sends both for one
    keystroke must not have each cancel the other) and its selection commands (whose edit a change or a close
    refuses anyway: no reason to finish the run)."""
    return key, key + COMPLETION_JOB, key + COMMAND_JOB


def snapshot(ls: InfillServer, uri: str) -> Snapshot:
    """The document as it was when the request being handled arrived (as it is now outside a request); unknown
    documents are the client's mistake, answered with InvalidParams."""
    documents = documents_at_request.get()
    document = (ls.workspace.text_documents if documents is None else documents).get(document_key(uri))
    if document is None:
        raise JsonRpcInvalidParams(f"unknown document {uri}: send textDocument/didOpen first")
    return snapshot_of(document)


def snapshot_of(document) -> Snapshot:
    """A document's snapshot in the language its text is written in."""
    snap = Snapshot.of(document)
    if written_in_another_language(snap.language_id, snap.path, snap.source):
        # A `%%bash` or `%%html` cell: read as plain text, not parsed (or refused) as Python, with no Python cells
        # above it as context.
        snap = dataclasses.replace(snap, language_id="plaintext")
    return snap


def written_in_another_language(language_id: str | None, path: str | None, source: str) -> bool:
    """A notebook cell Jupyter calls Python whose cell magic (`%%bash`, `%%sql`) says it is not."""
    return grammar_for(language_id, path) == "python" and foreign_cell_magic(source) is not None


def is_current(ls: InfillServer, snap: Snapshot) -> bool:
    """The document still has the text `snap` was taken of (its version may have moved with changes that left the
    text as it was: an answer for that text still fits, and a command's edit goes out with the new version)."""
    document = ls.workspace.text_documents.get(document_key(snap.uri))
    return document is not None and document.source == snap.source


def superseded(ls: InfillServer, job: str, generation: int, snap: Snapshot) -> bool:
    """A newer request for the same job, or an edit to the document, since this request began."""
    return ls.generations.get(job) != generation or not is_current(ls, snap)


def request_for(ls: InfillServer, snap: Snapshot, mode: str, start: int, end: int, line: int,
                instruction: str | None = None, budget_ms: int | None = None, invoked: bool = False) -> InfillRequest:
    """The model request for [start, end) of the snapshot; `line` (the LSP line of `start`) is remembered as where
    the model's latest prompt is, for the read-ahead."""
    ls.touch(document_key(snap.uri))
    ls.prompt_place = (document_key(snap.uri), line)
    return InfillRequest(text=snap.source, mode=mode, start=start, end=end, language_id=snap.language_id,
                         path=snap.path, instruction=instruction, max_new_tokens=ls.options.maxNewTokens,
                         budget_ms=budget_ms, invoked=invoked, related=related_documents(ls, snap),
                         previous=memory_of(ls, snap), head=head_for(ls, snap))


def head_for(ls: InfillServer, snap: Snapshot) -> str:
    """A notebook cell's earlier cells, as the text that runs before it (infill.notebook); "" for a file."""
    try:
        workspace = ls.workspace
    except RuntimeError:   # not initialized: no notebook is open
        return ""
    documents = documents_at_request.get()
    return head_of(workspace, workspace.text_documents if documents is None else documents, snap.uri,
                   snap.language_id, snap.path, ls.context_reach())


def memory_of(ls: InfillServer, snap: Snapshot) -> ContextMemory:
    return ls.context_memory.get(document_key(snap.uri), ContextMemory())


def remember_context(ls: InfillServer, snap: Snapshot, details: dict) -> None:
    """The snippets and the prefix start a run chose (its details) are the next run's starting point
    (infill.plan.ContextMemory: the less the prompt changes, the more of it the engine reuses)."""
    key = document_key(snap.uri)
    # A run that got as far as planning, for a document still open (one closed meanwhile has nothing to remember).
    if "context" in details and ls.workspace.text_documents.get(key) is not None:
        ls.context_memory[key] = ContextMemory.of(details, snap.source)


def shown_path(root: str | None, path: str | None) -> str | None:
    """A file's path as the user knows it: relative to the workspace when it lies inside it."""
    if not (root and path):
        return path
    try:
        return os.path.relpath(path, root) if os.path.commonpath([root, path]) == root else path
    except ValueError:   # another drive, or a relative path next to an absolute one
        return path


def document_name(ls: InfillServer, uri: str) -> str:
    """A document as a message to the user names it: its path in its workspace folder (its full path outside
    them), or the URI of a document that is no file (untitled:Untitled-1)."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return shown_path(workspace_folder_of(workspace_folders(ls), path), path) if path else uri


def is_within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([folder, path]) == folder
    except ValueError:   # another drive, or a relative path next to an absolute one
        return False


def workspace_folders(ls: InfillServer) -> list[str]:
    """The workspace folders' paths, without trailing separators; folders off the disk left out. Not pygls' root:
    a client that names folders names it among them (on_initialize adds it when only the root was named), and
    one it removed stays pygls' root."""
    paths = [to_fs_path(folder.uri) for folder in ls.workspace.folders.values()]
    return sorted({os.path.normpath(path) for path in paths if path})


def workspace_folder_of(folders: list[str], path: str | None) -> str | None:
    """The outermost of `folders` (workspace_folders) holding `path`; None outside all of them. Outermost: folders
    nested in one another are one project (a repository and one of its packages opened as folders of their own)."""
    if not path or not os.path.isabs(path):
        return None
    return min((folder for folder in folders if is_within(path, folder)), key=len, default=None)


def other_documents(ls: InfillServer, snap: Snapshot) -> list:
    """(key, document) of the user's other open files that may lend snippets, the most recently edited first."""
    if not ls.uses_related_files():
        return []
    current, documents = document_key(snap.uri), ls.workspace.text_documents
    order = [key for key in reversed(ls.recent) if key in documents]
    # then the newest opened: the file just opened to look something up matters more than one open since morning
    order += [key for key in reversed(documents) if key not in ls.recent]
    # Only files of the same language family lend snippets: filtered before the limit, so recently edited files
    # of another language neither crowd them out nor, in the cache key, expire answers they do not change.
    grammar = grammar_for(snap.language_id, snap.path)
    # And only files of the same project: one server serves every project an editor has open (Neovim's too), and
    # one project's code must not show up in another's completions. A document with no file (untitled) belongs to
    # none and reads them all, as before folders were told apart.
    folders = workspace_folders(ls)
    folder = workspace_folder_of(folders, snap.path)
    untitled = not (snap.path and os.path.isabs(snap.path))
    # A notebook's own cells reach the model as the cell's head (head_for), not as snippets.
    lending = [(key, document) for key, document in ((key, documents[key]) for key in order) if key != current
               and not same_notebook(ls.workspace, current, key)
               and same_family(grammar_for(document.language_id, document.path), grammar)
               and not written_in_another_language(document.language_id, document.path, document.source)
               and (untitled or workspace_folder_of(folders, document.path) == folder)]
    # Another notebook counts as one document and lends from a few of its cells: its cells, each a document of
    # its own, filled every place before the files beside it were looked at. Its edited cells come first, then the
    # others from its top, where its imports and definitions are.
    by_source: dict[str, list] = {}
    for key, document in lending:
        notebook = notebook_of(ls.workspace, key)
        by_source.setdefault(key if notebook is None else notebook.uri, []).append((key, document, notebook))
    picked = []
    for members in itertools.islice(by_source.values(), MAX_RELATED_DOCUMENTS):
        notebook = members[0][2]
        if notebook is not None:
            place = {document_key(cell.document): i for i, cell in enumerate(notebook.cells)}
            members = sorted(members, key=lambda member: (member[0] not in ls.recent,
                                                          0 if member[0] in ls.recent else place.get(member[0], 0)))
        picked += [(key, document) for key, document, _ in members[:MAX_CELLS_PER_NOTEBOOK]]
    return picked


def context_options(ls: InfillServer, snap: Snapshot, source: str | None = None) -> tuple:
    """What besides the text around the cursor decides an answer: the options, the grammar, the whole document's
    indentation (the cleaning follows it; the line ending it follows is the cursor line's, in the text around),
    and the other open files when they lend snippets (an answer cached before one of them changed is not reused).
    `source`: the document's text if not the snapshot's (a speculation's, with the suggestion accepted)."""
    source = snap.source if source is None else source
    grammar = grammar_for(snap.language_id, snap.path)
    style = (grammar, indent_unit_of(source, grammar=grammar))
    # A notebook cell's answer depends on the cells above it, as far as the prompt reads.
    head = window(head_for(ls, snap)[-ls.context_reach():])
    return ls.options_key() + style + (head,) + tuple(sorted((key, ls.serial_of(document), document.version)
                                                   for key, document in other_documents(ls, snap)))


def keyed_with_current_options(ls: InfillServer, context: tuple) -> bool:
    """Was the context key (context_key over context_options) made with the options in force now?"""
    options = ls.options_key()
    return context[-1][:len(options)] == options


def related_documents(ls: InfillServer, snap: Snapshot) -> list[RelatedDocument]:
    """The other open files for infill/, named by their path in their workspace folder; it picks snippets from those
    in the same language."""
    others = other_documents(ls, snap)
    folders = workspace_folders(ls) if others else []
    return [RelatedDocument(path=named(shown_path(workspace_folder_of(folders, document.path), document.path) or key,
                                       cell_name(ls.workspace, key)),
                            text=document.source, language_id=document.language_id) for key, document in others]


def named(path: str, cell: str | None) -> str:
    """A snippet's file as its header names it: a notebook's cells share its path, so each is named too."""
    return path if cell is None else f"{path} {cell}"


# ---- inline completion --------------------------------------------------------------------------------------------

# complete_inline's outcomes: an answer names its source (status.ANSWER_SOURCES), or there is none.
MODEL, SPECULATION, CACHE, TYPED_THROUGH = ANSWER_SOURCES
EMPTY, CANCELLED = "empty", "cancelled"


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: InfillServer, params: types.InlineCompletionParams,
                            job_suffix: str = "") -> types.InlineCompletionList:
    received = time.monotonic()
    ls.counters.requests += 1
    try:
        outcome, items = await complete_inline(ls, params, job_suffix)
    except asyncio.CancelledError:  # $/cancelRequest: pygls answers RequestCancelled
        ls.counters.cancelled += 1
        raise
    except JsonRpcInvalidParams:    # an unknown document: refused, a problem reported (every request has an outcome)
        ls.counters.empty += 1
        raise
    if outcome == CANCELLED:
        ls.counters.cancelled += 1
        return types.InlineCompletionList(items=[])
    if outcome in ANSWER_SOURCES:
        ls.counters.answered += 1
        if outcome != TYPED_THROUGH:   # the rest of a suggestion counted when it was first shown
            ls.counters.shown += len(items)
        ls.last_answer.record(outcome, (time.monotonic() - received) * 1e3)
    else:
        ls.counters.empty += 1
    ls.publish_status()
    return types.InlineCompletionList(items=items)


async def complete_inline(ls: InfillServer, params: types.InlineCompletionParams, job_suffix: str = ""
                          ) -> tuple[str, list[types.InlineCompletionItem]]:
    snap = snapshot(ls, params.text_document.uri)
    offset = snap.offset_of(params.position)
    if offset is None:
        line_exists = params.position.character >= 0 and snap.offset_of(
            types.Position(line=params.position.line, character=0)) is not None
        where = "inside a character of" if line_exists else "outside"   # (a surrogate pair's halves, say)
        # Once per document: a copy out of step with the editor's is outside at every keystroke, a new place each.
        ls.tell(f"position {params.position.line}:{params.position.character} is {where} "
                f"{params.text_document.uri}", once=f"position outside {params.text_document.uri}")
        return EMPTY, []
    key = document_key(snap.uri)
    if key not in ls.workspace.text_documents:
        # Closed after the request was sent (its task started once the didClose was read): nobody waits for an
        # answer, and a generation filed now for a closed document would never be removed.
        return CANCELLED, []
    invoked = params.context is not None and params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    wanted = INVOKED_CANDIDATES if invoked else 1
    job = key + job_suffix   # a newer request for the same job supersedes this one
    generation = ls.generations[job] = next(ls.request_numbers)
    selected = params.context.selected_completion_info if params.context is not None else None
    if selected is not None:
        return await complete_after_selected_item(ls, snap, offset, selected, job, generation, invoked, wanted)
    context = context_key(snap.source, offset, offset, language_of(snap), "inline", context_options(ls, snap),
                          ls.context_reach())

    # Without the model: the suggestion being typed through, then the cache.
    shown = ls.suggestions.get(key)
    if shown is not None and (shown.several or not invoked):
        rests = shown.rests_to_offer(snap.source, offset, wanted)
        if rests:
            rests = on_the_cursors_line(rests, snap.source[offset:offset + rests.replace])
        if rests:
            ls.counters.typedThrough += 1
            return TYPED_THROUGH, offer(ls, snap, offset, offset + rests.replace, rests.texts, record=False,
                                        ids=rests.ids)
        ls.suggestions.pop(key, None)  # typed past it or away from it
    cached = ls.cache.get(context, several=invoked)
    if cached is not None:
        ls.counters.cacheHits += 1
        return CACHE, offer(ls, snap, offset, offset + cached.replace, list(cached.texts[:wanted]),
                            several=invoked)

    # A speculation for another context is now useless; one for this context is adopted below.
    speculation = ls.speculation if ls.speculation and ls.speculation[0] == context else None
    if speculation is None:
        ls.host.cancel_speculation()
    if stopped := await wait_to_run(ls, snap, job, generation, invoked):
        return stopped, []

    if speculation is not None and not invoked:
        adopted = await asyncio.shield(speculation[1])   # the speculation for exactly this context
        if superseded(ls, job, generation, snap):
            return CANCELLED, []   # a newer request took over while we waited: never submit behind it
        if not adopted.cancelled and not adopted.failed:   # a failed one is run again, and says why if it fails
            if not adopted.texts:
                return EMPTY, []   # the model already ran on exactly this context and had nothing
            ls.counters.cacheHits += 1
            replace = adopted.result.end - adopted.result.start
            return SPECULATION, offer(ls, snap, offset, offset + replace, adopted.texts[:1])
    request = request_for(ls, snap, "inline", offset, offset, params.position.line,
                          budget_ms=ls.inline_budget_ms(invoked), invoked=invoked)
    generated = await run_inline(ls, request, snap, job, generation, context, offset, invoked, wanted,
                                 remember=True)
    if generated is None:
        return CANCELLED, []
    if not generated.texts:
        return EMPTY, []
    result = generated.result
    return MODEL, offer(ls, snap, result.start, result.end, generated.texts[:wanted], several=invoked)


async def run_inline(ls: InfillServer, request: InfillRequest, snap: Snapshot, job: str, generation: int,
                     context: tuple, cursor: int, invoked: bool, wanted: int, remember: bool = False
                     ) -> Generated | None:
    """The model's run for an inline request at `cursor`, its message told and its answer cached under `context`;
    None when it was cancelled, or computed for text the user has changed since (never shown). `remember`: keep
    where its context was cut, for the document's next request (remember_context)."""
    load = ls.host.latest_load
    # The request was just made with the options in force now; `context` was keyed before the typing pause and
    # the model's load, and a settings change meanwhile would file this answer under the old options.
    keyed_with_these_options = keyed_with_current_options(ls, context)
    generated = await ls.host.complete(request, job, candidates=wanted, seed=ls.options.seed)
    ls.tell_engine_changes()
    result = generated.result
    if remember:
        remember_context(ls, snap, result.details)
    # Asked: say why every time. Typing: once at most, and not the load error again (shown when it happened, and
    # in the status).
    if result.message and (invoked or ls.host.state != "error"):
        ls.tell(result.message, once=not invoked)
    if generated.cancelled:
        return None
    if keyed_with_these_options and keyed_with_current_options(ls, context):   # (steps and seed apply between runs)
        cache_answer(ls, context, generated, cursor, invoked, load)
    return None if superseded(ls, job, generation, snap) else generated


def cache_answer(ls: InfillServer, context: tuple, generated: Generated, cursor: int, invoked: bool, load) -> None:
    """The model's answer at `cursor`, for the same context later: relative to the cursor (closers it replaces
    included), and not when a reload began meanwhile (another model)."""
    result = generated.result
    if generated.texts and result.start == cursor and ls.host.latest_load == load:
        ls.cache.put(context, generated.texts, several=invoked, replace=result.end - cursor,
                     asked_only=bool(result.details.get("asked_only")))


async def wait_to_run(ls: InfillServer, snap: Snapshot, job: str, generation: int, invoked: bool) -> str | None:
    """The typing pause (debounce) and the model's load, before an inline request runs the model: CANCELLED or
    EMPTY when it must not run after all, else None."""
    delay = debounce_delay(ls.rhythms.get(document_key(snap.uri)), time.monotonic(), ls.host.latency_s, invoked)
    if delay > 0:
        await asyncio.sleep(delay)
    if superseded(ls, job, generation, snap):
        return CANCELLED   # a newer request or keystroke arrived while we waited
    if not await ls.host.wait_ready(LOAD_WAIT_S):
        ls.tell(STILL_LOADING, once=True)   # once per load (load_model forgets it)
        return EMPTY
    if superseded(ls, job, generation, snap):
        return CANCELLED   # superseded while the model loaded: the older request must not cancel the newer
    return None


async def complete_after_selected_item(ls: InfillServer, snap: Snapshot, offset: int,
                                      selected: types.SelectedCompletionInfo, job: str, generation: int,
                                      invoked: bool, wanted: int) -> tuple[str, list[types.InlineCompletionItem]]:
    """The editor's completion list is open with an item selected: it shows only ghost text that goes on from that
    item, so the model writes after the text as it would be with the item accepted, and each answer starts with
    the item's text over its range. (An answer for the text as typed would be hidden, its run wasted.)"""
    start, end = snap.offset_of(selected.range.start), snap.offset_of(selected.range.end)
    if start is None or end is None or not start <= offset <= end or selected.range.start.line != \
            selected.range.end.line:
        return EMPTY, []   # not an item completing the word at the cursor
    applied = dataclasses.replace(snap, source=snap.source[:start] + selected.text + snap.source[end:])
    cursor = start + len(selected.text)
    # Cached for the text with the item accepted: the next keystroke with the same item selected, and the plain
    # request once the item is accepted, are the same context.
    context = context_key(applied.source, cursor, cursor, language_of(snap), "inline",
                          context_options(ls, applied), ls.context_reach())
    cached = ls.cache.get(context, several=invoked)
    if cached is not None:
        ls.counters.cacheHits += 1
        return CACHE, offer_after_item(ls, snap, offset, start, end, selected.text, cached.texts[:wanted],
                                       cached.replace, invoked)
    if stopped := await wait_to_run(ls, snap, job, generation, invoked):
        return stopped, []
    ls.host.cancel_speculation()
    request = request_for(ls, applied, "inline", cursor, cursor, selected.range.start.line,
                          budget_ms=ls.inline_budget_ms(invoked), invoked=invoked)
    generated = await run_inline(ls, request, snap, job, generation, context, cursor, invoked, wanted)
    if generated is None:
        return CANCELLED, []
    result = generated.result
    if not generated.texts or result.start != cursor:
        return EMPTY, []
    return MODEL, offer_after_item(ls, snap, offset, start, end, selected.text, generated.texts[:wanted],
                                   result.end - result.start, invoked)


def offer_after_item(ls: InfillServer, snap: Snapshot, offset: int, start: int, end: int, item: str,
                     texts, replace: int, several: bool) -> list[types.InlineCompletionItem]:
    """Items that write the selected completion item over its range (start..end) and go on with `texts`, which
    replace `replace` characters after the item's range (closers written again). Remembered as typed from the
    item's start, so that accepting the item, or typing on in it, serves the rest without the model."""
    whole = [item + text for text in texts]
    items = offer(ls, snap, start, end + replace, whole, several=several, record=False)
    ls.suggestions[document_key(snap.uri)] = ShownSuggestion(
        snap.source[:start], snap.source[offset:], tuple(whole), several, replace=end + replace - offset,
        min_typed=len(item), ids=tuple(item.command.arguments[0]["id"] for item in items))
    return items


def language_of(snap: Snapshot) -> str | None:
    """What picks the grammar: the languageId, else the file's extension (infill/ guesses from it)."""
    return snap.language_id or (os.path.splitext(snap.path)[1] if snap.path else None)


def offer(ls: InfillServer, snap: Snapshot, start: int, end: int, texts: list[str], several: bool = False,
          record: bool = True, ids: list[str | None] | None = None) -> list[types.InlineCompletionItem]:
    """Items with an accept command each; remembered for typed-through, and the next suggestion speculated.
    `ids`: the ids the texts were first offered under (the rests of a suggestion typed through), else new ones."""
    key = document_key(snap.uri)
    ids = [suggestion_id or ls.ids.new() for suggestion_id in (ids or [None] * len(texts))]
    if record:
        ls.suggestions[key] = ShownSuggestion.at(snap.source, start, texts, several, replace=end - start,
                                                 ids=tuple(ids))
    edit_range = snap.range_of(start, end)
    items = [types.InlineCompletionItem(
        insert_text=text, range=edit_range,
        command=types.Command(title="Diffusion Infill: accepted", command=ACCEPTED,
                              arguments=[{"id": suggestion_id}])) for text, suggestion_id in zip(texts, ids)]
    if texts and ls.options.speculate:
        # On the candidate on screen: the first, unless the editor said another one is (cycled to, typed through).
        on_screen = ids.index(ls.last_displayed) if ls.last_displayed in ids else 0
        speculate(ls, snap, start, end, texts[on_screen])
    return items


def speculate(ls: InfillServer, snap: Snapshot, start: int, end: int, text: str) -> None:
    """Queue the suggestion that would follow if `text` were accepted; it runs only while the model is idle, and
    any real request cancels it."""
    source = snap.source[:start] + text + snap.source[end:]
    cursor = start + len(text)
    context = context_key(source, cursor, cursor, language_of(snap), "inline", context_options(ls, snap, source),
                          ls.context_reach())
    if ls.cache.get(context) is not None or speculated_already(ls, context):
        return
    # The model's next prompt is at the end of the suggestion: typing there after accepting a multi-line one is
    # near it, so the read-ahead leaves alone the speculation that is computing exactly that place.
    ls.prompt_place = (document_key(snap.uri), Snapshot(snap.uri, source, codec=snap.codec).position_of(cursor).line)
    request = InfillRequest(text=source, mode="inline", start=cursor, end=cursor, language_id=snap.language_id,
                            path=snap.path, max_new_tokens=ls.options.maxNewTokens,
                            budget_ms=ls.inline_budget_ms(invoked=False), related=related_documents(ls, snap),
                            previous=memory_of(ls, snap), head=head_for(ls, snap))
    ls.speculation = (context, asyncio.ensure_future(run_speculation(ls, request, context)), document_key(snap.uri))


def speculate_on_screen(ls: InfillServer, suggestion_id: str) -> None:
    """The user cycled to another candidate: the next suggestion is speculated as if that one were accepted (the
    speculation running for the first one is replaced), while the document is still as it was when offered."""
    for key, shown in ls.suggestions.items():
        if suggestion_id not in shown.ids:
            continue
        document = ls.workspace.text_documents.get(key)
        snap = snapshot_of(document) if document is not None else None
        if snap is not None and snap.source == shown.before + shown.after:
            start = len(shown.before)
            speculate(ls, snap, start, start + shown.replace, shown.texts[shown.ids.index(suggestion_id)])
        return


def speculated_already(ls: InfillServer, context: tuple) -> bool:
    """The speculation for `context` is running, or ran to the end: one that found nothing is not cached, and
    typing through the suggestion offers it again on every key. One the engine failed in counts too (it would
    fail again at each key typed through); the request at that place runs the model itself (complete_inline)."""
    if not ls.speculation or ls.speculation[0] != context:
        return False
    task = ls.speculation[1]
    return not task.done() or (not task.cancelled() and task.exception() is None and not task.result().cancelled)


async def run_speculation(ls: InfillServer, request: InfillRequest, context: tuple) -> Generated:
    if ls.host.state != "ready":
        return Generated(InfillResult("", request.start, request.end), cancelled=True)
    # Its context is remembered nowhere (remember_context): it is a guess at text the user may never type.
    load = ls.host.latest_load
    generated = await ls.host.complete(request, SPECULATION_KEY, seed=ls.options.seed, speculative=True)
    ls.tell_engine_changes()
    if (not generated.cancelled and generated.texts and generated.result.start == request.start
            and ls.host.latest_load == load and keyed_with_current_options(ls, context)):
        ls.cache.put(context, generated.texts, several=False, replace=generated.result.end - request.start)
        ls.counters.speculated += 1
    return generated


# ---- status and signals -------------------------------------------------------------------------------------------

@server.command(STATUS)
def infill_status(ls: InfillServer, *args) -> dict:
    return ls.status()


@server.command(METRICS)
def infill_metrics(ls: InfillServer, *args) -> dict:
    """Beyond the status contract, for tests and bench/typing.py: how often the model really ran."""
    engine = ls.host.engine if ls.host.state == "ready" else None
    described = engine.describe() if engine is not None else {}
    return {"modelRuns": ls.host.model_runs, "speculativeRuns": ls.host.speculative_runs,
            "primedPrompts": ls.host.primed_prompts,
            "waitingJobs": ls.host.queue.waiting(), "idle": ls.host.queue.idle(), "cacheEntries": len(ls.cache),
            "modelLatencyMs": None if ls.host.latency_s is None else round(ls.host.latency_s * 1e3, 1),
            "prefixReuse": described.get("prefix_reuse"), "msPerStep": described.get("ms_per_step"),
            "lastRun": dict(ls.host.last_run), "runMeans": ls.host.run_means(),
            "workspaceFolders": workspace_folders(ls),
            # What ran, as opposed to what was asked for ("auto", or a context the fast path caps at its window).
            "engine": {key: described.get(key) for key in ("device", "dtype", "fast_path", "max_prompt_tokens")}}


@server.command(ACCEPTED)
def infill_accepted(ls: InfillServer, *args) -> dict:
    return settle(ls, args, accepted=True)


@server.command(REJECTED)
def infill_rejected(ls: InfillServer, *args) -> dict:
    return settle(ls, args, accepted=False)


@server.feature(ACCEPTED_NOTIFICATION)
def on_accepted(ls: InfillServer, params) -> None:
    settle(ls, params, accepted=True)


@server.feature(REJECTED_NOTIFICATION)
def on_rejected(ls: InfillServer, params) -> None:
    settle(ls, params, accepted=False)


@server.feature(DID_SHOW_NOTIFICATION)
def on_did_show(ls: InfillServer, params) -> None:
    """Count an offered item once when the editor puts it on screen; unknown or repeated ids are ignored."""
    suggestion_id = suggestion_id_of(params)
    if isinstance(suggestion_id, str):
        ls.last_displayed = suggestion_id   # also when shown again: the one to speculate on while it is typed through
        if ls.options.speculate:
            speculate_on_screen(ls, suggestion_id)
    if ls.ids.display(suggestion_id):
        ls.counters.displayed += 1
        ls.publish_status()


def settle(ls: InfillServer, args, accepted: bool) -> dict:
    """Count an accept or reject once per offered item; unknown ids are ignored (and said so), never an error."""
    suggestion_id = suggestion_id_of(args)
    counted = ls.ids.settle(suggestion_id)
    if counted:
        if accepted:
            ls.counters.accepted += 1
        else:
            ls.counters.rejected += 1
        ls.publish_status()   # the editors' counters come from this notification
    if not accepted and suggestion_id is not None:
        # Turned down: typing its first character must not bring the rest back without the model. Counted or not
        # (the rest of one partly accepted keeps its settled id), and only that suggestion, not a newer one.
        for key in [key for key, shown in ls.suggestions.items() if suggestion_id in shown.ids]:
            del ls.suggestions[key]
    return {"id": suggestion_id, "counted": counted}


# ---- fill and rewrite selection -----------------------------------------------------------------------------------

def command_arguments(args: tuple) -> tuple[str, types.Range, str | None, dict | None, int | None]:
    """Accept one object {uri, range, instruction?, options?, version?} or positional [uri, range, instruction?].
    The options are the editor's formatting options {tabSize, insertSpaces}, when it sends them (else None); the
    version is the document's when the range was chosen (our code actions send it)."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        args = tuple(args[0])  # some clients wrap the positional arguments once more
    formatting = version = None
    if len(args) == 1 and isinstance(args[0], dict):
        uri, raw_range, instruction = args[0].get("uri"), args[0].get("range"), args[0].get("instruction")
        formatting = args[0].get("options") if isinstance(args[0].get("options"), dict) else None
        version = args[0].get("version")
    elif len(args) in (2, 3):
        uri, raw_range = args[0], args[1]
        instruction = args[2] if len(args) == 3 else None
    else:
        raise JsonRpcInvalidParams("expected arguments {uri, range, instruction?} or [uri, range, instruction?]")
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("the command's uri must be a string")
    try:
        if isinstance(raw_range, dict):
            raw_range = types.Range(start=position_from(raw_range["start"]), end=position_from(raw_range["end"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise JsonRpcInvalidParams(f"the command's range is not an LSP Range: {exc}") from None
    if not isinstance(raw_range, types.Range):
        raise JsonRpcInvalidParams("the command's range is not an LSP Range")
    if instruction is not None and not isinstance(instruction, str):
        raise JsonRpcInvalidParams("the command's instruction must be a string")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise JsonRpcInvalidParams("the command's version must be a whole number")
    return uri, raw_range, instruction, formatting, version


def position_from(raw) -> types.Position:
    """An LSP Position from a command's plain JSON. Its numbers are checked here: lsprotocol takes true for 1, and
    for "11" or 11.5 says the value is out of range, not that it is no whole number. A whole float (11.0) is taken."""
    if not isinstance(raw, dict):
        raise TypeError(f"a position must be an object {{line, character}}, got {raw!r}")
    numbers = {}
    for name in ("line", "character"):
        value = raw[name]
        if isinstance(value, float) and value.is_integer():
            if not 0 <= value < 2**31:   # (as an int, 1e300's message spelled out its 301 digits)
                raise ValueError(f"its {name} must be from 0 to 2147483647, got {value:g}")
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"its {name} must be a whole number, got {value!r}")
        numbers[name] = value
    return types.Position(**numbers)


def describe_range(rng: types.Range) -> str:
    """A range as a person reads it, 1-based as editors show lines and columns (LSP's are 0-based)."""
    return (f"line {rng.start.line + 1}, column {rng.start.character + 1} to "
            f"line {rng.end.line + 1}, column {rng.end.character + 1}")


def range_json(rng: types.Range) -> dict:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


async def edit_selection(ls: InfillServer, mode: str, args: tuple) -> dict:
    uri, selection, instruction, formatting, version = command_arguments(args)
    key = document_key(uri)
    ls.selection_commands[key] += 1   # while it runs, the document's closings are counted (see forget_document)
    try:
        return await edit_selection_in(ls, mode, uri, selection, instruction, formatting, version)
    finally:
        ls.selection_commands[key] -= 1
        if not ls.selection_commands[key]:
            del ls.selection_commands[key]
            ls.closings.pop(key, None)


async def edit_selection_in(ls: InfillServer, mode: str, uri: str, selection: types.Range, instruction: str | None,
                            formatting: dict | None, version: int | None) -> dict:
    snap = snapshot(ls, uri)
    closings = ls.closings[document_key(uri)]
    if version is not None and version != snap.version:   # the range was chosen in text that has changed since
        message = ("nothing was changed: the document changed since the selection was made (or the action offered);"
                   " select and run it again")
        ls.tell(message)
        return {"applied": False, "message": message}
    start, end = snap.offset_of(selection.start), snap.end_offset_of(selection.end)
    if start is None or end is None or start >= end:
        if start is not None and end is not None:
            problem = "ends before it starts" if start > end else "is empty: select the code first"
        else:
            problem = f"is outside {uri} or inside a character"
        message = f"the selection ({describe_range(selection)}) {problem}"
        ls.tell(message)
        return {"applied": False, "message": message}
    if not await ls.host.wait_ready(LOAD_WAIT_S):
        result = InfillResult("", start, end, STILL_LOADING)
    elif stale_reason(ls, snap) is None:   # (typed in or closed while the model loaded)
        # Built once the model is loaded: how much context it reads (its context size, other files' snippets, a
        # notebook's cells above) depends on the model, and settings changed during the load count.
        request = request_for(ls, snap, mode, start, end, selection.start.line, instruction)
        if formatting is not None:
            tab_size, insert_spaces = formatting.get("tabSize"), formatting.get("insertSpaces")
            request.tab_size = tab_size if isinstance(tab_size, int) and not isinstance(tab_size, bool) else None
            request.insert_spaces = insert_spaces if isinstance(insert_spaces, bool) else None
        # Under the document's command key: typing in it or closing it stops the run (its edit would be refused).
        result = await ls.host.run(request, document_key(uri) + COMMAND_JOB)
        ls.tell_engine_changes()
    else:
        result = InfillResult("", start, end, details={"cancelled": True})
    if result.details.get("cancelled"):
        # (Closed and opened again as it was, the text is current: the close stopped the run all the same.)
        why = stale_reason(ls, snap) or (f"{document_name(ls, uri)} was closed while the model was working"
                                         if ls.closings[document_key(uri)] != closings
                                         else "a newer fill or rewrite of this document replaced it")
        message = f"nothing was changed: {why}"
        ls.tell(message)
        return {"applied": False, "message": message}
    if not result.text:
        message = result.message or "the model had nothing to offer for this selection"
        ls.tell(message)
        return {"applied": False, "message": message}
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
    if client_takes_document_changes(ls):
        document = ls.workspace.text_documents.get(document_key(uri))
        edit_version = document.version if document is not None and document.source == snap.source else snap.version
        edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=edit_version),
            edits=text_edits)])
    else:   # the plain form every client takes; the staleness check just before sending stands in for the version
        edit = types.WorkspaceEdit(changes={uri: text_edits})
    label = "Diffusion Infill: fill selection" if mode == "fill" else "Diffusion Infill: rewrite selection"
    answer = {"applied": False, "text": result.text, "range": range_json(edit_range),
              "edits": [{"range": range_json(e.range), "newText": e.new_text} for e in text_edits],
              "details": jsonable(result.details)}
    refusal = apply_edit_refusal(ls, snap)   # the edit goes out only onto the text it was computed for
    if refusal is None:
        ls.protocol.command_past_cancel()
        try:
            response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=label))
        except Exception as exc:   # the client answered workspace/applyEdit with an error
            response = {"applied": False, "failureReason": f"workspace/applyEdit failed: {exc}"}
        answer["applied"], refusal = read_apply_edit_answer(response)
    if not answer["applied"]:
        answer["message"] = f"nothing was changed: {refusal}"
        ls.tell(answer["message"])
    elif result.message:   # each time, once applied: a warning about this edit (a cut fill, an unused instruction)
        answer["message"] = result.message
        ls.tell(result.message)
    return answer


def apply_edit_refusal(ls: InfillServer, snap: Snapshot) -> str | None:
    """Why the edit must not be sent, or None. A closed document would be edited on disk behind the user's back,
    and a changed one (if the client ignored the version) in the wrong place."""
    if not client_applies_edits(ls):
        return "the editor does not support workspace/applyEdit (the edits are in this answer)"
    return stale_reason(ls, snap)


def stale_reason(ls: InfillServer, snap: Snapshot) -> str | None:
    """Why `snap` is no longer the document's text (closed, or changed), or None."""
    if ls.workspace.text_documents.get(document_key(snap.uri)) is None:
        return f"{document_name(ls, snap.uri)} was closed while the model was working"
    if not is_current(ls, snap):
        return f"{document_name(ls, snap.uri)} changed while the model was working; run the command again"
    return None


def client_applies_edits(ls: InfillServer) -> bool:
    workspace = ls.client_capabilities.workspace
    return bool(workspace and workspace.apply_edit)


def client_takes_document_changes(ls: InfillServer) -> bool:
    """A client takes a versioned edit (`documentChanges`) only when it says so; without it, only `changes`."""
    workspace = ls.client_capabilities.workspace
    workspace_edit = workspace.workspace_edit if workspace else None
    return bool(workspace_edit and workspace_edit.document_changes)


def read_apply_edit_answer(response) -> tuple[bool, str | None]:
    """(applied, why not) from the client's workspace/applyEdit answer, read as plain JSON (protocol.py): only an
    explicit "applied": true counts as applied."""
    if hasattr(response, "_asdict"):   # pygls hands untyped JSON objects over as namedtuples
        response = response._asdict()
    if not isinstance(response, dict):
        return False, f"the editor answered workspace/applyEdit with {response!r}"
    if response.get("applied") is True:
        return True, None
    reason = response.get("failureReason")
    return False, reason if isinstance(reason, str) and reason else "the editor did not apply the edit"


def jsonable(value):
    """Details without anything the JSON encoder would choke on (timings are floats, layouts strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return str(value)


async def edit_selection_or_stop(ls: InfillServer, mode: str, args: tuple) -> dict:
    try:
        with ls.protocol.cancellable_command():   # $/cancelRequest stops the model and sends no edit
            return await edit_selection(ls, mode, args)
    except asyncio.CancelledError:
        # The client cancelled, or the connection ended with the command still running. pygls' command wrapper
        # cannot take a cancelled handler (it logs a traceback), so answer instead; nobody reads this answer.
        return {"applied": False, "message": "cancelled before the model finished; nothing was changed"}


@server.command(FILL_SELECTION)
async def fill_selection(ls: InfillServer, *args) -> dict:
    return await edit_selection_or_stop(ls, "fill", args)


@server.command(REWRITE_SELECTION)
async def rewrite_selection(ls: InfillServer, *args) -> dict:
    return await edit_selection_or_stop(ls, "rewrite", args)


# ---- code actions -------------------------------------------------------------------------------------------------

SELECTION_ACTIONS = ((FILL_SELECTION, "Fill selection (Diffusion Infill)"),
                     (REWRITE_SELECTION, "Rewrite selection (Diffusion Infill)"))


def wants_rewrite_actions(only: list[str] | None) -> bool:
    """The client's `only` filter: `refactor` and `refactor.rewrite` include ours, `quickfix` does not."""
    ours = types.CodeActionKind.RefactorRewrite.value
    kinds = [getattr(kind, "value", kind) for kind in only or []]   # strings, or enum members from a converter
    return not kinds or any(ours == kind or ours.startswith(f"{kind}.") for kind in kinds)


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite]))
def code_actions(ls: InfillServer, params: types.CodeActionParams
                 ) -> list[types.CodeAction] | list[types.Command] | None:
    """Fill and rewrite offered on a non-empty selection, so any client's code-action menu reaches them without our
    plugin. Editors ask on every cursor move, so this only builds the actions: the model runs when one is picked
    (its command comes back as workspace/executeCommand). Not offered when the model failed to load (a client
    that shows disabled actions gets them with the reason); plain commands for clients that take no literals."""
    selection = params.range
    if selection.start == selection.end or not wants_rewrite_actions(params.context.only):
        return None
    if ls.workspace.text_documents.get(document_key(params.text_document.uri)) is None:
        return None   # asked before didOpen: nothing to act on, and not worth a message on every cursor move
    if not client_applies_edits(ls):
        return None   # the commands answer with workspace/applyEdit, which this client cannot take
    document = ls.workspace.text_documents[document_key(params.text_document.uri)]
    # The version pins the range to this text: picked after an edit, the action would rewrite other code.
    arguments = [{"uri": params.text_document.uri, "range": range_json(selection),
                  **({"version": document.version} if document.version is not None else {})}]
    failed = ls.host.error if ls.host.state == "error" else None
    support = ls.client_capabilities.text_document and ls.client_capabilities.text_document.code_action
    takes_literals = bool(support and support.code_action_literal_support)
    if failed is not None and not (takes_literals and support.disabled_support):
        return None   # picking one would only say that the model is not available
    commands = [types.Command(title=title, command=command, arguments=arguments)
                for command, title in SELECTION_ACTIONS]
    if not takes_literals:
        return commands   # LSP: a client that announces no code action literals takes Command[] only
    disabled = types.CodeActionDisabled(reason=f"the model is not available: {failed}") if failed else None
    return [types.CodeAction(title=command.title, kind=types.CodeActionKind.RefactorRewrite, command=command,
                             disabled=disabled) for command in commands]


# ---- completion items, for clients without inline completion -----------------------------------------------------

def wants_completion_items(ls: InfillServer) -> bool:
    choice = ls.options.completionItems
    text_document = ls.client_capabilities.text_document
    shows_inline = text_document is not None and text_document.inline_completion is not None
    return choice == "on" or (choice == "auto" and not shows_inline)


# Besides identifier characters (every client asks on those), where code most often goes on after a pause.
COMPLETION_TRIGGERS = [".", "(", "[", "{", ","]


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=COMPLETION_TRIGGERS))
async def completion(ls: InfillServer, params: types.CompletionParams) -> types.CompletionList | None:
    """The inline suggestion as one completion item, for editors that have no ghost text (LSP < 3.18 clients).
    Clients send `Invoked` for completion popped up while typing too, so this is always scheduled as an automatic
    request: debounced, superseded by the next keystroke, within the latency budget."""
    if not wants_completion_items(ls):
        return None
    inline = await inline_completion(ls, types.InlineCompletionParams(
        text_document=params.text_document, position=params.position,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
        job_suffix=COMPLETION_JOB)
    snap = snapshot(ls, params.text_document.uri)
    items = [as_completion_item(item, replaced_text(snap, item.range)) for item in inline.items]
    # Incomplete: the client asks again on the next keystroke instead of filtering a stale suggestion.
    return types.CompletionList(is_incomplete=True, items=[item for item in items if item is not None])


def replaced_text(snap: Snapshot, edit_range: types.Range | None) -> str:
    if edit_range is None:
        return ""
    start, end = snap.offset_of(edit_range.start), snap.offset_of(edit_range.end)
    return snap.source[start:end] if start is not None and end is not None else ""
