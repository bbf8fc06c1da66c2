"""Where one denoising step's time goes: torch.profiler over the plain-path decoder forward (the same transformers
code our loop and transformers' `generate` both call), random weights of the embedded model's shape.

    python -m bench.step_profile [--canvas 32] [--prompt-tokens 128] [--steps 10] [--threads 1] [--json]

Prints the share of CPU time of the top operators and the matmul shapes that cost the most.
"""
from __future__ import annotations

import argparse
import datetime
import json

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import DynamicCache

from bench.engine import build_config
from engine.compat import with_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canvas", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    config = build_config("small", args.canvas)
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    vocab = config.text_config.vocab_size
    prompt = torch.randint(3, vocab, (1, args.prompt_tokens))
    canvas = torch.randint(3, vocab, (1, args.canvas))                          # (B, canvas)
    positions = torch.arange(args.prompt_tokens, args.prompt_tokens + args.canvas).unsqueeze(0)
    with torch.inference_mode():
        cache = DynamicCache(config=config.text_config)
        model.model.encoder(input_ids=prompt, **with_cache(model, cache),
                            position_ids=torch.arange(args.prompt_tokens).unsqueeze(0))
        logits = None

        def step():
            nonlocal logits
            logits = model(**with_cache(model, cache), decoder_input_ids=canvas, decoder_position_ids=positions,
                           self_conditioning_logits=logits).logits               # (B, canvas, vocab)
        for _ in range(3):
            step()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(args.steps):
                step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    shapes = sorted((e for e in prof.key_averages(group_by_input_shape=True) if e.key == "aten::mm"),
                    key=lambda e: e.self_cpu_time_total, reverse=True)[:5]
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "canvas": args.canvas, "prompt_tokens": args.prompt_tokens, "threads": args.threads,
        "ms_per_step": round(total / 1e3 / args.steps, 2),
        "share": {e.key: round(e.self_cpu_time_total / total, 3) for e in top},
        "matmuls_ms_per_step": {str(e.input_shapes[:2]): round(e.self_cpu_time_total / 1e3 / args.steps, 2)
                                for e in shapes},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
