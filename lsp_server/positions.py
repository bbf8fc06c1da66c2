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

from infill.style import LINE_BREAK, has_lone_crs


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

    def offset_of(self, position: types.Position, clamp_to_line_end: bool = True) -> int | None:
        """str offset of `position`, or None when its line is past the last one or it lies inside a character
        (between the two UTF-16 halves of an astral character, or inside a UTF-8 sequence). A character past the
        end of its line is the line's end, as LSP 3.17 says ("Position"); with clamp_to_line_end=False it is None
        (a column a person typed)."""
        if position.character < 0:
            return None
        span = line_span(self.source, position.line, self._lone_crs)
        if span is None:
            return None
        start, end = span
        line = self.source[start:end]
        characters = chars_in_units(line, position.character, self.codec)
        if characters is None and clamp_to_line_end and position.character > units_in(line, self.codec):
            return end
        return None if characters is None else start + characters

    def end_offset_of(self, position: types.Position) -> int | None:
        """offset_of for the end of a range to replace, where the start of the line after the last one is the
        document's end: a line-wise selection of a last line without a line break ends there (LSP reads a text
        edit's range so). Any other place past the end is still None."""
        if (position.line > 0 and position.character == 0 and line_span(self.source, position.line, self._lone_crs)
                is None and line_span(self.source, position.line - 1, self._lone_crs) is not None):
            return len(self.source)
        return self.offset_of(position)

    def position_of(self, offset: int) -> types.Position:
        """The position of a str offset; between the \\r and \\n of a CRLF it is the end of the line they end.
        Counts line breaks in the text before the offset (C speed) instead of splitting the whole document."""
        source = self.source
        offset = max(0, min(offset, len(source)))
        if 0 < offset < len(source) and source[offset - 1] == "\r" and source[offset] == "\n":
            offset -= 1
        line = source.count("\n", 0, offset)
        line_start = source.rfind("\n", 0, offset) + 1
        if self._lone_crs:   # they end lines too; a CRLF is one line break, counted above
            line += source.count("\r", 0, offset) - source.count("\r\n", 0, offset)
            line_start = max(line_start, source.rfind("\r", 0, offset) + 1)
        return types.Position(line=line, character=units_in(source[line_start:offset], self.codec))

    def range_of(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position_of(start), end=self.position_of(end))

    @cached_property
    def _lone_crs(self) -> bool:
        return has_lone_crs(self.source)


def clamped_offset(source: str, position: types.Position, codec: PositionCodec) -> int:
    """What the LSP specification makes of any position in a text edit: a line past the end is the end of the
    document, a character past the end of its line is the end of that line. A position inside a character moves to
    that character's start."""
    return clamped_offset_and_split(source, position, codec)[0]


def clamped_offset_and_split(source: str, position: types.Position, codec: PositionCodec) -> tuple[int, bool]:
    """clamped_offset, and whether the position fell inside a character (so it was moved)."""
    span = line_span(source, position.line)
    if span is None:
        return len(source), False
    start, end = span
    line = source[start:end]
    units = max(0, position.character)
    if units >= units_in(line, codec):
        return end, False
    inside = False
    while (characters := chars_in_units(line, units, codec)) is None:
        units, inside = units - 1, True
    return start + characters, inside


HALF_PAIR = re.compile("[\ud800-\udfff]")   # a UTF-16 surrogate on its own


def spliced_in_utf16_units(source: str, start: types.Position, end: types.Position, text: str,
                           codec: PositionCodec) -> str:
    """A change applied on the UTF-16 code units of the lines it touches, as a UTF-16 editor applies it. VS Code's
    minimal edits can replace one half of an emoji's pair (😀 to 😁 changes the low half alone) or insert a pair's
    halves in two changes: halves that meet become one character again, where snapping the range to whole
    characters left lone surrogates, and the server's copy of the line a unit shorter than the editor's."""
    first, last = line_span(source, start.line), line_span(source, end.line)
    # (a line past the end is the document's end: the region starts at the last line, whose end may be a half)
    region_start = first[0] if first is not None else max(source.rfind("\n"), source.rfind("\r")) + 1
    region_end = last[1] if last is not None else len(source)
    units = source[region_start:region_end].encode("utf-16-le", "surrogatepass")   # 2 bytes a unit
    if first is None:
        start_unit = len(units) // 2
    else:
        start_unit = min(max(0, start.character), units_in(source[first[0]:first[1]], codec))
    if last is None:
        end_unit = len(units) // 2
    else:
        end_unit = units_in(source[region_start:last[0]], codec) + min(max(0, end.character),
                                                                       units_in(source[last[0]:last[1]], codec))
    end_unit = max(end_unit, start_unit)
    spliced = units[:2 * start_unit] + text.encode("utf-16-le", "surrogatepass") + units[2 * end_unit:]
    return source[:region_start] + spliced.decode("utf-16-le", "surrogatepass") + source[region_end:]


def line_span(source: str, line: int, lone_crs: bool | None = None) -> tuple[int, int] | None:
    """(start, end) str offsets of one line's content, or None past the last line. Without building every line's
    span: each keystroke in a 2 MB document pays for it. `lone_crs`: has_lone_crs(source), when already known."""
    if line < 0:
        return None
    if line == 0:
        start = 0
    elif not (has_lone_crs(source) if lone_crs is None else lone_crs):
        start = after_nth(source, "\n", line)   # every line but the last ends with \n (\r\n included)
        if start is None:
            return None
    else:   # lone CRs end lines too: rare enough for the slower split
        parts = LINE_BREAK.split(source, maxsplit=line)
        if len(parts) <= line:
            return None
        start = len(source) - len(parts[-1])
    line_break = LINE_BREAK.search(source, start)
    return start, line_break.start() if line_break else len(source)


def after_nth(source: str, char: str, n: int) -> int | None:
    """The offset just after the n-th (n >= 1) `char` in `source`, or None when there are fewer. Bisects with
    str.count, which scans at C speed without copying, instead of a Python loop over lines."""
    if source.count(char) < n:
        return None
    low, high, before_low = 0, len(source), 0   # count(char, 0, low) == before_low < n <= count(char, 0, high)
    while high - low > 1:
        middle = (low + high) // 2
        in_lower_half = source.count(char, low, middle)
        if before_low + in_lower_half >= n:
            high = middle
        else:
            low, before_low = middle, before_low + in_lower_half
    return high


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
