"""Each cleaning rule of infill.clean on its own, then together through clean_middle."""
from __future__ import annotations

import pytest

from infill.clean import (
    CleanContext, auto_closed_tail, clean_middle, cleaned_with_tail, close_own_brackets, collapse_leading_gap,
    drop_comment_for_missing_operand, drop_comment_only_body, drop_leading_blank_lines,
    drop_repeated_suffix_lines, drop_suffix_overlap,
    drop_unmatched_closers, first_line_only, indent_block_body, keep_inside_scope, keep_selection_indentation,
    lines_in_literals, shift_block_written_from_cursor,
    normalize_newlines,
    normalize_indentation, open_block_body, reindent_first_line, rescale_indent_steps, to_line_ending,
    trim_trailing_whitespace,
)
from infill.style import indent_style, indent_unit_of, line_ending_of

from infill import InfillRequest, run_infill
from test_infill_pipeline import ScriptedEngine, applied, inline, selected, selection


# ---- suffix overlap ---------------------------------------------------------------------------------------------

def test_tail_equal_to_the_suffix_head_is_cut():
    assert drop_suffix_overlap("text.strip()", ".strip()\n") == "text"
    assert drop_suffix_overlap("a, b))", "))\nnext()") == "a, b"          # both closers close the prefix's
    assert drop_suffix_overlap("name: str = 'x'", " = 'x'\n") == "name: str "   # suffix's leading spaces ignored


@pytest.mark.parametrize("source,middle,expected", [
    # the middle closes the inner bracket itself and goes on: the editor's closers are not added again
    ("print(len(<|>))\n", "xs) + 1)", "print(len(xs) + 1)\n"),
    ("print(len(<|>))\n", "xs) + 1", "print(len(xs) + 1)\n"),
    ("foo(bar(<|>))\n", "1), 2)", "foo(bar(1), 2)\n"),
    ("foo([<|>])\n", "1], 2)", "foo([1], 2)\n"),
    ("foo(bar(<|>));\n", "1), 2);", "foo(bar(1), 2);\n"),    # the middle ends the statement: one `;`
    # all the closers are needed: the editor closed only the inner bracket
    ("a = (b + (<|>)\n", "c) * d)", "a = (b + (c) * d)\n"),
    ("print(len(<|>))\n", "xs", "print(len(xs))\n"),
])
def test_closers_the_middle_writes_itself_replace_the_editors(source, middle, expected):
    """Before, `xs) + 1` in `print(len(|))` came out as `print(len(xs) + 1))`, which the parse check refused."""
    result, _ = inline(source, middle)
    assert applied(source, result) == expected


def test_tail_overlap_leaves_the_middles_own_brackets_to_the_bracket_rule():
    # `compute(` is closed by the first `)`: cutting "))" would leave it open.
    assert drop_suffix_overlap("compute(a, b))", "))\n", before="print(str(") == "compute(a, b))"
    assert clean_middle("compute(a, b))", ctx("single", "print(str(", "))\n")) == "compute(a, b)"


def test_a_line_of_the_middle_at_another_depth_is_no_repeat_of_the_suffixs_line():
    """Before, a Lua fill's `  end` (closing its own `if`) was cut as a repeat of the function's `end` after it."""
    block = "  if a then\n    return 2\n  end\n"
    assert drop_suffix_overlap(block, "end\n", suffix_starts_line=True) == block
    assert drop_suffix_overlap("  return 2\nend\n", "end\n", suffix_starts_line=True) == "  return 2\n"
    assert drop_suffix_overlap("x = 1\n    return x", "return x\n") == "x = 1\n    "   # the cursor's own line


@pytest.mark.parametrize("source,selection_middle,expected", [
    ("local function f(a)\n[[  return 1\n]]end\n", "if a then\n  return 2\nend\n",
     "local function f(a)\n  if a then\n    return 2\n  end\nend\n"),
    ("def f(a)\n[[  return 1\n]]end\n", "if a\n  return 2\nend\n", "def f(a)\n  if a\n    return 2\n  end\nend\n"),
    # the model's repeat of the next line's `end`, moved to the body's depth, closes nothing it opened: cut
    ("local function f(a)\n  if a then\n[[    return 1\n]]  end\nend\n", "return 2\nend\n",
     "local function f(a)\n  if a then\n    return 2\n  end\nend\n"),
    ("def f(a)\n  if a\n[[    return 1\n]]  end\nend\n", "return 2\nend\n",
     "def f(a)\n  if a\n    return 2\n  end\nend\n"),
])
def test_a_filled_block_keeps_its_own_end_before_the_enclosing_one(source, selection_middle, expected):
    text, start, end = selection(source)
    language = "lua" if source.startswith("local") else "ruby"
    result = run_infill(InfillRequest(text=text, mode="fill", start=start, end=end, language_id=language),
                        ScriptedEngine(selection_middle))
    assert text[:result.start] + result.text + text[result.end:] == expected, result.message


def test_tail_overlap_needs_two_characters():
    assert drop_suffix_overlap("f(x)", ")") == "f(x)"   # one shared character proves nothing
    assert drop_suffix_overlap("a + b", "\n") == "a + b"


def test_one_character_is_enough_for_a_statement_end_or_a_closing_quote():
    assert drop_suffix_overlap("1;", ";\n") == "1"                       # `;;` would parse as an empty statement
    assert drop_suffix_overlap("a * 2;", "; } }\n") == "a * 2"          # a one-line body's `;` before its `}`
    assert drop_suffix_overlap("i = 0;", ";)\n") == "i = 0;"            # `for (;;)`: a `)` is no statement end
    assert drop_suffix_overlap("abc'", "')\n") == "abc"                   # the quote closes the prefix's string
    assert drop_suffix_overlap("'a' + 'b'", "'\n") == "'a' + 'b'"         # balanced quotes: the middle's own
    assert drop_suffix_overlap("int i = 0;", "; i < n; i++) {\n") == "int i = 0;"   # a `for` header's `;`
    assert drop_suffix_overlap('say \\"', '"\n') == 'say \\"'                  # an escaped quote closes nothing
    assert drop_suffix_overlap("f(x)", ")") == "f(x)"


@pytest.mark.parametrize("grammar, middle, suffix, expected", [
    ("python", "range(n):", ":\n        pass\n", "range(n)"),         # a header's `:` the suffix has
    ("python", '"key":', ": v}\n", '"key"'),                            # a dict key's
    ("typescript", "name:", ": string;\n", "name"),
    ("go", "case 1:", ":\n", "case 1"),
    ("cpp", "std:", ":vector<int> v;\n", "std:"),                       # `::` is a token there: a path's half
    ("rust", "std:", ":fmt;\n", "std:"),
    ("python", 'x = "a:', ':"\n', 'x = "a:'),                           # inside a string: text
])
def test_a_colon_the_suffix_already_has_is_not_written_twice(grammar, middle, suffix, expected):
    assert drop_suffix_overlap(middle, suffix, grammar=grammar) == expected


def test_a_python_slice_keeps_its_double_colon():
    """`xs[1::2]` is a slice with a step: cut to `xs[1:2]` it would read other items."""
    assert drop_suffix_overlap("1:", ":2]\n", grammar="python", before="    return xs[") == "1:"
    assert drop_suffix_overlap("step:", ":]\n", grammar="python", before="ys = xs[") == "step:"
    assert drop_suffix_overlap("xs[i] if i:", ": 0}\n", grammar="python", before="d = {1: ") == "xs[i] if i"


def test_tail_overlap_across_lines():
    assert drop_suffix_overlap("x = 1\n    return x", "\n    return x\n") == "x = 1"


@pytest.mark.parametrize("language, middle, suffix", [
    ("go", "// Licensed under MIT.\n//", "\n// See LICENSE.\npackage p\n"),
    ("rust", "/// Adds.\n///", "\n/// # Panics\n"),
    ("python", "x = 1\n    #", "\n    # then\n"),
    ("lua", "-- Is.\n--", "\n-- @param s\n"),
])
def test_a_bare_comment_line_at_the_end_is_no_start_of_the_suffixs_comment(language, middle, suffix):
    """The paragraph break a comment block ends with (`//` alone) was cut as the start of the suffix's next comment
    line written again; the suffix's line goes on past the marker, so the two are not the same line."""
    assert drop_suffix_overlap(middle, suffix, grammar=language) == middle
    # the same bare line in the suffix is a repeat
    assert drop_suffix_overlap(middle, "\n" + middle.rsplit("\n", 1)[1] + suffix,
                               grammar=language) == middle.rsplit("\n", 1)[0]


def test_repeated_next_line_is_cut():
    middle = "y = x * 2\n    z = y + 1\n    return z\n    # more"
    assert drop_repeated_suffix_lines(middle, "\n    return z\n", before="    ") == "y = x * 2\n    z = y + 1"


def test_repeated_next_line_on_the_first_line_of_a_blank_line():
    assert drop_repeated_suffix_lines("return x", "\n    return x\n", before="    ") == ""
    # Mid-line, the first line continues the cursor's line and cannot repeat a whole line.
    assert drop_repeated_suffix_lines("return x", "\nreturn x\n", before="y = ") == "return x"


@pytest.mark.parametrize("language, middle, suffix", [
    ("java", "@Override\n    public void b() {}", "\n\n    @Override\n    public void c() {}\n}\n"),
    ("python", "@property\n    def b(self):\n        return 1", "\n\n    @property\n    def c(self):\n        return 2\n"),
    ("rust", "#[derive(Debug)]\nstruct B;", "\n\n#[derive(Debug)]\nstruct C;\n"),
])
def test_a_new_member_annotated_like_the_next_one_is_no_repeat(language, middle, suffix):
    """A new method above one with the same annotation was cut at its first line, which is the next line's: to
    nothing. The line it annotates tells a new member from a repeat."""
    before = "" if language == "rust" else "    "
    assert drop_repeated_suffix_lines(middle, suffix, before=before, grammar=language) == middle
    repeat = middle.split("\n")[0] + "\n" + suffix.strip("\n").split("\n")[1]   # the next member written again
    assert drop_repeated_suffix_lines(repeat, suffix, before=before, grammar=language) == ""


