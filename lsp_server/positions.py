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

    def offset_of(self, position: types.Position, clamp_to_line_end: bool = True) -> int | None:
        """str offset of `position`, or None when its line is past the last one or it lies inside a character
        (between the two UTF-16 halves of an astral character, or inside a UTF-8 sequence). A character past the
        end of its line is the line's end, as LSP 3.17 says ("Position"); with clamp_to_line_end=False it is None
        (a column a person typed)."""
        if position.line < 0 or position.character < 0 or position.line >= len(self._lines):
            return None
        start, end = self._lines[position.line]
        line = self.source[start:end]
        characters = chars_in_units(line, position.character, self.codec)
        if characters is None and clamp_to_line_end and position.character > units_in(line, self.codec):
            return end
        return None if characters is None else start + characters

    def position_of(self, offset: int) -> types.Position:
        offset = max(0, min(offset, len(self.source)))
        line = self._line_index(offset)
        start, end = self._lines[line]
        column = units_in(self.source[start:min(offset, end)], self.codec)
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


def clamped_offset(source: str, position: types.Position, codec: PositionCodec) -> int:
    """What the LSP specification makes of any position in a text edit: a line past the end is the end of the
    document, a character past the end of its line is the end of that line. A position inside a character moves to
    that character's start."""
    span = line_span(source, position.line)
    if span is None:
        return len(source)
    start, end = span
    line = source[start:end]
    units = max(0, position.character)
    if units >= units_in(line, codec):
        return end
    while (characters := chars_in_units(line, units, codec)) is None:
        units -= 1
    return start + characters


def line_span(source: str, line: int) -> tuple[int, int] | None:
    """(start, end) str offsets of one line's content, or None past the last line. Without building every line's
    span: each keystroke in a 2 MB document pays for it."""
    if line > 0:
        parts = source.split("\n", line) if "\r" not in source else LINE_BREAK.split(source, maxsplit=line)
        if len(parts) <= line:
            return None
        start = len(source) - len(parts[-1])
    else:
        start = 0
    line_break = LINE_BREAK.search(source, start)
    return start, line_break.start() if line_break else len(source)


# Unit counts through the codecs of the str type (C speed): a minified 1 MB line must not cost seconds per request.

def encoding_of(codec: PositionCodec) -> str:
    """The Python codec whose bytes count the client's units: utf-8, utf-16-le (2 bytes a unit) or utf-32."""
    if codec.encoding == types.PositionEncodingKind.Utf8:
        return "utf-8"
    if codec.encoding == types.PositionEncodingKind.Utf32:
        return "utf-32"
    return "utf-16-le"   # the LSP default, and pygls' choice for anything it does not know


def units_in(text: str, codec: PositionCodec) -> int:
    """The client's units (UTF-8 bytes, UTF-16 code units or code points) in `text`."""
    encoding = encoding_of(codec)
    if encoding == "utf-32" or text.isascii():
        return len(text)
    encoded = len(text.encode(encoding, "surrogatepass"))
    return encoded // 2 if encoding == "utf-16-le" else encoded


def chars_in_units(line: str, units: int, codec: PositionCodec) -> int | None:
    """How many characters of `line` the first `units` client units cover; None past the line's end or when the
    count ends inside a character."""
    encoding = encoding_of(codec)
    if encoding == "utf-32" or line.isascii():
        return units if units <= len(line) else None
    width = 2 if encoding == "utf-16-le" else 1
    encoded = line.encode(encoding, "surrogatepass")
    if units * width > len(encoded):
        return None
    try:
        head = encoded[:units * width].decode(encoding, "surrogatepass")
    except UnicodeDecodeError:
        return None   # inside a UTF-8 sequence
    # Cut between the halves of a UTF-16 pair, the head ends in a lone surrogate the line does not have there.
    return len(head) if line.startswith(head) else None
