"""Python's block structure, checked with Python's own tokenizer where tree-sitter's recovery sees no error."""
from __future__ import annotations

import subprocess
import sys

import pytest

from infill.python_blocks import (OLDER_COMPILER, block_faults, enclosing_definition, fill_python_faults,
                                  syntax_error_line, top_level_window)
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


def test_the_window_is_the_innermost_definition_or_the_top_level_statement():
    text = "import os\n\nclass A:\n    def f(self):\n        return 1\n\n    def g(self):\n        pass\n\nx = A()\n"
    start = text.index("return")
    a, b, indent = enclosing_definition(text, start, start)
    assert text[a:b] == "    def f(self):\n        return 1\n\n" and indent == "    "
    a, b, indent = top_level_window(text, start, start)
    assert text[a:b].startswith("class A:") and text[b:] == "x = A()\n" and indent == ""


TEMPLATE = 'code = """\ndef g():\n    pass\n"""\n'


@pytest.mark.parametrize("source", [
    "def test_parse(tmp_path):\n    " + TEMPLATE + "    for line in code.splitlines():\n        <|>\n    return code\n",
    TEMPLATE + "for line in code.splitlines():\n    <|>\nprint(1)\n",
])
def test_code_in_a_string_above_is_not_taken_for_the_enclosing_definition(source):
    """A template of code in a triple-quoted string (`def g():` at column 0): its `def` was taken for the one
    holding the cursor, a window that compiled neither before nor after the fill, and Python's check was off."""
    assert inline(source, "if line:")[0].text == ""          # an empty block: IndentationError
    assert inline(source, "print(line)")[0].text == "print(line)"


def test_a_top_level_try_keeps_its_else_and_except_in_one_window():
    text = "try:\n    import os\nexcept ImportError:\n    os = None\nelse:\n    pass\n\nx = 1\n"
    start = text.index("import os")
    a, b, _ = top_level_window(text, start, start)
    assert text[a:b].startswith("try:") and text[b:] == "x = 1\n"


@pytest.mark.parametrize("text,added", [
    ("# keep going", True),              # the loop's header replaced by a comment: its body is now unexpected
    ("while b > 0:", False),
    ("while b:\n    pass", True),        # a body at the header's depth: the real body is now unexpected
    ("while (b:", True),                 # an open bracket where everything tokenized before
])
def test_faults_a_fill_of_the_loop_header_adds(text, added):
    start = GCD.index("while b:")
    assert (fill_python_faults(GCD, start, start + len("while b:"), text)[0] > 0) == added


@pytest.mark.parametrize("text,added", [
    ("return 1\n", True),             # at column 0 under the header: its empty body is still empty, now in the fill
    ("        return 1\n", False),
])
def test_a_fill_that_leaves_a_headers_body_empty_adds_that_fault(text, added):
    """The count of faults stayed 1 either way, so code written at column 0 under `b:` passed the check."""
    document = "def f(a, b):\n    if a and \\\n            b:\n\n"
    start = document.index("\n\n") + 1
    assert (fill_python_faults(document, start, start, text)[0] > 0) == added


@pytest.mark.parametrize("document,text,added", [
    ("class A:\n    def f(self, x):\n        <|>\n", "if x:", True),   # the method's empty body moves into the fill
    ("def f(x):\n    <|>\n\ndef g():\n    pass\n", "while x:", True),   # code at column 0 follows the opener
    ("def f(x):\n    <|>\n", "if x:\n        return x", False),
])
def test_a_fill_that_ends_with_an_empty_block_adds_that_fault(document, text, added):
    """The method's "expected an indented block" became the fill's, one fault before and after, so `if x:` alone
    was offered at the end of a method; Python refuses it."""
    document, start = at(document)
    assert (fill_python_faults(document, start, start, text)[0] > 0) == added


def test_a_fault_the_cursors_line_had_already_is_not_the_fills():
    document = "def f():\n    x = 1\n      y = 2\n    return x\n"   # the user's unexpected indent
    end_of_line = document.index("y = 2") + len("y = 2")
    assert fill_python_faults(document, end_of_line, end_of_line, " + 1")[0] == 0


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


@pytest.mark.parametrize("line", ["total += 1    return total", "import os    import sys"])
def test_errors_only_pythons_compiler_sees_are_refused(line):
    source = "def f(self):\n    <|>y = 1\n    return y\n"
    text, offset = at(source)
    filled = text[:offset] + line + text[offset + len("y = 1"):]
    assert error_count("python", filled) == 0 and syntax_error_line(filled) == 2   # tree-sitter accepts it
    result = fill(text, {"start": offset, "end": offset + len("y = 1")}, line, "y = 2")
    assert result.text == "y = 2" and result.details["candidates"][0]["added_errors"] > 0


