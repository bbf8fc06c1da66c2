"""Whether the code typed before the cursor leaves a string or comment open.

tree-sitter reports a string only once it is closed: while the user types `print("hello wor` (no autopairs, as in
a plain Neovim) the cursor sits in an ERROR node, and the completion would be code written into the string's
text. A small lexical scan tells that case apart. spans.py feeds it the text from a point where the code is known
to be outside any literal, with the literals tree-sitter did parse whole blanked out (a closed string, a regex, a
char literal, JSX text), and trusts it only where the parse has an error there: lines the grammar reads fine are
never second-guessed.
"""
from __future__ import annotations

import re

from .style import LINE_BREAK

# opener -> closer, longest openers first (a triple quote is not an empty string then a quote)
PYTHON_QUOTES = {'"""': '"""', "'''": "'''", '"': '"', "'": "'"}
JS_QUOTES = {'"': '"', "'": "'", "`": "`"}
STRING_DELIMITERS = {
    "python": PYTHON_QUOTES,
    "javascript": JS_QUOTES, "typescript": JS_QUOTES, "tsx": JS_QUOTES,
    "go": {'"': '"', "`": "`"},
    "rust": {'"': '"'},   # and raw strings: RAW_LITERALS
    "c": {'"': '"'}, "cpp": {'"': '"'},
    "java": {'"""': '"""', '"': '"'},   # a text block, then a plain string
    "lua": {'"': '"', "'": "'"},   # and long brackets: RAW_LITERALS
}
MULTI_LINE_CLOSERS = {'"""', "'''", "`"}   # strings that may span lines; the others end at a line break
LINE_COMMENT = {"python": "#", "lua": "--"}      # the others: //
BLOCK_COMMENTS = {"python": (None, None), "lua": (None, None)}   # the others: /* */
# Literals with no escapes, closed only by the delimiter their opener names: the opener's pattern, and how its
# group makes the closer. Lua's long strings and comments (`[[ ]]`, `[==[ ]==]`, `--[[ ]]`); C++ raw strings
# (`R"(...)"`, `u8R"sql(...)sql"`); Rust raw strings (`r"..."`, `br#"..."#`).
RAW_LITERALS = {
    "lua": (re.compile(r"(?:--)?\[(=*)\["), lambda level: f"]{level}]"),
    "cpp": (re.compile(r'(?<!\w)(?:u8|[uUL])?R"([^()\\\s]{0,16})\('), lambda delimiter: ")" + delimiter + '"'),
    "rust": (re.compile(r'(?<!\w)b?r(#*)"'), lambda hashes: f'"{hashes}'),
}
# A character literal is skipped whole; a lone quote in these languages is a lifetime or a char being typed.
CHAR_LITERAL = re.compile(r"'(?:\\.[^'\\\r\n]*|[^'\\\r\n])'")
# C's line splicing: a backslash at a line's end joins the next line to it, a `//` comment's included.
SPLICED_LINES = {"c", "cpp"}
CHAR_LITERAL_LANGUAGES = {"go", "rust", "c", "cpp", "java"}
# JavaScript's lexer rule: after one of these (or at the start) a `/` starts a regex literal, not a division.
# Not after `<` or `>`: in JSX those end tags (`</a>`).
REGEX_LANGUAGES = {"javascript", "typescript", "tsx"}
REGEX_AFTER = set("(,=:[!&|?{};+-*%~^")
# Keywords an expression follows, so a `/` after them starts a regex (not after `.`: `x.in / 2` is a property).
KEYWORD_BEFORE_REGEX = re.compile(
    r"(?<![\w$.])(?:return|typeof|instanceof|yield|await|case|in|of|void|delete|throw|else|do|new)$")
# Possessive: a `[` left open fails at once instead of backtracking over the rest of the line.
REGEX_LITERAL = re.compile(r"/(?:\\.|\[(?:\\.|[^\]\\\r\n])*+\]|[^/\\\[\r\n])++/")
# A JSX tag: a closing one anywhere, an opening one (or a fragment) where an expression starts; `Array<T>` and
# `a<b` are not tags (a name before the `<`). Text between tags may hold `//`, which is text there.
JSX_LANGUAGES = {"javascript", "tsx"}
JSX_TAG = re.compile(r"</|(?<![\w$.\])])<[A-Za-z>]")
# One whole JSX tag or fragment: its name, then attributes (a quoted value, a `{...}` holding at most one level of
# braces: `style={{ color: c }}`), then `/>` when it closes itself.
JSX_WHOLE_TAG = re.compile(
    r"<(/?)(?:[A-Za-z][\w.:-]*(?:\s+(?:[^<>{}\"'/]|\"[^\"]*\"|'[^']*'|\{(?:[^{}]|\{[^{}]*\})*\})*)?)?(/?)>")
