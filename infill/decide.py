"""How much to write: the shape of an inline completion (none / single line / several lines) and the length
candidates (in tokens) the engine runs as one batch."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .literals import BLOCK_COMMENTS, JSX_LANGUAGES, LONGEST_SCAN, code_outside_literals, line_comment_start

SINGLE_LENGTHS = [8, 16, 32]
MULTI_LENGTHS = [32, 64]
FILL_MAX_TOKENS = 512   # a Fill Selection writes up to twice its selection, this at most, whatever maxNewTokens says
CLOSERS = set(")]}>\"'`;,")
IDENTIFIER_CHAR = re.compile(r"\w")
# A ':' opens a block in Python only after these words; after anything else it is a dict entry, a slice or a type
# annotation, and the line goes on.
PYTHON_COLON_WORDS = {"def", "class", "if", "elif", "else", "for", "while", "with", "try", "except", "finally",
                      "match", "case", "async"}
# Elsewhere only a label alone on its line does (`case 3:`, `default:`, C++'s `public:`): `private count:` is a
# TypeScript field, `async:` an object's key.
LABEL_LINE = re.compile(r"\s*(?:case\s.*|default|public|private|protected)\s*:")
# Lua opens a block with a function's parameter list, `repeat` and `else`, no brace or colon.
LUA_BLOCK_OPENER = re.compile(r"(?<![.\w])(?:function\b[\w.:\s]*\([^()]*\)|repeat|else)$")
# A statement's block brace (`if (x) {`, `} else {`, `function f() {`), not an object literal's (`f({`).
BRACED_HEADER = re.compile(r"(?:\)|=>|\b(?:else|try|do|finally))\s*\{$")   # `=>`: an arrow function, a match arm
RUST_CLOSURE_HEADER = re.compile(r"\|[^|]*\|\s*\{$")   # `.map(|x| {`
# Go and Rust write conditions without parentheses (`if x {`, `for v := range xs {`, `match x {`): a line that
# starts with the keyword and holds no bracket before its `{` (`for p in vec![Point {` opens a literal).
# Brackets may come before the `{` when it is the only one left open (`if let Some(x) = opt {`, `if v, ok := m[k]; ok
# {`): `for p in vec![Point {` leaves two open, and opens a literal.
BARE_HEADER = re.compile(r"\s*(?:\}\s*else\s+)?(?:if|for|while|match|loop|switch|select)\b[^{}]*\{")
BARE_HEADER_GRAMMARS = {"go", "rust"}
LAMBDA_HEADER = {"cpp": re.compile(r"\]\s*\{$"),                       # `[this] {`, a lambda called in place
                 "rust": re.compile(r"(?<![\w.])async(?:\s+move)?\s*\{$")}   # `async move {`
# A line that ends like this goes on on the next (`total = price +`, `label =`): a blank line under it continues the
# expression. Not `>` (a JSX tag, a C++ template header), `(` / `[` (they may hold lines), `,` (the next argument
# may be a callback over several), `/` (a regex literal, a comment's end), `!` / `?` (Rust's `x!`, `f()?`).
# A JSX element's opening tag at the cursor (`<section>`, `<li key={i}>`, a fragment's `<>`), not a self-closing one.
JSX_OPENING_TAG = re.compile(r"<([A-Za-z][\w.:-]*|)(?:\s[^<>]*)?(?<!/)>$")
CONTINUES_EXPRESSION = re.compile(r"(?:[-+*%&|^=.:]|<<|=>|\b(?:and|or|not|in))$")   # `=>`: an arrow's body
# ... nor a line that is complete though it ends so: `n++`, `i--`, `...` (a stub's body, Lua's varargs),
# `import *`, a label alone on its line (`outer:`).
COMPLETE_LINE = re.compile(r"(?:\+\+|--|\.\.\.|\bimport\s+\*|^\s*[A-Za-z_]\w*\s*:)$")
HEADER_LOOK_BACK_LINES = 40   # a block header spread over more lines than this is not looked for
# How a comment starts, per grammar: `#` is a private field in JavaScript and a directive in C, `--` a decrement.
WORD_OPENER_GRAMMARS = {"lua", None}
COMMENT_MARKERS = {"python": ("#",), "lua": ("--",)}
C_LIKE_COMMENTS = ("//", "/*")
ANY_COMMENT = ("#", "//", "--", "/*")   # plain text: whichever it uses


def comment_markers(grammar: str | None) -> tuple[str, ...]:
    return COMMENT_MARKERS.get(grammar, C_LIKE_COMMENTS) if grammar else ANY_COMMENT


@lru_cache(maxsize=None)
def comment_start(grammar: str | None) -> re.Pattern:
    """Matches a line (leading whitespace allowed) that starts with a comment in `grammar`'s language."""
    return re.compile(r"\s*(?:" + "|".join(map(re.escape, comment_markers(grammar))) + ")")


