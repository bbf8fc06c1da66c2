"""Turn a raw middle from the model into text an editor can insert.

The diffusion model sees the suffix, so it often writes the suffix's start again, closes brackets the suffix
already closes, or runs on past the block it was asked to fill. Each rule below undoes one of those habits;
`clean_middle` applies them in order.
"""
from __future__ import annotations

import ast
import itertools
import keyword
import math
import os
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable

from .decide import (BARE_HEADER, BARE_HEADER_GRAMMARS, BRACED_HEADER, BRACELESS_HEADER_GRAMMARS, COMPLETE_LINE,
                     LABEL_LINE, braceless_header, bracket_surplus, code_after_cursor, code_bracket_surplus,
                     code_for_brackets, comment_start, opens_block, signature_awaits_block, without_trailing_comment)
from .literals import (HOLE, JSX_LANGUAGES, JSX_TAG, KEYWORD_BEFORE_REGEX, OPEN, code_outside_literals,
                       hole_end, jsx_text_blanked, line_comment_start, literal_ending, open_literal)
from .spans import next_closer_ends_go_list

PAIRS = {")": "(", "]": "[", "}": "{"}
WORD_START = re.compile(r"\w")   # a letter, digit or `_`: two of them side by side fuse two words
QUOTES = "\"'`"                  # string delimiters an editor closes by itself
OPENERS = {opener: closer for closer, opener in PAIRS.items()}
AUTO_CLOSED = set(")]}\"'`;")   # what editors type after the cursor on their own (auto-closing pairs, `;`)
# A line that only closes something: brackets, or Lua's `end` (`end)`, `end,`), not a statement like `end = 5;`.
# A closer may call what it closes: Go's `}()` of a deferred func, JavaScript's `})();` of an IIFE.
CLOSING_LINE = re.compile(r"^[\s)\]}>;,]*$|^\s*[)\]}]+\([^()]*\)[\s)\]};,]*$|^\s*end\b[\s)\]},;]*(?:--.*)?$")


# The brackets a document leaves open before the middle, each with its line's indentation (brackets_left_open).
LeftOpen = tuple[tuple[str, str], ...] | None


def nothing_known_left_open() -> LeftOpen:
    return None


@dataclass
class CleanContext:
    shape: str                  # "single" | "multi" | "block"
    before: str                 # the line's text before the insertion point
    rest_of_line: str           # the line's text after the replaced range
    suffix: str                 # what the model saw after the middle
    suffix_starts_line: bool = False  # the suffix begins at a line start (a selection of whole lines)
    line_ending: str = "\n"     # the document's
    indent_unit: str = "    "   # the document's indentation step
    indent_seen: bool = False   # that step was seen in the document or the editor's options, not assumed
    indent_own: bool = True     # that step is the document's own (not that of a notebook's cells above)
    original: str = ""          # the selected text a fill / rewrite replaces
    whole_lines: bool = False   # the selection ended with a newline, so the replacement must too
    line_above: str = ""        # the nearest non-blank line above the cursor's line
    tab_size: int | None = None # from the editor's formatting options, when it sent them
    grammar: str | None = None  # the document's tree-sitter grammar (None: plain text), for its comment syntax
    opener: str = ""            # decide.opener_line: `before`, or on a blank line `line_above`, with a header
                                # spread over several lines joined into one ("" : those lines as they are)
    comma_before_closer: bool = False   # Go: the suffix's first closer ends a list (spans.closes_go_list)
    literal_lines: int = 0      # the range starts inside a string or comment: 1 on one line, 2 on more (spans)
    literal_closer: str = ""    # what ends that string or comment, when it is closed (spans)
    literal_ends_below: bool = False   # it ends below the cursor, not with the next comment's end (spans)
    in_brackets: bool = False   # the range starts inside brackets its statement opened on a line above
    blank_lines_above: int = 0  # blank lines between `line_above` and the cursor's line
    own_mixed_indentations: frozenset[str] = frozenset()   # style.mixed_indentations of the document
    text: str = ""              # the whole document (its names tell a word the model wrote again from one it meant)
    replaced: tuple[int, int] = (0, 0)   # where in `text` the middle goes: the range it replaces
    scope_at_margin: bool = False        # the innermost scope around the range begins on a line at column 0
    bracket_opened_at: str | None = None # with only indentation before the range: that of the line holding the
                                         # innermost bracket open there (decide.bracket_opener_indentation)

    @cached_property
    def left_open(self) -> LeftOpen:
        """brackets_left_open of the document around the middle: worked out once for all the candidates of a
        request, and only when a rule asks."""
        return brackets_left_open(self.text, *self.replaced, self.grammar)


SPACE_BESIDE_PUNCTUATION = re.compile(r"(?<=\w) (?=[^\w\s])|(?<=[^\w\s]) (?=\w)")
QUOTED = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')""")   # a string's text, kept as it is
PYTHON_DEFINITION = re.compile(r"(?:async[ \t]+def|def|class)[ \t]|@")
METHOD_HEADER = re.compile(r"\s*(?:async\s+)?def\s+\w+\s*\(\s*(?:self|cls)\b")


