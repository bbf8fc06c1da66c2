"""One infill request end to end: check the input, plan the context, ask the engine, clean, choose."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from .clean import clean_middle
from .context import completion_shape, context_window, length_plan, line_around
from .languages import grammar_for
from .spans import Scope, analyse, error_count

MAX_DOCUMENT_CHARS = 2_000_000
Mode = Literal["inline", "fill", "rewrite"]


@dataclass
class InfillRequest:
    text: str                        # the whole document
    mode: Mode
    start: int                       # str offsets: the cursor (inline) or the selection
    end: int
    language_id: str | None = None   # LSP languageId
    path: str | None = None          # used for the language when language_id is missing
    instruction: str | None = None   # rewrite only
    max_new_tokens: int = 64


@dataclass
class InfillResult:
    text: str                        # what to put into [start, end); "" = nothing to suggest
    start: int
    end: int
    message: str | None = None       # for the user: why nothing, or a warning
    details: dict = field(default_factory=dict)


class EngineLike(Protocol):
    def fill(self, prefix: str, suffix: str, *, max_new_tokens: int = 64, lengths: list[int] | None = None,
             cancel: Callable[[], bool] | None = None, seed: int | None = None) -> Any: ...

    def rewrite(self, prefix: str, suffix: str, original: str, *, strength: float = 0.5,
                instruction: str | None = None, cancel: Callable[[], bool] | None = None,
                seed: int | None = None) -> Any: ...


def check_request(request: InfillRequest) -> str | None:
    """A message for input we must not complete, else None."""
    text = request.text
    if "\x00" in text:
        return "this document contains NUL bytes (binary?): no completion"
    if "\ufffd" in text:
        return "this document is not valid UTF-8: no completion"
    if len(text) > MAX_DOCUMENT_CHARS:
        return f"this document is larger than {MAX_DOCUMENT_CHARS // 1_000_000} MB: no completion"
    if not (0 <= request.start <= request.end <= len(text)):
        return f"position out of range (offsets {request.start}..{request.end} in a document of {len(text)} characters)"
    if request.mode in ("fill", "rewrite") and request.start == request.end:
        return f"select the code to {request.mode} first"
    return None


def line_ending_of(text: str) -> str:
    return "\r\n" if "\r\n" in text[:10_000] else "\n"


def run_infill(request: InfillRequest, engine: EngineLike,
               cancel: Callable[[], bool] | None = None) -> InfillResult:
    started = time.perf_counter()
    empty = InfillResult("", request.start, request.end)
    problem = check_request(request)
    if problem:
        empty.message = problem
        return empty

    text, start, end = request.text, request.start, request.end
    grammar = grammar_for(request.language_id, request.path)
    details: dict = {"language": grammar or "plaintext", "mode": request.mode}
    message = None
    if grammar:
        facts = analyse(grammar, text, start, end)
        scope, quiet, errors_before = facts.scope, facts.in_string_or_comment, facts.error_count
    else:
        scope, quiet, errors_before = Scope("document", 0, len(text)), False, 0
        details["fallback"] = True
        message = (f"no tree-sitter grammar for '{request.language_id or request.path or 'this document'}': "
                   "plain-text context was used")
    details["scope"] = {"kind": scope.kind, "start": scope.start, "end": scope.end}

    if request.mode == "inline":
        shape, why = completion_shape(text, start, quiet)
    else:
        shape, why = "block", f"{request.mode} the selection"
    details.update(shape=shape, shape_reason=why)
    if shape == "none":
        return InfillResult("", start, end, message, details)

    window = context_window(text, start, end)
    engine_started = time.perf_counter()
    if request.mode == "rewrite":
        candidates = engine.rewrite(window.prefix, window.suffix, text[start:end], instruction=request.instruction,
                                    cancel=cancel)
    else:
        lengths = length_plan("multi" if shape == "block" else shape, request.max_new_tokens)
        candidates = engine.fill(window.prefix, window.suffix, max_new_tokens=request.max_new_tokens,
                                 lengths=lengths, cancel=cancel)
    details["engine_ms"] = (time.perf_counter() - engine_started) * 1e3

    before, _ = line_around(text, start)
    _, rest_of_line = line_around(text, end)
    ending = line_ending_of(text)
    cleaned = []
    for item in candidates.items:
        middle = clean_middle(item.text, shape=shape, suffix=window.suffix, line_before_cursor=before,
                              rest_of_line=rest_of_line, line_ending=ending)
        if middle and request.mode != "inline" and text[start:end].endswith(("\n", "\r\n")):
            middle += ending  # a selection of whole lines stays whole lines
        if middle:
            cleaned.append((middle, item))
    chosen, why_chosen = choose(cleaned, grammar, text, start, end, errors_before)
    details.update(
        candidates=len(candidates.items), layout=candidates.layout, engine_reason=candidates.reason,
        chosen=why_chosen, timings={**candidates.timings, "total_ms": (time.perf_counter() - started) * 1e3},
    )
    if chosen is None:
        return InfillResult("", start, end, message, details)
    details.update(confidence=chosen[1].confidence, tokens=chosen[1].length)
    return InfillResult(chosen[0], start, end, message, details)


def choose(cleaned: list, grammar: str | None, text: str, start: int, end: int, errors_before: int):
    """The engine's order, except that a candidate adding parse errors loses to one that does not."""
    if not cleaned:
        return None, "every candidate was empty after cleaning"
    if grammar is None:
        return cleaned[0], "engine's first choice (no grammar to validate with)"
    for rank, (middle, item) in enumerate(cleaned):
        if error_count(grammar, text[:start] + middle + text[end:]) <= errors_before:
            return (middle, item), f"candidate {rank + 1} of {len(cleaned)}: parses without new errors"
    return cleaned[0], "engine's first choice; no candidate parsed cleanly"
