"""Tree-sitter facts about the cursor: the scopes enclosing it, the statement it is in, whether it sits in a string
or comment, and how many parse errors the document already has.

tree-sitter counts UTF-8 bytes; the rest of infill/ counts Python str characters. `Source` converts between them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

import tree_sitter

from .languages import captures_near, parse, parse_document, query
from .literals import HOLE, OPEN, literal_ending
from .queries import SCOPE_CAPTURES
from .silent_faults import faults_near
from .style import SAMPLE_CHARS, line_start_at


@dataclass
class Scope:
    kind: str        # "function" | "class" | "block" (the query capture), or "document"
    node_type: str   # tree-sitter node type, e.g. "function_definition"
    start: int       # str offsets into the document
    end: int


@dataclass
class SpanInfo:
    scopes: list[Scope] = field(default_factory=list)   # enclosing scopes, innermost first
    statement: Scope | None = None                      # innermost statement around the cursor
    in_string_or_comment: bool = False
    error_count: int = 0                                # ERROR and MISSING nodes in the whole tree
    in_code_hole: bool = False                          # inside an f-string's {} or a template's ${}
    closes_go_list: bool = False                        # Go: the next closer ends a literal or an argument list
    literal_lines: int = 0   # the string or comment the range starts inside: 1 on one line, 2 on more; 0 outside
    literal_closer: str = ""   # what ends that string or comment (`*/`, `"""`, `]]`...; "" when it is not closed)
    literal_ends_below: bool = False   # with that closer, after the cursor (False: with the next comment's)
    line_above_in_comment: bool | None = None   # the nearest non-blank line above starts inside a comment (None:
                                                # no grammar to tell)
    unreadable: str = ""     # why the tree around the range was not read (too deep): nothing else is set

    @property
    def span(self) -> Scope | None:
        """The innermost enclosing scope; None at the top level of the document."""
        return self.scopes[0] if self.scopes else None


class Source:
    def __init__(self, text: str):
        self.text = text
        self.data = text.encode("utf-8")

    def byte_offset(self, char_offset: int) -> int:
        return len(self.text[:char_offset].encode("utf-8"))

    def char_offset(self, byte_offset: int) -> int:
        return len(self.data[:byte_offset].decode("utf-8", errors="ignore"))


def count_errors(node: tree_sitter.Node) -> int:
    """ERROR and MISSING nodes under `node`, visiting only subtrees that contain some."""
    if not node.has_error:
        return 0
    count, stack = 0, [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        stack.extend(child for child in current.children if child.has_error or child.is_missing)
    return count


def error_count(grammar: str, text: str) -> int:
    return count_errors(parse(grammar, text.encode("utf-8")).root_node)


class ErrorCounts(NamedTuple):
    total: int    # ERROR / MISSING nodes in the whole document, and the compiler faults the grammar reads
                  # silently (silent_faults) in the nodes the range meets
    near: int     # those touching the range
    within: int   # those the range's own text makes: an ERROR starting in it, a missing name or expression after
                  # its first character up to its end (`if (a &&)`: the operand `&&` needs)
    spans: frozenset = frozenset()   # (type, missing, start byte, end byte) of each: which errors a fill moved


def errors_around(grammar: str, text: str, start: int, end: int) -> ErrorCounts:
    """Parse errors of the document and of the str range [start, end] (ErrorCounts). `within` catches a fill that
    only moves an error: in an expression slot the empty document already misses an expression at the cursor,
    and a broken fill there keeps the totals equal while the error now stands inside or right after its text.
    A missing closer or keyword is not counted there: it closes something opened before (the user's `foo(`)."""
    data = text.encode("utf-8")
    root = parse_document(grammar, data).root_node
    low, high = len(text[:start].encode("utf-8")), len(text[:end].encode("utf-8"))
    # What the grammar reads but the compiler rejects, in the nodes the range meets: near it by construction.
    faults = faults_near(grammar, root, data, low, high)
    if not root.has_error and not faults:
        return ErrorCounts(0, 0, 0)
    # Near counts what touches the range through the whitespace before it: the parser closes a block left open at
    # the end of the file (a missing `}` or `end`, an ERROR over the unfinished function) at the last token before
    # an empty range, and at the end of the text put there, so the same error would count as moved near the fill.
    reach = len(data[:low].rstrip(b" \t\r\n"))
    total = near = len(faults)
    within = sum(low <= fault_start < high for _, _, fault_start, _ in faults)
    spans = set(faults)
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            total += 1
            near += node.start_byte <= high and node.end_byte >= reach
            within += (low <= node.start_byte < high) if node.is_error else (
                node.is_named and low < node.start_byte <= high)
            spans.add((node.type, node.is_missing, node.start_byte, node.end_byte))
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return ErrorCounts(total, near, within, frozenset(spans))


def rows_inside_literals(grammar: str, text: str, chars: int = SAMPLE_CHARS) -> frozenset[int]:
    """The 0-based lines of `text`'s first `chars` characters (what the indentation vote reads) that start inside
    a multi-line string or comment: their indentation is the literal's text, so it says nothing of the code's."""
    tree = parse_document(grammar, text.encode("utf-8"))
    captures = captures_near(query(grammar), tree.root_node, 0, len(text[:chars].encode("utf-8")))
    rows = set()
    for node in captures.get("string", []) + captures.get("comment", []):
        last = node.end_point.row - (node.end_point.column == 0)   # (a node that ends with its line break)
        rows.update(range(node.start_point.row + 1, last + 1))
    return frozenset(rows)


def cursor_indentation(text: str, offset: int) -> int:
    """Column of the cursor when only whitespace precedes it on its line, else the line's indentation."""
    line_start = text.rfind("\n", 0, offset) + 1
    before = text[line_start:offset]
    if not before.strip():
        return len(before)
    return len(before) - len(before.lstrip(" \t"))


def line_indentation(text: str, offset: int) -> int:
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", line_start)
    line = text[line_start:] if line_end == -1 else text[line_start:line_end]
    return len(line) - len(line.lstrip(" \t"))


CLOSED_BLOCK_COMMENT = re.compile(rb"/\*.*\*/|--\[(=*)\[.*\]\1\]", re.DOTALL)


def is_open_line_comment(node: tree_sitter.Node, byte: int) -> bool:
    """A line comment runs to the end of its line: a cursor right after it is still writing the comment. Not a
    comment whose node holds its line break (Rust's `///` doc comments), nor a closed block comment (`/* */`, Lua's
    `--[==[ ]==]`); a line comment that happens to end in `*/` or `]]` is still open."""
    text = node.text.rstrip(b" \t")
    return (node.end_byte == byte and node.start_byte < byte and not text.endswith(b"\n")
            and not CLOSED_BLOCK_COMMENT.fullmatch(text))


# Go lists whose closer may sit on a line of its own only after a comma: Go ends a line that ends with a name, a
# literal or a closer with a semicolon, and `X: 1;` before the `}` of `Point{` does not compile (tree-sitter-go
# reads it fine, so the parse check cannot tell).
GO_LISTS = {"literal_value", "argument_list", "parameter_list", "type_parameter_list", "type_arguments"}
LEADING_SPACE = re.compile(rb"\s*")


def closes_go_list(tree: tree_sitter.Tree, data: bytes, byte: int) -> bool:
    """Is the first thing at or after `byte` (whitespace and comments skipped) the closer of one of GO_LISTS?"""
    at = LEADING_SPACE.match(data, byte).end()
    while data.startswith((b"//", b"/*"), at):   # (`2, // two` then `}` on the next line)
        close = data.find(b"\n", at) if data.startswith(b"//", at) else data.find(b"*/", at + 2) + 1
        if close <= 0:
            return False
        at = LEADING_SPACE.match(data, close + 1).end()
    if data[at:at + 1] not in (b"}", b")", b"]"):
        return False
    node = tree.root_node.descendant_for_byte_range(at, at + 1)
    return (node is not None and node.type in ("}", ")", "]") and node.parent is not None
            and node.parent.type in GO_LISTS)


GO_TOP_LEVEL = re.compile(r"^(?:func|type|var|const|import)\b", re.MULTILINE)
GO_REPARSE_REACH = 64 * 1024   # characters each way: a longer top-level declaration is not parsed again


def next_closer_ends_go_list(text: str, offset: int) -> bool | None:
    """closes_go_list at the character `offset` of the Go source `text`, parsed afresh: only the top-level
    declaration around `offset` (a large file costs no more); None when that is too long to tell."""
    starts = [match.start() for match in GO_TOP_LEVEL.finditer(text, max(0, offset - GO_REPARSE_REACH), offset)]
    if not starts and offset > GO_REPARSE_REACH:
        return None
    following = GO_TOP_LEVEL.search(text, offset, offset + GO_REPARSE_REACH)
    if following is None and len(text) - offset > GO_REPARSE_REACH:
        return None
    first = starts[-1] if starts else 0
    source = Source(text[first:following.start() if following else len(text)])
    return closes_go_list(parse("go", source.data), source.data, source.byte_offset(offset - first))


def in_code_hole(tree: tree_sitter.Tree, byte: int, data: bytes) -> bool:
    """Inside `${...}` of a template string or `{...}` of an f-string the user writes code, not text; so in JSX's
    `{...}` when the cursor is on the line of its `{` (a child written on its own line, `{|}`, is one expression;
    on the lines below it a callback's body may be a block)."""
    node = tree.root_node.descendant_for_byte_range(byte, byte)
    while node is not None:
        if "substitution" in node.type or node.type == "interpolation":
            return node.start_byte < byte < node.end_byte
        if node.type == "jsx_expression":
            return node.start_byte < byte < node.end_byte and b"\n" not in data[node.start_byte:byte]
        node = node.parent
    return False


# Literals tree-sitter parsed whole: blanked out before the lexical scan (literals.py), which then never misreads
# a closing quote, a quote inside a regex, a char literal or JSX text as the start of a string.
LITERAL_NODE = re.compile(r"string|comment|char|rune|regex|jsx_text|text_block")
LITERAL_PART = re.compile(r"_(start|end|content|fragment|delimiter)$")   # a lone opening quote is not a whole literal
NOT_LINE_BREAK = re.compile(rb"[^\r\n]")
LOOK_BACK_BYTES = 8000   # how far before the cursor an unclosed literal is looked for (the scan reads at most this)


def code_before_cursor(tree: tree_sitter.Tree, source: Source, start: int, b_start: int) -> str | None:
    """The text the literal scan reads: from the start of the outermost erroneous node that begins above the
    cursor's line (an unclosed docstring or block comment opened there), else from the line's start, up to the
    cursor, with the literals parsed whole blanked out (line breaks kept). None when the parse has no error
    there: nothing is open."""
    text = source.text
    line_start = line_start_at(text, start)
    b_line = b_start - len(text[line_start:start].encode("utf-8"))   # `b_start`: the cursor's byte offset
    if b_start - b_line > LOOK_BACK_BYTES:   # a minified line: not worth the time
        return None
    scan_from = b_line
    node = tree.root_node.descendant_for_byte_range(b_line, b_start)
    if node == tree.root_node:
        # Past every node's end (blank space at the end of the file, which no node holds): the nodes are looked
        # for from the last code byte before the cursor, as the module's start may be out of reach.
        last = b_start
        while last > max(0, b_start - LOOK_BACK_BYTES) and source.data[last - 1:last] in (b" ", b"\t", b"\r", b"\n"):
            last -= 1
        node = tree.root_node.descendant_for_byte_range(max(last - 1, 0), max(last - 1, 0))
    # The outermost erroneous node within reach: prose being typed in a docstring parses as statements ("with ...
    # and ..." is a with statement), erroneous themselves, that begin after the opening quotes.
    while node is not None:
        if node.has_error and node.start_byte < b_line and b_start - node.start_byte <= LOOK_BACK_BYTES:
            scan_from = node.start_byte
        node = node.parent
    scanned = source.data[scan_from:b_start]
    first_code = scan_from + len(scanned) - len(scanned.lstrip())
    blanks, erroneous = literals_and_errors(tree.root_node, scan_from, b_start, first_code)
    if not erroneous:
        return None
    data = bytearray(scanned)
    for a, b in blanks:
        a, b = max(a, scan_from) - scan_from, min(b, b_start) - scan_from
        data[a:b] = NOT_LINE_BREAK.sub(b" ", data[a:b])
    return data.decode("utf-8", errors="replace")


# The end of a string or comment of several lines (a closed one: an unclosed one ends with whatever it holds).
LITERAL_CLOSER = re.compile(rb'(?:\*/|"""|\'\'\'|`|\](=*)\]|"#+|")\Z')
# The start of another block comment (or Lua long string), which a comment not closed yet runs on into, by the
# first byte of the closer (a `/*` in a glob, `src/*.js`, starts none).
ANOTHER_OPENER = {b"*": re.compile(rb"(?<![\w*.])/\*"), b"]": re.compile(rb"\[=*\[")}
PROSE_DIRECTIVE = re.compile(r"#\s*(error|warning)\b")   # `# error` too: nested directives are often indented


def directive_text_before(tree: tree_sitter.Tree, data: bytes, b_start: int) -> str | None:
    """C and C++: a directive's argument (`1 // the max` in `#define X 1 // the max`) parses as one opaque
    preproc_arg, without the comments and strings in it, and with no error for the scan to start from. The
    directive's text up to the cursor (`#define X 1 // the max`) when the cursor is in or at the end of one, else
    None."""
    node = tree.root_node.descendant_for_byte_range(max(b_start - 1, 0), b_start)
    while node is not None and node.type != "preproc_arg":
        node = node.parent
    if node is None or not node.start_byte < b_start <= node.end_byte or node.parent is None:
        return None
    return data[node.parent.start_byte:b_start].decode("utf-8", errors="replace")


def unclosed_block_comment(node: tree_sitter.Node) -> bool:
    """JavaScript's grammar reads a `/* ...` with no `*/` after it as a regex (no regex starts with `*`): it is a
    comment being written, which the scan must see."""
    return "regex" in node.type and (node.text or b"").lstrip(b"/").startswith(b"*")


def literals_and_errors(root: tree_sitter.Node, lo: int, hi: int, first_code: int) -> tuple[list[tuple[int, int]], bool]:
    """Byte ranges of the literals parsed whole that overlap [lo, hi), and whether an ERROR or MISSING node
    overlaps [first_code, hi] (the code being scanned, leading blanks left out)."""
    blanks: list[tuple[int, int]] = []
    erroneous = False
    stack = [(root, False)]   # (node, inside a literal that did not parse whole: its parts are not literals)
    while stack:
        node, broken = stack.pop()
        if node.end_byte < lo or node.start_byte > hi:
            continue
        literal = (LITERAL_NODE.search(node.type) is not None and not LITERAL_PART.search(node.type)
                   and not unclosed_block_comment(node))
        if node.is_error or node.is_missing:
            erroneous = erroneous or (node.start_byte <= hi and node.end_byte >= first_code
                                      and (node.end_byte > first_code or node.is_missing))
        elif literal and not broken and not node.has_error and node.start_byte < hi and node.end_byte > lo:
            blanks.append((node.start_byte, node.end_byte))
            continue
        stack.extend((child, broken or (literal and node.has_error)) for child in node.children)
    return blanks, erroneous


# Nodes that hold a definition with its head: Python's decorators, C++'s `template <...>` line, the `export` (and
# a class's decorators) of JavaScript and TypeScript.
HEAD_WRAPPERS = {"decorated_definition", "template_declaration", "export_statement"}
# Siblings above a definition that belong to it: Rust's attributes, TypeScript's decorators of a class member.
HEAD_SIBLINGS = {"attribute_item", "decorator"}


def is_doc_comment(node: tree_sitter.Node) -> bool:
    """Rust's `///` and `/** */` (the grammar marks them `outer`): they document the item below, as attributes do."""
    return node.type in ("line_comment", "block_comment") and node.child_by_field_name("outer") is not None


def head_start(node: tree_sitter.Node) -> int:
    """Where a scope begins with what belongs to it above its keyword: decorators (Python, TypeScript), a template
    line (C++), `export`, attributes and doc comments (Rust's `#[test]`, `///`: siblings before it). A context that
    keeps the scope whole keeps them too."""
    first = node
    while first.parent is not None and first.parent.type in HEAD_WRAPPERS:   # (a member template: two template lines)
        first = first.parent
    sibling = first.prev_named_sibling
    while sibling is not None and (sibling.type in HEAD_SIBLINGS or is_doc_comment(sibling)):
        first, sibling = sibling, sibling.prev_named_sibling
    return first.start_byte


# Deeper than this at the cursor, the tree is not read: tree-sitter finds a node's parent by going down from the
# root, so the walks up from the cursor take time growing with the square of the depth (1.5 s at 10,000 levels,
# 13 s at 30,000: bench/RESULTS.md). The deepest node in 6,000 Python, JavaScript and
# TypeScript files of installed packages was 420 levels down (a long union type).
MAX_NESTING = 1000


def nesting_at(tree: tree_sitter.Tree, byte: int, limit: int = MAX_NESTING) -> int:
    """How many nodes enclose `byte`, counted going down the tree (linear), up to `limit` + 1."""
    cursor = tree.walk()
    depth = 0
    while depth <= limit and cursor.goto_first_child_for_byte(byte) is not None:
        if cursor.node.start_byte > byte:   # (the first child starting after it: none encloses it)
            break
        depth += 1
    return depth


def find_span(grammar: str, text: str, start: int, end: int) -> SpanInfo:
    """Scopes enclosing [start, end) (innermost first), the statement at `start`, and whether `start` is inside a
    string or comment."""
    source = Source(text)
    tree = parse_document(grammar, source.data)
    b_start, b_end = source.byte_offset(start), source.byte_offset(end)
    # The last code character before the cursor: a Python body being written on a fresh indented line lies after
    # its scope's last token, yet still belongs to that scope.
    anchor_chars = len(text[:start].rstrip())
    b_anchor = max(0, source.byte_offset(anchor_chars) - 1)
    # (and at the character before it: C's directive check walks up from there, and a chain nesting to the right,
    # `a = a = ... = 1|`, ends at the cursor, with none of its levels enclosing it; and, for a cursor, at the last
    # code character, which the scan for an open literal walks up from when the cursor is on a blank line below)
    looked_at = (b_start, max(b_start - 1, 0)) + ((b_anchor,) if start == end else ())
    if max(nesting_at(tree, b) for b in looked_at) > MAX_NESTING:
        return SpanInfo(unreadable=f"the code at the cursor is nested more than {MAX_NESTING} levels deep")
    indent = cursor_indentation(text, start)

    def encloses(node: tree_sitter.Node) -> bool:
        if node.start_byte <= b_start and b_end <= node.end_byte and node.start_byte < node.end_byte:
            return b_start != node.start_byte or b_end != b_start  # a cursor just before a scope is not in it
        return (start == end and node.start_byte <= b_anchor < node.end_byte
                and indent > line_indentation(text, source.char_offset(node.start_byte)))

    # Only matches near the cursor matter; ancestors intersect this range too.
    captures = captures_near(query(grammar), tree.root_node, min(b_anchor, b_start), max(b_end, b_start + 1))

    found: list[tuple[int, tree_sitter.Node, str]] = []
    for kind in SCOPE_CAPTURES:
        for node in captures.get(kind, []):
            if encloses(node):
                found.append((node.end_byte - node.start_byte, node, kind))
    found.sort(key=lambda item: item[0])
    scopes = [Scope(kind, node.type, source.char_offset(head_start(node)), source.char_offset(node.end_byte))
              for _, node, kind in found]

    same_line_anchor = "\n" not in text[anchor_chars:start]
    statements = [node for node in captures.get("statement", [])
                  if node.start_byte <= b_start <= node.end_byte
                  or (same_line_anchor and node.start_byte <= b_anchor < node.end_byte)]
    statement = min(statements, key=lambda node: node.end_byte - node.start_byte, default=None)
    code_hole = in_code_hole(tree, b_start, source.data)
    strings, comments = ([node for node in captures.get(kind, []) if node.start_byte < b_start < node.end_byte]
                         for kind in ("string", "comment"))
    literal = min(strings + comments, key=lambda node: node.end_byte - node.start_byte, default=None)
    spread = literal is not None and b"\n" in source.data[literal.start_byte:literal.end_byte]
    literal_lines = 0 if literal is None or code_hole else 2 if spread else 1
    closer = LITERAL_CLOSER.search(source.data[max(literal.start_byte + 2, literal.end_byte - 8):literal.end_byte]
                                   ) if literal_lines else None
    # A comment the user has not closed yet runs on to the end of the next one: its end is not below the cursor.
    opener = closer and ANOTHER_OPENER.get(closer.group()[:1])
    ends_below = closer is not None and not (opener and opener.search(source.data[b_start:literal.end_byte]))
    quiet = bool(strings) and not code_hole
    # JSX text has no closing quote: typing it, the cursor sits at its end. Only prose before the cursor on its
    # line counts: an element not closed yet reads as text to its end, blank lines and code included.
    line_start = source.data.rfind(b"\n", 0, b_start) + 1
    quiet = quiet or any(node.start_byte < b_start <= node.end_byte
                         and source.data[max(node.start_byte, line_start):b_start].strip()
                         for node in captures.get("text", []))
    quiet = quiet or bool(comments) or any(is_open_line_comment(node, b_start) for node in captures.get("comment", []))
    if (not quiet and start == end and grammar in ("c", "cpp")   # (only C's grammars have directive arguments)
            and (directive := directive_text_before(tree, source.data, b_start)) is not None):
        # `#error` and `#warning` take prose; elsewhere a comment or string is found by the scan
        quiet = PROSE_DIRECTIVE.match(directive) is not None or literal_ending(grammar, directive) == OPEN
    elif not quiet and start == end:
        code = code_before_cursor(tree, source, start, b_start)
        ending = literal_ending(grammar, code) if code is not None else None
        quiet = ending == OPEN
        # a hole just opened (`f"{|"`): the parse has no interpolation node for it yet
        code_hole = code_hole or ending == HOLE
    return SpanInfo(
        scopes=scopes,
        statement=(Scope("statement", statement.type, source.char_offset(statement.start_byte),
                         source.char_offset(statement.end_byte)) if statement else None),
        in_string_or_comment=quiet,
        error_count=count_errors(tree.root_node),
        in_code_hole=code_hole and not quiet,
        closes_go_list=grammar == "go" and closes_go_list(tree, source.data, b_end),
        literal_lines=literal_lines,
        literal_closer=closer.group().decode() if closer else "",
        literal_ends_below=ends_below,
        line_above_in_comment=line_above_starts_in_comment(tree, source.data, b_start),
    )


def line_above_starts_in_comment(tree: tree_sitter.Tree, data: bytes, at: int) -> bool:
    """Whether the nearest non-blank line above the line of byte `at` begins inside a comment: a ` * ...` line of a
    block comment is, `*p = a +` is not (only the tree tells them apart, a `/*` in a string or a line comment
    above looks like an opened comment)."""
    above = data[:max(data.rfind(b"\n", 0, at), 0)].rstrip()   # up to the last non-blank line's end
    if not above:
        return False
    start = above.rfind(b"\n") + 1
    first = len(above) - len(above[start:].lstrip())   # the last non-blank line's first character
    node = tree.root_node.descendant_for_byte_range(first, first + 1)
    return node is not None and "comment" in node.type
