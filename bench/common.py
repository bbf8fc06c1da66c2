"""What several benches share and that needs neither an LSP client nor the server: the held-back functions typed
into their files. bench/typing.py (which needs pytest-lsp) and bench/prefix_reuse.py (which must run where only
torch and transformers are installed, such as the GPU machine) both import it from here."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from engine.types import Candidate, Candidates, EngineError

# Two functions from click, which is held out of the embedded model's training data.
DEFAULT_FUNCTIONS = ("click.formatting:join_options", "click.termui:_interpret_color")


def engine_or_exit(config, **kwargs):
    """InfillEngine(config), or the bench ends with the engine's one-line reason (a missing model folder, CUDA asked
    for where there is none) instead of a traceback."""
    from engine.infill_engine import InfillEngine
    try:
        return InfillEngine(config, **kwargs)
    except EngineError as exc:
        raise SystemExit(f"the engine did not start: {exc}") from None


def held_back(spec: str) -> tuple[str, str, int, str]:
    """(path, file text, offset, function source) for module:function."""
    module_name, _, name = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), name)
        path = inspect.getsourcefile(function)
        text = Path(path).read_text()
    except (ImportError, AttributeError, TypeError, OSError) as exc:
        raise SystemExit(f"{spec}: no function whose source file can be read here ({exc})") from None
    lines, first = inspect.getsourcelines(function)
    start = sum(len(line) for line in text.splitlines(keepends=True)[:first - 1])
    source = "".join(lines)
    assert text[start:start + len(source)] == source, "the function's source is not where inspect says"
    return path, text, start, source


class OneCandidate:
    """An engine that offers one given text as its only candidate (a bench's oracle; no model runs)."""

    def __init__(self, answer: str, reason: str = "the cut code"):
        self.answer, self.reason = answer, reason

    def fill(self, prefix, suffix, **_):
        item = Candidate(text=self.answer, confidence=1.0, length=1, canvas_length=1, steps=0, ended=True)
        return Candidates(items=[item], layout="oracle", reason=self.reason)
