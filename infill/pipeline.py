"""One infill request end to end: check the input, plan (language, span, context, shape, lengths), ask the engine,
clean every candidate, choose one.

Engine exceptions (EngineError, Cancelled) are not caught here: the caller reports them.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from .choose import Cleaned, choose
from .clean import (CleanContext, auto_closed_tail, body_after_header_comment, cleaned_with_tail, comment_after_cursor,
                    indentation)
from .context import CHARS_PER_TOKEN, DEFAULT_PROMPT_TOKENS, estimate_tokens
from .decide import (FILL_MAX_TOKENS, blank_lines_above, bracket_opener_indentation, code_bracket_surplus, opener_line,
                     previous_nonblank_line)
from .edits import Edit, apply_edits, minimal_edits
from .languages import ParseAbandoned, parse_limits
from .plan import ContextMemory, make_plan
from .readable import unreadable_text
from .related import RelatedDocument
from .spans import rows_inside_literals
from .style import (LINE_BREAK, LONE_CR, breaks_mixed, has_lone_crs, indent_style, indent_votes, line_break_near,
                    line_ending_of, mixed_indentations, other_step_near, starts_at_margin)

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024   # 2 MB of UTF-8
MODES = ("inline", "fill", "rewrite")
REWRITE_STRENGTH = 0.5
FIM_SENTINELS = 3   # prompt tokens the engine adds around prefix and suffix
MAX_CHOICES = 5     # cleaned alternatives kept in details for a client that offers several
Mode = Literal["inline", "fill", "rewrite"]
INSTRUCTION_UNUSED = "the instruction was not used (this model is not tuned to follow one)"


@dataclass
class InfillRequest:
    text: str                        # whole document text
    mode: Mode
    start: int                       # Python str offset: the cursor (inline) or selection start
    end: int                         # == start for inline; selection end for fill/rewrite
    language_id: str | None = None   # LSP languageId ("python", "javascript", "typescriptreact", ...)
    path: str | None = None          # used to guess the language from the extension when language_id is None
    instruction: str | None = None   # a fill or rewrite's optional free text (said to be unused)
    max_new_tokens: int = 64
    tab_size: int | None = None      # the editor's formatting options, when it sends them
    insert_spaces: bool | None = None
    budget_ms: float | None = None   # fill within about this long (automatic suggestions); None = no limit
    invoked: bool = False            # inline: the user asked explicitly, so strings and comments are completed too
    related: list[RelatedDocument] = field(default_factory=list)   # the user's other open files, for snippets
    previous: ContextMemory = ContextMemory()   # what the document's last request chose (ContextMemory.of)
    head: str = ""                   # text that runs before `text` (a notebook's earlier cells, infill.notebook):
                                     # read as context, never edited; offsets stay those of `text`
    own_from: int = 0                # set by with_head: where `text` (head and document joined) has the document


@dataclass
class InfillResult:
    text: str                        # the text to put into [start, end) ("" = nothing to suggest)
    start: int                       # str offsets of the range replaced
    end: int
    message: str | None = None       # why nothing / a warning to show the user (None when fine)
    details: dict = field(default_factory=dict)   # language, span, decision, lengths, choice, reason, timings,
                                                  # choices (the cleaned candidates, best first)
    edits: list[Edit] = field(default_factory=list)  # (start, end, new_text) in document offsets: the smallest
                                                     # changes turning text[start:end] into `text`


class EngineLike(Protocol):
    """What run_infill needs from engine.InfillEngine (not imported: infill/ stays free of torch)."""

    def fill(self, prefix: str, suffix: str, *, max_new_tokens: int = 64, lengths: list[int] | None = None,
             cancel: Callable[[], bool] | None = None, seed: int | None = None,
             budget_ms: float | None = None) -> Any: ...

    def rewrite(self, prefix: str, suffix: str, original: str, *, strength: float = 0.5,
                instruction: str | None = None, cancel: Callable[[], bool] | None = None,
                seed: int | None = None) -> Any: ...

    # Optional: without them the context is budgeted with a chars-per-token estimate.
    def count_tokens(self, text: str) -> int: ...

    # Optional: the prompt holds only this many suffix tokens (suffix_tokens_read).
    suffix_tokens_read: int | None

    # Optional: prompt tokens the engine adds around the context (FIM_SENTINELS without it).
    prompt_overhead: int

    # Optional: encode a prompt ahead of the request that will read it (prime_engine).
    def prime(self, prefix: str, suffix: str) -> dict: ...

    max_prompt_tokens: int


def nothing_offered(request: InfillRequest, plan_message: str | None, reason: str) -> str | None:
    """The message of an empty answer: why, when the user asked (an explicit invoke, a command, `fill`); while
    they type an empty answer is routine, and saying so would interrupt them."""
    if not (request.invoked or request.mode != "inline"):
        return plan_message
    # (a rewrite the model could not make says it too: the user must not think the instruction was the cause)
    unused = INSTRUCTION_UNUSED if request.instruction else None
    return "; ".join(filter(None, [plan_message, f"no suggestion: {reason}", unused]))


def is_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_request(request: InfillRequest) -> str | None:
    """A message for input that must not reach the model, else None."""
    text = request.text
    if not isinstance(text, str):
        return f"the document text must be a string, not {type(text).__name__}"
    if request.mode not in MODES:
        return f"unknown infill mode {request.mode!r} (expected inline, fill or rewrite)"
    if problem := unreadable_text(text):
        return problem
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        return f"the document is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB: nothing to complete"
    start, end = request.start, request.end
    if not (is_offset(start) and is_offset(end)):
        return f"offsets must be integers, got {start!r} and {end!r}"
    if start < 0 or end < 0 or start > len(text) or end > len(text):
        return f"position out of range: offsets {start}..{end} in a document of {len(text)} characters"
    if start > end:
        return f"position out of range: the range starts at {start}, after its end {end}"
    inside_break = next((at for at in (start, end) if at and text[at - 1:at + 1] == "\r\n"), None)
    if inside_break is not None:   # (LSP positions never fall there; a caller's offsets may)
        return f"position out of range: offset {inside_break} falls between the \\r and the \\n of a line break"
    if request.mode == "inline" and start != end:
        return "an inline completion takes a cursor, not a selection (start must equal end)"
    if request.mode in ("fill", "rewrite") and start == end:
        return f"select the code to {request.mode} first (the selection is empty)"
    if not is_offset(request.max_new_tokens) or request.max_new_tokens < 1:
        return f"max_new_tokens must be a positive integer, got {request.max_new_tokens!r}"
    return None


def token_budget(engine: EngineLike) -> tuple[int, Callable[[str], int], bool]:
    """(context tokens for prefix + suffix, token counter, whether the counter is the engine's own)."""
    overhead = getattr(engine, "prompt_overhead", None)
    overhead = overhead if is_offset(overhead) else FIM_SENTINELS
    limit = getattr(engine, "max_prompt_tokens", None)
    limit = limit if is_offset(limit) and limit > overhead + 1 else DEFAULT_PROMPT_TOKENS + overhead
    count = getattr(engine, "count_tokens", None)
    return limit - overhead, (count if callable(count) else estimate_tokens), callable(count)


def suffix_tokens_read(engine: EngineLike) -> int | None:
    """How many of the suffix's tokens the prompt holds, when not all the budget gives (a suffix pinned on the
    canvas: none, the prompt is the prefix's alone)."""
    read = getattr(engine, "suffix_tokens_read", None)
    return read if is_offset(read) and read >= 0 else None


def fill_too_long(selection: str, engine: EngineLike) -> str | None:
    """Why a selection cannot be filled, else None. A fill writes FILL_MAX_TOKENS at most: a longer selection would
    be replaced by a text cut off there, and its tail lost (as a rewrite refuses it, in the engine). Blank lines
    around the code do not count: a fill of a gap writes what the code needs, not the gap's length."""
    _, count_tokens, exact = token_budget(engine)
    tokens = count_tokens(for_model(selection.strip()))
    if tokens <= FILL_MAX_TOKENS:
        return None
    counted = f"{tokens} tokens" if exact else f"about {tokens} tokens"
    return f"the selection is too long to fill: {counted}, and a fill writes at most {FILL_MAX_TOKENS}; select less"


def elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1e3, 3)


