"""Python's block structure and syntax, which tree-sitter's error recovery does not fully check.

tree-sitter-python parses `while b:` followed by a dedented line, an indented line under a plain statement, and a
dedent to a column no outer block uses without any ERROR node; Python rejects all three (IndentationError). On
HumanEval single-line fills of the embedded model, 85 of the 198 fills that passed tree-sitter's check (43%) did
not compile, 83 of them for this reason (bench/RESULTS.md). Python's own tokenizer sees the structure: a block
opener ends its logical line with `:` and must be followed by an INDENT; an INDENT anywhere else is unexpected; a
dedent that matches no open level is an error. Where the structure is sound, Python's compiler has the last word.
Counting the faults before and after a fill, in the innermost `def` or `class` around it (dedented to column 0) or
else its top-level statement, tells whether it added one.
"""
from __future__ import annotations

import ast
import functools
import io
import os
import re
import sys
import tokenize
import warnings
from collections import Counter

import tree_sitter

from .clean import indentation
from .context import line_start
from .decide import matching_closer
from .languages import parse_document

# compile() warns about code it accepts (`x is 1`, "\\d" in a plain string: a DeprecationWarning before 3.12, a
# SyntaxWarning since): not the user's business here.
warnings.filterwarnings("ignore", category=SyntaxWarning, module="<fill>")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="<fill>")

# Top-level `await` is what a notebook cell or IPython runs; in a module it stays the rare slip it is in a function
# that is not async, which the compiler still refuses.
COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
WINDOW_CHARS = 64_000   # larger statements are not checked: a check must stay within a keystroke's budget
BLOCK_OPENER = re.compile(r"[ \t]*(?:async[ \t]+def|def|class)\b")
# A column-0 line that starts a statement of its own (an `else:` or `except:` there continues the one above).
TOP_LEVEL = re.compile(r"(?![ \t#)\]}]|(?:else|elif|except|finally)\b)\S")
NONLOCAL = re.compile(r"\bnonlocal\b")
# Syntax Python 3.12 added (PEP 695 type parameters and `type` aliases, PEP 701 f-strings): a server running on 3.11
# must not refuse a fill because its own compiler is older than the user's code.
OLDER_COMPILER = sys.version_info < (3, 12)
TYPE_PARAMETERS = re.compile(r"([ \t]*(?:(?:async[ \t]+)?def|class)[ \t]+\w+[ \t]*)\[")   # `def f[` -> `def f`
TYPE_ALIAS = re.compile(r"([ \t]*)type[ \t]+(\w+)[ \t]*")                           # `type X[T] =` -> `X =`
SKIPPED = (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING)


@functools.lru_cache(maxsize=32)   # the window before the fill is the same for every candidate
@functools.lru_cache(maxsize=32)   # one fill's check reads the same window's faults up to three times
def block_fault_lines(source: str) -> tuple[tuple[int, int], ...] | None:
    """The 1-based lines of missing, unexpected and unmatched indentation in `source`, each fault as the line where
    Python stops and the line to blame with it (a missing block's opener; else the same line); None when it does
    not tokenize at all (an unclosed bracket or string: a line still being typed), so nothing can be said."""
    faults: list[tuple[int, int]] = []
    wants_block = False   # the last logical line ended with ':'
    last = None           # the last token that carries code
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in SKIPPED:
                continue
            if token.type == tokenize.NEWLINE:
                wants_block = last is not None and last.type == tokenize.OP and last.string == ":"
            elif token.type == tokenize.INDENT:
                if not wants_block:
                    faults.append((token.start[0],) * 2)   # "unexpected indent"
                wants_block = False
            elif wants_block:
                # "expected an indented block" (a DEDENT, code or the end): the line after the opener and the
                # opener's own, so that an empty block a fill ends with is the fill's fault too
                faults.append((token.start[0], last.start[0] if last is not None else token.start[0]))
                wants_block = False
            if token.type not in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                last = token
    except IndentationError as error:
        return (*faults, (error.lineno or 0,) * 2)  # "unindent does not match any outer indentation level"
    except (tokenize.TokenError, SyntaxError):
        return None
    return tuple(faults)


