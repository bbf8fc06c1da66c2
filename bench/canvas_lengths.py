"""How well a checkpoint denoises on each canvas length the engine may trim its canvas to.

    python -m bench.canvas_lengths [--model DIR] [--batches 40] [--threads 2] [--json]

The engine runs a fill on the smallest canvas bucket that holds it (16, 32, ...). A model trained on one canvas
length has never seen a shorter one. This takes held-out rows (click's source, held out of the embedded model's
training data) whose middle and <eos> fit a shorter bucket, and scores the same rows on the model's full canvas and
on that bucket: the canvas cross-entropy of the first denoising step (full noise) and at half noise, over the
middle and its <eos>. The unigram cross-entropy on the same tokens is the floor a model must beat.
"""
from __future__ import annotations

import argparse
import json

import torch

from bench.quantize import held_out_sources, token_stream
from bench.common import engine_or_exit
from engine import EngineConfig, InfillEngine
from engine.configs import PAD_ID
from engine.infill_engine import CANVAS_BUCKETS


@torch.no_grad()
def scores(engine: InfillEngine, batches: int) -> list[dict]:
    from training.common import unigram_logp
    from training.fim import FimSampler, diffusion_batch, fim_token_ids, newline_token_ids
    from training.train import diffusion_loss

    tokenizer, model = engine.tokenizer, engine.model
    stream = token_stream(tokenizer, held_out_sources())
    vocab = model.config.text_config.vocab_size
    unigram = unigram_logp(stream, vocab)
    full = engine.loaded.canvas_length
    sampler = FimSampler(stream, newline_token_ids(tokenizer), engine.max_prompt_tokens, full, seed=99,
                         tokenizer=tokenizer)
    sums: dict[tuple[int, int, float], list[float]] = {}
    for b in range(batches):
        prompts, clean = diffusion_batch(sampler, fim_token_ids(tokenizer), 32)   # (32, P), (32, full)
        for size in (n for n in CANVAS_BUCKETS if n < full):
            fits = (clean[:, size:] == PAD_ID).all(1)   # rows whose middle and <eos> fit the bucket
            for canvas in (full, size):
                rows = clean[fits, :canvas]
                keep = rows != PAD_ID
                for level in (1.0, 0.5):
                    _, _, token_ce, _, _ = diffusion_loss(
                        model, prompts[fits], rows, noise=engine.config.noise, vocab=vocab, mask_id=engine.mask_id,
                        gen=torch.Generator().manual_seed(b), noise_level=level, self_condition=False)
                    total = sums.setdefault((size, canvas, level), [0.0, 0.0, 0])
                    total[0] += token_ce[keep].sum().item()
                    total[1] += -unigram[rows][keep].sum().item()
                    total[2] += int(keep.sum())
    return [{"rows_fitting": size, "canvas": canvas, "noise": level, "ce": round(ce / n, 3),
             "ce_unigram": round(uni / n, 3), "tokens": n}
            for (size, canvas, level), (ce, uni, n) in sorted(sums.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--batches", type=int, default=40, help="batches of 32 held-out rows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    config = EngineConfig(threads=args.threads, fast_path="off", **({"model": args.model} if args.model else {}))
    engine = engine_or_exit(config)
    rows = scores(engine, args.batches)
    for row in rows:
        print(json.dumps(row) if args.json else
              f"rows fitting {row['rows_fitting']:>3}, canvas {row['canvas']:>3}, noise {row['noise']}: "
              f"CE {row['ce']:.3f} (unigram {row['ce_unigram']:.3f}) over {row['tokens']} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
