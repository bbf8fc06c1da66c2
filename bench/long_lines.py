"""A minified one-line file: the time one inline request spends outside the model, and finding LSP positions on it.

    python -m bench.long_lines [--calls 120000] [--steps 4] [--json]

The text is `var a=f0(x0),f1(x1),...;` on one line (1.8 MB with the default 120,000 calls), a JavaScript document.
Reported: `run_infill` at the end and in the middle of the line with the embedded model (its `plan_ms`, `clean_ms`
and total; the engine runs `--steps` denoising steps), and `Snapshot.offset_of` / `position_of` for a UTF-16 client
at the line's middle (what every request and edit costs the server before any model work). And the file open in
another tab: the planning of a request in a small JavaScript file, alone and with a one-line bundle that shares its
names open as a related document (`related_plan_ms`; the bundle's window is too long for the budget).
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

from lsprotocol import types
from pygls.workspace import PositionCodec

from engine.infill_engine import InfillEngine
from engine.types import EngineConfig
from infill import InfillRequest, RelatedDocument, run_infill
from lsp_server.positions import Snapshot


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e3)
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=120_000)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    text = "var a=" + ",".join(f"f{i}(x{i})" for i in range(args.calls)) + ";"
    engine = InfillEngine(EngineConfig(max_steps=args.steps))
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": platform.machine(), "chars": len(text), "steps": args.steps}
    for name, offset in (("end", len(text)), ("middle", len(text) // 2)):
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            answer = run_infill(InfillRequest(text, "inline", offset, offset, "javascript"), engine)
            timings = answer.details.get("timings", {})
            runs.append({"total_ms": (time.perf_counter() - started) * 1e3, "plan_ms": timings.get("plan_ms", 0),
                         "clean_ms": timings.get("clean_ms", 0), "engine_ms": timings.get("engine_ms", 0)})
        result[f"infill_{name}"] = {key: round(statistics.median(r[key] for r in runs), 1) for key in runs[0]}

    def fresh() -> Snapshot:   # every request takes its own snapshot of the document
        return Snapshot(uri="file:///long.js", source=text, path="/long.js",
                        codec=PositionCodec(types.PositionEncodingKind.Utf16))
    middle = types.Position(line=0, character=len(text) // 2)
    result["offset_of_ms"] = median_ms(lambda: fresh().offset_of(middle), args.repeats)
    result["position_of_ms"] = median_ms(lambda: fresh().position_of(len(text) // 2), args.repeats)
    small = "function total(items, price) {\n  let subtotal = sum(items, price);\n  return subtotal;\n}\n\n"
    bundle = "".join("function sum(items,price){return items.reduce(function(subtotal,x){return subtotal+x*price},0)};"
                     for _ in range(args.calls // 30))   # one line, names shared with the small file: a snippet
    minified = [RelatedDocument("vendor/bundle.min.js", bundle, "javascript")]

    def plan_ms(related: list[RelatedDocument]) -> float:
        request = InfillRequest(small, "inline", len(small), len(small), "javascript", related=related)
        return statistics.median(run_infill(request, engine).details["timings"]["plan_ms"]
                                 for _ in range(args.repeats))
    result["related_plan_ms"] = {"alone": plan_ms([]), "with_minified_file_open": plan_ms(minified)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
