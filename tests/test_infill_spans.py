"""Span picking (infill.spans) and the prefix/suffix window around it (infill.context), on real grammars."""
from __future__ import annotations

import pytest

from infill.context import build_context, build_token_context, cut_prefix, cut_suffix, estimate_tokens
from infill.spans import Scope, find_span


def at(source: str, marker: str = "<|>") -> tuple[str, int]:
    offset = source.index(marker)
    return source.replace(marker, "", 1), offset


# ---- the enclosing scope --------------------------------------------------------------------------------------

@pytest.mark.parametrize("grammar,source,innermost,starts_with", [
    ("python", "import os\n\nclass A:\n    def run(self):\n        x = <|>\n\nprint(1)\n",
     "function_definition", "def run(self):"),
    ("python", "class A:\n    def run(self):\n        if x:\n            y()\n            <|>\n",
     "if_statement", "if x:"),
    ("javascript", "const a = 1;\nfunction add(x, y) {\n  return <|>\n}\nadd(1, 2);\n",
     "function_declaration", "function add(x, y)"),
    ("javascript", "class C {\n  m() {\n    for (const x of xs) {\n      <|>\n    }\n  }\n}\n",
     "for_in_statement", "for (const x of xs)"),
    ("go", "package main\n\nfunc add(a int, b int) int {\n\treturn <|>\n}\n", "function_declaration", "func add("),
    ("go", "package main\n\nfunc (s *S) Get() int {\n\tx := 1\n\t<|>\n\treturn x\n}\n",
     "method_declaration", "func (s *S) Get()"),
    ("rust", "struct S;\nimpl S {\n    fn get(&self) -> u32 {\n        <|>\n    }\n}\n", "function_item", "fn get("),
    ("typescript", "interface I {\n  a: number;\n}\nfunction g(): number {\n  return <|>\n}\n",
     "function_declaration", "function g()"),
    ("tsx", "const App = () => {\n  return <div><|></div>;\n};\n", "arrow_function", "() =>"),
    ("java", "class A {\n  int f() {\n    return <|>;\n  }\n}\n", "method_declaration", "int f()"),
    ("c", "int main(void) {\n    for (int i = 0; i < 3; i++) {\n        <|>\n    }\n}\n", "for_statement", "for ("),
    ("cpp", "namespace n {\nclass K {\n  void m() { <|> }\n};\n}\n", "function_definition", "void m()"),
    ("lua", "local function f(a)\n  if a then\n    <|>\n  end\nend\n", "if_statement", "if a then"),
    # scopes that are neither functions nor classes by name
    ("typescript", "namespace NS {\n  export const x = <|>\n}\n", "internal_module", "namespace NS"),
    ("tsx", "class A {\n  static {\n    <|>\n  }\n}\n", "class_static_block", "static {"),
    ("java", "@interface Note {\n  String <|>\n}\n", "annotation_type_declaration", "@interface"),
    ("java", "class A {\n  static {\n    <|>\n  }\n}\n", "static_initializer", "static {"),
    ("java", "class A {\n  Runnable r = new Runnable() {\n    public void run() {}\n    <|>\n  };\n}\n",
     "object_creation_expression", "new Runnable()"),
    ("rust", "fn f() {\n    let x = async move {\n        <|>\n    };\n}\n", "async_block", "async move"),
    ("rust", "fn f() {\n    unsafe {\n        <|>\n    }\n}\n", "unsafe_block", "unsafe {"),
    ("rust", "macro_rules! m {\n    () => { <|> };\n}\n", "macro_definition", "macro_rules!"),
    ("lua", "local t = {\n  a = 1,\n  <|>\n}\n", "table_constructor", "{"),
    ("cpp", "extern \"C\" {\nint <|>\n}\n", "linkage_specification", "extern \"C\""),
])
def test_innermost_enclosing_scope(grammar, source, innermost, starts_with):
    text, offset = at(source)
    span = find_span(grammar, text, offset, offset)
    assert span.span.node_type == innermost
    assert text[span.span.start:].startswith(starts_with)
    assert span.span.start < offset
    # The scope reaches the cursor, or ends just before it with only whitespace between (a Python body being written).
    assert offset <= span.span.end or not text[span.span.end:offset].strip()
    assert not span.in_string_or_comment


def test_scopes_are_listed_innermost_first():
    text, offset = at("class A:\n    def run(self):\n        if x:\n            y()\n            <|>\n")
    span = find_span("python", text, offset, offset)
    assert [s.node_type for s in span.scopes] == ["if_statement", "function_definition", "class_definition"]
    assert all(s.kind in ("block", "function", "class") for s in span.scopes)


def test_dedented_cursor_leaves_the_inner_block_but_not_the_function():
    text, offset = at("def run(self):\n    if x:\n        y()\n    <|>\n")
    assert find_span("python", text, offset, offset).span.node_type == "function_definition"


def test_column_zero_after_a_function_is_top_level():
    text, offset = at("def f():\n    return 1\n<|>\n")
    span = find_span("python", text, offset, offset)
    assert span.span is None and span.scopes == []


def test_cursor_right_before_a_function_is_not_inside_it():
    text, offset = at("x = 1\n<|>def f():\n    return 1\n")
    assert find_span("python", text, offset, offset).span is None


def test_a_selection_is_enclosed_only_by_scopes_holding_all_of_it():
    text = "def a():\n    return 1\n\ndef b():\n    return 2\n"
    inside = find_span("python", text, text.index("return 1"), text.index("return 1") + 8)
    assert inside.span.node_type == "function_definition" and text[inside.span.start:].startswith("def a")
    across = find_span("python", text, text.index("return 1"), text.index("return 2"))
    assert across.span is None


def test_scope_offsets_count_characters_not_bytes():
    text, offset = at('s = "héllo wörld ✓"\ndef f():\n    return <|>\n')
    span = find_span("python", text, offset, offset)
    assert text[span.span.start:span.span.end].startswith("def f():")
    assert text[span.statement.start:].startswith("return")


def test_statement_at_the_cursor():
    text, offset = at("function f() {\n  const total = <|>a + b;\n}\n")
    span = find_span("javascript", text, offset, offset)
    assert span.statement.node_type == "lexical_declaration"


def test_existing_parse_errors_are_counted():
    assert find_span("python", "def f(:\n", 0, 0).error_count >= 1
    assert find_span("python", "def f():\n    pass\n", 0, 0).error_count == 0


