"""The inline decision (none / single / multi) and the length plan (infill.decide)."""
from __future__ import annotations

import pytest

from infill.decide import decide_shape, opens_block, plan_lengths
from infill.spans import find_span


def at(source: str, marker: str = "<|>") -> tuple[str, int]:
    offset = source.index(marker)
    return source.replace(marker, "", 1), offset


@pytest.mark.parametrize("source,shape", [
    # single: the line goes on after the cursor, or it is being finished
    ("x = foo(<|>)\n", "single"),                   # only closers follow: still this line's business
    ("total = <|>\n", "single"),
    ("result = compute(<|>, 3)\n", "single"),         # real code follows the cursor
    ("values = [<|>]\n", "single"),
    ("if (x) <|>\n", "single"),
    ("d = {'a':<|>}\n", "single"),                    # a dict entry's colon opens no block
    ("<button onClick={<|>}>more</button>\n", "single"),   # a JSX attribute's value
    ("<div style={{<|>}}>\n", "single"),
    # multi: a body is wanted
    ("def f(a):\n    <|>\n", "multi"),                # empty body
    ("def f(a):\n<|>", "multi"),
    ("for item in items:<|>\n", "multi"),             # right after a block opener
    ("function f() {<|>}\n", "multi"),
    ("const f = () => {<|>\n", "multi"),             # an arrow function's body is a block
    ("const config = {<|>\n", "multi"),              # object literals are as often multi-line
    ("export default defineConfig({<|>\n", "multi"),
    ("if (a != b) {<|>\n", "multi"),
    ("if (x) {<|>\n", "multi"),
    ("if x > 0 then<|>\n", "multi"),
    ("def f():\n    x = 1\n\n    <|>\n    return x\n", "multi"),   # blank line in a block
    ("# read the file and count words\n<|>\n", "multi"),          # a comment line above
    ("    return (<|>\n    )\n", "multi"),             # brackets closed on a later line hold lines
    ("values = [<|>\n\n]\n", "multi"),
    ("    return (<|>\n    x)\n", "single"),         # the next line is more of this one
    ("total = f(<|>\n", "single"),                    # no closer yet: the user is typing the call
    # none: mid-word
    ("value = compu<|>te()\n", "none"),
])
def test_shape(source, shape):
    text, offset = at(source)
    assert decide_shape(text, offset, in_string_or_comment=False).shape == shape


def test_a_comment_after_the_code_neither_opens_a_block_nor_hides_one():
    assert not opens_block("local x = 1 -- nil means use something else", "lua")
    assert not opens_block("x = 1  # then", "python") and opens_block("if x:  # the usual case", "python")
    assert opens_block("if (x) { // go", "javascript") and not opens_block('s = "# x:"', "python")


@pytest.mark.parametrize("line, grammar, opens", [
    ("if x == '\"':  # a quote", "python", True),        # a quote inside the other kind of quotes
    ("if (c === '\"') { // a quote", "javascript", True),
    ('if (s === "\\"") { // x', "javascript", True),    # an escaped quote inside the string
    ('if s == "\\"" { // x', "go", True),
    ("if (a<b) { // x", "javascript", True),             # a comparison, not a JSX tag
    ('if s == r"a // b" {', "rust", True),                # the marker inside a raw string
])
def test_the_comment_after_a_block_opener_is_found_outside_strings(line, grammar, opens):
    assert opens_block(line, grammar) == opens


@pytest.mark.parametrize("grammar, source", [
    ("python", 'def f(ch):\n    if ch == "(":<|>\n'),
    ("python", 'def f(ch):\n    if ch == "(":\n<|>\n'),                 # the blank line under it
    ("python", 'def f(c):\n    if c in "([{":\n        <|>\n'),
    ("python", 'def f(x):\n    match x:\n        case "(":<|>\n'),
    ("python", "def f(a):\n    for k in f\"{a}[\":<|>\n"),
    ("go", 'func f(s string) {\n\tif s == "(" {<|>\n'),
])
def test_a_bracket_in_a_string_does_not_hide_a_block_header(grammar, source):
    """`if ch == "(":` was read as a line leaving a bracket open: one line wanted, and on the blank line under it
    "the expression above goes on" (at column 0 the body stayed unindented and the fill was refused)."""
    text, offset = at(source)
    decision = decide_shape(text, offset, in_string_or_comment=False, grammar=grammar)
    assert decision.shape == "multi", decision.reason


