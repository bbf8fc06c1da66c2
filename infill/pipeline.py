"""One infill request end to end: check the input, plan (language, span, context, shape, lengths), ask the engine,
clean every candidate, choose one.

Engine exceptions (EngineError, Cancelled) are not caught here: the caller reports them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from .choose import Cleaned, choose
from .clean import CleanContext, clean_middle
from .decide import previous_nonblank_line
from .plan import make_plan
from .style import indent_unit_of, line_ending_of

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024   # 2 MB of UTF-8
MODES = ("inline", "fill", "rewrite")
REWRITE_STRENGTH = 0.5
Mode = Literal["inline", "fill", "rewrite"]


@dataclass
class InfillRequest:
    text: str                        # whole document text
    mode: Mode
    start: int                       # Python str offset: the cursor (inline) or selection start
    end: int                         # == start for inline; selection end for fill/rewrite
    language_id: str | None = None   # LSP languageId ("python", "javascript", "typescriptreact", ...)
    path: str | None = None          # used to guess the language from the extension when language_id is None
    instruction: str | None = None   # rewrite only, optional free text
    max_new_tokens: int = 64


@dataclass
class InfillResult:
    text: str                        # the text to put into [start, end) ("" = nothing to suggest)
    start: int                       # str offsets of the range replaced
    end: int
    message: str | None = None       # why nothing / a warning to show the user (None when fine)
    details: dict = field(default_factory=dict)   # language, span, decision, lengths, choice, reason, timings


class EngineLike(Protocol):
    """What run_infill needs from engine.InfillEngine (not imported: infill/ stays free of torch)."""

    def fill(self, prefix: str, suffix: str, *, max_new_tokens: int = 64, lengths: list[int] | None = None,
             cancel: Callable[[], bool] | None = None, seed: int | None = None) -> Any: ...

    def rewrite(self, prefix: str, suffix: str, original: str, *, strength: float = 0.5,
                instruction: str | None = None, cancel: Callable[[], bool] | None = None,
                seed: int | None = None) -> Any: ...


def is_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_request(request: InfillRequest) -> str | None:
    """A message for input that must not reach the model, else None."""
    text = request.text
    if not isinstance(text, str):
        return f"the document text must be a string, not {type(text).__name__}"
    if request.mode not in MODES:
        return f"unknown infill mode {request.mode!r} (expected inline, fill or rewrite)"
    if "\x00" in text:
        return "the document contains NUL bytes (a binary file?): nothing to complete"
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        return f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB: nothing to complete"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "the document is not valid Unicode (it holds lone surrogates): nothing to complete"
    start, end = request.start, request.end
    if not (is_offset(start) and is_offset(end)):
        return f"offsets must be integers, got {start!r} and {end!r}"
    if start < 0 or end < 0 or start > len(text) or end > len(text):
        return f"position out of range: offsets {start}..{end} in a document of {len(text)} characters"
    if start > end:
        return f"position out of range: the range starts at {start}, after its end {end}"
    if request.mode == "inline" and start != end:
        return "an inline completion takes a cursor, not a selection (start must equal end)"
    if request.mode in ("fill", "rewrite") and start == end:
        return f"select the code to {request.mode} first (the selection is empty)"
    if not is_offset(request.max_new_tokens) or request.max_new_tokens < 1:
        return f"max_new_tokens must be a positive integer, got {request.max_new_tokens!r}"
    return None


def elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1e3, 3)


def run_infill(request: InfillRequest, engine: EngineLike, cancel: Callable[[], bool] | None = None) -> InfillResult:
    started = time.perf_counter()
    problem = check_request(request)
    if problem:
        return InfillResult("", request.start, request.end, problem, {"reason": problem})

    text, start, end, mode = request.text, request.start, request.end, request.mode
    plan = make_plan(text, mode, start, end, request.language_id, request.path, request.max_new_tokens)
    details = plan.details
    timings = {"plan_ms": elapsed_ms(started)}
    details["timings"] = timings
    if plan.decision.shape == "none":
        details["reason"] = plan.decision.reason
        timings["total_ms"] = elapsed_ms(started)
        return InfillResult("", start, end, plan.message, details)

    prefix, suffix, original = plan.context.prefix, plan.context.suffix, text[start:end]
    engine_started = time.perf_counter()
    if mode == "rewrite":
        candidates = engine.rewrite(prefix, suffix, original, strength=REWRITE_STRENGTH,
                                    instruction=request.instruction, cancel=cancel)
    else:
        candidates = engine.fill(prefix, suffix, max_new_tokens=request.max_new_tokens, lengths=plan.lengths,
                                 cancel=cancel)
    timings["engine_ms"] = elapsed_ms(engine_started)
    timings.update({f"engine_{name}": value for name, value in (getattr(candidates, "timings", None) or {}).items()})
    details["engine"] = {"layout": getattr(candidates, "layout", None), "reason": getattr(candidates, "reason", None),
                         "candidates": len(candidates.items)}

    clean_started = time.perf_counter()
    style = CleanContext(
        shape=plan.decision.shape, before=plan.before, rest_of_line=plan.rest_of_line, suffix=suffix,
        suffix_starts_line=end == 0 or text[end - 1] == "\n", line_ending=line_ending_of(text),
        indent_unit=indent_unit_of(text), original=original,
        whole_lines=mode != "inline" and original.endswith("\n"), line_above=previous_nonblank_line(text, start),
    )
    cleaned = [Cleaned(i, clean_middle(item.text, style), item) for i, item in enumerate(candidates.items)]
    choice = choose(cleaned, plan.grammar, prefix, original, suffix)
    timings["clean_ms"] = elapsed_ms(clean_started)
    details["candidates"] = choice.report
    details["reason"] = choice.reason
    timings["total_ms"] = elapsed_ms(started)
    if choice.chosen is None:
        return InfillResult("", start, end, plan.message, details)
    details["chosen"] = {"index": choice.chosen.index, "length": getattr(choice.chosen.item, "length", None),
                         "confidence": getattr(choice.chosen.item, "confidence", None)}
    return InfillResult(choice.chosen.text, start, end, plan.message, details)
