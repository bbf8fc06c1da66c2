"""Python's block structure, checked with Python's own tokenizer where tree-sitter's recovery sees no error."""
from __future__ import annotations

import pytest

from infill.python_blocks import block_faults, fill_block_faults, python_faults, statement_window
from infill.spans import error_count

from test_infill_pipeline import applied, at, inline

GCD = "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n"


@pytest.mark.parametrize("source,faults", [
    (GCD, 0),
    ("def gcd(a, b):\n    while b:\n        # loop\n    return a\n", 1),           # expected an indented block
    ("def gcd(a, b):\n    # while b:\n        a, b = b, a % b\n    return a\n", 1),  # unexpected indent
    ("def f(b):\n    if b:\n        b -= 1\n      return b\n", 1),                # dedent to no open level
    ("def f(b):\n", 1),                                                         # the file ends after the opener
    ("if x: y = 1\nclass A: pass\nf = lambda v: v\nd = {\n  'k':\n    1}\ns = x[1:\n]\n", 0),   # ':' not at a line end
    ("total = compute(\n", None),                                               # still being typed: unknown
])
def test_block_faults(source, faults):
    assert block_faults(source) == faults


def test_tree_sitter_alone_misses_these():
    assert error_count("python", "def gcd(a, b):\n    # while b:\n        a, b = b, a % b\n    return a\n") == 0


def test_the_window_runs_from_the_enclosing_top_level_statement_to_the_next():
    text = "import os\n\ndef f():\n    return 1\n\nx = f()\n"
    start = text.index("return")
    a, b = statement_window(text, start, start)
    assert text[a:b] == "def f():\n    return 1\n\n"


@pytest.mark.parametrize("text,added", [
    ("# keep going", True),              # the loop's header replaced by a comment: its body is now unexpected
    ("while b > 0:", False),
    ("while b:\n    pass", True),        # a body at the header's depth: the real body is now unexpected
])
def test_faults_a_fill_of_the_loop_header_adds(text, added):
    start = GCD.index("while b:")
    before, after = fill_block_faults(GCD, start, start + len("while b:"), text)
    assert before == 0 and (after > before) == added


def test_a_fill_that_breaks_pythons_blocks_is_refused():
    source = "def gcd(a, b):\n    <|>while b:\n        a, b = b, a % b\n    return a\n"
    text, offset = at(source)
    selection = {"start": offset, "end": offset + len("while b:")}
    result = fill(text, selection, "# loop until b is zero")
    assert result.text == "" and "broken the code's syntax" in result.message
    assert fill(text, selection, "# loop until b is zero", "while b != 0:").text == "while b != 0:"


def test_the_fill_that_leaves_fewer_errors_wins_over_a_more_confident_one():
    """Typing on the blank header line of an orphaned block: the comment adds nothing new, the header fixes it."""
    source = "def gcd(a, b):\n    <|>\n        a, b = b, a % b\n    return a\n"
    result, _ = inline(source, "# loop until b is zero", "while b:", invoked=True)
    assert applied(source, result) == GCD and "fewest parse errors (0)" in result.details["reason"]


def fill(text: str, selection: dict, *middles: str):
    from infill import InfillRequest, run_infill
    from test_infill_pipeline import ScriptedEngine
    return run_infill(InfillRequest(text=text, mode="fill", language_id="python", **selection),
                      ScriptedEngine(*middles))


@pytest.mark.parametrize("line", ["_c = self.", "x = 2s"])
def test_other_syntax_errors_python_rejects_are_refused_too(line):
    source = "def f(self):\n    <|>y = 1\n    return y\n"
    text, offset = at(source)
    assert python_faults(text[:offset] + line + text[offset + len("y = 1"):]) == 1
    result = fill(text, {"start": offset, "end": offset + len("y = 1")}, line, "y = 2")
    assert result.text == "y = 2" and result.details["candidates"][0]["added_errors"] > 0
