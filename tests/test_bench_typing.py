"""bench/typing.py's typist: what an editor with auto-closed brackets and quotes sends for each key. The replay
itself runs the real server and model (its numbers live in bench/RESULTS.md)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # bench/ is run from the checkout, not installed
from bench.typing import auto_closed_pairs, key_change, keystrokes  # noqa: E402

SOURCE = '''def greet(names, sep=", "):
    """Say hello
    to everyone."""
    text = sep.join(f"hi {name}" for name in names[:3])
    return print(
        text, {"end": "!"}["end"])
'''


def typed(source: str, auto_close: bool = True) -> tuple[str, list]:
    """The buffer after typing `source` key by key as the editor changes it, and the keys."""
    keys = keystrokes(source, 0, 0.1, 0.05, (1.0, 2.0), line_pause=0.4, word_pause=0.04, auto_close=auto_close)
    buffer, cursor = "", 0
    for key in keys:
        change = key_change(buffer[:cursor], key)
        assert change.range.start.line == buffer[:cursor].count("\n")
        removed = 1 if key.overtype else 0
        assert change.range.end.character - change.range.start.character == removed
        if key.overtype:
            assert buffer[cursor] == key.text   # only ever over the closer the editor put there
        buffer = buffer[:cursor] + change.text + buffer[cursor + removed:]
        cursor += len(key.text)
    return buffer, keys


def test_the_editor_closes_pairs_that_close_on_their_line_and_the_typist_types_over_them():
    buffer, keys = typed(SOURCE)
    assert buffer == SOURCE
    closers = [key.closer for key in keys if key.closer]
    assert closers.count(")") == 2 and closers.count('"') == 5 and "]" in closers and "}" in closers
    assert sum(key.overtype for key in keys) == len(closers)
    # the docstring (triple quotes) and the call spread over two lines are typed as they stand
    pairs = auto_closed_pairs(SOURCE)
    assert SOURCE.index('"""') not in pairs and SOURCE.index("print(") + 5 not in pairs


def test_plain_typing_and_source_that_does_not_tokenize_close_nothing():
    buffer, keys = typed(SOURCE, auto_close=False)
    assert buffer == SOURCE and not any(key.closer or key.overtype for key in keys)
    assert auto_closed_pairs("def f(:\n    return (1\n") == {}


def test_a_bench_given_what_cannot_run_ends_with_one_line_not_a_traceback():
    import pytest
    from bench.common import engine_or_exit, held_back
    from engine.types import EngineConfig
    with pytest.raises(SystemExit, match="nosuch:func: no function"):
        held_back("nosuch:func")
    with pytest.raises(SystemExit, match="model folder not found"):
        engine_or_exit(EngineConfig(model="/nonexistent/model-folder"))


def test_prefix_reuses_p90_stays_within_the_times_measured():
    """statistics.quantiles' default put the p90 of 10..60 ms at 63 ms, and raised on one request."""
    from types import SimpleNamespace

    from bench.prefix_reuse import run

    class Timed:
        def __init__(self):
            self.times = iter([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])

        def fill(self, prefix, suffix, **_):
            return SimpleNamespace(timings={"encode_ms": next(self.times), "denoise_ms": 0.0})

        def describe(self):
            return {"prefix_reuse": {"prompt_tokens": 6, "reused_tokens": 0}}

    assert 50.0 <= run(Timed(), [("a", "b")] * 6)["request_ms_p90"] <= 60.0
    assert run(Timed(), [("a", "b")])["request_ms_p90"] == 10.0