def is_comment_line(text: str, line: str, line_start: int, grammar: str | None,
                    in_comment: bool | None = None) -> bool:
    """Whether `line` (starting at `line_start` in `text`) starts with a comment, or is one of the ` * ...` lines
    of a C-style block comment. Elsewhere a line starting with `*` is code (`*p = a +`): `in_comment` is the syntax
    tree's word on it; without a tree (plain text), a `/*` still open before the line."""
    if comment_start(grammar).match(line):
        return True
    if "/*" not in comment_markers(grammar) or not line.lstrip().startswith("*"):
        return False
    if in_comment is not None:
        return in_comment
    return text.rfind("/*", 0, line_start) > text.rfind("*/", 0, line_start)


@dataclass
class Decision:
    shape: str    # "none" | "single" | "multi" (inline), "block" (fill / rewrite a selection)
    reason: str


def line_parts(text: str, offset: int) -> tuple[str, str]:
    """(text of the cursor's line before offset, text of it after offset)."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start:offset], text[offset:] if end == -1 else text[offset:end]


def previous_nonblank(text: str, offset: int) -> tuple[str, int]:
    """The nearest non-blank line above the cursor's line and where it starts (('', 0) when there is none)."""
    end = text.rfind("\n", 0, offset)
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        if text[start:end].strip():
            return text[start:end], start
        end = start - 1
    return "", 0


def previous_nonblank_line(text: str, offset: int, grammar: str | None = None) -> str:
    return in_comment_opener_indentation(text, *previous_nonblank(text, offset), grammar)


def in_comment_opener_indentation(text: str, line: str, start: int, grammar: str | None) -> str:
    """`line` (starting at text[start]); when it ends a block comment, in the indentation of the line the comment
    opens on: the space before ` */` aligns the stars, it is no depth."""
    opener, closer = BLOCK_COMMENTS.get(grammar, ("/*", "*/")) if grammar else (None, None)
    # (a comment's own line, ` */` or ` * text */`: a regex `/.*/` at a line's end closes nothing)
    if closer and line.lstrip().startswith("*") and line.rstrip().endswith(closer):
        opened = text.rfind(opener, 0, start)
        if opened != -1 and text.find(closer, opened + len(opener), start) == -1:
            opener_line = text[text.rfind("\n", 0, opened) + 1:opened]
            return opener_line[:len(opener_line) - len(opener_line.lstrip())] + line.lstrip()
    return line


def bracket_opener_indentation(text: str, offset: int, grammar: str | None = None) -> str | None:
    """The indentation of the line holding the innermost bracket left open at `offset` (`def f(` over its
    parameters), looked for over the few lines above; None when none is open there."""
    line_start = text.rfind("\n", 0, offset) + 1
    for _ in range(HEADER_LOOK_BACK_LINES):
        if line_start == 0:
            return None
        line_start = text.rfind("\n", 0, line_start - 1) + 1
        if code_bracket_surplus(text[line_start:offset], grammar) > 0:
            line = text[line_start:text.find("\n", line_start)]
            return line[:len(line) - len(line.lstrip(" \t"))]
    return None


def blank_lines_above(text: str, offset: int) -> int:
    """Blank lines between the nearest non-blank line above the cursor's line and that line (0 when none is)."""
    line, start = previous_nonblank(text, offset)
    if not line.strip():
        return 0
    return text.count("\n", start + len(line), text.rfind("\n", 0, offset) + 1) - 1


