"""Draw training curves from runs' log.jsonl files.

    python -m training.plot --log training/runs/diffusion/log.jsonl --out training/loss_curve.png   # one run, in detail
    python -m training.plot --runs training/runs/gpu/uniform training/runs/gpu/masked training/runs/gpu/ar \
        --out training/loss_curves_gpu.png                                                        # variants side by side
    python -m training.plot --runs training/runs/gpu/results/*-log.jsonl --out training/loss_curves_gpu.png
                                                                        # from a GPU session's results, drawn here
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def pyplot():
    """matplotlib's pyplot, drawing to files (the [train] extra; imported here so that the rest reads without it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def run_files(run: Path) -> tuple[str, Path, Path]:
    """(name, log, metrics) of a run folder, or of a `VARIANT-log.jsonl` in a GPU session's results (the
    machine may lack matplotlib: its curves are then drawn here from what came back)."""
    if run.suffix == ".jsonl":
        name = run.name.removesuffix(".jsonl").removesuffix("-log")
        return name, run, run.with_name(f"{name}-metrics.json")
    return run.name, run / "log.jsonl", run / "metrics.json"


def plot_runs(runs: list[Path], out: Path) -> None:
    """Train loss and the held-out measure each variant optimises, against data tokens seen (equal budgets line up):
    diffusion canvas CE at half noise (uniform: random tokens, masked: <mask>), AR twin CE on the middle."""
    fig, (train_ax, val_ax) = pyplot().subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        name, log, metrics_file = run_files(run)
        records = read_log(log)
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        per_step = metrics.get("data_tokens_seen", 0) / max(metrics.get("steps", 1), 1)
        x = [r["step"] * per_step / 1e6 if per_step else r["step"] for r in records if "train_loss" in r]
        train_ax.plot(x, smooth([r["train_loss"] for r in records if "train_loss" in r], 10), label=name)
        key = "val_ce_middle" if any("val_ce_middle" in r for r in records) else "val_ce_half_noise"
        evals = [r for r in records if key in r]
        val_ax.plot([r["step"] * per_step / 1e6 if per_step else r["step"] for r in evals], [r[key] for r in evals],
                    "o-", label=f"{name}: {key}")
    for ax, title in ((train_ax, "training loss (smoothed)"), (val_ax, "held-out cross-entropy (nats/token)")):
        ax.set_xlabel("data tokens seen (millions)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out} ({len(runs)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path, default=Path("training/runs/diffusion/log.jsonl"))   # train.py's --run
    parser.add_argument("--runs", type=Path, nargs="+", default=None,
                        help="compare these run folders (or a GPU session's VARIANT-log.jsonl files) instead")
    parser.add_argument("--out", type=Path, default=Path("training/loss_curve.png"))
    args = parser.parse_args()
    if args.runs:
        plot_runs(args.runs, args.out)
        return
    records = read_log(args.log)
    evals = [r for r in records if "val_ce_full_noise" in r]
    fig, ax = pyplot().subplots(figsize=(8, 4.5))
    trained = [r for r in records if "train_loss" in r]  # newer logs read the loss every 10th step
    ax.plot([r["step"] for r in trained], smooth([r["train_loss"] for r in trained]),
            label="train: weighted canvas loss (smoothed)",
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