def block_faults(source: str) -> int | None:
    """How many block_fault_lines `source` has (None when it does not tokenize)."""
    lines = block_fault_lines(source)
    return None if lines is None else len(lines)


@functools.lru_cache(maxsize=32)
def syntax_error_line(source: str) -> int | None:
    """None when Python compiles `source` (nothing runs), else the 1-based line of its error (0 when unknown): what
    a test of the block structure leaves, such as `2s`, `x = self.` or two statements on one line."""
    try:
        compile(source, "<fill>", "exec", flags=COMPILE_FLAGS, dont_inherit=True)
    except SyntaxError as error:
        if OLDER_COMPILER and newer_syntax(source, error):
            return older_compiler_error_line(source, error)
        if str(error.msg).startswith("no binding for nonlocal") and "nonlocal" in source:
            # The binding lives in an enclosing function, outside the code compiled here. Python stops at this
            # error, so look again for the others with `global` (same length) in its place.
            return syntax_error_line(NONLOCAL.sub("global  ", source))
        return error.lineno or 0
    except (ValueError, RecursionError, MemoryError):
        return 0
    return None


def newer_syntax(source: str, error: SyntaxError) -> bool:
    """True when `error` is a pre-3.12 compiler meeting 3.12 syntax: an f-string error on a line whose f-string
    reuses its own quote inside a replacement field (`f"{d["k"]}"`), or a line that declares type parameters or a
    `type` alias. Any other f-string error (`f"{a!z}"`) is an error on 3.12 too."""
    lines = source.split("\n")
    line = lines[error.lineno - 1] if error.lineno and error.lineno <= len(lines) else ""
    if in_fstring(line, error):   # (`f"{"\n".join(xs)}"` fails as a line continuation, not as an f-string)
        return str(error.msg).startswith(OLDER_FSTRING_LIMIT) or without_nested_quote_fstrings(line) != line
    alias = TYPE_ALIAS.match(line)
    return bool(TYPE_PARAMETERS.match(line) or (alias and line[alias.end():alias.end() + 1] in ("[", "=")))


def in_fstring(line: str, error: SyntaxError) -> bool:
    """The error on `line` is an f-string's: so said, or the line has an f-string that reuses its quote inside a
    replacement field, which a pre-3.12 compiler reads as the string's end, then fails on whatever follows."""
    return str(error.msg).startswith("f-string") or without_nested_quote_fstrings(line) != line


def older_compiler_error_line(source: str, error: SyntaxError) -> int | None:
    """A pre-3.12 compiler stopped at 3.12 syntax: with that line's type parameters (or `type` alias keyword) taken
    out, the code is compiled again for the errors after it. None when that cannot be done (an f-string, or the
    error stays on that line): the code cannot be judged here, and tree-sitter's check still applies."""
    lines = source.split("\n")
    number = error.lineno or 0
    if not 0 < number <= len(lines):
        return None
    line = lines[number - 1]
    opened = TYPE_PARAMETERS.match(line)
    fstring = in_fstring(line, error)
    if fstring:
        simpler = without_nested_quote_fstrings(line, every=str(error.msg).startswith(OLDER_FSTRING_LIMIT))
    elif opened:
        simpler = without_type_parameters(line)
    else:
        alias = TYPE_ALIAS.match(line)
        rest = line[alias.end():] if alias else ""
        if rest.startswith("["):
            close = matching_closer(rest, 0)
            rest = None if close is None else rest[close + 1:]
        simpler = None if alias is None or rest is None else alias.group(1) + alias.group(2) + " " + rest.lstrip()
    if simpler is None or simpler == line:   # nothing to take out (`def f[x` left open): judged again, it would recur
        return None
    again = syntax_error_line("\n".join([*lines[:number - 1], simpler, *lines[number:]]))
    if fstring:
        return again   # the plain string stands in for the f-string exactly: an error left on its line is real
    # Type parameters taken out cannot make an error: one left on their line is real. Without its `type` keyword an
    # alias may read otherwise (`type X = a, b` is an error, `X = a, b` is not): not judged here.
    return again if opened or again != number else None


TYPE_PARAMETER_LINES = re.compile("^" + TYPE_PARAMETERS.pattern, re.MULTILINE)   # a line's start, as .match


