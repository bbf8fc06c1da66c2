"""Train the embedded infill model: uniform-state diffusion on a fill-in-the-middle canvas.

One example: the encoder reads `<fim_suffix> suffix <fim_prefix> prefix <fim_middle>` (causally, into the KV
cache; suffix first so the canvas continues the prefix); the decoder sees the canvas `middle <eos> <pad>...` with a
fraction t of its positions replaced by uniformly random tokens (t ~ U(0,1), and t = 1 for 30% of examples: the
sampler's first step) and predicts the clean canvas at every position (so it learns to revise any token). Half of
the batches run a first, gradient-free decoder pass whose logits feed the second as self-conditioning, exactly as the
sampler does at inference. The encoder's hidden states also get a next-token loss: dense signal for the shared
weights on every prompt token.

    python -m training.train --minutes 40 --out models/diffusion-infill-small
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
from transformers.cache_utils import DynamicCache

from engine.configs import BOS_ID, EOS_ID, PAD_ID, small_config, tiny_config

PAD_WEIGHT = 0.3       # pads after <eos> are nearly free to predict; do not let them dominate the loss
CLEAN_WEIGHT = 0.2     # un-noised canvas positions: copying them is easy, keep it from dominating
FULL_NOISE_SHARE = 0.3


def tokenize_corpus(corpus: Path, tokenizer, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train stream, validation stream): files joined with <bos>; ~2% of files (by path hash) held out."""
    if cache.exists():
        data = np.load(cache)
        return data["train"], data["val"]
    train, val = [], []
    batch, dest = [], []
    lines = [json.loads(line) for line in open(corpus)]
    for rec in lines:
        held = int(hashlib.sha1((rec["dist"] + rec["path"]).encode()).hexdigest(), 16) % 50 == 0
        batch.append(rec["text"])
        dest.append(val if held else train)
    for start in range(0, len(batch), 256):
        enc = tokenizer(batch[start:start + 256], add_special_tokens=False)["input_ids"]
        for ids, out in zip(enc, dest[start:start + 256]):
            out.append(BOS_ID)
            out.extend(ids)
    if len(val) < len(train) // 20:  # a tiny corpus may hash no file into the held-out share: keep its tail
        cut = len(train) - len(train) // 10
        train, val = train[:cut], train[cut:]
    train_arr, val_arr = np.array(train, dtype=np.int32), np.array(val, dtype=np.int32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, train=train_arr, val=val_arr)
    return train_arr, val_arr


class Batcher:
    """Cuts FIM examples out of a token stream. Half the middles are whole lines, half start and end anywhere."""

    def __init__(self, stream: np.ndarray, newline_ids: np.ndarray, prompt_len: int, canvas: int,
                 max_suffix: int, fim_ids: tuple[int, int, int], seed: int):
        self.stream, self.P, self.C, self.max_suffix = stream, prompt_len, canvas, max_suffix
        self.fp, self.fs, self.fm = fim_ids
        self.rng = random.Random(seed)
        # positions just after a token containing a newline: line starts
        self.line_starts = np.nonzero(np.isin(stream, newline_ids))[0] + 1

    def example(self) -> tuple[list[int], list[int], int]:
        rng, C = self.rng, self.C
        suffix_len = 0 if rng.random() < 0.15 else rng.randint(1, self.max_suffix)
        prefix_len = self.P - 3 - suffix_len
        lo, hi = prefix_len, len(self.stream) - C - suffix_len - 1
        if rng.random() < 0.5:
            k = int(np.searchsorted(self.line_starts, rng.randint(lo, hi)))
            k = min(k, len(self.line_starts) - 2)
            start = int(self.line_starts[k])
            ends = self.line_starts[k + 1:k + 1 + 12]
            ends = [int(e) for e in ends if 0 <= e - start <= C - 1]
            end = rng.choice(ends) if ends else start + rng.randint(0, C - 1)
        else:
            start = rng.randint(lo, hi)
            end = start + rng.randint(0, C - 1)
        start = max(start, prefix_len)
        end = min(max(end, start), start + C - 1)
        s = self.stream
        prompt = [self.fs, *s[end:end + suffix_len], self.fp, *s[start - prefix_len:start], self.fm]
        middle = list(s[start:end])
        canvas = middle + [EOS_ID] + [PAD_ID] * (C - len(middle) - 1)
        return prompt, canvas, len(middle)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        prompts, canvases = zip(*[self.example()[:2] for _ in range(size)])
        return torch.tensor(prompts, dtype=torch.long), torch.tensor(canvases, dtype=torch.long)


