"""What the diffusion trainer and the AR twin's trainer share: model sizes, device and precision, the learning-rate
schedule, chunked checkpoints that resume, the unigram baseline, and the metrics record."""
from __future__ import annotations

import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from engine.configs import BOS_ID, EOS_ID, PAD_ID, _text_config, _TINY_VISION, small_config, tiny_config

PART_BYTES = 16 * 1024 * 1024 - 1  # a checkpoint is split into parts this size: one file back per part, at most


# ---- model sizes --------------------------------------------------------------------------------------------------

def gpu_config(vocab_size: int = 8192, canvas_length: int = 64):
    """The GPU-trained embedded model: ~19M parameters, under 40 MB as bf16 safetensors (see test_training_configs),
    about 11M active per token (2 of 4 experts)."""
    from transformers import DiffusionGemmaConfig

    # window 512 > prompt 256 + canvas 64: a sliding layer's cache never drops keys, so the engine can still reuse
    # the encoder cache of a shared prompt prefix between keystrokes (it cannot once a window has filled)
    text = _text_config(vocab_size, hidden=384, layers=6, heads=6, kv_heads=2, head_dim=64,
                        experts=4, top_k=2, expert_hidden=256, window=512)
    return DiffusionGemmaConfig(text_config=text, vision_config=dict(_TINY_VISION), canvas_length=canvas_length)


DIFFUSION_CONFIGS = {"tiny": tiny_config, "small": small_config, "gpu": gpu_config}


def ar_config(name: str, vocab_size: int):
    """The AR twin: a Llama causal LM of about the diffusion model's total size (tied embeddings, GQA)."""
    from transformers import LlamaConfig

    sizes = {"tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                          num_key_value_heads=1),
             "small": dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4,
                           num_key_value_heads=2),
             "gpu": dict(hidden_size=384, intermediate_size=1344, num_hidden_layers=8, num_attention_heads=6,
                         num_key_value_heads=2)}
    return LlamaConfig(vocab_size=vocab_size, max_position_embeddings=4096, tie_word_embeddings=True,
                       pad_token_id=PAD_ID, eos_token_id=EOS_ID, bos_token_id=BOS_ID, **sizes[name])


# ---- device, precision, schedule ----------------------------------------------------------------------------------

def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (weights and optimizer stay fp32); plain fp32 on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def learning_rate(base: float, step: int, warmup: int, progress: float, floor: float = 0.1,
                  restart: tuple[float, float] | None = None) -> float:
    """Linear warm-up, then cosine decay to `floor` x base as progress goes 0 -> 1. `restart` (progress, rate):
    where a resumed run's schedule changed length, the rate goes on from the one it had there, down to the floor
    over what is left (the cosine read at the new progress jumped back up, 5x at a finished run's end, onto Adam
    moments gathered at the floor's rate)."""
    progress = min(progress, 1.0)
    if restart is not None and progress >= restart[0]:
        start, rate = restart
        left = (progress - start) / (1 - start) if start < 1 else 1.0
        return base * floor + (rate - base * floor) * 0.5 * (1 + math.cos(math.pi * left))
    warm = min(1.0, (step + 1) / max(warmup, 1))
    return base * warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def schedule_progress(step: int, elapsed_s: float, total_steps: int | None, total_minutes: float | None) -> float:
    """How far through its schedule a run is: by steps or by time, whichever is further."""
    by_steps = step / total_steps if total_steps else 0.0
    by_time = elapsed_s / (total_minutes * 60) if total_minutes else 0.0
    return max(by_steps, by_time)


def schedule_restart(state: dict, saved_args: dict, args, step: int, elapsed_s: float
                     ) -> tuple[float, float] | None:
    """The `restart` for learning_rate in a run resumed from `state`: kept from an earlier resume, or made here
    when this chunk gives the schedule another length than the chunk before."""
    restart = state.get("restart")
    before = (saved_args.get("total_steps"), saved_args.get("total_minutes"))
    if before == (args.total_steps, args.total_minutes) or step < args.warmup:
        return restart   # (in the warm-up the plain schedule has not decayed yet: nothing to jump from)
    rate = learning_rate(args.lr, step, args.warmup, schedule_progress(step, elapsed_s, *before), restart=restart)
    return schedule_progress(step, elapsed_s, args.total_steps, args.total_minutes), rate


def canvas_lengths(requested: list[int] | None, canvas: int) -> list[int]:
    """The canvas lengths a run draws from, one per step (the engine trims its canvas to these buckets, so the
    model should know each): by default the engine's buckets below --canvas and --canvas itself. ValueError when
    the lengths asked for lie outside what the engine can run."""
    from engine.infill_engine import CANVAS_BUCKETS
    from engine.loading import MIN_CANVAS

    lengths = sorted(set(requested or [n for n in CANVAS_BUCKETS if n < canvas]) | {canvas})
    if lengths[0] < MIN_CANVAS or lengths[-1] > canvas:
        raise ValueError(f"--canvas-lengths must lie between {MIN_CANVAS} (the engine's smallest canvas) and --canvas")
    return lengths