def without_type_parameters(source: str) -> str:
    """`source` with the type parameters of each `def` or `class` line (3.12's `def f[T](`, `class C[T]:`) blanked
    to spaces, so that a pre-3.12 compiler reads the rest with its columns unchanged (`def f   (` is valid)."""
    pieces, at = [], 0
    for opened in TYPE_PARAMETER_LINES.finditer(source):
        bracket = opened.end() - 1
        line_end = source.find("\n", bracket)
        close = matching_closer(source[:len(source) if line_end == -1 else line_end], bracket)
        if close is None or bracket < at:
            continue
        pieces.append(source[at:bracket] + " " * (close + 1 - bracket))
        at = close + 1
    return "".join(pieces) + source[at:] if pieces else source


def older_compiler_view(source: str) -> str:
    """`source` as a pre-3.12 compiler can judge it (type parameters blanked), for the checks that read the place
    of an error; `source` itself on 3.12 and later."""
    return without_type_parameters(source) if OLDER_COMPILER and "[" in source else source


# A backslash in a replacement field (`f"{'\\n'.join(xs)}"`): refused before 3.12, taken by 3.12 (PEP 701).
OLDER_FSTRING_LIMIT = "f-string expression part cannot include a backslash"
FSTRING_START = re.compile(r"(?<![\w'\"])(?:[rR]?[fF]|[fF][rR])(['\"])(?!\1\1)")   # one-line f-strings only


def without_nested_quote_fstrings(line: str, every: bool = False) -> str:
    """`line` with each one-line f-string that uses its own quote inside a replacement field (3.12's PEP 701,
    `f"{d["k"]}"`), or with `every` each one-line f-string, replaced by a plain string of the same length, so that
    an older compiler can judge the rest."""
    result, at = [], 0
    for start in FSTRING_START.finditer(line):
        if start.start() < at:
            continue   # inside the f-string just replaced
        quote, i, depth, nested = start.group(1), start.end(), 0, False
        while i < len(line):
            char = line[i]
            if depth == 0 and char == quote:
                break
            if char == "\\":
                i += 2
                continue
            if char == "{":
                if depth == 0 and line.startswith("{{", i):
                    i += 2
                    continue
                depth += 1
            elif char == "}" and depth:
                depth -= 1
            elif depth and char in "'\"":   # a string inside a replacement field: skip to its end
                nested |= char == quote
                close = line.find(char, i + 1)
                if close == -1:
                    break
                i = close
            i += 1
        if not (nested or every) or i >= len(line):
            continue
        result.append(line[at:start.start()] + '"' + " " * (i - start.start() - 1) + '"')
        at = i + 1
    return "".join(result) + line[at:] if result else line


def compiles(source: str) -> bool:
    return syntax_error_line(source) is None


def enclosing_definition(text: str, start: int, end: int) -> tuple[int, int, str] | None:
    """(a, b, indent): the innermost `def` or `class` around document[start:end], from its line to the first code
    line after `end` at or left of its indentation. None at module level or when the search runs past the window
    limit."""
    first = line_start(text, start)
    stop = text.find("\n", first)
    line = text[first:] if stop == -1 else text[first:stop]
    column = len(indentation(line)) if line.strip() else start - first
    indented = column > 0   # at module level no definition holds the cursor
    # The definition must hold every selected line too: a selection running on into the next method's decorator or
    # header is held by the class, not by the method it starts in.
    for row in text[first:end].split("\n")[1:]:
        if row.strip() and not row.lstrip().startswith("#"):
            column = min(column, len(indentation(row)))
    a, nearest = first, None
    while a > 0 and start - a < WINDOW_CHARS:
        above = text[line_start(text, a - 1):a - 1]
        a = line_start(text, a - 1)
        code = above.strip()
        if not code or code.startswith("#"):
            continue
        if (BLOCK_OPENER.match(above) or len(indentation(above)) < column) and string_around(text, a) is not None:
            continue   # a string's text (a template of code: `def g():` at column 0) opens and ends no block
        if BLOCK_OPENER.match(above) and not indentation(above) and nearest is None:
            nearest = a, ""
        if BLOCK_OPENER.match(above) and len(indentation(above)) < column:
            return definition_window(text, a, indentation(above), end)
        # A `def` holds the cursor only if it is left of every code line between them: a helper defined above
        # (`def key(x): ...` before `for ...:`) ended where the code returned to its level.
        column = min(column, len(indentation(above)))
    # Lines at column 0 inside a string or brackets hide every definition from that rule: then the nearest top-level
    # one. Its window runs to the next top-level line after the cursor, so every statement in between is whole.
    return definition_window(text, *nearest, end) if nearest and indented else None


