"""Fill middles cut from held-out files with the trained model, to see what it writes.

    python -m training.samples --out training/samples.md
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

from engine import EngineConfig, InfillEngine


def held_out_files(corpus: Path) -> list[dict]:
    """The same ~2% of files training/train.py kept out (by path hash)."""
    files = []
    for line in open(corpus):
        rec = json.loads(line)
        if int(hashlib.sha1((rec["dist"] + rec["path"]).encode()).hexdigest(), 16) % 50 == 0:
            files.append(rec)
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=Path("training/data/corpus.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("training/samples.md"))
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    engine = InfillEngine(EngineConfig(model=args.model))
    rng = random.Random(0)
    files = [f for f in held_out_files(args.corpus) if f["text"].count("\n") > 30]
    parts = ["# Samples from held-out files\n",
             "Each sample cuts one line out of a held-out file, keeps the 12 lines before and 4 after as context, "
             "and lets the model fill the line (`python -m training.samples`).\n"]
    for rec in rng.sample(files, args.count):
        lines = rec["text"].splitlines(keepends=True)
        candidates = [i for i in range(12, len(lines) - 4) if len(lines[i].strip()) > 10]
        i = rng.choice(candidates)
        prefix, truth, suffix = "".join(lines[i - 12:i]), lines[i], "".join(lines[i + 1:i + 5])
        result = engine.fill(prefix, suffix, lengths=[8, 16, 32], seed=0)
        parts.append(f"## {rec['dist']}: {rec['path']} line {i + 1}\n")
        parts.append("```python\n" + prefix[-400:] + "```\n")
        parts.append(f"- original: `{truth.rstrip()}`\n- model:    `{result.best.text.rstrip()}`\n"
                     f"- {result.reason}; {result.timings['total_ms']:.0f} ms\n")
    args.out.write_text("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
