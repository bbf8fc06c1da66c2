"""Code written at the end of a file inside blocks the user has not closed yet (a function being written at the
bottom of the file): how many block closers it takes to parse, so that a fill there is judged as it reads once
the user closes them. Some grammars (Rust, Java, Lua) recover from the unclosed block with one ERROR over all of
it, which a right fill only reshapes; its errors say nothing about the fill."""
from __future__ import annotations

import functools
import re

from .clean import OPENERS
from .languages import parse
from .literals import (BLOCK_COMMENTS, JSX_LANGUAGES, JSX_WHOLE_TAG, RAW_LITERALS, code_outside_literals,
                       jsx_text_blanked, line_comment_start, starts_regex)
from .silent_faults import faults_near
from .style import line_end_at, line_start_at

# Where the open brackets cannot be told, blocks are closed with whole lines of these (`}` in the rest). C and C++
# close with `};`, which ends a struct or class as well (the `;` after a function's or a namespace's `}` is an empty
# declaration, after a statement's an empty statement).
BLOCK_CLOSER = {"lua": "end", "c": "};", "cpp": "};"}
MOST_CLOSERS = 4                # blocks left open at once: a method in a class in a namespace, and one more
MOST_BRACKETS = 12              # brackets left open at once, counted (callbacks in calls in callbacks...)
LARGEST_DOCUMENT = 100_000      # characters from the top-level definition on; each count tried parses them
# A last line that is an annotation or a decorator alone (`@Override`, `@Input()`): a member is put under it.
ANNOTATION_LINE = re.compile(r"[ \t]*@[\w.]+(?:[ \t]*\([^\n]*\))?[ \t]*")
MEMBER_AFTER_ANNOTATION = {"java": "void member() {}", **{grammar: "member() {}"
                                                           for grammar in ("javascript", "typescript", "tsx")}}
# A value standing in for the lines of a fill that the code above wants filled (`return (` at the end of the file).
PLACEHOLDER = {grammar: "0" for grammar in (
    "javascript", "typescript", "tsx", "rust", "go", "java", "c", "cpp", "lua")}
# Column-0 lines that go on or end a definition: closers, block comments, continued expressions, Lua's keywords.
TOP_LEVEL_NOT_HERE = re.compile(r"[})\]*.&|+\-:,?]|(?:end|else|elseif|until)\b")


def unclosed_at_end(grammar: str, document: str, spans: frozenset) -> bool:
    """Whether one of the document's errors (ErrorCounts.spans) reaches its last code byte: a block open there.
    Comments after that code do not count: the error of a block left open ends before them (`a();` then `// b`)."""
    last_code_byte = len(document[:code_end(grammar, document)].encode("utf-8"))
    return any(end >= last_code_byte for _, _, _, end in spans)


@functools.lru_cache(maxsize=8)   # the same document for every candidate of a request
def code_end(grammar: str, document: str) -> int:
    """Where the document's last code ends: trailing whitespace, line comments and block comments not counted."""
    block_open, block_close = BLOCK_COMMENTS.get(grammar, ("/*", "*/"))
    long_comment, long_closer = RAW_LITERALS["lua"] if grammar == "lua" else (None, None)   # `--[[ ... ]]`

    def before_space(at: int) -> int:
        while at and document[at - 1].isspace():
            at -= 1
        return at

    end = before_space(len(document))
    while end:
        if block_close and document.endswith(block_close, 0, end):
            opened = document.rfind(block_open, 0, end - len(block_close))
            if opened == -1:
                return end
            end = before_space(opened)
            continue
        if long_comment and document[end - 1] == "]":
            found = long_comment.match(document, max(0, document.rfind("--[", 0, end)))
            closer = long_closer(found.group(1)) if found else None
            if closer and document.find(closer, found.end(), end) == end - len(closer):
                end = before_space(found.start())
                continue
        line_start = document.rfind("\n", 0, end) + 1
        marker = line_comment_start(grammar, document[line_start:end])
        if marker == -1:
            return end
        end = before_space(line_start + marker)
    return end


