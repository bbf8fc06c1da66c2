"""Pick among cleaned candidates: only those whose insertion adds no parse errors may be offered; of those, the one
that leaves the fewest errors (the one that parses), then the one the model was most confident about, first."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .clean import AUTO_CLOSED
from .closing import parses_once_closed, unclosed_at_end
from .python_blocks import fill_python_faults
from .readable import unreadable_text
from .spans import ErrorCounts, errors_around
from .style import LINE_BREAK, line_end_at, line_start_at


@dataclass
class Cleaned:
    index: int     # position in the engine's list (0 = its best)
    text: str      # after cleaning; "" when nothing was left
    item: Any      # the engine's Candidate


@dataclass
class Choice:
    chosen: Cleaned | None
    reason: str
    report: list[dict]                                    # one entry per candidate, for details
    ranked: list[Cleaned] = field(default_factory=list)   # every acceptable distinct text, best first
    rejected_for_errors: bool = False                     # there were candidates, but each broke the parse


def confidence_of(candidate: Cleaned) -> tuple[bool, float, int]:
    """Sort key, higher first: rows the model ended itself beat rows cut at their limit, then confidence, then the
    engine's order."""
    item = candidate.item
    confidence = getattr(item, "confidence", None)
    return (bool(getattr(item, "ended", True)), float(confidence) if confidence is not None else 0.0,
            -candidate.index)


@dataclass
class ParseCheck:
    added: int              # errors the fill adds: refused when > 0
    remaining_errors: int   # errors in the document after it: among acceptable fills the one that parses comes first


def parse_check(grammar: str, document: str, start: int, end: int, text: str, before: ErrorCounts,
                caused_below: frozenset = frozenset()) -> ParseCheck:
    """ERROR / MISSING nodes that putting `text` in place of document[start:end] adds: to the whole file, or right
    at the inserted text (where error recovery may swallow a new error into an old one). The whole file, not the
    model's context window: a window cut mid-docstring or mid-block parses badly whatever goes in it. In Python
    the indentation and syntax errors tree-sitter's recovery lets through (python_blocks); in the other languages
    the errors a fill leaves unresolved (`unresolved_errors`; in Python it refused right fills and no broken one
    that the rest let through: bench/parse_check_holes.py)."""
    after = errors_around(grammar, document[:start] + text + document[end:], start, start + len(text))
    check = ParseCheck(added=max(0, after.total - before.total, after.near - before.near,
                                 after.within - before.within), remaining_errors=after.total)
    python = fill_python_faults(document, start, end, text) if grammar == "python" else None
    if python is not None:
        check.added += python[0]
        check.remaining_errors += python[1]
    elif grammar != "python" and not check.added and before.total and after.total >= before.total:
        check.added = int(unresolved_errors(before.spans, after.spans, *fill_line_bytes(document, start, end),
                                            len(text.encode("utf-8")), caused_below,
                                            finished_up_to_typed_closers(document, start, end, text)))
    elif grammar != "python" and not check.added and after.total:
        low = len(document[:start].encode("utf-8"))
        check.added = int(swallowed_by_a_new_error(before.spans, after.spans, low, len(text.encode("utf-8"))))
    if grammar != "python" and before.total and unclosed_at_end(grammar, document, before.spans):
        # Blocks left open at the end of the file: their errors, reshaped by a fill, say little about it (some
        # grammars make one ERROR of the whole block, which a right fill changes and a broken one may not).
        verdict = parses_once_closed(grammar, document, start, end, text)
        if verdict is not None:
            check.added = int(not verdict)
    if (check.added and grammar in SEMICOLON_ENDS_STATEMENT and finished_up_to_typed_closers(document, start, end, text)
            and not CONTROL_HEADER.match(document, line_start_at(document, start))):
        # The `;` the user types after the editor's closers, read in both documents: without it C reads `putc(c)`
        # above `x = 1;` as a declaration, clean, and the right `putc(crc >> 16, out)` as an error it is not
        # answerable for. Only where the fill's statement then parses around the fill: in `for (a ==);` the
        # document before had its error there too. (With the `;` in place nothing more follows on the line: the
        # check is not made again.) Not in a control statement's header, which no `;` ends.
        with_semicolon = document[:end] + ";" + document[end:]
        filled = with_semicolon[:start] + text + with_semicolon[end:]
        if not errors_around(grammar, filled, start, start + len(text)).near:
            return parse_check(grammar, with_semicolon, start, end, text,
                               errors_around(grammar, with_semicolon, start, end))
    return check