# A block's header line that goes on the one above (C++'s constructor initializers and base classes, `: a_(a) {`
# or `, b_(b) {`; Java's and TypeScript's `extends`, `implements` and `throws`).
HEADER_CONTINUATION = {"cpp": re.compile(r":(?!:)|,"), **{grammar: re.compile(r"(?:extends|implements|throws)\b")
                                                        for grammar in ("java", "javascript", "typescript", "tsx")}}
INITIALIZER_LIST_START = re.compile(r"\s*:(?!:)")


def in_initializer_list(lines: list[str]) -> bool:
    """C++: whether the run of lines ending in `,` that ends `lines` goes back to one starting with `:` (a
    constructor's initializers over lines: `: a_(a),` / `b_(b) {`), not a call's arguments (`f(a,` / `[&] {`)."""
    for line in reversed(lines[-HEADER_LOOK_BACK_LINES:]):
        if INITIALIZER_LIST_START.match(line):
            return True
        if not line.rstrip().endswith(","):
            return False
    return False


def joined_header(code: str, text_above: str, grammar: str | None = None) -> str:
    """`code` (a line, or its text before the cursor) joined to the lines above that open the brackets it closes
    or that it continues (a line ending in a backslash), in their first line's indentation, each without its line
    comment: a header spread over lines (`def area(\n    width,  # cm\n) -> float:`) reads as one. `code` itself
    when it closes nothing opened above and continues no line."""
    code = without_trailing_comment(code, grammar)
    # (Closers counted before openers: `    const S *a) {` closes the `(` of the line above, though it opens as many
    # brackets as it closes.)
    unmatched = unmatched_closers(code, grammar)
    parts = [code.strip()]
    lines = text_above.split("\n")[:-1]   # text_above ends with the line break before `code`'s line
    continued = HEADER_CONTINUATION.get(grammar) if code.rstrip().endswith("{") else None
    looked_at = lines[-HEADER_LOOK_BACK_LINES:]
    for index in range(len(looked_at) - 1, -1, -1):
        line_code = without_trailing_comment(looked_at[index], grammar).rstrip()
        goes_on = continued and (continued.match(parts[0].lstrip()) or (
            grammar == "cpp" and line_code.endswith(",") and in_initializer_list(looked_at[:index + 1])))
        if not unmatched and not line_code.endswith("\\") and not goes_on:
            break
        parts.insert(0, line_code.removesuffix("\\").rstrip())
        unmatched = unmatched_closers("\n".join(parts), grammar)
    if len(parts) == 1 or unmatched:
        return code
    first, *rest = parts
    return " ".join([first, *(part.strip() for part in rest)])


def opener_line(text: str, offset: int, grammar: str | None = None) -> str:
    """The line whose block the cursor would write into: the cursor's line up to the cursor, or, on a blank line,
    the nearest non-blank line above; a header spread over several lines joined into one."""
    before, _ = line_parts(text, offset)
    if before.strip():
        return joined_header(before, text[:offset - len(before)], grammar)
    above, above_start = previous_nonblank(text, offset)
    return joined_header(in_comment_opener_indentation(text, above, above_start, grammar), text[:above_start], grammar)


def without_trailing_comment(code: str, grammar: str | None) -> str:
    """`code` (one line) without the line comment at its end (`if x:  # why`). Plain text is left as it is."""
    at = line_comment_start(grammar, code)
    return code if at == -1 else code[:at]


def opens_block(code_before_cursor: str, grammar: str | None = None) -> bool:
    """Does this line end with a block opener (`{`, a Python-style `:`, Lua/Ruby `do` / `then`, Lua's
    `function f()`, `repeat`, `else`)? A comment after it does not count; a header over several lines must come
    joined (`joined_header`)."""
    code = without_trailing_comment(code_before_cursor, grammar).rstrip()
    if code.endswith("{"):
        return True
    # `do` / `then` open a block only where they are keywords that do (Lua; plain text: shell, Ruby); elsewhere
    # they are the start of `done`, `double`, `then_value`. Not a method either: `fetch(url).then`.
    if grammar in WORD_OPENER_GRAMMARS and re.search(r"(?<![.\w])(do|then)$", code):
        return True
    if grammar == "lua" and LUA_BLOCK_OPENER.search(code):
        return True
    # (not `for (String s :`)
    if code.endswith(":") and not code.endswith("::") and code_bracket_surplus(code, grammar) <= 0:
        first_word = re.match(r"\s*(\w*)", code).group(1)
        if grammar == "python" or (grammar is None and first_word in PYTHON_COLON_WORDS):
            return first_word in PYTHON_COLON_WORDS
        return bool(LABEL_LINE.fullmatch(code))
    return False


