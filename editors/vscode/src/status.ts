// The status bar item: starting, loading (with progress), ready (device, model, last latency), error, off.
import * as vscode from 'vscode';

/** The server's status object (`infill.status` and the `diffusionInfill/status` notification). */
export interface ServerStatus {
  state: 'loading' | 'ready' | 'error';
  model?: string | null;
  device?: string | null;
  message?: string | null;
  lastLatencyMs?: number | null;
  lastModelLatencyMs?: number | null;
  lastAnswerSource?: string | null;
  counters?: Record<string, unknown> | null;
}

type State = 'off' | 'starting' | 'loading' | 'ready' | 'error';

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function shortModel(model: string): string {
  // A local folder or hub id: its last part is the name a person recognises.
  const parts = model.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? model;
}

export class StatusIndicator implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: State = 'off';
  private message = '';
  private percentage: number | undefined;
  private model = '';
  private device = '';
  private lastLatencyMs: number | undefined;
  // The model's time for the last answer it computed: the bar shows it, as an answer typed through a suggestion
  // or taken from the cache takes about 0 ms and says nothing of the model's speed.
  private modelLatencyMs: number | undefined;
  private answerSource = '';
  private counters: Record<string, unknown> = {};

  constructor(showLogCommand: string) {
    this.item = vscode.window.createStatusBarItem('diffusionInfill.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Diffusion Infill';
    this.item.command = showLogCommand;
    this.render();
    this.item.show();
  }

  off(reason: string): void {
    this.forgetServer();
    this.set('off', reason);
  }

  starting(command: string): void {
    this.forgetServer();
    this.set('starting', `starting ${command}`);
  }

  loading(message: string, percentage?: number): void {
    if (percentage !== undefined) this.percentage = percentage;
    this.set('loading', message || this.message);
  }

  ready(message: string): void {
    this.percentage = undefined;
    this.set('ready', message);
  }

  error(message: string): void {
    this.set('error', message);
  }

  /** A latency measured by the extension; the server's own figure wins when it sends one. */
  latency(ms: number): void {
    this.lastLatencyMs = ms;
    this.render();
  }

  isLoaded(): boolean {
    return this.state === 'ready';
  }

  fromServer(status: ServerStatus): void {
    // Every status names the model and device (null for the shipped model while it loads, and for a device not
    // chosen yet): taken as they are, so a model switched back to the default does not show the old one's name.
    if (status.model !== undefined) this.model = status.model ?? '';
    if (status.device !== undefined) this.device = status.device ?? '';
    if (typeof status.lastLatencyMs === 'number') this.lastLatencyMs = status.lastLatencyMs;
    if (typeof status.lastModelLatencyMs === 'number') this.modelLatencyMs = status.lastModelLatencyMs;
    if (typeof status.lastAnswerSource === 'string') this.answerSource = status.lastAnswerSource;
    if (status.counters && typeof status.counters === 'object') this.counters = status.counters;
    const message = status.message ?? '';
    if (status.state === 'loading') this.loading(message || 'loading the model');
    else if (status.state === 'error') this.error(message || 'the server reported an error');
    else if (status.state === 'ready') this.ready(message);
  }

  /** What the last server said about itself: gone with it (the next one may load another model elsewhere). */
  private forgetServer(): void {
    this.percentage = undefined;
    this.model = '';
    this.device = '';
    this.lastLatencyMs = undefined;
    this.modelLatencyMs = undefined;
    this.answerSource = '';
    this.counters = {};
  }

  private set(state: State, message: string): void {
    this.state = state;
    this.message = message;
    this.render();
  }

  private render(): void {
    const item = this.item;
    item.backgroundColor = undefined;
    let text: string;
    let summary: string;
    switch (this.state) {
      case 'off':
        text = '$(circle-slash) Infill';
        summary = `off: ${this.message}`;
        break;
      case 'starting':
        text = '$(loading~spin) Infill';
        summary = 'starting the server';
        break;
      case 'loading':
        text = `$(loading~spin) Infill${this.percentage !== undefined ? ` ${Math.round(this.percentage)}%` : ''}`;
        summary = `loading: ${this.message}`;
        break;
      case 'ready': {
        const where = this.device ? ` ${this.device}` : '';
        const shown = this.modelLatencyMs ?? this.lastLatencyMs;
        const latency = shown !== undefined ? ` · ${seconds(shown)}` : '';
        text = `$(sparkle) Infill${where}${latency}`;
        summary = `ready${this.device ? ` on ${this.device}` : ''}`;
        break;
      }
      case 'error':
        text = '$(error) Infill';
        summary = `error: ${this.message}`;
        item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
        break;
    }
    const lines = [`Diffusion Infill: ${summary}`];
    if (this.state === 'ready' && this.message) lines.push(this.message);
    if (this.model) lines.push(`Model: ${shortModel(this.model)}`);
    if (this.lastLatencyMs !== undefined) {
      lines.push(`Last answer: ${seconds(this.lastLatencyMs)}${this.answerSource ? ` (${this.answerSource})` : ''}`);
    }
    if (this.modelLatencyMs !== undefined) lines.push(`Model time (last run): ${seconds(this.modelLatencyMs)}`);
    for (const [name, value] of Object.entries(this.counters)) lines.push(`${name}: ${String(value)}`);
    lines.push('', 'Click to show the log.');
    item.text = text;
    item.tooltip = lines.join('\n');
    // What screen readers say, and a stable handle for the editor test.
    item.accessibilityInformation = { label: `Diffusion Infill: ${summary}`, role: 'button' };
  }

  dispose(): void {
    this.item.dispose();
  }
}