# Grammars whose statements end with a `;` (JavaScript's and TypeScript's may leave it to the line's end).
SEMICOLON_ENDS_STATEMENT = frozenset({"c", "cpp", "java", "rust"})
CONTROL_HEADER = re.compile(r"\s*(?:\}\s*)?(?:else\s+)?(?:if|for|while|switch|catch|match)\b")


def swallowed_by_a_new_error(before: frozenset, after: frozenset, low: int, length: int) -> bool:
    """Blocks left open at the end of the file are missing closers, and a right fill leaves them so; a broken one
    (`return b +`) can turn two of them into one ERROR over the whole file, fewer errors than before. Refused: an
    ERROR over all of the fill's bytes [low, low + length) where the document had only missing closers."""
    if any(kind == "ERROR" for kind, *_ in before):
        return False
    return any(kind == "ERROR" and start <= low and end >= low + length for kind, _, start, end in after)


def errors_caused_below(grammar: str, document: str, start: int, end: int, before: ErrorCounts) -> frozenset:
    """The document's ERRORs that start on the first code line below the fill's lines and go away when the fill's
    lines are blanked: the unfinished line at the cursor makes them (`x := |` above `return x`: the empty
    right-hand side swallows the `return`, and the error stands there, not on the cursor's line)."""
    if grammar == "python" or not before.total:
        return frozenset()
    line_start, line_end = line_start_at(document, start), line_end_at(document, end)
    below_from = line_end   # the line below, from the line break before it (blank lines passed over)
    while (line_break := LINE_BREAK.match(document, below_from)) is not None:
        below_end = line_end_at(document, line_break.end())
        if document[line_break.end():below_end].strip():
            break
        below_from = below_end
    else:
        return frozenset()
    low = len(document[:below_from].encode("utf-8"))
    high = low + len(document[below_from:below_end].encode("utf-8"))
    candidates = {span for span in before.spans if span[0] == "ERROR" and not span[1] and low <= span[2] < high}
    if not candidates:
        return frozenset()
    # Blanked byte for byte, so every offset below stays where it was.
    blank = "".join(" " * len(ch.encode("utf-8")) for ch in document[line_start:line_end])
    blanked = errors_around(grammar, document[:line_start] + blank + document[line_end:], line_start, line_start)
    return frozenset(candidates - blanked.spans)


def fill_line_bytes(document: str, start: int, end: int) -> tuple[int, int, int, int]:
    """UTF-8 offsets of: the start of `start`'s line, `start`, `end`, the end of `end`'s line (LSP's line ends)."""
    line_start, line_end = line_start_at(document, start), line_end_at(document, end)
    low = len(document[:start].encode("utf-8"))
    high = low + len(document[start:end].encode("utf-8"))
    return (low - len(document[line_start:start].encode("utf-8")), low, high,
            high + len(document[end:line_end].encode("utf-8")))


def finished_up_to_typed_closers(document: str, start: int, end: int, text: str) -> bool:
    """The fill takes the place of the closers the editor typed after the cursor (`g(|)`), ends with them, and
    nothing follows them on the line: what ends the statement (`;`, a list's `,`, `from ...`) is the user's to
    type after them, so the error its absence makes is no sign that the fill did not finish its part."""
    closers = document[start:end].strip()
    return (bool(closers.rstrip(";,")) and set(closers) <= AUTO_CLOSED and "\n" not in text
            and text.rstrip().endswith(closers.rstrip(";,")) and not document[end:line_end_at(document, end)].strip())


