"""What prefix reuse saves per request as the context grows: a held-out function typed into its file, a request at
every Nth keystroke planned by infill/ as the server plans it, the engine run with reuse on and off.

    python -m bench.prefix_reuse [--context 192 1024] [--every 8] [--steps 4] [--device cpu|cuda]
                                 [--fast-path off|static|compiled] [--related MODULE ...]
                                 [--sdpa default|no-cudnn] [--json]

The embedded model's weights with its context budget raised (it was trained on 192-token prompts, so the longer
contexts are for timing only; its sliding window is 256 tokens, so 1,024 tokens are four windows). Every request
runs the same fixed number of denoising steps on one 32-token row, so only the encoder's work differs.

Each request starts from what the one before chose, as the server's requests do (infill.plan.ContextMemory: the
prefix's first line and the other-file snippets stay while they fit well). The run with reuse is made a second time
with every context cut afresh (`reuse_on_cut_afresh`), as before that rule, and once more on the kept contexts
(`reuse_on_again`): every encoder shape has then been seen once, so a gap between `reuse_on` and `reuse_on_again` is
a cost paid per new shape (on a GPU, for example, an attention backend that builds a plan per shape), not per token.
`--sdpa no-cudnn` keeps PyTorch's attention off its cuDNN backend, which builds a graph per shape, to test that.
`--related`: these modules' files are open beside it and lend snippets (infill/related.py).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import inspect
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.common import DEFAULT_FUNCTIONS, engine_or_exit, held_back
from engine import EngineConfig, InfillEngine
from engine.infill_engine import fresh_prefix_stats
from infill.pipeline import suffix_tokens_read, token_budget
from infill.plan import ContextMemory, make_plan
from infill.related import RelatedDocument


def open_beside(modules: list[str]) -> list[RelatedDocument]:
    documents = []
    for name in modules:
        path = inspect.getsourcefile(importlib.import_module(name))
        documents.append(RelatedDocument(path=Path(path).name, text=Path(path).read_text(), language_id="python"))
    return documents


def prompts_while_typing(engine: InfillEngine, spec: str, every: int, related: list[RelatedDocument] | None = None,
                         sticky: bool = True) -> tuple[list[tuple[str, str]], list[tuple]]:
    """(prefix, suffix) of a request at every `every`-th keystroke of the function typed into its file, and the
    snippets each used; with `related`, the snippets go before the prefix, kept from one request to the next as the
    server keeps them when `sticky`."""
    path, text, start, source = held_back(spec)
    document = text[:start] + text[start + len(source):]
    budget, count, _ = token_budget(engine)
    contexts, used, previous = [], [], ContextMemory()
    for typed in range(every, len(source) + 1, every):
        current = document[:start] + source[:typed] + document[start:]
        cursor = start + typed
        plan = make_plan(current, "inline", cursor, cursor, "python", path, 32, budget, count, invoked=True,
                         related=related, previous=previous if sticky else ContextMemory(),
                         suffix_tokens_read=suffix_tokens_read(engine))
        previous = ContextMemory.of(plan.details)
        contexts.append((plan.related + plan.context.prefix, plan.context.suffix))
        used.append(previous.related)
    return contexts, used


def run(engine: InfillEngine, contexts: list[tuple[str, str]]) -> dict:
    encode, total = [], []
    for prefix, suffix in contexts:
        result = engine.fill(prefix, suffix, lengths=[31], seed=0)
        encode.append(result.timings["encode_ms"])
        total.append(result.timings["encode_ms"] + result.timings["denoise_ms"])
    stats = engine.describe()["prefix_reuse"]
    return {"requests": len(contexts), "encode_ms_p50": round(statistics.median(encode), 1),
            "encode_ms_mean": round(statistics.mean(encode), 1),
            "request_ms_p50": round(statistics.median(total), 1),
            # inclusive: the p90 stays within the times measured (the default may land above the largest)
            "request_ms_p90": round(statistics.quantiles(total, n=10, method="inclusive")[-1] if len(total) > 1
                                    else total[0], 1),
            "prompt_tokens_mean": round(stats["prompt_tokens"] / max(1, len(contexts)), 1),
            "reused_share": round(stats["reused_tokens"] / max(1, stats["prompt_tokens"]), 3)}


def forget(engine: InfillEngine) -> InfillEngine:
    """The engine without its kept prompt and counts: each run starts cold."""
    engine.prefix_stats = fresh_prefix_stats()
    engine.prompt_cache, engine.cached_prompt = None, []
    if engine.static is not None:
        engine.static.prompt = []
    return engine


def moves(prefixes: list[str]) -> int:
    """Requests whose prompt text before the cursor does not begin the way the one before did (the prefix's first
    line, or a snippet before it, changed), so the engine had to encode it again."""
    return sum(not b.startswith(a[:min(len(a), 200)]) for a, b in zip(prefixes, prefixes[1:]))


def changes(used: list[tuple]) -> int:
    """Requests whose snippets (file, first line) differ from the request's before."""
    return sum(a != b for a, b in zip(used, used[1:]))