def lm_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    cap = model.final_logit_softcapping
    return torch.tanh(model.lm_head(hidden).float() / cap) * cap


def canvas_weights(clean: torch.Tensor, noised: torch.Tensor) -> torch.Tensor:
    """Noised positions carry the learning signal; clean ones only teach keeping (or revising) a token."""
    weight = torch.where(noised, 1.0, CLEAN_WEIGHT)
    return torch.where(clean == PAD_ID, weight * PAD_WEIGHT, weight)


def sample_noise_level(B: int, gen: torch.Generator) -> torch.Tensor:
    """t ~ U(0,1), with FULL_NOISE_SHARE of the examples at t = 1: the sampler's first step sees pure noise."""
    t = torch.rand(B, 1, generator=gen)
    return torch.where(torch.rand(B, 1, generator=gen) < FULL_NOISE_SHARE, torch.ones_like(t), t)


def diffusion_loss(model, prompts, clean, vocab, gen, noise_level=None, self_condition=True):
    """Returns (canvas loss, encoder next-token loss, per-token CE). noise_level None = sample_noise_level."""
    B, C = clean.shape
    t = sample_noise_level(B, gen) if noise_level is None else torch.full((B, 1), noise_level)
    noised = torch.rand(B, C, generator=gen) < t
    noisy = torch.where(noised, torch.randint(0, vocab, (B, C), generator=gen), clean)
    cache = DynamicCache(config=model.config.text_config)
    enc = model.model.encoder(input_ids=prompts, past_key_values=cache)
    ar_logits = lm_logits(model, enc.last_hidden_state[:, :-1])  # (B, P-1, vocab)
    ar_loss = F.cross_entropy(ar_logits.reshape(-1, vocab), prompts[:, 1:].reshape(-1))
    positions = torch.arange(prompts.shape[1], prompts.shape[1] + C).unsqueeze(0)
    sc_logits = sc_mask = None
    if self_condition:
        with torch.no_grad():
            sc_logits = model(past_key_values=cache, decoder_input_ids=noisy, decoder_position_ids=positions).logits
        sc_mask = torch.rand(B, generator=gen) < 0.5
    logits = model(past_key_values=cache, decoder_input_ids=noisy, decoder_position_ids=positions,
                   self_conditioning_logits=sc_logits, self_conditioning_mask=sc_mask).logits  # (B, C, vocab)
    per_token = F.cross_entropy(logits.reshape(-1, vocab), clean.reshape(-1), reduction="none").view(B, C)
    w = canvas_weights(clean, noised)
    return (per_token * w).sum() / w.sum(), ar_loss, per_token


@torch.no_grad()
def evaluate(model, val_batches, vocab, unigram_logp) -> dict:
    """Held-out canvas cross-entropy on middle+eos tokens from a fully random canvas (the first denoising step,
    the hardest case) and at t ~ U(0,1); the unigram baseline on the same tokens."""
    model.eval()
    gen = torch.Generator().manual_seed(1234)
    full, mixed, uni, n = 0.0, 0.0, 0.0, 0
    head, head_uni, head_n, ar, ar_uni, ar_n = 0.0, 0.0, 0, 0.0, 0.0, 0
    for prompts, clean in val_batches:
        keep = clean != PAD_ID
        ar_loss, _, tok_full = diffusion_loss_with_ar(model, prompts, clean, vocab, gen, 1.0)
        _, _, tok_mixed = diffusion_loss(model, prompts, clean, vocab, gen, noise_level=0.5, self_condition=False)
        full += tok_full[keep].sum().item()
        mixed += tok_mixed[keep].sum().item()
        uni += -unigram_logp[clean[keep]].sum().item()
        n += keep.sum().item()
        first = keep.clone()
        first[:, 4:] = False  # the first 4 middle tokens: what the prefix predicts
        head += tok_full[first].sum().item()
        head_uni += -unigram_logp[clean[first]].sum().item()
        head_n += first.sum().item()
        targets = prompts[:, 1:]
        ar += ar_loss.item() * targets.numel()
        ar_uni += -unigram_logp[targets].sum().item()
        ar_n += targets.numel()
    model.train()
    return {"val_ce_full_noise": full / n, "val_ce_half_noise": mixed / n, "val_ce_unigram": uni / n,
            "val_ce_first4_full_noise": head / head_n, "val_ce_first4_unigram": head_uni / head_n,
            "val_ce_encoder_next_token": ar / ar_n, "val_ce_encoder_unigram": ar_uni / ar_n}