def plan_for(request: InfillRequest, engine: EngineLike):
    max_tokens, count_tokens, exact = token_budget(engine)
    count_as_is = count_tokens   # counted as the model reads it (for_model): a CRLF line costs no token more

    def count_tokens(text: str) -> int:
        return count_as_is(for_model(text))
    plan = make_plan(request.text, request.mode, request.start, request.end, request.language_id, request.path,
                     request.max_new_tokens, max_tokens, count_tokens, request.invoked, request.related,
                     request.previous, suffix_tokens_read(engine))
    plan.details["context"]["tokens_counted_by"] = (
        "engine" if exact else f"estimate ({CHARS_PER_TOKEN} chars per token)")
    return plan


def prime_engine(request: InfillRequest, engine: EngineLike, cancel: Callable[[], bool] | None = None) -> dict:
    """Have the engine encode the prompt an inline request here would read, generating nothing, so that the
    request, when the user pauses, encodes only what was typed meanwhile. Returns the plan's details (the context
    chosen, for the next request's ContextMemory) with the engine's report under "primed"; {} when there is
    nothing to prime (a bad request, an engine that cannot prime, a parse cancelled or past its budget). An engine
    with prefix reuse off primes nothing and says so in its report (prompt_tokens 0)."""
    prime = getattr(engine, "prime", None)
    if prime is None or check_request(request):
        return {}
    request = with_head(as_lines(request))   # as infill_text will read it
    try:
        with parse_limits(cancel):
            plan = plan_for(dataclasses.replace(request, mode="inline", end=request.start, invoked=True), engine)
    except ParseAbandoned:
        return {}
    details = plan.details
    details["primed"] = prime(for_model(plan.related + plan.context.prefix), for_model(plan.context.suffix))
    return details


