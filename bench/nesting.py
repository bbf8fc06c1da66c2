"""The span finder on code nested thousands of levels deep at the cursor (bench/RESULTS.md, sessions 47 and 69).

    python -m bench.nesting            # this checkout
    python -m bench.nesting /tmp/old   # another one (a git worktree of an older commit)
"""
import sys
import time

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
from infill.spans import find_span  # noqa: E402  (from the checkout named on the command line)

for levels in (10_000, 30_000):
    text = "x = " + "(" * levels + "1" + ")" * levels + "\n"
    started = time.perf_counter()
    find_span("python", text, 4 + levels, 4 + levels)
    print(f"{levels} levels: {time.perf_counter() - started:.2f} s")

# The cursor on a blank line below a Go chain of minus signs 20,000 deep (session 69): the nesting at the cursor is
# shallow, but the scan for an open literal walks up from the last code character.
text = "package m\n\nvar y = " + "-" * 20_000 + "x\n\n"
started = time.perf_counter()
find_span("go", text, len(text), len(text))
print(f"blank line below 20,000 levels: {time.perf_counter() - started:.2f} s")