def test_an_error_in_the_fills_own_line_is_refused_even_when_the_code_did_not_compile_before():
    """Typing `x = ` (Python rejects the line as it is): a fill that leaves the line invalid adds an error there."""
    source = "def f(a):\n    x = <|>\n    return x\n"
    result, _ = inline(source, "a a", "a + 1")
    assert applied(source, result) == "def f(a):\n    x = a + 1\n    return x\n"
    assert result.details["candidates"][0]["added_errors"] > 0


@pytest.mark.parametrize("source, selected, middle", [
    ('a = "x"; v = \nb = 1\n', '"x"', '"y"'),
    ("a = foo(1); b = (\nc = 1\n", "foo(1)", "foo(2)"),
])
def test_the_users_error_later_on_the_fills_line_is_not_the_fills(source, selected, middle):
    """A rewrite or fill before an unfinished statement on its line was refused whatever the model wrote; a fill
    that is itself broken there still is."""
    start = source.index(selected)
    selection = {"start": start, "end": start + len(selected)}
    assert fill(source, selection, middle).text == middle
    assert fill(source, selection, middle + " z").text == ""
    assert fill(source, selection, middle + " +").text == ""   # the user's error stays, but one comes before it


@pytest.mark.parametrize("broken", ["1 +", "1 if", "b = ", "not", "x for x in y", "1 1", "1; b ="])
def test_a_fill_that_mends_the_error_at_the_cursor_is_not_blamed_for_the_users_later_on_the_line(broken):
    """`a = |; v = `: the line stops at the cursor (an empty right side) and again at the user's unfinished
    `v = `; a fill completing `a` was refused for the second, whatever it wrote. A broken fill still is."""
    for source in ("def f():\n    a = <|>; v = \n    return a\n", "def f():\n    a = <|> ; v = \n    return a\n"):
        result, _ = inline(source, "1", invoked=True)
        assert applied(source, result) == source.replace("<|>", "1"), result.message
        result, _ = inline(source, broken, invoked=True)
        assert result.text == "" and "broken" in result.message, applied(source, result)


@pytest.mark.parametrize("source", ["def f(x):\n    a = <|>; v = \n    return a\n", "a = <|> ; v = \n",
                                    'def f(x):\n    a = <|>; v = "x"\n    return a\n'])
@pytest.mark.parametrize("broken", ["*x", "await x"])
def test_a_fill_that_never_compiles_is_refused_before_the_users_unfinished_statement(source, broken):
    """The compiler reports the user's `v = ` (a parse error) before the errors of its later passes: `a = *x; v = `
    passed as if `*x` were the user's business. (In a plain function `await` is one of those errors too.)"""
    result, _ = inline(source, "x", invoked=True)
    assert applied(source, result) == source.replace("<|>", "x"), result.message
    if broken == "await x" and not source.startswith("def"):
        return   # top-level await: the project compiles as a notebook cell may run
    result, _ = inline(source, broken, invoked=True)
    assert result.text == "" and "broken" in result.message, applied(source, result)


@pytest.mark.parametrize("source, middle", [
    ("def f(xs):\n    data = await load()\n    a = <|>; v = \n    return a\n", "1"),   # not async yet
    ("def f(xs):\n    break\n    a = <|>; v = \n    return a\n", "1"),
    ("def f(xs):\n    x = 1\n    global x\n    a = <|>; v = \n    return a\n", "1"),
    ('def f(xs):\n    s = "SELECT <|>; DROP" + \n    return s\n', "a"),   # the cut at `;` leaves the string open
])
def test_the_users_own_compile_error_before_the_fill_is_not_the_fills(source, middle):
    """Checking the fill's statement alone up to the `;` refused good fills for the user's errors before it."""
    result, _ = inline(source, middle, invoked=True)
    assert applied(source, result) == source.replace("<|>", middle), result.message


@pytest.mark.parametrize("source, good, broken", [
    ("\ufeffx = <|>\n", "1", "1 1"),
    ("\ufeffdef f(a):\n    <|>\n", "return a", "return a a"),
])
def test_a_byte_order_mark_a_client_sends_is_not_taken_for_code(source, good, broken):
    """Python's compiler, given text, stops at a U+FEFF: every fill of the file's first statement was refused."""
    result, _ = inline(source, good, invoked=True)
    assert result.text == good, result.message
    result, _ = inline(source, broken, invoked=True)
    assert result.text == "" and "broken" in result.message


