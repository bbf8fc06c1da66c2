// Diffusion Infill for VS Code: starts `infill-lsp` over stdio, lets vscode-languageclient ask it for inline
// completions (LSP 3.18 textDocument/inlineCompletion), forwards the selection commands and shows the server's
// state in the status bar. Everything clever (what to complete, how to clean it, the edit itself) is the server's.
import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorHandler,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  Trace,
} from 'vscode-languageclient/node';
import { ServerEventsFeature } from './serverEvents';
import { findServer } from './serverPath';
import {
  LOG_LEVELS,
  LogLevel,
  SECTION,
  affectsServer,
  clientSettings,
  extensionSettings,
  needsRestart,
  serverSettings,
} from './settings';
import { ServerStatus, StatusIndicator } from './status';
import { OfferedStarts } from './typedThrough';

const SERVER_FILL = 'infill.fillSelection';
const SERVER_REWRITE = 'infill.rewriteSelection';
const SERVER_STATUS = 'infill.status';
// Documents the client serves: files, untitled editors and notebook cells. Cells reach the server through
// notebookDocument/* (the server asks for notebook sync); their scheme here lets ghost text and code actions reach
// a cell's editor.
const SERVED_SCHEMES = ['file', 'untitled', 'vscode-notebook-cell'];
// lsp.InlineCompletionTriggerKind in LSP 3.18 (what the server reads).
const LSP_TRIGGER_INVOKED = 1;
const LSP_TRIGGER_AUTOMATIC = 2;
// infill-lsp answers `initialize` in well under a second (the model loads afterwards): a program that has not
// answered by then is not infill-lsp (a serverPath naming python, say), and would hold the extension forever.
const INITIALIZE_TIMEOUT_MS = 30_000;
const CRASH_RESTART_WINDOW_MS = 3 * 60_000;   // a server that crashes again within it is not restarted again
const EXIT_WAIT_MS = 1_000;   // for the library's line saying how a process ended, after its output closed

const COMMANDS = {
  fill: 'diffusionInfill.fillSelection',
  rewrite: 'diffusionInfill.rewriteSelection',
  restart: 'diffusionInfill.restartServer',
  showLog: 'diffusionInfill.showLog',
};

// The extension's command for each server command a code action names.
const THROUGH_EXTENSION: Record<string, string> = { [SERVER_FILL]: COMMANDS.fill, [SERVER_REWRITE]: COMMANDS.rewrite };

/** A code action's target: the argument the server put in its command ({uri, range, version}, in LSP's terms). */
interface ActionTarget {
  uri: string;
  range: { start: unknown; end: unknown };
  version?: number;
}

/** The target when a command was run from a code action; undefined from a key, the palette or a menu (a menu
 * passes the document's vscode.Uri). */
function actionTarget(value: unknown): ActionTarget | undefined {
  if (typeof value !== 'object' || value === null || value instanceof vscode.Uri) return undefined;
  const { uri, range } = value as Record<string, unknown>;
  return typeof uri === 'string' && typeof range === 'object' && range !== null ? (value as ActionTarget) : undefined;
}

function throughExtension(action: vscode.Command | vscode.CodeAction): vscode.Command | vscode.CodeAction {
  const command = action instanceof vscode.CodeAction ? action.command : (action as vscode.Command);
  const ours = command && THROUGH_EXTENSION[command.command];
  if (!command || !ours) return action;
  const replaced: vscode.Command = { ...command, command: ours };
  if (action instanceof vscode.CodeAction) {
    action.command = replaced;
    return action;
  }
  return replaced;
}

/** A document the server would serve: one of the languages, in a served scheme. A `git:` copy that a diff view or
 * the timeline opens in the background is neither typed in nor served, and must not start a server. */
function served(document: vscode.TextDocument, languages: string[]): boolean {
  return SERVED_SCHEMES.includes(document.uri.scheme) && languages.includes(document.languageId);
}

/** What infill.fillSelection / infill.rewriteSelection return. */
interface EditAnswer {
  applied: boolean;
  text?: string;
  message?: string;
}