@pytest.mark.parametrize("language, before, middle, suffix", [
    # a comment paragraph: its bare marker line is every paragraph's
    ("go", "", "//\n// Use of this source code is governed by a license.", "\n//\n// Licensed under Apache 2.0.\n"),
    ("rust", "", "///\n/// Wraps on overflow.", "\n///\n/// # Panics\npub fn add() {}\n"),
    ("go", "", "// Licensed under MIT.\n//\n// See LICENSE.", "\n//\n// Unless required by law.\n"),
    # the next call or table entry, begun like the suffix's
    ("go", "\t", 'log.WithFields(log.Fields{\n\t\t"n": 2,\n\t}).Info("b")',
     '\n\tlog.WithFields(log.Fields{\n\t\t"n": 3,\n\t}).Info("c")\n}\n'),
    ("go", "\t", '}, {\n\t\t"b", "B",', '\n\t}, {\n\t\t"c", "C",\n\t}}\n'),
])
def test_a_line_every_entry_begins_with_is_no_repeat_where_the_middle_goes_on_otherwise(language, before, middle,
                                                                                        suffix):
    """A bare `//` line, or a first line opening a bracket like the suffix's next one, was taken for the model
    writing the suffix again, and the middle was cut there (to nothing at its start). What follows it tells."""
    assert drop_repeated_suffix_lines(middle, suffix, before=before, grammar=language) == middle
    # written again, with the suffix's own next line after it, or alone, it is still a repeat
    lines = middle.split("\n")
    at = next(i for i, line in enumerate(lines) if (before + line if i == 0 else line) == suffix.split("\n")[1])
    again = "\n".join(lines[:at] + suffix.split("\n")[1:3])
    assert drop_repeated_suffix_lines(again, suffix, before=before, grammar=language) == "\n".join(lines[:at])
    assert drop_repeated_suffix_lines("\n".join(lines[:at + 1]), suffix, before=before,
                                      grammar=language) == "\n".join(lines[:at])


@pytest.mark.parametrize("language, before, middle, suffix", [
    # a control statement or an assignment is seldom written twice in a row: the next line again, other body or not
    ("go", "\t", 'if err != nil {\n\t\treturn fmt.Errorf("g: %w", err)\n\t}',
     "\n\tif err != nil {\n\t\treturn err\n\t}\n"),
    ("python", "    ", "return g(\n        a,\n    )", "\n    return g(\n        b,\n    )\n"),
    ("rust", "    ", "let v = vec![\n        1,\n    ];", "\n    let v = vec![\n        2,\n    ];\n"),
    # the suffix's comment paragraph written again, stopped short inside its line
    ("go", "", "//\n// Licensed under the Apache License",
     "\n//\n// Licensed under the Apache License, Version 2.0.\n"),
])
def test_the_next_statement_written_again_with_another_body_is_still_a_repeat(language, before, middle, suffix):
    assert drop_repeated_suffix_lines(middle, suffix, before=before, grammar=language) == ""


GO_CHECKED_CALLS_SUFFIX = '\n\tif err != nil {\n\t\treturn fmt.Errorf("h: %v", err)\n\t}\n\treturn use(a, b)\n}\n'


def test_a_check_like_the_next_one_followed_by_a_statement_of_its_own_is_kept():
    """Go checks each call's error alike: the model's check of the call above the cursor, then the next call, whose
    check is the suffix's. It was cut to nothing as the suffix's check written again."""
    middle = 'if err != nil {\n\t\treturn fmt.Errorf("g: %v", err)\n\t}\n\tb, err := h()'
    assert drop_repeated_suffix_lines(middle, GO_CHECKED_CALLS_SUFFIX, before="\t", grammar="go") == middle


@pytest.mark.parametrize("after", [
    "\n\treturn use(a, b)", "\n\treturn use(", "\n}",
    "\n\treturn use(a, b, nil)",                  # the suffix's next line, changed: still leaving the block
    "\n\tlog.Println(a)\n\treturn use(a, b)",     # a line put in, then the suffix's next line
])
def test_the_next_check_written_again_and_what_follows_it_is_still_a_repeat(after):
    middle = 'if err != nil {\n\t\treturn fmt.Errorf("g: %v", err)\n\t}' + after
    assert drop_repeated_suffix_lines(middle, GO_CHECKED_CALLS_SUFFIX, before="\t", grammar="go") == ""


@pytest.mark.parametrize("middle", ["y = 1\n    return  a + b", "y = 1\n    return a+b", "y = 1\n    return a +  b  "])
def test_a_repeat_of_the_next_line_with_other_spacing_is_cut(middle):
    assert drop_repeated_suffix_lines(middle, "\n    return a + b\n", before="    ") == "y = 1"


def test_a_line_with_other_words_or_operators_is_no_repeat():
    for middle in ("y = 1\n    return ab", "y = 1\n    return a - b", "y = 1\n    return a + b + c"):
        assert drop_repeated_suffix_lines(middle, "\n    return a + b\n", before="    ") == middle
    # spaces between two operators, and in a string, are code
    for middle, suffix in (("y = 1\n    x = a--b", "\n    x = a - -b\n"),
                           ("y = 1\n    return a**b", "\n    return a * *b\n"),
                           ('y = 1\n    print("a ,b")', '\n    print("a, b")\n')):
        assert drop_repeated_suffix_lines(middle, suffix, before="    ") == middle


def test_a_deeper_copy_of_the_next_line_is_a_statement_of_its_own():
    # HumanEval/92: the inner `return False` sits above the function's own `return False`.
    assert drop_repeated_suffix_lines("return False", "\n    return False\n", before="        ") == "return False"
    middle = "if y:\n        return x\n    return x"
    assert drop_repeated_suffix_lines(middle, "\n    return x\n", before="    ") == "if y:\n        return x"
    # A copy that lost its indentation is still the suffix's line.
    assert drop_repeated_suffix_lines("y = 1\nreturn x", "\n    return x\n", before="    ") == "y = 1"


def test_bare_closer_lines_must_match_indentation_too():
    middle = "if (x) {\n    y();\n  }\n  done();"
    # The inner `}` at two spaces is the model's own block, not the suffix's `}` at column 0.
    assert drop_repeated_suffix_lines(middle, "\n}\n", before="  ") == middle
    assert drop_repeated_suffix_lines("a();\n}\nb();", "\n}\n", before="  ") == "a();"


def test_whole_line_selection_compares_the_suffix_from_its_first_line():
    assert drop_repeated_suffix_lines("b = 2\nc = 3", "c = 3\n", before="", suffix_starts_line=True) == "b = 2"
    assert drop_repeated_suffix_lines("b = 2\nc = 3", "c = 3\n", before="", suffix_starts_line=False) == \
        "b = 2\nc = 3"


# ---- brackets -----------------------------------------------------------------------------------------------------

def test_unmatched_closers_supplied_by_the_suffix_are_dropped():
    assert drop_unmatched_closers("a, b)", ")") == "a, b"
    assert drop_unmatched_closers("a[0])]", ")]\n") == "a[0]"
    assert drop_unmatched_closers("return 1;\n}", "\n}\n") == "return 1;"   # next line of the suffix closes it


def test_own_pairs_and_unsupplied_closers_stay():
    assert drop_unmatched_closers("f(a)", ")") == "f(a)"      # it opened this one itself
    assert drop_unmatched_closers("a, b)", "\nx = 1") == "a, b)"   # the suffix does not close it
    assert drop_unmatched_closers("a, b]", ")") == "a, b]"    # a different bracket


def test_a_closer_ending_the_openers_line_matches_no_shallower_closer_below():
    # the `}` below is the function's: the model's closes `if (x) {`, whatever the rest of the document holds
    assert drop_unmatched_closers(" return 1; }", "\n}\n", "c", "    if (x) {") == " return 1; }"
    assert drop_unmatched_closers(" return 1; }", "\n    }\n}\n", "c", "    if (x) {") == " return 1; "
    assert drop_unmatched_closers(" b)", "\n)\n", "python", "    a,") == " b"   # `(` opened on a line above


# ---- single / multi line ------------------------------------------------------------------------------------------

def test_single_line_keeps_the_first_line():
    assert first_line_only("a + b\nprint(x)\n") == "a + b"


@pytest.mark.parametrize("middle,before,expected", [
    ("\t\t\t\t = F", "\tflagsA", " = F"),        # Go: a run of tabs mid-line is noise
    ("  \t + 1", "x = y", " + 1"),                # a tab among spaces
    ("        = 1", "\ta", "        = 1"),         # spaces may align (gofmt)
    ("  # note", "x = 1", "  # note"),           # two spaces before a comment are a style
    ("= 1", "x ", "= 1"),                          # after a space: nothing to collapse
    ("\t\tpass", "", "\t\tpass"),                 # at the line start it is indentation
])
def test_a_tab_in_the_gap_opening_a_mid_line_fill_becomes_one_space(middle, before, expected):
    assert collapse_leading_gap(middle, before) == expected


@pytest.mark.parametrize("middle,before,expected", [
    ("#:::::", "    offset: int = ", ""),             # Python: the default value is still missing
    ("  # TODO", "    for row in ", ""),
    ("// the id", "const a = f(", ""),                 # JavaScript, inside a call
    (" -- value", "local t = ", ""),                   # Lua
    ("// reason", "  throw ", ""),                     # JavaScript: throw needs its operand
    ("# which", "    assert ", ""),                     # Python
    ("  # done", "    return", "  # done"),              # a bare return is a whole statement
    ("  # why", "x = 1", "  # why"),                   # after a finished statement a comment is fine
    ("x + 1  # sum", "y = ", "x + 1  # sum"),          # code first, then a comment: kept
    ("# heading", "", "# heading"),                    # a line of its own
])
def test_a_comment_where_an_operand_is_missing_is_dropped(middle, before, expected):
    assert drop_comment_for_missing_operand(middle, before) == expected