def attention_backends(choice: str):
    """The attention backends the runs may use: PyTorch's own choice, or every backend but cuDNN's."""
    if choice == "default":
        return contextlib.nullcontext()
    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=int, nargs="+", default=[192, 1024], help="prompt budgets in tokens")
    parser.add_argument("--every", type=int, default=8, help="a request every this many keystrokes")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps per request (fixed)")
    parser.add_argument("--function", default=DEFAULT_FUNCTIONS[0], help="module:function typed into its file")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fast-path", default="off", choices=["off", "static", "compiled"])
    parser.add_argument("--related", nargs="*", default=[], metavar="MODULE",
                        help="modules whose files are open beside it (other-file snippets)")
    parser.add_argument("--sdpa", default="default", choices=["default", "no-cudnn"],
                        help="attention backends: PyTorch's choice, or all but cuDNN's")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with attention_backends(args.sdpa):
        measure(args)


def measure(args) -> None:
    related = open_beside(args.related)

    base = engine_or_exit(EngineConfig(max_steps=args.steps, stop_entropy=0.0, fast_path=args.fast_path,
                                     device=args.device))
    rows = []
    for context in args.context:
        engines = {reuse: engine_or_exit(dataclasses.replace(base.config, reuse_prefix=reuse,
                                                           max_prompt_tokens=context), loaded=base.loaded)
                   for reuse in (False, True)}
        contexts, used = prompts_while_typing(engines[True], args.function, args.every, related)
        engines[True].fill(*contexts[0], lengths=[31])   # warm-up (allocations), then forget its counts
        engines[False].fill(*contexts[0], lengths=[31])
        started = time.perf_counter()
        off, on = run(forget(engines[False]), contexts), run(forget(engines[True]), contexts)
        # The context asked for, and what the engine reads (a static cache holds the sliding window at most).
        row = {"context_tokens": context, "engine_context_tokens": engines[True].prompt_budget,
               "reuse_off": off, "reuse_on": on,
               "request_speedup": round(off["request_ms_p50"] / on["request_ms_p50"], 2)}
        fresh, fresh_used = prompts_while_typing(engines[True], args.function, args.every, related, sticky=False)
        row["reuse_on_cut_afresh"] = run(forget(engines[True]), fresh)
        row["reuse_on_again"] = run(forget(engines[True]), contexts)
        row["prefix_starts_moved"] = {"kept": moves([prefix for prefix, _ in contexts]),
                                      "cut_afresh": moves([prefix for prefix, _ in fresh])}
        if related:
            row["snippets_changed"] = {"kept": changes(used), "picked_afresh": changes(fresh_used)}
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
    device = base.device
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "fast_path": args.fast_path,
              "sdpa": args.sdpa,
              "device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)",
              "function": args.function, "every": args.every, "steps": args.steps, "rows": rows}
    if args.json:
        print(json.dumps(result))
        return
    for row in rows:
        print(f"context {row['context_tokens']:>5} (read {row['engine_context_tokens']}): reuse off {row['reuse_off']}, on {row['reuse_on']}, "
              f"request p50 {row['request_speedup']}x faster with reuse")
        print(f"      contexts cut afresh at every request: {row['reuse_on_cut_afresh']}; prompt heads moved "
              f"{row['prefix_starts_moved']}" + (f"; snippets changed {row['snippets_changed']}" if related else ""))
        print(f"      the kept contexts again (every shape seen once): {row['reuse_on_again']}")


if __name__ == "__main__":
    main()