def test_a_try_body_at_top_level_is_checked_too():
    source = "try:\n    <|>import os\nexcept ImportError:\n    os = None\n"
    text, offset = at(source)
    result = fill(text, {"start": offset, "end": offset + len("import os")}, "import os    import sys", "import os")
    assert result.text == "import os" and result.details["candidates"][0]["added_errors"] > 0


def test_warnings_from_compile_stay_quiet():
    """compile() warns on stderr about code it accepts (`x is 1`); the server's stderr is the editor's log."""
    probe = "from infill.python_blocks import syntax_error_line\nassert syntax_error_line('x = 1\\nassert x is 1\\n') is None\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "SyntaxWarning" not in done.stderr
    plain = subprocess.run([sys.executable, "-c", "compile('x = 1\\nassert x is 1\\n', '<x>', 'exec')"],
                           capture_output=True, text=True, timeout=60)
    assert "SyntaxWarning" in plain.stderr   # without the filter it would warn: the test can fail


def test_nonlocal_in_a_nested_function_is_not_taken_for_an_error():
    """Only the innermost `def` is compiled, so the binding `nonlocal` names lies outside what Python sees."""
    source = "def outer():\n    n = 0\n    def inner():\n        <|>\n    return inner\n"
    result, _ = inline(source, "nonlocal n\n        n += 1")
    assert applied(source, result) == ("def outer():\n    n = 0\n    def inner():\n        nonlocal n\n"
                                       "        n += 1\n    return inner\n")
    # Python stops at the nonlocal error; the errors after it still count.
    assert syntax_error_line("def f():\n    nonlocal n\n    break\n") == 3


@pytest.mark.parametrize("source,fill", [
    # A helper defined above the cursor's block: before, it was taken for the block's definition, and the return
    # (or break, or await) landed at module level in the checked window.
    ("def outer(items):\n    def key(x):\n        return x.name\n    for item in items:\n        if key(item):\n"
     "            <|>\n    return None\n", "return item"),
    ("for item in items:\n    def key(x):\n        return x\n    if key(item):\n        <|>\n", "break"),
    ("async def main():\n    def cb(x):\n        return x\n    if cb(1):\n        <|>\n", "await asyncio.sleep(1)"),
    # A top-level decorator: before, the window ended at the `def` it decorates.
    ("import functools\n\n<|>\ndef g(x):\n    return x\n", "@functools.lru_cache(maxsize=None)"),
    ("<|>\n@staticmethod\ndef g(x):\n    return x\n", "@functools.cache"),
])
def test_valid_fills_are_not_refused(source, fill):
    """(A string's or brackets' lines at column 0 above still leave the function found: see the next test.)"""
    start = source.index("<|>")
    text = source.replace("<|>", "", 1)
    compile(text[:start] + fill + text[start:], "<filled>", "exec")   # the filled program is valid Python
    assert fill_python_faults(text, start, start, fill) == (0, 0)


@pytest.mark.parametrize("line", ["        return sum(n)\n", "        return sum(n)\n\n"])
def test_a_whole_line_fill_ending_a_nested_function_is_checked_in_that_function(line):
    """A selection of whole lines ends at the start of the next line. That line belongs to the outer function: the
    window had taken it in (a `return` outside any function, to Python) and blamed the fill, which it counted as
    reaching into that line (HumanEval/108 refused its own solution)."""
    text = ("def count(arr):\n    def digits(n):\n        n = [int(i) for i in str(n)]\n" + line
            + "    return len([x for x in arr if digits(x) > 0])\n")
    start = text.index("        return sum")
    end = start + len(line)
    assert fill_python_faults(text, start, end, line) == (0, 0)
    assert fill_python_faults(text, start, end, "        return sum(n\n")[0] == 1   # a broken one still is not


@pytest.mark.parametrize("source", [
    'def f(x):\n    s = """\ntext\n"""\n    if x:\n        <|>\n    return s\n',
    "def f(x):\n    y = [1,\n2]\n    if x:\n        <|>\n    return y\n",
])
def test_lines_at_column_0_inside_a_function_leave_it_checked(source):
    start = source.index("<|>")
    text = source.replace("<|>", "", 1)
    assert enclosing_definition(text, start, start)[0] == 0   # the whole `def f`
    assert fill_python_faults(text, start, start, "return 1") == (0, 0)
    assert fill_python_faults(text, start, start, "  return 1\n  pass") != (0, 0)


