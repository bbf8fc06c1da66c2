"""A CPU smoke run of the real training script: tiny DiffusionGemma, the shipped tokenizer, a few steps."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from transformers import DiffusionGemmaForBlockDiffusion

ROOT = Path(__file__).resolve().parents[1]


def test_a_few_training_steps_lower_the_held_out_loss_and_save_a_loadable_model(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    with open(corpus, "w") as sink:  # the project's own source as a small corpus
        for path in sorted((ROOT / "engine").glob("*.py")) + sorted((ROOT / "infill").glob("*.py")):
            sink.write(json.dumps({"dist": "diffusion-infill", "path": path.name, "text": path.read_text()}) + "\n")
    out, run, metrics = tmp_path / "model", tmp_path / "run", tmp_path / "metrics.json"
    done = subprocess.run(
        [sys.executable, "-m", "training.train", "--config", "tiny", "--corpus", str(corpus), "--out", str(out),
         "--run", str(run), "--metrics", str(metrics), "--minutes", "10", "--max-steps", "30", "--warmup", "1",
         "--batch", "8", "--prompt-len", "64", "--canvas", "32", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    first = next(r for r in log if "val_ce_half_noise" in r)
    final = json.loads(metrics.read_text())
    assert final["steps"] == 30
    assert final["val_ce_half_noise"] < first["val_ce_half_noise"] - 0.5
    model = DiffusionGemmaForBlockDiffusion.from_pretrained(out)
    assert model.config.canvas_length == 32
    assert json.loads((out / "diffusion_infill.json").read_text())["layout"] == "spm-sentinels"
