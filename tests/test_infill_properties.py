"""Properties every answer of run_infill keeps, whatever the model writes, checked on random cursors and selections
in real files of every supported language.

The model here is a seeded stand-in (RandomModel) that writes the kind of text a weak or confused model writes:
slices of the same file starting and ending anywhere (unbalanced brackets, half strings), the suffix written again,
the end of the prefix written again, stray closers, quotes, tabs and CRLFs. Whatever it writes, an answer must
- lie inside the document, starting at the cursor or selection start; a command's answer replaces the selection;
- replace, on an inline answer, only the rest of the cursor's line that the answer writes again at its end (an
  auto-closed tail), so no text of the document is lost;
- come with edits that, applied to the document, give the same document as the answer;
- keep the document's line endings, never be whitespace alone, and stay on one line when one line was planned;
- add no tree-sitter ERROR or MISSING node to the file (for languages with a grammar).
"""
from __future__ import annotations

import random
from pathlib import Path
import pytest

from engine.types import Candidate, Candidates

from infill import InfillRequest, InfillResult, run_infill
from infill.edits import apply_edits
from infill.languages import grammar_for
from infill.spans import errors_around

ROOT = Path(__file__).resolve().parent.parent
# Copies of some of this project's own files as they were on 2026-11-24 (tests/data/properties/), not the files
# themselves: drawn from the live files, the cases (and how many the seeds answer) moved with every edit of them.
SOURCES = {
    "python": ["tests/data/properties/clean.py", "tests/data/properties/context.py",
               "tests/data/properties/debounce.py", "tests/data/shapes.py"],
    "lua": ["tests/data/properties/ghost.lua"],
    "typescript": ["tests/data/properties/status.ts", "tests/data/properties/serverEvents.ts"],
    "typescriptreact": ["tests/data/languages/TodoList.tsx"],
    "javascript": ["tests/data/languages/debounce.js"],
    "go": ["tests/data/languages/inventory.go"],
    "rust": ["tests/data/languages/tokens.rs"],
    "c": ["tests/data/languages/ring.c"],
    "cpp": ["tests/data/languages/matrix.cpp"],
    "java": ["tests/data/languages/LruCache.java"],
    "plaintext": ["tests/data/properties/README.md"],
}
PIECES = [")", "]", "}", "(", "[", "{", "\n", "    ", "\t", '"', "'", "//", "#", "/*", "*/", ";", ",", " ", "x",
          "return", "end", "if", ":", "=", "f(y)", "\r\n", "`", "\\", "--", "é", "😀"]
SEEDS = range(8)
CASES_PER_SEED = 60


def texts() -> dict[str, list[str]]:
    return {language: [(ROOT / path).read_text(encoding="utf-8") for path in paths]
            for language, paths in SOURCES.items()}


class RandomModel:
    """Stands in for the engine: every candidate is drawn from `rng` (seeded, so a failure can be replayed)."""

    def __init__(self, rng: random.Random, document: str, max_prompt_tokens: int):
        self.rng, self.document, self.max_prompt_tokens = rng, document, max_prompt_tokens
        self.written: list[str] = []

    def middle(self, prefix: str, suffix: str) -> str:
        rng, document = self.rng, self.document
        kind = rng.random()
        if kind < 0.35:     # a slice of the file, cut anywhere
            start = rng.randrange(len(document))
            return document[start:start + rng.randint(1, 160)]
        if kind < 0.55:     # punctuation soup
            return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 25)))
        if kind < 0.75:     # the suffix again, maybe after a little text
            return rng.choice(["", "x", "x = 1\n", "f(", "    pass\n", "return y;\n"]) + suffix[:rng.randint(0, 120)]
        if kind < 0.85:     # the end of the prefix again
            return prefix[-rng.randint(1, 80):] if prefix else ""
        start = document.find("\n", rng.randrange(len(document))) + 1   # whole lines from elsewhere
        return document[start:start + rng.randint(10, 300)]

    def candidates(self, prefix: str, suffix: str, rows: int):
        items = [Candidate(text=self.middle(prefix, suffix), confidence=self.rng.random(), length=5,
                           canvas_length=64, steps=3, ended=self.rng.random() < 0.7) for _ in range(rows)]
        self.written = [item.text for item in items]
        return Candidates(items=items, layout="spm-sentinels", reason="random")

    def fill(self, prefix, suffix, *, max_new_tokens=64, lengths=None, cancel=None, seed=None, budget_ms=None):
        return self.candidates(prefix, suffix, len(lengths or [1]))

    def rewrite(self, prefix, suffix, original, *, strength=0.5, instruction=None, cancel=None, seed=None):
        return self.candidates(prefix, suffix, 1)

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 3)


