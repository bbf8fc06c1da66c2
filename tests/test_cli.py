"""`infill-lsp fill FILE:LINE:COL` through the installed console script."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server.cli import offset_at

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def infill_lsp(*args: str) -> subprocess.CompletedProcess:
    command = shutil.which("infill-lsp") or shutil.which("infill-lsp", path=str(Path(sys.executable).parent))
    assert command, "the console script infill-lsp is not installed"
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=300)


def test_fill_prints_the_completion_and_json_adds_timings(tmp_path):
    source = tmp_path / "mean.py"
    source.write_text("def mean(values):\n    total = sum(values)\n    return \n")
    plain = infill_lsp("fill", f"{source}:3:12")
    assert plain.returncode == 0, plain.stderr
    as_json = infill_lsp("fill", f"{source}:3:12", "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["text"] and plain.stdout == report["text"] + "\n"  # the same deterministic answer
    assert "\n" not in report["text"]
    assert report["range"] == {"start": 53, "end": 53}
    assert report["timings"]["fill_ms"] > 0 and report["timings"]["denoise_ms"] > 0
    assert report["details"]["language"] == "python" and report["model"]["layout"] == "spm-sentinels"


def test_fill_on_the_readme_demo():
    result = infill_lsp("fill", f"{EXAMPLE}:13:9", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["details"]["shape"] == "multi"


@pytest.mark.parametrize("make,location,fragment", [
    (None, "nowhere.py:1:1", "no such file"),
    ("text", "{f}:9:1", "outside"),
    ("text", "{f}:1", "FILE:LINE:COL"),
    ("text", "{f}:0:1", "start at 1"),
    ("binary", "{f}:1:1", "binary"),
    ("latin1", "{f}:1:1", "UTF-8"),
])
def test_bad_locations_and_files_are_clear_errors(tmp_path, make, location, fragment):
    target = tmp_path / "input.py"
    if make == "text":
        target.write_text("x = 1\n")
    elif make == "binary":
        target.write_bytes(b"\x7fELF\x00\x00\x01")
    elif make == "latin1":
        target.write_bytes("caf\xe9 = 1\n".encode("latin-1"))
    result = infill_lsp("fill", location.format(f=target))
    assert result.returncode != 0
    assert fragment in result.stderr


def test_missing_model_is_a_clear_error(tmp_path):
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    result = infill_lsp("fill", f"{source}:1:5", "--model", str(tmp_path / "missing"))
    assert result.returncode == 1 and "model folder not found" in result.stderr


@pytest.mark.parametrize("text,line,col,offset", [
    ("ab\ncd\n", 1, 1, 0), ("ab\ncd\n", 2, 3, 5), ("ab\ncd\n", 3, 1, 6), ("ab\n", 1, 4, None), ("ab\n", 5, 1, None),
])
def test_one_based_locations(text, line, col, offset):
    assert offset_at(text, line, col) == offset