class InfillExtension implements vscode.Disposable {
  private readonly channel = vscode.window.createOutputChannel('Diffusion Infill');
  private readonly status = new StatusIndicator(COMMANDS.showLog);
  private readonly offered = new OfferedStarts();
  private client: InfillClient | undefined;
  private events: ServerEventsFeature | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private abandonStart: (() => void) | undefined;   // ends the wait for a starting server's `initialize` answer
  private stopping = false;
  private sentAtStart = '';   // the server settings the last start sent, as JSON
  private clientSettingsInEffect = clientSettings();   // those of the last start or change (needsRestart)
  // Set when the server could not start: opening another file does not try (and pop up the error) again; a
  // settings change that restarts, granting trust or the Restart command does.
  private startFailed = false;
  private restarts = 0;   // restarts asked for so far: the latest one alone goes on after stopping
  private restartAsked = false;   // one of the restarts in progress was the user's Restart command

  log(level: LogLevel, message: string): void {
    if (LOG_LEVELS.indexOf(level) > LOG_LEVELS.indexOf(extensionSettings().logLevel)) return;
    this.channel.appendLine(`[${new Date().toISOString()}] [${level}] ${message}`);
  }

  showLog(): void {
    this.channel.show(true);
  }

  /** A closed document's suggestions are gone with it. */
  forgetOffered(document: vscode.TextDocument): void {
    this.offered.forget(document);
  }

