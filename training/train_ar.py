"""Train the autoregressive twin: a same-size transformers causal LM (Llama) on the same shards, the same FIM
examples and the same token budget, in PSM fill-in-the-middle form:

    <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle <eos>

with next-token loss on every real token (pads weigh nothing). It is for comparison only (bench/ measures the
diffusion model's speed claim against it through engine/ar_engine.py); it is never the shipped default.
Equal budget: with the same --batch, --prompt-len and --canvas as the diffusion run, one step sees the same data
tokens, so the same --total-steps is the same token budget.

    python -m training.train_ar --config gpu --total-steps 6000 --minutes 9 --run training/runs/ar
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from training.common import (Clock, ar_config, autocast, canvas_lengths, check_resume_flags, learning_rate,
                             load_checkpoint, make_optimizer, pick_device, restore_optimizer, save_checkpoint,
                             schedule_progress, schedule_restart, unigram_logp, write_json)
from training.fim import FimSampler, fim_token_ids, newline_token_ids, psm_batch
from training.shards import load_many, tokenizer_digest


def psm_loss(model, ids: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, T), weights (B, T-1). Returns (weighted mean loss, per-target CE (B, T-1)). No attention mask: a
    row's pads all follow its <eos> (training/fim.py psm_layout, a shorter prompt only adds pads there), so causal
    attention keeps them from every real token, which sits at the position AREngine gives it."""
    logits = model(input_ids=ids).logits[:, :-1]                                   # (B, T-1, V)
    per_token = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                reduction="none").view_as(weights)
    return (per_token * weights).sum() / weights.sum().clamp(min=1.0), per_token


