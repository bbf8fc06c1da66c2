"""Draw the training curve (train loss, held-out loss, unigram baseline) from a run's log.jsonl.

    python -m training.plot --log training/runs/small/log.jsonl --out training/loss_curve.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_log(path: Path) -> list[dict]:
    by_step: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        by_step[record["step"]] = record  # a resumed run rewrites steps after its checkpoint: keep the latest
    return [by_step[s] for s in sorted(by_step)]


def smooth(values: list[float], window: int = 25) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        acc = acc[-window:]
        out.append(sum(acc) / len(acc))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, default=Path("training/runs/small/log.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("training/loss_curve.png"))
    args = parser.parse_args()
    records = read_log(args.log)
    steps = [r["step"] for r in records]
    evals = [r for r in records if "val_ce_full_noise" in r]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, smooth([r["train_loss"] for r in records]), label="train: weighted canvas loss (smoothed)",
            alpha=0.8)
    ax.plot([r["step"] for r in evals], [r["val_ce_half_noise"] for r in evals], "o-",
            label="held-out: canvas CE at half noise")
    ax.plot([r["step"] for r in evals], [r["val_ce_first4_full_noise"] for r in evals], "^-",
            label="held-out: first 4 middle tokens from pure noise")
    ax.plot([r["step"] for r in evals], [r["val_ce_encoder_next_token"] for r in evals], "v-",
            label="held-out: encoder next-token CE")
    ax.plot([r["step"] for r in evals], [r["val_ce_full_noise"] for r in evals], "s-",
            label="held-out: canvas CE from pure noise (first step)")
    ax.axhline(evals[-1]["val_ce_unigram"], color="gray", linestyle="--", label="unigram baseline (canvas tokens)")
    ax.axhline(evals[-1]["val_ce_encoder_unigram"], color="gray", linestyle=":",
               label="unigram baseline (prompt tokens)")
    ax.set_xlabel("optimizer step (batch 16)")
    ax.set_ylabel("cross-entropy (nats/token, middle + <eos>)")
    ax.set_title("diffusion-infill-small: uniform-state FIM diffusion, CPU training")
    ax.set_ylim(0, 9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(records)} steps, {len(evals)} evaluations)")


if __name__ == "__main__":
    main()