  /** The running client, starting it first if needed; undefined when disabled or the server cannot start. */
  async ensureStarted(): Promise<LanguageClient | undefined> {
    if (this.client?.isRunning()) return this.client;
    const client = this.client;
    if (client && !this.starting && client.state === State.Starting) {
      // vscode-languageclient is restarting a crashed server by itself: wait for that one, never start a second.
      await client.start().catch(() => undefined);
      return client.isRunning() && this.client === client ? client : undefined;
    }
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** The state before any server starts. */
  idle(): void {
    if (extensionSettings().enable) this.status.off('starts when a file of "diffusionInfill.languages" opens');
    else this.status.off('diffusionInfill.enable is false');
  }

  /** Start for the documents already open, and whenever one of the configured languages opens. */
  startWhenNeeded(document: vscode.TextDocument): void {
    const settings = extensionSettings();
    if (settings.enable && !this.client && !this.startFailed && served(document, settings.languages)) {
      void this.ensureStarted();
    }
  }

  private async start(): Promise<LanguageClient | undefined> {
    const settings = extensionSettings();
    this.clientSettingsInEffect = clientSettings();
    if (!settings.enable) {
      this.status.off('diffusionInfill.enable is false');
      return undefined;
    }
    // An untrusted workspace's .venv could hold any program: look there only when the workspace is trusted.
    const folders = vscode.workspace.isTrusted
      ? (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath)
      : [];
    const location = findServer(settings.serverPath, folders);
    if (location && 'problem' in location) {
      this.startFailed = true;
      this.status.error(location.problem);
      this.log('error', location.problem);
      void vscode.window.showErrorMessage(`Diffusion Infill: ${location.problem}`);
      return undefined;
    }
    if (!location) {
      this.startFailed = true;
      const message = 'infill-lsp was not found in the workspace\'s .venv or on PATH; ' +
        'set "diffusionInfill.serverPath" to its full path.';
      this.status.error(message);
      this.log('error', message);
      void vscode.window.showErrorMessage(`Diffusion Infill: ${message}`, 'Open Settings').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.serverPath`);
      });
      return undefined;
    }
    this.log('info', `starting ${location.command} (from the ${location.foundIn})`);
    this.status.starting(location.command);

    const serverOptions: ServerOptions = {
      command: location.command,
      args: [],
      // The working folder: a trusted workspace's first folder (a relative model path is the workspace's); for an
      // untrusted one the home folder, where a bare program name is not looked up in the workspace (Windows would).
      options: { env: { ...process.env, PYTHONUNBUFFERED: '1' }, cwd: folders[0] ?? os.homedir() },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: settings.languages.flatMap((language) => SERVED_SCHEMES.map((scheme) => ({ scheme, language }))),
      // A function: vscode-languageclient calls it on every start, its own restarts after a crash included, so a
      // server never starts with settings from an earlier start.
      initializationOptions: () => {
        this.sentAtStart = JSON.stringify(serverSettings());
        return { [SECTION]: JSON.parse(this.sentAtStart) };
      },
      // A server this extension has let go of (stopped, restarted, or given up on while starting) is not started
      // again by vscode-languageclient when its process ends, nor one that ended before it answered `initialize`
      // (a broken install: each restart imported torch again only to fail, and each failure was a pop-up).
      // A server that crashes is started again once, and only if it had loaded the model (see restartAfterCrash);
      // otherwise InfillExtension says once that it stopped, and how.
      errorHandler: {
        error: (error, message, count) => defaultHandler().error(error, message, count),
        closed: () => (this.client === client && client.restartAfterCrash()
          ? { action: CloseAction.Restart, handled: true } : { action: CloseAction.DoNotRestart, handled: true }),
      },
      // An initialize that fails is reported once, by start() below, not also by the library's own pop-up.
      initializationFailedHandler: () => false,
      outputChannel: this.channel,
      revealOutputChannelOn: RevealOutputChannelOn.Never,   // errors show in the status bar instead
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const started = Date.now();
          const kind = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke ? 'invoked' : 'automatic';
          const result = await next(document, position, this.protocolContext(document, position, context), token);
          const items = Array.isArray(result) ? result : (result?.items ?? []);
          this.offered.wholeItems(document, items);
          if (items.length > 0 && !token.isCancellationRequested) {
            this.status.latency(Date.now() - started);
            for (const item of items) {
              const text = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
              this.log('debug', `${kind} inline completion at ${position.line + 1}:${position.character + 1}: ` +
                JSON.stringify(text));
            }
          }
          return result;
        },
        // The server's code actions (the lightbulb, Refactor...) name its commands, which vscode-languageclient would
        // run bare: no progress, no cancel, no editor indentation, no instruction prompt. Ours run them instead.
        provideCodeActions: async (document, range, context, token, next) => {
          const actions = await next(document, range, context, token);
          return actions?.map((action) => throughExtension(action));
        },
        workspace: {
          // If the server pulls our section, give it only the options it knows.
          configuration: async (params, token, next) => {
            const answer = await next(params, token);
            if (!Array.isArray(answer)) return answer;
            return params.items.map((item, i) => (item.section === SECTION ? serverSettings() : answer[i]));
          },
        },
      },
    };

    const client = new InfillClient(SECTION, 'Diffusion Infill', serverOptions, clientOptions);
    let fallback: ErrorHandler | undefined;
    const defaultHandler = () => (fallback ??= client.createDefaultErrorHandler());
    // textDocument/inlineCompletion is a proposed feature in vscode-languageclient 9: without this opt-in the
    // client never asks for ghost text.
    client.registerProposedFeatures();
    const events = new ServerEventsFeature(client, this.status, (message) => this.log('debug', message),
      () => (client.ready = true));
    client.registerFeature(events);
    client.onDidChangeState((change) => {
      if (change.newState === State.Starting) {   // a process of its own: started, then ready, again
        client.started = client.ready = client.restarting = false;
        client.exit = undefined;
      }
      if (change.newState === State.Running) client.started = true;
      // Stopped by itself: not by stop(), not while start() waits for it (which tells what went wrong), and not
      // between a crash and the restart the library makes of it.
      if (change.newState === State.Stopped && this.client === client && !this.stopping && !this.starting &&
          !client.restarting) {
        void this.stoppedByItself(client);
      }
      // The client restarts a crashed server by itself, with the trace of its own setting: ours again.
      if (change.newState === State.Running && this.client === client) void this.applyLogLevel();
    });
    this.client = client;
    this.events = events;
    try {
      const outcome = await this.startOrGiveUp(client);
      client.started = outcome === 'started';
      if (outcome === 'abandoned') {   // stopped or restarted while starting: no orphan server
        await client.stop().catch(() => undefined);   // (kills the process, which never answered)
        return undefined;
      }
      if (outcome === 'exited') throw new StartProblem(exitedBeforeInitialize(await client.exitWithin(EXIT_WAIT_MS)));
      if (outcome === 'timeout') {
        void client.stop().catch(() => undefined);
        throw new StartProblem(`it did not answer "initialize" within ${INITIALIZE_TIMEOUT_MS / 1000} s; ` +
          'is "diffusionInfill.serverPath" the infill-lsp program?');
      }
    } catch (error) {
      this.startFailed = true;
      let reason = error instanceof Error ? error.message : String(error);
      if (!(error instanceof StartProblem) && !client.started) {
        // The library's own error of a process that ended first ("write EPIPE" as it sent `initialize`).
        const exit = await client.exitWithin(EXIT_WAIT_MS);
        if (exit !== undefined) reason = exitedBeforeInitialize(exit);
      }
      const message = `could not start ${location.command}: ${reason}`;
      this.status.error(message);
      this.log('error', message);
      void vscode.window.showErrorMessage(`Diffusion Infill: ${message}`);
      if (this.client === client) {   // forgotten: a command (or a restart) tries again
        this.client = undefined;
        this.events?.dispose();
        this.events = undefined;
      }
      return undefined;
    }
    if (this.client !== client) {                   // stopped or restarted while starting: no orphan server
      await client.stop().catch(() => undefined);
      return undefined;
    }
    // A setting changed while the server was starting went nowhere (only a running client sends changes).
    const current = serverSettings();
    if (JSON.stringify(current) !== this.sentAtStart) {
      this.log('info', `settings changed while starting: sending ${JSON.stringify(current)} to the server`);
      await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: current } });
    }
    if (!events.serverReportsStatus) this.status.loading('loading the model');
    void this.queryStatus(client, events);
    return client;
  }

  /** A server that stopped by itself (crashed, killed) and is not restarted: said once, with how it ended, and
   * forgotten, so that a settings change (a smaller model, int4 after running out of memory) or the Restart
   * command starts one again. Opening files does not (one crash each time). */
  private async stoppedByItself(client: InfillClient): Promise<void> {
    const exit = await client.exitWithin(EXIT_WAIT_MS);
    if (this.client !== client) return;
    this.client = undefined;
    this.events?.dispose();
    this.events = undefined;
    this.startFailed = true;
    const when = !client.started ? 'before it answered "initialize"' : !client.ready ? 'while loading the model' : '';
    const message = `the server stopped${exit ? ` (${exit})` : ''}${when ? ` ${when}` : ''}` +
      `${exit === 'signal SIGKILL' ? ', killed (out of memory?)' : ''}; a settings change or ` +
      '"Diffusion Infill: Restart Server" starts it again';
    this.status.error(message);
    this.log('error', message);
    void vscode.window.showErrorMessage(`Diffusion Infill: ${message}`, 'Restart Server', 'Show Log').then((choice) => {
      if (choice === 'Restart Server') void vscode.commands.executeCommand(COMMANDS.restart);
      if (choice === 'Show Log') this.showLog();
    });
  }

  /** The client's start, unless `initialize` goes unanswered for INITIALIZE_TIMEOUT_MS or stop() gives up on it. */
  private async startOrGiveUp(client: LanguageClient): Promise<'started' | 'exited' | 'timeout' | 'abandoned'> {
    let timer: NodeJS.Timeout | undefined;
    const givenUp = new Promise<'timeout' | 'abandoned'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), INITIALIZE_TIMEOUT_MS);
      this.abandonStart = () => resolve('abandoned');
    });
    try {
      // A server that exits before it answers `initialize` is not restarted (errorHandler.closed), and then
      // vscode-languageclient's start() resolves all the same: only the client's state tells.
      const started = client.start()
        .then(() => (client.state === State.Running ? 'started' as const : 'exited' as const));
      return await Promise.race([started, givenUp]);
    } finally {
      clearTimeout(timer);
      this.abandonStart = undefined;
    }
  }

  /**
   * The context to hand vscode-languageclient so that the request carries LSP's own values. Version 9 copies VS
   * Code's context into the request unconverted:
   * - the trigger kind (Invoke 0, Automatic 1) where LSP 3.18 has Invoked 1, Automatic 2: typing then reads as an
   *   explicit invoke (several candidates, no latency budget) and an explicit invoke or "show next" as 0, which
   *   the server rejects as invalid;
   * - the completion selected in the suggestion list, whose vscode.Range goes out as an array [start, end]: every
   *   request made while that list is open (most identifier keystrokes) was rejected as invalid
   *   (microsoft/vscode-languageserver-node#1371). Its range is converted to LSP's {start, end}.
   * A client that converts the kind itself is left to send its own.
   */
  private protocolContext(document: vscode.TextDocument, position: vscode.Position,
    context: vscode.InlineCompletionContext): vscode.InlineCompletionContext {
    const wanted = context.triggerKind === vscode.InlineCompletionTriggerKind.Invoke
      ? LSP_TRIGGER_INVOKED : LSP_TRIGGER_AUTOMATIC;
    const converter = this.client?.code2ProtocolConverter;
    const sent = converter?.asInlineCompletionParams(document, position, context).context.triggerKind as number;
    const triggerKind = sent === wanted ? context.triggerKind
      : wanted as unknown as vscode.InlineCompletionTriggerKind;
    const info = context.selectedCompletionInfo;
    if (!info || !converter) return { ...context, triggerKind };
    const selected = { range: converter.asRange(info.range), text: info.text };
    return { triggerKind, selectedCompletionInfo: selected as unknown as vscode.SelectedCompletionInfo };
  }

  /** Asks the server for its state once; older servers without infill.status report through $/progress. */
  private async queryStatus(client: LanguageClient, events: ServerEventsFeature): Promise<void> {
    const commands = client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
    if (!commands.includes(SERVER_STATUS)) {
      this.log('debug', `the server has no ${SERVER_STATUS}; the status comes from $/progress and messages`);
      return;
    }
    try {
      const answer = await client.sendRequest(ExecuteCommandRequest.type, { command: SERVER_STATUS, arguments: [] });
      if (!events.serverReportsStatus) events.onStatus(answer as ServerStatus);
    } catch (error) {
      this.log('warn', `${SERVER_STATUS} failed: ${error instanceof Error ? error.message : error}`);
    }
  }

  async stop(): Promise<void> {
    this.abandonStart?.();   // a server still starting is stopped too, not left running (nor waited for forever)
    await this.starting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    this.events?.dispose();
    this.events = undefined;
    if (!client) return;
    this.stopping = true;
    try {
      // A server the client is restarting by itself (after a crash) cannot be stopped while it starts: wait for
      // it to be up, then stop it, rather than forget it running (the model held in memory, answering still).
      if (client.state === State.Starting) await client.start().catch(() => undefined);
      if (client.isRunning()) await client.stop(5000);
    } catch (error) {
      this.log('warn', `stopping the server: ${error instanceof Error ? error.message : error}`);
    } finally {
      this.stopping = false;
    }
  }

  /** Stop the server, then start it again where one is wanted: the user asked (the Restart command), or a file of
   * `diffusionInfill.languages` is open. A settings change or granted trust alone loads no model. */
  async restart(asked = false): Promise<void> {
    const restart = ++this.restarts;
    this.restartAsked ||= asked;
    this.startFailed = false;
    await this.stop();
    // A newer restart came while this one stopped the server: its status and its start stand (this one's "off"
    // written over them stayed on a running server), and it starts the server if either was asked to.
    if (restart !== this.restarts) return;
    asked = this.restartAsked;
    this.restartAsked = false;
    this.idle();
    const settings = extensionSettings();
    const wanted = asked || vscode.workspace.textDocuments.some((d) => served(d, settings.languages));
    if (settings.enable && wanted) await this.ensureStarted();
  }

  /** The `when` of the selection commands' keys and context menu items reads the served languages from here:
   * elsewhere Ctrl+Alt+F and Ctrl+Alt+R stay with whatever else binds them. */
  publishLanguages(): void {
    void vscode.commands.executeCommand('setContext', 'diffusionInfill.languages', extensionSettings().languages);
  }

  async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (event.affectsConfiguration(`${SECTION}.languages`)) this.publishLanguages();
    // vscode-languageclient sets the trace from its own `diffusionInfill.trace.server` (which we do not declare:
    // logLevel says it) on every settings change, after this listener: set ours again once it has.
    if (extensionSettings().logLevel === 'trace' || event.affectsConfiguration(`${SECTION}.logLevel`)) {
      setTimeout(() => void this.applyLogLevel(), 0);
    }
    if (!event.affectsConfiguration(SECTION)) return;
    if (needsRestart(event) && clientSettings() !== this.clientSettingsInEffect) {
      this.clientSettingsInEffect = clientSettings();
      this.log('info', 'settings changed: restarting the server');
      await this.restart();
      return;
    }
    if (affectsServer(event) && !this.client && this.startFailed) {
      // The last server stopped by itself or could not start: a changed option may be what it needed.
      this.log('info', 'settings changed after the server stopped: starting it again');
      await this.restart();
      return;
    }
    if (affectsServer(event) && this.client?.isRunning()) {
      // The server reloads the model itself when a model option changed.
      const settings = serverSettings();
      this.log('info', `settings changed: sending ${JSON.stringify(settings)} to the server`);
      await this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: settings } });
    }
  }

  private async applyLogLevel(): Promise<void> {
    if (!this.client?.isRunning()) return;
    await this.client.setTrace(extensionSettings().logLevel === 'trace' ? Trace.Verbose : Trace.Off);
  }

  /** Sends the selection, or the range a code action was offered for, to a server command; the server applies
   * its edit through workspace/applyEdit. */
  async runOnSelection(serverCommand: string, title: string, askInstruction: boolean, target?: ActionTarget): Promise<void> {
    const argument: Record<string, unknown> = {};
    let editor: vscode.TextEditor | undefined;
    let selection: vscode.Selection | undefined;
    if (!extensionSettings().enable) {
      // (The palette offers the commands still; the status bar alone said nothing at the selection.)
      void vscode.window.showWarningMessage('Diffusion Infill is off: "diffusionInfill.enable" is false.');
      return;
    }
    if (!target) {
      editor = vscode.window.activeTextEditor;
      // The keys and menus show wherever any selection is non-empty (VS Code's editorHasSelection), the primary one
      // or another cursor's: the primary if it holds text, else the first that does.
      const selected = editor?.selections.filter((s) => !s.isEmpty) ?? [];
      if (!editor || selected.length === 0) {
        void vscode.window.showWarningMessage('Diffusion Infill: select the code first.');
        return;
      }
      selection = editor.selection.isEmpty ? selected[0] : editor.selection;
      const { languages } = extensionSettings();
      if (!languages.includes(editor.document.languageId)) {
        void vscode.window.showWarningMessage(
          `Diffusion Infill: ${editor.document.languageId} is not in "diffusionInfill.languages".`);
        return;
      }
      if (!SERVED_SCHEMES.includes(editor.document.uri.scheme)) {
        // The server never saw this document (it is not synced to it): say so here, not "unknown document" there.
        void vscode.window.showWarningMessage(
          `Diffusion Infill works on files, untitled editors and notebook cells, not on ${editor.document.uri.scheme} documents.`);
        return;
      }
      if (selected.length > 1) {
        vscode.window.setStatusBarMessage('Diffusion Infill: one selection at a time; the others are left as they are',
          5000);
      }
      // Taken now, before the server starts (seconds) and before the instruction is asked for: a click meanwhile
      // must not change what is filled, and the version makes the server refuse text typed since.
      argument.version = editor.document.version;
    }
    if (askInstruction) {
      const instruction = await askForInstruction();
      if (instruction === undefined) return;   // Escape cancels the rewrite
      if (instruction) argument.instruction = instruction;
    }
    const client = await this.ensureStarted();
    if (!client) return;
    if (target) {
      // The server offered the action for this range and document version: sent as they are (the server refuses
      // a version the document has left).
      const uri = client.protocol2CodeConverter.asUri(target.uri).toString();
      editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri);
      Object.assign(argument, target);
    } else if (editor && selection) {
      argument.uri = client.code2ProtocolConverter.asUri(editor.document.uri);
      argument.range = client.code2ProtocolConverter.asRange(selection);
    }
    // The editor's indentation (detected from the file unless the user fixed it): the server indents its text so.
    // With spaces a level is indentSize wide; tabSize is how wide a tab is drawn (the two differ in setups like 8/4).
    const { tabSize, indentSize, insertSpaces } = editor?.options ?? {};
    const width = insertSpaces === true && typeof indentSize === 'number' ? indentSize : tabSize;
    if (typeof width === 'number' && typeof insertSpaces === 'boolean') {
      argument.options = { tabSize: width, insertSpaces };
    }
    this.log('debug', `${serverCommand} ${JSON.stringify(argument)}`);
    const started = Date.now();
    try {
      const answer = (await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        (_progress, token) => client.sendRequest(
          ExecuteCommandRequest.type, { command: serverCommand, arguments: [argument] }, token),
      )) as EditAnswer | null;
      if (answer?.applied) {
        this.status.latency(Date.now() - started);
        this.log('debug', `${serverCommand} applied ${JSON.stringify(answer.text ?? '')}`);
      } else if (answer?.message) {
        // The server has shown it already (window/showMessage), whatever stopped the edit: logged only, not shown
        // a second time.
        this.log('info', `${serverCommand}: ${answer.message}`);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log('error', `${serverCommand} failed: ${message}`);
      if (!/cancel/i.test(message)) void vscode.window.showErrorMessage(`Diffusion Infill: ${message}`);
    }
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.status.dispose();
    this.channel.dispose();
  }
}

let extension: InfillExtension | undefined;

/** vscode-languageclient's client, quiet once the extension has given up on it: stopping a client that never
 * finished starting makes the library pop up "couldn't create connection to server" on top of our message. */
class InfillClient extends LanguageClient {
  /** Whether its current process answered `initialize`. Until then its errors only go to the log: a start that
   * fails is told once, by InfillExtension (the library's own pop-ups came too, "couldn't create connection to
   * server", "Restarting server failed"). */
  started = false;
  /** Whether its current process has said it is ready (the model loaded). */
  ready = false;
  /** When the library last restarted it after a crash (ms), or 0; and whether it is doing so now. */
  restartedAt = 0;
  restarting = false;
  /** How its last process ended ("code 1", "signal SIGKILL"), from the line the library logs when it does. */
  exit: string | undefined;
  private exitReported: (() => void) | undefined;

  override error(message: string, data?: unknown, showNotification: boolean | 'force' = true): void {
    const ended = /^Server process exited with (code|signal) (\S+)\.$/.exec(message);
    if (ended) {
      this.exit = `${ended[1]} ${ended[2]}`;
      this.exitReported?.();
    }
    super.error(message, data, this.started ? showNotification : false);
  }

  /** `exit`, waiting up to `ms` for it: the process's end may be reported after its output closed. */
  async exitWithin(ms: number): Promise<string | undefined> {
    if (this.exit === undefined) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.exitReported = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.exitReported = undefined;
    }
    return this.exit;
  }

  /** Whether a crash of its process is worth one restart: it had loaded the model (a crash while loading, out of
   * memory most often, would come again, each time after a long load) and it was not restarted in the last
   * three minutes. */
  restartAfterCrash(): boolean {
    if (!this.started || !this.ready || Date.now() - this.restartedAt < CRASH_RESTART_WINDOW_MS) return false;
    this.restartedAt = Date.now();
    this.restarting = true;
    return true;
  }
}

/** A start that failed for a reason of ours, already worded for the user. */
class StartProblem extends Error {}

/** Why a server process ended before it answered `initialize`, from how it ended. */
function exitedBeforeInitialize(exit: string | undefined): string {
  const hint = exit === 'code 0' ? ' (is "diffusionInfill.serverPath" the infill-lsp program itself?)' : '';
  return `it exited${exit ? ` (${exit})` : ''} before it answered "initialize"${hint}; its error output is in the ` +
    'log (Diffusion Infill: Show Log)';
}

/** The rewrite's optional instruction: '' for none, undefined when the user pressed Escape. */
function askForInstruction(): Thenable<string | undefined> {
  return vscode.window.showInputBox({
    title: 'Diffusion Infill: Rewrite Selection',
    prompt: 'Optional instruction (leave empty to just rewrite)',
  });
}

export function activate(context: vscode.ExtensionContext): void {
  const infill = new InfillExtension();
  extension = infill;
  context.subscriptions.push(
    // From a key, the palette or the context menu the selection is the target; from a code action its argument.
    vscode.commands.registerCommand(COMMANDS.fill, (from?: unknown) =>
      infill.runOnSelection(SERVER_FILL, 'Diffusion Infill: filling the selection…', false, actionTarget(from))),
    vscode.commands.registerCommand(COMMANDS.rewrite, (from?: unknown) =>
      infill.runOnSelection(SERVER_REWRITE, 'Diffusion Infill: rewriting the selection…', true, actionTarget(from))),
    vscode.commands.registerCommand(COMMANDS.restart, () => infill.restart(true)),
    vscode.commands.registerCommand(COMMANDS.showLog, () => infill.showLog()),
    vscode.workspace.onDidChangeConfiguration((event) => infill.onConfigurationChanged(event)),
    vscode.workspace.onDidOpenTextDocument((document) => infill.startWhenNeeded(document)),
    vscode.workspace.onDidCloseTextDocument((document) => infill.forgetOffered(document)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => infill.restart()),
  );
  infill.idle();
  infill.publishLanguages();
  for (const document of vscode.workspace.textDocuments) infill.startWhenNeeded(document);
}

export function deactivate(): Thenable<void> | undefined {
  const infill = extension;
  extension = undefined;
  return infill?.dispose();
}
