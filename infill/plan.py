"""Everything decided before the model runs: language, span, context, shape and lengths."""
from __future__ import annotations

from dataclasses import dataclass, field

from .context import Context, Measure, build_token_context
from .decide import Decision, decide_shape, line_parts, plan_lengths
from .languages import PLAIN_TEXT_IDS, describe_language, grammar_for
from .literals import LONGEST_SCAN
from .related import RELATED_SHARE, RelatedDocument, pick_snippets, snippets_within
from .spans import SpanInfo, find_span
from .style import LINE_BREAK


@dataclass(frozen=True)
class ContextMemory:
    """What a document's last request chose for its context. The next request starts from it, so the prompt the
    engine reads changes as little as possible from keystroke to keystroke: its encoder cache is reused only up to
    the first changed token."""
    related: tuple[tuple[str, int], ...] = ()   # (path, 0-based first line) of the other-file snippets, in order
    prefix_start: int | None = None             # str offset where the prefix began
    prefix_line: int | None = None              # its 0-based line, where it began one of the document's own lines

    @classmethod
    def of(cls, details: dict, text: str | None = None) -> ContextMemory:
        """From a plan's (or a result's) details, for the document `text` it read; empty when the request ended
        before planning."""
        context = details.get("context") or {}
        start = context.get("prefix_start")
        line = None
        # (not in a notebook's cell: its offsets count the cells above, which edits to the cell do not move)
        if text is not None and start is not None and "head_chars" not in context and 0 <= start <= len(text) \
                and (start == 0 or text[start - 1] == "\n"
                     or text[start - 1] == "\r" and text[start:start + 1] != "\n"):
            # (counted in C where there is no CR: a regex over a 1 MB prefix costs 16 ms a request)
            line = text.count("\n", 0, start) if "\r" not in text else len(LINE_BREAK.findall(text, 0, start))
        return cls(tuple((entry["path"], entry["line"] - 1) for entry in context.get("related") or []),
                   start, line)

    def moved(self, changes: list[tuple[int, int, int, int, str] | None], text: str) -> ContextMemory:
        """The memory after the document's edits, each (first line, its character, last line, its character,
        the text put in) or None where the whole text was replaced, in order; `text` is the document after them.
        An edit above the prefix (an import added) moves its first line, and an offset kept as it was would point
        into another line: the next request would start its prefix afresh and the engine read it all again."""
        line = self.prefix_line
        if line is None:
            return self
        above = False   # an edit before the prefix's start: its offset moves, if not its line
        for change in changes:
            if change is None:
                return ContextMemory(self.related)
            first_line, first_character, last_line, last_character, inserted = change
            if (first_line, first_character) >= (line, 0):
                continue   # after the prefix's start: it stays where it is
            ends_at_start = (last_line, last_character) == (line, 0)
            if (last_line, last_character) > (line, 0) or ends_at_start and not (
                    inserted.endswith(("\n", "\r")) or not inserted and first_character == 0):
                return ContextMemory(self.related)   # across it, or joined to the line above: no line start now
            line += len(LINE_BREAK.findall(inserted)) - (last_line - first_line)
            above = True
        if not above:
            return self
        if line == 0:
            return ContextMemory(self.related, 0, 0)
        for number, match in enumerate(LINE_BREAK.finditer(text), start=1):   # (up to the line only, each key)
            if number == line:
                return ContextMemory(self.related, match.end(), line)
        return ContextMemory(self.related)


@dataclass
class Plan:
    grammar: str | None        # None = plain-text fallback
    span: SpanInfo
    decision: Decision
    context: Context
    lengths: list[int] | None  # None for a rewrite (the canvas is the original's size)
    before: str                # the line's text before `start`
    rest_of_line: str          # the line's text after `end`
    related: str = ""          # commented snippets of other open files, to go before the prefix
    message: str | None = None
    details: dict = field(default_factory=dict)


def scope_details(scope) -> dict | None:
    return None if scope is None else {"kind": scope.kind, "type": scope.node_type, "start": scope.start,
                                       "end": scope.end}


