"""Where one denoising step's time goes: torch.profiler over the plain-path decoder forward (the same transformers
code our loop and transformers' `generate` both call), random weights of the embedded model's shape by default.

    python -m bench.step_profile [--canvas 32] [--prompt-tokens 128] [--steps 10] [--threads 1] [--json]
        [--experts grouped_mm|eager|batched_mm]
    python3 -m bench.step_profile --device cuda --config 26b-a4b --canvas 256 --prompt-tokens 512   # a GPU, bf16

Prints the share of the top operators' own time (CPU time on a CPU, GPU time on CUDA) and the matmul shapes that
cost the most; on CUDA also the wall milliseconds per step, and how many kernels a step launches.
"""
from __future__ import annotations

import argparse
import datetime
import json
import time

import torch
from torch.profiler import ProfilerActivity, profile
from transformers.cache_utils import DynamicCache

from bench.engine import build_config, random_model
from engine.compat import with_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canvas", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", choices=["tiny", "small", "26b-a4b"], default="small")
    parser.add_argument("--experts", default=None,
                        help="transformers' routed-experts function (grouped_mm, its default; eager; batched_mm)")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if args.config == "26b-a4b" and not on_gpu:
        raise SystemExit("the 26b-a4b shape needs a GPU (about 52 GB of bf16 weights)")
    config = build_config(args.config, args.canvas)
    model = random_model(config, device)
    if args.experts:
        model.set_experts_implementation(args.experts)
    vocab = config.text_config.vocab_size
    prompt = torch.randint(3, min(vocab, 4096), (1, args.prompt_tokens), device=device)
    canvas = torch.randint(3, min(vocab, 4096), (1, args.canvas), device=device)   # (B, canvas)
    positions = torch.arange(args.prompt_tokens, args.prompt_tokens + args.canvas, device=device).unsqueeze(0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with torch.inference_mode():
        cache = DynamicCache(config=config.text_config)
        model.model.encoder(input_ids=prompt, **with_cache(model, cache),
                            position_ids=torch.arange(args.prompt_tokens, device=device).unsqueeze(0))
        logits = None

        def step():
            nonlocal logits
            logits = model(**with_cache(model, cache), decoder_input_ids=canvas, decoder_position_ids=positions,
                           self_conditioning_logits=logits).logits               # (B, canvas, vocab)
        for _ in range(3):
            step()
        wall_ms = None
        if on_gpu:   # the wall time first, outside the profiler, whose own cost would be counted in
            torch.cuda.synchronize(device)
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            torch.cuda.synchronize(device)
            wall_ms = round((time.perf_counter() - started) * 1e3 / args.steps, 2)
        with profile(activities=activities, record_shapes=True) as prof:
            for _ in range(args.steps):
                step()
            if on_gpu:
                torch.cuda.synchronize(device)

    def is_kernel(event) -> bool:
        return getattr(event.device_type, "name", "") == "CUDA"

    def own_time(event) -> float:   # microseconds
        return event.self_device_time_total if on_gpu else event.self_cpu_time_total

    def mm_time(event) -> float:   # on the GPU an operator's kernels hang below its launch calls: inclusive time
        return event.device_time_total if on_gpu else event.self_cpu_time_total

    # On the GPU each kernel's time shows on the kernel and again on the call that launched it: only kernels count.
    events = [e for e in prof.key_averages() if is_kernel(e) or not on_gpu]
    total = sum(own_time(e) for e in events)
    top = sorted(events, key=own_time, reverse=True)[:8]
    shapes = sorted((e for e in prof.key_averages(group_by_input_shape=True) if e.key == "aten::mm"),
                    key=mm_time, reverse=True)[:5]
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name(device) if on_gpu else "cpu", "config": args.config,
        "canvas": args.canvas, "prompt_tokens": args.prompt_tokens, "threads": args.threads,
        "experts": model.config.text_config._experts_implementation,
        "ms_per_step": round(total / 1e3 / args.steps, 2),   # the operators' own time, summed
        "wall_ms_per_step": wall_ms,
        "share": {e.key: round(own_time(e) / total, 3) for e in top},
        "matmuls_ms_per_step": {str(e.input_shapes[:2]): round(mm_time(e) / 1e3 / args.steps, 2)
                                for e in shapes},
    }
    if on_gpu:
        result["kernels_per_step"] = round(sum(e.count for e in events) / args.steps, 1)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
