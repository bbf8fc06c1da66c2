"""Snippets from the user's other open files for the model's context.

Code being written often calls what another open file defines. From each other open file of the same language the
window of lines that shares the most identifiers with the lines above the cursor is kept (Jaccard similarity, as
Copilot's neighbouring-tab snippets do); the best few go before the prefix, every line commented out under a header
naming its file, so the model reads them as notes and never as this file's code.

The query is the complete lines above the cursor's own line: typing within a line does not change which snippets are
chosen, so the prompt's head stays the same from keystroke to keystroke and the engine's prefix reuse keeps working.
A new line above the cursor does change the query; the snippets the last request used are then kept while they stay
nearly as good as any other (STICKY_MARGIN), since any change to them makes the engine encode the prefix after them
again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from .context import MAX_CHARS_PER_TOKEN
from .languages import grammar_for
from .literals import LINE_COMMENT
from .readable import unreadable_text
from .style import LINE_BREAK, line_start_at

LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")   # one line with its ending (the last may have none)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")   # names of 3+ characters: `i`, `x`, `id` say little
QUERY_LINES = 20          # complete lines above the cursor that stand for what is being written
WINDOW_LINES = 20         # a snippet's height ...
WINDOW_STRIDE = 10        # ... and how far apart candidate windows start
MIN_SIMILARITY = 0.1      # below this a window shares too little to be worth its tokens
STICKY_MARGIN = 0.05      # a snippet the last request used stays until another beats it by this much similarity
MAX_SNIPPETS = 3
MIN_TRIMMED_LINES = 3     # a window too long for the room left is cut to its best-matching lines, down to this many
TRIM_STEP = 2             # lines dropped per try (each try counts the tokens of what is left)
RELATED_SHARE = 1 / 4       # of the context tokens, at most; the file's own code around the cursor comes first
COPY_SHARE = 0.8          # a window this much of whose lines the code around the cursor holds already is a copy ...
COPY_NEAR_CHARS = 32_000  # ... of the text this far either side of it (more than a 4,096-token context reads)
MAX_DOCUMENT_CHARS = 500_000   # larger open files (generated, minified) are not searched
MAX_SEARCHED_CHARS = 1_000_000  # a request searches files until this much text: each new line above the cursor
                                # searches every file again (ten open files of 500 kB: 81 ms a line on this
                                # 2-core CPU, 2026-11-24; at most 1 MB: about 16 ms)
# Words every file of a language repeats: they would make unrelated windows look alike.
COMMON_WORDS = frozenset(
    "and are as assert async await break case catch char class const continue def default del elif else enum "
    "except export extends false final finally fn for from func function global if impl import in int interface "
    "is let local long match mod new nil none not null or package pass private protected pub public raise return "
    "self static str struct super switch this throw true try type use var void while with yield".split())


@dataclass(frozen=True)
class RelatedDocument:
    path: str                        # how the snippet's header names the file
    text: str
    language_id: str | None = None   # LSP languageId; without it the path's extension decides


@dataclass(frozen=True)
class Snippet:
    path: str
    first_line: int                  # 0-based line of the window in its file
    text: str                        # the window's lines, as they are in the file
    similarity: float
    matches: tuple[int, ...] = ()    # per line of the window, the query's identifiers it holds (for trimming)


def identifiers(text: str) -> frozenset[str]:
    return frozenset(IDENTIFIER.findall(text)) - COMMON_WORDS


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def query_lines(document: str, start: int) -> str:
    """Up to QUERY_LINES complete lines before the cursor's line."""
    line_start = begin = line_start_at(document, start)
    for _ in range(QUERY_LINES):
        if begin == 0:
            break
        line_end = begin - (2 if document.startswith("\r\n", begin - 2) else 1)   # before the line's break
        begin = line_start_at(document, line_end)
    return document[begin:line_start]


# Grammars whose files read each other's code: a .ts file calls into .js and .tsx ones, C++ includes .h headers.
FAMILIES = {"javascript": "js", "typescript": "js", "tsx": "js", "c": "c", "cpp": "c"}


