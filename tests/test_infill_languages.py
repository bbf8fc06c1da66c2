"""infill.languages and infill.queries on the real grammar wheels."""
from __future__ import annotations

import pathlib
import random
import threading
import time

import pytest
import tree_sitter

import infill.languages
from infill.languages import (
    GRAMMARS, INCREMENTAL_FROM_BYTES, YIELDING_PARSE_FROM_BYTES, ParseAbandoned, captures_near, common_prefix_length,
    describe_language, grammar_for, language, parse, parse_document, parse_limits, parser, query,
)
from infill.queries import SCOPE_CAPTURES, load_query
from infill.spans import errors_around, find_span

SAMPLE_SOURCES = pathlib.Path(__file__).parent / "data" / "languages"


@pytest.mark.parametrize("language_id,path,expected", [
    ("python", None, "python"),
    ("javascriptreact", None, "javascript"),
    ("typescript", "x.ts", "typescript"),
    ("typescriptreact", None, "tsx"),
    ("Go", None, "go"),                      # ids are matched case-insensitively
    (None, "src/main.rs", "rust"),
    (None, "lib/x.HPP", "cpp"),
    (None, "a/b.lua", "lua"),
    (None, "Main.java", "java"),
    ("cobol", "x.cob", None),
    ("plaintext", "x.py", None),             # the editor's languageId wins over the extension
    ("cuda", "kernels/k.cu", "cpp"),         # an id we do not know: the extension decides
    ("cuda", None, None),
    ("objective-c", "View.h", None),         # shares `.h` with C, but is not C
    (None, "README", None),
    (None, None, None),
])
def test_grammar_choice(language_id, path, expected):
    assert grammar_for(language_id, path) == expected


@pytest.mark.parametrize("grammar", sorted(GRAMMARS))
def test_every_grammar_ships_a_query_that_compiles(grammar):
    source = load_query(grammar)
    compiled = query(grammar)   # raises on a node type the grammar does not have
    names = {compiled.capture_name(i) for i in range(compiled.capture_count)}
    assert set(SCOPE_CAPTURES) & names and {"string", "comment"} <= names
    assert "@function" in source


def test_a_missing_query_is_an_error_not_an_empty_string():
    with pytest.raises(FileNotFoundError):
        load_query("cobol")


def test_languages_and_queries_are_cached():
    assert language("go") is language("go")
    assert query("go") is query("go")
    assert parser("go") is parser("go")


def test_each_thread_gets_its_own_parser():
    other = []
    thread = threading.Thread(target=lambda: other.append(parser("python")))
    thread.start()
    thread.join()
    assert other[0] is not parser("python")


def test_parse_gives_a_real_tree():
    tree = parse("rust", b"fn main() { let x = 1; }")
    assert isinstance(tree, tree_sitter.Tree)
    assert tree.root_node.children[0].type == "function_item"


def test_describe_language_names_what_was_asked():
    assert describe_language("cobol", None) == "language 'cobol'"
    assert describe_language(None, "notes.xyz") == "'.xyz' files"
    assert "no language id" in describe_language(None, None)


def test_large_documents_reparse_incrementally_to_the_same_tree():
    body = "".join(f"def f_{i}(a):\n    return a + {i}\n\n" for i in range(3000)).encode()
    assert len(body) > INCREMENTAL_FROM_BYTES
    first = parse_document("python", body)
    assert parse_document("python", body) is first          # unchanged text: the same tree
    middle = len(body) // 2
    edited = body[:middle] + b"(((" + body[middle:]          # a keystroke that breaks the parse
    incremental = parse_document("python", edited)
    assert incremental.root_node.has_error
    assert str(incremental.root_node) == str(parse("python", edited).root_node)
    assert str(first.root_node) == str(parse("python", body).root_node)   # the cached tree was not edited in place


def test_a_large_parse_lets_other_threads_run():
    """The server's event loop is another thread of the same process: while the worker parses a large document
    (tree-sitter holds the GIL), the loop must still get turns, and the tree must be the one a plain parse gives."""
    source = ("def f(x):\n    return [x + 1 for x in range(10)]  # é😀\n\n" * 20000).encode()
    assert len(source) > 4 * YIELDING_PARSE_FROM_BYTES
    turns, stop = [0], threading.Event()

    def other_thread() -> None:
        while not stop.is_set():
            turns[0] += 1
            time.sleep(0)

    runner = threading.Thread(target=other_thread)
    runner.start()
    try:
        time.sleep(0.05)
        before = turns[0]
        tree = parse("python", source)
        during = turns[0] - before
    finally:
        stop.set()
        runner.join()
    assert during >= 20, f"the other thread ran {during} times during the parse"
    assert str(tree.root_node) == str(parser("python").parse(source).root_node)


def test_common_prefix_length():
    assert common_prefix_length(b"abcdef", b"abcxef") == 3
    assert common_prefix_length(b"abc", b"abc") == 3
    assert common_prefix_length(b"", b"abc") == 0