@pytest.mark.parametrize("middle,before,line_above,suffix,expected", [
    # Python: a blank line under `for ...:` whose body is still empty; a comment alone would be an IndentationError
    ("#: out or an", "        ", "    for line in lines:", "\n    return total\n", ""),
    ("# count\n        total += 1", "        ", "    for line in lines:", "\n    return total\n",
     "# count\n        total += 1"),                                     # code follows the comment: kept
    ("# note", "        ", "    for line in lines:", "\n        total += 1\n", "# note"),   # body has code below
    ("# note", "        ", "    total = 0", "\n    return total\n", "# note"),            # no opener above
    ("# only", "    ", "def f():", "", ""),                              # the end of the file: still empty
    ("# only", "        ", "    if x:", "\n        # TODO\n    y = 1\n", ""),   # an existing comment is no body
    # brace languages: right after `{`, the block closing on the same line or the next
    (" // todo", "function f() {", "", "}\n", ""),
    ("\n  /* step one\n   * and two */", "int main(void) {", "", "\n}\n", ""),
    ("\n  // loop\n  i++;", "while (x) {", "", "\n}\n", "\n  // loop\n  i++;"),
    ("/* set up */\nint x = 0; /* counter */", "int main(void) {", "", "}\n",
     "/* set up */\nint x = 0; /* counter */"),                        # code between two comments: kept
    ("/* a */ x = 1;", "f() {", "", "}\n", "/* a */ x = 1;"),         # code after a closed comment: kept
    # Lua: `then` opens a block, `end` closes it
    ("-- later", "  ", "if ok then", "\nend\n", ""),
])
def test_a_comment_alone_in_an_empty_body_is_dropped(middle, before, line_above, suffix, expected):
    assert drop_comment_only_body(middle, before, line_above, suffix) == expected


@pytest.mark.parametrize("middle,before,line_above,suffix,expected", [
    # a string alone in a loop's empty body, its later lines left of its first (as the demo's model wrote it)
    ('"""se__line:],\n    |   :Method\n\n    """', "        ", "    for line in lines:", "\n    return total\n", ""),
    ("'count'", "        ", "    while True:", "\n", ""),
    ("42", "    ", "if x:", "\nelse:\n    y = 1\n", ""),
    ('f"{x}"', "        ", "    with open(p) as h:", "\n", ""),
    ('\n        "later"', "    for x in xs:", "", "\n    return\n", ""),   # on the line after the header
    ("...", "        ", "    for line in lines:", "\n", "..."),             # a placeholder, like pass
    ('"""Sum the lines."""', "    ", "def total(lines):", "\n", '"""Sum the lines."""'),   # a docstring
    ('"""A point."""', "    ", "class Point:", "\n", '"""A point."""'),
    ('"""Sum."""', "    ", "    b: int) -> int:", "\n", '"""Sum."""'),     # a def whose header began above
    ('"doc"\n        total += 1', "        ", "    for line in lines:", "\n", '"doc"\n        total += 1'),
    ("'x'", "        ", "    for line in lines:", "\n        total += 1\n", "'x'"),   # the body has code below
    ("'x'", "        ", "    total = 0", "\n", "'x'"),                     # no block opened above
])
def test_a_literal_alone_in_an_empty_python_body_is_dropped(middle, before, line_above, suffix, expected):
    from infill.clean import drop_literal_only_body
    assert drop_literal_only_body(middle, before, line_above, suffix, "python") == expected
    assert drop_literal_only_body(middle, before, line_above, suffix, "javascript") == middle


def test_a_fill_nested_too_deep_for_pythons_parser_is_left_to_the_other_checks():
    from infill.clean import drop_literal_only_body
    middle = "-" * 3000 + "1"   # 97 tokens of the starter's tokenizer; ast.parse raised RecursionError on it
    assert drop_literal_only_body(middle, "        ", "    for x in xs:", "\n", "python") == middle


@pytest.mark.parametrize("middle, expected", [
    ("--[[ later:\n    fill this in ]]", ""),
    ("--[==[ a ]] still ]==]", ""),
    ("--[[ set up ]] local n = 0", "--[[ set up ]] local n = 0"),   # code after the comment: kept
    ("--[[ note ]]\n  return 1", "--[[ note ]]\n  return 1"),
])
def test_a_lua_block_comment_alone_in_an_empty_body_is_dropped(middle, expected):
    assert drop_comment_only_body(middle, "  ", "function f()", "\nend\n", "lua") == expected


def test_clean_drops_a_comment_only_fill_of_an_empty_python_body():
    context = ctx("multi", "        ", "\n    return total\n", line_above="    for line in lines:")
    assert clean_middle("#: out or an EHc\n", context) == ""
    assert clean_middle("total += len(line.split())\n", context) == "total += len(line.split())"


def test_multi_line_stops_when_indentation_leaves_the_block():
    middle = "total += v\n    count += 1\nprint('done')\n"
    assert keep_inside_scope(middle, "    ") == "total += v\n    count += 1"


def test_multi_line_after_an_opener_stops_at_the_openers_indentation():
    middle = "\n    return 1\n\ndef g():\n    pass"
    assert keep_inside_scope(middle, "def f():", "\n") == "\n    return 1\n"


@pytest.mark.parametrize("middle, before, expected", [
    # Python reads no comment's indentation: code commented out at column 0, or a comment at an odd column, is in
    ("y = x + 1\n#        print(y)\n        return y", "        ", "y = x + 1\n#        print(y)\n        return y"),
    ("\n        y = 1\n  # odd\n        return y", "    if x:", "\n        y = 1\n  # odd\n        return y"),
    # a comment as far out as the line that leaves the block goes with that line
    ("y = 1\n    return y\n\n# helpers\ndef g():\n    pass", "    ", "y = 1\n    return y\n"),
    ("\n    return 1\n# next\ndef g():", "def f():", "\n    return 1"),
    # also at the middle's end, where the model began the next section
    ("print(x)\n\n\n# g follows\n", "        ", "print(x)\n\n"),
    ("return 1\n\n    # g below\n    # more\n", "        ", "return 1\n"),
    ("\n    return 1\n# helpers", "def f():", "\n    return 1"),
    ("print(x)\n        # still the loop's", "        ", "print(x)\n        # still the loop's"),
])
def test_python_comment_lines_do_not_leave_the_block(middle, before, expected):
    assert keep_inside_scope(middle, before, "\n", grammar="python") == expected


def test_a_closer_line_is_kept_only_when_the_suffix_does_not_close():
    middle = "\n  return 1;\n}\nfoo();"
    assert keep_inside_scope(middle, "function f() {", "\n}\n") == "\n  return 1;"
    assert keep_inside_scope(middle, "function f() {", "\n") == "\n  return 1;\n}"


def test_deeper_lines_and_blank_lines_stay_in_scope():
    middle = "for x in xs:\n        use(x)\n\n    done()"
    assert keep_inside_scope(middle, "    ") == middle


# ---- whitespace and indentation ---------------------------------------------------------------------------------

def test_trailing_whitespace_is_trimmed():
    assert trim_trailing_whitespace("a = 1   \n  b = 2\t\n\n  ") == "a = 1\n  b = 2"


def test_first_line_repeating_the_cursor_indentation_is_reindented():
    assert reindent_first_line("    x = 1\n    y = 2", before="    ") == "x = 1\n    y = 2"
    assert reindent_first_line("      x = 1", before="    ") == "  x = 1"   # absolute 6 from column 4


def test_relative_first_line_indentation_confirmed_by_the_next_line_stays():
    # cursor at column 2; "  if a:" puts the `if` at column 4, and its body at 8 agrees.
    assert reindent_first_line("  if a:\n        b()", before="  ") == "  if a:\n        b()"


def test_no_double_space_mid_line():
    assert reindent_first_line(" 1", before="x = ") == "1"
    assert reindent_first_line(" 1", before="return") == " 1"   # the space is needed here


def test_fill_at_column_zero_keeps_the_selections_indentation():
    assert keep_selection_indentation("s = 1", "    s = 0\n") == "    s = 1"
    assert keep_selection_indentation("s = 1", "s = 0\n") == "s = 1"


@pytest.mark.parametrize("middle,expected", [
    ("if x:\n    y()", "        if x:\n            y()"),              # written from column 0: all of it moves
    ("if x:\n            y()", "        if x:\n            y()"),      # later lines absolute: only the first
    ("a = 1\n\nb = 2", "        a = 1\n\n        b = 2"),            # blank lines stay blank
])
def test_a_whole_line_fill_written_from_column_zero_keeps_the_selections_indentation(middle, expected):
    original = "        if y:\n            z()\n"
    assert keep_selection_indentation(middle, original) == expected


def test_block_body_goes_on_its_own_indented_line():
    assert open_block_body("pass", "    def f():", "", "    ") == "\n        pass"
    assert open_block_body("\n  return 1;", "function f() {", "}", "  ") == "\n  return 1;\n"


def test_leading_blank_lines_are_dropped_on_a_blank_line():
    assert drop_leading_blank_lines("\n\n    x = 1\n    y = 2") == "    x = 1\n    y = 2"


# ---- line endings -------------------------------------------------------------------------------------------------

def test_line_endings_follow_the_document():
    assert normalize_newlines("a\r\nb\rc") == "a\nb\nc"
    assert to_line_ending("a\nb", "\r\n") == "a\r\nb"
    assert line_ending_of("x = 1\r\ny = 2\r\n") == "\r\n" and line_ending_of("x = 1\ny\n") == "\n"
    assert line_ending_of("") == "\n"
    assert line_ending_of("a\nb\r\nc", at=2) == "\r\n" and line_ending_of("a\r\nb\nc", at=5) == "\n"


def test_indent_unit_comes_from_the_document():
    assert indent_unit_of("def f():\n  if x:\n    y()\n") == "  "
    assert indent_unit_of("func f() {\n\tx := 1\n\ty := 2\n}\n") == "\t"
    assert indent_unit_of("x = 1\n") == "    "


