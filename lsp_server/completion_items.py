"""An inline suggestion as a completion item, for clients that show completion menus but no ghost text."""
from __future__ import annotations

from lsprotocol import types

from infill.style import LINE_BREAK

LABEL_CHARS = 60


def label_of(text: str) -> str:
    """The first line with code on it, shortened: what the menu shows (the whole text is in the documentation)."""
    line = next((line.strip() for line in LINE_BREAK.split(text) if line.strip()), text.strip())
    return line if len(line) <= LABEL_CHARS else line[:LABEL_CHARS - 1] + "…"


def as_completion_item(item: types.InlineCompletionItem, replaced: str = "") -> types.CompletionItem | None:
    """Same text, same range (the cursor, plus any closers the editor typed after it, which the suggestion
    replaces), same accept command. The range starts at the cursor, so clients filter on nothing and keep the item
    however the word before the cursor reads.

    A completion item's range must stay on one line (LSP 3.17, CompletionItem.textEdit). Typed through past a line
    break, a suggestion replaces closers the editor put on the lines below (`{|}` then Enter: `\n}`); when it ends
    with `replaced`, that text, the item inserts the rest at the cursor and the closers stay. Otherwise there is
    no item: an edit after the cursor in additionalTextEdits is applied after the insertion by some clients, at
    positions it has moved."""
    text = item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value
    edit_range = item.range
    if edit_range is not None and edit_range.start.line != edit_range.end.line:
        if not replaced or not text.endswith(replaced):
            return None
        text, edit_range = text[:len(text) - len(replaced)], types.Range(start=edit_range.start, end=edit_range.start)
    multi_line = LINE_BREAK.search(text.strip("\r\n")) is not None   # the document's line breaks: \r\n or \r too
    # The menu names what is new: a text that keeps the user's own text after the cursor (a `# type: ignore` the
    # fill goes after) was labelled with that comment.
    new = text[len(replaced):] if replaced and text.startswith(replaced) else text
    return types.CompletionItem(
        label=label_of(new if new.strip() else text), kind=types.CompletionItemKind.Text, detail="Diffusion Infill",
        documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=text) if multi_line else None,
        text_edit=types.TextEdit(range=edit_range, new_text=text), sort_text="0",
        preselect=True, insert_text_format=types.InsertTextFormat.PlainText, command=item.command,
        # The text is indented for its place already; a client must not indent its lines again.
        insert_text_mode=types.InsertTextMode.AsIs)
