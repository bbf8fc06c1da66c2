"""What the model sees and how much it may write: prefix/suffix within budgets, and the completion shape."""
from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX_BUDGET = 3000   # characters of code before the cursor
SUFFIX_BUDGET = 1000   # characters after it
CLOSERS = set(")]}>\"'`;,: \t")
BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then", "=")
IDENTIFIER = re.compile(r"\w")


@dataclass
class Window:
    prefix: str
    suffix: str
    prefix_start: int   # str offset where the prefix begins in the document
    suffix_end: int


def context_window(text: str, start: int, end: int, prefix_budget: int = PREFIX_BUDGET,
                   suffix_budget: int = SUFFIX_BUDGET) -> Window:
    """Prefix and suffix around [start, end), cut at whole lines so the model never sees half a line at the edge."""
    prefix_start = max(0, start - prefix_budget)
    if prefix_start > 0:
        newline = text.find("\n", prefix_start, start)
        prefix_start = newline + 1 if newline != -1 else prefix_start
    suffix_end = min(len(text), end + suffix_budget)
    if suffix_end < len(text):
        newline = text.rfind("\n", end, suffix_end)
        suffix_end = newline + 1 if newline != -1 else suffix_end
    return Window(text[prefix_start:start], text[end:suffix_end], prefix_start, suffix_end)


def line_around(text: str, offset: int) -> tuple[str, str]:
    """(text of the line before offset, text of the line after offset)."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    return text[line_start:offset], text[offset:] if line_end == -1 else text[offset:line_end]


def completion_shape(text: str, offset: int, in_string_or_comment: bool) -> tuple[str, str]:
    """('none' | 'single' | 'multi', why) for an inline completion at offset."""
    before, after = line_around(text, offset)
    if in_string_or_comment:
        return "none", "the cursor is inside a string or comment"
    if before and after and IDENTIFIER.match(before[-1]) and IDENTIFIER.match(after[0]):
        return "none", "the cursor is inside a word"
    if after.strip() and not set(after.strip()) <= CLOSERS:
        return "single", "code follows the cursor on this line"
    if not before.strip():
        return "multi", "the cursor is on an empty or indentation-only line"
    if before.rstrip().endswith(BLOCK_OPENERS):
        return "single", "the line opens a block or expression; finish the line"
    return "single", "finish the current line"


def length_plan(shape: str, max_new_tokens: int) -> list[int]:
    """Length candidates (in tokens) run as one batch; the engine picks by confidence."""
    wanted = [8, 16, 32] if shape == "single" else [16, 32, 64]
    return sorted({max(1, min(n, max_new_tokens)) for n in wanted})