def definition_window(text: str, a: int, indent: str, end: int) -> tuple[int, int, str] | None:
    b = following_line_at_or_left_of(text, end, len(indent))
    return (a, b, indent) if b - a <= WINDOW_CHARS else None


def top_level_window(text: str, start: int, end: int) -> tuple[int, int, str] | None:
    """(a, b, ""): from the top-level statement holding `start` to the next one after `end`. Indentation starts over
    at a top-level line, so text outside the window cannot change the faults inside it. A column-0 line of a
    string's text (a module docstring's, a triple-quoted SQL constant's) starts no statement: a window starting
    there did not compile with the user's own text, and every fill in it was refused."""
    a = line_start(text, start)
    while a > 0:
        if start - a > WINDOW_CHARS:
            return None
        if TOP_LEVEL.match(text, a):
            string = string_around(text, a)
            if string is None:
                break
            a = line_start(text, string[0])   # the line the string opens on, itself checked again
        else:
            a = line_start(text, a - 1)
    b = following_line_at_or_left_of(text, end, 0)
    while b < len(text) and (string := string_around(text, b)) is not None:
        if b - a > WINDOW_CHARS:
            return None
        b = following_line_at_or_left_of(text, string[1], 0)
    return (a, b, "") if b - a <= WINDOW_CHARS else None


def string_around(text: str, offset: int) -> tuple[int, int] | None:
    """(start, end) of the string of the Python document `text` that holds `offset` past its opening quote."""
    if '"""' not in text and "'''" not in text:   # only those span lines (a backslash-continued one is rare)
        return None
    tree, data = python_tree(text)
    ascii_only = text.isascii()   # (a flag of the string: no scan) then bytes and characters count alike
    byte = offset if ascii_only else len(text[:offset].encode("utf-8"))
    node = tree.root_node.descendant_for_byte_range(byte, byte)
    while node is not None and node.type != "string":
        node = node.parent
    if node is None or node.start_byte >= byte:
        return None
    if ascii_only:
        return node.start_byte, node.end_byte
    return len(data[:node.start_byte].decode("utf-8")), len(data[:node.end_byte].decode("utf-8"))


@functools.lru_cache(maxsize=4)   # one document, read for every candidate
def python_tree(text: str) -> tuple[tree_sitter.Tree, bytes]:
    data = text.encode("utf-8")
    return parse_document("python", data), data


def following_line_at_or_left_of(text: str, end: int, column: int) -> int:
    """The start of the first line after the one holding `end` whose code begins at or left of `column` (and,
    at column 0, that starts a statement of its own), or the end of the text."""
    position = text.find("\n", end)
    while position != -1 and position - end <= WINDOW_CHARS:
        begin = position + 1
        stop = text.find("\n", begin)
        line = text[begin:] if stop == -1 else text[begin:stop]
        stripped = line.lstrip(" \t")
        if stripped and not stripped.startswith("#") and len(line) - len(stripped) <= column and (
                column > 0 or TOP_LEVEL.match(line)):
            return begin
        position = stop
    return len(text) if position == -1 else position


def dedented(source: str, indent: str) -> str | None:
    """`source` with `indent` taken off every line that has code, or None when a line starts left of it."""
    if not indent:
        return source
    lines = source.split("\n")
    if any(line.strip() and not line.startswith(indent) for line in lines):
        return None
    return "\n".join(line[len(indent):] if line.startswith(indent) else line.lstrip(" \t") for line in lines)


