"""Whether a fill of indented whole lines comes back at the selection's depth, without a model.

Blocks of 2-6 non-blank whole lines whose first line is indented are cut out of a file, and the text that was there
is offered back as the only candidate of a fill (mode "fill", the selection starting at column 0) written the ways
a model writes a block there:
- relative: dedented as a whole (the block as if it started at column 0);
- absolute: only the first line's indentation left out (the later lines at the file's own depth);
- as-is: exactly as it was.
Counted: the fills that leave the file exactly as it was.

    python -m bench.block_indentation [--blocks 60] [--seed 0] [--json]

The files: click's core.py (Python, held out of training) and tests/data/languages (Java, JavaScript, Go, C++, C,
Rust), the Neovim plugin's Lua. Seeded, so two commits can be compared on the same blocks.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import textwrap
import time
from pathlib import Path

from bench.common import OneCandidate
from infill import InfillRequest, run_infill

REPO = Path(__file__).resolve().parent.parent
LANGUAGE_FILES = {"java": "tests/data/languages/LruCache.java", "javascript": "tests/data/languages/debounce.js",
                  "go": "tests/data/languages/inventory.go", "cpp": "tests/data/languages/matrix.cpp",
                  "c": "tests/data/languages/ring.c", "rust": "tests/data/languages/tokens.rs",
                  "lua": "editors/nvim/lua/diffusion_infill/init.lua"}
WRITTEN = {"relative": textwrap.dedent, "absolute": lambda block: block.lstrip(" \t"), "as-is": lambda block: block}


def blocks(text: str, count: int, seed: int) -> list[tuple[int, int]]:
    """(start, end) offsets of up to `count` blocks of whole lines, the first indented, none blank."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    rng, found = random.Random(seed), []
    for _ in range(count * 20):
        if len(found) == count:
            break
        i, n = rng.randrange(len(lines)), rng.randint(2, 6)
        block = lines[i:i + n]
        if (len(block) == n and all(line.strip() for line in block) and block[0][:1] in " \t"
                and (starts[i], starts[i + n]) not in found):   # (a block drawn twice counted twice)
            found.append((starts[i], starts[i + n]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import click

    files = {"python": Path(click.__file__).parent / "core.py",
             **{language: REPO / path for language, path in LANGUAGE_FILES.items()}}
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
              "blocks": args.blocks, "seed": args.seed, "kept": {}}
    for language, path in files.items():
        text = path.read_text()
        cut = blocks(text, args.blocks, args.seed)
        report["kept"][language] = {}
        for written, rewrite in WRITTEN.items():
            kept = 0
            for start, end in cut:
                request = InfillRequest(text=text, mode="fill", start=start, end=end, language_id=language)
                result = run_infill(request, OneCandidate(rewrite(text[start:end]), "the cut block"))
                kept += text[:result.start] + result.text + text[result.end:] == text
            report["kept"][language][written] = f"{kept}/{len(cut)}"
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{'language':<11}" + "".join(f"{written:>10}" for written in WRITTEN))
    for language, kept in report["kept"].items():
        print(f"{language:<11}" + "".join(f"{kept[written]:>10}" for written in WRITTEN))


if __name__ == "__main__":
    main()
