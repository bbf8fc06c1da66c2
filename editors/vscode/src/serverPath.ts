// Where `infill-lsp` is: the configured path, else the workspace's virtual environment, else PATH.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const EXECUTABLE = process.platform === 'win32' ? 'infill-lsp.exe' : 'infill-lsp';
const VENV_BIN = process.platform === 'win32' ? 'Scripts' : 'bin';
const VENV_NAMES = ['.venv', 'venv'];

export interface ServerLocation {
  command: string;
  foundIn: 'setting' | 'workspace' | 'PATH';
}

/** A configured path that cannot be run: why, for the user. */
export interface ServerPathProblem {
  problem: string;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function expand(configured: string, folders: string[]): string {
  // (A function: a replacement string would read `$$` or `$'` in the folder's name as patterns.)
  let value = configured.replace(/\$\{workspaceFolder\}/g, () => folders[0] ?? '');
  if (value === '~' || /^~[\\/]/.test(value)) value = path.join(os.homedir(), value.slice(1));
  // A bare name ("infill-lsp") stays a PATH lookup for the process spawner; a relative path (either separator:
  // `.venv\Scripts\infill-lsp.exe` on Windows) is the workspace's.
  if (!path.isAbsolute(value) && /[\\/]/.test(value) && folders[0]) value = path.join(folders[0], value);
  return value;
}

/**
 * `folders` are the workspace folders' paths; pass none for an untrusted workspace, whose virtual environment
 * must not be run (it could hold any program). A relative serverPath then has no folder to be relative to: it is
 * refused, not left to the process spawner, which would look for it in the (untrusted) working folder.
 */
export function findServer(setting: unknown, folders: string[]): ServerLocation | ServerPathProblem | undefined {
  // VS Code does not check a setting's type when the extension reads it: a list (as Neovim's `cmd` is) or a number
  // would otherwise throw here and leave the extension without its commands.
  if (setting !== undefined && setting !== null && typeof setting !== 'string') {
    return { problem: `"diffusionInfill.serverPath" is ${JSON.stringify(setting)}; it takes one path, as a string ` +
      'without arguments (the server reads its options from the other diffusionInfill settings).' };
  }
  // A path pasted with its quotes (Windows' "Copy as path" adds them) is the path inside them.
  const configured = (setting ?? '').trim().replace(/^(["'])(.*)\1$/, '$2').trim();
  if (configured) {
    const command = expand(configured, folders);
    const inWorkspace = /\$\{workspaceFolder\}/.test(configured) || (!path.isAbsolute(command) && /[\\/]/.test(command));
    if (inWorkspace && !folders[0]) {
      return { problem: `"diffusionInfill.serverPath" is "${configured}", a path in the workspace, and this workspace ` +
        'is not trusted (or has no folder): give the full path of infill-lsp, or trust the workspace.' };
    }
    return { command, foundIn: 'setting' };
  }
  for (const folder of folders) {
    for (const venv of VENV_NAMES) {
      const candidate = path.join(folder, venv, VENV_BIN, EXECUTABLE);
      if (isExecutable(candidate)) return { command: candidate, foundIn: 'workspace' };
    }
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, EXECUTABLE))) return { command: path.join(dir, EXECUTABLE), foundIn: 'PATH' };
  }
  return undefined;
}
