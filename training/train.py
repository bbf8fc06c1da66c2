"""Train the embedded infill model: DiffusionGemma on a fill-in-the-middle canvas, uniform-state or masked noise.

One example (training/fim.py): the encoder reads `<fim_suffix> suffix <fim_prefix> prefix <fim_middle>` causally
into the KV cache (suffix first so the canvas continues the prefix); the decoder denoises the canvas
`middle <eos> <pad>...`. A prompt shorter than the context (its prefix stops at its file's start) comes left-padded;
attention masks hide the pads from the encoder and the canvas and positions start at its first real token, so the
model reads exactly the engine's shorter prompt (encode_prompts). Each row draws a noise level t (t ~ U(0,1), and
t = 1 for 30% of rows: the sampler's first step) and replaces a fraction t of the canvas
- uniform (default, as DiffusionGemma trains): by uniformly random tokens; the model predicts the clean token at
  every position, so it also learns to revise tokens (noised positions weigh 1, untouched ones 0.2);
- masked: by <mask>; only masked positions carry loss (the masked-diffusion baseline the issue compares against).
Pads after <eos> weigh a further 0.3x. Self-conditioning: every step runs a gradient-free first decoder pass and
feeds its logits to the second for a random half of the rows, as the sampler does from its second step on.
The encoder's hidden states also get a next-token loss (weight 0.5): dense signal for the shared weights.

The encoder pass over the context costs more than the canvas it teaches, so it is amortised: the cache of each
encoded context is repeated for `--canvases-per-context` independently noised canvases (gradients flow back
through the repeated cache). Throughput is reported as canvas tokens trained per second.

Runs in chunks: `--minutes` bounds this invocation, `--total-steps` (or `--total-minutes`) the whole run and its
learning-rate schedule; a second invocation with the same `--run` folder resumes (weights, optimizer, data and noise
generators, clock). Checkpoints are split into parts of at most 16 MiB.

    python -m training.train --config gpu --noise uniform --total-steps 6000 --minutes 9 --run training/runs/gpu
    python -m training.train --config tiny --total-steps 30 ...   # the CPU smoke run (tests/test_training_smoke.py)
"""
from __future__ import annotations

import argparse
import copy as copy_module
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import DynamicCache
from transformers.utils import logging as hf_logging

from engine.compat import with_cache
from engine.configs import EOS_ID, PAD_ID
from engine.masks import for_attention, sliding_window_of
from engine.sampler import SamplerSettings
from training.common import (DIFFUSION_CONFIGS, Clock, autocast, canvas_lengths, check_resume_flags, learning_rate,
                             load_checkpoint, make_optimizer, pick_device, restore_optimizer, save_checkpoint,
                             schedule_progress, schedule_restart, unigram_logp, write_json)
from training.fim import FimSampler, diffusion_batch, fim_token_ids, newline_token_ids
from training.shards import load_many, tokenizer_digest

PAD_WEIGHT = 0.3       # pads after <eos> are nearly free to predict; do not let them dominate the loss
CLEAN_WEIGHT = 0.2     # uniform noise, un-noised positions: copying them is easy, keep it from dominating
FULL_NOISE_SHARE = 0.3
AR_LOSS_WEIGHT = 0.5
SELF_CONDITIONING_PROB = 0.5
SC_TEMPERATURES = (SamplerSettings.t_min, SamplerSettings.t_max)   # the sampler's schedule runs between them
CAPPED_SHARE = 0.5     # rows given the engine's pinned length limit (engine_caps)


def lm_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    cap = model.final_logit_softcapping
    return torch.tanh(model.lm_head(hidden).float() / cap) * cap


