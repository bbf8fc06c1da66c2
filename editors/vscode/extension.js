// Diffusion Infill for VS Code: starts `infill-lsp` over stdio and forwards two commands to it.
// Everything clever (what to complete, how to clean it, the edit itself) happens in the server.
'use strict';

const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

const SECTION = 'diffusionInfill';
const LANGUAGES = ['python', 'javascript', 'typescript', 'go', 'rust', 'c', 'cpp', 'java', 'lua'];
// The settings the server understands; serverPath is ours alone and would earn an "unknown option" warning.
const SERVER_SETTINGS = ['model', 'allowDownload', 'device', 'maxNewTokens'];

let client;

function serverSettings() {
  const config = vscode.workspace.getConfiguration(SECTION);
  const settings = {};
  for (const key of SERVER_SETTINGS) {
    const value = config.get(key);
    if (value !== undefined) settings[key] = value;
  }
  return settings;
}

function createClient() {
  const serverPath = vscode.workspace.getConfiguration(SECTION).get('serverPath') || 'infill-lsp';
  const serverOptions = { command: serverPath, args: [] };
  const clientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    initializationOptions: { [SECTION]: serverSettings() },
  };
  const languageClient = new LanguageClient(SECTION, 'Diffusion Infill', serverOptions, clientOptions);
  // textDocument/inlineCompletion is still a "proposed" feature in vscode-languageclient 9: opt in, or the
  // client never asks for ghost text.
  languageClient.registerProposedFeatures();
  return languageClient;
}

async function startClient() {
  client = createClient();
  try {
    await client.start();
  } catch (error) {
    // Most often infill-lsp is not on the PATH VS Code was started with.
    vscode.window.showErrorMessage(
      `Diffusion Infill: could not start the server (${error.message || error}). ` +
      'Set "diffusionInfill.serverPath" to the full path of infill-lsp.');
  }
}

async function restartClient() {
  if (client && client.isRunning()) await client.stop();
  await startClient();
}

// Sends the selection to one of the server's commands; the server answers with workspace/applyEdit itself.
async function runOnSelection(serverCommand, title, instruction) {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !client || !client.isRunning()) {
    vscode.window.showWarningMessage('Diffusion Infill: open a file the server handles first.');
    return;
  }
  const argument = {
    uri: client.code2ProtocolConverter.asUri(editor.document.uri),
    range: client.code2ProtocolConverter.asRange(editor.selection),
  };
  if (instruction) argument.instruction = instruction;
  const answer = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    (_progress, token) => client.sendRequest(
      'workspace/executeCommand', { command: serverCommand, arguments: [argument] }, token),
  );
  // Model-side problems are already shown by the server (window/showMessage); this covers an edit the editor
  // refused, e.g. because the text changed while the model was working.
  if (answer && answer.applied === false && answer.message) {
    vscode.window.setStatusBarMessage(`Diffusion Infill: ${answer.message}`, 5000);
  }
}

async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('diffusionInfill.fillSelection', () =>
      runOnSelection('infill.fillSelection', 'Diffusion Infill: filling the selection…')),
    vscode.commands.registerCommand('diffusionInfill.rewriteSelection', async () => {
      const instruction = await vscode.window.showInputBox({
        title: 'Diffusion Infill: Rewrite Selection',
        prompt: 'Optional instruction (leave empty to just rewrite)',
      });
      if (instruction === undefined) return; // Escape cancels the rewrite
      await runOnSelection('infill.rewriteSelection', 'Diffusion Infill: rewriting the selection…', instruction);
    }),
    vscode.commands.registerCommand('diffusionInfill.restartServer', restartClient),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(SECTION) || !client) return;
      if (event.affectsConfiguration(`${SECTION}.serverPath`)) {
        await restartClient();
      } else if (client.isRunning()) {
        // Push only our section; the server reloads the model itself when a model setting changed.
        await client.sendNotification('workspace/didChangeConfiguration', {
          settings: { [SECTION]: serverSettings() },
        });
      }
    }),
  );
  await startClient();
}

function deactivate() {
  return client && client.isRunning() ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