def test_parse_limits_stop_a_runaway_parse_and_leave_the_parser_usable():
    """tree-sitter keeps a stopped parse to resume it: the next parse, of other text, must not be its tail."""
    runaway = ("local x = a" + " /* c */" * 8000 + "\n").encode()   # error recovery: seconds unlimited
    with parse_limits(budget_s=0.1), pytest.raises(ParseAbandoned) as stopped:
        parse("lua", runaway)
    assert not stopped.value.cancelled and "over 0.1 s" in str(stopped.value)
    other = b"local t = { 1, 2 }\nreturn t\n"
    with parse_limits(budget_s=0.1):
        assert str(parse("lua", other).root_node) == str(tree_sitter.Parser(language("lua")).parse(other).root_node)


def test_parse_limits_stop_at_cancel_and_end_with_their_block():
    source = b"local t = 1\n" * 100
    with parse_limits(cancel=lambda: True), pytest.raises(ParseAbandoned) as stopped:
        parse("lua", source)
    assert stopped.value.cancelled
    with parse_limits(cancel=lambda: False):
        with parse_limits(cancel=lambda: True), pytest.raises(ParseAbandoned):
            parse("lua", source)
        assert not parse("lua", source).root_node.has_error   # the outer block's limits are back
    assert not parse("lua", source).root_node.has_error


def sample_and_broken_sources():
    """Each sample file, whole and with brackets no grammar can place pasted into its middle."""
    grammars = {".java": "java", ".tsx": "tsx", ".js": "javascript", ".go": "go", ".cpp": "cpp", ".c": "c",
                ".rs": "rust"}
    for path in sorted(SAMPLE_SOURCES.iterdir()):
        data = path.read_bytes()
        yield grammars[path.suffix], data
        yield grammars[path.suffix], data[:len(data) // 2] + b"[[[ {{ ((" + data[len(data) // 2:]
    lua = b"local t = { 1, 2 }\nfor i = 1, #t do\n  if t[i] then print(i) end\nend\nreturn t\n"
    yield "lua", lua
    yield "lua", lua.replace(b"then", b"then {{ ((")
    python = pathlib.Path(infill.languages.__file__).read_bytes()
    yield "python", python
    yield "python", python.replace(b"):\n", b"):((\n", 3)


def kinds_of_query(grammar):
    return ["", "faults"] if (pathlib.Path(infill.languages.__file__).parent / "queries"
                              / f"{grammar}-faults.scm").exists() else [""]


def test_captures_near_finds_what_a_query_of_the_whole_tree_finds(monkeypatch):
    """Querying a node's children one at a time (here every node with children is queried so) finds the same
    nodes as one query from the root with the same byte range, in document order."""
    picks = random.Random(7)
    for grammar, data in sample_and_broken_sources():
        root = parse(grammar, data).root_node
        for kind in kinds_of_query(grammar):
            for _ in range(60):
                node = root.descendant_for_byte_range(*[picks.randrange(len(data))] * 2) or root
                low = picks.choice([node.start_byte, node.end_byte, picks.randrange(len(data))])
                high = low + picks.choice([1, 5, 50, 500])
                whole = tree_sitter.QueryCursor(query(grammar, kind))
                whole.set_byte_range(low, high)
                expected = {name: sorted((found.start_byte, -found.end_byte, found.type) for found in nodes)
                            for name, nodes in whole.captures(root).items()}
                monkeypatch.setattr(infill.languages, "queried_child_by_child", lambda node: node.child_count > 0)
                near = captures_near(query(grammar, kind), root, low, high)
                monkeypatch.undo()
                assert {name: [(found.start_byte, -found.end_byte, found.type) for found in nodes]
                        for name, nodes in near.items()} == expected, (grammar, kind, low, high)


class QueryCursorSpy:
    """A real tree_sitter.QueryCursor that records the width of each node it is run on and its depth limit."""
    runs: list[tuple[int, int | None]] = []
    real = tree_sitter.QueryCursor

    def __init__(self, query_):
        self.cursor, self.max_start_depth = self.real(query_), None

    def set_byte_range(self, low, high):
        self.cursor.set_byte_range(low, high)

    def set_max_start_depth(self, depth):
        self.max_start_depth = depth
        self.cursor.set_max_start_depth(depth)

    def captures(self, node):
        QueryCursorSpy.runs.append((node.child_count, self.max_start_depth))
        return self.cursor.captures(node)


@pytest.mark.parametrize("grammar,head,fill", [
    ("typescript", "const a = 1;\n\nlet x = ", "let b = 2;"),
    ("go", "package m\n\nvar a = 1\n\nvar x = ", "var b = 2"),
])
def test_a_line_read_as_one_wide_error_is_not_walked_by_each_query(monkeypatch, grammar, head, fill):
    """60,000 `[` in a row are one ERROR node of 60,000 children at the root; a query cursor steps through them in
    time that grows with their number at each step (1.4 s a query). Near the cursor only the matches at the ERROR
    itself are looked for from it (a depth limit), the rest in the few children the range meets."""
    text = head + "[" * 60_000 + "\n"
    cursor = text.rindex("\n\n") + 1
    QueryCursorSpy.runs = []
    monkeypatch.setattr(tree_sitter, "QueryCursor", QueryCursorSpy)
    span = find_span(grammar, text, cursor, cursor)
    errors_around(grammar, text[:cursor] + fill + text[cursor:], cursor, cursor + len(fill))
    assert span.statement is None and not span.unreadable
    assert QueryCursorSpy.runs and all(width <= 1000 or depth == 0 for width, depth in QueryCursorSpy.runs)
