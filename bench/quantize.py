"""Weight-only quantization (engine/quantize.py): the memory it saves and what it costs in quality and time.

    python -m bench.quantize [--model DIR] [--fills 40] [--threads 1] [--json]

1. The google/diffusiongemma-26B-A4B-it shape, built on the meta device: bytes of its weights as bf16, int8 and
   int4, counted from the shapes (nothing is allocated), split into the routed experts, the vision tower (never run,
   but loaded) and the rest of the text model.
2. The embedded model (or --model) on this machine's CPU, in each format: the bytes its weights take in memory; the
   held-out canvas cross-entropy on click's source (held out of training) from a fully and a half noised canvas
   (training.train.evaluate) and how often its top guess at half (uniform) noise is the float model's; of
   `--fills` lines cut out of click/core.py, how many the quantized model fills with exactly the float model's
   text (same seed, same length plan); and the median time of a fill.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import engine_or_exit
from engine import EngineConfig, InfillEngine
from engine.configs import BOS_ID, PAD_ID, diffusiongemma_26b_a4b_config
from engine.prompt import encode_text
from engine.quantize import WEIGHT_FORMATS, quantize_model

HELD_OUT_PACKAGE = "click"   # held out of the embedded model's training data (../shared/holdout.txt)


def part_of(name: str) -> str:
    if "vision" in name:
        return "vision_tower"
    return "routed_experts" if ".experts." in name else "rest_of_text_model"


def bytes_by_part(model: torch.nn.Module) -> dict[str, int]:
    parts = dict.fromkeys(("routed_experts", "rest_of_text_model", "vision_tower"), 0)
    named = list(model.named_parameters()) + list(model.named_buffers())   # each shared tensor once
    for name, tensor in named:
        parts[part_of(name)] += tensor.numel() * tensor.element_size()
    return parts


def shape_26b_a4b() -> dict:
    sizes = {}
    for weights in WEIGHT_FORMATS:
        from transformers import DiffusionGemmaForBlockDiffusion

        with torch.device("meta"):
            model = DiffusionGemmaForBlockDiffusion(diffusiongemma_26b_a4b_config()).to(torch.bfloat16)
        quantize_model(model, weights, torch.device("meta"))
        parts = bytes_by_part(model)
        sizes[weights] = {name: round(value / 1e9, 2) for name, value in parts.items()}
        sizes[weights]["total"] = round(sum(parts.values()) / 1e9, 2)
    return sizes


def held_out_sources() -> list[Path]:
    import importlib

    package = Path(importlib.import_module(HELD_OUT_PACKAGE).__file__).parent
    return sorted(package.glob("*.py"))


@torch.no_grad()
def half_noise_guesses(model, val: list, vocab: int) -> torch.Tensor:
    """The decoder's top guess at every real (not padding) canvas position of each held-out batch at half noise,
    with the same noise for every format. (positions,)"""
    from training.train import canvas_inputs, encode_prompts, noise_canvas

    guesses, gen = [], torch.Generator().manual_seed(1234)
    for prompts, clean in val:
        cache, _, keep = encode_prompts(model, prompts)   # a shorter prompt comes left-padded: its pads masked
        noisy, _ = noise_canvas(clean, "uniform", vocab, None, gen, noise_level=0.5)
        logits = model(decoder_input_ids=noisy, **canvas_inputs(model, cache, keep, clean.shape[1])).logits
        guesses.append(logits.argmax(-1)[clean != PAD_ID])                                    # (real positions,)
    return torch.cat(guesses)


def token_stream(tokenizer, files: list[Path]) -> np.ndarray:
    """The files' tokens, each file after a <bos>, as the training shards hold them (text that spells "<eos>" stays
    text). (tokens,)"""
    ids = []
    for path in files:
        ids += [BOS_ID] + encode_text(tokenizer, path.read_text())
    return np.array(ids, dtype=np.int64)


def held_out_ce(engine: InfillEngine, files: list[Path], batches: int) -> tuple[dict, torch.Tensor]:
    """Cross-entropies (training.train.evaluate) and the top guesses of half_noise_guesses."""
    from training.common import unigram_logp
    from training.fim import FimSampler, diffusion_batch, fim_token_ids, newline_token_ids
    from training.train import evaluate

    tokenizer, model = engine.tokenizer, engine.model
    stream = token_stream(tokenizer, files)
    vocab = model.config.text_config.vocab_size
    sampler = FimSampler(stream, newline_token_ids(tokenizer), engine.max_prompt_tokens,
                         engine.loaded.canvas_length, seed=99, tokenizer=tokenizer)
    val = [diffusion_batch(sampler, fim_token_ids(tokenizer), 16) for _ in range(batches)]
    scores = evaluate(model, val, noise=engine.config.noise, vocab=vocab, mask_id=engine.mask_id,
                      unigram=unigram_logp(stream, vocab), device=engine.device)
    model.eval()   # evaluate() leaves the model in training mode
    scores = {"ce_full_noise": round(scores["val_ce_full_noise"], 4),
              "ce_half_noise": round(scores["val_ce_half_noise"], 4)}
    return scores, half_noise_guesses(model, val, vocab)


def fill_cases(count: int) -> list[tuple[str, str]]:
    """(prefix, suffix) around `count` non-trivial lines of click/core.py, picked with a fixed seed."""
    text = (held_out_sources()[0].parent / "core.py").read_text()
    lines = text.splitlines(keepends=True)
    starts = np.cumsum([0] + [len(line) for line in lines])
    candidates = [i for i, line in enumerate(lines) if len(line.strip()) >= 8 and not line.strip().startswith("#")]
    picked = sorted(random.Random(0).sample(candidates, count))
    cases = []
    for i in picked:
        indent = len(lines[i]) - len(lines[i].lstrip())
        cases.append((text[:starts[i] + indent], text[starts[i + 1] - 1:]))   # the suffix keeps the line's "\n"
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: the embedded model)")
    parser.add_argument("--fills", type=int, default=40)
    parser.add_argument("--batches", type=int, default=8, help="held-out batches of 16 for the cross-entropy")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    report = {"shape_26b_a4b_gb": shape_26b_a4b(), "embedded": {}}
    files, cases = held_out_sources(), fill_cases(args.fills)
    float_texts = float_guesses = None
    for weights in WEIGHT_FORMATS:
        engine = engine_or_exit(EngineConfig(model=args.model, device="cpu", threads=args.threads, quantize=weights,
                                           reuse_prefix=False))
        scores, guesses = held_out_ce(engine, files, args.batches)
        float_guesses = float_guesses if float_guesses is not None else guesses
        row = {"weight_mb": round(engine.describe()["weight_bytes"] / 1e6, 2), **scores,
               "same_top_guess_as_float": round((guesses == float_guesses).float().mean().item(), 4)}
        texts, times = [], []
        for prefix, suffix in cases:
            started = time.perf_counter()
            best = engine.fill(prefix, suffix, max_new_tokens=32, lengths=[16, 32], seed=0).best
            times.append((time.perf_counter() - started) * 1e3)
            texts.append(best.text if best else "")
        float_texts = float_texts or texts
        row["same_text_as_float"] = f"{sum(a == b for a, b in zip(texts, float_texts))}/{len(cases)}"
        row["fill_ms_median"] = round(statistics.median(times), 1)
        report["embedded"][weights] = row
        if not args.json:
            print(weights, json.dumps(row), flush=True)
    report.update(device="cpu", threads=args.threads, torch=torch.__version__,
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(json.dumps(report) if args.json else json.dumps(report["shape_26b_a4b_gb"], indent=1))


if __name__ == "__main__":
    main()