def unresolved_errors(before: frozenset, after: frozenset, line_start: int, low: int, high: int, line_end: int,
                      length: int, caused_below: frozenset = frozenset(), ends_after_closers: bool = False) -> bool:
    """Errors a fill that adds none still answers for: bytes [low, high) of a document with errors were replaced
    by `length` bytes, leaving as many errors as before; the fill's lines run from `line_start` to `line_end`.
    - An error up to the end of the fill's last line that is none of the old ones moved along: the fill broke
      something where it fixed something. (Errors further down may come out another shape for the same cause.)
    - An old ERROR that starts on the fill's line and goes on past the fill, still there: the fill did not finish
      the line it was written into. In `while (| < n)` or `if | {` the missing condition is an error at the `<`
      or over the `if`, and a broken condition (`x &&`) leaves it just as it was, where the right one clears it.
    - An old ERROR the unfinished line makes on the code line below (`caused_below`), still there: `x := a +`
      swallows the `return` under it as `x :=` did.
    The last two not where the statement ends after the closers the fill finishes with (`ends_after_closers`)."""
    shift = length - (high - low)

    def places(byte: int) -> set[int]:   # where a byte of the old document may be now (at an edge: either side)
        return ({byte} if byte <= low else set()) | ({byte + shift} if byte >= high else set())

    def inside(byte: int) -> bool:   # in the replaced bytes: a selection's own error, now anywhere in the new text
        return low < byte < high

    def moved_along(old: tuple, new: tuple) -> bool:
        kind, missing, start, end = old
        return (kind, missing) == new[:2] and all(
            low <= now <= low + length if inside(then) else now in places(then)
            for then, now in ((start, new[2]), (end, new[3])))

    at_edges = {(kind, missing, new_start, new_end) for kind, missing, start, end in before
                if not inside(start) and not inside(end) for new_start in places(start) for new_end in places(end)}
    cut_by_the_fill = [old for old in before if inside(old[2]) or inside(old[3])]

    def still_there(old: tuple) -> bool:
        return any(moved_along(old, span) for span in after) if old in cut_by_the_fill else any(
            (old[0], old[1], start, end) in after for start in places(old[2]) for end in places(old[3]))

    unexplained = [span for span in after
                   if span not in at_edges and not any(moved_along(old, span) for old in cut_by_the_fill)]
    if any(start < line_end + shift for _, _, start, _ in unexplained):
        return True
    if ends_after_closers:
        return False
    return any((kind == "ERROR" and not missing and line_start <= start < line_end and end > high
                or (kind, missing, start, end) in caused_below) and still_there((kind, missing, start, end))
               for kind, missing, start, end in before)


REPLACEMENT_CHARACTER = "\ufffd"


def writes_broken_characters(text: str, document: str) -> bool:
    """U+FFFD that the document does not hold: the model wrote bytes that are not UTF-8 (they decode as
    replacement characters), not text anyone would type. Or text that is not Unicode at all (a lone surrogate, a
    NUL): no editor takes it, and the parse check cannot even encode it."""
    return (REPLACEMENT_CHARACTER in text and REPLACEMENT_CHARACTER not in document) or \
        unreadable_text(text) is not None


def distinct(cleaned: list[Cleaned]) -> list[Cleaned]:
    """Non-empty candidates, the first of each text only."""
    seen: set[str] = set()
    kept = []
    for candidate in cleaned:
        if candidate.text and candidate.text not in seen:
            seen.add(candidate.text)
            kept.append(candidate)
    return kept


CLOSER_LINE = re.compile(r"[ \t]*[)\]}]+[;,]?[ \t\r]*")
MOST_CLOSER_LINES = 3   # trailing closer lines dropped at most
BLOCK_END_LINE = re.compile(r"[ \t]*(?:end\b|until\b).*")   # Lua's


def without_closer_lines(text: str) -> list[str]:
    """`text` without its last line, then its last two..., while those are brackets' closers alone (at most
    MOST_CLOSER_LINES), when code is left before them; what followed the last line (a line break a selection of
    whole lines needs, the indentation before the rest of the cursor's line) follows still."""
    body = text.rstrip()
    lines, tail = body.split("\n"), text[len(body):]
    shorter = []
    while len(lines) > 1 and len(shorter) < MOST_CLOSER_LINES and CLOSER_LINE.fullmatch(lines[-1]):
        lines.pop()
        if any(line.strip() and not CLOSER_LINE.fullmatch(line) for line in lines):
            shorter.append("\n".join(lines).rstrip() + tail)
    return shorter