# ---- strings and comments ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("grammar,source,quiet", [
    ("python", 'x = "abc<|>def"\n', True),
    ("python", "# a comment<|>\nx = 1\n", True),               # end of a line comment: still writing it
    ("python", 'def f():\n    """Doc<|> string."""\n', True),
    ("python", 'x = f"a {<|>} b"\n', False),                  # inside an f-string's braces is code
    ("python", 'x = "abc"<|>\n', False),                      # just after the closing quote
    ("rust", "// note<|>\nlet x = 1;\n", True),
    ("javascript", "const s = `a ${<|>} b`;\n", False),
    ("javascript", "const s = `a <|> b`;\n", True),
    ("c", "/* block */<|>\nint x;\n", False),                 # a closed block comment is over
    ("go", 'package main\nvar s = "x<|>"\n', True),
    # A string being typed without autopairs: tree-sitter sees an ERROR, not a string, until it is closed.
    ("python", 'def f():\n    print("hello wor<|>\n    return 1\n', True),
    ("python", "def f():\n    x = f'total {n} ite<|>\n", True),
    ("python", "def f():\n    x = f'total {n<|>\n", False),      # typing code in the f-string's braces
    ("python", 'def f():\n    x = g("a", <|>\n', False),       # the strings on the line are closed
    ("python", "def f():\n    x = 1  # it's not<|>\n", True),
    ("javascript", 'function f() {\n  console.log("hello wor<|>\n}\n', True),
    ("javascript", "function f() {\n  const s = `a ${b} c<|>\n}\n", True),
    ("javascript", 'function f() {\n  s = s.replace(/"/g, <|>\n}\n', False),   # a quote in a regex literal
    ("typescript", "function f(): void {\n  let s: string = 'ab<|>\n}\n", True),
    ("go", 'func f() {\n\tfmt.Println("hello wor<|>\n}\n', True),
    ("rust", "fn f<'a>(x: &'a str) {\n    println!(\"hello wor<|>\n}\n", True),
    ("rust", "fn f<'a>(x: &'a str) -> &'a str {\n    g(x, <|>\n}\n", False),  # lifetimes are not quotes
    ("c", 'int main() {\n  printf("hello wor<|>\n}\n', True),
    ("c", "int main() {\n  c = '\"'; f(<|>\n}\n", False),    # a quote in a char literal
    ("cpp", "int main() {\n  /* not done<|>\n}\n", True),
    ("java", 'class A { void f() {\n  String s = "hello wor<|>\n} }\n', True),
    ("lua", 'function f()\n  print("hello wor<|>\nend\n', True),
    # ... and its later lines: a docstring or block comment opened above and not closed yet
    ("python", 'def f():\n    """\n    Compute the <|>\n\ndef g():\n    return 1\n', True),
    ("javascript", "/**\n * Returns the <|>\nfunction f() {}\n", True),
    # a block comment with no `*/` anywhere after it: JavaScript's grammar reads `/* ...` as a broken regex
    ("javascript", "function f() {}\n/* Computes the total of <|>\n", True),
    ("typescript", "x = 1;\n/* abc <|>", True),
    ("tsx", "x = 1; /* abc */ y = /* note <|>\n", True),
    ("javascript", "const r = /[*]+/g; f(<|>\n", False),   # a real regex with a star in it
    # prose that parses as statements of its own ("with ... and" is a with statement), code below it
    ("python", 'class A:\n    """\n    A thing that does stuff\n    with many words here\n    and <|>\n'
               "    def f(self):\n        return 1\n", True),
    # lone-CR line ends: a quote left open on an earlier line ends there
    ("python", 'def f(:\r    s = "don\'t\r    t = g(<|>\r', False),
    ("javascript", "const a = 1;\rconst b = 'x\rfoo(<|>\r", False),
    ("python", 'def f():\r    print("hello wor<|>\r    return 1\r', True),
    # A line that closes a multi-line string and goes on with code is code (the SQL-query pattern).
    ("python", 'def f(cur, uid):\n    cur.execute("""\n        SELECT 1 WHERE id = %s\n    """, (uid, <|>\n', False),
    ("javascript", "async function f(db, id) {\n  await db.query(`\n    SELECT 1\n  `, [id, <|>\n}\n", False),
    ("java", 'class A { void f() {\n  String s = """\n    hi\n    """.formatted(<|>\n} }\n', False),
    # JSX: an apostrophe in the text and `</a>` are no string or regex
    ("tsx", "function A() {\n  return <p>You don't have {count<|>\n}\n", False),
    ("tsx", 'function A() {\n  return <nav><a href="/">Home</a> {user && <|>\n}\n', False),
    # an unfinished line elsewhere in the function does not make this complete line suspect
    ("tsx", "function A() {\n  const x = ;\n  return <p>You don't have {count<|>}</p>;\n}\n", False),
    ("rust", 'fn f() {\n    let s = r#"a"b"#; g(<|>\n}\n', False),   # a raw string parsed whole
    ("lua", "function f()\n  --[[ note ]] g(<|>\nend\n", False),
    # Lua's level long brackets close only at the same level
    ("lua", "function f()\n  local s = [==[ a ]] still the <|>\nend\n", True),
    ("lua", "function f()\n  --[=[ a note that ]] goes <|>\nend\n", True),
    ("lua", "function f()\n  local s = [==[ a ]] b ]==] .. g(<|>\nend\n", False),
    # Raw strings and text blocks still being typed: no escapes, closed only by their own delimiter
    ("cpp", 'const char* q = R"(\n  SELECT * FROM users WHERE <|>\nint main() {}\n', True),
    ("cpp", 'const char* q = u8R"sql(\n  SELECT ")" * <|>\nint main() {}\n', True),
    ("cpp", 'int main() {\n  auto q = R"(a)" + f(<|>\n}\n', False),
    ("rust", 'fn f() {\n    let p = r#"he said "hi" to <|>\n}\n', True),
    ("rust", 'fn f() {\n    let p = r"C:\\dir\\"; g(<|>\n}\n', False),   # a backslash escapes nothing
    ("java", 'class A {\n    String q = """\n        SELECT * FROM users WHERE <|>\n    int n = 1;\n}\n', True),
    # C and C++ directives: their argument parses as one opaque node, comments and strings in it unseen
    ("c", "#define MAX_USERS 64 // the most the <|>\nint n;\n", True),
    ("cpp", "#pragma once // include <|>\n", True),
    ("c", '#define GREETING "hello wor<|>\n', True),
    ("c", "#error this build needs <|>\n", True),     # prose
    ("c", "#if X\n#  error this build needs <|>\n#endif\n", True),   # indented inside a conditional
    ("c", "    #define X 1 /* the <|>\n", True),
    ("c", "#define MAX(a, b) ((a) > (b) ? <|>\n", False),
    ("c", '#define GREETING "hi" <|>\n', False),
    # a backslash at a line's end joins the next line to a `//` comment, in a macro or out of one
    ("c", "#define F(x) \\\n  g(x) // twice \\\n  the <|>\nint n;\n", True),
    ("c", "#define F(x) \\\r\n  g(x) // twice \\\r\n  the <|>\r\nint n;\r\n", True),
    ("cpp", "int f() {\n  // a note \\\n  that goes <|>\n}\n", True),
    ("javascript", "function f() {\n  // a note \\\n  g(<|>\n}\n", False),
])
def test_strings_and_comments(grammar, source, quiet):
    text, offset = at(source)
    assert find_span(grammar, text, offset, offset).in_string_or_comment is quiet