def same_family(a: str | None, b: str | None) -> bool:
    return a is not None and (a == b or FAMILIES.get(a, a) == FAMILIES.get(b, b))


# Cache sizes: a few more than the server's 10 related files, so a search never evicts its own files; a 500 kB file's
# line identifiers take several MB, and each entry keeps its text alive.
@lru_cache(maxsize=12)
def lines_of(text: str) -> tuple[str, ...]:
    """The file's lines with their line ends; cached, as an open file is searched again at every request."""
    # Lines as LSP counts them (\r\n, \r, \n): str.splitlines also breaks at form feeds and U+2028, which would
    # put a snippet's line number past where the editor shows it.
    return tuple(LINE.findall(text))


@lru_cache(maxsize=12)
def line_identifiers(text: str) -> tuple[frozenset[str], ...]:
    return tuple(identifiers(line) for line in lines_of(text))


def window_starts(text: str) -> range:
    return range(0, max(1, len(line_identifiers(text)) - WINDOW_LINES + WINDOW_STRIDE), WINDOW_STRIDE)


def window_similarity(query: frozenset[str], text: str, first: int) -> float:
    return similarity(query, frozenset().union(*line_identifiers(text)[first:first + WINDOW_LINES]))


@lru_cache(maxsize=48)
def best_window(query: frozenset[str], text: str) -> tuple[int, float]:
    """(first line, similarity) of the window of `text` most similar to `query`, the earliest of equals. Cached:
    the query changes only when a line above the cursor does."""
    best = (0, 0.0)
    for first in window_starts(text):
        score = window_similarity(query, text, first)
        if score > best[1]:
            best = (first, score)
    return best


def copies_lines_of(window: str, nearby: set[str]) -> bool:
    """Does the code around the cursor hold most of the window's lines (3 or more, blank ones aside)?"""
    lines = [line.strip() for line in window.splitlines() if line.strip()]
    return len(lines) >= 3 and sum(line in nearby for line in lines) >= COPY_SHARE * len(lines)


def pick_snippets(document: str, start: int, grammar: str | None, related: list[RelatedDocument],
                  limit: int = MAX_SNIPPETS, previous: tuple[tuple[str, int], ...] = ()) -> list[Snippet]:
    """The most similar window of each other open file in the same language (or family: JavaScript, TypeScript and
    TSX; C and C++), best first, at most `limit`.

    `previous`: (path, first line) of the snippets the last request for this document used, in their order. Each is
    kept, in that order, while no other window beats it by STICKY_MARGIN: the prompt after a changed snippet is
    encoded again."""
    if grammar is None or not related:
        return []
    query = identifiers(query_lines(document, start))
    if not query:
        return []
    rank = {key: i for i, key in enumerate(previous)}
    found, searched = [], 0
    nearby: set[str] | None = None   # the lines around the cursor, read once a window is worth checking
    for other in related:
        text = other.text
        # (An unreadable file would fail every request of this one: the tokenizer raises on it.)
        if (not isinstance(text, str) or len(text) > MAX_DOCUMENT_CHARS or text.isspace() or not text
                or not same_family(grammar_for(other.language_id, other.path), grammar) or unreadable_text(text)
                or text == document):   # the document itself, or a copy: its lines are in the context already
            continue
        searched += len(text)
        if searched > MAX_SEARCHED_CHARS:
            break   # the files come most recently used first: the rest are the least likely to matter
        first, score = best_window(query, text)
        kept = next((line for path, line in previous if path == other.path and line in window_starts(text)), None)
        if kept is not None and kept != first:
            kept_score = window_similarity(query, text, kept)
            if kept_score >= MIN_SIMILARITY and kept_score + STICKY_MARGIN > score:
                first, score = kept, kept_score
        if score >= MIN_SIMILARITY:
            window = "".join(lines_of(text)[first:first + WINDOW_LINES])
            if nearby is None:
                nearby = {line.strip() for line in
                          document[max(0, start - COPY_NEAR_CHARS):start + COPY_NEAR_CHARS].splitlines()}
            if copies_lines_of(window, nearby):
                continue   # another copy of the code being edited (an old one, say): the model reads it already
            matches = tuple(len(query & ids) for ids in line_identifiers(text)[first:first + WINDOW_LINES])
            found.append(Snippet(other.path, first, window, score, matches))

    def strength(snippet: Snippet) -> float:
        return snippet.similarity + (STICKY_MARGIN if (snippet.path, snippet.first_line) in rank else 0.0)

    found.sort(key=lambda s: (-strength(s), s.path, s.first_line))
    chosen = found[:limit]
    # The kept ones return to their earlier order, in the places they hold among the chosen.
    places = [i for i, s in enumerate(chosen) if (s.path, s.first_line) in rank]
    for place, snippet in zip(places, sorted((chosen[i] for i in places),
                                             key=lambda s: rank[(s.path, s.first_line)])):
        chosen[place] = snippet
    return chosen


