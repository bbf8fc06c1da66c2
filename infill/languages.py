"""Which tree-sitter grammar parses a document (from the LSP languageId, else the file extension), and the
lazily built, cached Language / Query / Parser objects for it."""
from __future__ import annotations

import importlib
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import PurePath
from typing import Callable

import tree_sitter

from .queries import load_query

# grammar name -> (module of the official wheel, function in it returning the language pointer)
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "java": ("tree_sitter_java", "language"),
    "lua": ("tree_sitter_lua", "language"),
}

# LSP languageIds (https://code.visualstudio.com/docs/languages/identifiers) -> grammar name
LANGUAGE_IDS = {
    "python": "python",
    "javascript": "javascript", "javascriptreact": "javascript",
    "typescript": "typescript", "typescriptreact": "tsx",
    "go": "go", "rust": "rust", "c": "c", "cpp": "cpp", "cuda-cpp": "cpp", "java": "java", "lua": "lua",
}

EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cu": "cpp", ".java": "java", ".lua": "lua",
}

# Ids whose files share an extension with a grammar here but are another language (or none): no guessing for them.
PLAIN_TEXT_IDS = {"plaintext", "text", "txt"}
NOT_GUESSED_IDS = PLAIN_TEXT_IDS | {"objective-c", "objective-cpp", "objc", "objcpp"}


def grammar_for(language_id: str | None, path: str | None) -> str | None:
    """Grammar name, or None when no grammar ships for this document (the plain-text fallback).

    The languageId is what the editor decided, so it wins; the extension is only a guess for when it is missing or
    names a language we have no id for (Neovim's filetype `cuda` for a `.cu` file). A document the editor calls
    plain text stays plain text, and an Objective-C `.h` file is not parsed as C.
    """
    if language_id:
        language_id = language_id.strip().lower()
        if language_id in LANGUAGE_IDS or language_id in NOT_GUESSED_IDS:
            return LANGUAGE_IDS.get(language_id)
    if path:
        return EXTENSIONS.get(PurePath(path).suffix.lower())
    return None


def describe_language(language_id: str | None, path: str | None) -> str:
    """How to name the document's language in a message when no grammar fits."""
    if language_id:
        return f"language '{language_id}'"
    suffix = PurePath(path).suffix if path else ""
    return f"'{suffix}' files" if suffix else "this document (no language id or file extension)"


@lru_cache(maxsize=None)
def language(grammar: str) -> tree_sitter.Language:
    module_name, function = GRAMMARS[grammar]
    return tree_sitter.Language(getattr(importlib.import_module(module_name), function)())


@lru_cache(maxsize=None)
def query(grammar: str, kind: str = "") -> tree_sitter.Query:
    """The grammar's query (`<grammar>.scm`), or another of its queries (`<grammar>-<kind>.scm`; "faults": the
    nodes infill/silent_faults.py checks on every candidate, apart so that the check matches only them). Built
    once: a Query is read-only, and each use runs it in a QueryCursor of its own."""
    return tree_sitter.Query(language(grammar), load_query(f"{grammar}-{kind}" if kind else grammar))


# A query cursor steps through the children of an ERROR node at the root in time that grows with their number at
# each step, so a root ERROR of 60,000 tokens (a line of `[`) took 1.4 s a query even with a byte range far from it
# (bench/wide_errors.py). Such a node's children are queried one by one, only those near the range.
WIDE_NODE_CHILDREN = 1000


def queried_child_by_child(node: tree_sitter.Node) -> bool:
    return node.is_error and node.child_count > WIDE_NODE_CHILDREN


def captures_near(query_: tree_sitter.Query, node: tree_sitter.Node, low: int, high: int
                  ) -> dict[str, list[tree_sitter.Node]]:
    """What `QueryCursor.captures` with the byte range [low, high) finds under `node`, each name's nodes in
    document order (an outer node before the inner ones it starts with), in time that does not grow with a wide
    ERROR node's far children."""
    found = captures_unordered(query_, node, low, high)
    for nodes in found.values():
        nodes.sort(key=lambda found_node: (found_node.start_byte, -found_node.end_byte))
    return found


def captures_unordered(query_: tree_sitter.Query, node: tree_sitter.Node, low: int, high: int
                       ) -> dict[str, list[tree_sitter.Node]]:
    cursor = tree_sitter.QueryCursor(query_)
    cursor.set_byte_range(low, high)
    if not queried_child_by_child(node):
        return cursor.captures(node)
    cursor.set_max_start_depth(0)   # matches that start at the node itself; its children's are found below
    found = cursor.captures(node)
    walker = node.walk()
    # Children before the range are skipped; the cursor's own search finds none for a byte between two of them.
    if walker.goto_first_child_for_byte(low) is None:
        if not walker.goto_first_child():
            return found
        while walker.node.end_byte < low:
            if not walker.goto_next_sibling():
                return found
    while walker.node.start_byte <= high:
        for name, nodes in captures_unordered(query_, walker.node, low, high).items():
            found.setdefault(name, []).extend(nodes)
        if not walker.goto_next_sibling():
            break
    return found


# A Parser holds mutable state, so each thread keeps its own (the server runs infill on one worker thread, but
# tests and the CLI may call from others).
_parsers = threading.local()


def parser(grammar: str) -> tree_sitter.Parser:
    cache = _parsers.__dict__.setdefault("by_grammar", {})
    if grammar not in cache:
        cache[grammar] = tree_sitter.Parser(language(grammar))
    return cache[grammar]