def without_broken_last_line(text: str) -> list[str]:
    """`text` without its last line when code is left before it (none when that line closes brackets alone, which
    without_closer_lines reads): a line the model left unfinished where its canvas ended, or garbled (`x y z`),
    would refuse the lines before it too."""
    body = text.rstrip()
    lines, tail = body.split("\n"), text[len(body):]
    if len(lines) < 2 or CLOSER_LINE.fullmatch(lines[-1]) or BLOCK_END_LINE.fullmatch(lines[-1]) \
            or not any(line.strip() for line in lines[:-1]):
        return []   # (a block's own `end` left out would close the wrong block with the suffix's)
    return ["\n".join(lines[:-1]).rstrip() + tail]


def choose(cleaned: list[Cleaned], grammar: str | None, document: str, start: int, end: int) -> Choice:
    """`document[start:end]` is what a candidate replaces (empty for an inline completion)."""
    report = [{"index": c.index, "length": getattr(c.item, "length", None),
               "confidence": getattr(c.item, "confidence", None), "empty": not c.text} for c in cleaned]
    usable = distinct(cleaned)
    broken = {c.text for c in usable if writes_broken_characters(c.text, document)}
    for entry, candidate in zip(report, cleaned):
        entry["broken_characters"] = candidate.text in broken
    usable = [c for c in usable if c.text not in broken]
    # A fill or rewrite that writes the selection back as it is changes nothing: any other acceptable text first.
    selection = document[start:end] if end > start else None
    if not usable:
        return Choice(None, "every candidate was empty after cleaning" + (
            " or held bytes that are not UTF-8" if broken else ""), report)
    if grammar is None:
        ranked = sorted(usable, key=lambda c: (c.text != selection, *confidence_of(c)), reverse=True)
        return Choice(ranked[0], "the most confident non-empty candidate (no grammar to validate with)", report,
                      ranked)
    before = errors_around(grammar, document, start, end)
    caused_below = errors_caused_below(grammar, document, start, end, before)
    checks = {c.text: parse_check(grammar, document, start, end, c.text, before, caused_below) for c in usable}
    for entry, candidate in ((report[c.index], c) for c in cleaned if c.text in checks):
        entry["added_errors"] = checks[candidate.text].added
    ranked = sorted((c for c in usable if checks[c.text].added == 0),
                    key=lambda c: (-checks[c.text].remaining_errors, c.text != selection, *confidence_of(c)),
                    reverse=True)
    if not ranked:
        # A model that wrote closers past its code (`)` / `}` lines that close nothing): the text without them
        # is judged too, the fewest lines dropped first; an inline fill's also without a broken last line (a
        # selection's would then lose the user's line it replaced).
        for candidate in usable:
            for shorter in without_closer_lines(candidate.text) + (
                    without_broken_last_line(candidate.text) if start == end else []):
                if shorter not in checks:
                    checks[shorter] = parse_check(grammar, document, start, end, shorter, before, caused_below)
                if checks[shorter].added == 0:
                    ranked.append(Cleaned(candidate.index, shorter, candidate.item))
                    break
        ranked.sort(key=lambda c: (-checks[c.text].remaining_errors, c.text != selection, *confidence_of(c)),
                    reverse=True)
    if not ranked:
        return Choice(None, f"each of the {len(usable)} non-empty candidates added parse errors", report,
                      rejected_for_errors=True)
    best = ranked[0]
    fewest = checks[best.text].remaining_errors
    alike = sum(checks[c.text].remaining_errors == fewest for c in ranked)
    return Choice(best, f"candidate {best.index + 1} of {len(cleaned)}: the most confident of {alike} that leave "
                        f"the fewest parse errors ({fewest}), among {len(ranked)} that add none", report, ranked)
