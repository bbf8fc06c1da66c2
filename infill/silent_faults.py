"""Faults a language's own compiler rejects that its tree-sitter grammar parses without an ERROR or MISSING node, so
the parse check would let a fill that writes one through:

- Go ends a line with a semicolon when its last token is a name, a literal, one of `) ] }`, `++`, `--`, `break`,
  `continue`, `fallthrough` or `return`. So a block's `{` on the line after `if x > 0`, `func() int` or
  `switch v`, a list's closer on the line after an element with no comma (`g(\\n1,\\n2\\n)`) and a comma that
  starts a line (`g(1\\n, 2)`) do not compile; tree-sitter-go reads them fine (an `else` on the line after its
  `}` it already reads as an error).
- JavaScript and TypeScript: an argument list or object literal with a comma before its first entry or two commas
  in a row (`f(a,, b)`; arrays may have holes, these may not).
- JSX: a closing tag that names another element than its opening tag (`<b>x</i>`).
- C and C++: a statement inside a function whose `=` was lost, read as a declaration of a variable named like its
  type (`n n = strlen(s);`, C++'s `srand srand(42);`) or, in C, of a function whose parameters are bare type
  names (`n strlen(s);`; C++ reads `Guard guard(device)` so, and means it).
- Lua: two statements on one line with only a space between a name and a name (`local client vim.fn.x()`, `local
  f err = g()`): an `=` or a `,` lost. Legal Lua, but code written so is not seen.

The `<grammar>-faults.scm` query files capture the nodes to look at (`@braced`, `@list`, `@element`); only those
meeting the checked byte range are looked at, so a check costs a few nodes, not a walk of the file.
"""
from __future__ import annotations

import tree_sitter

from .languages import captures_near, query

# A fault: (kind, False, start byte, end byte), shaped like spans.ErrorCounts' error spans.
Fault = tuple[str, bool, int, int]

# Go's semicolon rule (https://go.dev/ref/spec#Semicolons): the unnamed tokens after which a line break ends the
# statement; every named leaf (a name, a number, `true`, `nil`, ...) does too.
GO_LINE_ENDERS = {")", "]", "}", "++", "--", "break", "continue", "fallthrough", "return", '"', "`", "'"}
FAULT_CHECKS_BY_GRAMMAR = {"go", "javascript", "typescript", "tsx", "c", "cpp", "lua"}