@pytest.mark.parametrize("typed", ['"""Return the sum\n    of the ', '"""Return the sum\n    of the\n    ',
                                   '"""Return the sum\n\n    ', "x = '''one\n    two "])
def test_a_string_being_written_at_the_end_of_a_long_file_is_seen(typed):
    """The cursor in blank space at the end of the file is in no node but the module, whose start lay out of the
    scan's reach in a file over 8 kB: the unclosed docstring went unseen, and prose got code suggestions."""
    above = "".join(f"def helper_{i}(x):\n    return x + {i}\n\n\n" for i in range(300))
    text = above + "def f(a, b):\n    " + typed
    assert find_span("python", text, len(text), len(text)).in_string_or_comment



# ---- the context window -----------------------------------------------------------------------------------------

def test_small_document_is_seen_whole():
    text, offset = at("def f(a, b):\n    return <|>\n\nprint(f(1, 2))\n")
    context = build_context(text, offset, offset)
    assert context.prefix == "def f(a, b):\n    return "
    assert context.suffix == "\n\nprint(f(1, 2))\n"
    assert (context.prefix_start, context.suffix_end) == (0, len(text))


def test_budgets_cut_at_line_boundaries():
    text = "".join(f"line {i:04d}\n" for i in range(1000))   # 10 characters a line
    offset = text.index("line 0500") + 5                      # mid-line cursor
    context = build_context(text, offset, offset, prefix_budget=104, suffix_budget=57)
    assert context.prefix.endswith("line ") and context.prefix.startswith("line 0491\n")
    assert len(context.prefix) <= 104 and text[context.prefix_start - 1] == "\n"
    assert context.suffix.startswith("0500\n") and context.suffix.endswith("line 0505\n")
    assert len(context.suffix) <= 57


def test_one_very_long_line_is_cut_mid_line():
    text = "x" * 5000
    assert cut_prefix(text, 4000, 3000) == 1000
    assert cut_suffix(text, 1000, 1000) == 2000


def test_the_cursors_own_long_line_is_cut_between_words():
    """A minified line longer than the budget began the prefix with a name's second half (`Value1489),`) and
    ended the suffix with a name's first half: each cut goes to a word's edge, by a blank or else a separator."""
    line = ",".join(f"someFunctionName{i}(argumentValue{i})" for i in range(3000))
    for text in (line, line.replace(",", ", ")):
        cursor = len(text) // 2
        begin, stop = cut_prefix(text, cursor, 600), cut_suffix(text, cursor, 600)
        assert cursor - begin >= 300 and stop - cursor >= 300
        assert not (text[begin - 1].isalnum() and text[begin].isalnum())
        assert not (text[stop - 1].isalnum() and text[stop].isalnum())
    assert cut_prefix("x" * 5000, 4000, 3000) == 1000   # no word edge to go to: cut where the budget ends


def test_a_long_line_next_to_the_cursor_lends_its_end_or_start_instead_of_nothing():
    """Whole lines only, a 250-token header right above the cursor left the model an empty prefix (and the line
    below, an empty suffix): now it reads the end of the line above and the start of the line below, from a word."""
    header = "    writer.writerow([" + ", ".join(f'"column_{i}"' for i in range(60)) + "])\n"
    text = "def export(rows):\n" + header + "    " + "\n" + header + "    return rows\n"
    cursor = text.index("\n", len("def export(rows):\n") + len(header)) 
    begin = cut_prefix(text, cursor, 60, words)
    assert text[begin:cursor].endswith('"column_59"])\n    ') and words(text[begin:cursor]) <= 60
    assert text[begin - 1] == " "                                  # from the start of a word
    stop = cut_suffix(text, cursor, 60, words)
    assert text[cursor:stop].startswith("\n    writer.writerow([") and words(text[cursor:stop]) <= 60
    assert text[stop] == " " and stop < text.index("return")
    # a line that does not fit once half the budget is used still ends the prefix at its line break
    short = "".join(f"v{i} = {i}\n" for i in range(10)) + header + "".join(f"w{i} = {i}\n" for i in range(10))
    at = len(short)
    assert short[cut_prefix(short, at, 60, words) - 1] == "\n"


def test_a_long_line_without_blanks_lends_its_end_from_a_separator():
    """Data, minified code: with no blank on the line above, its end is cut after a separator, not dropped."""
    data = "data = [" + ",".join(str(i) for i in range(3000)) + "]\n"
    text = data + "total = sum(da"
    context = build_token_context(text, len(text), len(text), None, 300, estimate_tokens)
    assert context.prefix.endswith("]\ntotal = sum(da") and len(context.prefix) > 200   # was "total = sum(da" alone
    assert text[context.prefix_start - 1] == "," and estimate_tokens(context.prefix) <= 300


