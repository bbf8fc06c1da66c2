"""Tree-sitter facts about the cursor: the enclosing scope, and whether the cursor sits in a string or comment.

tree-sitter counts UTF-8 bytes; the rest of infill/ counts Python str characters. `Source` converts between them.
"""
from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from .languages import parse, query


@dataclass
class Scope:
    kind: str      # node type, e.g. "function_definition"; "document" when nothing encloses the cursor
    start: int     # str offsets
    end: int


class Source:
    def __init__(self, text: str):
        self.text = text
        self.data = text.encode("utf-8")

    def byte_offset(self, char_offset: int) -> int:
        return len(self.text[:char_offset].encode("utf-8"))

    def char_offset(self, byte_offset: int) -> int:
        return len(self.data[:byte_offset].decode("utf-8", errors="ignore"))


@dataclass
class SyntaxFacts:
    scope: Scope
    in_string_or_comment: bool
    error_count: int          # ERROR and MISSING nodes in the whole tree


def count_errors(tree: tree_sitter.Tree) -> int:
    if not tree.root_node.has_error:
        return 0
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return count


def line_indentation(text: str, offset: int) -> int:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:]
    return len(line) - len(line.lstrip(" \t"))


def open_line_comment_ends_at(node: tree_sitter.Node, byte: int) -> bool:
    """A line comment runs to the end of its line: a cursor right after it is still writing the comment."""
    return (node.type.endswith("comment") and node.end_byte == byte and node.start_byte < byte
            and not node.text.rstrip().endswith((b"*/", b"]]")))


def analyse(grammar: str, text: str, start: int, end: int) -> SyntaxFacts:
    """Scope enclosing [start, end) and whether `start` is inside a string or comment."""
    source = Source(text)
    tree = parse(grammar, source.data)
    b_start, b_end = source.byte_offset(start), source.byte_offset(end)
    captures = tree_sitter.QueryCursor(query(grammar)).captures(tree.root_node)
    anchor = len(text[:start].rstrip())  # last code character before the cursor
    b_anchor = source.byte_offset(anchor) - 1
    cursor_indent = line_indentation(text, start)

    def encloses(node: tree_sitter.Node) -> bool:
        if node.start_byte <= b_start and b_end <= node.end_byte:
            return True
        # A scope ends at its last token, yet an indented line just after it (a Python body being written, or an
        # unfinished statement the parser cut short) still belongs to it.
        return (node.start_byte <= b_anchor < node.end_byte
                and cursor_indent > line_indentation(text, source.char_offset(node.start_byte)))

    innermost = None
    for node in captures.get("scope", []):
        if encloses(node):
            if innermost is None or node.end_byte - node.start_byte < innermost.end_byte - innermost.start_byte:
                innermost = node
    scope = (Scope(innermost.type, source.char_offset(innermost.start_byte), source.char_offset(innermost.end_byte))
             if innermost else Scope("document", 0, len(text)))
    quiet = any(node.start_byte < b_start < node.end_byte or open_line_comment_ends_at(node, b_start)
                for name in ("string", "comment") for node in captures.get(name, []))
    return SyntaxFacts(scope=scope, in_string_or_comment=quiet, error_count=count_errors(tree))


def error_count(grammar: str, text: str) -> int:
    return count_errors(parse(grammar, text.encode("utf-8")))