@pytest.mark.parametrize("document,typed,fill", [
    ("def first[T](items: list[T]) -> \n    return items[0]\n", "-> ", "T:"),              # PEP 695 parameters
    ("class Box[T]:\n    def get(self) -> \n        return self.item\n", "-> ", "T:"),
    ("type Pair = tuple[\n", "tuple[", "int, int]"),                                      # a `type` alias
    ("def show(row):\n    return f\"{row[\n", "f\"{row[", "\"name\"]}\""),                 # PEP 701 f-string
    # its field's string holds a backslash: 3.11 reads `\n` after the f-string `f"{"`, a line continuation error
    ("def show(lines):\n    return f\"{\n", "f\"{", "\"\\n\".join(lines)}\""),
    ("def show(cells):\n    return \n", "return ", "f\"{\"\\t\".join(cells)}\""),
])
def test_code_of_python_3_12_is_not_refused_by_an_older_compiler(document, typed, fill):
    """The server may run on Python 3.11 while the user writes 3.12 code: its compiler must not refuse the fill."""
    start = document.index(typed) + len(typed)
    end = document.index("\n", start)
    assert fill_python_faults(document, start, end, fill)[0] == 0
    assert error_count("python", document[:start] + fill + document[end:]) == 0   # tree-sitter knows 3.12


def test_a_real_error_is_still_refused_next_to_3_12_code():
    document = "type Pair = tuple[int, int]\n\ndef area(w, h):\n    return \n"
    start = document.index("return ") + len("return ")
    assert fill_python_faults(document, start, start, "w *")[0] > 0


@pytest.mark.parametrize("header", ["def area[T](self, w: T) -> T:", "def area(self, w):",
                                    "async def area[T: (int, float)](self, w: T) -> T:"])
def test_a_broken_fill_inside_a_generic_function_is_refused_as_in_a_plain_one(header):
    document = f"class Shape:\n    {header}\n        return \n"
    start = document.index("return ") + len("return ")
    assert fill_python_faults(document, start, start, "self.")[0] > 0
    assert fill_python_faults(document, start, start, "w * 2") == (0, 0)


@pytest.mark.parametrize("fill,added", [
    ('width, height):', True),    # closes the bracket, then `:` after a return: the error is the fill's own
    ('width,\n        height):', True),
    ('width, height)', False),
    ('width, height)  # both', False),
    ('width, ', False),           # the bracket stays open: the line is still being written
])
def test_a_fill_closing_the_bracket_being_typed_is_judged_by_its_own_text(fill, added):
    document = 'def area(width, height):\n    return ("😋", \n\n\ndef other():\n    return 1\n'
    assert adds_faults(document, '("😋", ', fill) == added


def adds_faults(document: str, typed: str, fill: str) -> bool:
    """Whether `fill`, typed right after `typed` in `document`, adds faults (None, nothing known, is no)."""
    start = document.index(typed) + len(typed)
    faults = fill_python_faults(document, start, start, fill)
    return faults is not None and faults[0] > 0


def test_an_error_the_user_made_before_the_cursor_is_not_the_fills():
    document = 'def area(width, height):\n    return 2 width (\n'
    start = len(document) - 1
    assert fill_python_faults(document, start, start, "height)")[0] == 0


@pytest.mark.parametrize("fill", ["a +", "self.", 'f"{a!z}"'])
def test_a_3_12_f_string_elsewhere_in_the_function_leaves_the_check_on(fill):
    """Only an f-string reusing its quote in a field is 3.12 syntax: the line is judged with a plain string in its
    place, and the rest of the function still is (the check was off for the whole window)."""
    document = 'def f(a, d):\n    s = f"{d["k"]}"\n    x = \n    return s\n'
    start = document.index("x = ") + len("x = ")
    assert fill_python_faults(document, start, start, fill)[0] > 0
    assert fill_python_faults(document, start, start, 'f"{a["k"]!r}"') == (0, 0)


@pytest.mark.parametrize("fill,added", [("a b c", True), ('"""', True), ("a * b", False)])
def test_a_line_still_open_below_leaves_the_fills_own_errors_refused(fill, added):
    document = "def f(a, b):\n    x = \n    y = (a +\n    return x\n"
    assert adds_faults(document, "x = ", fill) == added


@pytest.mark.parametrize("document, typed, fill, added", [
    # a backslash in an f-string's field is 3.12 syntax: not the fill's error, and not one that hides later ones
    ("def f(xs):\n    return \n", "return ", "f\"{'\\n'.join(xs)}\"", False),
    ("def f(xs):\n    return f\"{'\\n'.join(xs)}\" + \n", "+ ", "'x'", False),
    ("def f(xs):\n    s = f\"{'\\n'.join(xs)}\"\n    if s:\n        \n", "if s:\n        ", "break", True),
    ("def f(xs):\n    s = f\"{'\\n'.join(xs)}\"\n    \n    return s\n", "\"\n    ", "await g(s)", True),
    # an error on a generic function's header line is the fill's, as on a plain one
    ("def pick[T](\n    return 1\n", "pick[T](", "xs: list[T] = [], n: int) -> T:", True),
    ("def pick[T](\n    return 1\n", "pick[T](", "xs: list[T], n: int) -> T:", False),
    ("class Box[T]:\n    def put[U](self, \n        pass\n", "(self, ", "x: U = None, y: U) -> None:", True),
])
def test_3_12_syntax_on_an_older_compiler_neither_refuses_a_good_fill_nor_hides_a_broken_one(document, typed, fill,
                                                                                            added):
    assert adds_faults(document, typed, fill) == added