PYTHON_PREFIX = re.compile(r"[rRbBuUfFtT]{1,2}$")
LONGEST_SCAN = 8000   # characters; beyond that (minified code) the question is not worth the time

OPEN, HOLE = "open", "hole"   # how a string scan can end before its closing quote


def literal_ending(grammar: str | None, code: str) -> str | None:
    """How `code` (text that starts outside any literal and ends at the cursor) ends: OPEN inside a string's text
    or a comment, HOLE in a code hole of an f-string or a template literal (`{x`, `${x`), None in code (or text
    too long to scan, or a grammar whose literals are not known)."""
    if len(code) > LONGEST_SCAN:
        return None
    scanned = code_outside_literals(grammar, code)
    return scanned[1] if scanned is not None else None


def open_literal(grammar: str | None, code: str) -> bool:
    """True when `code` ends inside a string's text or a comment (literal_ending); a code hole is code."""
    return literal_ending(grammar, code) == OPEN


def code_outside_literals(grammar: str | None, code: str) -> tuple[str, str | None] | None:
    """`code` (starting outside any literal) with the text of its strings, comments and character literals blanked
    out (same length, quotes included; so a line break is kept only where it is not inside one), and how it ends:
    OPEN inside one of them, HOLE in a string's code hole (the rest of the text is not scanned), None outside. None
    for a grammar whose literals are not known."""
    quotes = STRING_DELIMITERS.get(grammar or "")
    if quotes is None:
        return None
    text, i = code, 0
    kept: list[str] = []

    def blank_to(end: int) -> int:
        kept.append(" " * (end - i))
        return end

    line_comment = LINE_COMMENT.get(grammar, "//")
    block_open, block_close = BLOCK_COMMENTS.get(grammar, ("/*", "*/"))
    raw_opener, raw_closer = RAW_LITERALS.get(grammar, (None, None))
    while i < len(text):
        raw = raw_opener.match(text, i) if raw_opener else None
        if raw:
            closer = raw_closer(raw.group(1))
            end = text.find(closer, raw.end())
            if end == -1:
                return "".join(kept), OPEN
            i = blank_to(end + len(closer))
            continue
        if block_open and text.startswith(block_open, i):
            end = text.find(block_close, i + len(block_open))
            if end == -1:
                return "".join(kept), OPEN
            i = blank_to(end + len(block_close))
            continue
        if text.startswith(line_comment, i):
            end = LINE_BREAK.search(text, i)
            while end is not None and grammar in SPLICED_LINES and text.endswith("\\", 0, end.start()):
                end = LINE_BREAK.search(text, end.end())   # `// note \` goes on to the next line in C
            if end is None:
                return "".join(kept), OPEN
            i = blank_to(end.start())   # its line break is the code's: kept, like any outside a literal
            continue
        if grammar in REGEX_LANGUAGES and text[i] == "/" and starts_regex(text, i):
            literal = REGEX_LITERAL.match(text, i)
            i = blank_to(literal.end() if literal else i + 1)
            continue
        if grammar in CHAR_LITERAL_LANGUAGES and text[i] == "'":
            literal = CHAR_LITERAL.match(text, i)
            i = blank_to(literal.end() if literal else i + 1)   # a lone quote: a lifetime or a char being typed
            continue
        opener = next((q for q in quotes if text.startswith(q, i)), None)
        if opener is None:
            kept.append(text[i])
            i += 1
            continue
        closer = quotes[opener]
        escapes = not (grammar == "go" and closer == "`")   # Go's backtick strings are raw
        after = scan_string(text, i + len(opener), closer, hole_opener(grammar, opener, text[max(0, i - 3):i]),
                            escapes)
        if after in (OPEN, HOLE):
            return "".join(kept), after
        i = blank_to(after)
    return "".join(kept), None