# What must not reach a comment: a line break in a file's name would end the header's comment and put the rest of
# the name in the prompt as code.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def render(snippet: Snippet, grammar: str, text: str | None = None) -> str:
    """The snippet (or `text`, a run of its lines) commented out line by line under a header naming its file."""
    mark = LINE_COMMENT.get(grammar, "//")
    lines = LINE_BREAK.sub("\n", snippet.text if text is None else text).rstrip("\n").split("\n")   # lone \r too
    # A `//` comment ending in a backslash goes on into the next line in C and C++ (a macro's continuation lines
    # would carry the comment into the prefix's first line).
    body = "".join(f"{mark} {line.rstrip().rstrip(chr(92)).rstrip()}\n" if line.strip() else f"{mark}\n"
                   for line in lines)
    return f"{mark} Compare this snippet from {UNPRINTABLE.sub('?', snippet.path)}:\n{body}"


def snippets_within(snippets: list[Snippet], grammar: str, budget: int,
                    measure: Callable[[str], int]) -> tuple[str, list[Snippet], int]:
    """The rendered snippets, best first, while they fit `budget` (in `measure` units), those kept, and their cost
    (the sum of the parts: joining them can only merge tokens, never add one)."""
    text, kept, used = "", [], 0
    chars_per_unit = 1 if measure is len else MAX_CHARS_PER_TOKEN
    for snippet in snippets:
        for lines in trimmings(snippet):
            rendered = render(snippet, grammar, lines)
            if len(rendered) > (budget - used) * chars_per_unit:
                continue   # cannot fit: not worth counting (a minified file's window is a whole bundle)
            cost = measure(rendered)
            if used + cost <= budget:
                text, used = text + rendered, used + cost
                kept.append(snippet)
                break
    return text, kept, used


def trimmings(snippet: Snippet) -> list[str | None]:
    """The snippet's text to try, longest first: the whole window (None), then, where it knows which lines match
    the query, its best-matching runs of fewer lines, down to MIN_TRIMMED_LINES. A small model's context (192
    tokens, a quarter for snippets) holds no whole 20-line window, and the other files were never read."""
    lines = LINE.findall(snippet.text)   # (not lines_of: its cache holds the open files, not their windows)
    if len(snippet.matches) != len(lines) or len(lines) <= MIN_TRIMMED_LINES:
        return [None]
    tried: list[str | None] = [None]
    sizes = list(range(len(lines) - TRIM_STEP, MIN_TRIMMED_LINES, -TRIM_STEP)) + [MIN_TRIMMED_LINES]
    for size in sizes:
        best = max(range(len(lines) - size + 1), key=lambda at: (sum(snippet.matches[at:at + size]), -at))
        run = list(lines[best:best + size])
        while run and not run[-1].strip():   # blank lines at its ends say nothing, and cost a comment mark each
            run.pop()
        while run and not run[0].strip():
            run.pop(0)
        text = "".join(run)
        if sum(snippet.matches[best:best + size]) and text not in tried:
            tried.append(text)
    return tried
