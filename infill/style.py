"""The document's own conventions, so inserted text matches them: line ending and indentation step."""
from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Collection

SAMPLE_CHARS = 100_000   # enough lines to judge; a 2 MB document needs no full scan
LINE_BREAK = re.compile(r"\r\n|\r|\n")   # as LSP counts lines
LONE_CR = re.compile(r"\r(?!\n)")


def line_start_at(text: str, offset: int) -> int:
    """Where the line holding `offset` starts: after the last \\n or \\r before it (a lone \\r ends a line too)."""
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def starts_at_margin(text: str, offset: int) -> bool:
    """Is the line holding `offset` unindented?"""
    start = line_start_at(text, offset)
    return text[start:start + 1] not in (" ", "\t")


def line_end_at(text: str, offset: int) -> int:
    """Where the line holding `offset` ends: at the first \\n or \\r from it, else at the text's end."""
    ends = [at for at in (text.find("\n", offset), text.find("\r", offset)) if at >= 0]
    return min(ends, default=len(text))


def has_lone_crs(text: str) -> bool:
    """Whether some \\r ends a line by itself (old Mac files, or a mix); else every line break ends with \\n."""
    return "\r" in text and text.count("\r") != text.count("\r\n")


def breaks_mixed(text: str) -> bool:
    """Whether an answer must be written back in `text`'s breaks line by line: some lines end in lone \\r (read
    as \\n, see has_lone_crs), or some in \\r\\n and some in \\n."""
    return "\r" in text and (has_lone_crs(text) or text.count("\r\n") != text.count("\n"))


def line_break_near(text: str, at: int = 0) -> str | None:
    """The line break ("\\r\\n", "\\r" or "\\n") that ends the line at offset `at`, or the last one before it on
    the last line; None when the text has none. A file whose breaks are mixed is written in those of the lines
    being written."""
    after = LINE_BREAK.search(text, at)
    if after is not None:
        return after.group()
    last = max(text.rfind("\n", 0, at), text.rfind("\r", 0, at))
    if last < 0:
        return None
    if text[last] == "\n" and last > 0 and text[last - 1] == "\r":
        return "\r\n"
    return text[last]


def line_ending_of(text: str, at: int = 0) -> str:
    """"\\r\\n" or "\\n", as the line at offset `at` ends (see line_break_near); "\\n" when the text has no break."""
    return "\r\n" if line_break_near(text, at) == "\r\n" else "\n"


# Languages whose one formatter indents with tabs (gofmt), so a file with no indentation yet gets them too.
TAB_INDENTED_GRAMMARS = {"go"}


def indent_votes(text: str, skipped_rows: Collection[int] = ()) -> tuple[int, int, Counter]:
    """Tab-indented lines, space-indented lines (2+ spaces) and how often each step deeper occurs. A line that
    continues the one above it (a `\\` before the line break: a Makefile recipe's or a macro's next line) is
    aligned, not indented, and so are `skipped_rows` (0-based: lines inside a multi-line string or comment)."""
    tabs, spaced, steps, previous = 0, 0, Counter(), 0
    continued = False
    for row, line in enumerate(text[:SAMPLE_CHARS].split("\n")):
        was_continued, continued = continued, line.rstrip("\r").endswith("\\")
        if not line.strip() or was_continued or row in skipped_rows:
            continue
        if line.startswith("\t"):
            tabs += 1
            continue
        width = len(line) - len(line.lstrip(" "))
        spaced += width >= 2         # the vote counts lines (not ` * ` comment lines); steps only choose the width
        if width > previous:
            steps[width - previous] += 1
        previous = width
    return tabs, spaced, steps


NEAR_CURSOR_CHARS = 3_000   # how far the code around the cursor is looked at
CODE_AT_MARGIN_BELOW = re.compile(r"\n(?=\S)")


def starts_with_code_at_margin(text: str, line_start: int) -> bool:
    return text[line_start:line_start + 1] not in ("", " ", "\t", "\n", "\r")


def other_step_near(text: str, offset: int, unit: str) -> bool:
    """Does the code around `offset` step deeper only by another width than the document's `unit` (a file whose
    parts were written in 2- and 4-space styles)? A model's levels in that width then match the code they join."""
    if not unit or unit.strip(" "):
        return False
    # The top-level definition around the cursor: from the last line at the margin above to the next one below.
    limit = max(0, offset - NEAR_CURSOR_CHARS)
    start = line_start_at(text, offset)
    while start > limit and not starts_with_code_at_margin(text, start):
        start = line_start_at(text, start - 1)
    below = CODE_AT_MARGIN_BELOW.search(text, line_end_at(text, offset), min(len(text), offset + NEAR_CURSOR_CHARS))
    window = text[start:below.start() if below else line_end_at(text, min(len(text), offset + NEAR_CURSOR_CHARS))]
    _, _, steps = indent_votes(window)
    first = next((line for line in window.split("\n") if line.strip()), "")
    if first.startswith(" "):   # (the window's first line steps from column 0, not from a line above it)
        steps[len(first) - len(first.lstrip(" "))] -= 1
    near = next((size for size, count in steps.most_common() if 2 <= size <= 8 and count > 0), None)
    return near is not None and near != len(unit) and steps[near] >= 2 and steps[len(unit)] <= 0