def test_a_prefix_cut_in_a_long_line_stays_put_while_the_user_types():
    """Each move of the prefix's start costs the engine the whole prompt: a start in the middle of a long line
    above is kept while it fits (before: a new word almost every word typed)."""
    header = "    writer.writerow([" + ", ".join(f'"column_{i}"' for i in range(120)) + "])\n"
    base = "def export(rows):\n" + "    x = 1\n" * 5 + header
    typed = "    result = compute(rows, "
    starts, previous = [], None
    for k in range(len(typed) + 1):
        text = base + typed[:k] + "\n    return rows\n"
        context = build_token_context(text, len(base) + k, len(base) + k, None, 400, words,
                                      previous_prefix_start=previous, typing=True)
        assert words(context.prefix) + words(context.suffix) <= 400 - 3
        starts.append(previous := context.prefix_start)
    assert len(base) - len(header) < starts[0] < len(base) and len(set(starts)) <= 2, starts


def test_a_kept_start_in_a_long_line_is_cut_again_once_an_edit_above_moves_a_word_over_it():
    """An element shortened earlier in the list above: the kept offset fell inside a word (`4', 'item_065'`), the
    prompt opening on half a string."""
    data = "DATA = [" + ", ".join(f"'item_{i:03d}'" for i in range(80)) + "]\n"
    text = "import os\n" + data + "def f():\n    return "
    first = build_token_context(text, len(text), len(text), None, 120, words, typing=True)
    assert text[first.prefix_start - 1] == " "
    edited = text.replace("'item_000', ", "'x', ", 1)
    second = build_token_context(edited, len(edited), len(edited), None, 120, words, typing=True,
                                 previous_prefix_start=first.prefix_start)
    assert edited[second.prefix_start - 1] == " " and edited[second.prefix_start] == "'"


def test_a_line_with_no_word_to_start_from_is_left_out_not_cut_mid_word():
    text = "x = 1\n" + "A" * 300 + "\ny = "
    begin = cut_prefix(text, len(text), 40)
    assert text[begin:] == "y = "


def test_a_crlf_pair_is_never_cut_in_two():
    """The cursor's line longer than the budget: the suffix could end on its \\r, the \\n left out."""
    line = "    return compute(" + ", ".join(f"arg{i}" for i in range(20)) + ")\r\n"
    text = "def f():\r\n" + line + "x = 1\r\n"
    for measure in (len, words):
        for budget in range(1, 200):
            stop = cut_suffix(text, len("def f():\r\n"), budget, measure)
            assert text[stop - 1:stop + 1] != "\r\n", (measure, budget)
            begin = cut_prefix(text, len(text) - 2, budget, measure)
            assert text[begin - 1:begin + 1] != "\r\n", (measure, budget)


def test_a_suffix_cut_in_tab_indented_code_ends_at_a_word():
    text = "x = (\n\t" + "\t".join(f"value_{i}," for i in range(40)) + "\n)\n"
    stop = cut_suffix(text, len("x = ("), 30, words)
    assert text[stop] == "\t" and text[stop - 1] == ","


def test_defaults_are_3000_and_1000_characters():
    text = "".join(f"value_{i:05d} = {i}\n" for i in range(2000))
    offset = len(text) // 2
    context = build_context(text, offset, offset)
    assert 2900 < len(context.prefix) <= 3000 and 900 < len(context.suffix) <= 1000


def enclosing(text: str, offset: int) -> list[Scope]:
    return find_span("python", text, offset, offset).scopes


def test_the_enclosing_function_is_kept_whole_by_moving_budget():
    # A function whose body after the cursor is longer than the suffix budget, but which fits both budgets together.
    head = "".join(f"top_{i} = {i}\n" for i in range(40))
    body_after = "".join(f"    y_{i} = {i}\n" for i in range(14))
    text, offset = at(head + "def f():\n    x = <|>1\n" + body_after + "\nz = 0\n")
    scopes = enclosing(text, offset)
    context = build_context(text, offset, offset, scopes, prefix_budget=120, suffix_budget=160)
    function_end = scopes[0].end
    assert context.kept_whole is scopes[0]
    assert context.suffix_end >= function_end and context.suffix.endswith("y_13 = 13\n")
    assert context.prefix.startswith("top_") and "def f():" in context.prefix
    assert len(context.prefix) + len(context.suffix) <= 120 + 160
    # Without the scope the same budgets cut the function short.
    plain = build_context(text, offset, offset, None, prefix_budget=120, suffix_budget=160)
    assert plain.suffix_end < function_end and plain.kept_whole is None


def test_the_prefix_borrows_budget_to_reach_the_function_start():
    body_before = "".join(f"    a_{i} = {i}\n" for i in range(15))
    text, offset = at("import os\n\ndef f():\n" + body_before + "    <|>\n")
    scopes = enclosing(text, offset)
    context = build_context(text, offset, offset, scopes, prefix_budget=100, suffix_budget=300)
    assert context.prefix.startswith("def f():\n")
    assert context.kept_whole.node_type == "function_definition"


def test_the_largest_scope_that_fits_is_kept():
    text, offset = at("class A:\n    def m(self):\n        return <|>\n\n    def n(self):\n        pass\n")
    scopes = enclosing(text, offset)
    assert build_context(text, offset, offset, scopes).kept_whole.node_type == "class_definition"
    tight = build_context(text, offset, offset, scopes, prefix_budget=40, suffix_budget=5)
    assert tight.kept_whole.node_type == "function_definition"
    assert tight.prefix.startswith("    def m(self):")


def test_fill_context_excludes_the_selection():
    text = "a = 1\nb = 2\nc = 3\n"
    start, end = text.index("b = 2"), text.index("c = 3")
    context = build_context(text, start, end)
    assert context.prefix == "a = 1\n" and context.suffix == "c = 3\n"


# ---- token budgets ------------------------------------------------------------------------------------------------

def words(text: str) -> int:
    """A stand-in tokenizer for the tests: one token per word or symbol, one per line break."""
    import re
    return len(re.findall(r"\w+|[^\w\s]|\n", text))


def test_token_budget_gives_the_suffix_a_third_and_the_prefix_the_rest():
    text = "".join(f"v{i} = {i}\n" for i in range(200))            # 4 tokens a line
    offset = text.index("v100 =")
    context = build_token_context(text, offset, offset, None, max_tokens=60, count=words)
    assert context.suffix_tokens <= 20 and context.suffix.startswith("v100 = 100\n")
    assert context.prefix_tokens + context.suffix_tokens <= 60
    assert context.prefix_tokens >= 60 - context.suffix_tokens - 4      # only a part of one line is left over
    assert context.prefix.endswith("v99 = 99\n") and context.prefix_start == text.index(context.prefix)
    assert (context.prefix_tokens, context.suffix_tokens) == (words(context.prefix), words(context.suffix))


