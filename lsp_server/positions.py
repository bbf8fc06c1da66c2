"""LSP positions (UTF-16 units by default) <-> Python str offsets, refusing positions outside the document."""
from __future__ import annotations

from lsprotocol import types
from pygls.workspace import TextDocument


def offset_of(document: TextDocument, position: types.Position) -> int | None:
    """str offset of `position`, or None when it lies outside the document."""
    lines = document.lines
    if position.line < 0 or position.character < 0:
        return None
    if position.line >= max(len(lines), 1):
        # The position just after a final newline is a valid empty last line.
        if position.line == len(lines) and position.character == 0 and (not lines or lines[-1].endswith("\n")):
            return len(document.source)
        return None
    line = lines[position.line] if lines else ""
    content = line.rstrip("\r\n")
    if position.character > document.position_codec.client_num_units(content):
        return None
    return document.offset_at_position(position)


def position_of(document: TextDocument, offset: int) -> types.Position:
    source = document.source
    line = source.count("\n", 0, offset)
    line_start = source.rfind("\n", 0, offset) + 1
    return types.Position(line=line, character=document.position_codec.client_num_units(source[line_start:offset]))


def range_of(document: TextDocument, start: int, end: int) -> types.Range:
    return types.Range(start=position_of(document, start), end=position_of(document, end))