@pytest.mark.parametrize("grammar, source, shape", [
    ("rust", "fn f() -> i32 <|>\n\nfn main() {}\n", "multi"),
    ("rust", "pub async fn get<T: Copy>(x: T) -> Result<T, E> where T: Send <|>\n", "multi"),
    ("go", "package main\n\nfunc (p *P) f(n int) (int, error) <|>\n", "multi"),
    ("c", "static int f(int x) <|>\n", "multi"),
    ("cpp", "int A::f(int x) const <|>\n", "multi"),
    ("java", "class A {\n    public static void main(String[] args) throws Exception <|>\n}\n", "multi"),
    ("typescript", "export function f(x: number): number <|>\n", "multi"),
    ("javascript", "const f = (x) => <|>\n", "multi"),
    ("lua", "local function f(x)\n  if x > 1 <|>\nend\n", "multi"),
    ("lua", "while i < n <|>\n", "multi"),
    # statements, not headers: the rest of the line
    ("c", "int f(int x) {\n    return g(x) <|>\n}\n", "single"),
    ("c", "int f(int x) {\n    int y = g(x) <|>\n}\n", "single"),
    ("java", "class A {\n  void f() {\n    System.out.println(x) <|>\n  }\n}\n", "single"),
    ("java", "class A {\n  void f() {\n    assert check(x) <|>\n  }\n}\n", "single"),
    ("javascript", "function f(x) {\n  foo(x) <|>\n}\n", "single"),
    ("go", "package main\n\nfunc main() {\n\tfmt.Println(x) <|>\n}\n", "single"),
    ("lua", "if x then <|>\n", "multi"),
    ("c", "int f(int x) <|>\n{\n    return x;\n}\n", "single"),   # its brace on the next line (Allman)
    ("cpp", "int main() {\n    std::vector<int> v(n) <|>\n}\n", "single"),   # a constructor's arguments
    ("cpp", "int main() {\n    int x(5) <|>\n}\n", "single"),
    ("cpp", "void f(const std::map<int, int> &m, int n = 3) <|>\n", "multi"),
    ("java", "class A {\n    void g(List<String> xs, int... rest) <|>\n}\n", "multi"),
])
def test_a_signature_or_header_whose_block_is_still_to_come_wants_the_block(grammar, source, shape):
    """After `fn f() -> i32 ` the model's whole body was cut to its first line, `{`, which the parse check then
    refused: nothing was offered."""
    text, offset = at(source)
    decision = decide_shape(text, offset, in_string_or_comment=False, grammar=grammar)
    assert decision.shape == shape, decision.reason


def test_dict_colon_is_not_a_block_opener():
    assert not opens_block("    'a':")
    assert not opens_block("x: int = 3 if y else z:")  # odd, but not a block keyword
    assert opens_block("    elif x:") and opens_block("class A(B):") and opens_block("  case 3:")
    assert opens_block("for i := 0; i < n; i++ {") and opens_block("while true do")


@pytest.mark.parametrize("grammar, source, shape", [
    ("python", "for item in items:\n    do<|>\n", "single"),     # `do_work(item)` being typed
    ("c", "int main(void) {\n    do<|>\n", "single"),         # `double`
    ("javascript", "const do<|>\n", "single"),
    ("go", "func f() {\n\tdo<|>\n}\n", "single"),
    ("python", "x = then<|>\n", "single"),
    ("lua", "while true do<|>\n", "multi"),                   # Lua's `do` and `then` do open blocks
    ("lua", "if x then<|>\n", "multi"),
    ("c", "do {<|>\n", "multi"),
])
def test_do_and_then_open_blocks_only_where_they_are_keywords_that_do(grammar, source, shape):
    text, offset = at(source)
    assert decide_shape(text, offset, in_string_or_comment=False, grammar=grammar).shape == shape


def test_inside_a_string_or_comment_is_none_whatever_the_line_says():
    text, offset = at('def f():\n    s = "<|>"\n')
    quiet = find_span("python", text, offset, offset).in_string_or_comment
    decision = decide_shape(text, offset, quiet)
    assert decision.shape == "none" and "string or comment" in decision.reason


