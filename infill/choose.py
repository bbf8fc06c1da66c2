"""Pick one candidate: the engine's order, except that a candidate whose insertion adds parse errors loses to one
that does not."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spans import error_count


@dataclass
class Cleaned:
    index: int     # position in the engine's list (0 = its best)
    text: str      # after cleaning; "" when nothing was left
    item: Any      # the engine's Candidate


@dataclass
class Choice:
    chosen: Cleaned | None
    reason: str
    report: list[dict]   # one entry per candidate, for details


def choose(cleaned: list[Cleaned], grammar: str | None, prefix: str, original: str, suffix: str) -> Choice:
    """Parse prefix + candidate + suffix (the context window, not the whole file: cheaper, and errors far away
    cannot change) and prefer the first candidate that adds no ERROR / MISSING nodes."""
    report = [{"index": c.index, "length": getattr(c.item, "length", None),
               "confidence": getattr(c.item, "confidence", None), "empty": not c.text} for c in cleaned]
    usable = [c for c in cleaned if c.text]
    if not usable:
        return Choice(None, "every candidate was empty after cleaning", report)
    if grammar is None:
        return Choice(usable[0], "the engine's first non-empty candidate (no grammar to validate with)", report)
    errors_before = error_count(grammar, prefix + original + suffix)
    seen: dict[str, int] = {}
    first_clean = None
    for candidate in usable:
        if candidate.text not in seen:
            seen[candidate.text] = error_count(grammar, prefix + candidate.text + suffix) - errors_before
        added = seen[candidate.text]
        report[candidate.index]["added_errors"] = max(0, added)
        if added <= 0 and first_clean is None:
            first_clean = candidate
    if first_clean is not None:
        return Choice(first_clean, f"candidate {first_clean.index + 1} of {len(cleaned)}: the first that parses "
                                   "without new errors", report)
    return Choice(usable[0], "the engine's first non-empty candidate; every candidate added parse errors", report)
