"""One GPU session's training, as a few commands (training/GPU-RUNBOOK.md says which `run` calls make them).

    python -m training.gpu_session prepare --out $OUT           # corpus + shards from the machine's own Python
    python -m training.gpu_session train --minutes 7 --out $OUT # uniform, masked and the AR twin, equal budget
    python -m training.gpu_session export ar --out $OUT         # another run's model, in parts that travel
    python -m training.gpu_session unpack FILES_AT --dest training/runs/gpu   # here, after a call came back

`train` first runs every variant for a few steps side by side (they share the GPU all along), sets one step
budget from the slowest, so that all variants see the same data tokens in about `--minutes`, runs them, fills
held-out lines with each through its engine, keeps the diffusion variant with the better exact match, and writes
into $OUT: results.tar (metrics, logs, loss curves, summary, data manifests) and the chosen model as
model-<variant>.tar.000, .001, ... (each part under 16 MiB, at most 8 files and 64 MiB come back per call).
Results and the diffusion model with the lower validation loss are packed as soon as training ends, before the
held-out fills (which have a deadline), so a slow or failing fill never loses a trained model.
"""
from __future__ import annotations

import argparse
import io
import json
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PART_BYTES = 15 * 1024 * 1024
OUT_FILES = 8                          # what one `run` call brings back from $OUT ...
OUT_BYTES = 62 * 1024 * 1024           # ... 64 MiB, less room for train.log, which the runbook tees into $OUT
RUNS = Path("training/runs/gpu")
TRAVEL_SHARDS = Path("training/data/shards-travel")
DEVICE_DATA = Path("training/data/device")
DEVICE_SHARDS = Path("training/data/device-shards")
TOKENIZER = Path("training/tokenizer")
VARIANTS = {"uniform": ("training.train", ["--noise", "uniform"]),
            "masked": ("training.train", ["--noise", "masked"]),
            "ar": ("training.train_ar", [])}


def shard_folders() -> list[Path]:
    folders = [f for f in (TRAVEL_SHARDS, DEVICE_SHARDS) if (f / "meta.json").is_file()]
    if not folders:
        raise SystemExit("no token shards: carry training/data/shards-travel or run `gpu_session prepare` first")
    return folders


def prepare(args) -> None:
    """Corpus from this Python's site-packages and stdlib (licence-checked, held-out and HumanEval rules as here),
    tokenized with the repository's tokenizer. Nothing leaves the machine but the manifest."""
    import site

    site_dirs = [p for p in site.getsitepackages() if Path(p).is_dir()]
    if not (DEVICE_SHARDS / "meta.json").is_file() or args.force:
        deadline = time.time() + args.timeout_s
        steps = [["training.data", "--site-packages", *site_dirs, "--stdlib", "--out", str(DEVICE_DATA), "--max-mb",
                  str(args.max_mb), "--per-dist-mb", str(args.per_dist_mb), "--manifest",
                  str(DEVICE_DATA / "data_manifest.json")],
                 ["training.shards", "--corpus", str(DEVICE_DATA / "corpus.jsonl"), "--tokenizer", str(TOKENIZER),
                  "--out", str(DEVICE_SHARDS), "--max-mb", "100000", "--manifest",
                  str(DEVICE_DATA / "data_manifest.json")]]
        for step in steps:
            try:  # a cut step leaves no meta.json, so training falls back to the carried shards
                subprocess.run([sys.executable, "-m", *step], check=True, timeout=max(deadline - time.time(), 1))
            except subprocess.TimeoutExpired:
                print(f"prepare: {step[0]} did not finish within {args.timeout_s:.0f} s; training uses the carried "
                      "shards alone", flush=True)
                return
    if args.out and (DEVICE_DATA / "data_manifest.json").is_file():
        Path(args.out).mkdir(parents=True, exist_ok=True)
        shutil.copy(DEVICE_DATA / "data_manifest.json", Path(args.out) / "data_manifest_gpu_machine.json")


def trainer_command(variant: str, run: Path, args, extra: list[str]) -> list[str]:
    module, flags = VARIANTS[variant]
    cmd = [sys.executable, "-m", module, *flags, "--config", args.config, "--run", str(run),
           "--shards", *map(str, shard_folders()), "--tokenizer", str(TOKENIZER), "--batch", str(args.batch),
           "--prompt-len", str(args.prompt_len), "--canvas", str(args.canvas), "--lr", str(args.lr),
           "--save-dtype", "bfloat16", "--checkpoint-dtype", "bfloat16", *extra]
    if module == "training.train":
        cmd += ["--canvases-per-context", str(args.canvases_per_context)]
        if args.experts_impl:
            cmd += ["--experts-impl", args.experts_impl]
    return cmd