@pytest.mark.parametrize("grammar,middle,before,unit,expected", [
    # 2-space JavaScript, the model wrote 4-space levels under the cursor's line (column 2)
    ("javascript", "if (a) {\n      b();\n  }", "  ", "  ", "if (a) {\n    b();\n  }"),
    # a callback's body inside a call's parenthesis is a level too
    ("javascript", "foo(function () {\n    bar();\n})", "", "  ", "foo(function () {\n  bar();\n})"),
    # a body after an opener at column 0, two levels deep
    ("python", "\n    x = 1\n    if x:\n        y", "def f():", "  ", "\n  x = 1\n  if x:\n    y"),
    # 4-space Python, the model stepped 2: each level becomes 4
    ("python", "for x in xs:\n      total += x\n      if x:\n        n += 1", "    ", "    ",
     "for x in xs:\n        total += x\n        if x:\n            n += 1"),
    # a whole-line selection at column 0: the first line's own indentation is the base
    ("python", "  if a:\n      b\n  c", "", "  ", "  if a:\n    b\n  c"),
    # a list's items and a Lua block are levels
    ("python", "x = [\n    1,\n    2,\n]", "", "  ", "x = [\n  1,\n  2,\n]"),
    ("lua", "if x then\n    y()\nend", "", "  ", "if x then\n  y()\nend"),
    # brackets in a comment or a string open nothing
    ("python", "if x:  # note (\n        y()", "", "    ", "if x:  # note (\n    y()"),
    # already in the document's step: unchanged
    ("javascript", "if (a) {\n    b();\n  }", "  ", "  ", "if (a) {\n    b();\n  }"),
    # a line left of the first line's indentation (an outer level): nothing is redrawn
    ("python", "x\n        y\n  z", "    ", "  ", "x\n        y\n  z"),
    # deeper lines that are no whole number of one step (6 after 4): alignment, unchanged
    ("python", "a\n    b\n      c", "", "  ", "a\n    b\n      c"),
    # the first line indented at a cursor in indentation: repeated or one level deeper is reindent_first_line's call
    ("python", "  if x:\n      b()", "  ", "  ", "  if x:\n      b()"),
    ("python", "    b()\n      c()", "  ", "  ", "    b()\n      c()"),
    # continuation lines inside a parenthesis (PEP 8's hanging indent, C's continuation): styles differ, unchanged
    ("python", "def load(\n        path,\n        encoding='utf-8'):\n    pass", "", "    ",
     "def load(\n        path,\n        encoding='utf-8'):\n    pass"),
    ("cpp", "int x = f(a,\n    b);", "", "  ", "int x = f(a,\n    b);"),
    ("python", "a,\n      b)", "  foo(", "  ", "a,\n      b)"),
    # a statement going on below a line that opens nothing (a method chain, an operand after `=`): styles indent
    # those by their own rule (Java's double step), not in levels; before, the 4 columns became 2
    ("java", "return new B(r)\n        .setA(1)\n        .setB(0);", "    ", "  ",
     "return new B(r)\n        .setA(1)\n        .setB(0);"),
    ("java", "res[1] =\n        src[1]\n            + dst[1];", "    ", "  ", "res[1] =\n        src[1]\n            + dst[1];"),
    ("javascript", "const s = x\n    ? a\n    : b;\nif (s) {\n    go();\n}", "", "  ",
     "const s = x\n    ? a\n    : b;\nif (s) {\n    go();\n}"),
    # a level under a label or a brace-less header still is one
    ("cpp", "case 1:\n    f();\n    break;", "", "  ", "case 1:\n  f();\n  break;"),
    ("c", "if (a)\n    f();", "", "  ", "if (a)\n  f();"),
    # inside a string or a comment the indentation is text: unchanged
    ("python", 'HELP = """\nUsage:\n  tool run\n    --fast\n"""', "", "    ",
     'HELP = """\nUsage:\n  tool run\n    --fast\n"""'),
    ("c", "/* a\n    b */\nx", "", "  ", "/* a\n    b */\nx"),
    # a selection starting inside indentation (column 2 of an 8-space level): no level to measure from
    ("cpp", "x;\n    }\n\n    double ", "  ", "        ", "x;\n    }\n\n    double "),
    # plain text has no levels to know; a tab-indented document is normalize_indentation's business
    (None, "a\n    b", "", "  ", "a\n    b"),
    ("go", "{\n    a\n}", "", "\t", "{\n    a\n}"),
])
def test_rescale_indent_steps(grammar, middle, before, unit, expected):
    assert rescale_indent_steps(middle, before, unit, grammar) == expected


@pytest.mark.parametrize("middle, line_above, expected", [
    # At column 0 inside a 2-space function: the model put its first line at its own depth 1 (4 columns) and the
    # rest in its 4-space steps. Before, the base stayed at 4, and every line was a level too deep.
    ("    for (x of a) {\n        g(x);\n    }", "  }", "  for (x of a) {\n    g(x);\n  }"),
    ("        if (b) {\n            g();\n        }", "  if (a) {", "    if (b) {\n      g();\n    }"),
    # the first line at the depth the line above calls for already: only the levels below it are redrawn
    ("  for (x of a) {\n      g(x);\n  }", "  }", "  for (x of a) {\n    g(x);\n  }"),
    ("    if (b) {\n        g();\n    }", "  if (a) {", "    if (b) {\n      g();\n    }"),
    # a first line at neither depth: the model's own step is not known to be its base, the levels alone move
    ("      if (b) {\n          g();\n      }", "  x();", "      if (b) {\n        g();\n      }"),
])
def test_rescale_indent_steps_at_column_0_finds_the_models_base(middle, line_above, expected):
    assert rescale_indent_steps(middle, "", "  ", "javascript", line_above) == expected


def test_indent_steps_are_redrawn_only_when_the_documents_step_was_seen():
    assert indent_style("function f() {\n  return 1;\n}\n") == ("  ", True)
    assert indent_style("x = 1\n", tab_size=2) == ("  ", True)
    assert indent_style("x = 1\n") == ("    ", False)   # assumed: a model's 2-space levels are left alone
    # the editor says 8, the file shows 4: the unit follows the editor, but no level is redrawn
    assert indent_style("def f():\n    return 1\n", tab_size=8) == ("        ", False)
    assert indent_style("def f():\n    return 1\n", tab_size=4) == ("    ", True)
    assert indent_style("func f() {\n\tx := 1\n}\n") == ("\t", True)
    # two steps seen as often (a comment's 3-space continuation, one 4-space member): no width is known, unless the
    # editor names one of them
    tied = "/* Future feature\n   support */\nstruct a {\n    int x;\n};\n"
    assert indent_style(tied)[1] is False
    assert indent_style(tied, tab_size=4) == ("    ", True) and indent_style(tied, tab_size=3) == ("   ", True)
    assert indent_style(tied, tab_size=2) == ("  ", False)
    multi = ctx("multi", "  ", "\n}\n", indent_unit="  ", line_above="function f() {", grammar="javascript")
    assert clean_middle("if (a) {\n      b();\n  }", multi) == "if (a) {\n      b();\n  }"
    multi.indent_seen = True
    assert clean_middle("if (a) {\n      b();\n  }", multi) == "if (a) {\n    b();\n  }"


def test_a_javascript_body_written_in_4_space_levels_comes_in_the_files_2():
    source = "function f(xs) {\n  for (const x of xs) {\n    <|>\n  }\n}\n"
    result, _ = inline(source, "if (x > 0) {\n        console.log(x);\n    }", language_id="javascript")
    assert applied(source, result) == ("function f(xs) {\n  for (const x of xs) {\n    if (x > 0) {\n"
                                       "      console.log(x);\n    }\n  }\n}\n")


# ---- all together -----------------------------------------------------------------------------------------------

def ctx(shape: str, before: str, suffix: str, **kw) -> CleanContext:
    return CleanContext(shape=shape, before=before, rest_of_line=suffix.split("\n", 1)[0], suffix=suffix, **kw)


def test_clean_single_line():
    assert clean_middle("a + b)\nprint(x)", ctx("single", "    return f(", ")\n")) == "a + b"


def test_clean_multi_line_body_in_the_document_style():
    raw = "\r\n    total = sum(xs)  \r\n    return total\r\nprint('x')\r\n"
    cleaned = clean_middle(raw, ctx("multi", "    ", "\r\n\r\nprint(1)\r\n", line_ending="\r\n"))
    assert cleaned == "total = sum(xs)\r\n    return total"


def test_clean_after_an_opener_adds_the_body_line():
    assert clean_middle("return 1", ctx("multi", "def f():", "\n")) == "\n    return 1"
    assert clean_middle("x := 1", ctx("multi", "func f() {", "}\n", indent_unit="\t")) == "\n\tx := 1\n"


def test_clean_whole_line_fill_ends_with_a_newline():
    assert clean_middle("s = sum(xs)", ctx("block", "", "    return s\n", original="    s = 0\n",
                                           whole_lines=True, suffix_starts_line=True)) == "    s = sum(xs)\n"


def test_whitespace_only_or_fully_duplicated_middles_are_empty():
    assert clean_middle("   \n  ", ctx("multi", "", "")) == ""
    assert clean_middle(")", ctx("single", "f(x", ")\n")) == ""
    assert clean_middle("\n    return x", ctx("multi", "    ", "\n    return x\n")) == ""


def test_a_body_written_at_the_openers_level_is_indented_under_it():
    assert indent_block_body("return a", "", "def f(a):", "    ") == "    return a"
    assert indent_block_body("x := 1\ny := 2", "", "func f() {", "\t") == "\tx := 1\n\ty := 2"
    assert indent_block_body("return a", "    ", "def f(a):", "    ") == "return a"      # the cursor is there
    assert indent_block_body("return a", "", "x = 1", "    ") == "return a"             # no opener above
    assert clean_middle("return a", ctx("multi", "", "\n", line_above="def f(a):")) == "    return a"