# tree-sitter parses with the GIL held, and the server's event loop is another thread of the same process: a first
# parse of 2 MB of Python (0.2-0.5 s on a 2-core CPU) kept it from answering anything for that long. From this size
# on, the parser reads the source in chunks through a callback that lets other threads run between two chunks
# (bench/event_loop_stall.py). A tree parsed so reads its text through the callback again (node.text, query
# predicates): each read sleeps too, so a query with predicates over many nodes of such a tree would be slow (the
# shipped queries have none).
YIELDING_PARSE_FROM_BYTES = 128 * 1024
YIELD_EVERY_BYTES = 16 * 1024

# What one request's parses may cost together. Real documents take well under a second in all (a 2 MB file:
# 0.3-0.5 s here), but tree-sitter's error recovery on one long broken line is worse than quadratic: 32 KB of
# `a /* c */ /* c */ ...` in Lua took 4 s a request, 160 KB over a minute, with the worker (and every later request)
# stuck behind it.
PARSE_BUDGET_S = 3.0


class ParseAbandoned(Exception):
    """A parse stopped unfinished, under parse_limits: the request was cancelled, or its parses ran past the
    budget."""

    def __init__(self, cancelled: bool, budget_s: float) -> None:
        super().__init__("cancelled" if cancelled else f"parsing took over {budget_s:g} s")
        self.cancelled, self.budget_s = cancelled, budget_s


class ParseLimits:
    def __init__(self, cancel: Callable[[], bool] | None, budget_s: float) -> None:
        self.cancel, self.budget_s, self.spent_s = cancel, budget_s, 0.0


@contextmanager
def parse_limits(cancel: Callable[[], bool] | None = None, budget_s: float | None = None):
    """Within: every parse on this thread stops as soon as cancel() turns true or the parses begun within have
    taken budget_s (PARSE_BUDGET_S) together, raising ParseAbandoned (tree-sitter asks between two steps of its
    parse)."""
    previous = getattr(_parsers, "limits", None)
    _parsers.limits = ParseLimits(cancel, PARSE_BUDGET_S if budget_s is None else budget_s)
    try:
        yield
    finally:
        _parsers.limits = previous


def parse_with(parser_: tree_sitter.Parser, source: bytes, old_tree: tree_sitter.Tree | None = None
               ) -> tree_sitter.Tree:
    limits: ParseLimits | None = getattr(_parsers, "limits", None)
    yielding = len(source) >= YIELDING_PARSE_FROM_BYTES
    if limits is None and not yielding:
        return parser_.parse(source) if old_tree is None else parser_.parse(source, old_tree)
    view = memoryview(source)

    def read(byte: int, _point) -> bytes:
        if yielding:
            time.sleep(0)   # releases the GIL: a waiting thread runs before the next chunk is parsed
        return bytes(view[byte:byte + YIELD_EVERY_BYTES])

    if limits is None:
        return parser_.parse(read) if old_tree is None else parser_.parse(read, old_tree)
    started = time.perf_counter()

    def stop(_byte: int, _has_error: bool) -> bool:
        cancelled = limits.cancel is not None and limits.cancel()
        return cancelled or limits.spent_s + time.perf_counter() - started > limits.budget_s

    try:
        if old_tree is None:
            return parser_.parse(read, progress_callback=stop)
        return parser_.parse(read, old_tree, progress_callback=stop)
    except ValueError:   # tree-sitter's "Parsing failed": stop() said stop
        parser_.reset()   # else the next parse would resume this one, whatever its source
        raise ParseAbandoned(limits.cancel is not None and limits.cancel(), limits.budget_s) from None
    finally:
        limits.spent_s += time.perf_counter() - started


def parse(grammar: str, source: bytes) -> tree_sitter.Tree:
    return parse_with(parser(grammar), source)


INCREMENTAL_FROM_BYTES = 64 * 1024   # below this a fresh parse is as fast as working out the edit


def common_prefix_length(a: bytes, b: bytes) -> int:
    """Binary search with slice comparisons: C-speed memcmp instead of a Python loop over 2 MB."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def point_at(data: bytes, byte: int) -> tuple[int, int]:
    return data.count(b"\n", 0, byte), byte - (data.rfind(b"\n", 0, byte) + 1)


def parse_document(grammar: str, source: bytes) -> tree_sitter.Tree:
    """Parse a whole document, reusing this thread's previous tree for the same grammar when the document is large:
    consecutive requests usually differ by a few keystrokes, and tree-sitter then reparses only the changed part."""
    if len(source) < INCREMENTAL_FROM_BYTES:
        return parse(grammar, source)
    cache = _parsers.__dict__.setdefault("last_tree", {})
    previous = cache.get(grammar)
    if previous is not None and previous[0] == source:
        return previous[1]
    if previous is None:
        tree = parse(grammar, source)
    else:
        old_source, old_tree = previous
        start = common_prefix_length(old_source, source)
        tail = common_prefix_length(old_source[start:][::-1], source[start:][::-1])
        old_end, new_end = len(old_source) - tail, len(source) - tail
        edited = old_tree.copy()
        edited.edit(start, old_end, new_end, point_at(old_source, start), point_at(old_source, old_end),
                    point_at(source, new_end))
        tree = parse_with(parser(grammar), source, edited)
    cache[grammar] = (source, tree)
    return tree