def run_infill(request: InfillRequest, engine: EngineLike, cancel: Callable[[], bool] | None = None) -> InfillResult:
    """Plan, fill, clean and choose. A document whose lines end in lone \\r (old Mac files, or a mix) is handled as
    \\n text: the grammars, Python's checks, the cleaning and the model all know \\n only. The swap is one
    character for one, so every offset holds. In a document whose lines end in more than one way, the answer goes
    back with each line's own break (the cleaning writes all of it in the break of the cursor's line). Its parses
    stop when cancel() turns true or when together they run past languages.PARSE_BUDGET_S."""
    read = as_lines(request)
    try:
        with parse_limits(cancel):
            result = infill_text(read, engine, cancel)
    except ParseAbandoned as stopped:
        return abandoned_result(request, stopped)
    mixed = isinstance(request.text, str) and breaks_mixed(request.text)
    return with_line_break(result, request.text) if mixed else result


def abandoned_result(request: InfillRequest, stopped: ParseAbandoned) -> InfillResult:
    """The empty answer to a request whose parsing was stopped: silent when the request was cancelled (a newer one
    replaced it), else said, since the document stays this slow to read until its long broken line is gone."""
    if stopped.cancelled:
        return InfillResult("", request.start, request.end, details={"cancelled": True})
    message = (f"reading this document's syntax took over {stopped.budget_s:g} s (a very long line tree-sitter "
               "cannot parse?): nothing to complete")
    return InfillResult("", request.start, request.end, message, {"reason": message})


def as_lines(request: InfillRequest) -> InfillRequest:
    """`request` with each lone \\r of its text made \\n (the same request when there is none)."""
    if not (isinstance(request.text, str) and has_lone_crs(request.text)):
        return request
    return dataclasses.replace(request, text=LONE_CR.sub("\n", request.text))


def with_line_break(result: InfillResult, original: str) -> InfillResult:
    """`result` in `original`'s line breaks: its edits are found again with every break read as \\n, so that each
    line they leave alone keeps its own break, and each line they write takes the break of the line it is written on
    (see line_break_near)."""
    if not result.text:
        return result
    text, end, edits = in_breaks_of(original, result.start, result.end, result.text)
    choices = []
    for choice in result.details.get("choices", []):
        choice_text, choice_end, _ = in_breaks_of(original, result.start, result.end, choice["text"])
        if choice_end == end:   # the other choices replace what the chosen one replaces
            choices.append({**choice, "text": choice_text})
    if "choices" in result.details:
        result.details["choices"] = choices
    return dataclasses.replace(result, text=text, end=end, edits=edits)