def test_a_short_suffix_leaves_its_share_to_the_prefix():
    text = "".join(f"v{i} = {i}\n" for i in range(200)) + "end()\n"
    offset = text.index("end()")
    context = build_token_context(text, offset, offset, None, max_tokens=60, count=words)
    assert context.suffix == "end()\n" and context.prefix_tokens > 50


def test_token_budget_is_spent_on_the_nearest_lines_first():
    # Long lines far away, short lines near the cursor: the near ones are all kept.
    far = "".join(f"far_{i} = " + " + ".join(["x"] * 30) + "\n" for i in range(5))
    near = "".join(f"n{i} = {i}\n" for i in range(10))
    text, offset = at(far + near + "result = <|>\n")
    context = build_token_context(text, offset, offset, None, max_tokens=60, count=words)
    assert context.prefix.startswith("n0 = 0\n") and "far_" not in context.prefix


def test_a_prefix_does_not_open_on_the_tail_of_a_cut_statement():
    text, offset = at("items = [\n" + "".join(f"    {i},\n" for i in range(6)) + "]\n.sort()\ntotal = <|>\n")
    cut = build_token_context(text, offset, offset, None, max_tokens=9, count=words)
    assert not cut.prefix.lstrip().startswith(("]", ".", ")"))


def test_the_enclosing_function_is_kept_whole_in_tokens_when_it_fits():
    head = "".join(f"top_{i} = {i}\n" for i in range(40))
    text, offset = at(head + "def f(a):\n    b = a + 1\n    return <|>\n\nz = 0\n")
    scopes = find_span("python", text, offset, offset).scopes
    context = build_token_context(text, offset, offset, scopes, max_tokens=40, count=words)
    assert context.kept_whole is not None and context.kept_whole.node_type == "function_definition"
    assert "def f(a):" in context.prefix
    tiny = build_token_context(text, offset, offset, scopes, max_tokens=6, count=words)
    assert tiny.kept_whole is None and "def f" not in tiny.prefix


def test_one_line_longer_than_the_budget_is_cut_mid_line_in_tokens():
    text = "x = " + " + ".join(["a"] * 400)
    context = build_token_context(text, len(text), len(text), None, max_tokens=30, count=words)
    assert 0 < context.prefix_tokens <= 30 and text.endswith(context.prefix)


def test_the_estimate_counts_about_three_and_a_half_characters_a_token():
    assert estimate_tokens("") == 0 and estimate_tokens("abcdefg") == 2 and estimate_tokens("x" * 35) == 10


def test_a_minified_line_is_never_measured_past_what_the_budget_could_hold():
    """A 1.8 MB one-line file once cost seconds of tokenizer calls per keystroke: each measured slice spanned the
    whole line. A token budget of N cannot hold more than N * MAX_CHARS_PER_TOKEN characters, so nothing longer is
    measured."""
    from infill.context import MAX_CHARS_PER_TOKEN
    text = "var a=" + ",".join(f"f{i}(x{i})" for i in range(20000)) + ";"
    longest = []

    def counted(piece: str) -> int:
        longest.append(len(piece))
        return estimate_tokens(piece)
    middle = len(text) // 2
    context = build_token_context(text, middle, middle, None, 90, counted)
    assert max(longest) <= 90 * MAX_CHARS_PER_TOKEN
    assert context.prefix and context.suffix and text[context.prefix_start:middle] == context.prefix
    assert context.prefix_tokens + context.suffix_tokens <= 90


# ---- a steady prefix start while typing (ContextMemory.prefix_start) ---------------------------------------------

from infill.context import PREFIX_SLACK, steady_prefix_start  # noqa: E402
from infill.plan import ContextMemory  # noqa: E402

NUMBERED = "".join(f"v{i} = {i}\n" for i in range(100))            # 4 tokens a line


def test_the_last_prefix_start_is_kept_while_it_fits_well():
    cursor, budget = NUMBERED.index("v60 ="), 40
    fresh = cut_prefix(NUMBERED, cursor, budget, words)
    later = NUMBERED.index("v52 =")                                 # two lines (8 tokens) short of the budget
    assert fresh == NUMBERED.index("v50 =") and words(NUMBERED[later:cursor]) == 32
    assert steady_prefix_start(NUMBERED, cursor, budget, words, fresh, later) == later
    # Far shorter than the budget allows (the cursor moved on): cut afresh.
    assert steady_prefix_start(NUMBERED, cursor, budget, words, fresh, NUMBERED.index("v58 =")) == fresh


def test_a_start_that_no_longer_fits_is_cut_with_room_to_type():
    cursor, budget = NUMBERED.index("v60 ="), 40
    fresh = cut_prefix(NUMBERED, cursor, budget, words)
    moved = steady_prefix_start(NUMBERED, cursor, budget, words, fresh, NUMBERED.index("v40 ="))
    assert moved > fresh and words(NUMBERED[moved:cursor]) <= budget - int(budget * PREFIX_SLACK)
    assert NUMBERED[moved - 1] == "\n"


def test_the_first_cut_of_a_typing_series_leaves_room_so_the_next_request_keeps_its_first_line():
    cursor, budget = NUMBERED.index("v60 ="), 40
    typed_line = "w = 1\n"                                          # 3 tokens typed before the next request
    after = NUMBERED[:cursor] + typed_line + NUMBERED[cursor:]
    cursor_after = cursor + len(typed_line)
    starts = {}
    for typing in (False, True):                                    # a command's cut / an inline request's
        first = build_token_context(NUMBERED, cursor, cursor, None, budget, words, typing=typing)
        second = build_token_context(after, cursor_after, cursor_after, None, budget, words,
                                     previous_prefix_start=first.prefix_start, typing=True)
        assert first.prefix_tokens + first.suffix_tokens <= budget
        starts[typing] = first.prefix_start, second.prefix_start
    assert starts[False][0] < starts[True][0]                       # the full cut uses the whole budget ...
    assert starts[False][1] != starts[False][0]                     # ... so typing a line moves the first line
    assert starts[True][1] == starts[True][0]                       # the cut with room keeps it
    # A prefix the budget does not cut starts at the top either way.
    short = NUMBERED.index("v3 =")
    assert build_token_context(NUMBERED, short, short, None, budget, words, typing=True).prefix_start == 0


