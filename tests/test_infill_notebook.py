"""A notebook's earlier cells as the context of the cell being written (infill.notebook, InfillRequest.head).

The engine is the scripted stand-in of test_infill_pipeline (it records the prompt it is given)."""
from __future__ import annotations

import pytest

from infill import InfillRequest, run_infill
from infill.notebook import Cell, notebook_head
from infill.pipeline import MAX_DOCUMENT_BYTES

from test_infill_pipeline import ScriptedEngine, at


@pytest.mark.parametrize("cells, grammar, expected", [
    # code cells in order, each followed by a blank line
    ([Cell("import os", True), Cell("x = 1\n", True)], "python", "import os\n\nx = 1\n\n"),
    # IPython's lines commented out where a statement starts; a cell magic whose body is Python too
    ([Cell("%matplotlib inline\n  !ls\nx = 1", True)], "python", "#%matplotlib inline\n  #!ls\nx = 1\n\n"),
    ([Cell("%%time\ntotal = sum(x)", True)], "python", "#%%time\ntotal = sum(x)\n\n"),
    ([Cell("import pandas as pd\nfiles = !ls *.csv\ndf = pd.read_csv(files[0])\ndf.head?\n??len", True)], "python",
     "import pandas as pd\n#files = !ls *.csv\ndf = pd.read_csv(files[0])\n#df.head?\n#??len\n\n"),
    # ... and nowhere else: a line inside brackets, a string or after a backslash is Python's
    ([Cell('msg = ("%s rows"\n       % len(rows))\nok = (a\n!= b)', True)], "python",
     'msg = ("%s rows"\n       % len(rows))\nok = (a\n!= b)\n\n'),
    ([Cell('doc = """\n%s\n"""\nx = 1 + \\\n  2', True)], "python", 'doc = """\n%s\n"""\nx = 1 + \\\n  2\n\n'),
    # a cell in another language by its cell magic is left out
    ([Cell("import os", True), Cell("%%bash\nls -l", True)], "python", "import os\n\n"),
    # markdown as comments of the cell's language; blank cells and cells with NUL bytes left out
    ([Cell("# Totals\nSum the *sizes*.", False), Cell("  \n", True), Cell("a\x00b", True)], "python",
     "# # Totals\n# Sum the *sizes*.\n\n"),
    ([Cell("Sum the sizes", False)], "javascript", "// Sum the sizes\n\n"),
    ([Cell("Sum the sizes", False)], "lua", "-- Sum the sizes\n\n"),
    # \r\n and lone \r cells come as \n lines; magics are only Python's
    ([Cell("a = 1\r\nb = 2\rc = 3", True)], "python", "a = 1\nb = 2\nc = 3\n\n"),
    ([Cell("%x\n", True)], None, "%x\n\n"),   # no grammar: no magic is known, no parse is checked
    # a cell that does not parse on its own (the kernel reads each cell apart) is left out
    ([Cell("import os", True), Cell("total = sum(", True)], "python", "import os\n\n"),
    ([Cell("let x = [1,", True), Cell("let y = 2;", True)], "javascript", "let y = 2;\n\n"),
])
def test_notebook_head(cells, grammar, expected):
    assert notebook_head(cells, grammar, limit=10_000) == expected


def test_the_head_keeps_the_nearest_cells_within_its_limit():
    cells = [Cell("first = 1", True), Cell("second = 2", True), Cell("third = 3", True)]
    assert notebook_head(cells, "python", limit=len("second = 2\n\nthird = 3\n\n")) == "second = 2\n\nthird = 3\n\n"
    # The cell right above longer than the limit: its last whole lines.
    long_cell = Cell("".join(f"line_{i} = {i}\n" for i in range(100)), True)
    head = notebook_head([cells[0], long_cell], "python", limit=40)
    assert head and len(head) <= 40 and head.endswith("line_99 = 99\n\n") and head.startswith("line_")
    # ... from the start of a statement, never inside one: a cut inside a string would swallow the cell below.
    query = Cell('QUERY = """\n' + "".join(f"    SELECT col_{i} FROM t{i}\n" for i in range(200)) +
                 '"""\nrows = run(QUERY)\n', True)
    assert notebook_head([query], "python", limit=4000) == "rows = run(QUERY)\n\n"
    assert notebook_head([query], None, limit=40) == '"""\nrows = run(QUERY)\n\n'   # no grammar: whole lines


NOTEBOOK_HEAD = notebook_head([Cell("Count the words of a text.", False),
                               Cell("def count_words(text):\n    return len(text.split())", True)], "python", 10_000)


def test_a_head_over_more_cells_than_before_is_built_again_from_the_cache():
    """The head is built several times a keystroke: with more cells in reach than the cache held (256), each walk
    evicted the cells the next one needed, and every cell above was parsed again (about 29 ms a head for 400 cells
    here, on the event loop)."""
    from infill.notebook import cell_code

    cells = [Cell(f"value_{n} = compute({n})\nprint(value_{n})\n", True) for n in range(2000)]
    assert notebook_head(cells, "python", 1_000_000).count("print(") == len(cells)
    misses = cell_code.cache_info().misses
    assert notebook_head(cells, "python", 1_000_000).count("print(") == len(cells)
    assert cell_code.cache_info().misses == misses


def test_a_cell_reads_the_cells_above_it_and_is_answered_in_its_own_offsets():
    text, offset = at("total = <|>\nprint(total)\n")
    engine = ScriptedEngine("count_words(text)")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      head=NOTEBOOK_HEAD), engine)
    prompt = engine.calls[0]["prefix"]
    assert prompt.endswith("# Count the words of a text.\n\ndef count_words(text):\n    return len(text.split())\n\n"
                           "total = ")
    assert (result.text, result.start, result.end) == ("count_words(text)", offset, offset)
    assert result.edits == [(offset, offset, "count_words(text)")]
    assert result.details["context"]["head_chars"] == len(NOTEBOOK_HEAD)


