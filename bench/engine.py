"""Engine speed, side by side with transformers' own DiffusionGemma `generate`, on the same model and canvas.

    python -m bench.engine --device cpu --config small --json
    python -m bench.engine --device cuda --config 26b-a4b --canvas 256 --steps 16 --json   # GPU, random weights
    python -m bench.engine --device cuda --config 26b-a4b --quantize int4 --json   # peak_gpu_gb: fits 24 GB?

Both run batch 1, the same random-weight model (timing only: with random weights neither sampler's adaptive stop
fires, so both run the fixed step count), the same prompt and the same canvas length, after a warm-up run.
Prints one JSON line. Record what you quote in bench/RESULTS.md with the command, device and date.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import time

import torch
from transformers import AutoTokenizer, DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

from engine.configs import diffusiongemma_26b_a4b_config, small_config, tiny_config
from engine.infill_engine import InfillEngine, bucket
from engine.loading import DEFAULT_MODEL_DIR, LoadedModel, pick_cpu_threads
from engine.quantize import WEIGHT_FORMATS, quantize_model
from engine.types import EngineConfig

# HBM bandwidth (TB/s) of the GPUs this project is timed on, for the weights-read-once-per-step limit.
HBM_TBS = {"H100": 3.35, "H200": 4.8}


def build_config(name: str, canvas: int) -> DiffusionGemmaConfig:
    if name == "tiny":
        return tiny_config(vocab_size=4096, canvas_length=canvas)
    if name == "small":
        return small_config(vocab_size=4096, canvas_length=canvas)
    if name == "26b-a4b":
        config = diffusiongemma_26b_a4b_config()
        config.canvas_length = canvas
        return config
    raise SystemExit(f"unknown config {name}")


def random_model(config: DiffusionGemmaConfig, device: torch.device) -> DiffusionGemmaForBlockDiffusion:
    """Random weights, built directly on the device in its dtype (bf16 on CUDA, fp32 on a CPU): the 26B shape never
    exists in fp32 (that would be 103 GB)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = DiffusionGemmaForBlockDiffusion(config)
    finally:
        torch.set_default_dtype(default_dtype)
    return model.to(device=device, dtype=dtype).eval()