def closers_to_parse(grammar: str, document: str, low: int = 0, high: int = 0,
                     counts: range = range(MOST_BRACKETS + 1), head: str = "") -> int | None:
    """How many brackets (of `counts`) the document leaves open, when closing them on a line after its code makes it
    parse with no error (nor a fault the grammar reads silently in bytes [low, high]); None when that does not
    parse. Lua's blocks, which close with words, are counted as the `end` lines that make it parse (at most one
    count can: one more is one too many). A closer the grammar reads as something else (Lua takes an `end` where an
    expression is wanted for a name) fails."""
    text = document.rstrip()
    if grammar in MEMBER_AFTER_ANNOTATION and ANNOTATION_LINE.fullmatch(text, text.rfind("\n") + 1):
        text += "\n" + MEMBER_AFTER_ANNOTATION[grammar]   # an annotation parses only over what it annotates
    code = text.encode("utf-8")
    # (In JSX, also as brackets alone: a tag the scan misreads, a generic arrow's `<T>`, loses the JSX stack.)
    stacks = [open_brackets(grammar, text, head)]
    if grammar in JSX_LANGUAGES and (plain := open_brackets(grammar, text, head, jsx=False)) != stacks[0]:
        stacks.append(plain)
    for stack in stacks:
        if stack is not None and len(stack) not in counts:
            continue   # (a count out of range is no answer: 8,000 `[` on a line are not parsed 8,000 times over)
        count = closed_on_one_line(grammar, code, stack, low, high)
        if count is not None:
            return count if count in counts else None
    if any(stack is not None for stack in stacks):
        return None
    # Where the brackets cannot be told (Lua's words): that many `}` lines (`end`). Lua's brackets are told: those
    # left open close on a line of their own, before the `end` lines (a table in a function) or after them (a
    # callback in a call: `g(function()`), and count as closers too.
    closer = BLOCK_CLOSER.get(grammar, "}")
    brackets = (brackets_left_open(grammar, text, [], jsx=False) or []) if (
        grammar == "lua" and len(text) <= LARGEST_DOCUMENT) else []
    bracket_line = "".join(OPENERS[opener] for opener in reversed(brackets))
    for count in (count for count in range(MOST_CLOSERS + 1) if count + len(brackets) in counts):
        for brackets_first in (True, False) if brackets and count else (True,):
            lines = [closer] * count
            lines.insert(0 if brackets_first else count, bracket_line)
            data, tokens = code, []   # tokens: where each closer is in `data`, and what it is
            for line in filter(None, lines):
                data += b"\n"
                tokens += [(len(data), closer.rstrip(";"))] if line == closer else [
                    (len(data) + at, char) for at, char in enumerate(line)]
                data += line.encode("utf-8")
            data += b"\n"
            root = parse(grammar, data).root_node
            if root.has_error or faults_near(grammar, root, data, low, high):
                continue
            if all(root.descendant_for_byte_range(at, at + len(token)).type == token for at, token in tokens):
                return count + len(brackets)
    return None


def closed_on_one_line(grammar: str, code: bytes, stack: list[str] | None, low: int, high: int) -> int | None:
    """How many brackets `stack` holds, when closing them on a line after `code` makes it parse with no error nor a
    fault the grammar reads silently in bytes [low, high); None when it does not (or the stack is unknown)."""
    # The brackets left open, closed in order on one line (a Go list's `}` may end no line: `}}`); then with a `;`
    # after each `)` and `]`, which may end a statement (Rust's `let v = vec![` wants `];`); then after every one
    # but the outermost (a value's `{`: Rust's `let s = S {`, Java's `int[] a = {`).
    # A JSX element left open closes with its closing tag (`</div>`).
    for semicolons in ("", ")]", ")]}") if stack else ("",) if stack is not None else ():
        closers, brackets_at = b"", []   # brackets_at: where each bracket closer is in `data`
        for depth, opener in reversed(list(enumerate(stack))):
            if opener in OPENERS:
                brackets_at.append(len(code) + 1 + len(closers))
                closers += OPENERS[opener].encode("utf-8")
                if (grammar in ("c", "cpp") and opener == "{") or (OPENERS[opener] in semicolons and depth):
                    closers += b";"
            else:
                closers += f"</{opener[1:-1]}>".encode("utf-8")
        data = code + b"\n" + closers + b"\n"
        root = parse(grammar, data).root_node
        if not root.has_error and not faults_near(grammar, root, data, low, high) and all(
                root.descendant_for_byte_range(at, at + 1).type == chr(data[at]) for at in brackets_at):
            return len(stack)
    return None


def open_brackets(grammar: str, code: str, head: str = "", jsx: bool = True) -> list[str] | None:
    """The brackets `code` leaves open, outermost first (those in its strings and comments left out); None when that
    cannot be told (Lua's blocks close with words, or the code ends inside a literal or closes more than it opens).
    `head`, a start of `code` the same for every candidate of a request, is scanned once."""
    if grammar == "lua" or len(code) > LARGEST_DOCUMENT:
        return None
    if head and code.startswith(head):
        before = head_brackets(grammar, head, jsx)
        if before is not None and not (before and before[-1].startswith("<")):   # (JSX text is told from its tag)
            return brackets_left_open(grammar, code[len(head):], list(before), jsx)
    return brackets_left_open(grammar, code, [], jsx)