def test_a_selection_command_in_a_cell_edits_only_the_cell():
    text = "def total(items):\n    return 0\n"
    start = text.index("return 0")
    engine = ScriptedEngine("return sum(count_words(item) for item in items)")
    result = run_infill(InfillRequest(text=text, mode="fill", start=start, end=start + len("return 0"),
                                      language_id="python", head=NOTEBOOK_HEAD), engine)
    assert "def count_words" in engine.calls[0]["prefix"]
    assert result.start == start and result.end == start + len("return 0")
    assert all(start <= a <= b <= len(text) for a, b, _ in result.edits), result.edits
    patched = text
    for a, b, new in sorted(result.edits, reverse=True):
        patched = patched[:a] + new + patched[b:]
    assert patched == "def total(items):\n    return sum(count_words(item) for item in items)\n"


def test_the_parse_check_reads_the_cell_not_the_cells_above():
    """A fill that breaks the cell's code is refused with a head too; an error in a cell above (a magic the
    grammar cannot read is commented, but a real one stays) is not the fill's."""
    head = notebook_head([Cell("def broken(:\n    pass", True)], "python", 10_000)
    text, offset = at("x = <|>\n")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True, head=head), ScriptedEngine("(1 +", "41 + 1"))
    assert result.text == "41 + 1"


@pytest.mark.parametrize("cell_above, source, middle", [
    ("def area(w, h):\n    total = w * h\n    return total", "<|>\nprint(area(2, 3))\n", "    print(w)"),
    ("def area(w, h):\n    total = w * h\n    return total", "<|>", "    print(total)"),
    ("x = 3\nif x > 2:\n    label = 'big'", "<|>", "else:\n    label = 'small'"),
])
def test_a_fill_that_only_carries_on_a_block_of_the_cell_above_is_refused(cell_above, source, middle):
    """The kernel runs each cell alone: a body line or an `else:` that would only parse after the cell above
    fails there (IndentationError, SyntaxError), so the fill is judged on the cell's own text."""
    head = notebook_head([Cell(cell_above, True)], "python", 10_000)
    text, offset = at(source)
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True, head=head), ScriptedEngine(middle))
    assert result.text == ""
    # The same cell takes a fill that runs on its own, with the same head.
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True, head=head), ScriptedEngine("print(area)"))
    assert result.text == "print(area)"


def test_top_level_await_in_a_cell_passes_the_check():
    """A notebook runs `await` at a cell's top level; Python's compile() refused it unless told to allow it."""
    head = notebook_head([Cell("import asyncio", True)], "python", 10_000)
    text, offset = at("result = <|>\n")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True, head=head), ScriptedEngine("await fetch()"))
    assert result.text == "await fetch()"
    # in a function that is not async it is still an error
    text, offset = at("def f():\n    result = <|>\n")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True), ScriptedEngine("await fetch()"))
    assert result.text == ""


def test_a_cell_refused_alone_is_refused_in_its_offsets_and_a_head_too_large_is_left_out():
    bad = run_infill(InfillRequest(text="x = 1\n", mode="inline", start=99, end=99, language_id="python",
                                   head=NOTEBOOK_HEAD), ScriptedEngine("2"))
    assert bad.text == "" and "out of range" in bad.message and (bad.start, bad.end) == (99, 99)
    text, offset = at("total = <|>\n")
    engine = ScriptedEngine("1")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      head="x = 1\n" * (MAX_DOCUMENT_BYTES // 6 + 1)), engine)
    assert (result.text, result.start) == ("1", offset)
    assert engine.calls[0]["prefix"] == "total = "


def test_an_unclosed_string_in_a_cell_above_does_not_swallow_the_cell():
    head = notebook_head([Cell('import os\n', True), Cell('notes = """unfinished', True)], "python", 10_000)
    text, offset = at("total = <|>\n")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      head=head), ScriptedEngine("len(os.sep)"))
    assert result.text == "len(os.sep)" and result.details["decision"] == "single"


def test_a_cell_with_lone_cr_lines_is_answered_in_them_after_a_head():
    text, offset = at("def f():\r<|>\rprint(1)\r")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True, head=NOTEBOOK_HEAD),
                        ScriptedEngine("    a = 1\n    return a"))
    assert result.text == "    a = 1\r    return a" and result.start == offset


# More 2-space lines than the cells below have lines of their own.
TWO_SPACE_HEAD = notebook_head([Cell("def helper(xs):\n  for x in xs:\n    if x:\n      print(x)\n    else:\n"
                                     "      print(-x)\n  return xs\n", True)], "python", 10_000)


@pytest.mark.parametrize("source, middle, expected", [
    # a CRLF cell under \n cells keeps its CRLF
    ("def f():\r\n<|>\r\nprint(1)\r\n", "    a = 1\n    return a", "    a = 1\r\n    return a"),
    # a 4-space cell under 2-space cells keeps its 4 spaces; a tab-indented one its tabs
    ("def g(xs):\n    for x in xs:\n        print(x)\n    <|>\n", "if xs:\n        return helper(xs)",
     "if xs:\n        return helper(xs)"),
    ("def g(xs):\n\tfor x in xs:\n\t\tprint(x)\n\t<|>\n", "if xs:\n        return helper(xs)",
     "if xs:\n\t\treturn helper(xs)"),
])
def test_a_cell_is_answered_in_its_own_layout_not_the_cells_above(source, middle, expected):
    text, offset = at(source)
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                                      invoked=True, head=TWO_SPACE_HEAD), ScriptedEngine(middle))
    assert result.text == expected and result.details["context"]["head_chars"] > 0