@pytest.mark.parametrize("grammar,before,line_above,raw,indent_unit,cleaned", [
    # the cursor sits at the opener's own indentation (plain autoindent): the body still goes one level deeper
    ("javascript", "    ", "    if (x) {", "return;", "    ", "    return;"),
    ("lua", "  ", "  if x then", "return 1", "  ", "  return 1"),
    ("python", "    ", "    def f(self):", "return 1", "    ", "    return 1"),
    ("javascript", "    ", "    if (x) {", "return;\n    y();", "    ", "    return;\n        y();"),
])
def test_a_body_at_the_openers_level_goes_deeper_wherever_the_cursor_is(grammar, before, line_above, raw,
                                                                        indent_unit, cleaned):
    context = ctx("multi", before, "\n", line_above=line_above, grammar=grammar, indent_unit=indent_unit)
    assert clean_middle(raw, context) == cleaned


@pytest.mark.parametrize("grammar,before,rest,raw,cleaned", [
    # after an opener on the cursor's line, a body begun on a new line at the opener's level (the closer too)
    ("javascript", "function f(x) {", "}", "\nreturn x + 1;\n}", "\n    return x + 1;\n"),
    ("javascript", "function f(x) {", "}", "\nif (x) {\n    y();\n}\nreturn 1;\n}",
     "\n    if (x) {\n        y();\n    }\n    return 1;\n"),
    ("java", "  int f(int x) {", "", "\n  return x;\n", "\n      return x;"),
    ("lua", "function M.run(x)", "", "\nreturn x\n", "\n    return x"),
    ("python", "def f(x):", "", "\nreturn x", "\n    return x"),
    # a body already deeper than the opener is left as written
    ("javascript", "function f(x) {", "}", "\n  return x;\n}", "\n  return x;\n"),
])
def test_a_flat_body_after_an_opener_on_the_cursors_line_is_indented(grammar, before, rest, raw, cleaned):
    suffix = rest + "\n"
    assert clean_middle(raw, ctx("multi", before, suffix, grammar=grammar)) == cleaned


# ---- auto-closed tails, own brackets, indentation style (several languages) -----------------------------------

@pytest.mark.parametrize("rest_of_line,tail", [
    (")", ")"),                 # print(|)
    ("])  ", "])"),             # trailing spaces are not part of it
    ('")', '")'),               # a string the editor closed
    (");", ");"),               # JavaScript / C statement end
    ("}", "}"),                 # Go / Rust block the editor closed
    ("", ""),                   # nothing after the cursor
    (") + 1", ""),              # real code follows: not a tail
    (", y)", ""),               # an argument follows
])
def test_auto_closed_tail(rest_of_line, tail):
    assert auto_closed_tail(rest_of_line) == tail


@pytest.mark.parametrize("middle,expected", [
    ("compute(a, b", "compute(a, b)"),          # Python call cut by the canvas
    ("xs[idx(0", "xs[idx(0)]"),                 # innermost first
    ("vec![1, 2", "vec![1, 2]"),                # Rust macro
    ("len(s)", "len(s)"),                       # balanced: unchanged
    ("f(a, ", "f(a, "),                         # ends on a comma: the argument list goes on, do not guess
    ("foo(a +", "foo(a +"),                     # ends on an operator
    ("print(\"a(b", "print(\"a(b"),           # a string left open: leave it to the parse check
    ("a, b)", "a, b)"),                         # closes the prefix's bracket: not its business here
])
def test_close_own_brackets(middle, expected):
    assert close_own_brackets(middle) == expected


@pytest.mark.parametrize("grammar,middle,expected", [
    # the grammar's literals: a Rust lifetime is no quote, a Lua long string hides its brackets
    ("rust", "HashMap::<&'static str, Vec<u8>>::with_capacity(n", "HashMap::<&'static str, Vec<u8>>::with_capacity(n)"),
    ("rust", "f('(', g(b", "f('(', g(b))"),                 # a char literal's bracket is text
    ("lua", "f([[a(]]", "f([[a(]])"),
    ("lua", "[[a(]])", "[[a(]])"),                          # closes the prefix's: nothing to add
    ("python", "foo(x  # why", "foo(x  # why"),             # ends in a comment: nothing goes into it
    ("javascript", "f(`${a}`, g(x", "f(`${a}`, g(x))"),
    ("c", 'printf("%s(", name', 'printf("%s(", name)'),
    # a Lua callback opened at the line's end: its body and the call's `end, ...)` are below
    ("lua", "set('n', 'x', function()", "set('n', 'x', function()"),
    ("lua", "f(g(x", "f(g(x))"),
])
def test_close_own_brackets_reads_the_grammars_literals(grammar, middle, expected):
    assert close_own_brackets(middle, grammar) == expected


def test_only_a_closing_end_closes_a_block():
    # Lua's `end` closes the function; a statement assigning `end` at the opener's level is code after the block
    assert keep_inside_scope("\n  a()\nend\nb()", "function f()", "\n\nx()\n", grammar="lua") == "\n  a()\nend"
    assert keep_inside_scope("\n    a();\nend = 5;\nb();", "function f() {", "\n\nx();\n",
                             grammar="javascript") == "\n    a();"


@pytest.mark.parametrize("grammar,before,raw,expected", [
    # C preprocessor lines sit at column 0 inside any block: they do not end the scope
    ("c", "    ", "#ifdef DEBUG\n    log();\n#endif\n    x++;\n}\nint g;", "#ifdef DEBUG\n    log();\n#endif\n    x++;"),
    ("cpp", "    ", "#if 1\n    a();\n#endif\n}", "#if 1\n    a();\n#endif"),
    ("javascript", "    ", "a();\n#x\n}", "a();"),           # elsewhere a line at column 0 has left the block
])
def test_preprocessor_lines_do_not_end_the_scope(grammar, before, raw, expected):
    assert keep_inside_scope(raw, before, grammar=grammar) == expected


@pytest.mark.parametrize("middle,unit,tab_size,expected", [
    # Go (tabs): a model that wrote 4-space levels is turned into tabs
    ("x := 1\n    if x > 0 {\n        y()\n    }", "\t", None, "x := 1\n\tif x > 0 {\n\t\ty()\n\t}"),
    # the editor's tab size decides how many spaces make one level
    ("a\n  b\n    c", "\t", 2, "a\n\tb\n\t\tc"),
    # Python (4 spaces): tabs become one indent unit each
    ("if x:\n\treturn 1", "    ", None, "if x:\n    return 1"),
    # JavaScript (2 spaces) written in the document's style already: unchanged
    ("if (a) {\n  b();\n}", "  ", None, "if (a) {\n  b();\n}"),
    # a stray space after the tabs stays: alignment, not a level
    ("f(a,\n      b)", "\t", 4, "f(a,\n\t  b)"),
    # a middle that starts deep (8 then 12 spaces): its step is 4, so two and three tabs, never a tab/space mix
    ("        x = 1\n            y = 2", "\t", None, "\t\tx = 1\n\t\t\ty = 2"),
])
def test_normalize_indentation(middle, unit, tab_size, expected):
    assert normalize_indentation(middle, unit, tab_size) == expected


@pytest.mark.parametrize("grammar,before,rest_of_line,raw,expected", [
    # typed inside a string the editor closed: a middle that ends the string and the call replaces the closers
    ("c", '    printf("', '");', '%d\\n", x);', '%d\\n", x);'),
    ("c", '    printf("', '");', '%d\\n", x)', '%d\\n", x);'),     # the statement's end comes from the tail
    ("rust", '    println!("', '");', 'hello {}", x);', 'hello {}", x);'),
    ("java", '        System.out.println("', '");', 'hi " + name)', 'hi " + name);'),
    ("go", '\tfmt.Println("', '")', 'a" + b)', 'a" + b)'),
    ("javascript", "f('", "');", "a', g('b'));", "a', g('b'));"),
    # a middle that stays inside the string gets the editor's closers after it
    ("javascript", 'f("', '");', 'x\\"y', 'x\\"y");'),
    ("python", 'print("', '")', "hello", 'hello")'),
    # a quote after an escaped backslash ends the string (it was read as an escaped quote: the closers came twice)
    ("python", '    p = os.path.join("C:\\\\', '")', 'temp\\\\", x)', 'temp\\\\", x)'),
    ("javascript", '    p = s.split("', '")', '\\\\"', '\\\\")'),
    ("c", '    printf("', '");', '\\\\", x);', '\\\\", x);'),
    # it ends the string and stops inside the call: the call still needs the tail's `)`, not its quote
    ("c", '    printf("', '");', '%d\\n", x', '%d\\n", x);'),
    ("rust", '    println!("', '");', '{}", x', '{}", x);'),
    ("python", '    print("', '")', 'total:", len(xs)', 'total:", len(xs))'),
    ("python", '    print(f(g("', '")))', 'a", 1)', 'a", 1)))'),
    # a regex after an arrow is no division: its quote is text, and the tail's `)` is the middle's
    ("javascript", "const q = items.some(s => ", ")", '/"/.test(s))', '/"/.test(s))'),
    ("javascript", "const q = items.some(s => ", ")", "/'/.test(s))", "/'/.test(s))"),
    ("javascript", "switch (x) { case ", ")", '/"/.test(a) ? 1 : 2)', '/"/.test(a) ? 1 : 2)'),
    # JSX text is no string: its apostrophe opened one that hid the closers
    ("javascript", "root.render(", ")", "<p>Don't panic</p>)", "<p>Don't panic</p>)"),
    ("javascript", "const el = (", ")", "<b>it's {n}</b>)", "<b>it's {n}</b>)"),
    ("tsx", "const el = (", ")", "<a href=\"x\">see http://x</a>)", "<a href=\"x\">see http://x</a>)"),
])
def test_a_middle_that_ends_the_string_replaces_the_editors_closers(grammar, before, rest_of_line, raw, expected):
    context = ctx("single", before, rest_of_line + "\n", grammar=grammar)
    assert cleaned_with_tail(raw, context, auto_closed_tail(rest_of_line)) == expected


