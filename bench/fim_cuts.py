"""What cutting training examples at characters costs and gives, against cuts between tokens.

    python -m bench.fim_cuts [--model DIR] [--examples 5000] [--json]

Builds the token stream of held-out source (click, as bench.canvas_lengths) with a checkpoint's tokenizer and draws
the same number of examples from training.fim.FimSampler twice: without a tokenizer (cuts between tokens) and with
one (cuts at characters, pieces tokenized apart). Reports milliseconds an example, the share cut at characters, and
how line examples start: after the full indentation (where an editor's cursor is after auto-indent), at column 0, or
with the prefix holding all but one of the indentation's spaces (the token cut of a byte-level BPE).
"""
from __future__ import annotations

import argparse
import json
import time

from bench.quantize import held_out_sources, token_stream
from engine.loading import DEFAULT_MODEL_DIR


def line_starts(decode, examples) -> dict:
    """Shares of line and lines examples by where the middle starts."""
    counts = {"after_indentation": 0, "column_0": 0, "inside_indentation": 0, "other": 0}
    lines = [ex for ex in examples if ex.kind in ("line", "lines")]
    for ex in lines:
        prefix, middle = decode(ex.prefix), decode(ex.middle)
        last = prefix.rsplit("\n", 1)[-1]
        if "\n" in prefix and last == "":
            counts["column_0"] += 1
        elif last.strip() == "" and middle[:1].isspace():
            counts["inside_indentation"] += 1
        elif last.strip() == "":
            counts["after_indentation"] += 1
        else:
            counts["other"] += 1
    return {k: round(v / max(1, len(lines)), 3) for k, v in counts.items()}


def measure(model: str, count: int) -> dict:
    from transformers import AutoTokenizer

    from training.fim import FimSampler, newline_token_ids

    tokenizer = AutoTokenizer.from_pretrained(model)
    stream = token_stream(tokenizer, held_out_sources())
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    report = {"model": str(model), "stream_tokens": int(len(stream)), "examples": count}
    for name, tok in (("token_cuts", None), ("character_cuts", tokenizer)):
        sampler = FimSampler(stream, newline_token_ids(tokenizer), 256, 64, seed=0, tokenizer=tok)
        started = time.perf_counter()
        examples = [sampler.example() for _ in range(count)]
        report[name] = {"ms_per_example": round((time.perf_counter() - started) * 1000 / count, 4),
                        "share_at_characters": round(sum(ex.at_characters for ex in examples) / count, 3),
                        "line_middle_starts": line_starts(decode, examples)}
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.model, args.examples)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