def step_limit_ms(model, device: torch.device) -> dict:
    """The memory-bound floor of one decoder step: every text weight (all experts: a 256-token canvas routes to
    nearly all of them) read once from HBM. Vision tower excluded; it never runs for code."""
    tensors = list(model.named_parameters()) + list(model.named_buffers())   # quantized weights are buffers
    weight_bytes = sum(t.numel() * t.element_size() for name, t in tensors if "vision" not in name)
    name = torch.cuda.get_device_name(device)
    tbs = next((v for k, v in HBM_TBS.items() if k in name), None)
    if tbs is None:
        return {"weight_gb": round(weight_bytes / 1e9, 2)}
    return {"weight_gb": round(weight_bytes / 1e9, 2), "hbm_tb_s": tbs,
            "limit_ms_per_step": round(weight_bytes / (tbs * 1e12) * 1e3, 2)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ours(engine: InfillEngine, prompt: list[int], canvas_len: int, steps: int, repeats: int,
              denoise_s: list[float] | None = None) -> list[float]:
    """Seconds per run (prompt pass and denoising); `denoise_s` gets the denoising part of each, as the engine
    measured it."""
    settings = engine._settings(steps=steps, stop_entropy=0.0, sync_every=steps)
    times = []
    for i in range(repeats + 1):  # first run is warm-up
        generator = torch.Generator(device=engine.device).manual_seed(i)
        canvas = torch.randint(0, engine.vocab_size, (1, canvas_len), generator=generator, device=engine.device)
        pinned = torch.zeros_like(canvas, dtype=torch.bool)
        sync(engine.device)
        start = time.perf_counter()
        _, timings = engine._run(prompt, canvas, pinned, settings, generator, None)
        sync(engine.device)
        if i:
            times.append(time.perf_counter() - start)
            if denoise_s is not None:
                denoise_s.append(timings["denoise_ms"] / 1e3)
    return times


def time_hf(model, prompt: list[int], canvas_len: int, steps: int, repeats: int, cache: str | None) -> list[float]:
    ids = torch.tensor([prompt], device=model.device)
    kwargs = dict(max_new_tokens=canvas_len, max_denoising_steps=steps)
    if cache:
        kwargs["cache_implementation"] = cache
    times = []
    for i in range(repeats + 1):
        torch.manual_seed(i)
        sync(model.device)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, **kwargs)
        sync(model.device)
        if i:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", default="small", choices=["tiny", "small", "26b-a4b"])
    parser.add_argument("--fast-path", default="auto", choices=["auto", "off", "static", "compiled"],
                        help="our decoder path (auto: compiled on CUDA, off on CPU)")
    parser.add_argument("--skip-hf", action="store_true", help="time only our engine")
    parser.add_argument("--canvas", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hf-cache", default=None,
                        help="transformers cache_implementation; 'static' also makes generate compile its step")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quantize", default="none", choices=list(WEIGHT_FORMATS),
                        help="weight-only int8/int4 (engine/quantize.py), for both loops")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sweep-png", default=None, help="also time canvas 16..256 and plot tokens/s to this PNG")
    args = parser.parse_args()

    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise SystemExit(f"--device {args.device}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch sees no CUDA device")
    if args.config == "26b-a4b" and device.type != "cuda":
        raise SystemExit("the 26b-a4b shape needs a GPU (about 52 GB of bf16 weights)")
    torch.manual_seed(0)
    config = build_config(args.config, args.canvas)
    model = random_model(config, device)
    dtype = model.dtype
    if args.threads:
        torch.set_num_threads(args.threads)
    elif device.type == "cpu":
        pick_cpu_threads(model)  # the engine's own rule (before quantizing, as the loader), for both loops alike
    quantized_weights = quantize_model(model, args.quantize, device)
    if device.type == "cuda":   # from here on the peak is what a card must hold for the quantized model
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    loaded = LoadedModel(model=model, tokenizer=tokenizer, source=f"random {args.config}", device=device,
                         dtype=dtype, max_prompt_tokens=args.prompt_tokens + 8, canvas_length=args.canvas,
                         quantize=args.quantize, quantized_weights=quantized_weights)
    load_started = time.perf_counter()
    # Prefix reuse off: every repeat sends the same prompt, and transformers' generate encodes it every time, so
    # ours must too (with reuse on, ours would encode 1 of its tokens after the warm-up).
    engine = InfillEngine(EngineConfig(device=args.device, fast_path=args.fast_path, reuse_prefix=False),
                          loaded=loaded)
    warm_up_s = time.perf_counter() - load_started
    if args.prompt_tokens > engine.prompt_budget:   # the static cache holds the sliding window at most
        raise SystemExit(f"--prompt-tokens {args.prompt_tokens} is more than this engine's context of "
                         f"{engine.prompt_budget} tokens (fast path {engine.fast_path}: a static cache holds the "
                         f"sliding window at most); use --prompt-tokens {engine.prompt_budget} or --fast-path off")
    vocab = config.text_config.vocab_size
    prompt = torch.randint(3, min(vocab, 4096), (args.prompt_tokens,)).tolist()

    denoise_s: list[float] = []
    ours = time_ours(engine, prompt, args.canvas, args.steps, args.repeats, denoise_s)
    ours_s = statistics.median(ours)
    hf_s = None if args.skip_hf else statistics.median(
        time_hf(model, prompt, args.canvas, args.steps, args.repeats, args.hf_cache))
    infill_ms = {}
    for middle in (16, 32, 64):
        canvas = bucket(middle, 256)  # as the engine sizes it: a limit filling a bucket gives <eos> its last slot
        infill_ms[str(middle)] = round(1e3 * statistics.median(
            time_ours(engine, prompt, canvas, args.steps, args.repeats)), 1)
    result = {
        "date": datetime.date.today().isoformat(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "config": args.config, "dtype": str(dtype).replace("torch.", ""),
        "parameters": sum(p.numel() for p in model.parameters()) + quantized_weights, "quantize": args.quantize,
        "canvas": args.canvas, "steps": args.steps, "prompt_tokens": args.prompt_tokens, "batch": 1,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "fast_path": engine.fast_path, "warm_up_s": round(warm_up_s, 1),
        "notes": engine.notes,   # a compiled step that failed to build and fell back to the plain path says so here
        "ours_ms": round(ours_s * 1e3, 1), "ours_tok_s": round(args.canvas / ours_s, 1),
        "ms_per_step": round(ours_s * 1e3 / args.steps, 2),   # the prompt pass shared out, as for hf_ms_per_step
        "denoise_ms_per_step": round(statistics.median(denoise_s) * 1e3 / args.steps, 2),   # the steps alone
        "infill_ms": infill_ms,
        "weights": "random (timing only, fixed step count)",
    }
    if hf_s is not None:
        result.update({"hf_ms": round(hf_s * 1e3, 1), "hf_tok_s": round(args.canvas / hf_s, 1),
                       "ratio": round(hf_s / ours_s, 2), "hf_ms_per_step": round(hf_s * 1e3 / args.steps, 2),
                       "hf_cache": args.hf_cache or "default (dynamic)"})
    if device.type == "cuda":
        result.update(step_limit_ms(model, device))
        result["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
        # What the process holds from the GPU: the caching allocator's reserve (the CUDA context, ~0.5 GB more, is
        # not counted by torch). The one to read for "does it fit a 24 GB card".
        result["peak_gpu_reserved_gb"] = round(torch.cuda.max_memory_reserved(device) / 1e9, 2)
    if args.sweep_png:
        result["sweep_tok_s"] = sweep(engine, prompt, args.steps, args.repeats, args.sweep_png, result)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


def sweep(engine: InfillEngine, prompt: list[int], steps: int, repeats: int, png: str, meta: dict) -> dict:
    """Tokens/s of our denoising loop against canvas length, plotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = {}
    for canvas in (16, 32, 64, 128, 256):
        seconds = statistics.median(time_ours(engine, prompt, canvas, steps, repeats))
        rates[str(canvas)] = round(canvas / seconds, 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([int(c) for c in rates], list(rates.values()), "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("canvas length (tokens)")
    ax.set_ylabel("tokens/s (canvas / wall time)")
    ax.set_title(f"{meta['config']} model, {steps} fixed steps, batch 1\n{meta['device']}, {meta['date']}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    return rates


if __name__ == "__main__":
    main()