def last_token(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.child_count:
        node = node.children[-1]
    return node


def ends_go_line(node: tree_sitter.Node) -> bool:
    """Would a line break right after `node` end the statement (Go's automatic semicolon)?"""
    token = last_token(node)
    return token.type in GO_LINE_ENDERS or (token.is_named and token.type != "comment")


def token_before(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The sibling before `node`, comments passed over."""
    previous = node.prev_sibling
    while previous is not None and previous.type == "comment":
        previous = previous.prev_sibling
    return previous


def broken_by_go_semicolon(node: tree_sitter.Node) -> bool:
    """`node` starts a line and the token before it ends the line above with Go's automatic semicolon."""
    previous = token_before(node)
    return (previous is not None and previous.end_point.row < node.start_point.row and ends_go_line(previous))


def go_faults(captures: dict[str, list[tree_sitter.Node]]) -> set[Fault]:
    faults = set()
    for header in captures.get("braced", []):
        # the body's `{`: a block's, or a switch's own
        opener = next((child for child in header.children if child.type in ("block", "{")), None)
        if opener is not None and broken_by_go_semicolon(opener):
            faults.add(("go: line break before {", False, token_before(opener).end_byte, opener.start_byte + 1))
    for items in captures.get("list", []):
        closer = items.children[-1] if items.child_count else None
        if closer is not None and closer.type in (")", "]", "}") and broken_by_go_semicolon(closer):
            faults.add(("go: line break before a list's closer without a comma", False,
                        token_before(closer).end_byte, closer.end_byte))
        for comma in items.children:   # comma-first style (`2\n, 3`): the line break before it ended the list
            if comma.type == "," and broken_by_go_semicolon(comma):
                faults.add(("go: line break before a comma", False, token_before(comma).end_byte, comma.end_byte))
    return faults


def script_faults(captures: dict[str, list[tree_sitter.Node]], data: bytes) -> set[Fault]:
    faults = set()
    for items in captures.get("list", []):
        previous = None   # the child before, comments passed over (kept as the walk goes: commented-out entries
        for child in items.children:   # by the hundred made token_before's walk back cubic)
            if child.type == "," and previous is not None and previous.type in (",", "(", "{"):
                faults.add(("js: comma with no entry before it", False, previous.start_byte, child.end_byte))
            if child.type != "comment":
                previous = child
    for element in captures.get("element", []):
        names = [tag.child_by_field_name("name") if tag is not None else None
                 for tag in (element.child_by_field_name("open_tag"), element.child_by_field_name("close_tag"))]
        if names[1] is not None and tag_name(names[0], data) != tag_name(names[1], data):
            faults.add(("jsx: closing tag of another element", False, names[1].start_byte, names[1].end_byte))
    return faults


def first_token(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.child_count:
        node = node.children[0]
    return node


def text_of(node: tree_sitter.Node | None, data: bytes) -> bytes:
    return b"" if node is None else data[node.start_byte:node.end_byte]


def declared_name(declarator: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The name a declarator declares (`n` of `n = strlen(s)`, `srand` of C++'s `srand(42)`), if it is a plain one."""
    while declarator is not None and declarator.type == "init_declarator":
        declarator = declarator.child_by_field_name("declarator")
    return declarator if declarator is not None and declarator.type == "identifier" else None


def c_faults(captures: dict[str, list[tree_sitter.Node]], data: bytes, grammar: str,
             file_reads_clean: bool) -> set[Fault]:
    faults = set()
    for declaration in captures.get("declaration", []):
        kind = declaration.child_by_field_name("type")
        if kind is None or kind.type != "type_identifier":
            continue
        for declarator in declaration.children_by_field_name("declarator"):
            name = declared_name(declarator)
            if name is not None and text_of(name, data) == text_of(kind, data):
                faults.add(("c: a statement read as a variable named like its type", False, kind.start_byte,
                            declaration.end_byte))
            parameters = declarator.child_by_field_name("parameters") if declarator.type == "function_declarator" \
                else None
            # (not in a file the C grammar reads with errors elsewhere: a C++ header's `Guard guard(lock);`)
            if grammar == "c" and file_reads_clean and parameters is not None \
                    and parameters.named_child_count and all(
                    parameter.type == "parameter_declaration" and parameter.named_child_count == 1
                    and parameter.named_children[0].type == "type_identifier"
                    for parameter in parameters.named_children):
                faults.add(("c: a call read as a function declaration", False, kind.start_byte, declaration.end_byte))
    return faults


def lua_faults(captures: dict[str, list[tree_sitter.Node]], low: int, high: int) -> set[Fault]:
    faults = set()
    for statements in captures.get("statements", []):
        children = [child for child in statements.named_children if child.type != "comment"]
        for first, second in zip(children, children[1:]):
            if first.end_byte >= low and second.start_byte <= high \
                    and first.end_point.row == second.start_point.row and first.next_sibling == second \
                    and last_token(first).type == "identifier" and first_token(second).type == "identifier":
                faults.add(("lua: two statements with only a space between two names", False, first.start_byte,
                            second.end_byte))
    return faults


def tag_name(name: tree_sitter.Node | None, data: bytes) -> bytes:
    """A JSX tag's name as its tokens spell it: `Foo . Bar` and `Foo/* c */.Bar` name `Foo.Bar`."""
    if name is None:
        return b""
    tokens, stack = [], [name]
    while stack:
        node = stack.pop()
        if node.type == "comment":
            continue
        if node.child_count:
            stack.extend(reversed(node.children))
        else:
            tokens.append(data[node.start_byte:node.end_byte].strip())
    return b"".join(tokens)


def faults_near(grammar: str, root: tree_sitter.Node, data: bytes, low: int, high: int) -> set[Fault]:
    """The faults in nodes that meet bytes [low, high] of the parsed `data` (a fill, or the cursor before it)."""
    if grammar not in FAULT_CHECKS_BY_GRAMMAR:
        return set()
    captures = captures_near(query(grammar, "faults"), root, low, max(high, low + 1))
    if grammar == "go":
        return go_faults(captures)
    if grammar in ("c", "cpp"):
        return c_faults(captures, data, grammar, not root.has_error)
    if grammar == "lua":
        return lua_faults(captures, low, high)
    return script_faults(captures, data)