def code_bracket_surplus(code: str, grammar: str | None) -> int:
    """bracket_surplus of a line's code, brackets in its strings and comments left out (`if ch == "(":` opens a
    block); counted as they stand where the line ends inside a literal or its grammar's literals are not known."""
    return bracket_surplus(code_for_brackets(code, grammar))


def code_for_brackets(code: str, grammar: str | None) -> str:
    """`code` with its strings and comments blanked where they can be told (a short line, a known grammar, ending
    outside them), else as it stands."""
    scanned = code_outside_literals(grammar, code) if len(code) <= LONGEST_SCAN else None
    return scanned[0] if scanned is not None and scanned[1] is None else code


def unmatched_closers(code: str, grammar: str | None) -> int:
    """How many brackets `code` closes that it did not open (those of its strings and comments left out)."""
    depth = lowest = 0
    for char in code_for_brackets(code, grammar):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            lowest = min(lowest, depth)
    return -lowest


def bracket_surplus(code: str) -> int:
    """Brackets this line leaves open, less those it closes (strings are not told apart: a line is short, and a
    bracket inside a string before a block's `:` is rare)."""
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def opens_expression_brace(code_before_cursor: str) -> bool:
    """A JSX attribute's value, `onClick={` or `style={{` (a `{` right after `=`), or a template literal's `${`: an
    expression finished on the same line, not a block. Object literals (`g({`, `= {`) stay multi-line: they are as
    often written over several lines."""
    code = code_before_cursor.rstrip()
    if code.endswith("${"):   # a template literal's substitution
        return True
    if code.endswith("={{"):
        code = code[:-1]
    return code.endswith("={") and not code.endswith(("=={", "!={", "<={", ">={", "=>{"))


def code_after_cursor(after: str, grammar: str | None) -> str:
    """The rest of the cursor's line without a comment that ends it (`if x:| # why`, `{| /* note */`)."""
    code = without_trailing_comment(after, grammar)
    rest = code.strip()
    while grammar not in (None, "python", "lua") and rest.startswith("/*") and (end := rest.find("*/")) != -1:
        rest = rest[end + 2:].strip()   # block comments to the end of the line (not `/* a */ y; /* b */`)
        if not rest:
            return ""
    return code


def only_closers(rest: str) -> bool:
    return set(rest.strip()) <= CLOSERS


