"""A frozen copy of one document, with LSP positions <-> Python str offsets.

Requests run for seconds while the user keeps typing, and pygls edits its TextDocument in place; answers are
therefore computed against the copy taken when the request arrived, never against the live document.
Lines end at \\n, \\r\\n or \\r, as the LSP specification says (str.splitlines would also split on form feeds
and U+2028, which editors do not). Character offsets use the negotiated encoding (UTF-16 unless agreed otherwise).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument

LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Snapshot:
    uri: str
    source: str
    version: int | None = None
    language_id: str | None = None
    path: str | None = None
    codec: PositionCodec = field(default_factory=PositionCodec)

    @classmethod
    def of(cls, document: TextDocument) -> "Snapshot":
        return cls(uri=document.uri, source=document.source, version=document.version,
                   language_id=document.language_id, path=document.path, codec=document.position_codec)

    @cached_property
    def _lines(self) -> list[tuple[int, int]]:
        """(start, end) str offsets of each line's content, line breaks excluded."""
        spans, start = [], 0
        for brk in LINE_BREAK.finditer(self.source):
            spans.append((start, brk.start()))
            start = brk.end()
        spans.append((start, len(self.source)))
        return spans

    def offset_of(self, position: types.Position) -> int | None:
        """str offset of `position`, or None when it lies outside the document or inside a surrogate pair."""
        if position.line < 0 or position.character < 0 or position.line >= len(self._lines):
            return None
        start, end = self._lines[position.line]
        units = 0
        for index in range(start, end):
            if units == position.character:
                return index
            units += self.codec.client_num_units(self.source[index])
            if units > position.character:
                return None  # between the two UTF-16 halves of one character
        return end if units == position.character else None

    def position_of(self, offset: int) -> types.Position:
        offset = max(0, min(offset, len(self.source)))
        line = self._line_index(offset)
        start, end = self._lines[line]
        column = self.codec.client_num_units(self.source[start:min(offset, end)])
        return types.Position(line=line, character=column)

    def range_of(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position_of(start), end=self.position_of(end))

    def _line_index(self, offset: int) -> int:
        low, high = 0, len(self._lines) - 1
        while low < high:  # the last line whose start is <= offset
            middle = (low + high + 1) // 2
            if self._lines[middle][0] <= offset:
                low = middle
            else:
                high = middle - 1
        return low