def test_an_error_on_the_line_of_a_3_12_f_string_is_still_an_error():
    assert syntax_error_line('def f(d):\n    x = f"{d["k"]}" +\n    return x\n') == 2
    assert syntax_error_line('def f(d):\n    x = f"{d["k"]}"\n    return x\n') is None


@pytest.mark.parametrize("document, selected, middle", [
    ('"""Module doc.\n\nSecond line here.\n"""\nimport os\n', "Second line here.", "Second line there."),
    ('"""Module doc.\n\nSecond line here.\n"""\nimport os\n', "Second line here.", "Second line here."),
    ('QUERY = """\nSELECT a, b\nFROM t\n"""\n', "a, b", "c, d"),
    ("NOTE = '''\nfirst\nsecond\n'''\nx = 1\n", "second", "second, and more"),
])
def test_a_fill_in_the_column_0_text_of_a_top_level_string_is_judged_in_its_statement(document, selected, middle):
    """Such a line read as a statement of its own: its window did not compile even with the user's own text, and
    every fill there was refused (the selection given back unchanged too)."""
    start = document.index(selected)
    result = fill(document, {"start": start, "end": start + len(selected)}, middle)
    assert result.text == middle, result.message
    assert fill_python_faults(document, start, start + len(selected), middle) == (0, 0)


def test_a_fill_that_ends_a_top_level_string_early_is_still_refused():
    document = 'QUERY = """\nSELECT a, b\nFROM t\n"""\n'
    start = document.index("a, b")
    result = fill(document, {"start": start, "end": start + 4}, 'c"""\nx = (', "c, d")
    assert result.text == "c, d" and result.details["candidates"][0]["added_errors"] > 0


def test_an_explicit_request_in_a_module_docstring_is_offered():
    result, _ = inline('"""Tools.\n\nThey are for <|>\n"""\nimport os\n', "reading files.", invoked=True)
    assert result.text == "reading files."


def test_an_error_at_the_same_distance_from_the_end_for_another_reason_is_the_fills():
    """`f"{}"` (empty expression) filled with `name}` gives `f"{name}}"` (a single `}`), which the compiler reports
    at the same distance from the end: it was taken for the user's own error, and the broken fill passed."""
    document = 'def f(name):\n    s = f"{}"\n'
    assert adds_faults(document, 'f"{', "name}")
    assert not adds_faults(document, 'f"{', "name")


@pytest.mark.parametrize("source", [
    "x = 1\ndef _ [np.reshape\n",                                      # type parameters never closed
    'def f(xs):\n    return f"""{chr(10).join(xs)} {\'\\n\'}"""\n',   # a backslash in a triple-quoted f-string's field
])
@pytest.mark.skipif(not OLDER_COMPILER, reason="a 3.12 compiler judges this syntax itself")
def test_3_12_syntax_that_cannot_be_taken_out_is_left_unjudged_not_recursed_into(source):
    """Taken out, the line came back unchanged and was judged again, and again: RecursionError (a benchmark run
    died on `def _ [np.reshape`)."""
    assert syntax_error_line(source) is None   # unjudged here: tree-sitter's check still applies


@pytest.mark.parametrize("source", [
    "class A:\n    def run(self):\n[[        return 1\n\n    @property\n]]    def name(self):\n        return 2\n",
    "class A:\n    def run(self):\n[[        return 1\n\n    def _build(\n]]        self,\n        x,\n    ):\n"
    "        return x\n",
])
@pytest.mark.parametrize("mode", ["fill", "rewrite"])
def test_a_selection_running_on_into_the_next_methods_header_is_judged_in_the_class(source, mode):
    """The window was the method the selection starts in, so it ended inside the next one's decorator or header,
    and the user's own text written back counted as a fault: refused."""
    from test_infill_pipeline import selected
    own = source[source.index("[[") + 2:source.index("]]")]
    result, after = selected(source, own, mode=mode)
    assert result.text == own and after == source.replace("[[", "").replace("]]", ""), result.message
