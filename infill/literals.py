"""Whether the text typed before the cursor on its line leaves a string or comment open.

tree-sitter reports a string only once it is closed: while the user types `print("hello wor` (no autopairs, as in
a plain Neovim) the cursor sits in an ERROR node, and the completion would be code written into the string's
text. A small lexical scan of the cursor's line tells that case apart; spans.py trusts it only where the parse
tree has an error on that line, so a line the grammar reads fine (a regex literal holding a quote) is never
second-guessed.
"""
from __future__ import annotations

import re

# opener -> closer, longest openers first (a triple quote is not an empty string then a quote)
PYTHON_QUOTES = {'"""': '"""', "'''": "'''", '"': '"', "'": "'"}
JS_QUOTES = {'"': '"', "'": "'", "`": "`"}
STRING_DELIMITERS = {
    "python": PYTHON_QUOTES,
    "javascript": JS_QUOTES, "typescript": JS_QUOTES, "tsx": JS_QUOTES,
    "go": {'"': '"', "`": "`"},
    "rust": {'"': '"'},
    "c": {'"': '"'}, "cpp": {'"': '"'}, "java": {'"': '"'},
    "lua": {"[[": "]]", '"': '"', "'": "'"},
}
LINE_COMMENT = {"python": "#", "lua": "--"}   # the others: //
BLOCK_COMMENT_LANGUAGES = {"javascript", "typescript", "tsx", "go", "rust", "c", "cpp", "java"}
# A character literal is skipped whole; a lone quote in these languages is a lifetime or a char being typed.
CHAR_LITERAL = re.compile(r"'(?:\\.[^'\\]*|[^'\\])'")
CHAR_LITERAL_LANGUAGES = {"go", "rust", "c", "cpp", "java"}
# JavaScript's lexer rule: after one of these (or at the line's start) a `/` starts a regex literal, not a division.
REGEX_LANGUAGES = {"javascript", "typescript", "tsx"}
REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^")
REGEX_LITERAL = re.compile(r"/(?:\\.|\[(?:\\.|[^\]\\])*\]|[^/\\\[])+/")
PYTHON_PREFIX = re.compile(r"[rRbBuUfFtT]{1,2}$")

OPEN, HOLE = "open", "hole"   # how a string scan can end before its closing quote


def open_literal(grammar: str | None, line_before_cursor: str) -> bool:
    """True when `line_before_cursor` (the cursor's line up to the cursor) ends inside a string's text or a
    comment. A code hole of an f-string or a template literal (`{x`, `${x`) is code, so it is not inside."""
    quotes = STRING_DELIMITERS.get(grammar or "")
    if quotes is None:
        return False
    text, i = line_before_cursor, 0
    line_comment = LINE_COMMENT.get(grammar, "//")
    while i < len(text):
        if text.startswith(line_comment, i):
            return True
        if grammar in BLOCK_COMMENT_LANGUAGES and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                return True
            i = end + 2
            continue
        if grammar in REGEX_LANGUAGES and text[i] == "/" and starts_regex(text[:i]):
            literal = REGEX_LITERAL.match(text, i)
            i = literal.end() if literal else i + 1
            continue
        if grammar in CHAR_LITERAL_LANGUAGES and text[i] == "'":
            literal = CHAR_LITERAL.match(text, i)
            i = literal.end() if literal else i + 1
            continue
        opener = next((q for q in quotes if text.startswith(q, i)), None)
        if opener is None:
            i += 1
            continue
        after = scan_string(text, i + len(opener), quotes[opener], hole_opener(grammar, opener, text[:i]))
        if after == OPEN:
            return True
        if after == HOLE:
            return False
        i = after
    return False


def starts_regex(before_slash: str) -> bool:
    code = before_slash.rstrip()
    return not code or code[-1] in REGEX_AFTER or code.endswith(("return", "typeof"))


def hole_opener(grammar: str, opener: str, before_quote: str) -> str | None:
    """What starts a code hole in this string, if it has any: `{` in a Python f-string (or t-string), `${` in a
    JavaScript template literal."""
    if grammar == "python":
        prefix = PYTHON_PREFIX.search(before_quote)
        if prefix and set(prefix.group().lower()) & {"f", "t"}:
            preceding = before_quote[:prefix.start()]
            if not preceding or not (preceding[-1].isalnum() or preceding[-1] == "_"):
                return "{"
        return None
    if opener == "`" and grammar in ("javascript", "typescript", "tsx"):
        return "${"
    return None


def scan_string(text: str, i: int, closer: str, hole: str | None) -> int | str:
    """From just after a string's opening quote: the index after its closing quote, OPEN if the text ends inside
    it, HOLE if it ends inside an unclosed code hole."""
    while i < len(text):
        if text[i] == "\\" and closer != "]]":
            i += 2
            continue
        if text.startswith(closer, i):
            return i + len(closer)
        if hole == "{" and text.startswith("{{", i):   # an escaped brace in an f-string
            i += 2
            continue
        if hole is not None and text.startswith(hole, i):
            end = hole_end(text, i + len(hole))
            if end is None:
                return HOLE
            i = end
            continue
        i += 1
    return OPEN


def hole_end(text: str, i: int) -> int | None:
    """The index after the `}` that closes a code hole opened just before `i`, or None if the text ends first.
    Quotes inside the hole are not followed: a nested string holding a brace is rare enough."""
    depth = 1
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None
