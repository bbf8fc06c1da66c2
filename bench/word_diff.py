"""The word diff of infill/edits.py on a line of one repeated word cut by the answer: a line of `]` (n of them)
becomes two lines with a call between (bench/RESULTS.md, session 69).

    python -m bench.word_diff            # this checkout
    python -m bench.word_diff /tmp/old   # another one (a git worktree of an older commit)
"""
import sys
import time

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
from infill.edits import minimal_edits  # noqa: E402  (from the checkout named on the command line)

for n in (2_000, 4_000, 6_000):
    old = "]" * n + "\n"
    new = "]" * (n // 2) + "bar()\n" + "]" * (n - n // 2) + "\n"
    started = time.perf_counter()
    edits = minimal_edits(old, new)
    print(f"{n} ]: {time.perf_counter() - started:.3f} s, {len(edits)} edit(s) replacing "
          f"{sum(end - start for start, end, _ in edits)} characters")
