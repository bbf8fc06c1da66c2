"""Fill held-out lines with a trained model through its engine: the quick, HumanEval-free check used to choose
between the uniform- and masked-noise variants (and to put the AR twin beside them).

Examples are single whole lines cut from the held-out shard stream (files no training run saw), with up to
`--context` tokens of prefix and 32 of suffix, decoded back to text. Reported: exact match of the line (ignoring
surrounding whitespace), mean latency and generated tokens per second.

    python -m training.heldout_eval --model training/runs/gpu/uniform/model --count 100
    python -m training.heldout_eval --engine ar --model training/runs/gpu/ar/model --count 100
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engine.types import EngineConfig
from training.fim import FimSampler, newline_token_ids
from training.shards import load_many


LIMITS = [8, 16, 32]                 # the diffusion engine's length limits
LONGEST_LINE = LIMITS[-1] - 1        # the most text a 32-token canvas holds before its <eos>


def heldout_lines(tokenizer, shard_folders: list[Path], count: int, context: int, seed: int = 7,
                  tokenizer_dir: Path | None = None) -> list[dict]:
    """`tokenizer_dir`: the model's folder; shards of another tokenizer are refused (decoded with this one they are
    other text, with no error)."""
    _, val, _ = load_many(shard_folders, tokenizer_dir)
    # Lines of at most LONGEST_LINE tokens, and both engines capped at that many (evaluate): a line only one of
    # them can write would count against the other.
    sampler = FimSampler(val, newline_token_ids(tokenizer), context, LONGEST_LINE + 1, seed, max_suffix=32,
                         mix=(1.0, 0.0, 0.0, 0.0), tokenizer=tokenizer)
    examples = []
    while len(examples) < count:
        ex = sampler.example()
        middle = tokenizer.decode(ex.middle)
        if len(middle.strip()) < 4:  # blank or trivial lines say nothing about a model
            continue
        # the prefix stops at its file's start (training.fim), as the suffix stops at the file's end
        examples.append({"prefix": tokenizer.decode(ex.prefix), "middle": middle,
                         "suffix": tokenizer.decode(ex.suffix)})
    return examples


def load_engine(kind: str, model: str, device: str, threads: int | None, fast_path: str = "off"):
    # noise "auto" (EngineConfig's default): the engine reads it from the checkpoint's diffusion_infill.json.
    # "off" by default: the engine's "auto" compiles the step with CUDA graphs on a GPU, minutes before a first fill
    config = EngineConfig(model=model, device=device, threads=threads, fast_path=fast_path)
    if kind == "ar":
        from engine.ar_engine import AREngine
        return AREngine(config)
    from engine.infill_engine import InfillEngine
    return InfillEngine(config)


def evaluate(engine, examples: list[dict], lengths: list[int] | None = None, progress=None) -> dict:
    """Exact match over `examples`, in order; `progress(report)` gets the report so far after each fill (a run cut
    at a deadline keeps what it scored: `hits` says which of the first fills matched)."""
    hits, total_ms, tokens = [], 0.0, 0
    report = {}
    for ex in examples:
        started = time.perf_counter()
        result = engine.fill(ex["prefix"], ex["suffix"], max_new_tokens=LONGEST_LINE, lengths=lengths, seed=0)
        total_ms += (time.perf_counter() - started) * 1e3
        best = result.best
        hits.append(int(best is not None and best.text.strip() == ex["middle"].strip()))
        tokens += best.length if best is not None else 0
        n = len(hits)
        report = {"examples": n, "exact_match": sum(hits) / n, "mean_latency_ms": total_ms / n,
                  "tokens_per_s": tokens / (total_ms / 1e3) if total_ms else 0.0, "hits": list(hits),
                  "complete": n == len(examples)}
        if progress is not None:
            progress(report)
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--engine", choices=["diffusion", "ar"], default="diffusion")
    parser.add_argument("--shards", type=Path, nargs="+", default=[Path("training/data/shards")])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--context", type=int, default=192)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--fast-path", choices=["off", "static", "compiled", "auto"], default="off",
                        help="the diffusion engine's decoder step (EngineConfig.fast_path); compiled costs minutes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    engine = load_engine(args.engine, args.model, args.device, args.threads, args.fast_path)
    examples = heldout_lines(engine.tokenizer, args.shards, args.count, min(args.context, engine.max_prompt_tokens),
                             tokenizer_dir=Path(args.model))
    lengths = LIMITS if args.engine == "diffusion" else None

    def write(report: dict) -> None:   # after every fill, whole or not at all: a run cut at a deadline keeps its score
        if args.out:
            partial = args.out.with_name(args.out.name + ".part")
            partial.write_text(json.dumps({"model": args.model, "engine": args.engine, **report}, indent=1) + "\n")
            partial.replace(args.out)

    report = {"model": args.model, "engine": args.engine, **evaluate(engine, examples, lengths, progress=write)}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