def make_optimizer(model: torch.nn.Module, lr: float, fused: bool) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), fused=fused)


def unigram_logp(stream: np.ndarray, vocab: int) -> torch.Tensor:
    counts = np.bincount(stream, minlength=vocab)[:vocab].astype(np.float64) + 1.0
    counts[EOS_ID] += len(stream) / 40  # the baseline gets a fair share of <eos> (about one per middle)
    return torch.tensor(np.log(counts / counts.sum()), dtype=torch.float32)


# ---- checkpoints --------------------------------------------------------------------------------------------------

def _cast(obj, dtype):
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() and obj.dtype != dtype else obj
    if isinstance(obj, dict):  # optimizer step counts stay as they are: bf16 is exact only up to 256
        return {k: v if k == "step" else _cast(v, dtype) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cast(v, dtype) for v in obj]
    return obj


def save_checkpoint(run: Path, state: dict, dtype: torch.dtype = torch.float32) -> list[Path]:
    """Write `state` as checkpoint.pt.000, .001, ... (each <= 16 MiB); the part list, renamed into place last,
    marks it complete. The parts alternate between two names (`checkpoint.pt.NNN`, `checkpoint.b.pt.NNN`), so a
    run killed while writing (a time limit) still has the previous checkpoint whole.
    dtype bfloat16 halves it (weights and optimizer moments), for models whose fp32 state would not fit 8 parts."""
    buffer = io.BytesIO()
    torch.save(_cast(state, dtype) if dtype != torch.float32 else state, buffer)
    data = buffer.getvalue()
    run.mkdir(parents=True, exist_ok=True)
    index = run / "checkpoint.json"
    previous = set(json.loads(index.read_text())["parts"]) if index.is_file() else set()
    stem = "checkpoint.b.pt" if "checkpoint.pt.000" in previous else "checkpoint.pt"
    for stale in run.glob(stem + ".*"):   # a set older than the one the index names
        stale.unlink()
    parts = []
    for i, begin in enumerate(range(0, len(data), PART_BYTES)):
        parts.append(run / f"{stem}.{i:03d}")
        parts[-1].write_bytes(data[begin:begin + PART_BYTES])
    written = run / "checkpoint.json.tmp"
    written.write_text(json.dumps({"parts": [p.name for p in parts], "bytes": len(data),
                                   "dtype": str(dtype).replace("torch.", "")}) + "\n")
    os.replace(written, index)
    for name in previous - {p.name for p in parts}:
        (run / name).unlink(missing_ok=True)
    return parts


def load_checkpoint(run: Path, device: torch.device) -> dict | None:
    index = run / "checkpoint.json"
    if not index.is_file():
        return None
    parts = json.loads(index.read_text())["parts"]
    data = b"".join((run / name).read_bytes() for name in parts)
    state = torch.load(io.BytesIO(data), map_location=device, weights_only=False)
    return _cast(state, torch.float32)


# The flags that define a run: a chunk that resumes it with others would train (or label) another model. The
# schedule's length (--total-steps, --total-minutes) may change: a resume with a larger one stretches the run.
RUN_FLAGS = ("config", "noise", "batch", "canvases_per_context", "prompt_len", "canvas", "canvas_lengths",
             "lr", "seed", "save_dtype", "tokenizer_sha1")
# (the tokenizer is named by its digest, set by the trainers: weights trained on one tokenizer's ids read another's
# as noise, and the saved model would ship the new tokenizer)
FLAG_NAMES = {"tokenizer_sha1": "the tokenizer"}


def check_resume_flags(saved: dict, now: dict) -> None:
    """Refuse to resume a run with flags other than those it was started with (defaults included: a flag left
    out of a later command takes its default, not the run's value)."""
    def flag(value) -> str:   # as typed on the command line: `--canvas-lengths 16 32`, not `[16, 32]`
        return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    changed = [f"{FLAG_NAMES.get(key, '--' + key.replace('_', '-'))} {flag(saved[key])} (now {flag(now[key])})"
               for key in RUN_FLAGS
               if key in saved and key in now and saved[key] != now[key]]
    if changed:
        raise SystemExit("this run folder holds a run started with other flags; resume it with "
                         + ", ".join(changed) + ", or start a new --run folder")


def restore_optimizer(opt: torch.optim.Optimizer, state: dict) -> None:
    opt.load_state_dict(state)  # load_checkpoint already brought bf16-saved moments back to fp32


class Clock:
    """Wall time of this chunk plus what earlier chunks spent; training time apart from evaluation."""

    def __init__(self, elapsed_before: float = 0.0, train_before: float = 0.0):
        self.started = time.time()
        self.elapsed_before, self.train_time = elapsed_before, train_before

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.started

    def chunk(self) -> float:
        return time.time() - self.started


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
