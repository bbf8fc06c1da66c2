"""How much to write: the shape of an inline completion (none / single line / several lines) and the length
candidates (in tokens) the engine runs as one batch."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SINGLE_LENGTHS = [8, 16, 32]
MULTI_LENGTHS = [32, 64]
CLOSERS = set(")]}>\"'`;,")
IDENTIFIER_CHAR = re.compile(r"\w")
# A ':' opens a block only after these words (Python, and `case x:` / `default:` labels elsewhere); after anything
# else it is a dict entry, a slice or a type annotation, and the line goes on.
COLON_BLOCK_WORDS = {"def", "class", "if", "elif", "else", "for", "while", "with", "try", "except", "finally",
                     "match", "case", "async", "default"}
# How a comment starts, per grammar: `#` is a private field in JavaScript and a directive in C, `--` a decrement.
COMMENT_MARKERS = {"python": ("#",), "lua": ("--",)}
C_LIKE_COMMENTS = ("//", "/*")
ANY_COMMENT = ("#", "//", "--", "/*")   # plain text: whichever it uses


@lru_cache(maxsize=None)
def comment_start(grammar: str | None, continuation: bool = False) -> re.Pattern:
    """Matches a line (leading whitespace allowed) that starts with a comment in `grammar`'s language;
    `continuation`: also the ` * ...` lines inside a C-style block comment."""
    markers = COMMENT_MARKERS.get(grammar, C_LIKE_COMMENTS) if grammar else ANY_COMMENT
    if continuation and "/*" in markers:
        markers = (*markers, "*")
    return re.compile(r"\s*(?:" + "|".join(map(re.escape, markers)) + ")")


@dataclass
class Decision:
    shape: str    # "none" | "single" | "multi" (inline), "block" (fill / rewrite a selection)
    reason: str


def line_parts(text: str, offset: int) -> tuple[str, str]:
    """(text of the cursor's line before offset, text of it after offset)."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start:offset], text[offset:] if end == -1 else text[offset:end]


def previous_nonblank_line(text: str, offset: int) -> str:
    """The nearest non-blank line above the cursor's line ('' when there is none)."""
    line_start = text.rfind("\n", 0, offset) + 1
    for line in reversed(text[:line_start].split("\n")):
        if line.strip():
            return line
    return ""


def opens_block(code_before_cursor: str) -> bool:
    """Does this line end with a block opener (`{`, a Python-style `:`, Lua/Ruby `do` / `then`)?"""
    code = code_before_cursor.rstrip()
    if code.endswith("{") or re.search(r"(?<![.\w])(do|then)$", code):   # not a method: `fetch(url).then`
        return True
    if code.endswith(":") and not code.endswith("::") and brackets_balanced(code):   # not `for (String s :`
        first_word = re.match(r"\s*(\w*)", code).group(1)
        return first_word in COLON_BLOCK_WORDS
    return False


def brackets_balanced(code: str) -> bool:
    """No bracket left open on this line (strings are not told apart: a line is short, and a bracket inside a
    string before a block's `:` is rare)."""
    return sum(code.count(c) for c in "([{") <= sum(code.count(c) for c in ")]}")


def opens_expression_brace(code_before_cursor: str) -> bool:
    """A JSX attribute's value, `onClick={` or `style={{` (a `{` right after `=`), or a template literal's `${`: an
    expression finished on the same line, not a block. Object literals (`g({`, `= {`) stay multi-line: they are as often written over several
    lines."""
    code = code_before_cursor.rstrip()
    if code.endswith("${"):   # a template literal's substitution
        return True
    if code.endswith("={{"):
        code = code[:-1]
    return code.endswith("={") and not code.endswith(("=={", "!={", "<={", ">={", "=>{"))


def only_closers(rest: str) -> bool:
    return set(rest.strip()) <= CLOSERS


def decide_shape(text: str, offset: int, in_string_or_comment: bool, invoked: bool = False,
                 grammar: str | None = None) -> Decision:
    """The inline decision at `offset`; `invoked`: the user asked (an explicit request), not just typed;
    `grammar`: the document's (None for plain text)."""
    before, after = line_parts(text, offset)
    if in_string_or_comment:
        if invoked:   # prose or a string's text: the rest of its line (the parse check keeps it inside)
            return Decision("single", "asked inside a string or comment: finish its line")
        return Decision("none", "the cursor is inside a string or comment (ask explicitly to complete there)")
    if before and after and IDENTIFIER_CHAR.match(before[-1]) and IDENTIFIER_CHAR.match(after[0]):
        return Decision("none", "the cursor is inside a word")
    if after.strip() and not only_closers(after):
        return Decision("single", "code follows the cursor on this line")
    if not before.strip():
        above = previous_nonblank_line(text, offset)
        if comment_start(grammar, continuation=True).match(above):
            return Decision("multi", "a comment line above says what to write")
        if opens_block(above):
            return Decision("multi", "empty body after a block opener")
        return Decision("multi", "blank line in a block")
    if opens_block(before) and not opens_expression_brace(before):
        return Decision("multi", "after a block opener")
    return Decision("single", "finish the current line")


def plan_lengths(shape: str, max_new_tokens: int, selection: str = "") -> list[int]:
    """Length candidates in tokens, each capped by max_new_tokens. A fill is planned around the size of the
    selection it replaces (about 3.5 characters per token in code)."""
    if shape == "single":
        wanted = SINGLE_LENGTHS
    elif shape == "block":
        guess = max(8, round(len(selection) / 3.5))
        wanted = [max(8, guess // 2), guess, guess * 2]
    else:
        wanted = MULTI_LENGTHS
    return sorted({max(1, min(n, max_new_tokens)) for n in wanted})