def make_plan(text: str, mode: str, start: int, end: int, language_id: str | None, path: str | None,
              max_new_tokens: int, max_prompt_tokens: int, count_tokens: Measure, invoked: bool = False,
              related: list[RelatedDocument] | None = None, previous: ContextMemory = ContextMemory(),
              suffix_tokens_read: int | None = None) -> Plan:
    grammar = grammar_for(language_id, path)
    message = None
    if grammar is not None:
        span = find_span(grammar, text, start, end)
    else:
        # No grammar: no scopes, no string/comment knowledge; the context is cut by lines only.
        span = SpanInfo()
        if (language_id or "").strip().lower() not in PLAIN_TEXT_IDS:   # (plain text by choice needs no word)
            message = (f"no tree-sitter grammar is available for {describe_language(language_id, path)}; "
                       "plain-text context was used")

    if span.unreadable:
        decision = Decision("none", span.unreadable)
    elif mode == "inline":
        decision = decide_shape(text, start, span.in_string_or_comment, invoked, grammar, span.in_code_hole,
                                span.line_above_in_comment, span.literal_lines)
    else:
        decision = Decision("block", f"{mode} the selection")
    snippets = (pick_snippets(text, start, grammar, related or [], previous=previous.related)
                if decision.shape != "none" else [])
    related_text, kept, related_tokens = snippets_within(snippets, grammar, int(max_prompt_tokens * RELATED_SHARE),
                                                         count_tokens)
    # Only an inline request follows typing; a command's selection is its own context.
    steady = previous.prefix_start if mode == "inline" else None
    context = build_token_context(text, start, end, span.scopes, max_prompt_tokens - related_tokens, count_tokens,
                                  previous_prefix_start=steady, typing=mode == "inline",
                                  suffix_tokens_read=suffix_tokens_read)
    if mode == "rewrite":
        lengths = None
    else:
        # (A selection's size is counted as the model reads it: a plan from its characters fell short of text
        # that takes more tokens per character, CJK or base64, and the fill was cut.)
        lengths = plan_lengths(decision.shape, max_new_tokens, count_tokens(text[start:end]) if end > start else 0)
    before, _ = line_parts(text, start)
    _, rest_of_line = line_parts(text, end)
    # The cleaning reads these over and over: of a line longer than the context and than a literal scan's reach
    # (minified code), what the model read, or a character more than that reach (1 MB cost seconds a suggestion).
    # Past the reach the scans answer "unknown" as they did for the whole line; within it they would take the cut,
    # which may fall inside a string, for the start of code.
    reach = LONGEST_SCAN + 1
    before = before[len(before) - min(len(before), max(start - context.prefix_start, reach)):]
    rest_of_line = rest_of_line[:max(context.suffix_end - end, reach)]

    details = {
        "language": grammar or "plaintext",
        "mode": mode,
        "span": scope_details(span.span) or {"kind": "document", "type": "document", "start": 0, "end": len(text)},
        "scopes": [scope.node_type for scope in span.scopes],
        "statement": scope_details(span.statement),
        "decision": decision.shape,
        "multiline": decision.shape in ("multi", "block"),
        "decision_reason": decision.reason,
        "asked_only": mode == "inline" and span.in_string_or_comment,   # typing there gets nothing
        "lengths": lengths,
        "context": {"prefix_chars": len(context.prefix), "suffix_chars": len(context.suffix),
                    "prefix_tokens": context.prefix_tokens, "suffix_tokens": context.suffix_tokens,
                    "max_prompt_tokens": max_prompt_tokens,
                    "prefix_start": context.prefix_start, "suffix_end": context.suffix_end,
                    "kept_whole": context.kept_whole.node_type if context.kept_whole else None,
                    "related": [{"path": s.path, "line": s.first_line + 1, "similarity": round(s.similarity, 3)}
                                for s in kept], "related_tokens": related_tokens},
    }
    if grammar is None:
        details["fallback"] = True
    return Plan(grammar, span, decision, context, lengths, before, rest_of_line, related_text, message, details)