@pytest.mark.parametrize("jumped_to", ["v30 =", "v76 ="])   # above the old start / a few lines up, old start unused
def test_after_a_jump_in_the_same_document_the_new_cut_also_leaves_room_to_type(jumped_to):
    budget = 40
    before = NUMBERED.index("v80 =")
    previous = build_token_context(NUMBERED, before, before, None, budget, words, typing=True).prefix_start
    cursor = NUMBERED.index(jumped_to)
    first = build_token_context(NUMBERED, cursor, cursor, None, budget, words, previous_prefix_start=previous,
                                typing=True)
    typed_line = "w = 1\n"
    after = NUMBERED[:cursor] + typed_line + NUMBERED[cursor:]
    second = build_token_context(after, cursor + len(typed_line), cursor + len(typed_line), None, budget, words,
                                 previous_prefix_start=first.prefix_start, typing=True)
    assert first.prefix_start != previous and second.prefix_start == first.prefix_start


def test_typing_at_the_end_of_a_line_longer_than_the_budget_keeps_the_prefix_start():
    """A minified file: the cursor's own line outgrows any budget. The cut was made again at each key, a fixed
    distance back, so the prompt's first token moved every key or two (the whole prompt encoded each time) and
    began inside a number."""
    line = "DATA = [" + ", ".join(str(41111 + 7 * i) for i in range(400))
    budget, starts = 40, []
    previous = None
    for typed in range(8):   # key by key: ", 512, 5"
        text = line + ", 512, 5"[:typed]
        cursor = len(text)
        context = build_token_context(text, cursor, cursor, None, budget, words, previous_prefix_start=previous,
                                      typing=True)
        assert context.prefix_tokens <= budget and text[context.prefix_start - 1] == " "   # from a word
        previous = context.prefix_start
        starts.append(previous)
    assert len(set(starts)) <= 2, starts   # kept while it fits: one re-cut at most in eight keys


@pytest.mark.parametrize("tail", ['"', '", ', '",'])
def test_a_long_literal_whose_only_separator_is_at_the_cursor_keeps_its_prefix(tail):
    """Moving a mid-line cut to the first word start jumped to the cursor when the line's only separator was the
    literal's closing quote: the model read no prefix at all."""
    text = 'ICON = "' + "QUJD" * 1000 + tail
    cursor = len(text)
    context = build_token_context(text, cursor, cursor, None, 192, typing=True)
    assert context.prefix_tokens * 2 >= 192 - int(192 * PREFIX_SLACK)


def test_moving_back_along_a_long_line_cuts_the_prefix_again():
    """The kept start of a long line held a few tokens once the cursor moved back towards it (a click, a run of
    backspaces): it is kept only while it holds most of the budget, as a line start is."""
    line = "DATA = [" + ", ".join(str(41111 + 7 * i) for i in range(400))
    first = build_token_context(line, len(line), len(line), None, 40, words, typing=True)
    cursor = first.prefix_start + 12
    moved = build_token_context(line, cursor, cursor, None, 40, words, previous_prefix_start=first.prefix_start,
                                typing=True)
    assert moved.prefix_start < first.prefix_start
    assert moved.prefix_tokens + moved.suffix_tokens >= 40 - 2 * int(40 * PREFIX_SLACK)   # (it held 3 tokens)


@pytest.mark.parametrize("previous", [-1, 10**6, 3])   # before the text, past the cursor, not a line start
def test_a_start_that_is_no_line_start_before_the_cursor_is_ignored(previous):
    cursor = NUMBERED.index("v60 =")
    fresh = cut_prefix(NUMBERED, cursor, 40, words)
    assert steady_prefix_start(NUMBERED, cursor, 40, words, fresh, previous) == fresh


def remembered_start(text: str, cursor: int, budget: int = 40) -> ContextMemory:
    """What a request at `cursor` leaves in the document's memory (its details, as the server keeps them)."""
    start = build_token_context(text, cursor, cursor, None, budget, words, typing=True).prefix_start
    return ContextMemory.of({"context": {"prefix_start": start}}, text)


@pytest.mark.parametrize("edit, inserted", [
    ((0, 0, 0, 0), "import os\n"),              # a line added at the top
    ((2, 4, 2, 4), "10"),                        # a number typed in a line above
    ((1, 0, 3, 0), ""),                          # two lines deleted above
    ((0, 0, 0, 0), "import os\r\nimport re\r"),  # other line breaks
])
def test_an_edit_above_the_prefix_moves_its_remembered_start_with_it(edit, inserted):
    """The start was an offset kept as it was: an import added above pointed it into another line, so the next
    request cut its prefix afresh and the engine read the whole prompt again."""
    memory = remembered_start(NUMBERED, NUMBERED.index("v59 ="))
    cursor = NUMBERED.index("v60 =")   # a line on, where the remembered start still fits well
    first_line = NUMBERED[memory.prefix_start:NUMBERED.index("\n", memory.prefix_start)]
    lines = NUMBERED.split("\n")
    (l0, c0, l1, c1) = edit
    start = sum(len(line) + 1 for line in lines[:l0]) + c0
    end = sum(len(line) + 1 for line in lines[:l1]) + c1
    edited = NUMBERED[:start] + inserted + NUMBERED[end:]
    moved = memory.moved([(l0, c0, l1, c1, inserted)], edited)
    assert edited[moved.prefix_start:].startswith(first_line + "\n") and edited[moved.prefix_start - 1] in "\r\n"
    cursor_after = cursor + len(inserted) - (end - start)
    kept = build_token_context(edited, cursor_after, cursor_after, None, 40, words,
                               previous_prefix_start=moved.prefix_start, typing=True)
    assert kept.prefix_start == moved.prefix_start   # the prompt the engine holds is read again from its start
    stale = build_token_context(edited, cursor_after, cursor_after, None, 40, words,
                                previous_prefix_start=memory.prefix_start, typing=True)
    assert stale.prefix_start != kept.prefix_start   # (the offset left as it was: cut afresh)