def decide_shape(text: str, offset: int, in_string_or_comment: bool, invoked: bool = False,
                 grammar: str | None = None, in_code_hole: bool = False,
                 line_above_in_comment: bool | None = None, literal_lines: int = 0) -> Decision:
    """The inline decision at `offset`; `invoked`: the user asked (an explicit request), not just typed;
    `grammar`: the document's (None for plain text); `in_code_hole`: inside an f-string's `{}` or a template's
    `${}`; `line_above_in_comment`: the nearest non-blank line above starts inside a comment; `literal_lines`:
    the string or comment the cursor is in spans more than one line (2), one (1) or was not parsed as one (0)
    (spans.py)."""
    before, after = line_parts(text, offset)
    if in_string_or_comment:
        if invoked and literal_lines > 1 and not (before.strip() or after.strip()):   # (cleaned as prose: clean.py)
            return Decision("multi", "asked on a blank line inside a string or comment: its paragraph")
        if invoked:   # prose or a string's text: the rest of its line (the parse check keeps it inside)
            return Decision("single", "asked inside a string or comment: finish its line")
        return Decision("none", "the cursor is inside a string or comment (ask explicitly to complete there)")
    if before and after and IDENTIFIER_CHAR.match(before[-1]) and IDENTIFIER_CHAR.match(after[0]):
        return Decision("none", "the cursor is inside a word")
    # A function's braces inside the hole (`${xs.map((x) => {`) hold statements: read as a block's below.
    if in_code_hole and not BRACED_HEADER.search((before if before.strip() else opener_line(text, offset, grammar))
                                                 .rstrip()):
        return Decision("single", "inside a string's code hole: one expression")
    after = code_after_cursor(after, grammar)   # a comment after the cursor is not code that follows it
    header = before.rstrip()
    braced_header = BRACED_HEADER.search(header) or (
        grammar in BARE_HEADER_GRAMMARS and BARE_HEADER.fullmatch(header)
        and code_bracket_surplus(header, grammar) == 1) or (
        grammar == "rust" and RUST_CLOSURE_HEADER.search(header)) or (
        grammar in LAMBDA_HEADER and LAMBDA_HEADER[grammar].search(header))
    if braced_header and after.lstrip().startswith("}") and not only_closers(after):
        return Decision("multi", "between a block's braces")   # `if (x) {|} else {`
    if after.strip() and not only_closers(after):
        return Decision("single", "code follows the cursor on this line")
    if not before.strip():
        above, above_start = previous_nonblank(text, offset)
        if above and is_comment_line(text, above, above_start, grammar, line_above_in_comment):
            return Decision("multi", "a comment line above says what to write")
        if opens_block(opener_line(text, offset, grammar), grammar):
            return Decision("multi", "empty body after a block opener")
        if above.rstrip().endswith("\\"):
            return Decision("single", "a line continued from the one above")
        code_above = without_trailing_comment(above, grammar).rstrip()
        if grammar is not None and CONTINUES_EXPRESSION.search(code_above) and not COMPLETE_LINE.search(code_above):
            return Decision("single", "the expression above goes on")   # (plain text: a sentence's end)
        return Decision("multi", "blank line in a block")
    # After a label and a space (`default: `) code in braced languages goes on with the line (there it may be an
    # object's key); right after the colon the next line is the body.
    label = grammar not in (None, "python") and before[-1] in " \t" and before.rstrip().endswith(":")
    if opens_block(opener_line(text, offset, grammar), grammar) and not opens_expression_brace(before) and not label:
        return Decision("multi", "after a block opener")
    if not after.strip() and awaits_brace(header, grammar, text, offset):
        return Decision("multi", "a block header whose brace is still to come")   # `} else|`, `for _, x := range xs|`
    if not after.strip() and closed_on_a_later_line(text, offset, {"(": ")", "[": "]"}.get(before.rstrip()[-1])):
        return Decision("multi", "inside brackets closed on a later line")   # `return (|` above a lone `)`
    tag = JSX_OPENING_TAG.search(before.rstrip()) if grammar in JSX_LANGUAGES else None
    if tag and not after.strip() and closed_on_a_later_line(text, offset, f"</{tag.group(1)}>"):
        return Decision("multi", "inside an element closed on a later line")   # `<section>|` above `</section>`
    return Decision("single", "finish the current line")


# A C-family control header with no brace yet: `else` / `} else`, or `if (...)`, `else if (...)`, `for (...)`,
# `while (...)` whose `(` the line's last `)` closes (not `if (err) return cb(err)`, nor a do's `} while (x)`); a Go
# or Rust one without its `{` (`for _, x := range xs`, `if x > 0`; not `match := f()`).
ELSE_ALONE = re.compile(r"\s*(?:\}\s*)?else\s*")
PAREN_HEADER = re.compile(r"\s*(?:\}\s*else\s+|else\s+)?(?:if|for|while)\s*\(")
BRACELESS_HEADER_GRAMMARS = {"c", "cpp", "java", "javascript", "typescript", "tsx"}
BARE_HEADER_WITHOUT_BRACE = re.compile(r"\s*(?:\}\s*else\s+)?(?:if|for|while|match|switch|select)\b(?!\s*:?=)[^{}]*")