def in_breaks_of(original: str, start: int, end: int, answer: str) -> tuple[str, int, list[Edit]]:
    """`answer` (written for original[start:end], its breaks in any of the three kinds) as the text, its end and
    the edits that replace original[start:end]. A \\r\\n is one break, never cut in two. No lone \\r may meet a
    \\n into one \\r\\n (two line breaks read as one: a line lost): breaks written just after a lone \\r are lone
    \\r too, and where the text written ends in one before a \\n of the document, that \\n is taken too and written
    \\r (the end is then further)."""
    flat, offsets = flattened(original[start:end])
    edits: list[Edit] = []
    for flat_start, flat_end, new in minimal_edits(flat, LINE_BREAK.sub("\n", answer)):
        edit_start, edit_end = start + offsets[flat_start], start + offsets[flat_end]
        new = written_in_breaks(original, edit_start, new)
        if edits and edits[-1][1] >= edit_start:   # touching the one before, or in the \\n it took
            previous_start, previous_end, previous_new = edits.pop()
            kept = previous_new[:len(previous_new) - max(0, previous_end - edit_start)]   # each \\n taken: one \\r
            new = kept + after_lone_cr(new, kept[-1:] or original[previous_start - 1:previous_start]) \
                + "\r" * max(0, previous_end - edit_end)
            edit_start, edit_end = previous_start, max(edit_end, previous_end)
        else:
            new = after_lone_cr(new, original[edit_start - 1:edit_start])
        edits.append(before_newline(original, edit_start, edit_end, new))
    end = max([end] + [edit_end for _, edit_end, _ in edits])
    return apply_edits(original[start:end], [(s - start, e - start, new) for s, e, new in edits]), end, edits


def flattened(text: str) -> tuple[str, list[int]]:
    """`text` with every line break a \\n, and where each of its characters starts in `text` (then len(text))."""
    offsets = [at for at, char in enumerate(text) if not (char == "\n" and text[at - 1:at] == "\r")]
    return LINE_BREAK.sub("\n", text), offsets + [len(text)]


def written_in_breaks(original: str, start: int, new: str) -> str:
    """`new` (in \\n) in the break of the line it is written on."""
    line_break = line_break_near(original, start)
    return new.replace("\n", line_break) if "\n" in new and line_break not in (None, "\n") else new


def after_lone_cr(new: str, before: str) -> str:
    """`new` written after the character `before`: after a \\r, its first line breaks are lone \\r too."""
    if before != "\r":
        return new
    lead = len(new) - len(new.lstrip("\n"))
    return "\r" * lead + new[lead:]


def before_newline(original: str, start: int, end: int, new: str) -> Edit:
    """The edit writing `new` over original[start:end], changed so that it ends in no \\r before a \\n."""
    before = original[start - 1:start]
    if new.endswith("\r") and (new[-2:-1] or before) != "\r" and original.startswith("\n", end):
        return start, end, new[:-1] + "\n"   # the last break written as the document's own next one
    while (new[-1:] or before) == "\r" and original.startswith("\n", end):
        new, end = new + "\r", end + 1       # no way around it but to make the document's \n a \r
    return start, end, new


def for_model(text: str) -> str:
    """`text` as the model reads code: its tokenizer was trained on \\n lines (so are code models at large), and a
    \\r before each \\n costs a token per line and reads as unusual text. The cleaning writes the middle back in the
    document's own line break (CleanContext.line_ending)."""
    return text.replace("\r\n", "\n")


def with_head(request: InfillRequest) -> InfillRequest:
    """`request` on its head and text as one document (the same request when it has no head, or when the two
    together would be refused: the text alone is then answered)."""
    if not request.head or check_request(request):
        return request
    shift = len(request.head)
    head = LONE_CR.sub("\n", request.head)   # one character for one, as as_lines does for the text
    joined = dataclasses.replace(request, text=head + request.text, start=request.start + shift,
                                 end=request.end + shift, head="", own_from=shift)
    return request if check_request(joined) else joined


