"""The span finder and a candidate's error count next to a line tree-sitter reads as one wide ERROR node (60,000
`[` in a row: the parser's recovery puts each in the ERROR as a child of its own), with the cursor on the line above.

    python -m bench.wide_errors            # this checkout
    python -m bench.wide_errors /tmp/old   # another one (a git worktree of an older commit)
"""
import sys
import time

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
from infill.spans import errors_around, find_span  # noqa: E402  (from the checkout named on the command line)

for grammar, head, fill in (("typescript", "const a = 1;\n\nlet x = ", "let b = 2;"),
                            ("go", "package m\n\nvar a = 1\n\nvar x = ", "var b = 2")):
    for brackets in (20_000, 60_000):
        text = head + "[" * brackets + "\n"
        cursor = text.rindex("\n\n") + 1
        started = time.perf_counter()
        find_span(grammar, text, cursor, cursor)
        span_s = time.perf_counter() - started
        started = time.perf_counter()
        errors_around(grammar, text[:cursor] + fill + text[cursor:], cursor, cursor + len(fill))
        print(f"{grammar} {brackets} brackets: span {span_s:.2f} s, errors {time.perf_counter() - started:.2f} s")