# A function's signature with its body still to come (`fn f() -> i32`, `func f(n int) int`, `int f(int x)`,
# `function f(x: number): number`), an arrow's `=>`, or a Lua `if` / `while` / `for` without its `then` / `do`:
# the body is wanted, not the rest of the line (finished as one line, the model's `{` or `then` stood alone).
FUNCTION_SIGNATURE = {
    "rust": re.compile(r"\s*(?:pub(?:\([\w:\s]+\))?\s+)?(?:(?:async|const|unsafe|extern(?:\s+\"\w+\")?)\s+)*fn\s+\w+"
                       r"[^;={}]*\)(?:\s*->[^;={}]+)?(?:\s+where\b[^;{}]*)?"),
    "go": re.compile(r"\s*func\b[^;={}]*\)[^;={}]*"),
    "javascript": re.compile(r"\s*(?:export\s+(?:default\s+)?)?(?:async\s+)?function\b[^;={}]*\)"),
    "typescript": re.compile(r"\s*(?:export\s+(?:default\s+)?)?(?:async\s+)?function\b[^;={}]*\)(?:\s*:[^;={}]+)?"),
    # two words or more before the `(` (a type and a name), the first no statement's keyword
    "c": re.compile(r"\s*(?!(?:return|else|case|goto|sizeof|typedef|if|for|while|switch|do|assert)\b)[A-Za-z_][\w\s*]*"
                    r"[\s*][A-Za-z_]\w*\s*\([^;={}]*\)\s*"),
    "cpp": re.compile(r"\s*(?!(?:return|else|case|goto|sizeof|typedef|using|new|delete|throw|co_return|co_yield"
                      r"|co_await|if|for|while|switch|do|assert)\b)"
                      r"[A-Za-z_][\w\s*&:<>,]*[\s*&>][~A-Za-z_][\w:]*\s*\([^;{}]*\)"   # (default arguments)
                      r"(?:\s*(?:const|override|final|noexcept|&&?))*(?:\s*->[^;={}]+)?\s*"),
    "java": re.compile(r"\s*(?!(?:return|else|case|new|throw|if|for|while|switch|do|assert|yield)\b)"
                       r"[A-Za-z_][\w\s<>,\[\].?]*[\s>\]][A-Za-z_]\w*\s*\([^;={}]*\)(?:\s*throws\s+[\w.,\s]+)?\s*"),
}
FUNCTION_SIGNATURE["tsx"] = FUNCTION_SIGNATURE["typescript"]
LUA_HEADER_WITHOUT_OPENER = re.compile(r"\s*(?:(?:if|elseif)\b(?!.*\bthen\b)|(?:while|for)\b(?!.*\bdo\b)).*\S")


def signature_awaits_block(code: str, grammar: str | None) -> bool:
    """A function signature, an arrow or a Lua header whose block opener has not been typed (FUNCTION_SIGNATURE)."""
    if grammar in ("javascript", "typescript", "tsx") and code.endswith("=>"):
        return True
    if grammar == "lua":
        return LUA_HEADER_WITHOUT_OPENER.fullmatch(code) is not None and code_bracket_surplus(code, grammar) == 0
    signature = FUNCTION_SIGNATURE.get(grammar)
    if signature is None or signature.fullmatch(code) is None or code_bracket_surplus(code, grammar) != 0:
        return False
    return grammar not in C_FAMILY or declares_parameters(code)


C_FAMILY = {"c", "cpp", "java"}


def declares_parameters(code: str) -> bool:
    """Whether the first parentheses of a C, C++ or Java line hold parameter declarations (none, `void`, `...`, or
    each a type and a name: `int x`, `const char *s`), not a call's or a constructor's arguments (`f(x)`,
    `std::vector<int> v(n)`, `Foo f(a, b)`)."""
    opening = code.index("(")
    closing = matching_closer(code, opening)
    inside = code[opening + 1:closing].strip() if closing is not None else ""
    if inside in ("", "void", "..."):
        return True
    depth, pieces, piece = 0, [], ""
    for char in inside:   # split on the commas outside `<...>` and brackets
        depth += char in "<([" and 1 or char in ">)]" and -1 or 0
        if char == "," and depth == 0:
            pieces.append(piece)
            piece = ""
        else:
            piece += char
    pieces.append(piece)
    return all(PARAMETER.fullmatch(piece) for piece in pieces)


# A type (with its qualifiers, template arguments and array brackets) and a name, perhaps `...` and a default.
PARAMETER = re.compile(r"\s*(?:\.\.\.|[\w:<>,\s\[\].?]*[\w>\]](?:\s*\.\.\.\s*|[\s*&]+)[*&]*[A-Za-z_]\w*"
                       r"(?:\s*\[[^\]]*\])*(?:\s*=\s*[^,]+)?)\s*")