@pytest.mark.parametrize("change", [
    (59, 0, 59, 0, "w = 1\n"),                   # at or after the start: it stays
    None,                                        # the whole text sent again: forgotten
    (40, 2, 56, 0, ""),                          # across the start: forgotten
    (53, 5, 54, 0, ""),                          # the line break before it deleted: no line start there now
])
def test_an_edit_at_or_across_the_prefix_start_keeps_or_forgets_it(change):
    cursor = NUMBERED.index("v60 =")
    memory = remembered_start(NUMBERED, cursor)
    assert memory.prefix_line == 54, "set up wrong"
    moved = memory.moved([change], NUMBERED)   # (only the line numbers are read when it stays or goes)
    if change is not None and change[0] >= 54:
        assert moved == memory
    else:
        assert moved.prefix_start is None and moved.prefix_line is None


@pytest.mark.parametrize("text, start, line", [
    ("a\r\nb", 3, 1), ("a\r\nb", 2, None),        # between a CRLF's two halves: no line start
    ("a\r\rb", 2, 1), ("a\r\rb", 3, 2), ("a\nb", 2, 1), ("a\nb", 1, None),
])
def test_a_remembered_start_has_a_line_only_where_a_line_starts(text, start, line):
    assert ContextMemory.of({"context": {"prefix_start": start}}, text).prefix_line == line


def test_a_notebook_cells_prefix_start_is_not_moved_by_line():
    memory = ContextMemory.of({"context": {"prefix_start": 0, "head_chars": 12}}, "x = 1\n")
    assert memory.prefix_line is None and memory.moved([(0, 0, 0, 0, "y\n")], "y\nx = 1\n") == memory


def test_typing_moves_the_prompts_first_line_far_less_often_and_always_fits():
    head = "".join(f"v{i} = {i}\n" for i in range(100))
    typed = "".join(f"total = total + w{i}\n" for i in range(12))   # 6 tokens a line, typed key by key
    moves = {}
    for steady in (False, True):
        previous, starts = None, []
        for n in range(1, len(typed) + 1):
            text = head + typed[:n] + "\nprint(total)\n"
            cursor = len(head) + n
            context = build_token_context(text, cursor, cursor, None, max_tokens=200, count=words,
                                          previous_prefix_start=previous if steady else None)
            assert context.prefix_tokens + context.suffix_tokens <= 200
            starts.append(context.prefix_start)
            previous = context.prefix_start
        moves[steady] = sum(a != b for a, b in zip(starts, starts[1:]))
    assert moves[True] * 3 <= moves[False], moves   # at this budget the slack holds about 4 typed lines


@pytest.mark.parametrize("decorators", ["", "@app.route('/items')\n@login_required\n"])
def test_a_steady_start_never_drops_the_scope_a_fresh_cut_keeps_whole(decorators):
    """Its decorators included: the scope began at `def`, and the cut with room to type dropped them."""
    head = "".join(f"top_{i} = {i}\n" for i in range(40))
    body = "".join(f"    b{i} = a + {i}\n" for i in range(10))
    text, offset = at(head + decorators + "def f(a):\n" + body + "    return <|>\n\nz = 0\n")
    scopes = find_span("python", text, offset, offset).scopes
    def_line = text.index(decorators + "def f(a):")

    def context(max_tokens: int, previous: int | None):
        return build_token_context(text, offset, offset, scopes, max_tokens=max_tokens, count=words,
                                   previous_prefix_start=previous)
    # The tightest budget that still keeps the function whole: cutting with room to type would drop its `def`.
    budget = next(n for n in range(20, 200) if context(n, None).kept_whole is not None)
    assert cut_prefix(text, offset, int((budget - 3) * (1 - PREFIX_SLACK)), words) > def_line, "set up wrong"
    for previous in (0, text.index("    b0 =")):   # no longer fits (re-cut) / inside the function (kept)
        steady = context(budget, previous)
        assert steady.kept_whole is not None and decorators + "def f(a):" in steady.prefix, previous


@pytest.mark.parametrize("grammar, source, head", [
    ("python", "x = 1\n\n@app.route('/')\n@cache\ndef f():\n    <|>\n", "@app.route('/')"),
    ("cpp", "int x;\ntemplate <typename T>\nT twice(T v) {\n  return <|>\n}\n", "template <typename T>"),
    ("cpp", "template <typename T>\ntemplate <typename U>\nvoid S<T>::f(U u) {\n  <|>\n}\n", "template <typename T>"),
    ("rust", "use x;\n#[test]\n#[ignore]\nfn t() {\n    <|>\n}\n", "#[test]"),
    ("rust", "use x;\n/// Twice.\n#[inline]\n/// More.\n#[must_use]\nfn t() {\n    <|>\n}\n", "/// Twice."),
    ("rust", "// not a doc\nfn t() {\n    <|>\n}\n", "fn t()"),
    ("typescript", "class A {\n  x = 1;\n  @Input()\n  @Other\n  f() {\n    <|>\n  }\n}\n", "@Input()"),
    ("typescript", "let x;\n@Component({})\nexport class B {\n  <|>\n}\n", "@Component({})"),
    ("javascript", "let x;\nexport default function f() {\n  <|>\n}\n", "export default"),
])
def test_a_scope_begins_with_its_decorators_template_line_or_attributes(grammar, source, head):
    text, offset = at(source)
    assert text[find_span(grammar, text, offset, offset).scopes[0].start:].startswith(head)


@pytest.mark.parametrize("before_cursor", [True, False])
def test_a_huge_line_a_few_lines_away_is_not_measured(before_cursor):
    """Not only the cursor's line: a 2 MB line beyond the budget's reach, above or below, is never tokenized."""
    from infill.context import MAX_CHARS_PER_TOKEN
    huge, near = "x" * 2_000_000 + "\n", "a = 1\n" * 10
    text = huge + near + "b = " if before_cursor else "c = \n" + near + huge
    cursor = len(text) if before_cursor else 4
    longest = []

    def counted(piece: str) -> int:
        longest.append(len(piece))
        return estimate_tokens(piece)
    context = build_token_context(text, cursor, cursor, None, 200, counted)
    assert max(longest) <= 200 * MAX_CHARS_PER_TOKEN
    assert (context.prefix if before_cursor else context.suffix).count("a = 1") == 10