@torch.no_grad()
def evaluate(model, val_batches, middle_id: int, unigram, device) -> dict:
    """Held-out CE on the middle + <eos> (targets after <fim_middle>: what infilling asks) and on every token."""
    model.eval()
    mid = mid_uni = mid_n = every = every_n = 0.0
    for ids, weights in val_batches:
        ids, weights = ids.to(device), weights.to(device)
        with autocast(device):
            _, per_token = psm_loss(model, ids, weights)
        targets = ids[:, 1:]
        after_middle = (ids[:, :-1] == middle_id).long().cumsum(-1) > 0     # from the <fim_middle> input onward
        in_middle = after_middle & (weights > 0)
        mid += per_token[in_middle].sum().item()
        mid_uni += -unigram[targets[in_middle]].sum().item()
        mid_n += in_middle.sum().item()
        every += (per_token * weights).sum().item()
        every_n += weights.sum().item()
    model.train()
    return {"val_ce_middle": mid / mid_n, "val_ce_middle_unigram": mid_uni / mid_n, "val_ce_all": every / every_n}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=Path, nargs="+", default=[Path("training/data/shards")],
                        help="one or more shard folders (training/shards.py), joined")
    parser.add_argument("--tokenizer", type=Path, default=Path("training/tokenizer"))
    parser.add_argument("--run", type=Path, default=Path("training/runs/ar"))
    parser.add_argument("--out", type=Path, default=None, help="save_pretrained folder (default RUN/model)")
    parser.add_argument("--metrics", type=Path, default=None, help="final metrics JSON (default RUN/metrics.json)")
    parser.add_argument("--config", choices=["tiny", "small", "gpu"], default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompt-len", type=int, default=192)
    parser.add_argument("--canvas", type=int, default=64, help="the middle's room, as the diffusion canvas")
    parser.add_argument("--canvas-lengths", type=int, nargs="+", default=None,
                        help="the middle's room drawn per step from these, as training/train.py draws its canvas "
                             "(default as there): the twin sees the diffusion run's examples")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--total-steps", type=int, default=None)
    parser.add_argument("--total-minutes", type=float, default=None)
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--chunk-steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--checkpoint-dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--save-dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--device", default="auto")
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


def main(argv=None) -> None:
    args = parse_args(argv)
    hf_logging.disable_progress_bar()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = len(tokenizer)
    fim_ids = fim_token_ids(tokenizer)
    train_stream, val_stream, meta = load_many(args.shards, args.tokenizer)
    args.tokenizer_sha1 = tokenizer_digest(args.tokenizer)   # a run resumes only with the tokenizer it began with
    newline_ids = newline_token_ids(tokenizer)
    unigram = unigram_logp(train_stream, vocab).to(device)
    # The same seeds as training/train.py: the same examples in the same order.
    sampler = FimSampler(train_stream, newline_ids, args.prompt_len, args.canvas, args.seed, tokenizer=tokenizer)
    val_sampler = FimSampler(val_stream, newline_ids, args.prompt_len, args.canvas, 99, tokenizer=tokenizer)
    val_batches = [psm_batch(val_sampler, fim_ids, args.batch) for _ in range(args.eval_batches)]

    model = LlamaForCausalLM(ar_config(args.config, vocab)).to(device)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    opt = make_optimizer(model, args.lr, fused=device.type == "cuda")
    run = args.run
    run.mkdir(parents=True, exist_ok=True)
    step, clock, data_tokens, restart = 0, Clock(), 0, None
    state = load_checkpoint(run, device)
    if state is not None:
        saved_args = state.get("args", {})
        if "canvas" in saved_args:   # a run started before canvas lengths were drawn trained its canvas only
            saved_args.setdefault("canvas_lengths", [saved_args["canvas"]])
        check_resume_flags(saved_args, vars(args))
        model.load_state_dict(state["model"])
        restore_optimizer(opt, state["opt"])
        step, data_tokens = state["step"], state["data_tokens"]
        clock = Clock(state["elapsed"], state["train_time"])
        restart = schedule_restart(state, saved_args, args, step, clock.elapsed())
        sampler.rng.setstate(state["sampler_rng"])
        print(f"resumed at step {step}", flush=True)
    print(f"AR twin: {params / 1e6:.2f}M parameters, device {device}", flush=True)
    log = open(run / "log.jsonl", "a")

    def progress() -> float:
        return schedule_progress(step, clock.elapsed(), args.total_steps, args.total_minutes)

    def checkpoint() -> None:
        save_checkpoint(run, {"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                              "data_tokens": data_tokens, "elapsed": clock.elapsed(), "train_time": clock.train_time,
                              "sampler_rng": sampler.rng.getstate(), "args": vars(args), "restart": restart},
                        getattr(torch, args.checkpoint_dtype))

    first_step = step
    while progress() < 1.0 and clock.chunk() < args.minutes * 60 and step - first_step < (args.chunk_steps or 1 << 62):
        t0 = time.time()
        lr = learning_rate(args.lr, step, args.warmup, progress(), restart=restart)
        for group in opt.param_groups:
            group["lr"] = lr
        canvas = sampler.rng.choice(args.canvas_lengths)   # as training/train.py draws it: the same examples
        ids, weights = psm_batch(sampler, fim_ids, args.batch, canvas)
        ids, weights = ids.to(device, non_blocking=True), weights.to(device, non_blocking=True)
        with autocast(device):
            loss, _ = psm_loss(model, ids, weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        data_tokens += args.batch * (args.prompt_len + canvas)
        record = {"step": step, "time_s": round(clock.elapsed(), 1), "lr": lr}
        if step % 10 == 0 or step <= 2 or step % args.eval_every == 0:
            record["train_loss"] = loss.item()
        clock.train_time += time.time() - t0
        if step % args.eval_every == 0 or step == 1:
            record.update(evaluate(model, val_batches, fim_ids[2], unigram, device))
            print(json.dumps(record), flush=True)
        if step % args.checkpoint_every == 0 and not args.timing_only:
            checkpoint()
        log.write(json.dumps(record) + "\n")
        log.flush()
    if args.timing_only:   # its folder is deleted next: saving would only spend the GPU's minutes
        return
    if step % args.checkpoint_every or step == first_step:   # else the loop's last step saved it just now
        checkpoint()

    final = evaluate(model, val_batches, fim_ids[2], unigram, device)
    final.update({"config": args.config, "steps": step, "done": progress() >= 1.0,
                  "minutes": round(clock.elapsed() / 60, 2), "train_minutes": round(clock.train_time / 60, 2),
                  "parameters": params,
                  "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                  "batch": args.batch, "prompt_len": args.prompt_len, "canvas": args.canvas,
                  "canvas_lengths": args.canvas_lengths,
                  "data_tokens_seen": data_tokens,
                  "data_tokens_per_s": round(data_tokens / max(clock.train_time, 1e-9), 1),
                  "shards_tokenizer_sha1": meta["tokenizer_sha1"]})
    print(json.dumps(final), flush=True)
    dtype = torch.bfloat16 if args.save_dtype == "bfloat16" else torch.float32
    model.to(dtype).eval().save_pretrained(args.out, max_shard_size="15MB")
    tokenizer.save_pretrained(args.out)
    write_json(args.out / "ar_infill.json", {"layout": "psm-sentinels", "max_prompt_tokens": args.prompt_len,
                                             "max_new_tokens": args.canvas, "trained_with": "training/train_ar.py",
                                             "final_eval": final})
    write_json(args.metrics, final)


if __name__ == "__main__":
    main()
