"""What the model sees: the prefix before the cursor and the suffix after it, within a budget (tokens of the engine's
tokenizer, or characters), nearest code first, cut at line boundaries (a long line next to the cursor lends its end
or start rather than leave the model nothing), keeping the enclosing scope whole when it fits.

The split follows how the engine spends its prompt: the suffix gets at most a share of the budget (the code right
after the cursor matters, the far suffix little), the prefix gets whatever the suffix leaves.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

from .spans import Scope

Measure = Callable[[str], int]

PREFIX_BUDGET = 3000     # characters before the cursor, when measuring in characters
SUFFIX_BUDGET = 1000     # characters after it
CHARS_PER_TOKEN = 3.5    # estimate for engines that cannot count their tokens (code averages 3-4)
DEFAULT_PROMPT_TOKENS = round((PREFIX_BUDGET + SUFFIX_BUDGET) / CHARS_PER_TOKEN)
SUFFIX_SHARE = 1 / 3     # the engine keeps at most this share of its prompt for the suffix
PREFIX_SLACK = 1 / 8     # of the prefix budget: room left for typing when the prefix's first lines must go
# How far a token budget can reach, in characters: a bound of speed, not a fact. Code averages 3-4 characters a token
# and longer tokens (runs of spaces or dashes; the embedded tokenizer's longest is 73) are rare, so a context rich
# in them is cut a little shorter than its budget allows, never longer; a 2 MB line is never measured whole.
MAX_CHARS_PER_TOKEN = 16
CONTINUATION = re.compile(r"^\s*[)\]}.,]")   # a line that carries on the statement above it


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class Context:
    prefix: str
    suffix: str
    prefix_start: int              # str offset where the prefix begins in the document
    suffix_end: int                # str offset where the suffix ends
    kept_whole: Scope | None = None  # the largest enclosing scope the context holds entirely
    prefix_tokens: int = 0         # as measured (characters when measuring characters)
    suffix_tokens: int = 0


def line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def line_end(text: str, offset: int) -> int:
    """Offset just past the newline ending the line at `offset` (or the end of the text)."""
    newline = text.find("\n", offset)
    return len(text) if newline == -1 else newline + 1


def longest_fitting_tail(text: str, start: int, stop: int, budget: int, measure: Measure) -> int:
    """The smallest offset in [start, stop] with measure(text[offset:stop]) <= budget (binary search)."""
    low, high = start, stop
    while low < high:
        middle = (low + high) // 2
        if measure(text[middle:stop]) <= budget:
            high = middle
        else:
            low = middle + 1
    return low + 1 if 0 < low < stop and text[low - 1:low + 1] == "\r\n" else low   # never between \r and \n


def longest_fitting_head(text: str, start: int, stop: int, budget: int, measure: Measure) -> int:
    """The largest offset in [start, stop] with measure(text[start:offset]) <= budget."""
    low, high = start, stop
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[start:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low - 1 if start < low < len(text) and text[low - 1:low + 1] == "\r\n" else low   # never between \r and \n


WORD_BLANK, NOT_WORD, MID_WORD = re.compile(r"\s"), re.compile(r"\W"), re.compile(r"\w\w")


def word_start_after(text: str, offset: int, limit: int) -> int:
    """A cut at `offset` in the line that ends at `limit`, moved forward to the start of a word: past its next
    blank, else past its next separator (`,` in `[0,1,2]`, minified code), else left where it is. The line's own
    break does not count: the line would be dropped whole."""
    end = limit
    while end > offset and text[end - 1] in "\r\n":
        end -= 1
    boundary = WORD_BLANK.search(text, offset, end) or NOT_WORD.search(text, offset, end)
    return boundary.end() if boundary else offset


def word_end_before(text: str, limit: int, offset: int) -> int:
    """A cut at `offset` moved back to the end of a word (before the last blank: a space or a tab), within
    [limit, offset]."""
    blank = max(text.rfind(" ", limit, offset), text.rfind("\t", limit, offset))
    return blank if blank > limit else offset


def from_a_word(text: str, cut: int, start: int, budget: int, measure: Measure) -> int:
    """A prefix cut inside the cursor's line, moved forward to a word's start (`Value1489),` read as a name's
    second half otherwise), unless that leaves less than half the budget (base64 in a string: its closing quote)."""
    if cut == line_start(text, cut):
        return cut
    word = word_start_after(text, cut - 1, start)
    return word if word > cut and measure(text[word:start]) * 2 >= budget else cut


def to_a_word_end(text: str, end: int, cut: int, budget: int, measure: Measure) -> int:
    """A suffix cut inside its first line, moved back to a word's end: before its last blank, else after its
    last separator, unless that leaves less than half the budget."""
    if cut <= end or not MID_WORD.fullmatch(text, cut - 1, cut + 1):   # (a cut between two words is one already)
        return cut
    word = word_end_before(text, end, cut)
    if word == cut:
        separator = None
        for separator in NOT_WORD.finditer(text, end, cut):
            pass
        word = separator.end() if separator is not None else cut
    return word if word < cut and measure(text[end:word]) * 2 >= budget else cut


def skip_continuation_lines(text: str, begin: int, start: int) -> int:
    """A prefix should not open on the tail of a statement cut in two (`)`, `.method()`, `, arg`): move its start to
    the next line that begins a statement, a few lines at most, unless that drops half the prefix: a method chain
    or a long call right above the cursor is the code nearest to it, and a cut statement beats losing it."""
    skipped = begin
    for _ in range(8):
        stop = line_end(text, skipped)
        if stop > line_start(text, start) or not CONTINUATION.match(text[skipped:stop]):
            break
        skipped = stop
    return skipped if (start - skipped) * 2 >= start - begin else begin


def cut_prefix(text: str, start: int, budget: int, measure: Measure = len) -> int:
    """Where the prefix begins: whole lines, nearest first, while they fit the budget; mid-line when the cursor's own
    line is longer than the whole budget, or when a line that does not fit comes before half the budget is used
    (its end, from a word)."""
    begin = line_start(text, start)
    reach = max(0, start - budget * (1 if measure is len else MAX_CHARS_PER_TOKEN))
    if begin < reach:   # a line longer than any budget (minified code): never measure past what could fit
        return from_a_word(text, longest_fitting_tail(text, reach, start, budget, measure), start, budget, measure)
    used = measure(text[begin:start])
    if used > budget:
        return from_a_word(text, longest_fitting_tail(text, begin, start, budget, measure), start, budget, measure)
    cut_mid_line = False
    while begin > reach:
        previous = line_start(text, begin - 1)
        cost = None if previous < reach else measure(text[previous:begin])   # never measure a 2 MB line
        if cost is None or used + cost > budget:
            if used * 2 < budget:
                # A long line (a list, a call) right above would leave the model next to nothing: its end,
                # from a word (a line with no blank or separator to start from, base64 say, is left out).
                fitting = longest_fitting_tail(text, max(previous, reach), begin, budget - used, measure)
                tail = word_start_after(text, fitting, begin)
                if tail != fitting:
                    cut_mid_line = tail < begin
                    begin = tail
            break
        used += cost
        begin = previous
    if begin > 0 and not cut_mid_line:
        begin = skip_continuation_lines(text, begin, start)
    # Line by line counts can differ a little from the count of the whole (tokens merge across line breaks).
    while measure is not len and begin < line_start(text, start) and measure(text[begin:start]) > budget:
        begin = line_end(text, begin)
    return begin


def cut_suffix(text: str, end: int, budget: int, measure: Measure = len) -> int:
    """Where the suffix ends: whole lines, nearest first, while they fit; mid-line when there is no line end within
    the budget, or when a line that does not fit comes before half the budget is used (its start, up to a word)."""
    stop = line_end(text, end)
    reach = min(len(text), end + budget * (1 if measure is len else MAX_CHARS_PER_TOKEN))
    if stop > reach:
        return to_a_word_end(text, end, longest_fitting_head(text, end, reach, budget, measure), budget, measure)
    used = measure(text[end:stop])
    if used > budget:
        return to_a_word_end(text, end, longest_fitting_head(text, end, stop, budget, measure), budget, measure)
    while stop < reach:
        following = line_end(text, stop)
        cost = None if following > reach else measure(text[stop:following])
        if cost is None or used + cost > budget:
            if used * 2 < budget:   # the start of a long line below rather than nothing
                stop = word_end_before(text, stop, longest_fitting_head(text, stop, min(following, reach),
                                                                        budget - used, measure))
            break
        used += cost
        stop = following
    while measure is not len and stop > line_end(text, end) and measure(text[end:stop]) > budget:
        stop = line_start(text, stop - 1)
    return stop


def scope_need(text: str, start: int, end: int, scope: Scope, total: int, measure: Measure) -> tuple[int, int] | None:
    """(prefix, suffix) cost of seeing `scope` from its first line to its last; None when it cannot fit `total`."""
    first = line_start(text, scope.start)
    last = line_end(text, scope.end - 1) if scope.end > end else end
    reach = total * (1 if measure is len else MAX_CHARS_PER_TOKEN)
    if (start - first) + (last - end) > reach:
        return None   # too long to fit whatever the measure says: do not tokenize it
    return measure(text[first:start]), measure(text[end:last])


def build_context(text: str, start: int, end: int, scopes: list[Scope] | None = None,
                  prefix_budget: int = PREFIX_BUDGET, suffix_budget: int = SUFFIX_BUDGET,
                  measure: Measure = len) -> Context:
    """Prefix = text before `start`, suffix = text after `end`, each within its budget (in `measure` units).

    When an enclosing scope (tried outermost first) fits in the two budgets together but not in the split given,
    budget moves from one side to the other so the model sees that scope from its first line to its last.
    """
    total = prefix_budget + suffix_budget
    kept = None
    for scope in reversed(scopes or []):  # outermost first: keep the largest scope that fits
        need = scope_need(text, start, end, scope, total, measure)
        if need is None or need[0] + need[1] > total:
            continue
        need_prefix, need_suffix = need
        if need_prefix > prefix_budget:
            prefix_budget, suffix_budget = need_prefix, total - need_prefix
        elif need_suffix > suffix_budget:
            prefix_budget, suffix_budget = total - need_suffix, need_suffix
        kept = scope
        break
    prefix_start = cut_prefix(text, start, prefix_budget, measure)
    suffix_end = cut_suffix(text, end, suffix_budget, measure)
    prefix, suffix = text[prefix_start:start], text[end:suffix_end]
    return Context(prefix, suffix, prefix_start, suffix_end, kept, measure(prefix), measure(suffix))


def is_word_start(text: str, offset: int) -> bool:
    return offset == line_start(text, offset) or word_start_after(text, offset - 1, line_end(text, offset)) == offset


def cut_with_room(text: str, start: int, budget: int, count: Measure) -> int:
    """A prefix cut leaving PREFIX_SLACK of the budget free for typing; in a line longer than that, from a word,
    unless the first word starts too near the cursor (base64 in a string: its closing quote) to leave half of it."""
    room = budget - int(budget * PREFIX_SLACK)
    return cut_prefix(text, start, room, count)


def steady_prefix_start(text: str, start: int, budget: int, count: Measure, fresh: int, previous: int) -> int:
    """Where the prefix begins given where the document's last request began it (`previous`, an offset).

    Cutting afresh at every keystroke moves the prefix's first line whenever the line being typed outgrows the
    budget, and each move costs the engine the whole prefix again (its encoder cache is reused only up to the first
    changed token). So the last start is kept while it still fits and uses most of the budget; once it no longer
    fits, the prefix is cut to leave PREFIX_SLACK of the budget free, so the next few lines typed fit too."""
    slack = int(budget * PREFIX_SLACK)
    cursor_line = line_start(text, start)
    if fresh != cursor_line and line_start(text, fresh) == cursor_line:
        # The cursor's own line is longer than the budget (minified code, a long literal): the same, or the
        # start would move at every key typed and the engine encode the whole prompt again each time.
        if cursor_line <= previous <= start and budget - 2 * slack <= count(text[previous:start]) <= budget \
                and is_word_start(text, previous):
            return previous   # (not when the cursor moved back far: the prefix would hold a few tokens)
        return cut_with_room(text, start, budget, count)
    if line_start(text, fresh) != fresh and 0 <= previous < line_start(text, start) \
            and line_start(text, previous) == line_start(text, fresh):
        # A long line above lends its end (cut_prefix): keep the last start in it while it fits, else re-cut with
        # room to type, or each word typed would move the start to the next word and cost the whole prompt.
        # (Still from a word: an edit earlier in the line can have moved a word over it.)
        if previous >= fresh and count(text[previous:start]) <= budget and is_word_start(text, previous):
            return previous
        return cut_with_room(text, start, budget, count)
    if previous < 0 or previous > line_start(text, start) or line_start(text, previous) != previous \
            or line_start(text, fresh) != fresh:
        return fresh   # not a line start of this text before the cursor (edited since), or a mid-line cut
    if previous >= fresh:
        # Line by line a prefix can count a token more than its parts: check the whole, as cut_prefix does.
        return previous if previous == fresh or budget - 2 * slack <= count(text[previous:start]) <= budget \
            else fresh
    return cut_with_room(text, start, budget, count)   # the old start no longer fits: leave room to type


def build_token_context(text: str, start: int, end: int, scopes: list[Scope] | None, max_tokens: int,
                        count: Measure = estimate_tokens, suffix_share: float = SUFFIX_SHARE,
                        previous_prefix_start: int | None = None, typing: bool = False,
                        suffix_tokens_read: int | None = None) -> Context:
    """The context as the engine will read it: at most `max_tokens` tokens in all, the suffix at most
    `suffix_share` of them (the engine trims a longer one), the prefix all the suffix leaves. With
    `previous_prefix_start` (where the document's last request began its prefix) the prefix begins there while it
    fits well (steady_prefix_start). `typing` (an inline request: more follow as the user types): a prefix cut
    afresh where the budget cuts it (no previous start, or one that no longer applies: the cursor jumped) is cut with
    room to type, as a re-cut is, or the very next request would have to move its first line and the engine encode
    the whole prompt again. `suffix_tokens_read`: the prompt holds only the suffix's first tokens (none: a suffix
    pinned on the engine's canvas); the suffix is still cut as above (cleaning compares the fill with it) but the
    prefix is charged only what the prompt holds of it."""
    suffix_cap = max(1, int(max_tokens * suffix_share))

    def charged(suffix_cost: int) -> int:
        return suffix_cost if suffix_tokens_read is None else min(suffix_cost, suffix_tokens_read)

    kept = None
    for scope in reversed(scopes or []):
        need = scope_need(text, start, end, scope, max_tokens, count)
        if need is not None and need[1] <= suffix_cap and need[0] + charged(need[1]) <= max_tokens:
            kept = scope
            break
    suffix_end = cut_suffix(text, end, suffix_cap, count)
    suffix = text[end:suffix_end]
    suffix_tokens = count(suffix)
    budget = max_tokens - charged(suffix_tokens)
    prefix_start = cut_prefix(text, start, budget, count)
    steady = prefix_start
    if previous_prefix_start is not None:
        steady = steady_prefix_start(text, start, budget, count, prefix_start, previous_prefix_start)
    if typing and prefix_start > 0 and steady == prefix_start and steady != previous_prefix_start:
        steady = cut_with_room(text, start, budget, count)
    # Never at the price of the enclosing scope the fresh cut keeps whole (its `def` line, say).
    if kept is None or prefix_start > line_start(text, kept.start) or steady <= line_start(text, kept.start):
        prefix_start = steady
    prefix = text[prefix_start:start]
    if kept is not None and (prefix_start > line_start(text, kept.start) or suffix_end < min(kept.end, len(text))):
        kept = None   # line by line counting fell a few tokens short of the whole scope
    return Context(prefix, suffix, prefix_start, suffix_end, kept, count(prefix), suffix_tokens)