@pytest.mark.parametrize("source", ['def f():\n    s = "the <|>"\n', "x = 1  # the <|>\n", '"""Sum the <|>\n"""\n'])
def test_asked_inside_a_string_or_comment_finishes_its_line(source):
    text, offset = at(source)
    quiet = find_span("python", text, offset, offset).in_string_or_comment
    assert quiet and decide_shape(text, offset, quiet, invoked=False).shape == "none"
    decision = decide_shape(text, offset, quiet, invoked=True)
    assert decision.shape == "single" and "asked" in decision.reason


def test_reasons_say_why():
    text, offset = at("# count words\n<|>")
    assert "comment" in decide_shape(text, offset, False).reason
    text, offset = at("def f():\n    <|>")
    assert "empty body" in decide_shape(text, offset, False).reason


def test_cursor_after_a_word_end_is_not_mid_word():
    text, offset = at("print(value<|>)\n")
    assert decide_shape(text, offset, False).shape == "single"


@pytest.mark.parametrize("shape,cap,expected", [
    ("single", 64, [8, 16, 32]),
    ("single", 12, [8, 12]),
    ("multi", 64, [32, 64]),
    ("multi", 40, [32, 40]),
    ("multi", 16, [16]),
    ("single", 1, [1]),
])
def test_length_plan_is_capped(shape, cap, expected):
    assert plan_lengths(shape, cap) == expected


def test_fill_lengths_follow_the_selection_size():
    small = plan_lengths("block", 256, 2)
    large = plan_lengths("block", 256, 86)
    assert max(small) < max(large)
    assert 86 in large and max(large) <= 256
    # A selection longer than the inline cap: room for it (a fill cut at 32 tokens replaced 1,000 characters)
    assert plan_lengths("block", 32, 286) == [143, 286, 512]
    assert plan_lengths("block", 32, 29) == [14, 29, 58]