def line_comment_start(grammar: str | None, line: str, before: str = "") -> int:
    """Where the line comment ending `line` begins (its marker's index in `line`), or -1 when it has none: the first
    marker that is not inside a string or a block comment. `before`: the text ahead of `line` on its line, from a
    point outside any literal. No comment in plain text (no grammar), nor on a line with a JSX tag."""
    if grammar is None or grammar in JSX_LANGUAGES and JSX_TAG.search(before + line):
        return -1
    marker = LINE_COMMENT.get(grammar, "//")
    at = line.find(marker)
    # (a `//` right after a backslash is a regex's escaped slash, `/^https?:\/\//`: regexes are not tracked here)
    while at != -1 and (open_literal(grammar, before + line[:at]) or marker == "//" and line[at - 1:at] == "\\"):
        at = line.find(marker, at + 1)
    return at


def starts_regex(text: str, slash: int) -> bool:
    """Whether the `/` at `slash` starts a regex literal: what precedes it on its line is nothing, an operator, an
    opening bracket, an arrow (`s => /x/.test(s)`) or a keyword an expression follows (`return`, `case`...)."""
    j = slash - 1
    while j >= 0 and text[j] in " \t":
        j -= 1
    if j < 0 or text[j] in "\r\n":
        return True
    return text[j] in REGEX_AFTER or text[max(0, j - 1):j + 1] == "=>" \
        or KEYWORD_BEFORE_REGEX.search(text, max(0, j - 11), j + 1) is not None


def jsx_text_blanked(code: str) -> str:
    """`code` with the text between its JSX tags blanked (same length, line breaks kept): `Don't` there is no
    quote and `http://x` no comment. A tag counts where an expression starts (see starts_regex: `"<p>"` in a
    string is none); inside an element, `{...}` is code again, and may hold elements of its own."""
    kept = list(code)
    contexts: list[str] = []   # innermost last: "text" inside an element, "code" inside `{...}` in one
    i = 0
    while i < len(code):
        char, inside_text = code[i], bool(contexts) and contexts[-1] == "text"
        tag = JSX_WHOLE_TAG.match(code, i) if char == "<" else None
        # (where an expression starts, `<T extends X>(` is a generic arrow's type parameters, no element)
        if tag and (inside_text or tag.group(1) or (starts_regex(code, i) and not code.startswith("(", tag.end()))):
            if tag.group(1):                       # a closing tag ends the element it is in
                while contexts and contexts.pop() != "text":
                    pass
            elif not tag.group(2):                 # an opening tag (not self-closing) starts one
                contexts.append("text")
            i = tag.end()
            continue
        if inside_text:
            if char == "{":
                contexts.append("code")
            elif char not in "\r\n":
                kept[i] = " "
        elif contexts and char in "{}":
            if char == "{":
                contexts.append("brace")
            else:
                contexts.pop()                     # a brace of the code, or the `}` ending it
        i += 1
    return "".join(kept)


def hole_opener(grammar: str, opener: str, before_quote: str) -> str | None:
    """What starts a code hole in this string, if it has any: `{` in a Python f-string (or t-string), `${` in a
    JavaScript template literal. `before_quote`: the few characters before the opening quote."""
    if grammar == "python":
        prefix = PYTHON_PREFIX.search(before_quote)
        if prefix and set(prefix.group().lower()) & {"f", "t"}:
            preceding = before_quote[:prefix.start()]
            if not preceding or not (preceding[-1].isalnum() or preceding[-1] == "_"):
                return "{"
        return None
    if opener == "`" and grammar in REGEX_LANGUAGES:
        return "${"
    return None


def scan_string(text: str, i: int, closer: str, hole: str | None, escapes: bool = True) -> int | str:
    """From just after a string's opening quote: the index after its closing quote (or after the line break that
    ends a one-line string left open), OPEN if the text ends inside it, HOLE if it ends inside an open code hole."""
    multi_line = closer in MULTI_LINE_CLOSERS
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 3 if text.startswith("\r\n", i + 1) else 2   # a line continued with CRLF: one break
            continue
        if text.startswith(closer, i):
            return i + len(closer)
        if text[i] in "\r\n" and not multi_line:
            return i   # an unterminated one-line string: the parse has its error there; its line break is code
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