def editor_tab_size(tab_size) -> int | None:
    return tab_size if isinstance(tab_size, int) and not isinstance(tab_size, bool) and 1 <= tab_size <= 16 else None


def indent_unit_of(text: str, tab_size: int | None = None, insert_spaces: bool | None = None,
                   grammar: str | None = None) -> str:
    return indent_style(text, tab_size, insert_spaces, grammar)[0]


INDENTATION_RUN = re.compile(r"^[ \t]+(?=\S)", re.MULTILINE)
GNU_TAB_RUN = re.compile(r"\t+ {2,7}")


def mixed_indentations(text: str, grammar: str | None = None) -> frozenset[str]:
    """The document's own indentations when it indents with tabs and spaces both, GNU style (spaces for a level
    under 8 columns, a tab for each 8): a line written with one of them is in the document's layout, not in a
    style to convert (a tab is no one level there, nor 2 spaces a tab). Empty when the document does not mix so
    (Python's interpreter rejects such mixing: not there either)."""
    if grammar == "python" or "\t" not in text:
        return frozenset()
    seen = Counter(INDENTATION_RUN.findall(text))
    tabbed = sum(count for run, count in seen.items() if "\t" in run)
    tab_then_spaces = sum(count for run, count in seen.items() if GNU_TAB_RUN.fullmatch(run))
    short = sum(count for run, count in seen.items() if "\t" not in run and 2 <= len(run) < 8)
    wide = sum(count for run, count in seen.items() if "\t" not in run and len(run) >= 8)
    # (stray lines of the other kind in a file indented one way are no style: GNU's levels under 8 columns are
    # spaces, those past it tabs then spaces)
    gnu = tab_then_spaces >= 2 and short >= 2 and wide < tabbed
    return frozenset(seen) if gnu else frozenset()


def indent_style(text: str, tab_size: int | None = None, insert_spaces: bool | None = None,
                 grammar: str | None = None, cursor_indent: str = "",
                 literal_rows: Callable[[], Collection[int]] | None = None) -> tuple[str, bool]:
    """The indentation unit, and whether its width was seen rather than assumed.

    A tab when tab-indented lines outnumber space-indented ones, else spaces: `tab_size` of them when the
    editor's formatting options give it, else the most common step between the indentation of neighbouring lines.
    When both kinds occur, the lines inside multi-line strings and comments (`literal_rows`, asked for only then:
    it costs a parse) do not vote; counts within a factor of two of each other are decided by the cursor's
    line (`cursor_indent`), else by the editor's `insert_spaces`; otherwise in a language whose formatter indents
    with tabs (gofmt) any tab-indented line decides, unless the editor asks for spaces.
    A document with no indentation yet follows the formatting options; without them, its language's formatter
    (a tab in Go), else 4 spaces. Only a known width (seen in indented lines or given by the editor, the two not
    disagreeing) is a reason to redraw the levels a model wrote in another one. Before any line is indented, a
    tab the editor put on the cursor's blank line (`cursor_indent`) says tabs, as the options would have."""
    tabs, spaced, steps = indent_votes(text)
    if tabs and spaced and literal_rows is not None:
        tabs, spaced, steps = indent_votes(text, literal_rows())
    option_width = editor_tab_size(tab_size)
    if tabs and spaced:
        close = max(tabs, spaced) <= 2 * min(tabs, spaced)
        if close and cursor_indent:         # the block being written says it best
            tab_wins = cursor_indent.startswith("\t")
        elif close and insert_spaces is not None:
            tab_wins = not insert_spaces
        else:
            tab_wins = tabs > spaced or (grammar in TAB_INDENTED_GRAMMARS and insert_spaces is not True)
    else:
        tab_wins = tabs > 0 or (tabs == spaced == 0 and (insert_spaces is False or (
            insert_spaces is None and (grammar in TAB_INDENTED_GRAMMARS or cursor_indent.startswith("\t")))))
    if tab_wins:
        return "\t", True
    counts = [(size, count) for size, count in steps.most_common() if 2 <= size <= 8]
    # Steps seen equally often (a comment's 3-space continuation and one 4-space member) tell no width: the first
    # seen would be taken for it and the model's levels redrawn in it.
    most_seen = [size for size, count in counts if count == counts[0][1]]
    seen_step = (option_width if option_width in most_seen else most_seen[0]) if most_seen else None
    width = option_width or seen_step
    # The editor's width against another one seen in the file: the unit follows the editor, but which of the two
    # the model's levels should be redrawn in is unclear, so they are not.
    known = width is not None and (option_width is None or seen_step is None or option_width == seen_step) and (
        len(most_seen) < 2 or option_width in most_seen)
    return " " * (width or 4), known