def ends_with_decorator(source: str) -> bool:
    code = [line for line in source.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    return bool(code) and code[-1].lstrip().startswith("@")


def windows(document: str, start: int, end: int, text: str) -> tuple[str, str, int] | None:
    """(before, after, first line of the fill in them): the code around the fill, dedented to column 0, without and
    with it; the innermost definition when it can be cut out, else the top-level statement."""
    # A selection of whole lines ends at the start of the next line, which is none of its own: the window must
    # end where that line's block does, not the block of the line after it.
    last = end - 1 if end > start and document[end - 1] == "\n" else end
    for find in (enclosing_definition, top_level_window):   # the second only when the first cannot be used
        window = find(document, start, last)
        if window is None:
            continue
        a, b, indent = window
        if a == 0 and document.startswith("\ufeff") and start > 0:
            a = 1   # a byte order mark a client left in: Python reads it off the file's bytes, never as code
        if not indent:   # a decorator ending the window belongs with the definition after it
            while b < len(document) and (ends_with_decorator(document[a:b])
                                         or ends_with_decorator(document[a:start] + text + document[end:b])):
                b = following_line_at_or_left_of(document, b, 0)
        before = dedented(document[a:b], indent)
        after = dedented(document[a:start] + text + document[end:b], indent)
        if before is not None and after is not None:
            return before, after, document.count("\n", a, start) + 1
    return None


def error_inside_fill(before: str, after: str, first_line: int, text: str) -> bool:
    """Does Python's compiler stop inside the fill's own text in `after`? On the fill's first line only at or
    past where the fill starts (an error earlier on that line is the user's)."""
    try:
        compile(older_compiler_view(after), "<fill>", "exec", flags=COMPILE_FLAGS, dont_inherit=True)
    except SyntaxError as error:
        line, column = error.lineno or 0, (error.offset or 1) - 1
    except (ValueError, RecursionError, MemoryError):
        return False
    else:
        return False
    last_line = first_line + fill_line_breaks(text)
    if not first_line <= line <= last_line or same_error_after_the_fill(before, after):
        return False
    if line > first_line:
        return True
    old_line, new_line = before.split("\n")[first_line - 1], after.split("\n")[first_line - 1]
    fill_column = len(os.path.commonprefix([old_line, new_line]))
    return column >= fill_column


def fill_line_breaks(text: str) -> int:
    """Line breaks inside a fill's lines: a fill of whole lines ends with one, and the line after it is not its."""
    return text.rstrip("\r\n").count("\n")


def new_faults_in_fill(before: str, after: str, first_line: int, fill_lines: range) -> list[tuple[int, int]]:
    """The faults of `after` on the fill's lines that `before` did not have. A fault is the same one when its line
    and its opener's read the same (the user's `if y:` over a dedented line, rewritten as it was), or when both are
    on the line the fill starts on (the user's badly indented line, completed at its end)."""
    def key(source_lines: list[str], fault: tuple[int, int]) -> tuple[str, str]:
        return tuple(source_lines[n - 1].strip() if 0 < n <= len(source_lines) else "" for n in fault)

    before_lines, after_lines, faults_before = before.split("\n"), after.split("\n"), block_fault_lines(before)
    known = Counter(key(before_lines, fault) for fault in faults_before)
    users_line = sum(first_line in fault for fault in faults_before)
    new = []
    for fault in block_fault_lines(after):
        if not (fault[0] in fill_lines or fault[1] in fill_lines):
            continue
        same = key(after_lines, fault)
        if known[same]:
            known[same] -= 1
        elif users_line and first_line in fault:
            users_line -= 1
        else:
            new.append(fault)
    return new


def header_awaiting_body(after: str, line: int) -> bool:
    """Whether `line` is a block header whose body is not written yet ("expected an indented block" blamed on it).
    A fill within one line that completes the header the user is typing (`if ` + `x == 1:`, `def f(` + `x):`)
    leaves it so: its body is the user's next line, and a one-line suggestion cannot hold it (they were all
    refused, or one without its colon chosen)."""
    return any(opener == line and stop > line for stop, opener in block_fault_lines(after) or ())


def awaits_body(source: str, line: int) -> bool:
    """Whether the first error Python's compiler finds in `source` is the missing body of the header on `line`, and
    that header compiles once it has one: with a `pass` under it, no error up to that `pass` (the errors found only
    after parsing, `def f(x, x):` or an `await` outside an async function, come after the missing body's)."""
    error = compile_error_at(older_compiler_view(source))
    if error is None or not error[1].startswith("expected an indented block"):
        return False
    lines = source.split("\n")
    header = lines[line - 1]
    with_body = "\n".join(lines[:line] + [indentation(header) + "    pass"] + lines[line:])
    error_line = syntax_error_line(with_body)
    return error_line is None or error_line > line + 1


def awaits_definition(source: str, line: int) -> bool:
    """Whether `line` is a decorator that Python's compiler rejects only for want of the definition it decorates (the
    user's next line, at the end of the file or above other code): with a `def` under it, no error up to that `def`."""
    lines = source.split("\n")
    decorator = lines[line - 1]
    error_line = syntax_error_line(source)
    if not decorator.lstrip().startswith("@") or error_line is None or error_line < line:
        return False
    with_definition = "\n".join(lines[:line] + [indentation(decorator) + "def _(): pass"] + lines[line:])
    error_line = syntax_error_line(with_definition)
    return error_line is None or error_line > line + 1


def fill_python_faults(document: str, start: int, end: int, text: str) -> tuple[int, int] | None:
    """(faults the fill adds, faults left after it) putting `text` in place of document[start:end]: indentation
    faults counted with Python's tokenizer, then, where the structure is sound, an error Python's compiler reports
    in the fill's own lines or in code that compiled before. None when nothing can be said (the code around is
    too long, or open brackets or strings both before and after the fill)."""
    found = windows(document, start, end, text)
    if found is None or "\x00" in found[1]:
        return None
    before, after, first_line = found
    if syntax_error_line(after) is None:
        # Compiled: no fault of either kind. Python rejects the indentation faults counted below (where the tokenizer
        # is stricter, e.g. a lone \r in indentation, Python's yes is the answer that matters). The compiler is C;
        # the tokenizer that counts faults is Python code, several times slower on a long class or function.
        return 0, 0
    faults_before, faults_after = block_faults(before), block_faults(after)
    # A header the user is typing, finished within its line by the fill (`if ` + `x == 1:`), waits for its body on
    # the next line: its "expected an indented block" is not the fill's. (Only where the user has begun the line:
    # a header alone offered on a blank line leaves a block with no body.)
    line_start = document.rfind("\n", 0, start) + 1   # (a line continued from the one above is begun too)
    users_line_begun = document[line_start:start].strip() != "" or document[:max(0, line_start - 1)].rstrip(
        "\r").endswith("\\")
    within_line = users_line_begun and fill_line_breaks(text) == 0
    completes_header = within_line and header_awaiting_body(after, first_line)
    # So does a decorator finished within its line (`@functools.` + `cache`) for the definition under it.
    completes_decorator = within_line and after.split("\n")[first_line - 1].lstrip().startswith("@")
    if faults_after is None:
        if faults_before is not None:
            return 1, 1   # the fill leaves a bracket or a string open
        # A bracket or string was open both times (a line being typed elsewhere in the block: `y = (a +` below):
        # nothing can be counted, but a compiler that stops inside the fill's own text (`a b c`, a `"""` that
        # swallows the rest) still blames it.
        return (1, 1) if error_inside_fill(before, after, first_line, text) else None
    if faults_before is None:
        # A bracket or string was open at the fill (a line being typed), so nothing could be counted before it; the
        # fill closed it. It is to blame where Python's compiler now stops inside its own text (`return (a, b):`).
        error_line = syntax_error_line(after)
        if error_line is None:
            return 0, faults_after
        if completes_header and awaits_body(after, first_line):   # (`def f(` + `x):`, no `)` typed by the editor)
            return 0, max(faults_after, 1)
        if completes_decorator and awaits_definition(after, first_line):   # (`@lru_cache(` + `maxsize=None)`)
            return 0, max(faults_after, 1)
        return int(error_inside_fill(before, after, first_line, text)), max(faults_after, 1)
    # A fault in the fill's own lines is the fill's, though the count did not grow (code written at column 0 under
    # a header moves the "expected an indented block" of the empty body into the fill; so does a fill ending with
    # a header of its own), unless the line the fill starts on had it already (the user's line, completed).
    fill_lines = range(first_line, first_line + fill_line_breaks(text) + 1)
    awaiting = int(completes_header)
    faults_after -= awaiting
    added = max(faults_after - faults_before,
                len(new_faults_in_fill(before, after, first_line, fill_lines)) - awaiting, 0)
    if faults_after:
        return added, faults_after
    error_line = syntax_error_line(after)
    if error_line is None:
        return added, 0
    if awaiting and awaits_body(after, first_line):   # (the compiler's first error: the header itself reads right)
        return added, 1
    if completes_decorator and awaits_definition(after, first_line):
        return added, 1
    in_fill = (first_line <= error_line <= first_line + fill_line_breaks(text)
               and not same_error_after_the_fill(before, after) and not users_try_left_open(after, text))
    compiled_before = faults_before == 0 and syntax_error_line(before) is None
    return added + (in_fill or compiled_before), 1


@functools.lru_cache(maxsize=32)   # the window before the fill is the same for every candidate
def compile_error_at(source: str) -> tuple[int, str] | None:
    """Where Python's compiler stops in `source`, as a character offset, and what it says; None when it compiles
    or cannot say."""
    try:
        compile(source, "<fill>", "exec", flags=COMPILE_FLAGS, dont_inherit=True)
    except SyntaxError as error:
        lines = source.split("\n")
        if not error.lineno or error.lineno > len(lines):
            return None
        return sum(len(line) + 1 for line in lines[:error.lineno - 1]) + (error.offset or 1) - 1, str(error.msg)
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


TRY_WITHOUT_HANDLER = "expected 'except' or 'finally' block"
TRY_HEADER = re.compile(r"^[ \t]*try[ \t]*:", re.MULTILINE)


def users_try_left_open(after: str, text: str) -> bool:
    """Whether the compiler stops at the end of the code only because a `try:` there has no handler yet: the user's
    (the fill wrote none), whose body is being written top-down (its `except` comes later), not the fill's fault."""
    error = compile_error_at(older_compiler_view(after))
    return (error is not None and error[1] == TRY_WITHOUT_HANDLER and not after[error[0]:].strip()
            and not TRY_HEADER.search(text))


def same_error_after_the_fill(before: str, after: str) -> bool:
    """Is the error the compiler stops at in the code after the fill the user's, past the fill: the same place and
    reason as before it (the user's `v = ` later on the line a fill completes), or, where the code before the fill
    stopped at the fill or at the first token after it (`a = |; v = `, mended by the fill), a place past that
    first token of the unchanged text? Then the error on the fill's line is not the fill's. Not at that first
    token: an error there may be the fill's (`x = 1 +` before `; v = 2`, or ` ; v = 2`)."""
    old, new = compile_error_at(older_compiler_view(before)), compile_error_at(older_compiler_view(after))
    if old is None or new is None:
        return False
    changed_from = len(os.path.commonprefix([before, after]))
    unchanged_tail = min(len(os.path.commonprefix([before[::-1], after[::-1]])), len(before) - changed_from)
    tail = after[len(after) - unchanged_tail:]
    first_token_at = len(after) - unchanged_tail + len(tail) - len(tail.lstrip(" \t"))   # (`a = 1 + | ; v = `)
    same_error = len(before) - old[0] == len(after) - new[0] and old[1] == new[1]
    users_first_token_at = first_token_at - len(after) + len(before)   # (where it stands in `before`)
    mended = old[0] <= users_first_token_at and "\n" not in after[first_token_at:new[0]]
    return ((same_error or mended) and new[0] > first_token_at
            and compiles_up_to_the_semicolon(after, changed_from, first_token_at))


def compiles_up_to_the_semicolon(after: str, changed_from: int, first_token_at: int) -> bool:
    """Where the user's text after the fill goes on with `;` and another statement, whether the fill's statement
    compiles without that rest of the line: the compiler reports the parser's error (the user's `v = `) before the
    errors it finds later, so `a = *x; v = ` hid that `a = *x` never compiles. Only an error in the fill counts:
    one before it (the user's `await` in a function not yet async, a string the cut leaves open) is not the fill's.
    True when there is no `;`."""
    if not after.startswith(";", first_token_at):
        return True
    line_end = after.find("\n", first_token_at)
    alone = after[:first_token_at] + (after[line_end:] if line_end >= 0 else "")
    error = compile_error_at(older_compiler_view(alone))
    return error is None or not changed_from <= error[0] <= first_token_at