@functools.lru_cache(maxsize=8)
def head_brackets(grammar: str, head: str, jsx: bool = True) -> tuple[str, ...] | None:
    stack = brackets_left_open(grammar, head, [], jsx)
    return None if stack is None else tuple(stack)


def brackets_left_open(grammar: str, code: str, stack: list[str], jsx: bool = True) -> list[str] | None:
    """`stack` with the brackets of `code` (which starts outside any literal) opened and closed on it; in JSX (unless
    `jsx` is false) also its elements (`<div>` on the stack)."""
    jsx = jsx and grammar in JSX_LANGUAGES
    scanned = code_outside_literals(grammar, jsx_text_blanked(code) if jsx else code)
    if scanned is None or scanned[1] is not None:
        return None
    code = scanned[0]
    i = 0
    while i < len(code):
        char = code[i]
        tag = JSX_WHOLE_TAG.match(code, i) if jsx and char == "<" else None
        # (a tag where an expression starts, or among an element's children; `a < b` is no tag, nor a generic
        # arrow's `<T extends X>(`)
        in_element = bool(stack) and stack[-1].startswith("<")
        if tag and (tag.group(1) or in_element or (starts_regex(code, i) and not code.startswith("(", tag.end()))):
            name = re.match(r"</?([\w.:-]*)", tag.group(0)).group(1)
            if tag.group(1):
                if not stack or stack.pop() != f"<{name}>":
                    return None
            elif not tag.group(2):
                stack.append(f"<{name}>")
            i = tag.end()
            continue
        if char in "([{":
            stack.append(char)
        elif char in ")]}":
            if not stack or OPENERS.get(stack.pop()) != char:
                return None
        i += 1
    return stack


@functools.lru_cache(maxsize=8)   # the same for every candidate of a request
def closers_around(grammar: str, document: str, start: int, end: int) -> int | None:
    """What the code around the fill at document[start:end] needs closed: closers_to_parse for the document with
    the fill's lines taken out, whatever the unfinished line at the cursor holds; where the lines above want
    something there (`return (`, `() =>`), a placeholder value stands in for it. The most of that and of the count
    with the cursor's line kept and the fill left empty: brackets the user opened on the line before the cursor
    (`return g(a, ` at the end of the file) are the user's to close, not the fill's. (No placeholder there: `if (`
    would take `0);` and then let a fill open a block alone, `x) {`.)"""
    above, below = document[:line_start_at(document, start)], document[line_end_at(document, end):]
    placeholder = PLACEHOLDER.get(grammar)
    count = closers_to_parse(grammar, above + below)
    if count is None and placeholder:
        count = closers_to_parse(grammar, above + placeholder + below)
    on_the_line = closers_to_parse(grammar, document[:start] + document[end:])
    return max((found for found in (count, on_the_line) if found is not None), default=None)


def parses_once_closed(grammar: str, document: str, start: int, end: int, text: str) -> bool | None:
    """Whether putting `text` in place of document[start:end] leaves code that parses once the blocks open at the
    end of the file are closed, needing no more closers than the code around it did (a fill that opens a block of
    its own and leaves it open, `if x {`, needs one more). None when that cannot be told: the document is too long,
    or the code around the fill's lines does not parse however many blocks are closed, or leaves none open (the
    errors are then those of the fill's lines, which the usual check judges)."""
    top = top_level_start(document, start)
    if len(document) - top > LARGEST_DOCUMENT:
        return None
    around = closers_around(grammar, document[top:], start - top, end - top)
    if not around:
        return None
    low = len(document[top:start].encode("utf-8"))
    closers = closers_to_parse(grammar, document[top:start] + text + document[end:], low,
                               low + len(text.encode("utf-8")), range(around, -1, -1),   # (most often `around`)
                               head=document[top:start])
    return closers is not None


def top_level_start(document: str, offset: int) -> int:
    """Where the last line at or above `offset`'s that starts code at column 0 begins (0 when none): the start of
    the top-level definition being written. The code above it parsed as closed; only the rest need be parsed again.
    (A column-0 line inside the definition, a preprocessor line or a string's, makes a tail that does not parse:
    nothing is told then.)"""
    line = line_start_at(document, offset)
    while line > 0:
        if document[line:line + 1].strip() and not TOP_LEVEL_NOT_HERE.match(document, line):
            return line
        line = line_start_at(document, line - 1)
    return 0
