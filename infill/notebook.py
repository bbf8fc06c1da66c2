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

from .languages import parse
from .literals import LINE_COMMENT
from .readable import unreadable_text
from .spans import error_count
from .style import LINE_BREAK

CELL_GAP = "\n"   # a blank line between cells, as a reader of the notebook sees them
# IPython's own syntax, which no Python grammar reads, at the start of a statement: line magics (`%matplotlib
# inline`), shell escapes (`!pip install x`), either one assigned (`files = !ls`), and help (`df.head?`, `?len`).
# In the head such lines become comments: the cell would otherwise not parse and be left out.
IPYTHON_LINE = re.compile(r"([ \t]*)(?:[%!?]|[\w.\[\], \t]+=[ \t]*[%!]|[\w.()\[\]]+\?\??[ \t]*$)")
# A cell magic on the first line makes the whole cell another language (`%%bash`, `%%html`, `%%sql`), except these,
# whose body is Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
CELL_MAGIC = re.compile(r"\s*%%([^\s]*)")   # a cell's first line `%%bash ...`: its name


@dataclass(frozen=True)
class Cell:
    text: str
    code: bool   # a code cell (False: markdown, read as comments)


def scan_python_line(line: str, depth: int, quote: str | None) -> tuple[int, str | None, bool]:
    """(bracket depth, the triple quote still open, whether the line goes on with a backslash) after `line`,
    starting at `depth` and inside `quote`. Enough to tell where statements start; strings' prefixes and escapes
    matter only as far as they end a string."""
    i = 0
    while i < len(line):
        if quote is not None:
            end = line.find(quote, i)
            if end == -1:
                return depth, quote, False
            i, quote = end + 3, None
            continue
        char = line[i]
        if char == "#":
            return depth, None, False
        if line.startswith(('"""', "'''"), i):
            quote, i = line[i:i + 3], i + 3
            continue
        if char in "\"'":
            i += 1
            while i < len(line) and line[i] != char:
                i += 2 if line[i] == "\\" else 1
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return depth, quote, line.endswith("\\")


def foreign_cell_magic(text: str) -> str | None:
    """The cell magic that makes a Python cell another language's (`%%bash`, `%%html`, `%%sql`, `%%writefile`), or
    None: Jupyter keeps such a cell's languageId `python`."""
    magic = CELL_MAGIC.match(text)   # (anchored: only the cell's start is read, at every keystroke)
    if magic is None:
        return None
    return None if magic.group(1) in PYTHON_CELL_MAGICS else magic.group(1)


def python_cell(text: str) -> str | None:
    """A Python cell as the head shows it: IPython's lines commented out; None for a cell in another language."""
    if foreign_cell_magic(text) is not None:
        return None
    lines, depth, quote, continued = [], 0, None, False
    for line in text.split("\n"):
        escape = None if depth or quote or continued else IPYTHON_LINE.match(line)
        if escape:
            lines.append(escape.group(1) + "#" + line[escape.end(1):])
            continue
        lines.append(line)
        depth, quote, continued = scan_python_line(line, depth, quote)
    return "\n".join(lines)


def commented(text: str, grammar: str | None) -> str:
    """Markdown as line comments in the code's language."""
    mark = LINE_COMMENT.get(grammar, "//") if grammar else "#"
    return "".join(f"{mark} {line}".rstrip() + "\n" for line in text.split("\n"))


def parses_alone(text: str, grammar: str) -> bool:
    return error_count(grammar, text) == 0


@lru_cache(maxsize=16)
def statement_starts(text: str, grammar: str) -> tuple[int, ...]:
    """Offsets where the cell's top-level statements begin (tree-sitter's children of the root)."""
    data = text.encode("utf-8")
    return tuple(len(data[:child.start_byte].decode("utf-8")) for child in parse(grammar, data).root_node.children)


# The cells above change rarely; the head is built several times a keystroke. Sized past the cells a long context
# reaches (a 4,096-token model reads ~65,000 characters back): with 256, a notebook of more cells than that in reach
# evicted each cell before the next walk came back to it, and every cell was parsed again at every keystroke.
@lru_cache(maxsize=8192)
def cell_code(cell: Cell, grammar: str | None) -> str | None:
    """The cell as the head shows it, without its last line break; None for a cell left out: blank, unreadable, in
    another language, or code that does not parse on its own. The kernel reads each cell apart, so an unclosed
    bracket or string in one is that cell's error alone; joined before the current cell, it would swallow the
    cell's code and every suggestion in it."""
    text = LINE_BREAK.sub("\n", cell.text).strip("\n")
    if not text.strip() or unreadable_text(text):   # one NUL byte above would refuse every request below
        return None
    if not cell.code:
        return commented(text, grammar).rstrip("\n")
    if grammar == "python":
        text = python_cell(text)
    if text is None or (grammar is not None and not parses_alone(text, grammar)):
        return None
    return text


def cell_tail(text: str, grammar: str | None, limit: int) -> str:
    """The end of a cell too long for the head, at most `limit` characters: from a top-level statement's start (a
    cut anywhere else could open inside a string or a block and swallow the cell being written), or from a line
    start without a grammar; "" when the last statement alone is longer."""
    earliest = len(text) - limit
    if grammar is not None:
        starts = [start for start in statement_starts(text, grammar) if start >= earliest]
        return text[starts[0]:] if starts else ""
    cut = text.find("\n", max(0, earliest - 1))
    return text[cut + 1:] if cut != -1 else ""


def notebook_head(cells: list[Cell], grammar: str | None, limit: int) -> str:
    """The cells above the current one (oldest first) as one text ending in a blank line, at most `limit`
    characters: the nearest cells first, whole; a nearest cell longer than the limit lends its last statements.
    Lines end in \\n (the current cell keeps its own line breaks: the pipeline answers in those)."""
    parts: list[str] = []
    used = 0
    ending = "\n" + CELL_GAP
    for cell in reversed(cells):
        text = cell_code(cell, grammar)
        if text is None:
            continue
        if used + len(text) + len(ending) > limit:
            if not parts:   # the cell right above is too long: its end
                tail = cell_tail(text, grammar, limit - len(ending))
                if tail.strip():
                    parts.append(tail + ending)
            break
        parts.append(text + ending)
        used += len(text) + len(ending)
    return "".join(reversed(parts))