def engine_caps(clean: torch.Tensor, gen: torch.Generator,
                share: float = CAPPED_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine's length limit, on `share` of the rows that end. The engine pins <eos> at a row's limit and
    padding after it (InfillEngine._fill); here the limit is drawn from the row's own <eos> to the canvas end, and
    the canvas shows <eos> there and padding after, given clean at every noise level (never noised, weighing
    nothing). Without it a clean <eos> then padding was seen only where the middle really ended, so the model read
    the engine's limit as the middle's exact length: every row ran to its limit.
    Returns (canvas with the caps, pinned positions), both (N, C)."""
    N, C = clean.shape
    dev = clean.device
    is_end = clean == EOS_ID
    end = is_end.int().argmax(1)                                                    # (N,) first <eos>
    cap = end + (torch.rand(N, generator=gen, device=dev) * (C - end)).long()      # (N,) in [end, C-1]
    capped = is_end.any(1) & (torch.rand(N, generator=gen, device=dev) < share)
    index = torch.arange(C, device=dev)[None, :]
    pinned = capped[:, None] & (index >= cap[:, None])
    return torch.where(pinned & (index == cap[:, None]), EOS_ID, clean), pinned


def noise_canvas(clean: torch.Tensor, noise: str, vocab: int, mask_id: int | None, gen: torch.Generator,
                 noise_level: float | None = None,
                 pinned: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy canvas, noised positions), both (N, C). noise_level None: t ~ U(0,1), FULL_NOISE_SHARE at t = 1.
    `pinned` positions (N, C) are never noised."""
    N, C = clean.shape
    dev = clean.device
    if noise_level is None:
        t = torch.rand(N, 1, generator=gen, device=dev)
        t = torch.where(torch.rand(N, 1, generator=gen, device=dev) < FULL_NOISE_SHARE, torch.ones_like(t), t)
    else:
        t = torch.full((N, 1), noise_level, device=dev)
    noised = torch.rand(N, C, generator=gen, device=dev) < t
    if pinned is not None:
        noised &= ~pinned
    if noise == "masked":
        replacement = torch.full_like(clean, mask_id)
    else:
        replacement = torch.randint(0, vocab, (N, C), generator=gen, device=dev)
    return torch.where(noised, replacement, clean), noised


def canvas_weights(clean: torch.Tensor, noised: torch.Tensor, noise: str,
                   pinned: torch.Tensor | None = None) -> torch.Tensor:
    """Noised positions carry the learning signal; under uniform noise clean ones teach keeping (or revising) a
    token, under masked noise they are given and weigh nothing; pinned ones are given under both."""
    weight = torch.where(noised, 1.0, CLEAN_WEIGHT if noise == "uniform" else 0.0)
    if pinned is not None:
        weight = weight.masked_fill(pinned, 0.0)
    return torch.where(clean == PAD_ID, weight * PAD_WEIGHT, weight)


def prompt_keep(prompts: torch.Tensor) -> torch.Tensor:
    """(B, P) True on each prompt's own tokens, False on the <pad>s before them: a prompt shorter than P (its prefix
    stops at its file's start, training/fim.py) is left-padded. A prompt starts with a sentinel, never <pad>."""
    return (prompts != PAD_ID).int().cummax(1).values.bool()


def encoder_padding_masks(keep: torch.Tensor, window: int | None) -> dict[str, torch.Tensor]:
    """(B, 1, P, P) boolean masks (True = attend) for the causal encoder over left-padded prompts: a prompt token
    sees the earlier tokens of its own prompt (sliding layers: within the window, counted in cache slots as
    transformers counts them, the same slots apart with or without the pads), never a pad; a pad sees itself only
    (a row with nothing to attend gives NaN, and a NaN value times a zero weight is still NaN)."""
    P = keep.shape[1]
    index = torch.arange(P, device=keep.device)
    causal = index[None, :] <= index[:, None]                                          # (P, P) key <= query
    local = causal & (index[None, :] > index[:, None] - window) if window else causal
    itself = torch.eye(P, dtype=torch.bool, device=keep.device)
    return {kind: ((pattern[None] & keep[:, None, :]) | itself[None])[:, None]
            for kind, pattern in (("full_attention", causal), ("sliding_attention", local))}


def decoder_padding_masks(keep: torch.Tensor, cache: DynamicCache, text_config,
                          canvas_len: int) -> dict[str, torch.Tensor]:
    """(N, 1, C, K + C) boolean masks for the canvas: the prompt keys a layer's cache keeps (K: all P in a full
    layer, the last window-1 in a sliding one) less the pads, and the whole canvas."""
    N = keep.shape[0]
    masks = {}
    for kind in set(text_config.layer_types):
        kept = cache.layers[text_config.layer_types.index(kind)].keys.shape[-2]
        keys = torch.cat([keep[:, keep.shape[1] - kept:], keep.new_ones(N, canvas_len)], 1)   # (N, K + C)
        masks[kind] = keys[:, None, None, :].expand(-1, -1, canvas_len, -1)
    return masks


def encode_prompts(model, prompts: torch.Tensor) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Encode left-padded prompts (B, P) as the engine encodes each prompt alone: the pads hidden from every token
    and taking no position (a prompt's own tokens sit at 0..L-1). Returns (cache, hidden states (B, P, H),
    keep (B, P))."""
    keep = prompt_keep(prompts)
    text_config = model.config.text_config
    masks = encoder_padding_masks(keep, sliding_window_of(text_config))
    positions = (keep.cumsum(1) - 1).clamp(min=0)                                      # (B, P), pads at 0
    cache = DynamicCache(config=text_config)
    enc = model.model.encoder(input_ids=prompts, attention_mask=for_attention(masks, model), position_ids=positions,
                              **with_cache(model, cache))
    return cache, enc.last_hidden_state, keep


def canvas_inputs(model, cache: DynamicCache, keep: torch.Tensor, canvas_len: int) -> dict:
    """The decoder's positions (N, C), right after each prompt's own tokens as in the engine, and its masks."""
    positions = keep.sum(1, keepdim=True) + torch.arange(canvas_len, device=keep.device)[None, :]  # (N, C)
    masks = decoder_padding_masks(keep, cache, model.config.text_config, canvas_len)
    return {"decoder_position_ids": positions, "decoder_attention_mask": for_attention(masks, model),
            **with_cache(model, cache)}


def diffusion_loss(model, prompts, clean, *, noise: str, vocab: int, mask_id: int | None, gen: torch.Generator,
                   repeats: int = 1, noise_level: float | None = None, self_condition: bool = True):
    """prompts (B, P), left-padded where shorter (prompt_keep); clean (B, C). Each encoded context serves `repeats`
    noised canvases. In training (noise_level None) some rows get the engine's pinned length limit (engine_caps);
    evaluations at a fixed level none.
    Returns (weighted canvas loss, encoder next-token loss over the prompts' own tokens, per-token CE
    (B*repeats, C), clean (B*repeats, C), noised positions (B*repeats, C))."""
    cache, hidden, keep = encode_prompts(model, prompts)                            # keep (B, P)
    ar_logits = lm_logits(model, hidden[:, :-1])                                       # (B, P-1, V)
    ar_tokens = F.cross_entropy(ar_logits.reshape(-1, vocab), prompts[:, 1:].reshape(-1), reduction="none")
    ar_weight = keep[:, :-1].reshape(-1).float()   # a pad neither predicts nor is predicted: (B*(P-1),)
    ar_loss = (ar_tokens * ar_weight).sum() / ar_weight.sum().clamp(min=1.0)
    if repeats > 1:
        cache.batch_repeat_interleave(repeats)                                         # (B*R, heads, P, d)
        clean = clean.repeat_interleave(repeats, dim=0)                                # (B*R, C)
        keep = keep.repeat_interleave(repeats, dim=0)                                  # (B*R, P)
    N, C = clean.shape
    pinned = None
    if noise_level is None:
        clean, pinned = engine_caps(clean, gen)
    noisy, noised = noise_canvas(clean, noise, vocab, mask_id, gen, noise_level, pinned)
    decoder_kw = canvas_inputs(model, cache, keep, C)
    sc_logits = sc_mask = None
    if self_condition:
        with torch.no_grad():
            sc_logits = model(decoder_input_ids=noisy, **decoder_kw).logits
        # The sampler feeds back its temperature-scaled logits (as transformers' own generate does with its
        # processed logits), at temperatures from 0.8 down to 0.4: shown the same here, at a random one per row.
        temperature = SC_TEMPERATURES[0] + (SC_TEMPERATURES[1] - SC_TEMPERATURES[0]) * torch.rand(
            N, 1, 1, generator=gen, device=prompts.device)
        sc_logits = sc_logits / temperature                                            # (N, C, V)
        sc_mask = torch.rand(N, generator=gen, device=prompts.device) < SELF_CONDITIONING_PROB
    logits = model(decoder_input_ids=noisy, self_conditioning_logits=sc_logits, self_conditioning_mask=sc_mask,
                   **decoder_kw).logits                                                # (N, C, V)
    per_token = F.cross_entropy(logits.float().reshape(-1, vocab), clean.reshape(-1), reduction="none").view(N, C)
    w = canvas_weights(clean, noised, noise, pinned)
    return (per_token * w).sum() / w.sum().clamp(min=1.0), ar_loss, per_token, clean, noised


@torch.no_grad()
def evaluate(model, val_batches, *, noise, vocab, mask_id, unigram, device) -> dict:
    """Held-out canvas cross-entropy on middle+<eos> tokens from a fully noised canvas (the first denoising step,
    the hardest case) and at half noise; the first 4 middle tokens from full noise; the encoder's next-token CE;
    the unigram baseline on the same tokens. Under masked noise every CE is on <mask>ed positions."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(1234)
    sums = dict(full=0.0, half=0.0, half_n=0, uni=0.0, n=0, head=0.0, head_uni=0.0, head_n=0,
                ar=0.0, ar_uni=0.0, ar_n=0)
    kw = dict(noise=noise, vocab=vocab, mask_id=mask_id, gen=gen, self_condition=False)
    for prompts, clean in val_batches:
        prompts, clean = prompts.to(device), clean.to(device)
        with autocast(device):
            _, ar_loss, tok_full, _, _ = diffusion_loss(model, prompts, clean, noise_level=1.0, **kw)
            _, _, tok_half, _, half_noised = diffusion_loss(model, prompts, clean, noise_level=0.5, **kw)
        keep = clean != PAD_ID
        # Masked noise scores only what was masked: the rest is given (and weighs nothing in training).
        keep_half = keep & half_noised if noise == "masked" else keep
        first = keep.clone()
        first[:, 4:] = False  # the first 4 middle tokens: what the prefix predicts best
        uni = -unigram[clean]
        sums["full"] += tok_full[keep].sum().item()
        sums["half"] += tok_half[keep_half].sum().item()
        sums["half_n"] += keep_half.sum().item()
        sums["uni"] += uni[keep].sum().item()
        sums["n"] += keep.sum().item()
        sums["head"] += tok_full[first].sum().item()
        sums["head_uni"] += uni[first].sum().item()
        sums["head_n"] += first.sum().item()
        real = prompt_keep(prompts)[:, :-1]   # targets after a prompt's own token: the left padding is not text
        targets = prompts[:, 1:][real]
        sums["ar"] += ar_loss.item() * targets.numel()
        sums["ar_uni"] += -unigram[targets].sum().item()
        sums["ar_n"] += targets.numel()
    model.train()
    return {"val_ce_full_noise": sums["full"] / sums["n"], "val_ce_half_noise": sums["half"] / max(sums["half_n"], 1),
            "val_ce_unigram": sums["uni"] / sums["n"], "val_ce_first4_full_noise": sums["head"] / sums["head_n"],
            "val_ce_first4_unigram": sums["head_uni"] / sums["head_n"],
            "val_ce_encoder_next_token": sums["ar"] / sums["ar_n"], "val_ce_encoder_unigram": sums["ar_uni"] / sums["ar_n"]}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=Path, nargs="+", default=[Path("training/data/shards")],
                        help="one or more shard folders (training/shards.py), joined")
    parser.add_argument("--tokenizer", type=Path, default=Path("training/tokenizer"))
    parser.add_argument("--run", type=Path, default=Path("training/runs/diffusion"))
    parser.add_argument("--out", type=Path, default=None, help="save_pretrained folder (default RUN/model)")
    parser.add_argument("--metrics", type=Path, default=None, help="final metrics JSON (default RUN/metrics.json)")
    parser.add_argument("--config", choices=sorted(DIFFUSION_CONFIGS), default="small")
    parser.add_argument("--noise", choices=["uniform", "masked"], default="uniform")
    parser.add_argument("--batch", type=int, default=16, help="contexts per step")
    parser.add_argument("--canvases-per-context", type=int, default=1, help="noised canvases per encoded context")
    parser.add_argument("--prompt-len", type=int, default=192)
    parser.add_argument("--canvas", type=int, default=64)
    parser.add_argument("--canvas-lengths", type=int, nargs="+", default=None,
                        help="canvas lengths trained, one drawn per step; --canvas is always one (default: the "
                             "engine's canvas buckets up to --canvas, since the engine trims the canvas to the fill; "
                             "the starter, trained on one length, reads a shorter canvas worse than unigram: "
                             "bench/RESULTS.md)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    parser.add_argument("--total-steps", type=int, default=None, help="length of the whole run (schedule, stop)")
    parser.add_argument("--total-minutes", type=float, default=None, help="or: the whole run's length in minutes")
    parser.add_argument("--minutes", type=float, default=9.0, help="this chunk's wall-clock limit")
    parser.add_argument("--chunk-steps", type=int, default=None, help="or: stop this chunk after this many steps")
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--checkpoint-dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--save-dtype", choices=["float32", "bfloat16"], default="float32",
                        help="dtype of the save_pretrained weights (bfloat16 halves the shipped size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--experts-impl", choices=["eager", "batched_mm", "grouped_mm"], default=None,
                        help="transformers' MoE kernel (default: its own choice, grouped_mm where available)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-only", action="store_true",
                        help="time the steps only (the step log): no checkpoint, final evaluation or saved model "
                             "(gpu_session's probe)")
    args = parser.parse_args(argv)
    if args.total_steps is None and args.total_minutes is None:
        parser.error("give --total-steps or --total-minutes: the schedule needs the length of the whole run")
    try:
        args.canvas_lengths = canvas_lengths(args.canvas_lengths, args.canvas)
    except ValueError as exc:
        parser.error(str(exc))
    args.out = args.out or args.run / "model"
    args.metrics = args.metrics or args.run / "metrics.json"
    return args


