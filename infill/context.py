"""What the model sees: the prefix before the cursor and the suffix after it, within character budgets, cut at line
boundaries, keeping the enclosing scope whole when it fits."""
from __future__ import annotations

from dataclasses import dataclass

from .spans import Scope

PREFIX_BUDGET = 3000   # characters of code before the cursor
SUFFIX_BUDGET = 1000   # characters after it


@dataclass
class Context:
    prefix: str
    suffix: str
    prefix_start: int              # str offset where the prefix begins in the document
    suffix_end: int                # str offset where the suffix ends
    kept_whole: Scope | None = None  # the largest enclosing scope the context holds entirely


def line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def line_end(text: str, offset: int) -> int:
    """Offset just past the newline ending the line at `offset` (or the end of the text)."""
    newline = text.find("\n", offset)
    return len(text) if newline == -1 else newline + 1


def cut_prefix(text: str, start: int, budget: int) -> int:
    """Where the prefix begins: the first line start within budget; mid-line only when one line is longer than the
    whole budget."""
    earliest = max(0, start - budget)
    if earliest == 0:
        return 0
    if earliest == line_start(text, earliest):
        return earliest
    newline = text.find("\n", earliest, start)
    return newline + 1 if newline != -1 else earliest


def cut_suffix(text: str, end: int, budget: int) -> int:
    """Where the suffix ends: the last line end within budget; mid-line only when there is none."""
    latest = min(len(text), end + budget)
    if latest == len(text):
        return latest
    newline = text.rfind("\n", end, latest)
    return newline + 1 if newline != -1 else latest


def build_context(text: str, start: int, end: int, scopes: list[Scope] | None = None,
                  prefix_budget: int = PREFIX_BUDGET, suffix_budget: int = SUFFIX_BUDGET) -> Context:
    """Prefix = text before `start`, suffix = text after `end`, each trimmed to its budget at line boundaries.

    When an enclosing scope (tried outermost first) fits in the two budgets together but not in the default split,
    budget moves from one side to the other so the model sees that scope from its first line to its last.
    """
    total = prefix_budget + suffix_budget
    kept = None
    for scope in reversed(scopes or []):  # outermost first: keep the largest scope that fits
        need_prefix = start - line_start(text, scope.start)
        need_suffix = (line_end(text, scope.end - 1) if scope.end > end else end) - end
        if need_prefix + need_suffix > total:
            continue
        if need_prefix > prefix_budget:
            prefix_budget, suffix_budget = need_prefix, total - need_prefix
        elif need_suffix > suffix_budget:
            prefix_budget, suffix_budget = total - need_suffix, need_suffix
        kept = scope
        break
    prefix_start = cut_prefix(text, start, prefix_budget)
    suffix_end = cut_suffix(text, end, suffix_budget)
    return Context(text[prefix_start:start], text[end:suffix_end], prefix_start, suffix_end, kept)