def test_clean_uses_the_documents_tabs_through_the_whole_chain():
    raw = "if err != nil {\n        return err\n    }"
    cleaned = clean_middle(raw, ctx("multi", "\t", "\n}\n", indent_unit="\t"))
    assert cleaned == "if err != nil {\n\t\treturn err\n\t}"


def test_clean_single_line_closes_its_own_call_but_not_the_prefixes():
    # print(|) with the editor's `)`: the model's `foo(x` gets its own `)`, the tail stays the suffix's
    assert clean_middle("foo(x", ctx("single", "print(", ")\n")) == "foo(x)"
    assert clean_middle("foo(x))", ctx("single", "print(", ")\n")) == "foo(x)"
    # C: an argument left open in a call inside an if
    assert clean_middle("strlen(name", ctx("single", "  if (n < ", ") {\n")) == "strlen(name)"


def test_the_indentation_vote_counts_indented_lines_not_indentation_steps():
    """Ten lines at one space-indented level take only one step; two pasted tab lines must not outvote them."""
    spaced = "function f() {\n" + "".join(f"    let a{i} = {i};\n" for i in range(10)) + "}\n"
    assert indent_unit_of(spaced + "function g() {\n\treturn 1;\n}\nfunction h() {\n\treturn 2;\n}\n") == "    "
    assert indent_unit_of("func f() {\n\tx := 1\n\ty := 2\n\tz := 3\n}\nvar s = []int{\n    1,\n}\n") == "\t"
    licence = "/*\n" + " * a licence line\n" * 20 + " */\n"             # ` * ` lines are not indentation
    assert indent_unit_of(licence + "int f() {\n\treturn 1;\n}\nint g() {\n\treturn 2;\n}\n") == "\t"


def test_lines_that_align_text_rather_than_indent_code_do_not_vote():
    """Tab-indented code with space-indented lines that are no code's indentation (a Makefile's continuation lines,
    a multi-line string's text) had its tabs turned into spaces in the minimal edits (the Makefile then failed:
    "missing separator"), or every answer refused (a helper's reproducers)."""
    make = ("SRCS = a.c \\\n    b.c \\\n    c.c \\\n    d.c\n\nall: prog\n\nprog: $(SRCS)\n\t$(CC) -o prog $(SRCS)\n"
            "\techo built\n\nclean:\n\trm -f prog\n")
    assert indent_unit_of(make) == "\t"
    sql = 'QUERY = """\n' + "".join(f"    SELECT col_{i}\n" for i in range(6)) + '"""\n\n'
    source = sql + "def f(a):\n\tif a:\n[[\t\tb = 1\n\t\treturn b\n]]\treturn 0\n"
    result, filled = selected(source, "\t\tb = 2\n\t\treturn b\n")
    assert filled == sql + "def f(a):\n\tif a:\n\t\tb = 2\n\t\treturn b\n\treturn 0\n"
    assert len(result.edits) == 1
    # gofmt indents with tabs: a raw string's spaced lines do not outvote them
    go = ("package m\n\nconst q = `\n" + "".join(f"    SELECT col_{i}\n" for i in range(6))
          + "`\n\nfunc f() {\n\tx := 1\n}\n")
    assert indent_unit_of(go, grammar="go") == "\t"
    # the editor's option decides between counts within a factor of two (2 tab lines, 3 spaced ones)
    mixed = "def f():\n\tif a:\n\t\tb()\ndef g():\n    c()\n    d()\n    e()\n"
    assert indent_unit_of(mixed) == "    " and indent_unit_of(mixed, insert_spaces=False) == "\t"
    assert indent_unit_of(mixed + "\tx()\n\ty()\n", insert_spaces=True) == "    "
    # ... unless the cursor's own line shows it (an editor set to spaces in a tab-indented file refused every fill)
    assert indent_style(mixed, insert_spaces=True, cursor_indent="\t")[0] == "\t"
    assert indent_style(mixed, insert_spaces=False, cursor_indent="    ")[0] == "    "
    # a space-indented Go file with one stray tab line keeps the spaces the editor asks for
    spaced_go = "func f() {\n    a()\n    b()\n    c()\n\td()\n}\n"
    assert indent_unit_of(spaced_go, grammar="go", insert_spaces=True) == "    "
    assert indent_unit_of(spaced_go, grammar="go") == "\t"


def test_a_go_file_with_no_indentation_yet_gets_gofmts_tabs():
    """An automatic suggestion has no formatting options: the first body written in a Go file keeps gofmt's tabs
    (they were rewritten to 4 spaces)."""
    source = "package main\n\nfunc add(a int, b int) int {<|>}\n"
    result, _ = inline(source, "\n\tsum := a + b\n\treturn sum\n", language_id="go")
    assert applied(source, result) == "package main\n\nfunc add(a int, b int) int {\n\tsum := a + b\n\treturn sum\n}\n"
    assert indent_unit_of("package main\n", grammar="go") == "\t"
    assert indent_unit_of("package main\n", insert_spaces=True, grammar="go") == "    "   # the editor said spaces
    assert indent_unit_of("x = 1\n", grammar="python") == "    "


def test_formatting_options_set_the_width_when_the_document_shows_none():
    assert indent_unit_of("x = 1\n", tab_size=2) == "  "
    assert indent_unit_of("x = 1\n", tab_size=8, insert_spaces=False) == "\t"
    assert indent_unit_of("func f() {\n\tx := 1\n}\n", tab_size=4, insert_spaces=True) == "\t"   # the file wins
    assert indent_unit_of("def f():\n  return 1\n", tab_size=4) == "    "   # the editor's width


@pytest.mark.parametrize("grammar, before, middle, inside", [
    ("python", "", 'x = 1  # a comment\ny = """\ntext\n"""\nz = 2', {2, 3}),
    ("javascript", "const s = `", "a\nb`; // c\nd /* e\nf */\ng", {1, 3}),
    ("lua", "", "a -- c\nb = [[x\ny]]\nz", {2}),
    ("go", "", "s := `never closed\na\nb", {1, 2}),   # a literal left open: every line after it
    (None, "", "a\n  b", set()),                      # literals unknown: none
])
def test_lines_inside_literals_are_found_in_one_scan(grammar, before, middle, inside):
    """A line comment's line break is the code's (the next line is code); one inside a string or block comment
    is not."""
    assert lines_in_literals(before, middle.split("\n"), grammar) == inside


@pytest.mark.parametrize("language, source, middle, expected", [
    # a closer inside a string, character literal or regex closes nothing: the editor's `)` is still needed
    ("c", "int f(char *s, int i) {\n  while (<|>)\n    i++;\n  return i;\n}\n", "s[i] != ')'",
     "int f(char *s, int i) {\n  while (s[i] != ')')\n    i++;\n  return i;\n}\n"),
    ("go", "package main\n\nfunc main() {\n\tprintln(<|>)\n}\n", '"a)", b',
     'package main\n\nfunc main() {\n\tprintln("a)", b)\n}\n'),
    ("javascript", "const ok = s.match(<|>);\n", "/\\)$/", "const ok = s.match(/\\)$/);\n"),
    ("javascript", "const ok = s.endsWith(<|>);\n", "')'", "const ok = s.endsWith(')');\n"),
    ("python", 'print(<|>)\n', '"a)", b', 'print("a)", b)\n'),
    # a bracket in a string before the cursor is no bracket the middle's closers close
    ("python", 'print("(", len(<|>))\n', "xs) + 1", 'print("(", len(xs) + 1)\n'),
])
def test_brackets_inside_literals_close_nothing(language, source, middle, expected):
    result, _ = inline(source, middle, language_id=language)
    assert applied(source, result) == expected


@pytest.mark.parametrize("language, source, middle, expected", [
    ("python", "def f(x):\n    # call g(<|>)\n", "x)", "def f(x):\n    # call g(x)\n"),
    ("javascript", "function f() {\n  // call g(<|>)\n}\n", "x)", "function f() {\n  // call g(x)\n}\n"),
    ("python", 'print("see f(<|>)")\n', "x)", 'print("see f(x)")\n'),
    ("javascript", "log(`see f(<|>)`);\n", "x)", "log(`see f(x)`);\n"),
])
def test_brackets_written_inside_a_comment_or_string_pair_with_its_text(language, source, middle, expected):
    """Asked for inside a comment or string, the model's text is that literal's: its `)` closes the `(` typed there,
    and replaces the editor's."""
    result, _ = inline(source, middle, language_id=language, invoked=True)
    assert applied(source, result) == expected


@pytest.mark.parametrize("language, source, middle, expected", [
    # an apostrophe in JSX text leaves the line after it code: the scope rule still cuts the suffix's closers
    ("typescriptreact", "function A() {\n  return (\n    <section>\n      <div>\n        <|>\n      </div>\n"
     "    </section>\n  );\n}\n", "<p>Don't panic</p>\n    </section>\n  );\n}", "<p>Don't panic</p>"),
    # a closer that calls what it closes ends the block written: it is the middle's own
    ("go", "package main\n\nfunc f() {\n\tdefer func() {<|>\n}\n",
     "\n\t\tif r := recover(); r != nil {\n\t\t\tprintln(r)\n\t\t}\n\t}()",
     "\n\t\tif r := recover(); r != nil {\n\t\t\tprintln(r)\n\t\t}\n\t}()"),
    ("javascript", "(function () {<|>\n", "\n  console.log(1);\n})();", "\n  console.log(1);\n})();"),
    # a line of a multi-line string that reads like the suffix's next line is the string's text
    ("lua", "function f()\n  <|>\nend\n", "local s = [[\nline one\nend\n]]\n  return s\nend",
     "local s = [[\nline one\nend\n]]\n  return s"),
    ("java", "class A {\n    String f() {\n        <|>\n    }\n}\n",
     'String s = """\n    }\n    """;\n        return s;\n    }', 'String s = """\n    }\n    """;\n        return s;'),
])
def test_literal_and_closer_lines_are_read_as_what_they_are(language, source, middle, expected):
    result, _ = inline(source, middle, language_id=language)
    assert result.text == expected, result.details.get("reason")


