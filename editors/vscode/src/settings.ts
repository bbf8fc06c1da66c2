// The extension's settings (section "diffusionInfill") and the part of them the server understands.
import * as vscode from 'vscode';

export const SECTION = 'diffusionInfill';

// Names the server reads (lsp_server/config.py); the others are the extension's own and would earn an
// "unknown option" warning from the server.
const SERVER_KEYS = [
  'model', 'allowDownload', 'device', 'quantize', 'steps', 'threads', 'maxNewTokens', 'inlineBudgetMs', 'relatedFiles',
  'contextTokens', 'dtype', 'fastPath', 'reusePrefix', 'speculate', 'readAhead', 'seed', 'trustRemoteCode',
] as const;
// Not sent: completionItems (VS Code shows inline suggestions itself, so the completion-menu copy stays off).

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ExtensionSettings {
  enable: boolean;
  serverPath: unknown;   // a string when the user wrote one; findServer reports any other value
  languages: string[];
  logLevel: LogLevel;
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

export function extensionSettings(): ExtensionSettings {
  const c = config();
  const logLevel = c.get<string>('logLevel', 'info');
  const languages = c.get<unknown>('languages');
  return {
    // (`"false"` written as a string is off too: VS Code only underlines it)
    enable: ![false, 'false'].includes(c.get<unknown>('enable', true) as never),
    serverPath: c.get<unknown>('serverPath'),
    languages: Array.isArray(languages) ? languages.filter((l): l is string => typeof l === 'string') : [],
    logLevel: (LOG_LEVELS as readonly string[]).includes(logLevel) ? (logLevel as LogLevel) : 'info',
  };
}

/** The options sent to the server as initializationOptions and in workspace/didChangeConfiguration. */
export function serverSettings(): Record<string, unknown> {
  const c = config();
  const settings: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    const value = c.get(key);
    if (value !== undefined) settings[key] = value;
  }
  if (typeof settings.model === 'string') settings.model = withWorkspaceFolder(settings.model);
  return settings;
}

/** `${workspaceFolder}` in the model setting is the first folder's path, as in serverPath (the server knows no
 * such variable: it looked for a folder of that name). Left as it is in a window without a folder or in an
 * untrusted workspace (a model of the workspace's own, loaded with the user's trustRemoteCode, could run its code),
 * where the server's "not found" names it; granting trust restarts the server. */
function withWorkspaceFolder(value: string): string {
  if (!vscode.workspace.isTrusted) return value;
  const folder = (vscode.workspace.workspaceFolders ?? []).find((f) => f.uri.scheme === 'file');
  return folder ? value.replace(/\$\{workspaceFolder\}/g, () => folder.uri.fsPath) : value;
}

/** Settings whose change needs a new client (a new process, or a new document selector). */
export function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  return ['serverPath', 'languages', 'enable'].some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
}

/** The values of those settings, as JSON: VS Code names a setting in a change event also when its value in effect
 * stayed (a workspace folder whose own settings.json mentions it added or removed), and a restart for that would
 * drop the requests in progress and load the model again for nothing. */
export function clientSettings(): string {
  const { enable, serverPath, languages } = extensionSettings();
  return JSON.stringify({ enable, serverPath, languages });
}

export function affectsServer(event: vscode.ConfigurationChangeEvent): boolean {
  return SERVER_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
}
