"""Every Python file of the project compiles: training/ and bench/ are scripts no test imports whole (a syntax error
in training/plot.py went unseen, and the GPU session's curves with it)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(path for folder in ("engine", "infill", "lsp_server", "training", "bench", "tests", "editors")
                 for path in (ROOT / folder).rglob("*.py")
                 if not any(part.startswith(".") or part == "node_modules" for part in path.relative_to(ROOT).parts))


def test_the_project_has_its_sources_here():
    assert len(SOURCES) > 50 and ROOT / "training" / "plot.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_compiles(path):
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