def test_a_method_chain_right_above_the_cursor_is_kept_though_the_cut_opens_inside_it():
    """The prefix may open on a `.method()` line (the rest of a statement cut in two); moving its start to the next
    statement must not throw away the chain the cursor is writing after."""
    chain = "".join(f"        .{name}(|x| x.{name}_value())\n" for name in
                    ("filter", "map", "inspect", "take_while", "skip_while", "flat_map", "peekable"))
    text = "fn f(items: &[Item]) -> Vec<u32> {\n    let out: Vec<u32> = items\n        .iter()\n" + chain + "    "
    begin = cut_prefix(text, len(text), 60, words)
    assert words(text[begin:]) * 2 >= 60 and ".peekable(" in text[begin:]
    # A cut statement's small tail still gives way to the next statement's start.
    short = "x = call(\n    a,\n    b\n)\n" + "y = 1\n" * 8 + "z = "
    assert short[cut_prefix(short, len(short), 36, words):] == short[short.index("y = 1"):]


# ---- what a grammar reads silently but its compiler rejects (infill/silent_faults.py) ---------------------------

from infill.languages import parse  # noqa: E402
from infill.silent_faults import faults_near  # noqa: E402

GO_FUNC = "package p\n\nfunc f(x int) {\n%s\n}\n"


@pytest.mark.parametrize("grammar, source, faults", [
    # Go's automatic semicolon after a line's last name, literal or closer
    ("go", GO_FUNC % "\tif x > 0\n\t{\n\t\tg()\n\t}", 1),
    ("go", GO_FUNC % "\tfor _, y := range ys\n\t{\n\t\tg(y)\n\t}", 1),
    ("go", GO_FUNC % "\tswitch x\n\t{\n\t}", 1),
    ("go", "package p\n\nvar h = func() int\n{\n\treturn 1\n}\n", 1),
    ("go", GO_FUNC % "\tg(\n\t\t1,\n\t\t2 // two\n\t)", 1),
    ("go", "package p\n\nvar m = map[string]int{\n\t\"a\": 1,\n\t\"b\": 2\n}\n", 1),
    ("go", GO_FUNC % "\tg(\n\t\t1,\n\t\t2 // two\n\t\t,\n\t)", 1),   # a comma starting a line: comma-first style
    ("go", GO_FUNC % "\tg(1\n\t\t, 2)", 1),
    # what Go accepts: no semicolon after `for`, `else` or `select`, a bare block after a statement, commas
    ("go", GO_FUNC % "\tfor\n\t{\n\t\tbreak\n\t}", 0),
    ("go", GO_FUNC % "\tif x > 0 {\n\t\tg()\n\t} else\n\t{\n\t\th()\n\t}", 0),
    ("go", GO_FUNC % "\tselect\n\t{\n\t}", 0),
    ("go", GO_FUNC % "\ty := 1\n\t{\n\t\tg(y)\n\t}", 0),
    ("go", GO_FUNC % "\tg(\n\t\t1,\n\t\t2, // two\n\t)\n\tg(1,\n\t\t2)\n\tg(\n\t)", 0),
    ("go", "package p\n\ntype T struct\n{\n\tA int\n}\n", 0),
    # JavaScript / TypeScript lists: a hole is an error except in an array; a trailing comma is fine
    ("javascript", "f(a,, b);\n", 1),
    ("javascript", "f(, b);\n", 1),
    ("typescript", "const o = {a: 1,, b: 2};\n", 1),
    ("javascript", "f(a, b,);\nconst o = {a: 1,};\nconst xs = [1,, 2];\n", 0),
    # comments between: passed over (commented-out entries by the hundred are read in one pass)
    ("javascript", "f(a, /* b, */ /* c, */, d);\n", 1),
    ("javascript", "const o = {\n" + "  // x: 1,\n" * 300 + "  a: 1,\n  // y: 2,\n};\n", 0),
    # JSX tags
    ("javascript", "const e = <div><b>x</i></div>;\n", 1),
    ("tsx", "const e = <Foo.Bar>x</Foo.Baz>;\n", 1),
    ("tsx", "const e = <Foo.Bar><>x</></Foo.Bar>;\n", 0),
    ("tsx", "const e = <Foo.Bar>x</Foo/* c */ . Bar>;\n", 0),   # the same name, spelt with a comment and spaces
    ("tsx", "const e = <a:b>x</a : b>;\n", 0),
    # C and C++: a statement whose `=` was lost, read as a declaration
    ("c", "int f(const char *s) {\n    size_t n = 0;\n    n n = strlen(s);\n    return n;\n}\n", 1),
    ("c", "int f(const char *s) {\n    size_t n = 0;\n    n strlen(s);\n    return n;\n}\n", 1),
    ("cpp", "int f() {\n    srand srand(42);\n    return 0;\n}\n", 1),
    ("c", "int f(void) {\n    struct stat stat;\n    size_t n = 0;\n    foo_t make(int);\n    return 0;\n}\n", 0),
    ("cpp", "int f() {\n    Guard guard(device);\n    Foo foo(1);\n    return 0;\n}\n", 0),
    # Lua: two statements on a line with only a space between two names
    ("lua", "local function f(id)\n  local client vim.lsp.get_client_by_id(id)\n  return client\nend\n", 1),
    ("lua", "local function f(path)\n  local f err = loadfile(path)\n  return f\nend\n", 1),
    ("lua", "local function f(x, z)\n  local y\n  a = 1 b = 2\n  if x then y = 3 elseif z then y = 4 end\n"
     "  local c = 1; local d = c\n  return y\nend\n", 0),
])
def test_silent_faults_are_found_and_what_the_compiler_accepts_is_not(grammar, source, faults):
    data = source.encode()
    tree = parse(grammar, data)
    assert tree.root_node.has_error is False   # the grammar reads every one of these without an error
    assert len(faults_near(grammar, tree.root_node, data, 0, len(data))) == faults


def test_the_go_lists_the_fault_check_reads_are_those_the_comma_rule_knows():
    """Two rules about Go lists (a closer on its own line needs a comma before it): the cleaning's (spans.GO_LISTS)
    and the parse check's (`@list` in go-faults.scm) must name the same lists."""
    import re

    from infill.queries import load_query
    from infill.spans import GO_LISTS

    captured = load_query("go-faults").split("@braced", 1)[1].split("@list", 1)[0]
    assert set(re.findall(r"\((\w+)\)", captured)) == GO_LISTS