@pytest.mark.parametrize("language, source, middle, expected", [
    # the model's comment before the user's code on the line would comment that code out
    ("python", "def f(x):\n    y = <|> * 2\n", "x  # double", "def f(x):\n    y = x * 2\n"),
    ("c", "int f(int x) {\n    int y = <|> * 2;\n}\n", "x // double", "int f(int x) {\n    int y = x * 2;\n}\n"),
    ("python", "def f(x):\n    y = <|>  # note\n", "x  # twice", "def f(x):\n    y = x  # note\n"),
    # the word being typed written again from its start
    ("python", "def f(value):\n    print(val<|>)\n", "value", "def f(value):\n    print(value)\n"),
    ("python", "def f(valvalue):\n    print(val<|>)\n", "value", "def f(valvalue):\n    print(valvalue)\n"),
    # the line so far written again after a word a name follows
    ("javascript", "function f(value) {\n  const <|>\n}\n", "const x = value;",
     "function f(value) {\n  const x = value;\n}\n"),
    # the user's rest of the line written out with a `;` the line does without
    ("go", "package p\n\nfunc f() (int, error) {\n\treturn <|>err\n}\n", "0, err;",
     "package p\n\nfunc f() (int, error) {\n\treturn 0, err\n}\n"),
    ("typescript", "function f(a: number, b: number) {\n  return <|>b\n}\n", "a + b;",
     "function f(a: number, b: number) {\n  return a + b\n}\n"),
    # a keyword written twice in a row, though the grammar reads the second as a name; not `not not`
    ("lua", "local function f()\n  <|>\nend\n", "local local n = 1", "local function f()\n  local n = 1\nend\n"),
    ("python", "def f(x):\n    return <|>\n", "not not x", "def f(x):\n    return not not x\n"),
    # ... but not CSS's `auto auto`, a JS method named `static`, or prose in a comment
    ("css", "a {\n  grid-template-columns: <|>;\n}\n", "auto auto auto",
     "a {\n  grid-template-columns: auto auto auto;\n}\n"),
    ("javascript", "class A {\n  <|>\n}\n", "static static() { return 1; }",
     "class A {\n  static static() { return 1; }\n}\n"),
    ("python", "x = 1\n# Notes: <|>\n", "the final final draft", "x = 1\n# Notes: the final final draft\n"),
    # a whole middle before a rest that closes a call opened on a line above is no repeat of that rest
    ("python", "import numpy as np\nz = np.stack(\n    <|>, axis=0)\n", "np.mean(x, axis=0)",
     "import numpy as np\nz = np.stack(\n    np.mean(x, axis=0), axis=0)\n"),
    ("javascript", "return combine(\n  <|>, 0);\n", "compute(a, 0)", "return combine(\n  compute(a, 0), 0);\n"),
    # a bracket the middle opened, then the user's rest of the line, which closes it, written out again
    ("python", "import torch\ny = torch.<|>x, eps)\n", "bn(x, eps)", "import torch\ny = torch.bn(x, eps)\n"),
    ("javascript", "const y = foo.<|>a, b);\n", "bar(a, b)", "const y = foo.bar(a, b);\n"),
    ("go", "package p\n\nfunc f(t T) {\n\tt.Errorf(\"Expected <|> header.\")\n}\n", "redirect header.\")",
     "package p\n\nfunc f(t T) {\n\tt.Errorf(\"Expected redirect header.\")\n}\n"),
    ("c", "void f(void) {\n    bn_words(<|> in->words, width);\n}\n", "out, len, in->words, width);",
     "void f(void) {\n    bn_words(out, len, in->words, width);\n}\n"),
])
def test_a_line_the_model_wrote_around_the_users_own_text_keeps_that_text_once(language, source, middle, expected):
    result, _ = inline(source, middle, language_id=language, invoked=True)
    assert applied(source, result) == expected, result.details.get("reason")


@pytest.mark.parametrize("language, source, middle, expected", [
    # a body two levels under its header, a line a level under a finished statement, a Go file under a tab
    ("java", "class A {\n    int f(int v) {<|>\n    }\n}\n", "\n            int w = v;\n            return w + 1;",
     "class A {\n    int f(int v) {\n        int w = v;\n        return w + 1;\n    }\n}\n"),
    ("javascript", "function f() {\n  a();\n  <|>\n}\n", "    b();\n    c();",
     "function f() {\n  a();\n  b();\n  c();\n}\n"),
    ("go", "package p\n\nfunc g() {\n\tg()\n}\n\n<|>\n", "\tfunc f() {\n\t\treturn\n\t}",
     "package p\n\nfunc g() {\n\tg()\n}\n\nfunc f() {\n\treturn\n}\n"),
    ("python", "def g():\n    pass\n\n\ndef f(xs):<|>\n", "\n        for x in xs:\n            g()",
     "def g():\n    pass\n\n\ndef f(xs):\n    for x in xs:\n        g()\n"),
    ("typescript", "class A {\n  f() {}\n\n  /** Does g. */\n<|>\n}\n", "    g() {\n      return 1;\n    }",
     "class A {\n  f() {}\n\n  /** Does g. */\n  g() {\n    return 1;\n  }\n}\n"),
    # deeper where the code goes on: a continuation line, a header without braces, a chain or an operator that
    # starts the line; and a column-0 directive or comment above says nothing of the depth
    ("rust", "fn f(xs: Vec<i32>) -> Vec<i32> {\n    let v: Vec<i32> = xs\n    <|>\n    v\n}\n",
     "    .iter()\n        .map(|x| x + 1)\n        .collect();",
     "fn f(xs: Vec<i32>) -> Vec<i32> {\n    let v: Vec<i32> = xs\n        .iter()\n        .map(|x| x + 1)\n"
     "        .collect();\n    v\n}\n"),
    ("c", "int f(int c) {\n    int x = c\n<|>\n    return x;\n}\n", "        ? 1\n        : 2;",
     "int f(int c) {\n    int x = c\n        ? 1\n        : 2;\n    return x;\n}\n"),
    ("c", "int f(int x) {\n    if (x) {\n#ifdef DEBUG\n<|>\n#endif\n    }\n    return 0;\n}\n", "        log();",
     "int f(int x) {\n    if (x) {\n#ifdef DEBUG\n        log();\n#endif\n    }\n    return 0;\n}\n"),
    ("javascript", "function f(x) {\n  if (x) {\n// TODO\n<|>\n  }\n}\n", "    h();",
     "function f(x) {\n  if (x) {\n// TODO\n    h();\n  }\n}\n"),
    ("javascript", "function f() {\n  const x = a +\n  <|>\n}\n", "    b;",
     "function f() {\n  const x = a +\n    b;\n}\n"),
    ("c", "int f(int x) {\n  if (x)\n  <|>\n}\n", "    return 1;", "int f(int x) {\n  if (x)\n    return 1;\n}\n"),
])
def test_lines_written_deeper_than_the_context_allows_move_left_together(language, source, middle, expected):
    result, _ = inline(source, middle, language_id=language)
    assert applied(source, result) == expected, result.details.get("reason")


@pytest.mark.parametrize("source, middle", [
    ("def f(xs):\n    for x in xs:\n        if x:\n            continue\n<|>\n", "            g(x)\n            h(x)"),
    ("def f(xs):\n    for x in xs:\n        if x:\n            continue\n            <|>\n", "g(x)\n            h(x)"),
    ("def f(x):\n    if x:\n        return 1\n\n<|>\n", "        g(x)\n        h(x)"),
])
def test_python_code_right_under_a_return_or_continue_is_not_offered(source, middle):
    """It never runs: the model carried on the block the line above ended."""
    result, _ = inline(source, middle, language_id="python")
    assert result.text == "", applied(source, result)


def test_a_comment_right_under_a_return_is_still_offered():
    source = "def f(x):\n    if x:\n        return 1  # done\n        <|>\n"
    result, _ = inline(source, "# unreachable on purpose", language_id="python")
    assert result.text == "# unreachable on purpose", result.message


@pytest.mark.parametrize("language, source, middle, expected", [
    # the header on the cursor's line written again: kept, the loop ran inside itself
    ("python", "def total(xs):\n    s = 0\n    for x in xs:<|>\n    return s\n", "\n    for x in xs:\n        s += x",
     "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"),
    ("java", "class A {\n    int f(int v) {<|>\n    }\n}\n", "\n    int f(int v) {\n        return v + 1;",
     "class A {\n    int f(int v) {\n        return v + 1;\n    }\n}\n"),
    # the user went left of a block ended by `return`: a fill written a level deeper still starts at the cursor
    ("python", "def reshape(m, shape):\n    if isinstance(shape, int):\n        return g(m)\n    <|>\n",
     "    first, *dims = shape\n        return h(m, first)",
     "def reshape(m, shape):\n    if isinstance(shape, int):\n        return g(m)\n    first, *dims = shape\n"
     "    return h(m, first)\n"),
])
def test_a_fill_written_again_or_deeper_than_the_user_went_is_put_where_the_user_writes(language, source, middle,
                                                                                         expected):
    result, _ = inline(source, middle, language_id=language)
    assert applied(source, result) == expected, result.details.get("reason")


@pytest.mark.parametrize("language, source, middle, expected", [
    ("javascript", "function f() {<|>\n\nf();\n", " return 1; }", "function f() {\n    return 1;\n}\n\nf();\n"),
    ("javascript", "const f = () => {<|>\n", " return '}'; };", "const f = () => {\n    return '}';\n};\n"),
    ("javascript", "function f() {\n  g(function () {<|>\n}\n", " return 1; });",
     "function f() {\n  g(function () {\n    return 1;\n  });\n}\n"),
    ("go", "package p\n\nfunc f() int {<|>\n", " return 1 }", "package p\n\nfunc f() int {\n\treturn 1\n}\n"),
])
def test_a_body_written_on_the_openers_line_with_its_closer_goes_on_lines_of_its_own(language, source, middle,
                                                                                      expected):
    """` return 1; }` after `function f() {` was moved to a body line with the `}` still at its end."""
    result, _ = inline(source, middle, language_id=language)
    assert applied(source, result) == expected, result.details.get("reason")


