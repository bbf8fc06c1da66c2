"""infill.edits: the minimal edits that turn a selection into the new text (tables, then random cases)."""
from __future__ import annotations

import random

import pytest

from infill.edits import apply_edits, merge_touching, minimal_edits


@pytest.mark.parametrize("old,new,expected", [
    # one word changed: only that word is replaced
    ("    s = 0\n    return s\n", "    s = 1\n    return s\n", [(8, 9, "1")]),
    # a line added in the middle: one insertion at a line start
    ("a = 1\nc = 3\n", "a = 1\nb = 2\nc = 3\n", [(6, 6, "b = 2\n")]),
    # a line removed
    ("a = 1\nb = 2\nc = 3\n", "a = 1\nc = 3\n", [(6, 12, "")]),
    # two separate lines changed: two edits, the unchanged line between them untouched
    ("x = f(a)\nkeep()\ny = g(b)\n", "x = f(z)\nkeep()\ny = h(b)\n", [(6, 7, "z"), (20, 21, "h")]),
    # nothing in common: one whole replacement rather than a shower of fragments
    ("for v in values:\n    total += v\n", "return sum(values)\n", [(0, 32, "return sum(values)\n")]),
    # equal: nothing to do
    ("same\n", "same\n", []),
    # CRLF lines are compared with their endings
    ("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\n", [(11, 12, "3")]),
    # from nothing / to nothing
    ("", "x = 1\n", [(0, 0, "x = 1\n")]),
    ("x = 1\n", "", [(0, 6, "")]),
])
def test_edit_tables(old, new, expected):
    assert minimal_edits(old, new) == expected
    assert apply_edits(old, expected) == new


@pytest.mark.parametrize("language,old,new", [
    ("javascript", "function f(a) {\n  return a + 1;\n}\n", "function f(a) {\n  return a * 2;\n}\n"),
    ("go", "func add(a int, b int) int {\n\treturn a + b\n}\n", "func add(a int, b int) int {\n\treturn b + a\n}\n"),
    ("rust", "let v = vec![1, 2, 3];\nprintln!(\"{}\", v.len());\n",
     "let v = vec![1, 2, 3, 4];\nprintln!(\"{}\", v.len());\n"),
])
def test_small_changes_in_other_languages_stay_small(language, old, new):
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    assert sum(end - start for start, end, _ in edits) <= 3, language   # a word or two, not the whole block


def test_offsets_are_shifted_by_the_selection_start():
    document = "prefix\nx = 1\nsuffix\n"
    start = document.index("x = 1")
    edits = minimal_edits("x = 1\n", "x = 2\n", base=start)
    assert edits == [(start + 4, start + 5, "2")]
    assert apply_edits(document, edits) == "prefix\nx = 2\nsuffix\n"


def test_unusual_spaces_keep_the_offsets_exact():
    old, new = "x = 1\xa0+ 2\n", "x = 1\xa0+ 3\n"   # a no-break space between the words
    edits = minimal_edits(old, new)
    assert apply_edits(old, edits) == new
    assert edits == [(8, 9, "3")]


def test_touching_edits_are_merged():
    assert merge_touching([(5, 5, "b"), (3, 5, "a")]) == [(3, 5, "ab")]
    assert merge_touching([(0, 1, "x"), (2, 3, "y")]) == [(0, 1, "x"), (2, 3, "y")]


def test_random_pairs_apply_exactly_and_never_overlap():
    rng = random.Random(7)
    words = ["x", "y", "foo", "(", ")", " ", "  ", "\n", "\r\n", "=", "1", "return", "\t", "é", "😀", "\xa0",
             "\u3000", "\f", "\v"]
    for _ in range(400):
        old = "".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        new = "".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        if rng.random() < 0.5:   # mostly similar pairs, like real rewrites
            pieces = list(old)
            for _ in range(rng.randint(0, 3)):
                if pieces:
                    pieces[rng.randrange(len(pieces))] = rng.choice(words)
            new = "".join(pieces)
        edits = minimal_edits(old, new, base=10)
        assert apply_edits("#" * 10 + old, edits) == "#" * 10 + new
        for (s1, e1, _), (s2, e2, _) in zip(edits, edits[1:]):
            assert e1 < s2 and s1 <= e1
        assert all(10 <= s <= e <= 10 + len(old) for s, e, _ in edits)


def test_a_long_selection_filled_with_a_short_answer_skips_the_quadratic_word_diff(monkeypatch):
    """A 1,000-line selection answered with 60 lines: the word diff's ratio() compared every word with every other
    (11.5 s on this machine's CPU) only to replace the run whole; its linear upper bounds already rule that out."""
    import infill.edits

    class CountingMatcher(infill.edits.SequenceMatcher):
        full_ratios = 0

        def ratio(self):
            CountingMatcher.full_ratios += 1
            return super().ratio()

    monkeypatch.setattr(infill.edits, "SequenceMatcher", CountingMatcher)
    old = "".join(f"    value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1000))
    new = "".join(f"    total += item_{i}\n" for i in range(60))
    assert minimal_edits(old, new) == [(0, len(old), new)]
    assert CountingMatcher.full_ratios == 0
    # a small change still gets its word diff
    assert minimal_edits("x = 1\ny = 2\n", "x = 1\ny = 3\n") == [(10, 11, "3")]


def test_runs_too_large_for_a_word_diff_are_replaced_whole(monkeypatch):
    import infill.edits

    monkeypatch.setattr(infill.edits, "WORD_PAIRS_LIMIT", 10)
    # (the words the two runs begin and end with are not compared: the changed middles are 5 words each)
    assert minimal_edits("x = 1\ny = 2 + a;\n", "x = 1\ny = 3 + b;\n") == [(6, 17, "y = 3 + b;\n")]
    assert minimal_edits("x = 1\ny = 2;\n", "x = 1\ny = 3;\n") == [(10, 11, "3")]


def test_a_word_inserted_into_a_long_run_of_one_repeated_word_is_one_small_edit():
    """The matcher's search is quadratic in a run of one repeated word: a line of 4,000 `]` split by a call took
    2 s, and a line of 6,000 was replaced whole (past the word pairs' limit)."""
    old = "]" * 6000 + "\n"
    new = "]" * 3000 + "bar()\n" + "]" * 3000 + "\n"
    assert minimal_edits(old, new) == [(3000, 3000, "bar()\n")]
