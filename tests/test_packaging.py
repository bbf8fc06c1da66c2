"""A wheel (what `pip install .` or pipx installs, not the editable install the README uses) carries everything the
server needs: the tree-sitter queries and the embedded model, found where it is installed."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_installs_the_embedded_model_and_the_queries(tmp_path):
    source = tmp_path / "source"   # the tracked files only, so nothing built here lands in the checkout
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "wheels"), str(source)], check=True, capture_output=True)
    wheel, = (tmp_path / "wheels").glob("diffusion_infill-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name for name in os.listdir(ROOT / "models" / "diffusion-infill-small")}
    assert {f"diffusion_infill_models/diffusion-infill-small/{name}" for name in shipped} <= names
    assert "infill/queries/python.scm" in names

    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # Run outside the checkout: its folder on sys.path would hold the packages first.
    found = subprocess.run(
        [sys.executable, "-c", "import engine.loading as l; print(l.__file__); print(l.DEFAULT_MODEL_DIR)"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)}, capture_output=True, text=True,
        check=True).stdout.split("\n")
    module, model_dir = Path(found[0]), Path(found[1])
    assert module.is_relative_to(target) and model_dir.is_relative_to(target)   # the installed copy, not this tree
    # every file of the checkpoint, whole (one model.safetensors, or shards and their index)
    assert {name: (model_dir / name).stat().st_size for name in shipped} == {
        name: (ROOT / "models" / "diffusion-infill-small" / name).stat().st_size for name in shipped}
