"""Python's block structure, which tree-sitter's error recovery does not check.

tree-sitter-python parses `while b:` followed by a dedented line, an indented line under a plain statement, and a
dedent to a column no outer block uses without any ERROR node; Python rejects all three (IndentationError). Measured
on HumanEval single-line fills of the embedded model, 43% of the fills that passed tree-sitter's check did not
compile for this reason alone (bench/RESULTS.md). Python's own tokenizer sees the structure: a block opener ends its
logical line with `:` and must be followed by an INDENT; an INDENT anywhere else is unexpected; a dedent that
matches no open level is an error. Counting those faults before and after a fill tells whether the fill added one.
"""
from __future__ import annotations

import functools
import io
import re
import tokenize

TOP_LEVEL_STATEMENT = re.compile(r"^[^\s#)\]}]", re.MULTILINE)   # a line starting in column 0 with code
SKIPPED = (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING)


@functools.lru_cache(maxsize=16)   # the window before the fill is the same for every candidate
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


def statement_window(text: str, start: int, end: int) -> tuple[int, int]:
    """[a, b): from the top-level statement holding `start` to the next one after `end`. Indentation starts over
    at a top-level line, so text outside the window cannot change the faults inside it."""
    a = 0
    for match in TOP_LEVEL_STATEMENT.finditer(text, 0, start + 1):
        a = match.start()
    following = TOP_LEVEL_STATEMENT.search(text, end + 1)
    return a, following.start() if following else len(text)


def fill_block_faults(document: str, start: int, end: int, text: str) -> tuple[int, int] | None:
    """(faults before, faults after) putting `text` in place of document[start:end], in the statements around it;
    None when either does not tokenize."""
    a, b = statement_window(document, start, end)
    before = block_faults(document[a:b])
    after = block_faults(document[a:start] + text + document[end:b])
    return None if before is None or after is None else (before, after)