def save_model(model, tokenizer, args, final: dict) -> None:
    dtype = torch.bfloat16 if args.save_dtype == "bfloat16" else torch.float32
    copy = copy_module.deepcopy(model).to(dtype).eval()  # the training weights stay fp32
    copy.save_pretrained(args.out, max_shard_size="15MB")  # each file fits one transfer back from the GPU machine
    tokenizer.save_pretrained(args.out)
    write_json(args.out / "diffusion_infill.json", {
        "layout": "spm-sentinels", "noise": args.noise, "max_prompt_tokens": args.prompt_len,
        "canvas_length": args.canvas, "canvas_lengths": args.canvas_lengths, "trained_with": "training/train.py",
        "final_eval": final})


def main(argv=None) -> None:
    args = parse_args(argv)
    hf_logging.disable_progress_bar()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = len(tokenizer)
    mask_id = tokenizer.mask_token_id
    if args.noise == "masked" and mask_id is None:
        raise SystemExit("masked noise needs a <mask> token, and this tokenizer has none")
    fim_ids = fim_token_ids(tokenizer)
    train_stream, val_stream, meta = load_many(args.shards, args.tokenizer)
    args.tokenizer_sha1 = tokenizer_digest(args.tokenizer)   # a run resumes only with the tokenizer it began with
    newline_ids = newline_token_ids(tokenizer)
    print(f"train {len(train_stream):,} tokens, val {len(val_stream):,} tokens, vocab {vocab}, device {device}",
          flush=True)
    unigram = unigram_logp(train_stream, vocab).to(device)
    sampler = FimSampler(train_stream, newline_ids, args.prompt_len, args.canvas, args.seed, tokenizer=tokenizer)
    val_sampler = FimSampler(val_stream, newline_ids, args.prompt_len, args.canvas, 99, tokenizer=tokenizer)
    val_batches = [diffusion_batch(val_sampler, fim_ids, args.batch) for _ in range(args.eval_batches)]

    config = DIFFUSION_CONFIGS[args.config](vocab_size=vocab, canvas_length=args.canvas)
    if args.experts_impl:
        config._experts_implementation = args.experts_impl  # the setter passes it on to the text config
    model = DiffusionGemmaForBlockDiffusion(config).to(device)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    opt = make_optimizer(model, args.lr, fused=device.type == "cuda")
    gen = torch.Generator(device=device).manual_seed(args.seed)
    run = args.run
    run.mkdir(parents=True, exist_ok=True)
    step, clock, tokens, restart = 0, Clock(), {"canvas": 0, "data": 0}, None
    state = load_checkpoint(run, device)
    if state is not None:  # resume: weights, optimizer, generators, clock and counters
        saved_args = state.get("args", {})
        if "canvas" in saved_args:   # a run started before canvas lengths were drawn trained its canvas only
            saved_args.setdefault("canvas_lengths", [saved_args["canvas"]])
        check_resume_flags(saved_args, vars(args))
        model.load_state_dict(state["model"])
        restore_optimizer(opt, state["opt"])
        step, tokens = state["step"], state["tokens"]
        clock = Clock(state["elapsed"], state["train_time"])
        restart = schedule_restart(state, saved_args, args, step, clock.elapsed())
        sampler.rng.setstate(state["sampler_rng"])
        gen.set_state(state["gen"].cpu())
        print(f"resumed at step {step} ({clock.elapsed_before / 60:.1f} min done)", flush=True)
    log = open(run / "log.jsonl", "a")
    print(f"{params / 1e6:.2f}M parameters, {args.noise} noise, {args.canvases_per_context} canvases per context",
          flush=True)

    def progress() -> float:
        return schedule_progress(step, clock.elapsed(), args.total_steps, args.total_minutes)

    def checkpoint() -> None:
        save_checkpoint(run, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": tokens,
                              "elapsed": clock.elapsed(), "train_time": clock.train_time,
                              "sampler_rng": sampler.rng.getstate(), "gen": gen.get_state(), "args": vars(args),
                              "restart": restart},
                        getattr(torch, args.checkpoint_dtype))

    first_step = step
    while progress() < 1.0 and clock.chunk() < args.minutes * 60 and step - first_step < (args.chunk_steps or 1 << 62):
        t0 = time.time()
        lr = learning_rate(args.lr, step, args.warmup, progress(), restart=restart)
        for group in opt.param_groups:
            group["lr"] = lr
        canvas = sampler.rng.choice(args.canvas_lengths)   # the sampler's generator is checkpointed
        prompts, clean = diffusion_batch(sampler, fim_ids, args.batch, canvas)
        prompts, clean = prompts.to(device, non_blocking=True), clean.to(device, non_blocking=True)
        with autocast(device):
            loss, ar_loss, _, _, _ = diffusion_loss(model, prompts, clean, noise=args.noise, vocab=vocab,
                                                 mask_id=mask_id, gen=gen, repeats=args.canvases_per_context)
        (loss + AR_LOSS_WEIGHT * ar_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens["canvas"] += args.batch * args.canvases_per_context * canvas
        tokens["data"] += args.batch * (args.prompt_len + canvas)
        record = {"step": step, "time_s": round(clock.elapsed(), 1), "lr": lr}
        if step % 10 == 0 or step <= 2 or step % args.eval_every == 0:  # a .item() syncs the GPU: not every step
            record.update(train_loss=loss.item(), train_ar_loss=ar_loss.item())
        clock.train_time += time.time() - t0
        if step % args.eval_every == 0 or step == 1:
            record.update(evaluate(model, val_batches, noise=args.noise, vocab=vocab, mask_id=mask_id,
                                   unigram=unigram, device=device))
            record["canvas_tokens_per_s"] = round(tokens["canvas"] / max(clock.train_time, 1e-9))
            print(json.dumps(record), flush=True)
        if step % args.checkpoint_every == 0 and not args.timing_only:
            checkpoint()
        log.write(json.dumps(record) + "\n")
        log.flush()
    if args.timing_only:   # its folder is deleted next: saving would only spend the GPU's minutes
        return
    if step % args.checkpoint_every or step == first_step:   # else the loop's last step saved it just now
        checkpoint()

    final = evaluate(model, val_batches, noise=args.noise, vocab=vocab, mask_id=mask_id, unigram=unigram,
                     device=device)
    final.update({
        "noise": args.noise, "config": args.config, "steps": step, "done": progress() >= 1.0,
        "minutes": round(clock.elapsed() / 60, 2), "train_minutes": round(clock.train_time / 60, 2),
        "parameters": params, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "batch": args.batch, "canvases_per_context": args.canvases_per_context, "prompt_len": args.prompt_len,
        "canvas": args.canvas, "canvas_lengths": args.canvas_lengths, "canvas_tokens_seen": tokens["canvas"],
        "data_tokens_seen": tokens["data"],
        "canvas_tokens_per_s": round(tokens["canvas"] / max(clock.train_time, 1e-9), 1),
        "data_tokens_per_s": round(tokens["data"] / max(clock.train_time, 1e-9), 1),
        "train_tokens_available": int(len(train_stream)), "shards_tokenizer_sha1": meta["tokenizer_sha1"]})
    print(json.dumps(final), flush=True)
    save_model(model, tokenizer, args, final)
    write_json(args.metrics, final)


if __name__ == "__main__":
    main()