@pytest.mark.parametrize("grammar,source,shape", [
    # an f-string's code hole, with the editor's auto-closed `}'` after the cursor: one expression
    ("python", "msg = f'hello {<|>}'\n", "single"),
    # a header spread over several lines opens its block like a one-line header
    ("python", "def area(\n    width: float,\n    height: float,\n) -> float:<|>\n", "multi"),
    ("python", "def f(a, b):\n    if (a and\n            b):<|>\n", "multi"),
    ("python", "def area(\n    width: float,\n) -> float:\n    <|>\n", "multi"),
    ("python", "x = 1\nelse_value = (\n    2):<|>\n", "single"),   # `x = (...):` opens nothing
    # with a comment on a line of it (the comment's text hid the `:` once joined), or continued by backslashes
    ("python", "def f(a,  # note (x)\n      b):<|>\n", "multi"),
    ("python", "def f(a,  # note\n      b):\n<|>\n", "multi"),
    ("python", "def f(a, b):\n    if a and \\\n            b:<|>\n", "multi"),
    ("python", "def f(a, b):\n    if a and \\\n            b:\n<|>\n", "multi"),
    # Lua opens blocks with a parameter list, `repeat` and `else`
    ("lua", "local function add(a, b)<|>\n", "multi"),
    ("lua", "function M.setup(opts)<|>\n", "multi"),
    ("lua", "pcall(function()<|>\n", "multi"),
    ("lua", "repeat<|>\n", "multi"),
    ("lua", "if x then\n  y()\nelse<|>\n", "multi"),
    ("lua", "local n = f.function_count(<|>\n", "single"),
    ("python", "if x:  # the usual case\n    <|>\n", "multi"),
    # C++ access labels
    ("cpp", "class Stack {\npublic:<|>\n};\n", "multi"),
    # between a block's braces with more code after them on the line
    ("javascript", "if (x) {<|>} else {\n}\n", "multi"),
    ("javascript", "f({<|>}, 2);\n", "single"),                      # an object argument: finish the line
    ("javascript", "f(function () {<|>}, 2);\n", "multi"),
    ("javascript", "<a onClick={<|>} href='/'>x</a>;\n", "single"),   # a JSX attribute's value
    # JSX text is prose, like a string's: quiet while typing it, at its end too (it has no closing quote)
    ("javascript", "const A = () => <p>Hello wor<|></p>;\n", "none"),
    ("tsx", "function A() {\n  return <div>\n    Some text here<|>\n  </div>;\n}\n", "none"),
    ("javascript", "const A = () => <p>Fish &amp;<|></p>;\n", "none"),   # right after an entity: still text
    ("tsx", "const A = () => <p>Fish &amp; chi<|></p>;\n", "none"),
    ("tsx", "const A = () => <p>Hi {name}<|></p>;\n", "single"),    # after an expression hole: not in text
    ("javascript", "function A() {\n  return <div>\n    <|>\n  </div>;\n}\n", "multi"),   # a new child
    # an element not closed yet reads as text to its end: a blank line in it is still code
    ("tsx", "export function List() {\n  return (\n    <ul>\n      <li>one</li>\n      <|>\n  );\n}\n", "multi"),
    ("tsx", "function A() {\n  return <div>\n    Some text\n    <|>\n  </div>;\n}\n", "multi"),   # after prose
    # a blank line between a call's arguments: the next item may be a callback over several lines
    ("javascript", "app.get(\n  '/',\n  <|>\n);\n", "multi"),
    ("javascript", "foo(function () {\n  <|>\n});\n", "multi"),   # a function body inside the arguments
    ("python", "total = first + \\\n    <|>\n", "single"),          # a continued line
    # a colon ends a block header in Python; elsewhere only a label alone on its line is one
    ("typescript", "class Counter {\n  private count: <|>\n}\n", "single"),             # a field's type
    ("typescript", "interface Options {\n  async: <|>\n}\n", "single"),
    ("javascript", "export default {\n  props: {\n    items: {\n      default: <|>\n    },\n  },\n};\n", "single"),
    ("javascript", "switch (x) {\n  case 1:\n    <|>\n}\n", "multi"),
    ("java", "switch (x) {\n  default:\n    <|>\n}\n", "multi"),
    ("cpp", "class A {\n public:\n  <|>\n};\n", "multi"),
    # Go and Rust conditions have no parentheses: between the braces of `if x {} else {` is a block's body
    ("go", "func f(x bool) {\n\tif x {<|>} else {\n\t}\n}\n", "multi"),
    ("rust", "fn f(x: bool) {\n    if x {<|>} else {\n    }\n}\n", "multi"),
    ("rust", "fn f(x: bool) {\n    let p = Point {<|>} else {\n    }\n}\n", "single"),   # no header: a literal
    # a literal's brace on a line with a loop or a call named like one is not a block's
    ("python", "for k in {<|>}:\n    pass\n", "single"),
    ("javascript", "d3.select('#x').attr({<|>}).style('a', 1);\n", "single"),
    ("go", "func f() {\n\tif v, ok := m[Key{<|>}]; ok {\n\t}\n}\n", "single"),
    ("rust", "fn f() {\n    for p in vec![Point {<|>}] {\n    }\n}\n", "single"),
    # an empty function body between braces with the call going on after them
    ("javascript", "useEffect(() => {<|>}, []);\n", "multi"),
    ("typescript", "setTimeout(() => {<|>}, 100);\n", "multi"),
    ("rust", "fn f(v: Vec<i32>) {\n    v.iter().map(|x| {<|>}).count();\n}\n", "multi"),
    # a comment that keeps its line break (Rust doc comments) ends above the cursor
    ("rust", "/// Returns the sum.\n<|>", "multi"),
    ("rust", "//! crate doc\n<|>", "multi"),
    # a line comment ending in `]]` or `*/` is still open; a closed block comment is not
    ("c", "int f() {\n    // uses m[idx[i]]<|>\n}\n", "none"),
    ("javascript", "// uses m[idx[i]]<|>\n", "none"),
    ("lua", "-- index t[k[1]]<|>\n", "none"),
    ("c", "// see a */<|>\n", "none"),
    ("lua", "x = 1 --[==[ note ]==]<|>\n", "single"),
    ("c", "int x = 1; /* note */<|>\n", "single"),
    # a blank line under a line that goes on (an operator or `=` at its end) finishes that expression
    ("javascript", "function f() {\n  const total = price +\n    <|>\n}\n", "single"),
    ("javascript", "function f() {\n  const label =\n    <|>\n}\n", "single"),
    ("python", "def f():\n    total = (price +\n             <|>", "single"),
    ("lua", "local x = a .. -- note\n  <|>\n", "single"),
    ("go", "func f() bool {\n\treturn a &&\n\t\t<|>\n}\n", "single"),
    ("cpp", "template <typename T>\n<|>\n", "multi"),              # a template header: the declaration follows
    ("javascript", "x = 1;\n\n<|>\n", "multi"),
    # ... but a line can end in an operator's character and be complete
    ("go", "func f() {\n\tfor {\n\t\tn++\n\t\t<|>\n\t}\n}\n", "multi"),
    ("python", "from os.path import *\n<|>\n", "multi"),
    ("python", "class P(Protocol):\n    def f(self) -> int: ...\n    <|>\n", "multi"),
    ("c", "int f(void) {\n    int x = 1; /* count */\n    <|>\n}\n", "multi"),
    ("go", "func f() {\nouter:\n\t<|>\n}\n", "multi"),
    ("lua", "local function f(...)\n  local args = ...\n  <|>\nend\n", "multi"),
    ("javascript", "function f() {\n  const re = /ab+c/\n  <|>\n}\n", "multi"),
    # a line starting with `*` is a block comment's only inside one; elsewhere it dereferences a pointer
    ("c", "void f(int *p, int a, int b) {\n    *p = a +\n    <|>\n}\n", "single"),
    ("go", "func f(p *int, a, b int) {\n\t*p = a +\n\t<|>\n}\n", "single"),
    ("rust", "fn f(p: &mut i32, a: i32, b: i32) {\n    *p = a +\n    <|>\n}\n", "single"),
    ("c", "void f(int *p) {\n    /* add the two\n     * and store them */\n    <|>\n}\n", "multi"),
    # a `/*` in a string or a line comment above opens no comment
    ("c", "void f(int *p, int a, int b) {\n    const char *g = \"src/*.c\";\n    *p = a +\n    <|>\n}\n", "single"),
    ("rust", "// see lib/*.rs\nfn f(p: &mut i32, a: i32, b: i32) {\n    *p = a +\n    <|>\n}\n", "single"),
    ("go", "package p\n\nvar g = \"a/*\"\n\nfunc f(p *int, a, b int) {\n\t*p = a +\n\t<|>\n}\n", "single"),
    ("c", "void f(int *p) {\n    /* add the two\n     * and store them\n     */\n    <|>\n}\n", "multi"),
    # a comment after the cursor is not code that follows it
    ("python", "if x:<|>  # the usual case\n", "multi"),
    ("python", "def f():<|>  # TODO\n    pass\n", "multi"),
    ("javascript", "if (x) {<|> // go\n}\n", "multi"),
    ("go", "func f() {\n\tif x {<|> // note\n\t}\n}\n", "multi"),
    ("lua", "if x then<|> -- start\nend\n", "multi"),
    ("javascript", "if (x) {<|> /* note */ y(); }\n", "single"),   # code after the block comment
    ("javascript", "if (x) {<|>/* a */ y(); /* b */\n}\n", "single"),   # code between two comments
    # block headers with brackets before their brace, and blocks that are expressions
    ("rust", "fn f() {\n    if let Some(x) = opt {<|>} else {}\n}\n", "multi"),
    ("go", "func f() {\n\tif v, ok := m[k]; ok {<|>} else {\n\t}\n}\n", "multi"),
    ("cpp", "void f() {\n  auto r = [this] {<|>}();\n}\n", "multi"),
    ("rust", "async fn f() {\n    let r = async move {<|>}.await;\n}\n", "multi"),
])
def test_shape_with_the_syntax_tree(grammar, source, shape):
    text, offset = at(source)
    span = find_span(grammar, text, offset, offset)
    decision = decide_shape(text, offset, span.in_string_or_comment, grammar=grammar,
                            in_code_hole=span.in_code_hole, line_above_in_comment=span.line_above_in_comment)
    assert decision.shape == shape, decision.reason