@pytest.mark.parametrize("language, source, middle, expected", [
    ("javascript", "function f(a) {\n  const b = a * 2;\n  <|>\n}\n", "const b = a * 2;\n  return b;", "return b;"),
    ("go", "package main\n\nfunc f(a int) int {\n\tb := a * 2\n\t<|>\n}\n", "b := a * 2\n\treturn b", "return b"),
    ("python", "def f(a):\n    b = a * 2\n    <|>\n", "b = a * 2", ""),
    # short lines may come twice
    ("c", "int f(int i) {\n  i++;\n  <|>\n}\n", "i++;\n  return i;", "i++;\n  return i;"),
])
def test_a_completion_repeating_the_line_above_drops_that_line(language, source, middle, expected):
    result, _ = inline(source, middle, language_id=language)
    assert result.text == expected, result.details.get("reason")


def test_a_fill_of_a_selection_may_repeat_the_line_above():
    from infill.pipeline import InfillRequest, run_infill
    from test_infill_pipeline import ScriptedEngine
    text = "def f(a):\n    b = a * 2\n    b = a * 2\n    return b\n"
    start = text.index("    b", 12)
    end = text.index("    return")
    result = run_infill(InfillRequest(text=text, mode="fill", start=start, end=end, language_id="python"),
                        ScriptedEngine("    b = a * 2\n"))
    assert result.text == "    b = a * 2\n"


@pytest.mark.parametrize("grammar, code, kept, ending", [
    # a `/` after an arrow or a keyword an expression follows starts a regex; after a name or `)` it divides
    ("javascript", 'arr.filter(s => /"/.test(s))', "arr.filter(s =>    .test(s))", None),
    ("javascript", 'const y = x => x / 2; f("a")', "const y = x => x / 2; f(   )", None),
    ("javascript", 'switch (a) { case /"/.test(a): f(', "switch (a) { case    .test(a): f(", None),
    ("javascript", 'function* g() { yield /"/; }', "function* g() { yield    ; }", None),
    ("javascript", 'if (x.in / 2 > "a") {', 'if (x.in / 2 >    ) {', None),   # a property named `in` divides
    ("javascript", 'const main = 4; main / 2 + "x"', 'const main = 4; main / 2 +    ', None),
    # a backslash continuing a string's line escapes the whole CRLF, not only its \r
    ("c", 'x = "abc\\\r\ndef"; f(', "x =            ; f(", None),
])
def test_literals_are_found_where_they_start_and_end(grammar, code, kept, ending):
    from infill.literals import code_outside_literals
    assert code_outside_literals(grammar, code) == (kept, ending)


@pytest.mark.parametrize("code, blanked", [
    ("root.render(<p>Don't panic</p>)", "root.render(<p>           </p>)"),
    ("const el = (<b>it's {n}</b>)", "const el = (<b>     {n}</b>)"),
    ("<ul>{items.map(i => <li>{i}</li>)}</ul>)", "<ul>{items.map(i => <li>{i}</li>)}</ul>)"),
    ('const s = "<p>"; f(x)', 'const s = "<p>"; f(x)'),               # in a string: no tag
    ('x = <Foo a="1" b={c > 2} />; g("\'")', 'x = <Foo a="1" b={c > 2} />; g("\'")'),   # closes itself
    ("a < b && c > d", "a < b && c > d"),
    ("return (\n  <p>\n    it's\n  </p>\n);", "return (\n  <p>\n        \n  </p>\n);"),
])
def test_text_between_jsx_tags_is_blanked(code, blanked):
    from infill.literals import jsx_text_blanked
    assert jsx_text_blanked(code) == blanked


@pytest.mark.parametrize("middle, before, expected", [
    ("Bu", "        ", ""),                                   # alone on an indented line: does nothing
    ("\n        Bu", "    for line in lines:", ""),           # on the line after the opener
    ("total", "    ", ""),
    ("pass", "    ", "pass"),                                 # keywords are statements
    ("break", "        ", "break"),
    ("df", "", "df"),                                         # top level: a notebook cell shows it
    ("total += 1", "        ", "total += 1"),
    ("x", "    return ", "x"),                                # an expression after code on the line
    ("Bu\n        more()", "        ", "Bu\n        more()"),  # more than one line: the parse check's business
])
def test_a_bare_name_statement_in_a_body_is_dropped(middle, before, expected):
    from infill.clean import drop_bare_name_statement
    assert drop_bare_name_statement(middle, before, "python") == expected
    assert drop_bare_name_statement(middle, before, "javascript") == middle


@pytest.mark.parametrize("line_above", ["    return g(", "    xs = [", "    total = (", "        1,", "    d = {",
                                        "        one,  # first", "    return g(  # call it"])
def test_a_bare_name_inside_brackets_opened_above_is_an_argument_or_item_and_stays(line_above):
    from infill.clean import drop_bare_name_statement
    assert drop_bare_name_statement("a", "        ", "python", line_above) == "a"
    assert drop_bare_name_statement("\n        a", line_above, "python", line_above) == "\n        a"


@pytest.mark.parametrize("written, closers", [
    ('a" + g(x', '")'),      # its own `(` left open: the tail's `)` would close that one, not the call's
    ('a").b(c', '"))'),
])
def test_a_middle_leaving_its_own_bracket_open_after_the_string_does_not_take_the_tails(written, closers):
    from infill.clean import brackets_after_string
    assert brackets_after_string(written, closers, "python") is None


@pytest.mark.parametrize("middle,before,grammar,expected", [
    ("if x:\n    y = 1\nreturn y", "    ", "python", "if x:\n        y = 1\n    return y"),
    ("for v in xs:\n    total += v", "        ", "python", "for v in xs:\n            total += v"),
    ("if (x) {\n  y();\n}", "  ", "javascript", "if (x) {\n    y();\n  }"),
    ("for {\n\tstep()\n}", "\t", "go", "for {\n\t\tstep()\n\t}"),
    ("if x:\n        y = 1", "    ", "python", "if x:\n        y = 1"),           # absolute already: as written
    ("y = 1\nz = 2", "    ", "python", "y = 1\nz = 2"),                            # no block opened
    ("if x:\n    y = 1", "z = ", "python", "if x:\n    y = 1"),                    # mid-line: not the margin
    ("case 2:\n\t\tb()", "\t\t", "go", "case 2:\n\t\tb()"),                          # a label's statements
    ("private:\n    int b;", "    ", "cpp", "private:\n    int b;"),
    ("def f():\n    '''Doc\n  text'''", "    ", "python", "def f():\n        '''Doc\n  text'''"),   # text stays
])
def test_a_block_indented_from_the_cursor_is_moved_to_the_documents_depth(middle, before, grammar, expected):
    """`if x:` then `    y = 1` at a cursor in column 4: read as absolute, the body was no deeper than its opener
    and Python refused the fill."""
    assert shift_block_written_from_cursor(middle, before, grammar) == expected


@pytest.mark.parametrize("lines,expected", [
    (["if y then", "  a()", "else", "  b()", "end"], False),
    (["if y then", "  a()", "elseif z then", "  b()", "else", "  c()", "end"], False),
    (["if y then", "  a()", "else"], True),
    (["local function g()", "  return 1"], True),
    (["x = 1", "end"], False),
])
def test_lua_branches_do_not_open_blocks_of_their_own(lines, expected):
    """`else` / `elseif ... then` close the branch above as they open theirs: a whole `if ... else ... end` was
    counted as one block left open."""
    from infill.clean import lua_blocks_left_open
    assert lua_blocks_left_open(lines, "lua") is expected


TS_DOCUMENTED_MEMBERS_SUFFIX = "\n    /**\n     * B.\n     */\n    B = 1,\n}\n"


def test_a_binding_like_the_next_one_is_a_repeat_whatever_follows_its_block():
    """A declaration written twice is a redeclaration: only a control statement's block is told apart by what
    follows it."""
    suffix = "\n  const o = g({\n    a: 1,\n  });\n  return o;\n}\n"
    middle = "const o = g({\n    a: 1,\n  });\n  return o.x;"
    assert drop_repeated_suffix_lines(middle, suffix, before="  ", grammar="javascript") == ""


def test_a_member_with_a_doc_comment_like_the_next_ones_is_kept():
    """`/**` opens every member's doc comment alike: what is under it tells a new member from the next one written
    again. The new member was cut to nothing."""
    middle = "/**\n     * C.\n     */\n    C = 2,"
    assert drop_repeated_suffix_lines(middle, TS_DOCUMENTED_MEMBERS_SUFFIX, before="    ",
                                      grammar="typescript") == middle
    again = "/**\n     * B.\n     */\n    B = 1,"
    assert drop_repeated_suffix_lines(again, TS_DOCUMENTED_MEMBERS_SUFFIX, before="    ", grammar="typescript") == ""


def test_the_brackets_a_document_leaves_open_are_told_by_the_depth_of_the_closers_below():
    """A closer starting its line closes the open bracket of its kind at its depth: the `if` the user has not closed
    is the one left open, not the class (closers paired innermost first left the class open)."""
    from infill.clean import brackets_left_open

    prefix = "class A {\n  m() {\n    if (x) {\n      y();\n"
    text = prefix + "\n  }\n}\n"
    assert brackets_left_open(text, len(prefix), len(prefix), "javascript") == (("{", "    "),)
    # on one line, the innermost as ever; a closer of another kind than any open bracket: not told
    line = "f(g(x"
    assert brackets_left_open(line + "))\n", len(line), len(line), "javascript") == ()
    assert brackets_left_open("f(x\n]\n", 3, 3, "javascript") is None
