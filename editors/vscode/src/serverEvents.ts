// Server-to-client traffic that feeds the status bar: $/progress, window/showMessage and diffusionInfill/status.
// vscode-languageclient handles progress and messages itself; this feature takes them over so that the status bar
// sees them too, and still shows the messages as notifications.
import * as vscode from 'vscode';
import {
  BaseLanguageClient,
  ClientCapabilities,
  FeatureState,
  MessageType,
  ShowMessageNotification,
  ShowMessageParams,
  StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressCreateParams,
  WorkDoneProgressCreateRequest,
} from 'vscode-languageclient/node';
import { ServerStatus, StatusIndicator } from './status';

export const STATUS_NOTIFICATION = 'diffusionInfill/status';

export class ServerEventsFeature implements StaticFeature {
  private readonly handlers: vscode.Disposable[] = [];   // for the client's whole life, restarts included
  private readonly disposables: vscode.Disposable[] = [];  // for one server process
  /** True once the server has sent its own status; from then on it, not progress or messages, sets the state. */
  serverReportsStatus = false;

  constructor(
    private readonly client: BaseLanguageClient,
    private readonly status: StatusIndicator,
    private readonly log: (message: string) => void,
    private readonly onReady: () => void = () => undefined,   // the server said it is ready (the model loaded)
  ) {
    // Registered before start, so these replace the client's defaults before the server can send anything.
    this.handlers.push(
      client.onNotification(ShowMessageNotification.type, (params) => this.showMessage(params)),
      client.onNotification(STATUS_NOTIFICATION, (params: ServerStatus) => this.onStatus(params)),
    );
  }

  getState(): FeatureState {
    return { kind: 'static' };
  }

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = capabilities.window ?? {};
    capabilities.window.workDoneProgress = true;
  }

  // Runs after the client's own ProgressFeature (features initialize in registration order), so this handler wins.
  initialize(): void {
    this.disposables.push(
      this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => this.trackProgress(params)),
    );
  }

  onStatus(params: ServerStatus): void {
    if (!params || typeof params !== 'object' || !params.state) return;
    this.log(`status: ${JSON.stringify(params)}`);
    this.serverReportsStatus = true;
    if (params.state === 'ready') this.onReady();
    this.status.fromServer(params);
  }

  private trackProgress(params: WorkDoneProgressCreateParams): void {
    const subscription = this.client.onProgress(WorkDoneProgress.type, params.token, (value) => {
      if (value.kind === 'end') {
        subscription.dispose();
        this.log(`progress: ${value.message ?? 'done'}`);
      }
      if (this.serverReportsStatus) return;
      if (value.kind === 'begin') this.status.loading(value.message ?? value.title, value.percentage);
      else if (value.kind === 'report') this.status.loading(value.message ?? '', value.percentage);
      else if (/fail|error/i.test(value.message ?? '')) this.status.error(value.message ?? 'failed');
      else {
        this.status.ready(value.message ?? '');
        this.onReady();
      }
    });
    this.disposables.push(subscription);
  }

  private showMessage(params: ShowMessageParams): void {
    this.log(`message: ${params.message}`);
    switch (params.type) {
      case MessageType.Error:
        if (!this.serverReportsStatus) this.status.error(params.message);
        void vscode.window.showErrorMessage(params.message);
        break;
      case MessageType.Warning:
        void vscode.window.showWarningMessage(params.message);
        break;
      default:
        void vscode.window.showInformationMessage(params.message);
    }
  }

  clear(): void {
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }

  dispose(): void {
    this.clear();
    for (const disposable of this.handlers.splice(0)) disposable.dispose();
  }
}