def random_request(rng: random.Random, sources: dict[str, list[str]]) -> InfillRequest:
    language = rng.choice(sorted(sources))
    text = rng.choice(sources[language])
    if rng.random() < 0.15:
        text = text.replace("\n", "\r\n")
    if rng.random() < 0.1:
        text = text.replace("    ", "\t")
    mode = rng.choice(["inline", "inline", "inline", "fill", "rewrite"])
    start = rng.randrange(len(text) + (mode == "inline"))
    if text[start - 1:start + 1] == "\r\n":
        start -= 1          # an editor never puts the cursor between \r and \n
    end = start
    if mode != "inline":
        end = min(len(text), start + rng.randint(1, 300))
        end += text[end - 1:end + 1] == "\r\n"
    return InfillRequest(text=text, mode=mode, start=start, end=end,
                         language_id=language, invoked=rng.random() < 0.3, tab_size=rng.choice([None, 2, 4, 8]),
                         insert_spaces=rng.choice([None, True, False]))


def broken_promises(request: InfillRequest, result) -> list[str]:
    text, start, end = request.text, request.start, request.end
    problems = []
    if not 0 <= result.start <= result.end <= len(text):
        problems.append(f"range {result.start}..{result.end} outside the document")
    if result.start != start:
        problems.append(f"the answer starts at {result.start}, not at {start}")
    if not result.text:
        return problems
    replaced = text[result.start:result.end]
    if request.mode == "inline":
        if "\n" in replaced or not result.text.endswith(replaced):
            problems.append(f"replaces {replaced!r}, which the answer does not write again")
        if not result.text.strip():
            problems.append("a whitespace-only answer")
        if "\n" in result.text and not result.details.get("multiline"):
            problems.append(f"a newline in a {result.details.get('decision')} answer")
    elif result.end != end:
        problems.append(f"the answer replaces {result.start}..{result.end}, not the selection {start}..{end}")
    new_document = text[:result.start] + result.text + text[result.end:]
    if apply_edits(text, result.edits) != new_document:
        problems.append(f"the edits {result.edits} do not give the answer")
    if "\r\n" in text and "\n" in result.text.replace("\r\n", ""):
        problems.append("a bare LF in a CRLF document")
    if "\r\n" not in text and "\r" in result.text:
        problems.append("a CR in an LF document")
    grammar = grammar_for(request.language_id, None)
    if grammar:
        before = errors_around(grammar, text, result.start, result.end)[0]
        after = errors_around(grammar, new_document, result.start, result.start + len(result.text))[0]
        if after > before:
            problems.append(f"parse errors in the file went from {before} to {after}")
    return problems


@pytest.mark.parametrize("seed", SEEDS)
def test_answers_keep_their_promises_whatever_the_model_writes(seed):
    rng = random.Random(seed)
    sources = texts()
    failures, answered = [], 0
    for case in range(CASES_PER_SEED):
        request = random_request(rng, sources)
        model = RandomModel(rng, request.text, rng.choice([192, 1024]))
        result = run_infill(request, model)
        answered += bool(result.text)
        problems = broken_promises(request, result)
        if problems:
            failures.append(f"case {case} ({request.language_id}, {request.mode} at {request.start}..{request.end}):"
                            f" {problems}; the model wrote {model.written!r}, answer {result.text!r}")
    assert not failures, "\n".join(failures)
    assert answered >= CASES_PER_SEED // 10, "too few answers to have checked anything"


def test_the_checks_catch_a_broken_answer():
    """The property checker itself: an answer that drops the replaced tail, or breaks the parse, is reported."""
    text = "print(len(items))\n"
    request = InfillRequest(text=text, mode="inline", start=10, end=10, language_id="python")
    dropped_tail = InfillResult("x", 10, 16, details={"multiline": False, "decision": "single"},
                                edits=[(10, 16, "x")])
    assert any("does not write again" in problem for problem in broken_promises(request, dropped_tail))
    breaks_parse = InfillResult("(((", 10, 10, details={"multiline": False, "decision": "single"},
                                edits=[(10, 10, "(((")])
    assert any("parse errors" in problem for problem in broken_promises(request, breaks_parse))
