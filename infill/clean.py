"""Turn a raw middle into something an editor can show: no duplicated suffix, no extra brackets, right scope."""
from __future__ import annotations

PAIRS = {")": "(", "]": "[", "}": "{"}


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def first_line_only(middle: str) -> str:
    return middle.split("\n", 1)[0]


def keep_inside_scope(middle: str, line_before_cursor: str, max_lines: int = 30) -> str:
    """Multi-line: stop at the first line that dedents below the cursor line (it left the enclosing block)."""
    lines = middle.split("\n")
    base = indentation(line_before_cursor)
    kept = [lines[0]]
    for line in lines[1:max_lines]:
        if line.strip() and indentation(line) < base:
            break
        kept.append(line)
    return "\n".join(kept)


def drop_suffix_overlap(middle: str, suffix: str) -> str:
    """The model sees the suffix, and sometimes writes its start again: cut that repeat."""
    stripped_suffix = suffix.lstrip(" \t")
    # Whole repeated lines: from the first middle line equal to the suffix's next non-empty line.
    next_line = next((line.strip() for line in suffix.split("\n") if line.strip()), "")
    if next_line:
        lines = middle.split("\n")
        for i, line in enumerate(lines):
            if i > 0 and line.strip() == next_line:
                middle = "\n".join(lines[:i])
                break
    # A tail that equals the suffix's head (e.g. "x)" before a suffix ")"), at least 2 characters long.
    for size in range(min(len(middle), len(stripped_suffix)), 1, -1):
        if middle.endswith(stripped_suffix[:size]):
            return middle[:-size]
    return middle


def drop_unmatched_closers(middle: str, rest_of_line: str) -> str:
    """Remove trailing closing brackets the middle never opened when the line already closes them after the
    cursor."""
    supplied = rest_of_line.lstrip()
    while middle and middle[-1] in PAIRS and supplied.startswith(middle[-1]):
        opener = PAIRS[middle[-1]]
        opened_inside = middle[:-1].count(opener) > middle[:-1].count(middle[-1])
        if opened_inside:
            break
        middle = middle[:-1]
        supplied = supplied[1:].lstrip()
    return middle


def clean_middle(middle: str, *, shape: str, suffix: str, line_before_cursor: str, rest_of_line: str,
                 line_ending: str = "\n") -> str:
    middle = middle.replace("\r\n", "\n").replace("\r", "\n")
    if shape == "single":
        middle = first_line_only(middle)
    elif shape == "multi":
        middle = keep_inside_scope(middle, line_before_cursor)
    middle = drop_suffix_overlap(middle, suffix.replace("\r\n", "\n"))
    middle = drop_unmatched_closers(middle.rstrip(), rest_of_line)
    middle = "\n".join(line.rstrip() for line in middle.split("\n")).rstrip()
    if not middle.strip():
        return ""
    return middle.replace("\n", line_ending) if line_ending != "\n" else middle
