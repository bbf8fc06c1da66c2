"""Python's block structure and syntax, which tree-sitter's error recovery does not fully check.

tree-sitter-python parses `while b:` followed by a dedented line, an indented line under a plain statement, and a
dedent to a column no outer block uses without any ERROR node; Python rejects all three (IndentationError). On
HumanEval single-line fills of the embedded model, 85 of the 198 fills that passed tree-sitter's check (43%) did
not compile, 83 of them for this reason (bench/RESULTS.md). Python's own tokenizer sees the structure: a block
opener ends its logical line with `:` and must be followed by an INDENT; an INDENT anywhere else is unexpected; a
dedent that matches no open level is an error. Where the structure is sound, Python's compiler has the last word.
Counting the faults before and after a fill, in the top-level statements around it, tells whether it added one.
"""
from __future__ import annotations

import functools
import io
import re
import tokenize

TOP_LEVEL_STATEMENT = re.compile(r"^[^\s#)\]}]", re.MULTILINE)   # a line starting in column 0 with code
SKIPPED = (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING)


def block_faults(source: str) -> int | None:
    """Missing, unexpected and unmatched indentation in `source`; None when it does not tokenize at all (an
    unclosed bracket or string: a line still being typed), so nothing can be said."""
    faults = 0
    wants_block = False   # the last logical line ended with ':'
    last = None           # the last token that carries code
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in SKIPPED:
                continue
            if token.type == tokenize.NEWLINE:
                wants_block = last is not None and last.type == tokenize.OP and last.string == ":"
            elif token.type == tokenize.INDENT:
                faults += not wants_block          # "unexpected indent"
                wants_block = False
            elif wants_block:
                faults += 1                        # "expected an indented block" (a DEDENT, code or the end)
                wants_block = False
            if token.type not in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                last = token
    except IndentationError:
        return faults + 1                          # "unindent does not match any outer indentation level"
    except (tokenize.TokenError, SyntaxError):
        return None
    return faults


def compiles(source: str) -> bool:
    """Python's own parser and compiler (nothing runs): what a test of the block structure leaves, such as `2s` or
    an attribute with no name (`x = self.`), which tree-sitter's recovery can also let through."""
    try:
        compile(source, "<fill>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


@functools.lru_cache(maxsize=16)   # the window before the fill is the same for every candidate
def python_faults(source: str) -> int | None:
    """Block faults, or 1 when the structure is sound but Python still rejects the code; None when unknown."""
    faults = block_faults(source)
    if faults == 0 and not compiles(source):
        return 1
    return faults


def statement_window(text: str, start: int, end: int) -> tuple[int, int]:
    """[a, b): from the top-level statement holding `start` to the next one after `end`. Indentation starts over
    at a top-level line, so text outside the window cannot change the faults inside it."""
    a = 0
    for match in TOP_LEVEL_STATEMENT.finditer(text, 0, start + 1):
        a = match.start()
    following = TOP_LEVEL_STATEMENT.search(text, end + 1)
    return a, following.start() if following else len(text)


def fill_block_faults(document: str, start: int, end: int, text: str) -> tuple[int, int] | None:
    """(python_faults before, after) putting `text` in place of document[start:end], in the statements around it;
    None when either does not tokenize."""
    a, b = statement_window(document, start, end)
    before = python_faults(document[a:b])
    after = python_faults(document[a:start] + text + document[end:b])
    return None if before is None or after is None else (before, after)