def without_head(result: InfillResult, request: InfillRequest) -> InfillResult:
    """A result computed on the head and text joined, in the offsets of the text alone. Its details keep the
    joined document's offsets (the next request's ContextMemory reads them on the same joined text); they say how
    much of the prefix came from the head."""
    shift = len(request.head)
    context = result.details.get("context")
    if context:
        context["head_chars"] = max(0, context["prefix_chars"] - request.start)
    return dataclasses.replace(result, start=result.start - shift, end=result.end - shift,
                               edits=[(start - shift, end - shift, text) for start, end, text in result.edits])


def indented(text: str) -> bool:
    """Whether `text` shows how it indents (a line indented with tabs or spaces)."""
    tabs, spaced, _ = indent_votes(text)
    return bool(tabs or spaced)


def in_open_brackets(text: str, start: int, statement, grammar: str | None) -> bool:
    """`start` is inside brackets that its statement (spans.Scope) opened on a line above."""
    if statement is None or "\n" not in text[statement.start:start]:
        return False
    return code_bracket_surplus(text[statement.start:start], grammar) > 0


def infill_text(request: InfillRequest, engine: EngineLike, cancel: Callable[[], bool] | None) -> InfillResult:
    joined = with_head(request)
    if joined is not request:
        return without_head(infill_text(joined, engine, cancel), request)
    started = time.perf_counter()
    problem = check_request(request)
    if problem:
        return InfillResult("", request.start, request.end, problem, {"reason": problem})

    text, start, end, mode = request.text, request.start, request.end, request.mode
    plan = plan_for(request, engine)
    details = plan.details
    timings = {"plan_ms": elapsed_ms(started)}
    details["timings"] = timings
    if plan.decision.shape == "none":
        details["reason"] = plan.decision.reason
        timings["total_ms"] = elapsed_ms(started)
        return InfillResult("", start, end, nothing_offered(request, plan.message, plan.decision.reason), details)

    prefix, suffix, original = plan.related + plan.context.prefix, plan.context.suffix, text[start:end]
    if mode == "fill" and (too_long := fill_too_long(original, engine)):
        timings["total_ms"] = elapsed_ms(started)
        details["reason"] = too_long
        return InfillResult("", start, end, too_long, details)
    engine_started = time.perf_counter()
    if mode == "rewrite":
        candidates = engine.rewrite(for_model(prefix), for_model(suffix), for_model(original),
                                    strength=REWRITE_STRENGTH, instruction=request.instruction, cancel=cancel)
    else:
        budget = {"budget_ms": request.budget_ms} if request.budget_ms else {}
        # A fill's lengths follow its selection, past the inline cap when the selection is longer (plan_lengths).
        longest = max(plan.lengths) if mode == "fill" else request.max_new_tokens
        candidates = engine.fill(for_model(prefix), for_model(suffix), max_new_tokens=longest,
                                 lengths=plan.lengths, cancel=cancel, **budget)
    timings["engine_ms"] = elapsed_ms(engine_started)
    timings.update({f"engine_{name}": value for name, value in (getattr(candidates, "timings", None) or {}).items()})
    details["engine"] = {"layout": getattr(candidates, "layout", None), "reason": getattr(candidates, "reason", None),
                         "candidates": len(candidates.items)}

    clean_started = time.perf_counter()
    # An inline item replaces the closers the editor typed after the cursor, so the model's own text and those
    # closers never stand side by side twice.
    tail = auto_closed_tail(plan.rest_of_line, plan.grammar) if mode == "inline" else ""
    # A comment alone after the cursor is replaced too, so that a body written below a header can go after it.
    comment = comment_after_cursor(plan.rest_of_line, plan.grammar) if mode == "inline" and not tail else ""
    # Layout is the document's own, not the head's: a notebook cell keeps its indentation and line breaks, and its
    # first line opens no block of the cell above (the kernel reads each cell on its own).
    own, own_start = text[request.own_from:], start - request.own_from
    layout = own if indented(own) else text
    indent_unit, indent_seen = indent_style(
        layout, request.tab_size, request.insert_spaces, plan.grammar, indentation(plan.before),
        literal_rows=(lambda: rows_inside_literals(plan.grammar, layout)) if plan.grammar else None)
    # (a file written in two widths: the model's levels are redrawn in neither, the code around may use the other)
    indent_seen = indent_seen and not other_step_near(layout, own_start if layout is own else start, indent_unit)
    style = CleanContext(
        shape=plan.decision.shape, before=plan.before, rest_of_line=plan.rest_of_line, suffix=suffix,
        suffix_starts_line=end == 0 or text[end - 1] == "\n", line_ending=line_ending_of(own, own_start),
        indent_unit=indent_unit, indent_seen=indent_seen, indent_own=layout is own or not request.own_from,
        original=original,
        whole_lines=mode != "inline" and original.endswith("\n"),
        line_above=previous_nonblank_line(own, own_start, plan.grammar),
        tab_size=request.tab_size, grammar=plan.grammar, opener=opener_line(own, own_start, plan.grammar),
        comma_before_closer=plan.span.closes_go_list, literal_lines=plan.span.literal_lines,
        literal_closer=plan.span.literal_closer, literal_ends_below=plan.span.literal_ends_below,
        in_brackets=in_open_brackets(text, start, plan.span.statement, plan.grammar),
        blank_lines_above=blank_lines_above(own, own_start),
        own_mixed_indentations=mixed_indentations(layout, plan.grammar), text=text, replaced=(start, end),
        scope_at_margin=bool(plan.span.scopes) and starts_at_margin(text, plan.span.scopes[0].start),
        bracket_opened_at=None if plan.before.strip() else bracket_opener_indentation(own, own_start, plan.grammar),
    )
    # (text no editor takes, a lone surrogate, is not cleaned, which encodes it: choose refuses it as it is)
    cleaned = [Cleaned(i, item.text if unreadable_text(item.text) else cleaned_with_tail(item.text, style, tail), item)
               for i, item in enumerate(candidates.items)]
    if comment:
        cleaned = [Cleaned(c.index, body_after_header_comment(c.text, comment, plan.before, style.line_ending), c.item)
                   for c in cleaned]
    covered_end = end + len(tail or comment)   # the item replaces the editor's closers, or the comment, after it
    # Judged on the cell alone, as its kernel runs it: with the cells above, a body line or an `else:` would pass
    # as carrying on a block that the cell above left open.
    choice = choose(cleaned, plan.grammar, own, own_start, covered_end - request.own_from)
    timings["clean_ms"] = elapsed_ms(clean_started)
    details["candidates"] = choice.report
    details["reason"] = choice.reason
    details["choices"] = [{"text": c.text, "index": c.index,
                           "confidence": getattr(c.item, "confidence", None)} for c in choice.ranked[:MAX_CHOICES]]
    if candidates.items:
        details["raw"] = candidates.items[0].text   # the engine's best before cleaning, for measuring the cleaning
    timings["total_ms"] = elapsed_ms(started)
    if choice.chosen is None:
        reason = choice.reason
        if choice.rejected_for_errors:
            reason = ("every candidate the model wrote would have broken the code's syntax"
                      if all(c.text for c in cleaned) else
                      "the model's candidates would have broken the code's syntax or left nothing worth inserting")
        return InfillResult("", start, end, nothing_offered(request, plan.message, reason), details)
    details["chosen"] = {"index": choice.chosen.index, "length": getattr(choice.chosen.item, "length", None),
                         "confidence": getattr(choice.chosen.item, "confidence", None)}
    new_text, new_end = choice.chosen.text, covered_end
    edits = minimal_edits(text[start:new_end], new_text, start)
    message = plan.message
    if mode == "fill" and getattr(choice.chosen.item, "ended", True) is False:
        # Its end is where the length limit fell, not where the model closed the code: the user should look.
        limit = getattr(choice.chosen.item, "length", None) or max(plan.lengths)   # a row cut at its limit
        cut = (f"the model had not finished when it reached its length limit ({limit} tokens): "
               "check the end of the filled text")
        message = f"{message}; {cut}" if message else cut
    if request.instruction:
        # No engine here puts an instruction to the model; the editors ask for one, and the user must not believe
        # it was followed.
        unused = f"{INSTRUCTION_UNUSED}: the selection was {'rewritten' if mode == 'rewrite' else 'filled'}"
        message = f"{message}; {unused}" if message else unused
    return InfillResult(new_text, start, new_end, message, details, edits)