def diffusion_loss_with_ar(model, prompts, clean, vocab, gen, noise_level):
    loss, ar_loss, per_token = diffusion_loss(model, prompts, clean, vocab, gen, noise_level=noise_level,
                                              self_condition=False)
    return ar_loss, loss, per_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("training/data/corpus.jsonl"))
    parser.add_argument("--tokenizer", type=Path, default=Path("models/diffusion-infill-small"))
    parser.add_argument("--out", type=Path, default=Path("models/diffusion-infill-small"))
    parser.add_argument("--run", type=Path, default=Path("training/runs/small"))
    parser.add_argument("--minutes", type=float, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompt-len", type=int, default=192)
    parser.add_argument("--canvas", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", choices=["small", "tiny"], default="small", help="tiny: a smoke run for CI")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke runs)")
    parser.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    parser.add_argument("--metrics", type=Path, default=Path("training/metrics.json"))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    vocab = len(tokenizer)
    fim_ids = tuple(tokenizer.convert_tokens_to_ids(t) for t in ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"))
    train_stream, val_stream = tokenize_corpus(args.corpus, tokenizer, args.run / "tokens.npz")
    newline_ids = np.array([i for i in range(vocab) if "\n" in tokenizer.decode([i])], dtype=np.int32)
    print(f"train {len(train_stream):,} tokens, val {len(val_stream):,} tokens, vocab {vocab}", flush=True)

    counts = np.bincount(train_stream, minlength=vocab).astype(np.float64) + 1.0
    counts[EOS_ID] += len(train_stream) / 40  # the baseline gets a fair share of <eos> (about one per middle)
    unigram_logp = torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)

    max_suffix = min(64, args.prompt_len // 3)  # the prefix always keeps most of the prompt
    batcher = Batcher(train_stream, newline_ids, args.prompt_len, args.canvas, max_suffix, fim_ids, args.seed)
    val_batcher = Batcher(val_stream, newline_ids, args.prompt_len, args.canvas, max_suffix, fim_ids, 99)
    val_batches = [val_batcher.batch(args.batch) for _ in range(8)]

    make_config = tiny_config if args.config == "tiny" else small_config
    config = make_config(vocab_size=vocab, canvas_length=args.canvas)
    model = DiffusionGemmaForBlockDiffusion(config)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)
    args.run.mkdir(parents=True, exist_ok=True)
    log_path = args.run / "log.jsonl"
    ckpt = args.run / "checkpoint.pt"
    step, elapsed_before = 0, 0.0
    if ckpt.exists():  # resumable: the budget counts time already spent
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, elapsed_before = state["step"], state["elapsed"]
        batcher.rng.setstate(state["batcher_rng"])
        gen.set_state(state["gen"])
        print(f"resumed at step {step}", flush=True)
    budget = args.minutes * 60
    started = time.time()
    log = open(log_path, "a")
    print(f"{params / 1e6:.2f}M parameters; training for {args.minutes} min", flush=True)
    while True:
        elapsed = elapsed_before + time.time() - started
        frac = elapsed / budget
        if frac >= 1.0 or (args.max_steps is not None and step >= args.max_steps):
            break
        warm = min(1.0, (step + 1) / args.warmup)
        lr = args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        prompts, clean = batcher.batch(args.batch)
        loss, ar_loss, _ = diffusion_loss(model, prompts, clean, vocab, gen, self_condition=step % 2 == 1)
        (loss + 0.5 * ar_loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        record = {"step": step, "time_s": round(elapsed, 1), "lr": lr, "train_loss": loss.item(),
                  "train_ar_loss": ar_loss.item()}
        if step % 100 == 0 or step == 1:
            record.update(evaluate(model, val_batches, vocab, unigram_logp))
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": elapsed_before + time.time() - started, "batcher_rng": batcher.rng.getstate(),
                        "gen": gen.get_state()}, ckpt)
            print(json.dumps(record), flush=True)
        log.write(json.dumps(record) + "\n")
        log.flush()

    final = evaluate(model, val_batches, vocab, unigram_logp)
    final.update({"steps": step, "minutes": round((elapsed_before + time.time() - started) / 60, 1),
                  "parameters": params, "train_tokens_seen": step * args.batch * (args.prompt_len + args.canvas),
                  "batch": args.batch, "prompt_len": args.prompt_len, "canvas": args.canvas})
    print(json.dumps(final), flush=True)
    model.eval()
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    (args.out / "diffusion_infill.json").write_text(json.dumps(
        {"layout": "spm-sentinels", "max_prompt_tokens": args.prompt_len, "canvas_length": args.canvas,
         "trained_with": "training/train.py", "final_eval": final}, indent=1) + "\n")
    args.metrics.write_text(json.dumps(final, indent=1) + "\n")


if __name__ == "__main__":
    main()