def awaits_brace(header: str, grammar: str | None, text: str, offset: int) -> bool:
    """Is this line (`header`, the cursor at its end) a block's header whose `{` has not been typed yet, with no
    body below it? The block is wanted, not the rest of a line (finished as one line, the model's ` {` stood alone
    and the block was never closed)."""
    code = header.rstrip()
    if len(code) > LONGEST_SCAN or (grammar != "lua" and re.search(r"\b(?:do|loop)$", code)) or code.endswith(";"):
        return False   # (`do`, `loop`: as likely the start of `double`, `done`, `loop_count`)
    if signature_awaits_block(code, grammar):
        headed = True
    elif grammar in BRACELESS_HEADER_GRAMMARS:
        headed = braceless_header(code, grammar)
    elif grammar in BARE_HEADER_GRAMMARS:
        headed = ELSE_ALONE.fullmatch(code) is not None or (
            BARE_HEADER_WITHOUT_BRACE.fullmatch(code) is not None and code_bracket_surplus(code, grammar) == 0)
    else:
        return False
    if not headed:
        return False
    below = next_code_line(text, offset)
    # A body already below it (deeper), or its brace on the next line (Allman style): the header is done.
    return not (below.strip() and (len(below) - len(below.lstrip()) > len(code) - len(code.lstrip())
                                   or below.lstrip().startswith("{")))


def braceless_header(line: str, grammar: str | None) -> bool:
    """A C-family control header with no brace: `else`, `} else`, or an `if` / `for` / `while (...)` whose `(` the
    line's last `)` closes. Its one statement comes on the next line, a level deeper."""
    code = line.rstrip()
    if grammar not in BRACELESS_HEADER_GRAMMARS or len(code) > LONGEST_SCAN:
        return False
    if ELSE_ALONE.fullmatch(code):
        return True
    opened = PAREN_HEADER.match(code)
    return opened is not None and closing_paren(code, opened.end() - 1, grammar) == len(code) - 1


def closing_paren(code: str, opening: int, grammar: str | None) -> int | None:
    """The index of the `)` closing the `(` at `opening`, strings and comments aside; None if none does."""
    scanned = code_outside_literals(grammar, code)
    return matching_closer(scanned[0] if scanned is not None and scanned[1] is None else code, opening)


def matching_closer(text: str, opening: int) -> int | None:
    """The index of the bracket that closes the one at `opening` (brackets of its kind nest: `[T: list[int]]`);
    None if none does."""
    opener = text[opening]
    closer = {"(": ")", "[": "]", "{": "}"}[opener]
    depth = 0
    for i in range(opening, len(text)):
        depth += 1 if text[i] == opener else -1 if text[i] == closer else 0
        if depth == 0:
            return i
    return None


def next_code_line(text: str, offset: int) -> str:
    """The first non-blank line after the cursor's ("" at the end of the text)."""
    start = text.find("\n", offset)
    while start != -1:   # line by line from the cursor's: the rest of a long file is not split at each keystroke
        end = text.find("\n", start + 1)
        line = text[start + 1:] if end == -1 else text[start + 1:end]
        if line.strip():
            return line
        start = end
    return ""


def closed_on_a_later_line(text: str, offset: int, closer: str | None) -> bool:
    """Does the next non-blank line after the cursor's start with `closer` (of the bracket or JSX element the cursor
    follows)? Then the brackets hold lines, not the rest of this one."""
    return closer is not None and next_code_line(text, offset).lstrip().startswith(closer)


def plan_lengths(shape: str, max_new_tokens: int, selection_tokens: int = 0) -> list[int]:
    """Length candidates in tokens, each capped by max_new_tokens. A fill is planned around the size of the
    selection it replaces (its tokens, as the engine counts them when it can), up to twice it: max_new_tokens is the
    longest inline completion, and a selection longer than it was replaced by a text cut off at that length."""
    if shape == "single":
        wanted = SINGLE_LENGTHS
    elif shape == "block":
        guess = max(8, selection_tokens)
        wanted = [max(8, guess // 2), guess, guess * 2]
        max_new_tokens = max(max_new_tokens, min(guess * 2, FILL_MAX_TOKENS))
    else:
        wanted = MULTI_LENGTHS
    return sorted({max(1, min(n, max_new_tokens)) for n in wanted})