def indentation(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t"))]


def normalize_newlines(middle: str) -> str:
    return middle.replace("\r\n", "\n").replace("\r", "\n")


def first_line_only(middle: str) -> str:
    """Single-line mode: the rest of the current line and nothing more."""
    return middle.split("\n", 1)[0]


def collapse_leading_gap(middle: str, before: str) -> str:
    """Mid-line, after code: a tab in the gap that opens the fill is noise (styles indent with tabs, but align
    with spaces, as gofmt does); the gap becomes one space. Runs of spaces are kept: they may be alignment."""
    if not before or before[-1].isspace():
        return middle
    gap = len(middle) - len(middle.lstrip(" \t"))
    return " " + middle[gap:] if "\t" in middle[:gap] else middle


# The line so far stops where an operand must follow: after an operator, an opening bracket, a comma, or a word
# such as `in`, `and`, `not`, `import`, `await`, `new`, `throw`. (Not `return`: a bare `return` ends a statement.)
WANTS_OPERAND = re.compile(r"(?:[=(\[{,+\-*/%&|^~<>!?:]|\b(?:in|and|or|not|is|if|elif|while|for|import|from|await|"
                           r"with|as|new|typeof|of|yield|throw|assert|del|case))\s*$")


# The line so far stops after a word that a name or an expression follows (`const |`, `return |`, `def |`).
DECLARES = re.compile(r"\b(?:const|let|var|return|def|class|function|func|fn|local|struct|enum|interface|type|"
                      r"val|auto)\s+$")


def operand_after_line_break(middle: str, before: str, grammar: str | None = None) -> str:
    """`foo(` + `\n    a, b\n`: where the line so far wants an operand and the model put its one line of it on a
    line of its own, that line (a one-line fill kept only the empty line before it, so nothing was offered). After
    the comma of a list laid out an item a line, next_item_below keeps such a line where the model put it."""
    lines = middle.split("\n")
    written = [line for line in lines if line.strip()]
    if (lines[0].strip() or len(written) != 1 or not before.strip() or not WANTS_OPERAND.search(before)
            or open_literal(grammar, before)):
        return middle
    # (`import` + `os`, `x =` + `1`: a space between, where the line so far does not end in one or in a bracket)
    return ("" if before[-1].isspace() or before[-1] in "([{" else " ") + written[0].strip()


def one_item_a_line(before: str, line_above: str, grammar: str | None) -> bool:
    """The line so far ends in a comma, and so does the code line above it or it opens a bracket: a list (of
    arguments, items, imported names) laid out an item a line."""
    code_above = without_trailing_comment(line_above, grammar).rstrip()
    block_brace = code_above.endswith("{") and bool(BRACED_HEADER.search(code_above) or (
        grammar in BARE_HEADER_GRAMMARS and BARE_HEADER.match(code_above)))   # (`int main() {`, Go's `if x {`)
    return before.rstrip().endswith(",") and (code_above.endswith(",") or (
        code_above[-1:] in ("(", "[", "{") and not block_brace))


def next_item_below(middle: str, before: str, line_above: str, rest_of_line: str, grammar: str | None) -> str:
    """`    "a": 1,` in a list laid out an item a line + `\n    "b": 2,`: the model's next item on a line of its own,
    as it wrote it and as the list is laid out (joined, it became `"a": 1, "b": 2,`). "" unless the line right
    after the cursor's is one as deep as the cursor's, with nothing after the cursor."""
    lines = middle.split("\n")
    if (len(lines) < 2 or lines[0].strip() or not lines[1].strip() or code_after_cursor(rest_of_line, grammar).strip()
            or open_literal(grammar, before) or not one_item_a_line(before, line_above, grammar)
            or indentation(lines[1]) != indentation(before) or CLOSING_LINE.match(lines[1])):
        return ""
    return "\n" + lines[1].rstrip()


def lines_inside_opened_bracket(middle: str, before: str, rest_of_line: str, grammar: str | None = None) -> str:
    """`xs = [` + `\n    1,\n    2,\n]`: where the line so far ends in an opening bracket and the model began a line
    below it, the bracket's lines through the one that closes it (a one-line fill kept only the empty first line, so
    nothing was offered). "" when the model wrote something else: a line on the cursor's, lines no deeper than the
    cursor's, a bracket it never closes or closes twice, or a header whose block would follow."""
    lines = middle.split("\n")
    code_before = before.rstrip()
    if (lines[0].strip() or code_after_cursor(rest_of_line, grammar).strip() or not code_before
            or code_before[-1] not in "([{" or open_literal(grammar, before)):
        return ""
    depth = code_bracket_surplus(without_trailing_comment(code_before, grammar), grammar)
    body_indent = len(indentation(before))
    for number, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        depth += code_bracket_surplus(without_trailing_comment(line, grammar), grammar)
        if depth <= 0:   # (a header's `):` or `) {` wants its body too: not one line's finish)
            header = " ".join([code_before] + [text.strip() for text in lines[1:number + 1]])
            closes = depth == 0 and number > 1 and not opens_block(header, grammar)
            return "\n".join(lines[:number + 1]) if closes else ""
        if len(indentation(line)) <= body_indent:
            return ""
    return ""


def operand_lines_below(middle: str, before: str, rest_of_line: str, grammar: str | None = None) -> str:
    """`return a ||` + `\n    b ||\n    c;`: where the fill's line ends wanting more (an operator, `=`) and the
    model went on below it, those lines through the first that ends the expression (a one-line fill kept the line
    up to its operator, which broke the code). "" when the model wrote something else: a blank line or a line less
    deep than the cursor's before the end, or a block's header."""
    lines = middle.split("\n")
    if len(lines) < 2 or code_after_cursor(rest_of_line, grammar).strip() or open_literal(grammar, before):
        return ""
    code = without_trailing_comment(before + lines[0], grammar).rstrip()
    # (after an opening bracket or a comma, the lines below are lines_inside_opened_bracket's to judge)
    if not code.strip() or code[-1] in "([{," or not expression_goes_on(code, grammar) or opens_block(code, grammar):
        return ""
    floor = len(indentation(before + lines[0]))
    for number, line in enumerate(lines[1:], start=1):
        code = without_trailing_comment(line, grammar).rstrip()
        if not code.strip() or len(indentation(line)) < floor or opens_block(code, grammar):
            return ""
        following = lines[number + 1] if number + 1 < len(lines) else ""
        # (a line ending in `:` outside Python, a ternary's `b :`, goes on; so does one whose next line starts with
        # an operator: `b` then `+ c;`)
        if not expression_goes_on(code, grammar) and not (code.endswith(":") and grammar != "python") and not (
                following.strip() and GOES_ON_FROM_ABOVE.match(following.lstrip())):
            return "\n".join(lines[:number + 1])
    return ""


def expression_goes_on(code: str, grammar: str | None) -> bool:
    """goes_on_below, but for a line finished though it ends in an operator's character (`n++`, `...`)."""
    return goes_on_below(code, grammar) and not COMPLETE_LINE.search(code)


def drop_comment_for_missing_operand(middle: str, before: str, grammar: str | None = None) -> str:
    """`x = # ...`, `for row in # ...`: a comment where the statement still wants an operand completes nothing and
    leaves a half statement; nothing is better. A comment after a finished statement is fine, and so is a `#` in a
    string's or a comment's text (`"https://x.org/|"` written `#top"`). A comment the user began (Lua's `-|` +
    `-- Returns ...`, a LuaDoc `---`) is judged by the code before it."""
    if not comment_start(grammar).match(middle) or open_literal(grammar, before):
        return middle
    began = line_comment_start(grammar, before + middle.split("\n", 1)[0])
    code = before[:began] if 0 <= began < len(before) else before
    if code.strip() and WANTS_OPERAND.search(code):
        return ""
    return middle


LUA_BLOCK_COMMENT = re.compile(r"--\[(=*)\[")   # `--[[ ... ]]`, `--[==[ ... ]==]`


def comment_only(middle: str, grammar: str | None = None) -> bool:
    """Every non-blank line is a comment: a line comment, or a line of a block comment (`/* ... */`, Lua's
    `--[[ ... ]]`) still open there."""
    closer = None   # the block comment's closer while one is open
    starts_comment = comment_start(grammar)
    for line in (line.strip() for line in middle.split("\n")):
        if not line:
            continue
        if closer is None and not starts_comment.match(line):
            return False                      # code (`int x = 0; /* counter */` starts with code)
        lua_block = LUA_BLOCK_COMMENT.match(line) if grammar == "lua" and closer is None else None
        if lua_block:
            closer, line = "]" + lua_block.group(1) + "]", line[lua_block.end():]
        elif closer is None and line.startswith("/*") and grammar != "lua":
            closer, line = "*/", line[2:]
        if closer is not None:
            closed = line.find(closer)
            if closed != -1 and line[closed + len(closer):].strip():
                return False                  # `/* a */ x = 1;`: code after the comment closes
            if closed != -1:
                closer = None
    return True


def body_still_empty(before: str, line_above: str, suffix: str, grammar: str | None = None,
                     opener: str = "") -> bool:
    """The cursor is where a block's first statement goes (right after its opener, or on a blank line under it)
    and nothing after the cursor is a statement of that block yet."""
    opener = opener or (before if before.strip() else line_above)
    if not opens_block(opener, grammar):
        return False
    rest_of_line, *following = suffix.split("\n")
    if rest_of_line.strip():
        return set(rest_of_line.strip()) <= set(PAIRS)     # `{|}`: the block closes on the cursor's line
    limit = len(indentation(opener))
    for line in following:
        if line.strip() and not comment_start(grammar).match(line):
            return len(indentation(line)) <= limit
    return True


def drop_bare_name_statement(middle: str, before: str, grammar: str | None, line_above: str = "",
                             in_brackets: bool = False) -> str:
    """"" for a Python fill that is one bare name on an indented line of its own (`Bu` in a loop body, or on the
    line after `for x in xs:`): a statement that does nothing, which parses, so the parse check lets it through.
    A keyword (`pass`, `break`) stays, and so does a name at the top level, where a notebook cell's last line
    shows its value, and one inside brackets (an argument, a list item), which is not a statement: known from the
    statement around the cursor, or, when that is not known, from a line above that opens a bracket or ends in a
    comma, its comment aside."""
    above = without_trailing_comment(line_above, grammar).rstrip()
    if grammar != "python" or "\n" in middle.strip() or in_brackets or above[-1:] in ("(", "[", "{", ","):
        return middle
    line = before + middle if "\n" not in middle else middle[middle.rfind("\n") + 1:]
    name = line.strip()
    indented = line[:1] in (" ", "\t")
    return "" if indented and name.isidentifier() and not keyword.iskeyword(name) else middle


def drop_comment_only_body(middle: str, before: str, line_above: str, suffix: str,
                           grammar: str | None = None, opener: str = "") -> str:
    """An empty body asks for code. A comment alone completes nothing there, and in Python a body of comments is an
    IndentationError that tree-sitter's lenient parse does not report (so the parse check cannot catch it)."""
    if comment_only(middle, grammar) and body_still_empty(before, line_above, suffix, grammar, opener):
        return ""
    return middle


# Python blocks whose body cannot be a docstring: a literal alone there is a statement that does nothing.
NO_DOCSTRING_BLOCK = re.compile(r"\s*(?:async\s+)?(?:for|while|if|elif|else|try|except|finally|with|match|case)\b")


def drop_literal_only_body(middle: str, before: str, line_above: str, suffix: str, grammar: str | None = None,
                           opener: str = "") -> str:
    """"" for a Python fill that is one literal alone (a string, a number; `...` stays, a placeholder like `pass`)
    in the still empty body of a loop, an `if`, a `try` or a `with`: it parses, so the parse check lets it through,
    and it does nothing. Only a function or a class takes a string there, as its docstring (their headers, and a
    header that starts on an earlier line, are left alone)."""
    if grammar != "python" or not middle.strip():
        return middle
    header = opener or (before if before.strip() else line_above)
    if not NO_DOCSTRING_BLOCK.match(header) or not body_still_empty(before, line_above, suffix, grammar, opener):
        return middle
    # Parsed as the body it is (a string's later lines may sit left of its first: no dedenting).
    try:
        statements = ast.parse("if 1:" + (middle if before.strip() else "\n" + before + middle),
                               filename="<fill>").body[0].body   # (a fill's warnings: filtered under that name)
    except (SyntaxError, ValueError, RecursionError, MemoryError):   # (`-----...-1` nests past the parser's stack)
        return middle   # not one literal: the other checks decide
    if len(statements) != 1 or not isinstance(statements[0], ast.Expr):
        return middle
    value = statements[0].value
    literal = isinstance(value, ast.JoinedStr) or (isinstance(value, ast.Constant) and value.value is not Ellipsis)
    return "" if literal else middle


def drop_repeated_header(middle: str, before: str) -> str:
    """After a block header on the cursor's line (`for x in xs:`, `if (ok) {`), a first line the model wrote that
    is that header again goes: kept, it would open a second block inside the first (a loop run inside itself)."""
    lines = middle.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if not first or lines[first].strip() != before.strip():
        return middle
    return "\n".join(lines[:first] + lines[first + 1:])


WORD_BEING_TYPED = re.compile(r"[A-Za-z_]\w*$")
LONGEST_WORD = 256   # a word being typed is looked for this far back: no name is longer
WORD_FIRST = re.compile(r"[A-Za-z_]\w*")


def drop_repeated_word_start(middle: str, before: str, text: str) -> str:
    """Mid-word (`print(val|)`), a middle that writes the word being typed again from its start (`value`) would
    glue the two (`valvalue`): the typed part goes, unless the glued name is one the document has."""
    typed = WORD_BEING_TYPED.search(before, max(0, len(before) - LONGEST_WORD))   # (base64 on the line: linear)
    written = WORD_FIRST.match(middle)
    if not typed or len(typed.group()) < 2 or not written or not written.group().startswith(typed.group()):
        return middle
    if re.search(rf"\b{re.escape(typed.group() + written.group())}\b", text):
        return middle
    return middle[len(typed.group()):]


def drop_repeated_line_start(middle: str, before: str) -> str:
    """Mid-line where an operand must follow (`x = |`, `if (|`, `foo(a, |`), a middle that starts by writing the
    line so far again (`x = compute()`) would give `x = x = compute()`, which parses: the repeat goes. Only a
    repeat of 3 characters or more (`a(` then `a(b)` may be meant)."""
    written = before.strip()
    if len(written) < 3 or not (WANTS_OPERAND.search(before) or DECLARES.search(before)):
        return middle
    gap = len(middle) - len(middle.lstrip(" \t"))
    if not middle.startswith(written, gap):
        return middle
    rest = middle[gap + len(written):]
    if not rest.strip() or rest[0] == "\n":
        return middle   # nothing after the repeat on its line: not a repeat of the line's start
    # The repeat must end where a token ends: `import |` then `importlib`, `ok = |` then `ok == b` are no repeats.
    if (written[-1].isalnum() or written[-1] == "_") and (rest[0].isalnum() or rest[0] == "_"):
        return middle
    if not written[-1].isalnum() and rest[0] in "=<>&|*/+-":
        return middle
    return rest.lstrip(" \t") if before[-1].isspace() else rest


# Keywords never meant twice in a row in code (`local local x`, `return return`, `public public`), though some
# grammars parse the second as a name (tree-sitter-lua reads `local local` as a declaration of `local`) and C lets
# `const const` mean `const`. Not those whose repeat means something (`not not x`, `typeof typeof`, `await await`,
# Lua's `end end` of two blocks, C's `long long`).
NEVER_DOUBLED = {"return", "local", "function", "def", "class", "public", "private", "protected", "static", "final",
                 "let", "var", "const", "fn", "func", "pub", "mut", "if", "elif", "else", "then", "for", "while",
                 "import", "from", "package", "throw", "raise", "struct", "enum", "interface", "case", "default",
                 "break", "continue", "pass", "goto", "namespace", "unsigned", "signed", "auto"}
DOUBLED_WORD = re.compile(r"\b(\w+)([ \t]+)\1\b")


DOUBLED_NAMES = {grammar: {"static", "from"} for grammar in ("javascript", "typescript", "tsx")}   # `static static()`


def drop_doubled_keywords(middle: str, grammar: str | None = None, before: str = "") -> str:
    """A keyword the model wrote twice in a row in code (NEVER_DOUBLED) is written once; not in a language whose
    literals are not known (CSS's `auto auto`), nor where the middle starts in a comment or string (prose)."""
    opened = code_outside_literals(grammar, before)
    if opened is None or opened[1] is not None:
        return middle
    keywords = NEVER_DOUBLED - DOUBLED_NAMES.get(grammar, set())
    code = blank_literals(middle, grammar, before)
    for match in reversed(list(DOUBLED_WORD.finditer(code))):
        if match.group(1) in keywords:
            middle = middle[:match.start()] + middle[match.start(2) + len(match.group(2)):]
    return middle


def drop_repeated_line_above(middle: str, line_above: str) -> str:
    """On a blank line, a first line that writes the code line above again (`b := a * 2` under `b := a * 2`) is a
    duplicate the parse check cannot catch (it parses); the lines after it are kept. Short lines (`}`, `end`,
    `i++;`) may well come twice."""
    lines = middle.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return middle
    repeated = lines[first].strip()
    if repeated != line_above.strip() or len(repeated) < 6 or not re.search(r"\w", repeated) \
            or CLOSING_LINE.match(repeated):
        return middle
    return "\n".join(lines[first + 1:])


def drop_leading_blank_lines(middle: str) -> str:
    """On a blank line the text starts at the cursor; a middle that begins with newlines would leave the cursor's
    line empty and push the code down."""
    lines = middle.split("\n")
    while len(lines) > 1 and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def definition_gap(middle: str, ctx: CleanContext) -> int:
    """Blank lines to keep of those the model wrote before a Python definition on a blank line (PEP 8: two before
    one at the top level, one before a method), less those already above: a new function at the end of the file
    was glued to the one before it. None after a header, a decorator or a comment, which go with what follows."""
    if ctx.grammar != "python" or ctx.before.strip() or ctx.original or not ctx.line_above.strip():
        return 0
    above = ctx.opener or ctx.line_above   # (a decorator spread over lines: `@app.route(` ... `)`)
    if above.rstrip().endswith(":") or above.lstrip().startswith(("@", "#")):
        return 0
    lines = middle.split("\n")
    written = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if not written or not PYTHON_DEFINITION.match(lines[written].lstrip()):
        return 0
    wanted = 1 if ctx.before or indentation(lines[written]) else 2
    return min(written, max(0, wanted - ctx.blank_lines_above))


def header_finished_below(first_line: str, before: str, opener: str, bracket_opened_at: str | None,
                          grammar: str | None) -> str:
    """On a blank line inside a bracket a line above opened, the model's first line closing it finishes that line's
    header (`int verify(int *ctx,` then `int type) {`): the header's lines joined (Python's `def f(a,` + `b):` is
    told by its `def`) at the indentation of the line that opened the bracket; "" otherwise. Not a `}` (the
    block above ends: `} else {` goes on with its own body)."""
    if bracket_opened_at is None or before.strip():
        return ""
    code = code_for_brackets(first_line, grammar)
    closer_at = first_closer_of_what_is_before(code)
    if closer_at is None or code[closer_at] == "}":
        return ""
    return bracket_opened_at + " ".join(part.strip() for part in (opener, first_line) if part.strip())


def keep_inside_scope(middle: str, before: str, suffix: str = "", line_above: str = "", opener: str = "",
                      grammar: str | None = None, in_brackets: bool = False, bracket_opened_at: str | None = None,
                      left_open: Callable[[], LeftOpen] = nothing_known_left_open) -> str:
    """Multi-line mode: keep lines until one's indentation leaves the block being written.

    After a block opener (`def f():`, `{`) the body is deeper than the opener's line, so a line at or above the
    opener's indentation has left it (a lone closer there is kept only when the suffix does not already close).
    On a blank line a line shallower than the cursor column has left it; at column 0 (an editor's empty line
    inside a block holds no indentation), shallower than both the middle's first line and the code line above
    (inside `foo(` the closing `)` sits at the line above's level). A first line that closes the bracket a line
    above opened (`int verify(int *ctx,` then `int type) {` at the parameters' column) finishes that line's
    header: the block is that line's (`bracket_opened_at`: its indentation). On a blank line, closers of blocks the
    document leaves open (`left_open()`), each at its block's depth, are kept however shallow: nothing below
    closes those blocks.
    """
    lines = middle.split("\n")
    in_literal = lines_in_literals(before, lines, grammar)   # (their indentation is a string's text)
    header = opener or before   # a header over several lines: its first line's indentation
    finished_header = header_finished_below(lines[0], before, opener, bracket_opened_at, grammar)
    header = finished_header or header
    if (before.strip() or finished_header) and opens_block(header, grammar):
        limit = len(indentation(header))
        for i, line in enumerate(lines[1:], start=1):
            if sets_indentation(line, grammar) and i not in in_literal and len(indentation(line)) <= limit:
                own_block = len(indentation(line)) == limit and not block_closed_below(line, suffix, limit)
                if own_block and grammar != "python" and CONTINUES_BLOCK.match(line):
                    continue   # `} else {`, Lua's `else`: the block goes on, to the closer below
                ends_block = ENDS_BLOCK.get(grammar)
                closes_here = own_block and (CLOSING_LINE.match(line) or ends_block and ends_block.match(line)) or (
                    CLOSING_LINE.match(line) and not suffix_closes_block(line, suffix, limit))
                return "\n".join(lines[:i + 1]) if closes_here else cut_before(
                    lines, i, lambda above: len(indentation(above)) <= limit, grammar)
        # comments the model wrote out there at its end start what comes after the block (`# helpers`)
        return cut_before(lines, len(lines), lambda above: len(indentation(above)) <= limit, grammar)
    if before.strip():
        limit = len(indentation(before))
    elif before:
        limit = len(before)
    else:
        first = next((line for line in lines if line.strip()), "")
        limit = min(len(indentation(first)), len(indentation(line_above)))
    # On a blank line under an opener whose block nothing below closes yet (`local function f(x)` just typed, no
    # `end` under it), the model's closer at the opener's depth is the block's own: kept, as after the opener.
    above = "" if before.strip() else (opener or line_above)
    above_depth = len(indentation(above)) if above.strip() and opens_block(above, grammar) else None
    for i, line in enumerate(lines[1:], start=1):
        if sets_indentation(line, grammar) and i not in in_literal and len(indentation(line)) < limit:
            if closes_bracket_from_above(line, before, lines[:i + 1], suffix, grammar, in_brackets):
                # the statement's end: it and the closers right after it (`}` then `)`), not what the model wrote
                # after the statement
                end = i
                while end + 1 < len(lines) and closes_bracket_from_above(lines[end + 1], before, lines[:end + 2],
                                                                         suffix, grammar, in_brackets):
                    end += 1
                return "\n".join(lines[:end + 1])
            closed = -code_bracket_surplus(before + "\n".join(lines[:i + 1]), grammar)
            if (CLOSING_LINE.match(line) and closed > 0
                    and not suffix_closes_block(line, suffix, len(indentation(line)))
                    and closed <= len(left_open() or ()) and left_open()[-closed][1] == indentation(line)):
                limit = len(indentation(line))   # a closer the document lacks: the model leaves the block on purpose
                continue
            closes_here = (above_depth is not None and len(indentation(line)) == above_depth
                           and CLOSING_LINE.match(line) and not block_closed_below(line, suffix, above_depth))
            return "\n".join(lines[:i + 1]) if closes_here else cut_before(
                lines, i, lambda above: len(indentation(above)) < limit, grammar)
    return cut_before(lines, len(lines), lambda above: len(indentation(above)) < limit, grammar)


def closes_bracket_from_above(line: str, before: str, written: list[str], suffix: str, grammar: str | None,
                              in_brackets: bool = False) -> bool:
    """A closer line (`    )`) of a bracket opened above the cursor's line (`logger.debug(` then its arguments),
    which nothing below closes: the statement's end, not a line that left the block. A `}` only where the cursor
    is known to be inside a statement's brackets (elsewhere it ends a block)."""
    return (bool(line.strip()) and bool(CLOSING_LINE.match(line)) and (in_brackets or line.lstrip()[0] in ")]")
            and code_bracket_surplus(before + "\n".join(written), grammar) < 0
            and not suffix_closes_block(line, suffix, len(indentation(line))))


# What ends a string or comment that can span lines (Python's docstrings, block comments, template literals, Lua's
# long brackets, Rust's raw strings): a middle without any stays in the literal its range starts in.
LITERAL_CLOSERS = ('"""', "'''", "*/", "`", "]]", "]=", '"#')
LITERAL_CLOSERS_BY_GRAMMAR = {   # (a Go raw string's text may hold `]]`, a shell test, and stays that text)
    "python": ('"""', "'''"), "go": ("*/", "`"), "javascript": ("*/", "`"), "typescript": ("*/", "`"),
    "tsx": ("*/", "`"), "lua": ("]]", "]="), "rust": ("*/", '"#'), "c": ("*/",), "cpp": ("*/",),
    "java": ("*/", '"""'),
}


def lines_in_literals(before: str, lines: list[str], grammar: str | None) -> set[int]:
    """The indexes of the lines after the first that start inside a string or comment left open above them (in
    the cursor's line or the middle); none for a grammar whose literals are not known. One scan: a line break
    inside a literal is blanked, and every one after a literal left open is inside it."""
    scanned = code_outside_literals(grammar, before + "\n".join(lines) + "\n")
    if scanned is None:
        return set()
    kept, inside = scanned[0], set()
    line_break = len(before) + len(lines[0])   # the one ending line 0
    for i in range(1, len(lines)):
        if line_break >= len(kept) or kept[line_break] != "\n":
            inside.add(i)
        line_break += 1 + len(lines[i])
    return inside


def sets_indentation(line: str, grammar: str | None) -> bool:
    """Whether a line's indentation says which block it is in: not a blank line, nor a C preprocessor line
    (`#ifdef`, `#endif` sit at column 0 inside any block), nor a Python comment line (Python reads no comment's
    indentation: code commented out at column 0 sits inside any block)."""
    return bool(line.strip()) and not (grammar in ("c", "cpp") and line.lstrip().startswith("#")) and not (
        grammar == "python" and line.lstrip().startswith("#"))


def cut_before(lines: list[str], i: int, leaves: Callable[[str], bool], grammar: str | None) -> str:
    """The lines before line i, which left the block (or all of them), less the Python comment lines just before
    it that stand outside the block (`# helpers` above the next `def`): they go with what follows (blank lines
    above them stay)."""
    j = i
    while j > 1 and (not lines[j - 1].strip() or grammar == "python" and lines[j - 1].lstrip().startswith("#")
                     and leaves(lines[j - 1])):
        j -= 1
        if lines[j].strip():
            i = j
    return "\n".join(lines[:i])


def suffix_closes_block(closing_line: str, suffix: str, opener_indent: int) -> bool:
    """Does the suffix already close the block opened on the cursor's line, as `closing_line` of the middle would?
    Yes when the rest of the cursor's line starts with that closer (`{|}`), or when the next code line does at
    the opener's indentation or deeper; a closer further out closes an outer block (a function's `}` after
    `if x {|`, with no `}` typed for the `if`)."""
    closers = closers_like(closing_line)
    rest_of_line, *following = suffix.split("\n")
    if rest_of_line.strip():
        return rest_of_line.strip().startswith(closers)
    next_line = next((line for line in following if line.strip()), None)
    return (next_line is not None and next_line.strip().startswith(closers)
            and len(indentation(next_line)) >= opener_indent)


def closers_like(closing_line: str) -> tuple[str, ...]:
    """What in the suffix would close the block as `closing_line` does: its first character (`}`), or Lua's `end`,
    which `else` / `elseif` (and `until` of `repeat`) stand in for."""
    closer = "end" if closing_line.strip().startswith("end") else closing_line.strip()[:1]
    return (closer, "else", "elseif", "until") if closer == "end" else (closer,)


def block_closed_below(closing_line: str, suffix: str, opener_indent: int) -> bool:
    """suffix_closes_block, or the suffix's first line back at the opener's depth (or further out) closes it: the
    lines between are the block's own body, already written (`if (a) {|` above `x();` and `}`)."""
    if suffix_closes_block(closing_line, suffix, opener_indent):
        return True
    for line in suffix.split("\n")[1:]:
        if line.strip() and len(indentation(line)) <= opener_indent:
            return line.strip().startswith(closers_like(closing_line))
    return False


def same_line(candidate: str, target: str) -> bool:
    """Lines with real content match at the same or a shallower indentation (a model may lose indentation), not at
    a deeper one: `return False` inside an `if` above the function's own `return False` is a statement of its own.
    A line that only closes (`}`, `});`, `end`) must match its indentation too, or an inner block's closer would be
    mistaken for the suffix's."""
    if not CLOSING_LINE.match(target) and re.search(r"\w{2}|\w\W", target.strip()) and len(target.strip()) >= 3:
        return (spacing_free(candidate) == spacing_free(target)
                and len(indentation(candidate).expandtabs()) <= len(indentation(target).expandtabs()))
    return candidate.rstrip() == target.rstrip()


def spacing_free(line: str) -> str:
    """The line's code without the spacing that does not change it: runs squeezed, none between a word and
    punctuation (a model writing the next line again as `return  a`, `x=f(a,b)` has written it again all the
    same). Kept: a space between two operators (`a - -b` is not `a--b`) and every space in a string."""
    parts = QUOTED.split(line.strip())
    return "".join(part if i % 2 else SPACE_BESIDE_PUNCTUATION.sub("", " ".join(part.split()))
                   for i, part in enumerate(parts))


def drop_repeated_suffix_lines(middle: str, suffix: str, before: str, suffix_starts_line: bool = False,
                               grammar: str | None = None) -> str:
    """Cut the middle where it starts writing the suffix's next line again (not a line of a string's text, which may
    read like code: `end` in a Lua long string, `}` in a text block)."""
    suffix_lines = suffix.split("\n")
    following = suffix_lines if suffix_starts_line else suffix_lines[1:]
    target = next((line for line in following if line.strip()), None)
    if target is None:
        return middle
    following = following[following.index(target):]
    lines = middle.split("\n")
    in_literal = lines_in_literals(before, lines, grammar)
    for i, line in enumerate(lines):
        if not line.strip() or i in in_literal:
            continue
        if i == 0:
            # Only a first line that starts a line of its own can repeat a whole suffix line.
            if before.strip():
                continue
            # Indented as reindent_first_line will leave it: the cursor's column, or the model's own when deeper.
            if len(indentation(line)) < len(before):
                line = before + line.lstrip()
        if same_line(line, target) and not (
                begins_something(line, i) and goes_on_otherwise(lines[i + 1:], following)) and not (
                opens_block_like_the_suffixs(line) and goes_on_after_its_block(lines[i:], following, grammar)) and not (
                CLOSING_LINE.match(line) and (code_bracket_surplus("\n".join(lines[:i]), grammar) > 0
                                              or opens_what_the_suffix_closes(lines[i + 1:], following, grammar))):
            return "\n".join(lines[:i])   # (a closer of a bracket the middle opened is its own, not the suffix's)
    return middle


LUA_BLOCK_END = re.compile(r"\s*(?:end|until)\b")
# `else` and `elseif ... then` end the branch above as they open their own: no deeper.
LUA_BRANCH = re.compile(r"\s*(?:else|elseif)\b")


def lua_blocks_left_open(lines: list[str], grammar: str | None) -> bool:
    """Lua: do these lines open more blocks (`function f()`, `if x then`, `for ... do`) than they end?"""
    if grammar != "lua":
        return False
    depth = 0
    for line in lines:
        code = without_trailing_comment(line, grammar)
        depth += opens_block(code, grammar) - bool(LUA_BLOCK_END.match(code) or LUA_BRANCH.match(code))
    return depth > 0


def opens_what_the_suffix_closes(lines_after: list[str], suffix_lines: list[str], grammar: str | None) -> bool:
    """After a closer like the suffix's next line, the middle goes on with lines of its own that open a bracket
    (`}` then `if (x > 2) {` and its body): the suffix's closer is for that one, and the middle's closer closes the
    block the cursor is in. Not where those lines are the suffix's own again (the model wrote the suffix twice)."""
    if code_bracket_surplus("\n".join(lines_after), grammar) <= 0 and not lua_blocks_left_open(lines_after, grammar):
        return False
    written = next((line for line in lines_after if line.strip()), "")
    target_at = next((i for i, line in enumerate(suffix_lines) if line.strip()), None)
    then = next((line for line in suffix_lines[target_at + 1:] if line.strip()), "") if target_at is not None else ""
    return not same_line(written, then)


# A line that annotates what follows it: a decorator or annotation (`@Override`, `@property`), a Rust attribute.
ANNOTATES_NEXT = re.compile(r"\s*(?:@[A-Za-z_]|#!?\[)")
# A comment line holding its marker only: a paragraph break in a comment block (`//`, `///`, `#`, `--`, ` *`).
BARE_COMMENT_LINE = re.compile(r"\s*(?://[/!]?|#+|--+|\*)\s*$")
# The opener of a block comment whose text starts on the next line (`/**`): the same over every member.
BARE_COMMENT_OPENER = re.compile(r"\s*/\*\*?\s*$")
OPENS_AT_END = re.compile(r".*[([{]\s*$")
LUA_ELSE_GLUED_TO_IF = re.compile(r"elseif\b")
# A block's keyword alone (`try:`, `try {`, `do {`, `loop {`): two such blocks in a row differ only below it.
BARE_BLOCK_KEYWORD = re.compile(r"\s*(?:try|do|loop)\s*[:{]?\s*$")
# A statement that is seldom written twice in a row (`if err != nil {`, `return g(`, `x = f(`): one that opens a
# bracket like the suffix's next line is that line written again, whatever the model wrote under it.
CONTROL_OR_BINDING = re.compile(
    r"\s*(?:(?:if|for|while|switch|match|return|let|const|var|else|elif|try|catch|loop|do|with|fn|func|def|class)\b"
    r"|[\w.\[\]]+\s*(?::=|=(?!=)))")


def begins_something(line: str, index: int) -> bool:
    """A line that is the same in many entries and tells nothing of its own: what comes after it does. A bare
    comment marker anywhere; at the middle's start an annotation, a block's keyword alone (`try:`), or a line
    that ends opening a bracket (the next call or table entry like the suffix's, `log.WithFields(log.Fields{`,
    `}, {`), not a control statement's or an assignment's."""
    return bool(BARE_COMMENT_LINE.match(line) or BARE_COMMENT_OPENER.match(line)) or (index == 0 and bool(
        ANNOTATES_NEXT.match(line) or BARE_BLOCK_KEYWORD.match(line)
        or OPENS_AT_END.match(line) and not CONTROL_OR_BINDING.match(line)))


# A control statement's header (a binding written twice is a redeclaration, whatever follows it).
CONTROL_HEADER = re.compile(r"\s*(?:if|for|while|switch|match|select)\b")
# A statement that leaves the block: after the suffix's check written again, the model's variant of its next line.
LEAVES_BLOCK = re.compile(r"\s*(?:return|throw|raise|break|continue|panic\()")


def opens_block_like_the_suffixs(line: str) -> bool:
    """A control statement that opens a bracket (`if err != nil {`)."""
    return bool(CONTROL_HEADER.match(line) and OPENS_AT_END.match(line))


# How far into the suffix its block like the model's is looked for to its end.
SUFFIX_BLOCK_LINES = 60


def block_end(lines: list[str], grammar: str | None) -> int | None:
    """The index of the line that closes the brackets the lines open; None when they are left open."""
    for end in range(len(lines)):
        if code_bracket_surplus("\n".join(lines[:end + 1]), grammar) <= 0:
            return end
    return None


def goes_on_after_its_block(lines: list[str], following: list[str], grammar: str | None) -> bool:
    """The middle's `if err != nil {` like the suffix's next line, its block closed, then a statement that is not the
    one after the suffix's block (`b, err := h()`): the check of the call the model wrote above it, and the
    suffix's check is for the next call. A model writing the suffix again ends there or goes on as it does."""
    ours_end, theirs_end = block_end(lines, grammar), block_end(following[:SUFFIX_BLOCK_LINES], grammar)
    if ours_end is None or theirs_end is None:
        return False
    ours = next((line for line in lines[ours_end + 1:] if line.strip()), None)
    theirs = next((line for line in following[theirs_end + 1:] if line.strip()), None)
    return (ours is not None and theirs is not None and not CLOSING_LINE.match(ours) and not LEAVES_BLOCK.match(ours)
            and not same_line(ours, theirs) and not theirs.strip().startswith(ours.strip())
            # (the suffix's next line further on: a line put in, then the suffix again)
            and not any(same_line(line, theirs) for line in lines[ours_end + 1:]))


def goes_on_otherwise(lines_after: list[str], following: list[str]) -> bool:
    """After a line like the suffix's next one, the middle goes on with a line that is not the suffix's after it:
    a new member, entry or comment paragraph, no repeat (a model writing the suffix again copies on, and may stop
    short inside a line: `// Licensed under the Apache License` before `..., Version 2.0.`)."""
    ours = next((line for line in lines_after if line.strip()), None)
    theirs = [line for line in following if line.strip()][1:2]
    return (ours is not None and bool(theirs) and not same_line(ours, theirs[0])
            and not theirs[0].strip().startswith(ours.strip()))


def blank_literals(text: str, grammar: str | None, before: str = "") -> str:
    """`text` with the insides of its strings, comments and character literals blanked (same length), read as the
    continuation of `before` (the cursor's line up to it); `text` as it is when the grammar's literals are not known
    or `before` ends inside a string or comment (the text is then that literal's)."""
    code = before + text
    if grammar in JSX_LANGUAGES and JSX_TAG.search(code):
        code = jsx_text_blanked(code)   # the text between JSX tags: `Don't` there opens no string
    opened = code_outside_literals(grammar, code[:len(before)])
    if opened is None or opened[1] == OPEN:
        return text   # literals unknown, or typed inside a comment or string: its brackets pair up as prose
    if opened[1] == HOLE:
        # Typed in a string's code hole (`f"{`): code up to the `}` that closes the hole, which stays in sight (it
        # closes the prefix's `{`, as a `)` closes its `(`), then the string's text again.
        close = hole_end(text, 0)
        if close is None:
            return blank_literals(text, grammar)
        return (blank_literals(text[:close - 1], grammar) + "}"
                + blank_literals(text[close:], grammar, before + text[:close]))
    kept, ending = code_outside_literals(grammar, code)
    rest = code[len(kept):]   # after a literal left open (blank) or a code hole opened (code)
    kept += rest if ending == HOLE else " " * len(rest)
    return kept[len(before):]


def unpaired_brackets(text: str, grammar: str | None = None, before: str = "") -> tuple[set[int], list[str]]:
    """The indexes of closing brackets in `text` that close nothing opened earlier in it (they close the prefix's),
    and the brackets it leaves open. Brackets inside strings and comments (`')'`, `"a)"`, a regex's escaped bracket)
    neither open nor close."""
    stack: list[str] = []
    unmatched = set()
    for i, char in enumerate(blank_literals(text, grammar, before)):
        if char in "([{":
            stack.append(char)
        elif char in PAIRS:
            if stack and stack[-1] == PAIRS[char]:
                stack.pop()
            else:
                unmatched.add(i)
    return unmatched, stack


def unmatched_closer_positions(text: str, grammar: str | None = None, before: str = "") -> set[int]:
    """Indexes of closing brackets that close nothing opened earlier in `text` (unpaired_brackets)."""
    return unpaired_brackets(text, grammar, before)[0]


def closes_kept_bracket(kept: str, cut: str) -> bool:
    """Would cutting `cut` remove the closer of a bracket that `kept` opens?"""
    stack: list[tuple[str, bool]] = []   # (opener, opened in the kept part)
    for part, is_kept in ((kept, True), (cut, False)):
        for char in part:
            if char in "([{":
                stack.append((char, is_kept))
            elif char in PAIRS and stack and stack[-1][0] == PAIRS[char]:
                if stack.pop()[1] and not is_kept:
                    return True
    return False


def rest_line_ends(rest_of_line: str) -> tuple[str, str]:
    """The user's rest of the line as a middle that wrote it again ends: whole, or without its `;` / `,`."""
    rest = rest_of_line.rstrip()
    return rest, rest.rstrip(";,").rstrip()


def fewer_unpaired_brackets(kept: str, middle: str, rest_of_line: str, grammar: str | None, before: str) -> bool:
    """Do the line's brackets pair up better with the one-line middle cut to `kept` than whole? It opened a
    bracket and then wrote the user's whole rest of the line, which closes it, again (`bn(x, eps)` before `x,
    eps)`, the `bn(` deleted): its own closer is then one too many. A call the middle closes before the suffix's
    `)` (`compute(a, b))` after `print(str(`) gains nothing from the cut: a closer too many whole, a bracket left
    open cut. A string left open counts as a bracket would. (Lines above are not read, so the caller asks only
    where the rest starts with a word, a string or a closer, which the middle's own text would run into: a rest
    `, axis=0)` may close a call opened above, after a middle `np.mean(x, axis=0)` that is whole.)"""
    def unpaired(text: str) -> int:
        scan = code_outside_literals(grammar, text)
        left_open = int(scan is not None and scan[1] == OPEN)   # a string the line leaves open (`redirect")")`)
        strays, stack = unpaired_brackets(text, grammar)
        return left_open + len(strays) + len(stack)
    return unpaired(before + kept + rest_of_line) < unpaired(before + middle + rest_of_line)


def opens_block_at(text: str, depth: str) -> bool:
    """Does a line of `text` at exactly `depth` have a deeper line after it: a block opened there, which a line
    at that depth after `text` closes?"""
    lines = [line for line in text.split("\n") if line.strip()]
    return any(indentation(line) == depth and len(indentation(following)) > len(depth)
               for line, following in zip(lines, lines[1:]))


# Languages where `::` is no token, so a `:` written before the suffix's own is a repeat (C++, Rust, Java and Lua
# have `::`: there `std:` before `:vector` is the path's first half; a Python slice is the exception, told apart).
NO_DOUBLE_COLON = {"python", "javascript", "typescript", "tsx", "go"}


def open_brackets(code: str) -> list[str]:
    """The brackets `code` leaves open, outermost first (a closer that matches none is passed over)."""
    stack: list[str] = []
    for char in code:
        if char in OPENERS:
            stack.append(char)
        elif char in PAIRS and stack and stack[-1] == PAIRS[char]:
            stack.pop()
    return stack


def innermost_opener(code: str, grammar: str | None) -> str | None:
    """The bracket `code` leaves open last (those in its strings and comments aside), None when it closes all."""
    stack = open_brackets(code_for_brackets(code, grammar))
    return stack[-1] if stack else None


def drop_suffix_overlap(middle: str, suffix: str, suffix_starts_line: bool = False,
                        grammar: str | None = None, before: str = "") -> str:
    """A tail of the middle that equals the suffix's head (at least 2 characters, e.g. `.strip()` before
    `.strip()`, or a whole repeated next line) is cut, unless a bracket in that tail closes one the middle opened
    (then the bracket rule decides), or the tail is a line of the middle at another depth than the suffix's line
    that closes a block the middle opened at its depth (the `  end` of the middle's own `if` before the
    function's `end`). One character is enough for a one-letter name or number the suffix starts with, for a
    statement's `;` the suffix already ends it with, for a list's `,` the suffix already has, for a `:` the
    suffix already has where `::` is no token (a header's, a key's; not in a Python slice, `xs[1::2]`, with
    `before`, the line's text before the middle), for an opening bracket the suffix opens
    (`number {` before ` {`), and for a quote that closes the string the prefix opened (the middle holds an odd
    number of it): `;;` parses as an empty statement, and `{ {` may parse where a later error is excused, so the
    parse check would not catch them."""
    head = suffix.lstrip(" \t")
    trimmed = middle.rstrip(" \t")
    for size in range(min(len(trimmed), len(head)), 1, -1):
        if trimmed.endswith(head[:size]):
            cut_at = len(trimmed) - size
            line_start = trimmed.rfind("\n", 0, cut_at) + 1
            depth = trimmed[line_start:cut_at]
            if (suffix_starts_line and line_start and not depth.strip() and depth != suffix[:len(suffix) - len(head)]
                    and opens_block_at(trimmed[:line_start], depth)):
                continue
            # (a bare `//` line, a comment's paragraph break, is no start of the suffix's `// See LICENSE.`)
            tail = trimmed[cut_at:]
            if (BARE_COMMENT_LINE.match(tail) and ("\n" in tail or not depth.strip())
                    and head[size:size + 1] not in ("\n", "")):
                continue
            if (not closes_kept_bracket(trimmed[:-size], trimmed[-size:])
                    or "\n" not in trimmed and (WORD_START.match(head) or head[:1] in QUOTES + ")]}")
                    and head[:size] in rest_line_ends(head.split("\n", 1)[0])
                    and fewer_unpaired_brackets(trimmed[:-size], trimmed, head[:size], grammar, before)):
                return trimmed[:-size]
    # (the user's rest of the line written out, and a `;` or `,` after it that the line does without: `0, err;`
    # before the user's `err`; not closers alone, which the editor typed and the middle replaces with its own)
    rest_of_line = head.split("\n", 1)[0].rstrip()
    written = trimmed[:-1]
    if (re.search(r"\w", rest_of_line) and "\n" not in trimmed and trimmed[-1:] in (";", ",")
            and written.endswith(rest_of_line) and not WORD_START.match(written[-len(rest_of_line) - 1:][:1])
            and not closes_kept_bracket(written[:-len(rest_of_line)], written[-len(rest_of_line):])):
        return written[:-len(rest_of_line)]
    cut_at = spacing_only_overlap(trimmed, head)
    if cut_at is not None and not closes_kept_bracket(trimmed[:cut_at], trimmed[cut_at:]):
        return trimmed[:cut_at].rstrip(" \t")
    if not (trimmed and head and trimmed[-1] == head[0]):
        return middle
    if WORD_START.match(head[0]) and not WORD_START.match(trimmed[-2:-1]) and not WORD_START.match(head[1:2]):
        return trimmed[:-1]   # a one-letter name written again (`not x` before `x`): `xx` would be another name
    if len(trimmed) - 1 not in unescaped(trimmed, head[0], grammar):
        return middle
    if head[0] == ";" and not code_after_cursor(head[1:].split("\n", 1)[0], grammar).strip(" \t}"):
        return trimmed[:-1]   # the `;` ends the statement (`; }` of a one-line body too), not `for (;;)`
    if head[0] == ",":
        return trimmed[:-1]   # the suffix's comma separates already: `f(a,, b)` is no list (arrays aside)
    if head[0] == ":" and grammar in NO_DOUBLE_COLON and not open_literal(grammar, trimmed[:-1]) and not (
            grammar == "python" and innermost_opener(before + trimmed[:-1], grammar) == "["):
        return trimmed[:-1]   # `range(n):` before the header's own `:`, `"key":` before a dict's `: v`
    if head[0] in OPENERS:   # `number {` before the header's own ` {`: the suffix opens it already
        return trimmed[:-1].rstrip(" \t")
    if head[0] in QUOTES and len(unescaped(trimmed, head[0], grammar)) % 2 == 1:
        return trimmed[:-1]
    return middle


SPACING = re.compile(r"[ \t]+")


def spacing_only_overlap(trimmed: str, head: str) -> int | None:
    """Where the middle's last line ends with the suffix's first line's head written with other spacing (`a, b)+1`
    before `) + 1`): the offset in `trimmed` to cut at, or None. At least two characters besides spaces, one of
    them no word character, and the cut between two tokens, not inside a word."""
    last_line = trimmed[trimmed.rfind("\n") + 1:]
    first_line = head.split("\n", 1)[0]
    ours, theirs = SPACING.sub("", last_line), SPACING.sub("", first_line)
    for size in range(min(len(ours), len(theirs)), 1, -1):
        overlap = theirs[:size]
        if not ours.endswith(overlap) or all(WORD_START.match(char) for char in overlap):
            continue
        cut_at, left = len(trimmed), size   # walk back over `size` characters that are not spacing
        while left:
            cut_at -= 1
            left -= trimmed[cut_at] not in " \t"
        if cut_at and WORD_START.match(trimmed[cut_at - 1]) and WORD_START.match(trimmed[cut_at]):
            continue
        return cut_at
    return None


LARGEST_BALANCED_DOCUMENT = 100_000   # characters scanned for the brackets a document leaves open


def brackets_left_open(text: str, start: int, end: int, grammar: str | None) -> LeftOpen:
    """The brackets opened before `start` that the text from `end` on does not close, each with the indentation of
    its line, outermost first; None when that cannot be told (literals not known, a long document, a closer that
    matches no bracket)."""
    if len(text) > LARGEST_BALANCED_DOCUMENT:
        return None

    def line_indentation(at: int) -> str:
        return indentation(text[text.rfind("\n", 0, at) + 1:at + 1])

    stack: list[int] = []   # where the open brackets are
    for offset, part in ((0, text[:start]), (end, text[end:])):
        scanned = code_outside_literals(grammar, jsx_text_blanked(part) if grammar in JSX_LANGUAGES else part)
        if scanned is None or scanned[1] is not None:
            return None
        for at, char in enumerate(scanned[0], offset):
            if char in OPENERS:
                stack.append(at)
            elif char in PAIRS:
                # A closer that starts its line closes the nearest open bracket of its kind at its depth: in a
                # document missing closers, the innermost open one may be the block the user has not closed.
                depth = line_indentation(at) if not text[text.rfind("\n", 0, at) + 1:at].strip() else None
                paired = next((i for i in range(len(stack) - 1, -1, -1) if text[stack[i]] == PAIRS[char]
                               and line_indentation(stack[i]) == depth), len(stack) - 1)
                if not stack or text[stack.pop(paired)] != PAIRS[char]:
                    return None
    return tuple((text[at], line_indentation(at)) for at in stack if at < start)


def drop_unmatched_closers(middle: str, suffix: str, grammar: str | None = None, before: str = "",
                           suffix_starts_line: bool = False,
                           left_open: Callable[[], LeftOpen] = nothing_known_left_open) -> str:
    """Trailing closing brackets the middle never opened, when the suffix (after whitespace) starts with the same
    closers: the model closed what the suffix closes already. Closers on a line of their own match only the
    suffix's at the same indentation: a `}` under `if x {` is not the function's `}` further out (nor, after a
    selection of whole lines, the `}` at the margin the next line holds); nor is one after the opener on its line
    (` return 1; }` after `if (x) {`). Nor do they match a closer below that the document needs for a bracket it
    leaves open (`left_open()`) at that closer's depth (`}` ending a function inside a namespace
    whose `}` is at the margin too)."""
    trimmed = middle.rstrip()
    last_line = trimmed[trimmed.rfind("\n") + 1:]
    rest_of_line, *following = ("\n" + suffix if suffix_starts_line else suffix).split("\n")
    on_own_line = "\n" in trimmed or not before.strip()   # (on a blank line the cursor's spaces indent it)
    if on_own_line and not rest_of_line.strip() and CLOSING_LINE.match(last_line):
        next_line = next((line for line in following if line.strip()), "")
        if indentation(next_line) != indentation(last_line if "\n" in trimmed else before + last_line):
            return middle
    unmatched = unmatched_closer_positions(trimmed, grammar, before)
    tail = []   # indexes of the trailing closers, last first
    i = len(trimmed) - 1
    while i >= 0 and (trimmed[i] in PAIRS or trimmed[i].isspace()):
        if trimmed[i] in PAIRS:
            tail.append(i)
        i -= 1
    tail.reverse()
    supplied = [char for char in re.match(r"[\s)\]}]*", suffix).group() if char in PAIRS]
    in_literal = literal_ending(grammar, before) if before else None
    for size in range(len(tail), 0, -1):
        dropped = tail[-size:]
        if in_literal and literal_ending(grammar, before + trimmed[:dropped[0]]) != in_literal:
            continue   # past the string the cursor is in (`xs)} items")` in `f"{len(|)}"`): not the suffix's closers
        if [trimmed[j] for j in dropped] == supplied[:size] and all(j in unmatched for j in dropped):
            if not rest_of_line.strip():   # the suffix's closer is on a line below: it may be an outer bracket's
                closer_line = next((line for line in following if line.strip()), "")
                # ` return 1; }` after `if (x) {`: a `}` below, shallower than the opener's line, is the function's
                opened_on_line = not on_own_line and len(unmatched) <= len(unpaired_brackets(before, grammar)[1])
                if opened_on_line and len(indentation(closer_line)) < len(indentation(before)):
                    return middle
                # The document leaves open a bracket at the closer's depth, which that closer is for: the middle's
                # closers are the ones wanted (a function's `}` over a namespace's, both at the margin).
                lacking = left_open()
                closed = [PAIRS[trimmed[j]] for j in reversed(dropped)]   # (outermost first, as `lacking`)
                if (lacking and unmatched == set(dropped) and indentation(closer_line) == lacking[-1][1]
                        and [bracket for bracket, _ in lacking[-size:]] == closed):
                    return middle
            kept = trimmed[:dropped[0]]
            spaces = kept[len(kept.rstrip()):]   # the last line's are left to trim_trailing_whitespace (`{x = }`)
            return kept.rstrip() + ("" if "\n" in spaces else spaces)
    return middle


ANGLE_GENERIC_GRAMMARS = {"typescript", "tsx", "java", "rust", "cpp"}
GENERIC_OPENER = re.compile(r"(?<=[\w.:])<")   # `Array<`, `Vec::<`: a type's list, not a comparison


def generic_balance(code: str) -> tuple[int, int]:
    """The generic `<` the text leaves open (`Map<string, Array<` leaves 2), and the `>` in it that close a list it
    did not open (`T>` has one). A `<` after a name opens a list (GENERIC_OPENER); `=>`, `->`, `>=`, `<=` and `<<`
    are operators, but for a `<<` between a name and the next one, which opens two (Rust's `Vec<<T as
    Iterator>::Item>`)."""
    depth = unopened = 0
    for match in re.finditer(r"(?P<two>(?<=[\w.:])<<(?=[A-Za-z_&*(]|$))|=>|->|>=|<=|<<|[<>]", code):
        if match.group("two"):
            depth += 2
        elif match.group() == "<":
            depth += bool(GENERIC_OPENER.match(code, match.start()))
        elif match.group() == ">":
            if depth:
                depth -= 1
            else:
                unopened += 1
    return depth, unopened


def drop_repeated_generic_closer(middle: str, suffix: str, before: str, grammar: str | None) -> str:
    """`Array<|>>` written `T>`: the `>` the model closed the type's list with is the suffix's (an editor that
    paired the `<`, or the user's own). Cut when the middle's `>` close more lists than it opened and the line
    before the cursor leaves that many open."""
    trimmed = middle.rstrip(" \t")
    closers = len(trimmed) - len(trimmed.rstrip(">"))
    supplied = len(suffix) - len(suffix.lstrip(">"))
    if grammar not in ANGLE_GENERIC_GRAMMARS or not closers or not supplied or "\n" in trimmed:
        return middle
    line = before[before.rfind("\n") + 1:]
    cut = min(closers, supplied, generic_balance(trimmed)[1], generic_balance(line)[0])
    return trimmed[:len(trimmed) - cut] if cut > 0 else middle


def comment_after_cursor(rest_of_line: str, grammar: str | None) -> str:
    """The rest of the cursor's line when it holds a comment and no code (`def f(x):|  # type: ignore`), without
    its line break's `\r`; else ""."""
    rest = rest_of_line.rstrip("\r")
    if any(ord(char) > 0xFFFF for char in rest):
        # VS Code (1.100) shows no item whose covered text holds a character beyond U+FFFF (an emoji): the item
        # goes in at the cursor instead, as for a comment it does not cover.
        return ""
    return rest if rest.strip() and not code_after_cursor(rest, grammar).strip() else ""


def body_after_header_comment(cleaned: str, comment: str, before: str, line_ending: str = "\n") -> str:
    """The text of an inline item that replaces the comment after the cursor (comment_after_cursor): a body the
    cleaning put on the lines below (the comment pushed down under it, or not) comes after the comment, which stays
    on the header's line (a type checker reads `# type: ignore` there, a linter `# noqa`); any other text comes
    before it, as if inserted at the cursor. "" stays ""."""
    pushed_down = line_ending + indentation(before)
    if cleaned.startswith(line_ending) and cleaned.strip():
        body = cleaned[:-len(pushed_down)] if cleaned.endswith(pushed_down) else cleaned
        return comment.rstrip(" \t") + body
    return cleaned + comment if cleaned else ""


def auto_closed_tail(rest_of_line: str, grammar: str | None = None) -> str:
    """The closers an editor typed after the cursor by itself (`)`, `"]`, `);`), up to the last of them, a comment
    after them left out (`); // why`); "" when the rest of the line holds anything else. An inline item replaces
    this tail instead of inserting before it."""
    tail = code_after_cursor(rest_of_line, grammar).rstrip()
    return tail if tail and set(tail) <= AUTO_CLOSED | {" ", "\t"} else ""


def glued_to_next_word(middle: str, ctx: CleanContext) -> bool:
    """Before a word of the user's on the line (`return |x + 1`), an inline fill that ends in a word would fuse
    with it into another name (`return r93x + 1`, which parses): not where the fused name is one the document has
    (the model wrote the start of that word)."""
    if ctx.original or not middle or not ctx.rest_of_line or "\n" in middle.rstrip():
        return False
    ending, starting = re.search(r"\w*$", middle).group(), re.match(r"\w*", ctx.rest_of_line).group()
    if not ending or not starting:
        return False
    return not re.search(rf"(?<!\w){re.escape(ending + starting)}(?!\w)", ctx.text)


def cleaned_with_tail(middle: str, ctx: CleanContext, tail: str) -> str:
    """The middle cleaned, or "" where it would fuse with the user's next word (glued_to_next_word)."""
    cleaned = cleaned_middle_with_tail(middle, ctx, tail)
    return "" if glued_to_next_word(cleaned, ctx) else cleaned


def cleaned_middle_with_tail(middle: str, ctx: CleanContext, tail: str) -> str:
    """clean_middle, then with_tail. A line comment ending a one-line middle is set aside while they run: the
    editor's closers go before it (`foo(a); // why`), not into it, and the rules that look at the middle's end
    see its code. Where the line has a comment of its own after the closers, the model's is left out: one comment
    would stand inside the other (`42; // note // note`). Before code or a comment of the user's on the line (`y =
    |* 2`), the model's comment is left out too: it would comment that code out (`y = x  # double * 2`)."""
    single = ctx.shape == "single" and "\n" not in middle.strip()
    users_code = single and not tail and bool(ctx.rest_of_line.strip())
    one_line = single and (bool(tail) or users_code)   # closers or the user's code follow on its line
    if users_code:   # (a comment alone, or glued to the code, would comment the user's code out too: `return #x`)
        at = line_comment_start(ctx.grammar, middle.rstrip(), ctx.before)
        if at != -1:
            return clean_middle(middle[:at], ctx) if middle[:at].strip() else ""
    code, comment = split_trailing_comment(middle.rstrip(), ctx.grammar, ctx.before) if one_line else (middle, "")
    if not comment:
        return with_tail(clean_middle(middle, ctx), tail, ctx.before, ctx.grammar)
    cleaned = with_tail(clean_middle(code.rstrip(), ctx), tail, ctx.before, ctx.grammar)
    if code_after_cursor(ctx.rest_of_line, ctx.grammar).rstrip() != ctx.rest_of_line.rstrip():
        return cleaned
    return cleaned + code[len(code.rstrip()):] + comment if cleaned else ""


def with_tail(middle: str, tail: str, before: str = "", grammar: str | None = None) -> str:
    """The text that replaces the closers the editor typed after the cursor (`tail`, from auto_closed_tail):
    the middle followed by them, or the middle alone when it writes them itself and then ends the statement
    (`a);` before the editor's `)`; without the `;` the overlap rules have already cut them), or followed by those
    it did not write (`xs) + 1` in `print(len(|))`: the first `)` is the editor's, the second is still needed;
    `before`, the cursor's line before it, says how many brackets are open). "" stays ""."""
    if not middle or not tail:
        return middle + tail if middle else ""
    closers = tail.strip()
    body = middle.rstrip()
    written = body.rstrip(";,")
    still_open = brackets_after_string(written, closers, grammar, before)
    if still_open is not None:
        # `printf("|");` filled with `%d\n", x);`: the middle ends the string and closes what the tail closes; or
        # with `%d\n", x`: it ends the string, and the tail's `)` is still needed, its `"` not
        if not still_open and written != body:
            return body
        return written + still_open + closers[len(closers.rstrip(";,")):]
    remaining = tail_not_written(written, tail, before, grammar)
    if remaining is not None:
        # what is left past the brackets (`;`, a closing quote) the middle may have written already: `url).then(
        # (r) => r.json());` for `fetch(|);` ends the statement itself
        rest = remaining.strip()
        if rest and not any(char in PAIRS for char in rest) and body.endswith(rest):
            return body
        return body + remaining
    if written == body or not written.endswith(closers):
        return middle + tail
    cut = len(written) - len(closers)
    # A quote there closes the prefix's string only when the middle holds an odd number of it.
    quote_still_open = any(q in closers and len(unescaped(written, q, grammar, before)) % 2 == 0 for q in QUOTES)
    if closes_kept_bracket(written[:cut], closers) or quote_still_open:
        return middle + tail   # they close what the middle opened, not the editor's pair
    return body


def tail_not_written(written: str, tail: str, before: str, grammar: str | None = None) -> str | None:
    """What is left of the editor's closers when the middle closes some of the same brackets itself and goes on
    (`xs) + 1` for `print(len(|))`: the tail's first `)` closes `len(` a second time): the tail less its first
    closers, as many as the middle and the tail together close beyond the brackets open before the cursor. None
    when they do not overlap (the middle's closers are not the tail's, innermost first, or are all needed). Only
    closers on the middle's last line count: the tail is on the cursor's line, after that line; a `}` on an earlier
    line closes a block of lines above (`}` then `h();` written before the document's `}` replaced that brace).
    Brackets the middle leaves open take the tail's first closers that close them (`({|})` + `}, { a: 1` + `})`;
    not a block's `{` after the tail's `)`: `if (f(|))` + `a)) {`)."""
    last_line = written.rfind("\n") + 1
    strays, left_open = unpaired_brackets(written, grammar, before)
    own = [written[i] for i in sorted(strays) if i >= last_line]   # the prefix's, innermost first
    brackets = [i for i, char in enumerate(tail) if char in PAIRS]
    if not own or not brackets or not tail.lstrip()[:1] in PAIRS:
        return None
    shared = min(len(own), len(brackets))
    if own[:shared] != [tail[i] for i in brackets[:shared]]:
        return None
    closed_by_tail = len(list(itertools.takewhile(lambda pair: PAIRS[tail[pair[1]]] == pair[0],
                                                  zip(reversed(left_open), brackets))))
    excess = len(own) + len(brackets) - closed_by_tail - max(0, bracket_surplus(blank_literals(before, grammar)))
    if excess <= 0:
        return None
    drop = min(excess, len(brackets))
    return tail[brackets[drop - 1] + 1:]


def brackets_after_string(written: str, closers: str, grammar: str | None = None, before: str = "") -> str | None:
    """When `written`, typed inside the prefix's string, ends that string (`closers` starts with its quote) and
    after it closes the first brackets the rest of `closers` closes (or none): the brackets of `closers` still to
    close. None when it leaves the string open or closes other brackets."""
    quote = next((triple for triple in ('"""', "'''") if closers.startswith(triple)), closers[:1])
    if not quote or quote[0] not in QUOTES:
        return None
    ends = unescaped(written, quote, grammar, before)   # (a triple quote counts once, not as a quote and a pair)
    if len(ends) % 2 == 0:
        return None   # an even number of quotes leaves the prefix's string open
    after = written[ends[0] + 1:]
    closed = "".join(after[i] for i in sorted(unmatched_closer_positions(after, grammar)))
    brackets = closers[len(quote):].rstrip(";,")
    if not brackets.startswith(closed) or bracket_surplus(blank_literals(after, grammar)) + len(closed) > 0:
        return None   # it closes other brackets, or leaves its own open (the tail's would close those)
    return brackets[len(closed):]


def unescaped(text: str, quote: str, grammar: str | None = None, before: str = "") -> list[int]:
    """Where `quote` stands in `text` not escaped: after an even number of backslashes (`"C:\\\\"` ends), those at
    the end of `before` (the text just before `text`, the cursor's line) counted in. Go's raw strings escape
    nothing (`` `C:\\` `` ends)."""
    if grammar == "go" and quote == "`":
        return [i for i, char in enumerate(text) if char == "`"]
    lead = "\\" * ((len(before) - len(before.rstrip("\\"))) % 2)   # (`"say \|` + `"hi\""`: the first is escaped)
    return [m.end() - 1 - len(lead) for m in re.finditer(r"(?<!\\)(?:\\\\)*" + re.escape(quote), lead + text)
            if m.end() - 1 >= len(lead)]


def split_trailing_comment(text: str, grammar: str | None, line_before: str = "") -> tuple[str, str]:
    """(text, "") or (its code, the line comment ending its last line after some code and a space), so that what
    goes after the code (closers, a comma) is not written into the comment. `line_before`: the text before `text`
    on its first line, so that a marker inside a string begun there is not taken for a comment."""
    line_start = text.rfind("\n") + 1
    last_line = text[line_start:]
    at = line_comment_start(grammar, last_line, line_before if line_start == 0 else "")
    code = last_line[:max(at, 0)]
    if at == -1 or not code.strip() or code[-1] not in " \t":
        return text, ""   # no comment, a whole-line comment, or a marker glued to the code
    return text[:line_start] + code, last_line[at:]


def split_trailing_block_comment(text: str, grammar: str | None) -> tuple[str, str]:
    """(text, "") or (its code, the block comment `/* ... */` ending its last line after some code and a space)."""
    line_start = text.rfind("\n") + 1
    line = text[line_start:]
    at = line.rfind("/*")
    before_comment = code_outside_literals(grammar, line[:at]) if at > 0 else None
    if before_comment is None or before_comment[1] is not None or not line[:at].strip() \
            or line[at - 1] not in " \t" or not line.rstrip().endswith("*/") or "*/" in line[at + 2:].rstrip()[:-2]:
        return text, ""   # no comment, one inside a string, a whole-line one, or code after it
    return text[:line_start + at], line[at:]


def close_own_brackets(middle: str, grammar: str | None = None) -> str:
    """Single line: close the brackets the middle itself opened and left open (a canvas that ran out mid-call),
    innermost first, when the middle ends on something a closer may follow (a name, a number, a closer, a quote).
    Brackets opened before the cursor are the suffix's business; a string left open is left alone. Literals are
    the grammar's (a Rust lifetime `'a` is no quote, a Lua `[[...]]` a string); plain text knows quotes only."""
    scanned = code_outside_literals(grammar, middle)
    if scanned is not None:
        code, ending = scanned
        if ending is not None:
            return middle   # ends inside a string or comment
    else:
        code, quote = [], None
        for char in middle:
            if quote:
                quote = None if char == quote else quote
            elif char in "\"'`":
                quote = char
            else:
                code.append(char)
        if quote:
            return middle
    stack = open_brackets(code)
    body = middle.rstrip()
    if not stack or not body or not re.search(r"[\w)\]}\"'`]$", body):
        return middle
    if grammar == "lua" and opens_block(body, grammar):
        return middle   # `set('n', 'x', function()`: the callback's body and its `end, ...)` come below
    return body + "".join(OPENERS[opener] for opener in reversed(stack))


def normalize_indentation(middle: str, indent_unit: str, tab_size: int | None = None, before: str = "",
                          grammar: str | None = None, own_mixed: frozenset[str] = frozenset()) -> str:
    """Leading whitespace in the document's style: tabs become spaces in a space-indented document (one indent unit
    each), and in a tab-indented one every full level of spaces (the editor's tab size, else the middle's own
    step: the common divisor of its indentations, so 8 and 12 spaces are two and three levels) becomes a tab.
    Lines that start inside a string are its text and stay as written, and so do lines indented as the document
    indents its own where it mixes tabs and spaces (`own_mixed`: style.mixed_indentations)."""
    lines = middle.split("\n")
    in_literal = lines_in_literals(before, lines, grammar)
    # (after code on the cursor's line the first line's spaces are a gap, gofmt's alignment say: not indentation)
    code_lines = [i for i in range(len(lines)) if i not in in_literal and indentation(lines[i]) not in own_mixed
                  and (i or not before.strip())]
    if indent_unit == "\t":
        # The model's step from its own levels: lines aligned inside an open parenthesis are left out (8, 14, 8
        # is a level and an alignment, not steps of 2), and so is a single depth (8 alone: two levels or one?).
        # The editor's tab size is how wide a tab is drawn, a fallback only: 4-space levels under a tab size of 8
        # are still one tab each.
        aligned = continuation_lines(before, lines, grammar) or set()
        widths = {len(indentation(lines[i])) for i in code_lines
                  if i not in aligned and lines[i].strip() and indentation(lines[i]).startswith(" ")}
        step = math.gcd(*widths) if len(widths) > 1 else 0
        # A step is a depth or a distance between two depths the model wrote; a divisor that is neither comes from
        # an alignment (`sum = price +` then `shipping;` under `price`).
        if step not in widths and step not in {a - b for a in widths for b in widths}:
            step = 0
        width = step if 2 <= step <= 8 else (tab_size if tab_size and 2 <= tab_size <= 8 else 4)
        for i in code_lines:
            ws = indentation(lines[i])
            # (tabs to the level, then spaces to align, less than a level or inside an open bracket: kept)
            if " " in ws and not (re.fullmatch(r"\t+ +", ws) and (i in aligned or len(ws.lstrip("\t")) < width)):
                columns = sum(width if c == "\t" else 1 for c in ws)
                lines[i] = "\t" * (columns // width) + " " * (columns % width) + lines[i][len(ws):]
    else:
        for i in code_lines:
            ws = indentation(lines[i])
            if "\t" in ws:
                lines[i] = ws.replace("\t", indent_unit) + lines[i][len(ws):]
    return "\n".join(lines)


def in_the_users_layout(middle: str, original: str) -> bool:
    """Every line of the middle after its first stands at a depth a line of the selection has: the levels are the
    user's layout (a list's 2-space hanging indent in a 4-space file), not a model's step to redraw."""
    own = {indentation(line) for line in original.split("\n") if line.strip()}
    later = {indentation(line) for line in middle.split("\n")[1:] if line.strip()}
    return bool(later) and later <= own


def rescale_indent_steps(middle: str, before: str, indent_unit: str, grammar: str | None,
                         line_above: str | None = None) -> str:
    """Levels the middle opens below its first line, redrawn in the document's space step (a model that wrote
    4-space levels into 2-space JavaScript). Only when that is sure to change nothing but the look: every deeper
    line is a whole number of the model's steps deeper than the first line, none goes left of it (an outer level
    is one of the document's own), and none is a continuation (inside an open parenthesis, where styles indent as
    they like, or inside a string or comment, whose text would change). A first line with its own indentation at
    a cursor in indentation is left alone: whether it repeats the cursor's column or goes deeper is
    reindent_first_line's call, and the base depends on it. At column 0 the model indents the first line itself,
    in its own step too: one at the depth the line above calls for counted in the model's steps (4 columns for
    the document's 2) is moved to that depth with the rest (`line_above`: the nearest code line above, if known)."""
    if indent_unit.strip(" ") or "\n" not in middle:
        return middle
    lines = middle.split("\n")
    if before.strip():
        base = len(indentation(before))
    elif before and indentation(lines[0]):
        return middle
    else:    # the cursor's column in indentation, or column 0 before a line written with its own indentation
        base = len(before) or len(indentation(lines[0]))
    widths = [len(indentation(line)) for line in lines[1:] if line.strip()]
    unit = len(indent_unit)
    if base % unit or any("\t" in indentation(line) for line in lines[1:]) or not widths or min(widths) < base:
        return middle   # (a base off the document's levels, e.g. a selection starting inside indentation)
    deeper = [width - base for width in widths if width > base]
    step = min(deeper, default=0)
    if step not in (2, 3, 4, 8) or step == unit or any(extra % step for extra in deeper) \
            or has_continuation_lines(before, lines, grammar) or not deepens_only_under_openers(before, lines, grammar):
        return middle
    new_base = base
    if not before and line_above is not None and base % step == 0 and "\t" not in indentation(line_above):
        wanted = len(indentation(line_above)) + (unit if opens_block(line_above, grammar) else 0)
        if base != wanted == base // step * unit:
            new_base = wanted
            lines[0] = " " * new_base + lines[0][base:]
    for i, line in enumerate(lines[1:], start=1):
        width = len(indentation(line))
        if line.strip() and (width > base or new_base != base):
            lines[i] = " " * (new_base + (width - base) // step * unit) + line[width:]
    return "\n".join(lines)


def deepens_only_under_openers(before: str, lines: list[str], grammar: str | None) -> bool:
    """Is every line deeper than the code line above it under a line that opens a level (a block header, a label,
    a brace or bracket left open at its end)? A line deeper under one that opens nothing continues a statement
    (`return new Builder(r)` then `        .setFade(0)`), and styles indent those by their own rule (Java's double
    step), not in levels to redraw."""
    above = before + lines[0]
    for line in lines[1:]:
        if not line.strip():
            continue
        code = without_trailing_comment(above, grammar).rstrip()
        if len(indentation(line)) > len(indentation(above)) and not (
                opens_block(code, grammar) or braceless_header(code, grammar) or LABEL_LINE.match(code)
                or code.endswith(("[", "("))):   # (`{`: opens_block)
            return False
        above = line
    return True


def has_continuation_lines(before: str, lines: list[str], grammar: str | None) -> bool:
    """Whether a line after the first starts inside a parenthesis, string or comment left open above it (in the
    cursor's line or the middle); True when the grammar's literals are unknown. Braces and square brackets open
    levels like blocks do (a callback's body inside `foo(function () {` is one)."""
    continued = continuation_lines(before, lines, grammar)
    return continued is None or bool(continued)


def continuation_lines(before: str, lines: list[str], grammar: str | None) -> set[int] | None:
    """The lines after the first that start inside a parenthesis, string or comment left open above them (aligned
    as styles like, not on a level); None when the grammar's literals are unknown."""
    text = before + lines[0]   # all that comes before the next line
    continued = set()
    for i, line in enumerate(lines[1:], start=1):
        scanned = code_outside_literals(grammar, text + "\n")   # a line comment ends with its line
        if scanned is None:
            return None
        open_brackets: list[str] = []
        for char in scanned[0]:
            if char in OPENERS:
                open_brackets.append(char)
            elif char in PAIRS and open_brackets:
                open_brackets.pop()
        if scanned[1] is not None or (open_brackets and open_brackets[-1] == "("):
            continued.add(i)
        text += "\n" + line
    return continued


def spaces_that_are_text(lines: list[str], before: str, grammar: str | None, original: str = "",
                         prose: bool = False) -> set[int]:
    """The lines (but the last) whose trailing spaces stay: where the line break after them is inside a string or
    comment (a Markdown hard break in a docstring, a program's expected output; all of them in `prose`), and lines
    the model wrote as the selection `original` has them (the user's own, left alone)."""
    if prose:
        return set(range(len(lines) - 1))
    spaced = [i for i, line in enumerate(lines[:-1]) if line != line.rstrip()]
    if not spaced:
        return set()
    own = {line for line in original.split("\n") if line != line.rstrip()}
    in_literal = lines_in_literals(before, lines, grammar)
    return {i for i in spaced if lines[i] in own or i + 1 in in_literal}


# Words a `(` or `[` after a space follows as an operand, not as a call's or an index's bracket: those an operand
# must follow (WANTS_OPERAND), those an expression may (KEYWORD_BEFORE_REGEX), and these statement heads.
HEADS_BEFORE_OPERAND = {"switch", "catch", "match", "then", "until", "local", "let", "const", "var", "lambda", "except"}


def keyword_at_end(text: str) -> bool:
    return bool(WANTS_OPERAND.search(text) or KEYWORD_BEFORE_REGEX.search(text)
                or re.search(r"\w+$", text).group() in HEADS_BEFORE_OPERAND)


def trim_trailing_whitespace(middle: str, suffix: str = "", grammar: str | None = None, before: str = "",
                             original: str = "", prose: bool = False) -> str:
    """Each line's trailing whitespace off, but for one space the middle ends with where the text after the cursor
    goes on at once with something a space may stand before (not a closer, `,`, `;`, `.` or `:`), and the middle
    ends with no opener or member access: `const ` written before `x = 1` (the rest cut as the suffix's) is not
    `constx`, `f(a, ` before `"x")` not `f(a,"x")`. Spaces the middle ends with inside a string or a comment the line
    goes on after (`"Name: |")`) are its text, and so are those after the closing `=` of a Python f-string's hole
    (`f"{name = }"` prints them); not where the text after the cursor starts with its own (the model's copy of it
    was cut). Lines before the last keep theirs where spaces_that_are_text says so."""
    lines = middle.split("\n")
    kept = spaces_that_are_text(lines, before, grammar, original, prose)
    written = [line if i in kept else line.rstrip() for i, line in enumerate(lines)]
    while len(written) > 1 and not written[-1].strip():
        written.pop()   # (trailing blank lines; the spaces of a kept line before them stay)
    trimmed = "\n".join(written) if len(written) - 1 in kept else "\n".join(written).rstrip()
    spaces = middle[len(middle.rstrip()):]
    if not spaces or "\n" in spaces or not trimmed or not suffix.split("\n", 1)[0].strip() or suffix[0] in " \t":
        return trimmed
    last_line = trimmed[trimmed.rfind("\n") + 1:] if "\n" in trimmed else before + trimmed
    ending = literal_ending(grammar, last_line)
    if ending == OPEN or (ending == HOLE and grammar == "python" and trimmed.endswith("=")
                          and suffix[:1] in ("}", "!", ":")):
        return trimmed + spaces   # (as the model wrote them)
    if suffix[0] in ")]}" and padded_opener(last_line if "\n" in trimmed else before + trimmed, suffix[0], grammar):
        return trimmed + " "   # `import { map }`, `{ return 1 }`: padded inside as the bracket is at its opener
    if suffix[0] in ")]},;.:" or trimmed[-1] in "([{." or trimmed.endswith(("::", "->", "?.")):
        return trimmed
    if suffix[0] in "([" and (trimmed[-1] in ")]" or WORD_START.match(trimmed[-1]) and not keyword_at_end(trimmed)):
        return trimmed   # a name or a closer before the user's `(xs)` or `[0]` calls or indexes: `len(xs)`
    return trimmed + " "   # (as the model spaced them: `x = y`, `if (a)`, `1 -- note`)


def padded_opener(line: str, closer: str, grammar: str | None) -> bool:
    """Is the bracket `line` leaves open last the one `closer` closes, with a space after it (`{ a`)?"""
    stack: list[int] = []
    code = code_for_brackets(line, grammar)
    for at, char in enumerate(code):
        if char in OPENERS:
            stack.append(at)
        elif char in PAIRS and stack and code[stack[-1]] == PAIRS[char]:
            stack.pop()
    # (the space looked for in `line` itself: a string's text is blanked to spaces in `code`, same length)
    return bool(stack) and code[stack[-1]] == PAIRS[closer] and line[stack[-1] + 1:stack[-1] + 2] == " "


def reindent_first_line(middle: str, before: str, indent_unit: str = "    ", lead: str = "",
                        line_above: str = "", neighbours: tuple[str, ...] = (), grammar: str | None = None) -> str:
    """Line up the first line with the cursor column.

    Later lines carry absolute indentation, the first starts at the cursor. When the cursor sits in indentation and
    the model wrote that indentation again, drop the repeat (unless the next line shows the extra indentation was
    meant as relative). Mid-line, a leading space after a space is dropped. (A fill at column 0 of indented lines
    is keep_selection_indentation's.) `lead`: the whitespace a selection itself starts with (a drag from inside
    the indentation, or the spaces before a trailing comment): the model writing it again in its place is no
    repeat. Where the user went left of the line above (`line_above`, the nearest code line: out of a block that
    ended with `return`), the first line starts at the cursor however deep the model wrote it, and the lines
    after it move as much: the user's column says where the code goes. Spaces that line the text up with a column
    the lines next to it align (`neighbours`: gofmt's `key:     value`, a macro's `\\` column) are kept.
    """
    lines = middle.split("\n")
    first = lines[0]
    ws, body = indentation(first), first.lstrip(" \t")
    if not body or (lead and ws == lead):
        return middle
    if not before.strip():
        if not ws:   # written from the selection's start: the whitespace the selection took goes back before it
            return lead + middle
        column = len(before)
        next_line = next((line for line in lines[1:] if line.strip()), None)
        if next_line is not None:
            expected = len(indentation(next_line)) - (len(indent_unit) if opens_block(first) else 0)
            if column + len(ws) == expected != len(ws):
                rest = lines[1:]
                if column >= len(indentation(line_above)) or any(
                        line.strip() and not line.startswith(ws) for line in rest):
                    return middle   # relative indentation, as the next line confirms
                return "\n".join([body, *(line[len(ws):] if line.strip() else line for line in rest)])
        lines[0] = ws[column:] + body if len(ws) >= column else body
        return "\n".join(lines)
    if before[-1] in " \t" and ws and not lines_up_with_neighbours(before, ws, neighbours, grammar):
        lines[0] = body
    return "\n".join(lines)


def lines_up_with_neighbours(before: str, spaces: str, neighbours: tuple[str, ...], grammar: str | None = None
                             ) -> bool:
    """`before` + `spaces` ends where a line next to it, indented alike, has text after a run of spaces, or, in
    Go, after the one space of a longer key's `: ` (gofmt: `"long": "b",` over `"k": ` + `   "d",`). (Spaces
    after `=` or `,` line up with nothing: formatters that align put the padding before the `=`.)"""
    column, last = len(before) + len(spaces), before.rstrip()[-1:]
    one_space_after = last + " " if grammar == "go" and last == ":" else "  "
    return spaces.strip(" ") == "" and any(
        indentation(line) == indentation(before) and line[column:column + 1].strip()
        and line[column - 2:column] in ("  ", one_space_after) for line in neighbours)


def keep_selection_indentation(middle: str, original: str, grammar: str | None = None) -> str:
    """A fill at column 0 replacing indented lines, whose first line the model wrote left of the selection's: was
    the block written relative to that first line (shift it all) or with the document's indentation after it (move
    only the first line)? Relative when a later line goes left of every line of the selection (code in its place
    would not: `}` at column 0), or when the first line opens a block whose next line is deeper than it but, read
    as absolute, no deeper than the selection's first line (`while (...) {` then its body at the same depth)."""
    lines = middle.split("\n")
    indent, first = indentation(original), indentation(lines[0])
    if len(first) >= len(indent) or not lines[0].strip():
        return middle
    # a selection of blank lines only (its spaces) counts as its indentation
    shallowest = min((len(indentation(line)) for line in original.split("\n") if line.strip()), default=len(indent))
    later = [len(indentation(line)) for line in lines[1:] if line.strip()]
    relative = any(width < shallowest for width in later) or (
        bool(later) and opens_block(lines[0], grammar) and len(first) < later[0] <= len(indent))
    if relative:
        shift = indent[:len(indent) - len(first)] if indent.endswith(first) else None
        if shift is not None:
            return "\n".join(shift + line if line.strip() else line for line in lines)
    return "\n".join([indent + lines[0].lstrip(" \t"), *lines[1:]])


def pull_back_to_selection(middle: str, own: str, before: str, line_above: str = "", indent_unit: str = "    ",
                           grammar: str | None = None) -> str:
    """A fill or rewrite of whole lines written deeper than the selection, every line of it and its first line by
    as much (`        return 1;` for `    return 1;`), and deeper than the line above allows (a level under an
    opener, else its depth; any depth under a line that goes on): moved left together to the selection's depth. A
    block the model wrapped the lines in starts at their depth, and lines the user left too shallow that the model
    indented (a body under its `if x:`) are the model's to put right: both are left alone."""
    lines = middle.split("\n")
    above = without_trailing_comment(line_above, grammar).rstrip()
    opener = opens_block(above, grammar) or braceless_header(above, grammar)
    if above and not opener and goes_on_below(above, grammar):
        return middle
    allowed = len(indentation(line_above)) + (len(indent_unit) if opener else 0)

    def depths(text_lines: list[str]) -> list[int]:
        return [len(indentation(line)) + (len(before) if i == 0 else 0)
                for i, line in enumerate(text_lines) if line.strip()]
    ours, theirs = depths(lines), depths(own.split("\n"))
    if not ours or not theirs:
        return middle
    shift = min(ours) - min(theirs)
    if shift <= 0 or min(ours) <= allowed or ours[0] - theirs[0] != shift or any(
            line.strip() and len(indentation(line)) < shift for line in lines):
        return middle   # (a line whose own indentation is less, a string's text at the margin, cannot move)
    return "\n".join(line[shift:] if line.strip() else line for line in lines)


# A line that closes a block with a condition: Lua's `until x`, C's `} while (x);` of a `do`.
DO_WHILE_END = re.compile(r"\s*\}\s*while\s*\(.*\)\s*;\s*$")
ENDS_BLOCK = {"lua": re.compile(r"\s*until\b.*$"), **{grammar: DO_WHILE_END for grammar in BRACELESS_HEADER_GRAMMARS}}
# A line below that goes on with the block above it (`else:`, `} catch (e) {`): the code before it is that block's.
CONTINUES_BLOCK = re.compile(r"\s*(?:\}\s*)?(?:else|elif|elseif|except|finally|catch)\b")


ACCESS_LABEL = re.compile(r"^([ \t]*)(?:public|private|protected)[ \t]*:(?!:)", re.MULTILINE)


def access_label_at_margin(first_written: str, ctx: CleanContext) -> bool:
    """C++ `private:` written at column 0 where the nearest access label above is at column 0 too (LLVM's style
    puts them there, the members indented)."""
    if ctx.grammar != "cpp" or not ACCESS_LABEL.match(first_written) or indentation(first_written):
        return False
    nearest = None
    for nearest in ACCESS_LABEL.finditer(ctx.text, 0, ctx.replaced[0]):
        pass
    return nearest is not None and not nearest.group(1)


def ends_or_continues_block(line: str, grammar: str | None) -> bool:
    """`}`, `) {`, `else:`, `} catch (e) {`, Lua's `end, { silent = true })`: a line that begins by leaving a block."""
    return bool(CLOSING_LINE.match(line) or CONTINUES_BLOCK.match(line) or line.lstrip()[:1] in PAIRS
                or grammar == "lua" and re.match(r"\s*end\b", line))


def indent_at_column_zero(middle: str, line_above: str, suffix: str, indent_unit: str,
                          grammar: str | None = None) -> str:
    """Written from column 0 at column 0 of a blank line (a fill of blank lines, a request on an empty line) while
    the code around is indented (`line_above`: the statement above, a header over several lines joined into one),
    not under a block opener (indent_block_body's) nor at the end of the file: the block goes to that code's depth,
    the shallower of the lines above and below (a closing or continuing line below, `}` or `else:`, counts as its
    block's body). Later lines already that deep were written at their depth, and only the first moves, unless it
    opens a block they would then not be inside (a C `if (a)` with no brace has one too). Lines inside a string or
    comment, and C preprocessor lines, stay as written. Before, Python refused such a fill and braces got code at
    the margin."""
    lines = middle.split("\n")
    # (the first line that tells its block: a C `#endif` at the margin says nothing of the code after it)
    if (not middle.strip() or indentation(next((line for line in lines if sets_indentation(line, grammar)), ""))
            or (line_above.strip() and opens_block(line_above, grammar))):
        return middle
    below = next((line for line in suffix.split("\n") if line.strip()), "")
    # At the end of the file a new top-level statement is as likely as more of the last block; at its start, with
    # no code above, the margin is where code begins (the code below may be the body of what the fill opens).
    if not below or not line_above.strip():
        return middle
    depth = indentation(below) + (indent_unit if CLOSING_LINE.match(below) or CONTINUES_BLOCK.match(below) else "")
    if line_above.strip() and len(indentation(line_above)) < len(depth):
        depth = indentation(line_above)
    first = next((line for line in lines if sets_indentation(line, grammar)), "")
    # A first line that ends the block the line above is in (`}`, Lua's `end, {`, `except E:`) goes to that
    # block's header's depth, as does rustfmt's `{` under a `where` clause's bounds (a level deeper than the item).
    if line_above.strip() and (ends_or_continues_block(first, grammar) or grammar == "rust" and first.strip() == "{"
                               and line_above.rstrip().endswith(",")):
        above = indentation(line_above)
        depth = min(depth, above[:max(len(above) - len(indent_unit), 0)], key=len)
    if not depth:
        return middle
    text_lines = lines_in_literals("", lines, grammar)
    code = [i for i, line in enumerate(lines) if sets_indentation(line, grammar) and i not in text_lines]
    if not code:   # only preprocessor lines or text: nothing to place
        return middle
    later = [len(indentation(lines[i])) for i in code[1:]]
    # (A C-family control header with no brace, `if (a)`, has its one statement a level deeper on the next line.)
    first_has_body = opens_block(lines[code[0]], grammar) or (   # (not an Allman header: its `{` comes next)
        braceless_header(lines[code[0]], grammar) and len(code) > 1 and not lines[code[1]].lstrip().startswith("{"))
    body_written_deep = bool(later) and min(later) >= len(depth) and not (first_has_body and later[0] <= len(depth))
    moved = code[:1] if body_written_deep else code
    return "\n".join(depth + line if i in moved else line for i, line in enumerate(lines))


def top_level_definition_after_gap(middle: str, ctx: CleanContext) -> bool:
    """Python: a `def`, `class` or decorator written at the margin after PEP 8's two blank lines is a new top-level
    definition, not one more method of the class above (the code below may be the body of what it opens)."""
    if ctx.grammar != "python" or ctx.blank_lines_above < 2:
        return False
    code = [line for line in middle.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    below = next((line for line in ctx.suffix.split("\n") if line.strip()), "")
    # Not a method (`self`, `cls`), nor where the class goes on below with members of its own.
    return bool(code) and bool(PYTHON_DEFINITION.match(code[0])) and not any(
        METHOD_HEADER.match(line) for line in code) and not (indentation(below) and PYTHON_DEFINITION.match(
            below.lstrip()))


def blank_lines_placed_by_code(original: str, line_above: str, suffix: str, grammar: str | None = None) -> bool:
    """A fill of selected blank lines that indent_at_column_zero placed at the depth of the code around it, where
    the spaces left on those lines say nothing: the code below is as deep as they are, or no shallower than the line
    above (`    ` between two top-level lines, 8 spaces in a 4-space body). Where the code below is shallower than
    the line above (the end of a body), the spaces say which of the two the fill belongs to, as an editor's
    auto-indent left them; under a block opener or at the end of the file they are all there is."""
    if original.strip():
        return False
    below = next((line for line in suffix.split("\n") if line.strip()), "")
    if not below or (line_above.strip() and opens_block(line_above, grammar)):
        return False
    below_depth = len(indentation(below))
    return below_depth >= len(indentation(original)) or len(indentation(line_above)) <= below_depth


def shift_block_written_from_cursor(middle: str, before: str, grammar: str | None = None,
                                    bracket_opened_at: str | None = None, opener: str = "") -> str:
    """On a blank line's indentation, a block whose opener the model wrote at the cursor and whose body it indented
    from column 0, as if the cursor's column were the margin (`if x:` then `    y = 1`): read as absolute, the body
    would be no deeper than its opener (Python refuses it, braces make it unreadable), so every later line is moved
    right by the cursor's indentation. Lines inside a string or comment are text and stay as written. An opener
    that closes the bracket a line above opened (a parameter list's last line, at its column) is that line's:
    the margin is that line's indentation (`bracket_opened_at`), not the cursor's."""
    if not before or before.strip():
        return middle
    lines = middle.split("\n")
    finished_header = header_finished_below(lines[0], before, opener, bracket_opened_at, grammar)
    # (A label's statements, `case 2:` or `private:`, may sit at its own depth: no sign of a margin moved.)
    if indentation(lines[0]) or not opens_block(finished_header or lines[0], grammar) or LABEL_LINE.match(lines[0]):
        return middle
    if finished_header:
        before = indentation(finished_header)
        if not before:
            return middle
    text_lines = lines_in_literals(before, lines, grammar)
    body = next((line for i, line in enumerate(lines) if i and i not in text_lines and line.strip()), None)
    if body is None or not 0 < len(indentation(body)) <= len(before):
        return middle
    if len(indentation(body)) == len(before) and CLOSING_LINE.match(body):
        return middle   # (the opener's own closer, at the cursor's column: written where it goes, `void g() {` + `}`)
    return "\n".join(before + line if i and i not in text_lines and line.strip() else line
                     for i, line in enumerate(lines))


# Blocks whose bodies most C++ styles leave at the opener's depth (Google's, LLVM's): a namespace, `extern "C"`.
UNINDENTED_BODY = re.compile(r'\s*(?:(?:inline\s+)?namespace\b|extern\s+"C(?:\+\+)?"\s*\{)')


LABEL_SCAN_CHARS = 200_000   # how much of a document is read for where it puts its labels


def labels_indented_under_openers(document: str) -> bool:
    """Does the document write a `case` or access label right under its block's opener deeper than the opener
    (Prettier's and Google Java's `case`) more often than at its depth (gofmt's, the Linux kernel's, LLVM's
    `public:`)? False when it has no such label."""
    deeper = level = 0
    previous = ""
    for line in document[:LABEL_SCAN_CHARS].split("\n"):
        if not line.strip():
            continue
        if LABEL_LINE.match(line) and previous.rstrip().endswith("{"):
            if len(indentation(line).expandtabs()) > len(indentation(previous).expandtabs()):
                deeper += 1
            else:
                level += 1
        previous = line
    return deeper > level


def indent_block_body(middle: str, before: str, line_above: str, indent_unit: str, grammar: str | None = None,
                      gnu_tabs: bool = False, document: str = "") -> str:
    """On a blank line under a block opener the body must be deeper than the opener. When the model wrote it at
    the opener's level (or the cursor sits at column 0), shift every line by the missing amount; when only the
    first line is short (the model wrote the later ones at their full depth), move the first line alone, to the
    depth the later lines show. `gnu_tabs`: the document mixes tabs and spaces GNU's way, a tab for 8 columns (a
    tab's body under a 4-space `{` is already deeper)."""
    if before.strip() or not opens_block(line_above, grammar):
        return middle
    lines = middle.split("\n")
    # (a comment above a label is the label's: `// falls through` then `case 2:`)
    first_statement = next((line for line in lines if line.strip() and not comment_only(line, grammar)), lines[0])
    if LABEL_LINE.match(first_statement) and LABEL_LINE.match(line_above):
        return middle   # labels stacked (`case 1:` then `case 2:`): the same depth, no body yet
    if grammar in ("c", "cpp") and UNINDENTED_BODY.match(line_above):
        return middle
    # A C preprocessor line at the margin sits there in any block: the first other line tells where the model wrote.
    at_margin = {i for i, line in enumerate(lines) if grammar in ("c", "cpp") and line.startswith("#")}
    first = next((i for i, line in enumerate(lines) if line.strip() and i not in at_margin), None)
    if first is None:
        return middle
    written = (before if first == 0 else "") + indentation(lines[first])
    column = len(written)
    if gnu_tabs and len(written.expandtabs(8)) > len(indentation(line_above).expandtabs(8)):
        return middle   # (a tab is 8 columns there)
    if column > len(indentation(line_above)) or not lines[0].strip():
        return middle   # already deeper than the opener
    pad_char = "\t" if indent_unit == "\t" else " "
    # (from the margin, the opener's own indentation and a step: a tab file's 5-space GNU `if {` is no 6 tabs)
    pad = indentation(line_above) + indent_unit if not column else pad_char * (
        len(indentation(line_above)) + len(indent_unit) - column)
    opener_depth = len(indentation(line_above))
    # A last line that closes at the opener's depth or left of it is the block's own closer, repeated (at column 0
    # the scope rule could not cut it): it stays there for the suffix rules to see, not moved into the body.
    # (Not when the middle's brackets pair up: the closer is then its own, `}` of the function it wrote.)
    last = len(lines) - 1
    keep = last if (last and CLOSING_LINE.match(lines[last]) and len(indentation(lines[last])) <= opener_depth
                    and code_bracket_surplus(middle, grammar) < 0) else -1
    if first:   # (the first line is a preprocessor line, where it is)
        return "\n".join(pad + line if line.strip() and i not in at_margin and i != keep else line
                         for i, line in enumerate(lines))
    # (Lines inside a bracket the first line opens are aligned to it, not placed on the body's levels.)
    aligned = continuation_lines(before, lines, grammar) or set()
    later = [len(indentation(line)) for i, line in enumerate(lines)
             if i and i != keep and i not in aligned and i not in at_margin and line.strip()]
    # The first line is given its whole indentation, cursor column included: reindent_first_line takes a first
    # line indented as deep as the cursor for one that repeats the cursor's indentation, and would undo a pad alone.
    if later and min(later) > opener_depth:
        depth = min(later) - (len(indent_unit) if opens_block(lines[0], grammar) else 0)
        if depth > opener_depth:
            lines[0] = before + pad_char * (depth - column) + lines[0]
            return "\n".join(lines)
        # A label with its statements deeper sits at the opener's depth: gofmt's `case`, LLVM's `public:` at the
        # class's column (Python's `case` is a body of `match`, a level deeper), unless the document's own labels
        # are deeper than their openers.
        if LABEL_LINE.match(lines[0]) and grammar != "python" and (
                grammar == "go" or not labels_indented_under_openers(document)):
            lines[0] = before + pad_char * (opener_depth - column) + lines[0]
            return "\n".join(lines)
    first_pad = pad
    if grammar == "go" and LABEL_LINE.match(lines[0]):   # gofmt's `case` is at its switch's depth always
        first_pad = pad_char * (opener_depth - column)
        if not column:   # (written from the margin: its statements a level below it already)
            pad = first_pad
    lines[0] = before + first_pad + lines[0]
    return "\n".join(pad + line if line.strip() and i and i != keep and i not in at_margin else line
                     for i, line in enumerate(lines))


def indent_flat_body(middle: str, header: str, indent_unit: str, grammar: str | None = None) -> str:
    """After a block opener on the cursor's line, a body the model began on a new line at the opener's own level
    (no deeper than the header) is shifted one level below it; a last line that closes the block stays where it is.
    Otherwise keep_inside_scope reads the first body line as code after the block and nothing is left."""
    lines = middle.split("\n")
    written = [i for i, line in enumerate(lines) if sets_indentation(line, grammar)]
    if lines[0].strip() or not written or CLOSING_LINE.match(lines[written[0]]):
        return middle
    missing = len(indentation(header)) + len(indent_unit) - len(indentation(lines[written[0]]))
    if len(indentation(lines[written[0]])) > len(indentation(header)) or missing <= 0:
        return middle
    pad = ("\t" if indent_unit == "\t" else " ") * missing
    closer = written[-1] if (CLOSING_LINE.match(lines[written[-1]])
                             and len(indentation(lines[written[-1]])) <= len(indentation(header))) else None
    return "\n".join(pad + line if i in written and i != closer else line for i, line in enumerate(lines))


# A `{` that opens a value, not a block: after `=`, `(`, `[`, `,`, `:`, `?` or `return`, or right after a name (Go's
# and Rust's `Point{`, Java's `new int[]{`); any `{` in Python (a dict or a set). So do JavaScript's names imported,
# exported or taken apart: `import {`, `export {`, `const {`.
LITERAL_BRACE = re.compile(r"(?:(?:[=(\[,:?]|\b(?:return|import|export|const|let|var))\s*|[\w\]])\{$")


def closes_literal_inline(middle: str, before: str, rest_of_line: str, grammar: str | None) -> bool:
    """Whether `middle` is one line that closes the literal whose `{` ends `before` (`'a': 1}`), itself or with the
    `}` the editor typed after the cursor: what the model wrote on the cursor's line stays there, instead of moving
    to a body line of its own."""
    code = before.rstrip()
    if "\n" in middle.rstrip() or not code.endswith("{") or not (grammar == "python" or LITERAL_BRACE.search(code)):
        return False
    surplus = code_bracket_surplus(middle, grammar)
    return surplus < 0 or (surplus == 0 and rest_of_line.lstrip().startswith("}"))


LINE_CONTINUATION = re.compile(r"[ \t]*\\")


def open_block_body(middle: str, before: str, rest_of_line: str, indent_unit: str, grammar: str | None = None) -> str:
    """After a block opener the body goes on its own, deeper line; a closer left on the cursor's line moves to a
    line of its own below the body, and so does one the model wrote at the end of its one line (` return 1; }`).
    Not a macro's line continuation (C's `do {` + `   \\`): it ends the opener's line, where the model put it."""
    if grammar in ("c", "cpp") and LINE_CONTINUATION.fullmatch(middle.split("\n", 1)[0]):
        return middle
    closer_at = block_closer_in_line(middle, grammar) if not rest_of_line.strip() else None
    if closer_at is not None:
        return (open_block_body(middle[:closer_at].rstrip(), before, "", indent_unit)
                + "\n" + indentation(before) + middle[closer_at:].strip())
    if not middle.startswith("\n"):   # (the space before a `}` kept on the braces' line is no end of a body line)
        middle = "\n" + indentation(before) + indent_unit + middle.strip(" \t")
    last_line = middle.rstrip().rsplit("\n", 1)[-1]
    # Lua's `end` closes the block itself: the editor's `)` of `foo(function()|)` goes right after it
    closed_by_end = last_line.strip() == "end" and indentation(last_line) == indentation(before)
    if rest_of_line.strip() and not closed_by_end:
        middle += "\n" + indentation(before)
    return middle


def first_closer_of_what_is_before(code: str) -> int | None:
    """Where `code` (its literals blanked) first closes a bracket it did not open: one opened before it."""
    depth = 0
    for at, char in enumerate(code):
        depth += (char in "([{") - (char in ")]}")
        if depth < 0:
            return at
    return None


def closes_block_on_line(written: str, grammar: str | None) -> bool:
    """`written`, one line after a block opener, closes that block with a `}` after code of its own (` return 1 }`,
    ` done <- 1 }()`, ` return a - b });`): a body the model kept on the braces' line."""
    code = code_for_brackets(written, grammar)
    at = first_closer_of_what_is_before(code)
    return at is not None and code[at] == "}" and bool(code[:at].strip())


def block_closer_in_line(middle: str, grammar: str | None) -> int | None:
    """Where the `}` closing the block opened before the cursor is, when `middle` is one line of code that ends
    with it and closers alone (`return 1; }`, `g(); });`); None otherwise (Python's and Lua's blocks close
    otherwise)."""
    if grammar in (None, "python", "lua") or "\n" in middle.strip():
        return None
    code = code_for_brackets(middle, grammar)
    at = first_closer_of_what_is_before(code)
    if at is None:
        return None
    closes_all = code[at] == "}" and code[:at].strip() and re.fullmatch(r"[})\];,\s]*", code[at:])
    return at if closes_all and len(code) == len(middle) else None


GO_LINE_END_NEEDS_COMMA = re.compile(r"(?:[\w\"'`)\]}]|\+\+|--)$")   # what Go ends a statement after


def still_in_go_list(middle: str, ctx: CleanContext) -> bool:
    """Does the suffix's first closer, which ended a Go list where the middle was missing, still end one once the
    middle is in? Not where the middle closes that list itself (`xs := []int{` + `\n\t\t1,\n\t}`, then the
    function's `}`); it may where the middle closes an element inside it (`{X: 1, ` + `Y: 2}`, then the list's)."""
    if code_bracket_surplus(middle, ctx.grammar) >= 0 or not ctx.text:
        return True
    start, end = ctx.replaced
    ends_list = next_closer_ends_go_list(ctx.text[:start] + middle + ctx.text[end:], start + len(middle))
    return ends_list is not False


def comma_before_own_line_closer(middle: str, suffix: str, grammar: str | None, before: str = "") -> str:
    """Go: when the closer of a literal or an argument list comes on a line after the middle's last code, that
    code needs a trailing comma (`Point{` / `X: 1,` / `}`); added before a line comment ending it. Whole-line
    comments and blank lines after the last code line are passed over: the comma goes on that line. So is a
    comment the suffix's first line holds alone (`[[2,]] // two` filled with `3`: `3, // two`)."""
    rest_of_line = suffix.split("\n", 1)[0]
    if "\n" in suffix and rest_of_line.strip() and not code_after_cursor(rest_of_line, grammar).strip():
        suffix = suffix[len(rest_of_line):]
    code = middle.rstrip()
    between = middle[len(code):] + suffix[:len(suffix) - len(suffix.lstrip())]
    if "\n" not in between:
        return middle
    lines = code.split("\n")
    while len(lines) > 1 and (not lines[-1].strip() or comment_only(lines[-1], grammar)):
        lines.pop()
    if len(lines) < code.count("\n") + 1:
        code_end = len("\n".join(lines))
        return comma_before_own_line_closer(middle[:code_end], "\n", grammar, before) + middle[code_end:]
    line_start = code.rfind("\n") + 1
    kept, comment = split_trailing_comment(code, grammar, before)
    if not comment:
        kept, comment = split_trailing_block_comment(code, grammar)
    kept_code = kept.rstrip()
    if len(kept_code) < line_start or not GO_LINE_END_NEEDS_COMMA.search(kept_code) \
            or comment_start(grammar).match(code[line_start:]):
        return middle   # the last line is blank, a comment, or ends with `,` `{` `(` or an operator
    return kept_code + "," + kept[len(kept_code):] + comment + middle[len(code):]


# A line that closes a block, or goes on with it, at the block header's depth: a level shallower than its body.
AT_HEADER_DEPTH = {"python": re.compile(r"[)\]}]|(?:else|elif|except|finally)\b"),
                   "lua": re.compile(r"[)\]}]|(?:end|else|elseif|until)\b")}
CLOSER_FIRST = re.compile(r"[)\]}]")
# A line that a deeper line may go on from: ends inside an expression (an operator, a comma, an opening bracket,
# a backslash) rather than a statement.
GOES_ON = re.compile(r"(?:[,(\[{=+\-*%&|^<>?:.\\]|(?<!\*)/|\band|\bor|\bnot)\s*$")   # (a block comment's `*/` ends)
# A line that goes on the one above from its start: a method chain's `.`, an operator, a ternary's branches.
GOES_ON_FROM_ABOVE = re.compile(r"(?:\.(?!\.\.)|\?|:(?!:)|&&|\|\||\||\+|-(?!-)|<<|>>|\*|/(?![/*])|%|\^|=|,|and\b|or\b)")
OPEN_JSX_TAG = re.compile(r"<[A-Za-z][\w.:-]*(?:\s[^<>]*)?$")   # a tag whose attributes go on below it


def goes_on_below(code: str, grammar: str | None) -> bool:
    """Does the statement on this line (no comment, not a block's header) go on below it: an operator, a bracket or
    a JSX tag left open at its end? Its next lines may then stand at any depth."""
    return bool(GOES_ON.search(code) or OPEN_JSX_TAG.search(code) or code_bracket_surplus(code, grammar) > 0)


def pull_back_too_deep(middle: str, ctx: CleanContext, suffix: str) -> str:
    """Lines written deeper than any place the cursor can mean, every one of them (a body two levels under its
    header, a statement a level under a finished one, a Go file's `package` line under a tab): moved left
    together, to the deepest the context allows (the line above's depth, a level more under an opener, the
    cursor's column, the next line's depth). Python's blocks keep their shape; only their depth changes."""
    lines = middle.split("\n")
    if ctx.before.strip() and "\n" not in middle:
        return middle
    # (the header the cursor's line and the middle's first line make: `if x` + ` {`, Lua's `if x` + `then`)
    header = (ctx.opener or ctx.before) + lines[0] if ctx.before.strip() else (ctx.opener or ctx.line_above)
    above_code = without_trailing_comment(header, ctx.grammar).rstrip()
    opener = opens_block(above_code, ctx.grammar) or braceless_header(above_code, ctx.grammar)
    if ctx.grammar == "python" and not opener:
        return middle   # under a finished statement, a deeper Python line wants a block that is not there
    if lines_in_literals(ctx.before, lines, ctx.grammar):
        return middle   # a string's or comment's text: its indentation is not the code's
    next_line = next((line for line in suffix.split("\n")[1:] if line.strip()), "")
    # A directive's column says nothing of the block (`#ifdef` at column 0), nor does a column-0 comment's among
    # indented code (a `// TODO` at the margin).
    if not ctx.before.strip() and any(line.strip() and (not sets_indentation(line, ctx.grammar) or (
            not indentation(line) and indentation(other) and comment_only(line, ctx.grammar)))
            for line, other in ((header, next_line), (next_line, header))):
        return middle
    if above_code and not opener and goes_on_below(above_code, ctx.grammar):
        return middle   # a continuation line may go deeper
    first_code = next((line for line in lines[1 if ctx.before.strip() else 0:] if line.strip()), "")
    if GOES_ON_FROM_ABOVE.match(first_code.lstrip()):
        return middle   # (`.map(...)`, `&& b`, `<< x`, `? a : b` under the statement they go on)
    unit = ctx.indent_unit
    allowed = len(indentation(header)) + (len(unit) if opener else 0)
    at_header_depth = AT_HEADER_DEPTH.get(ctx.grammar, CLOSER_FIRST)
    if not ctx.before.strip():
        allowed = max(allowed, len(ctx.before))
    allowed = max(allowed, len(indentation(next_line)))
    # (line 0 follows the cursor: on a blank line its depth counts from the cursor's column; after code it is on
    # the cursor's line and no depth of its own)
    depths = []
    for i, line in enumerate(lines):
        if not line.strip() or (i == 0 and ctx.before.strip()):
            continue
        ws = indentation(line)
        if ws.strip(unit[:1]) or (i == 0 and ctx.before.strip(unit[:1])):
            return middle   # indentation of another kind: not told here
        depth = len(ws) + (len(ctx.before) if i == 0 else 0)
        depths.append(depth + (len(unit) if at_header_depth.match(line.lstrip()) else 0))
    if not depths or min(depths) <= allowed:
        return middle
    shift = min(depths) - allowed
    if any(line.strip() and len(indentation(line)) < shift for line in lines[1:]) or (
            lines[0].strip() and not ctx.before.strip() and len(indentation(lines[0])) < shift):
        return middle
    return "\n".join(line[shift:] if line.strip() and (i or not ctx.before.strip()) else line
                     for i, line in enumerate(lines))


PYTHON_JUMP = re.compile(r"[ \t]*(?:return|raise|continue|break)\b(?!.*(?:\\|[(\[{,])[ \t]*$)")


def lands_after_jump(middle: str, ctx: CleanContext) -> bool:
    """Python: whether the middle's first code line goes right under a `return`, `raise`, `continue` or `break` at
    its depth: code that never runs (the model carried on a block the line above ended)."""
    if ctx.grammar != "python" or ctx.before.strip() or not PYTHON_JUMP.match(ctx.line_above):
        return False
    lines = middle.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
                 None)   # (a comment there is no code that never runs)
    if first is None:
        return False
    depth = len(indentation(lines[first])) + (len(ctx.before) if first == 0 else 0)
    return depth == len(indentation(ctx.line_above))


def to_line_ending(middle: str, line_ending: str) -> str:
    return middle.replace("\n", line_ending) if line_ending != "\n" else middle


# A line holding only a docstring's or block comment's opening: no text above for a paragraph break to follow.
BARE_LITERAL_OPENING = re.compile(r"[rRbBuUfF]{0,2}(?:\"\"\"|'''|`)|/\*[*!]?|(?:--)?\[=*\[")


def clean_paragraph(raw: str, ctx: CleanContext) -> str:
    """Asked on a blank line inside a comment or string of several lines (decide): its paragraph, indented as the model
    wrote it (the text's own indentation, not the code's; no code rule applies), less what writes the line above or
    the suffix again. It stops before a line that would end the literal early (the suffix holds its end), or, in a
    comment the user has not closed yet, after the line that closes it (the code the model goes on with is no part
    of the comment asked in). A blank line it begins with is a paragraph break after the text above (the summary
    line of a docstring), kept where the cursor's line is the first blank one under that text (not under a
    docstring's bare opening quotes or a bare `/**`). Where the cursor stands after the line's indentation, the
    model's first line gives that indentation again: not twice."""
    middle = normalize_newlines(raw)
    lines = middle.split("\n")
    closer = re.compile(r"(?<!\\)" + re.escape(ctx.literal_closer)) if ctx.literal_closer else None   # (not `\"`)
    closing = next(((i, found) for i, line in enumerate(lines) if closer and (found := closer.search(line))), None)
    if closing is not None:
        at, found = closing
        ended = [] if ctx.literal_ends_below else [lines[at][:found.end()]]   # (not the code after the `*/`)
        middle = "\n".join(lines[:at] + ended)
    middle = drop_repeated_line_above(middle, ctx.line_above)
    paragraph_break = (not middle.split("\n", 1)[0].strip() and not ctx.blank_lines_above
                       and not BARE_LITERAL_OPENING.fullmatch(ctx.line_above.strip()))
    middle = drop_leading_blank_lines(middle)
    if paragraph_break and middle.strip():
        middle = "\n" + middle
    elif ctx.before:   # (the part both share, character for character: a tab is not 8 spaces)
        middle = middle[len(os.path.commonprefix([indentation(middle), ctx.before])):]
    suffix = normalize_newlines(ctx.suffix)
    # (the suffix's lines or its start written again; a bracket in prose is no code's, so no closer rule)
    middle = drop_repeated_suffix_lines(middle, suffix, ctx.before, ctx.suffix_starts_line, ctx.grammar)
    middle = drop_suffix_overlap(middle, suffix, ctx.suffix_starts_line, ctx.grammar, ctx.before)
    middle = trim_trailing_whitespace(middle, suffix, ctx.grammar, ctx.before, "", prose=True)
    return to_line_ending(middle, ctx.line_ending) if middle.strip() else ""


def clean_middle(raw: str, ctx: CleanContext) -> str:
    """All rules in order; "" when nothing worth inserting is left."""
    if ctx.shape == "multi" and ctx.literal_lines > 1:
        return clean_paragraph(raw, ctx)
    middle = normalize_newlines(raw)
    suffix = normalize_newlines(ctx.suffix)
    # (Lua's `else` + `if b then` glued to it is `elseif b then`, a header of its own, not a body under `else`)
    after_opener = ctx.shape == "multi" and bool(ctx.before.strip()) and opens_block(
        ctx.opener or ctx.before, ctx.grammar) and not (ctx.grammar == "lua" and LUA_ELSE_GLUED_TO_IF.match(
            ctx.before[-4:] + middle))
    opener_above = ctx.opener if ctx.opener and not ctx.before.strip() else ctx.line_above
    # Rules against a fill that writes the text before it again; a selection's own text may do that on purpose
    # (`x = x + 1` selected after `x = `), so a rule it would fail is left out, as for the suffix's rules below.
    own = normalize_newlines(ctx.original)
    def unless_own(rule: Callable[[str], str], text: str) -> str:
        return rule(text) if rule(own) == own else text
    if ctx.before.strip():
        middle = unless_own(lambda text: drop_repeated_line_start(text, ctx.before), middle)
        middle = unless_own(lambda text: drop_repeated_word_start(text, ctx.before, ctx.text), middle)
        if after_opener:
            middle = unless_own(lambda text: drop_repeated_header(text, ctx.before), middle)
    if not ctx.literal_lines:
        middle = unless_own(lambda text: drop_doubled_keywords(text, ctx.grammar, ctx.before), middle)
    gap = definition_gap(middle, ctx)
    if not ctx.before.strip():
        middle = unless_own(lambda text: drop_repeated_line_above(text, ctx.line_above), middle)
        middle = drop_leading_blank_lines(middle)
    # A docstring's or comment's text, its indentation included, is the writer's (`Args:` and its deeper lines).
    prose = ctx.literal_lines > 1 and not any(
        closer in middle for closer in LITERAL_CLOSERS_BY_GRAMMAR.get(ctx.grammar or "", LITERAL_CLOSERS))
    if not prose:
        middle = normalize_indentation(middle, ctx.indent_unit, ctx.tab_size, ctx.before, ctx.grammar,
                                       ctx.own_mixed_indentations)
    middle = shift_block_written_from_cursor(middle, ctx.before, ctx.grammar, ctx.bracket_opened_at, ctx.opener)
    first_written = next((line for line in middle.split("\n") if line.strip()), "x")
    if not ctx.before and ctx.shape in ("block", "multi") and not ctx.original.strip() and not (
            (ctx.scope_at_margin and CLOSING_LINE.match(first_written) or ctx.bracket_opened_at == ""
             and first_written[:1] in (")", "]")) and not indentation(middle.lstrip("\n"))):
        # (a closer at the margin ends the scope that begins there: `}` then `function b() {`, or a header's
        # `) -> str:` under its parameters, left where written)
        if not top_level_definition_after_gap(middle, ctx) and not access_label_at_margin(first_written, ctx):
            middle = indent_at_column_zero(middle, opener_above, suffix, ctx.indent_unit, ctx.grammar)
    placed_by_code = blank_lines_placed_by_code(ctx.original, opener_above, suffix, ctx.grammar)
    if ctx.shape == "block" and not ctx.before and not placed_by_code:
        # (in place before a `}` of the block is compared with the suffix's)
        middle = keep_selection_indentation(middle, ctx.original, ctx.grammar)
    if own.strip() and not ctx.before.strip():
        middle = pull_back_to_selection(middle, own, ctx.before, opener_above, ctx.indent_unit, ctx.grammar)
    if ctx.shape == "multi" and ctx.before.strip() and signature_awaits_block(ctx.before.rstrip(), ctx.grammar):
        first_line = middle.split("\n", 1)[0]
        if first_line.strip() and not opens_block(ctx.before + first_line, ctx.grammar):
            # (`=> x + 1;`, Lua's ` then print(x) end`: no block after all, and the statement ended on its line)
            middle = first_line
    if ctx.shape == "single":
        item = next_item_below(middle, ctx.before, ctx.line_above, ctx.rest_of_line, ctx.grammar)
        middle = item or operand_after_line_break(middle, ctx.before, ctx.grammar)
        middle = item or (lines_inside_opened_bracket(middle, ctx.before, ctx.rest_of_line, ctx.grammar)
                          or operand_lines_below(middle, ctx.before, ctx.rest_of_line, ctx.grammar)
                          or collapse_leading_gap(first_line_only(middle), ctx.before))
        middle = drop_comment_for_missing_operand(middle, ctx.before, ctx.grammar)
    elif ctx.shape == "multi":
        if after_opener:
            middle = indent_flat_body(middle, ctx.opener or ctx.before, ctx.indent_unit, ctx.grammar)
        middle = keep_inside_scope(middle, ctx.before, suffix, ctx.line_above, ctx.opener, ctx.grammar,
                                   ctx.in_brackets, ctx.bracket_opened_at, lambda: ctx.left_open)
        # (The body's first line placed first: its depth is the base the levels below it are redrawn from.)
        middle = indent_block_body(middle, ctx.before, opener_above, ctx.indent_unit, ctx.grammar,
                                   bool(ctx.own_mixed_indentations), ctx.text)
        if ctx.indent_seen and not prose:   # on the lines kept: one that left the scope would stop the redraw
            middle = rescale_indent_steps(middle, ctx.before, ctx.indent_unit, ctx.grammar, opener_above)
    elif ctx.indent_seen and not prose and not in_the_users_layout(middle, ctx.original):
        middle = rescale_indent_steps(middle, ctx.before, ctx.indent_unit, ctx.grammar,
                                      None if ctx.original else opener_above)
    # Rules against a fill that writes the suffix again (those the selection itself would fail left out).
    if ctx.literal_lines == 1 and "\n" not in own.rstrip("\n"):
        middle = first_line_only(middle)   # inside a one-line comment: its next line would be code (`// fix` / `later`)
    for rule in suffix_rules_for(own, suffix, ctx.before, ctx.suffix_starts_line, ctx.grammar):
        middle = rule(middle, lambda: ctx.left_open)
    if ctx.shape == "single" and not ctx.literal_lines and not open_literal(ctx.grammar, ctx.before):
        # (a string's or comment's text is prose, not code)
        middle = close_own_brackets(middle, ctx.grammar)
    middle = trim_trailing_whitespace(middle, suffix, ctx.grammar, ctx.before, own, prose)
    if ctx.shape == "multi":
        middle = drop_comment_only_body(middle, ctx.before, ctx.line_above, suffix, ctx.grammar, ctx.opener)
        middle = drop_bare_name_statement(middle, ctx.before, ctx.grammar, ctx.line_above, ctx.in_brackets)
        middle = drop_literal_only_body(middle, ctx.before, ctx.line_above, suffix, ctx.grammar, ctx.opener)
    if not middle.strip():
        return ""
    if after_opener and closes_literal_inline(middle, ctx.before, ctx.rest_of_line, ctx.grammar):
        pass   # `d = {` + `'a': 1}`: the model closed the literal on the cursor's line; kept as it wrote it
    elif after_opener and middle.lstrip(" \t").startswith("}"):
        pass   # `function f() {` + `}`: an empty body, closed where the model closed it (not at the body's depth)
    elif after_opener and "\n" not in middle and (middle[:1] == " " or ctx.before.endswith(" ")) and (
            ctx.rest_of_line.lstrip().startswith("}") and "\n" not in raw.strip()
            and (closes_block_on_line(raw, ctx.grammar) or middle.strip() and middle[-1:] == " "
                 and line_comment_start(ctx.grammar, middle) == -1)):
        # `bool {|}` + ` return ok }`: a body written on the braces' line, as short ones are (`{ 1 }`); so is one
        # padded before the editor's `}` as after the `{` (` return ok ` + `}`), but a comment, which would take
        # the editor's `}` in
        pass
    elif after_opener:
        middle = open_block_body(middle, ctx.before, ctx.rest_of_line, ctx.indent_unit, ctx.grammar)
    else:
        own_first = own.split("\n", 1)[0]
        below_starts = ctx.text.find("\n", ctx.replaced[1]) + 1   # (the line under the cursor's, when there is one)
        below_ends = ctx.text.find("\n", below_starts)
        below = (ctx.text[below_starts:below_ends if below_ends != -1 else None],) if below_starts else ()
        beside = (ctx.line_above,) if ctx.blank_lines_above == 0 else ()
        middle = reindent_first_line(middle, ctx.before, ctx.indent_unit,
                                     indentation(own_first) if own_first.strip() else "", ctx.line_above,
                                     beside + below, ctx.grammar)
        if ctx.shape == "multi" and not ctx.before.strip() and ctx.rest_of_line.strip() and (
                "\n" in middle or code_after_cursor(ctx.rest_of_line, ctx.grammar).strip()
                or not ctx.rest_of_line[0].isspace()):
            # `|});` on a blank line: the closers stay on a line of their own; so does a comment line's comment
            # (`|# TODO`), but one line written where a space parts the cursor from a comment goes before it
            middle += "\n" + ctx.before
    if ctx.shape == "multi" and not own.strip() and ctx.indent_seen and ctx.indent_own:
        middle = pull_back_too_deep(middle, ctx, suffix)
    if ctx.shape == "multi" and not own.strip() and lands_after_jump(middle, ctx):
        return ""
    if ctx.comma_before_closer and still_in_go_list(middle, ctx):
        middle = comma_before_own_line_closer(middle, "\n" if ctx.whole_lines else suffix, ctx.grammar, ctx.before)
    if own.strip():
        middle = with_selection_layout(middle, own, ctx.before)
    elif ctx.whole_lines:
        middle += "\n"
    if gap and PYTHON_DEFINITION.match(middle.lstrip(" \t")):   # (put back once the rules have read its first line)
        middle = "\n" * gap + ctx.before + middle   # (the cursor's indentation, left on its line, moves down too)
    return to_line_ending(middle, ctx.line_ending)


@lru_cache(maxsize=16)   # one answer for all the candidates of a request
def suffix_rules_for(own: str, suffix: str, before: str, suffix_starts_line: bool, grammar: str | None
                     ) -> tuple[Callable[..., str], ...]:
    """The rules against a fill that writes the suffix again, less those the selection `own` (in \\n) would fail:
    a selection that itself repeats the next line, ends as the text after it begins (`a + b` before ` + b`) or
    closes a block it did not open is the user's code, and the same text written over it is no repeat."""
    # (each takes the text and how to learn the brackets the document leaves open, which one rule asks: not kept
    # in this cache, which would then hold whole documents)
    rules = (lambda text, _=None: drop_repeated_suffix_lines(text, suffix, before, suffix_starts_line, grammar),
             lambda text, _=None: drop_suffix_overlap(text, suffix, suffix_starts_line, grammar, before),
             lambda text, left_open=nothing_known_left_open: drop_unmatched_closers(
                 text, suffix, grammar, before, suffix_starts_line, left_open),
             lambda text, _=None: drop_repeated_generic_closer(text, suffix, before, grammar))
    if not own.strip():
        return rules
    kept = []
    for rule in rules:
        if all(rule(text) == text for text in (own, own.rstrip())):
            kept.append(rule)
        elif (beyond := beyond_own_repeat(rule, own.rstrip())) is not None:
            kept.append(beyond)
    return tuple(kept)


def beyond_own_repeat(rule: Callable[..., str], own: str) -> Callable[..., str] | None:
    """A rule the selection fails by its last lines (they repeat the next line, say): the model may write that
    tail as the user did, and the rule cuts only a repeat of the suffix the model wrote before it (`x = 1` selected
    over a next line `x = 1`, written `x = 1\nx = 1`: one of them is the model's own repeat)."""
    kept = rule(own)
    # The whole run the rule cuts from the selection (`    end\n  end` before `end`: both lines; a line of dashes
    # before a `--` comment: every pair); each pass leaves less, so this ends (a selection is at most a fill long).
    while own.startswith(kept) and len(again := rule(kept)) < len(kept) and kept.startswith(again):
        kept = again
    tail = own[len(kept):]
    if not own.startswith(kept) or not tail.strip():
        return None

    def cut_before_tail(text: str, left_open: Callable[[], LeftOpen] = nothing_known_left_open) -> str:
        body = text.rstrip()
        if not body.endswith(tail):
            return text
        head = body[:len(body) - len(tail)]
        cut = rule(head, left_open)
        if cut == head:
            return text
        gap = (cut[len(cut.rstrip()):] or head[len(head.rstrip()):]) if cut.strip() else ""
        return cut.rstrip() + gap + tail + text[len(body):]
    return cut_before_tail


def with_selection_layout(middle: str, original: str, before: str) -> str:
    """The blank lines a selection starts with (on a line of its own) and the whitespace it ends with, put back
    around its replacement: cleaning trims both from the model's text, and without them `return ` rewritten came
    back as `return`, joined to the next word, and the blank lines between two functions were lost."""
    leading = re.match(r"(?:[ \t]*\n)*", original).group() if not before.strip() else ""
    if leading:   # the first line was lined up with the cursor's column: on its own line now, it goes there again
        middle = before + middle
    trailing = original[len(original.rstrip()):]
    if "\n" in trailing:   # (not the spaces the selection's last line ended with)
        trailing = trailing[trailing.index("\n"):]
    elif trailing:   # the selection's own spaces, not with the one kept between two words as well
        middle = middle.rstrip(" \t")
    return leading + middle + trailing
