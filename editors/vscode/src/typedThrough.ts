// VS Code keeps the candidate the user cycled to only while a new answer holds an item with the same text and the
// same range start. While a suggestion is typed through, the server answers with each candidate's rest at the
// cursor, under the id it was first offered with; given back whole, from where it was first offered, the candidate
// on screen stays on screen (else VS Code goes back to the first, and Tab writes that one).
import * as vscode from 'vscode';

/** The id an item's accept command carries (the server's `infill.accepted` argument), if any. */
function suggestionId(item: vscode.InlineCompletionItem): string | undefined {
  const first = item.command?.arguments?.[0];
  return typeof first?.id === 'string' ? first.id : undefined;
}

export class OfferedStarts {
  private readonly starts = new Map<string, Map<string, vscode.Position>>();   // document -> suggestion id -> start

  /** Turns the rests of suggestions offered earlier into whole items from where they started; remembers the rest. */
  wholeItems(document: vscode.TextDocument, items: vscode.InlineCompletionItem[]): void {
    const key = document.uri.toString();
    const known = this.starts.get(key);
    const seen = new Map<string, vscode.Position>();
    for (const item of items) {
      const id = suggestionId(item);
      if (!id || !item.range || typeof item.insertText !== 'string') continue;
      const start = known?.get(id);
      if (start && start.line === item.range.start.line && start.isBefore(item.range.start)) {
        // (Within one line: VS Code shows a rest typed past a line break from the cursor anyway.)
        item.insertText = document.getText(new vscode.Range(start, item.range.start)) + item.insertText;
        item.range = new vscode.Range(start, item.range.end);
      }
      seen.set(id, item.range.start);
    }
    if (seen.size > 0) this.starts.set(key, seen);
  }

  forget(document: vscode.TextDocument): void {
    this.starts.delete(document.uri.toString());
  }
}
