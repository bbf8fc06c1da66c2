"""The time an inline request spends outside the model on long real files: planning (tree-sitter span, context cut)
and cleaning (filters, the parse check of every candidate, Python's block and compile check).

    python -m bench.pipeline_overhead [--module click.core --module click.termui] [--requests 40] [--steps 4] [--json]

Each request puts the cursor at the end of a line drawn with a fixed seed and asks for an explicit inline completion
(so comments and strings are completed too) from the embedded model running `--steps` denoising steps; the model's
own time is left out. On a GPU, where a fill takes a few milliseconds, this is what stays on the CPU.

The embedded model writes noise, which is the slow case for the parse check (an unclosed quote makes tree-sitter
re-read the rest of the file). `--oracle` instead cuts the code of a drawn line after its indentation, puts the
cursor there and offers that code back as the only candidate: what a model that writes the right line costs
(drawn from lines with code only).
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import platform
import random
import statistics
from pathlib import Path

from bench.common import OneCandidate, engine_or_exit
from engine.types import EngineConfig
from infill import InfillRequest, run_infill

DEFAULT_MODULES = ("click.core", "click.termui")   # click is held out of the model's training data


def line_ends(text: str) -> list[int]:
    ends, position = [], 0
    for line in text.split("\n"):
        ends.append(position + len(line))
        position += len(line) + 1
    return ends


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    # (as typing.py: interpolated, so a small run's p90 is never below its median)
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[-1] if len(ordered) > 1 else ordered[0]
    return {"median": round(statistics.median(ordered), 1), "p90": round(p90, 1), "max": round(ordered[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", help="a module whose source file is completed in")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oracle", action="store_true", help="offer the cut line's own code instead of the model's")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    engine = None if args.oracle else engine_or_exit(EngineConfig(max_steps=args.steps))
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": platform.machine(), "candidates": "oracle" if args.oracle else "embedded model",
              "steps": None if args.oracle else args.steps, "requests": args.requests, "files": {}}
    for name in args.module or DEFAULT_MODULES:
        path = importlib.import_module(name).__file__
        text = Path(path).read_text()
        rng = random.Random(args.seed)
        ends = line_ends(text)
        lines = len(ends)
        if args.oracle:   # a blank line has no code to offer back: it would time an empty answer
            ends = [end for end in ends if text[text.rfind("\n", 0, end) + 1:end].strip()]
        plan, clean, candidates, answered, unchanged = [], [], 0, 0, 0
        for request in range(args.requests + 1):   # the first one warms up (grammar, parser) and is not counted
            document, offset, model = text, rng.choice(ends), engine
            if args.oracle:
                start = text.rfind("\n", 0, offset) + 1
                start += len(text[start:offset]) - len(text[start:offset].lstrip())
                document, model = text[:start] + text[offset:], OneCandidate(text[start:offset])
                offset = start
            answer = run_infill(InfillRequest(document, "inline", offset, offset, "python", invoked=True), model)
            if request == 0:
                continue
            timings = answer.details.get("timings", {})
            plan.append(timings.get("plan_ms", 0.0))
            clean.append(timings.get("clean_ms", 0.0))
            candidates += len(answer.details.get("candidates") or [])
            answered += bool(answer.text)
            unchanged += args.oracle and bool(answer.text) and answer.text == model.answer
        result["files"][name] = {"lines": lines, "chars": len(text), "plan_ms": summary(plan),
                                 "clean_ms": summary(clean), "candidates_per_request": candidates / args.requests,
                                 "answered": answered, **({"offered_back_unchanged": unchanged} if args.oracle else {})}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
