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
