"""The earlier cells of a notebook as context for the cell being written.

A notebook runs its cells top to bottom, so a code cell reads like the end of one program made of the cells above
it: their imports, their functions, the markdown that says what comes next. Each cell reaches the server as a
document of its own; the head built here goes before the cell's text (InfillRequest.head) so that the context, the
snippets' query and the parse check see the cells as the kernel runs them. The head is read, never edited.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .literals import LINE_COMMENT
from .spans import error_count
from .style import LINE_BREAK

CELL_GAP = "\n"   # a blank line between cells, as a reader of the notebook sees them
# IPython's own syntax, which no Python grammar reads: line magics (`%matplotlib inline`) and shell escapes
# (`!pip install x`). In the head they become comments: the parse would otherwise report errors the cell does not
# have, and the model would read a line of noise.
IPYTHON_ESCAPE = re.compile(r"^([ \t]*)[%!]", re.MULTILINE)
# A cell magic on the first line makes the whole cell another language (`%%bash`, `%%html`, `%%sql`), except these,
# whose body is Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})


@dataclass(frozen=True)
class Cell:
    text: str
    code: bool   # a code cell (False: markdown, read as comments)


def readable(text: str) -> bool:
    """Text that can go into a request at all (check_request refuses NUL bytes and lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def python_cell(text: str) -> str | None:
    """A Python cell as the head shows it: IPython's escapes commented out; None for a cell in another language."""
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("%%") and first[2:].split(" ", 1)[0].strip() not in PYTHON_CELL_MAGICS:
        return None
    return IPYTHON_ESCAPE.sub(r"\1#", text)


def commented(text: str, grammar: str | None) -> str:
    """Markdown as line comments in the code's language."""
    mark = LINE_COMMENT.get(grammar, "//") if grammar else "#"
    return "".join(f"{mark} {line}".rstrip() + "\n" for line in text.split("\n"))


@lru_cache(maxsize=256)   # the cells above change rarely; the head is built at every keystroke
def parses_alone(text: str, grammar: str) -> bool:
    return error_count(grammar, text) == 0


def cell_text(cell: Cell, grammar: str | None) -> str | None:
    """The cell as the head shows it; None for a cell left out: blank, unreadable, in another language, or code
    that does not parse on its own. The kernel reads each cell apart, so an unclosed bracket or string in one is
    that cell's error alone; joined before the current cell, it would swallow the cell's code and every suggestion
    in it."""
    text = LINE_BREAK.sub("\n", cell.text).strip("\n")
    if not text.strip() or not readable(text):
        return None
    if not cell.code:
        return commented(text, grammar)
    if grammar == "python":
        text = python_cell(text)
    if text is None or (grammar is not None and not parses_alone(text, grammar)):
        return None
    return text + "\n"


def notebook_head(cells: list[Cell], grammar: str | None, limit: int) -> str:
    """The cells above the current one (oldest first) as one text ending in a blank line, at most `limit`
    characters: the nearest cells first, whole; a nearest cell longer than the limit lends its last lines. Lines
    end in \\n (the current cell keeps its own line breaks: the pipeline answers in those)."""
    parts: list[str] = []
    used = 0
    for cell in reversed(cells):
        text = cell_text(cell, grammar)
        if text is None:
            continue
        text += CELL_GAP
        if used + len(text) > limit:
            if not parts:   # the cell right above is too long: its end, from a line start
                cut = text.find("\n", len(text) - limit)
                if 0 <= cut < len(text) - 1:
                    parts.append(text[cut + 1:])
            break
        parts.append(text)
        used += len(text)
    return "".join(reversed(parts))