def run_side_by_side(commands: dict[str, list[str]], logs: Path) -> dict[str, int]:
    logs.mkdir(parents=True, exist_ok=True)
    procs = {}
    for name, cmd in commands.items():
        sink = open(logs / f"{name}.stdout.log", "a")
        procs[name] = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    codes = {name: proc.wait() for name, proc in procs.items()}
    for name, code in codes.items():
        if code:  # the reply carries only stdout's tail: show why
            print(f"--- {name} exited {code}; last lines of {logs / f'{name}.stdout.log'}:", flush=True)
            print("\n".join((logs / f"{name}.stdout.log").read_text().splitlines()[-25:]), flush=True)
    return codes


def step_seconds(run: Path, skip: int = 5) -> float:
    """Seconds per step after the first `skip` (start-up, CUDA kernels being compiled)."""
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    late = [r for r in log if r["step"] > skip]
    return (late[-1]["time_s"] - late[0]["time_s"]) / max(late[-1]["step"] - late[0]["step"], 1)


def tar_of(folder: Path, name: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=name)
    return buffer.getvalue()


def parts_of(name: str, out: Path) -> list[Path]:
    return sorted(out.glob(f"{name}.tar.[0-9][0-9][0-9]"))


def pack(folder: Path, name: str, out: Path, fit: bool = False, replaces: list[Path] = ()) -> list[Path]:
    """folder -> out/name.tar.000, .001, ... (each under 16 MiB), replacing an earlier packing of `name` and the
    files in `replaces` (removed only once the new parts are written).
    fit: write nothing (and return []) unless $OUT then still holds at most OUT_FILES files and OUT_BYTES."""
    data = tar_of(folder, name)
    out.mkdir(parents=True, exist_ok=True)
    old = [*parts_of(name, out), *replaces]
    count = -(-len(data) // PART_BYTES)
    others = [p for p in out.rglob("*") if p.is_file() and p not in old]
    if fit and (len(others) + count > OUT_FILES or sum(p.stat().st_size for p in others) + len(data) > OUT_BYTES):
        return []
    parts = []
    for i, begin in enumerate(range(0, len(data), PART_BYTES)):
        parts.append(out / f"{name}.tar.{i:03d}")
        parts[-1].write_bytes(data[begin:begin + PART_BYTES])
    for stale in set(old) - set(parts):
        stale.unlink()
    return parts


def unpack(args) -> None:
    source, dest = Path(args.files_at), Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = sorted({p.name.rsplit(".tar.", 1)[0] for p in source.rglob("*.tar.*")})
    for name in names:
        data = b"".join(p.read_bytes() for p in sorted(source.rglob(f"{name}.tar.*")))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        print(f"{name} -> {dest / name}")


def train(args) -> None:
    started = time.time()
    out = Path(args.out)
    runs = Path(args.runs)
    variants = args.variants
    # 1. probe: every variant for a few steps, side by side, as they will run
    probe_steps = args.probe_steps
    probes = {v: runs / f"probe-{v}" for v in variants}
    for folder in [*probes.values(), runs / "logs", runs / "results"]:  # nothing of an earlier `train` mixes in
        shutil.rmtree(folder, ignore_errors=True)
    codes = run_side_by_side({v: trainer_command(v, probes[v], args, [
        "--total-steps", "1000000", "--chunk-steps", str(probe_steps), "--warmup", "1000000",
        "--eval-every", "1000000", "--eval-batches", "1", "--timing-only"]) for v in variants},
        runs / "logs")
    if any(codes.values()):
        raise SystemExit(f"probe failed: {codes}; see {runs / 'logs'}")
    per_step = {v: step_seconds(probes[v], skip=min(5, probe_steps // 3)) for v in variants}
    budget_s = args.minutes * 60 - (time.time() - started) - args.reserve_s  # what is left for the real runs
    steps = max(10, int(budget_s / max(per_step.values())))
    plan = {"seconds_per_step_side_by_side": per_step, "total_steps": steps, "minutes_left": round(budget_s / 60, 2)}
    print(json.dumps(plan), flush=True)
    for folder in probes.values():
        shutil.rmtree(folder, ignore_errors=True)
    # 2. the runs: the same steps, batch and example stream for every variant = the same data tokens
    runs_of = {v: runs / v for v in variants}
    for folder in runs_of.values():  # a run left by an earlier `train` would be resumed: unequal budgets, 0 steps
        shutil.rmtree(folder, ignore_errors=True)
    # A safety stop; the schedule ends at `steps`. The probe's step time leaves out the runs' compile, evals and
    # checkpoints, so the margin is a minute. What it overruns comes out of the held-out fills' reserve (they get
    # at least 30 s), so the stage still ends near `--minutes`.
    limit = max(budget_s, 0) / 60 + 1.0
    commands = {v: trainer_command(v, runs_of[v], args, [
        "--total-steps", str(steps), "--minutes", f"{limit:.2f}", "--warmup", str(min(200, steps // 10)),
        "--eval-every", str(max(steps // 10, 1)), "--checkpoint-every", str(max(steps // 2, 1))])
        for v in variants}
    for v, cmd in commands.items():   # what resumes the run by hand (the trainers refuse other run flags)
        runs_of[v].mkdir(parents=True, exist_ok=True)
        (runs_of[v] / "command.txt").write_text(shlex.join(cmd) + "\n")
    codes = run_side_by_side(commands, runs / "logs")
    summary = {"plan": plan, "exit_codes": codes, "variants": {}}
    for v in variants:
        metrics_file = runs_of[v] / "metrics.json"
        summary["variants"][v] = {"metrics": json.loads(metrics_file.read_text()) if metrics_file.is_file() else None}
    # 3. pack results and the diffusion models (lower validation loss first, as many as come back) before the
    # held-out fills, so that a fill that fails or runs long loses no trained model
    trained = [v for v in variants if v != "ar" and (runs_of[v] / "model" / "config.json").is_file()]
    by_loss = sorted(trained, key=lambda v: (summary["variants"][v]["metrics"] or {}).get("val_ce_full_noise",
                                                                                         float("inf")))
    summary["chosen"] = by_loss[0] if by_loss else None
    summary["chosen_by"] = "val_ce_full_noise (before the held-out fills)"
    pack_results(summary, runs, runs_of, variants, out, started, plot=True)
    packed = [v for v in by_loss if pack(runs_of[v] / "model", f"model-{v}", out, fit=True)]
    print(json.dumps({"packed_before_heldout_fills": packed, "lower_val_loss": summary["chosen"]}), flush=True)
    # 4. held-out fills through each engine, side by side, eager (no compiling), cut at the stage's deadline
    deadline = max(started + args.minutes * 60 - 20, time.time() + 30)
    evals = {}
    for v in variants:
        model = runs_of[v] / "model"
        if (model / "config.json").is_file():
            evals[v] = subprocess.Popen(
                [sys.executable, "-m", "training.heldout_eval", "--model", str(model), "--engine",
                 "ar" if v == "ar" else "diffusion", "--count", str(args.eval_count), "--fast-path", "off", "--out",
                 str(runs_of[v] / "heldout.json"), "--shards", *map(str, shard_folders())],
                stdout=subprocess.DEVNULL, stderr=open(runs / "logs" / f"{v}.heldout.log", "w"))
    for v, proc in evals.items():
        try:
            proc.wait(timeout=max(deadline - time.time(), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            with open(runs / "logs" / f"{v}.heldout.log", "a") as log:
                log.write(f"\ngpu_session: held-out fills cut at the stage's deadline ({args.minutes} minutes)\n")
        report = runs_of[v] / "heldout.json"
        summary["variants"][v]["heldout"] = (json.loads(report.read_text()) if report.is_file() else
                                             {"error": (runs / "logs" / f"{v}.heldout.log").read_text()[-2000:]})
    best, common = best_by_heldout({v: summary["variants"][v].get("heldout", {}) for v in trained})
    if best is not None:
        summary["chosen"], summary["chosen_by"] = best, f"held-out exact match over the first {common} fills"
    elif summary["chosen"] is not None:
        summary["chosen_by"] = (f"val_ce_full_noise (held-out fills: {common} in common, under "
                                f"{MIN_HELDOUT_FILLS} or with no match)")
        print(f"held-out fills too few to choose by: chose {summary['chosen']} by its lower validation loss "
              "(val_ce_full_noise)", flush=True)
    # 5. what comes back: the results again, with the fills, and the chosen model in place of another if it differs
    chosen = summary["chosen"]
    if chosen is not None and chosen not in packed:
        replaced = [p for v in packed for p in parts_of(f"model-{v}", out)]
        if pack(runs_of[chosen] / "model", f"model-{chosen}", out, fit=True, replaces=replaced):
            packed = [chosen]
    summary["packed_models"] = packed
    print(json.dumps({"chosen": chosen, "chosen_by": summary["chosen_by"], "packed_models": packed,
                      **{v: summary["variants"][v].get("heldout") for v in variants}}), flush=True)
    pack_results(summary, runs, runs_of, variants, out, started, plot=False)


def pack_results(summary: dict, runs: Path, runs_of: dict[str, Path], variants: list[str], out: Path,
                 started: float, plot: bool) -> None:
    """summary, every run's metrics, log and stdout, the data manifest and loss curves -> out/results.tar.*"""
    summary["minutes"] = round((time.time() - started) / 60, 2)
    (runs / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    results = runs / "results"
    results.mkdir(parents=True, exist_ok=True)
    shutil.copy(runs / "summary.json", results / "summary.json")
    for v in variants:
        for name in ("metrics.json", "log.jsonl"):
            if (runs_of[v] / name).is_file():
                shutil.copy(runs_of[v] / name, results / f"{v}-{name}")
        for log in (runs / "logs").glob(f"{v}.*.log"):
            shutil.copy(log, results / log.name)
    if (DEVICE_DATA / "data_manifest.json").is_file():
        shutil.copy(DEVICE_DATA / "data_manifest.json", results / "data_manifest_gpu_machine.json")
    if plot:
        drawn = subprocess.run([sys.executable, "-m", "training.plot", "--runs",
                                *[str(runs_of[v]) for v in variants], "--out", str(results / "loss_curves.png")],
                               check=False)
        if drawn.returncode:   # (no matplotlib in this machine's wheels, say): the logs come back all the same
            print("no loss_curves.png: draw it where the results land, python -m training.plot --runs "
                  "RESULTS/*-log.jsonl --out loss_curves.png", flush=True)
    pack(results, "results", out)


def export(args) -> None:
    folder = Path(args.runs) / args.variant / "model"
    if not (folder / "config.json").is_file():
        raise SystemExit(f"no model at {folder}: the machine was given back since it trained (runs do not survive)")
    for part in pack(folder, f"model-{args.variant}", Path(args.out)):
        print(part)


MIN_HELDOUT_FILLS = 20   # fewer fills in common than this say too little to overrule the validation loss


def best_by_heldout(reports: dict[str, dict]) -> tuple[str | None, int]:
    """The variant with the most exact matches over the fills every variant scored (the same held-out lines in the
    same order; a run cut at the deadline scored fewer), ties to uniform; and that count of fills. None (the
    validation loss decides) unless every variant scored at least MIN_HELDOUT_FILLS and the best matched some."""
    hits = {v: report.get("hits") or [] for v, report in reports.items()}
    common = min(map(len, hits.values()), default=0)
    if common < MIN_HELDOUT_FILLS:
        return None, common
    best = max(hits, key=lambda v: (sum(hits[v][:common]), v == "uniform"))
    return (best, common) if sum(hits[best][:common]) else (None, common)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", default=None)
    p.add_argument("--max-mb", type=float, default=400)
    p.add_argument("--per-dist-mb", type=float, default=6)
    p.add_argument("--force", action="store_true")
    p.add_argument("--timeout-s", type=float, default=150, help="give up on the machine's own corpus after this")
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--runs", default=str(RUNS))
    t.add_argument("--minutes", type=float, default=7.5, help="the whole stage, probe and held-out fills included")
    t.add_argument("--reserve-s", type=float, default=90,
                   help="kept for restarting the trainers after the probe, held-out fills and packing")
    t.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["uniform", "masked", "ar"])
    t.add_argument("--config", default="gpu")
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--canvases-per-context", type=int, default=4)
    t.add_argument("--prompt-len", type=int, default=256)
    t.add_argument("--canvas", type=int, default=64)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--probe-steps", type=int, default=25)
    t.add_argument("--experts-impl", choices=["eager", "batched_mm", "grouped_mm"], default=None)
    t.add_argument("--eval-count", type=int, default=100)
    e = sub.add_parser("export")
    e.add_argument("variant", choices=sorted(VARIANTS))
    e.add_argument("--out", required=True)
    e.add_argument("--runs", default=str(RUNS))
    u = sub.add_parser("unpack")
    u.add_argument("files_at")
    u.add_argument("--dest", default=str(RUNS))
    args = parser.parse_args(argv)
    {"prepare": prepare, "train": train, "export": export, "unpack": unpack}[args.stage](args)


if __name__ == "__main__":
    main()
