"""Snippets of other open files in the model's context (infill/related.py), and how run_infill puts them before the
prefix. No model: the engine is test_infill_pipeline's scripted stand-in, which records the prompt text it gets."""
from __future__ import annotations

import pytest

from infill import ContextMemory, InfillRequest, RelatedDocument, run_infill
from infill.related import (MAX_DOCUMENT_CHARS, MAX_SEARCHED_CHARS, MIN_SIMILARITY, STICKY_MARGIN, WINDOW_LINES,
                            Snippet, identifiers, lines_of, pick_snippets, query_lines, render, snippets_within,
                            window_similarity)
from test_infill_pipeline import ScriptedEngine, at

GEOMETRY = """\
import math


def rectangle_area(width, height):
    return width * height


def circle_area(radius):
    return math.pi * radius * radius
""" + "".join(f"\n\ndef helper_{i}(value):\n    return value + {i}\n" for i in range(12))

CURRENT = """\
from geometry import rectangle_area, circle_area


def total_area(shapes):
    area = 0
    for width, height in shapes:
        area += rectangle_area(width, height)
    radius = 2
    area += <|>
    return area
"""


def other(path: str, text: str, language_id: str | None = "python") -> RelatedDocument:
    return RelatedDocument(path=path, text=text, language_id=language_id)


def test_the_window_sharing_most_names_with_the_lines_above_is_chosen():
    text, offset = at(CURRENT)
    unrelated = other("strings.py", "".join(f"def shout_{i}(word):\n    return word.upper()\n" for i in range(30)))
    snippets = pick_snippets(text, offset, "python", [unrelated, other("geometry.py", GEOMETRY)])
    assert [s.path for s in snippets] == ["geometry.py"]          # the unrelated file shares too little
    assert snippets[0].first_line == 0 and "def circle_area(radius):" in snippets[0].text
    assert snippets[0].text.count("\n") <= WINDOW_LINES


def test_languages_that_share_code_lend_to_each_other():
    code = "function circleArea(radius) {\n  return Math.PI * radius * radius;\n}\n"
    text, offset = at("import { circleArea } from './geometry';\nconst radius = 2;\nconst area = <|>\n")
    for path, language in (("geometry.js", "javascript"), ("geometry.tsx", "typescriptreact")):
        assert pick_snippets(text, offset, "typescript", [other(path, code, language)]), path
    header = "int circle_area(int radius);\nint rectangle_area(int width, int height);\n"
    text, offset = at("#include \"geometry.h\"\nint total(int radius, int width, int height) {\n  return <|>\n")
    assert pick_snippets(text, offset, "cpp", [other("geometry.h", header, None)])      # a .h header is C
    assert pick_snippets(text, offset, "cpp", [other("geometry.py", header, None)]) == []


@pytest.mark.parametrize("document, reason", [
    (other("geometry.js", GEOMETRY, "javascript"), "another language"),
    (other("geometry.py", GEOMETRY + "\x00"), "a binary file"),
    (other("geometry.py", GEOMETRY + "'\ud83d'"), "not valid Unicode: the tokenizer raised, failing every request"),
    (other("geometry.py", GEOMETRY + "#" * MAX_DOCUMENT_CHARS), "too large to search"),
    (other("empty.py", "  \n"), "nothing in it"),
    (other("current.py", at(CURRENT)[0]), "the document itself (or a copy): the model reads it already"),
    (other("current.py.orig", at(CURRENT.replace("radius = 2", "radius = 3"))[0]),
     "an older copy of the code being edited, one line different: the model reads the rest of it already"),
])
def test_files_that_cannot_help_are_skipped(document, reason):
    text, offset = at(CURRENT)
    assert pick_snippets(text, offset, "python", [document]) == [], reason


def test_the_extension_decides_when_the_editor_sent_no_language():
    text, offset = at(CURRENT)
    assert pick_snippets(text, offset, "python", [other("geometry.py", GEOMETRY, None)])
    assert pick_snippets(text, offset, "python", [other("geometry.rs", GEOMETRY, None)]) == []


def test_typing_within_a_line_keeps_the_same_snippets():
    """The query is the complete lines above the cursor's line, so the prompt's head does not change per key."""
    text, offset = at(CURRENT)
    typed = text[:offset] + "circle_area(rad" + text[offset:]
    assert query_lines(text, offset) == query_lines(typed, offset + len("circle_area(rad"))
    assert "area += \n" not in query_lines(text, offset) and "radius = 2\n" in query_lines(text, offset)
    related = [other("geometry.py", GEOMETRY)]
    assert pick_snippets(text, offset, "python", related) == pick_snippets(typed, offset + 15, "python", related)


def test_without_names_above_the_cursor_or_without_a_grammar_nothing_is_picked():
    assert pick_snippets("\n\n", 1, "python", [other("geometry.py", GEOMETRY)]) == []
    text, offset = at(CURRENT)
    assert pick_snippets(text, offset, None, [other("geometry.py", GEOMETRY)]) == []


@pytest.mark.parametrize("grammar, mark", [("python", "#"), ("lua", "--"), ("go", "//"), ("cpp", "//")])
def test_snippets_are_commented_out_line_by_line_under_their_file_name(grammar, mark):
    text, offset = at(CURRENT)
    snippet = pick_snippets(text, offset, "python", [other("lib/geometry.py", GEOMETRY)])[0]
    rendered = render(snippet, grammar)
    lines = rendered.rstrip("\n").split("\n")
    assert lines[0] == f"{mark} Compare this snippet from lib/geometry.py:"
    assert all(line.startswith(mark) for line in lines)
    assert f"{mark}     return width * height" in lines and f"{mark}" in lines   # code, and a blank line
    assert rendered.endswith("\n")


def test_lines_are_counted_as_the_editor_counts_them():
    """A file with lone-\r line ends has every line commented out (before: only the first; the rest reached the
    model as live code), and a form feed does not start a line (before: line numbers past the file's end)."""
    old_mac = GEOMETRY.replace("\n", "\r")
    text, offset = at(CURRENT)
    snippet = pick_snippets(text, offset, "python", [other("geometry.py", old_mac)])[0]
    assert all(line.startswith("#") for line in render(snippet, "python").rstrip("\n").split("\n"))
    paged = "\x0c\n".join(f"x{i} = {i}\n" for i in range(3))    # 5 lines for LSP, 8 for str.splitlines
    assert len(lines_of(paged)) == 5 and "".join(lines_of(paged)) == paged


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_the_lines_above_the_cursor_are_found_whatever_ends_them(ending):
    # a document with old-Mac line ends had no query at all (its lines were looked for by \n), so never a snippet
    text, offset = at(CURRENT.replace("\n", ending))
    assert query_lines(text, offset) == query_lines(*at(CURRENT)).replace("\n", ending)
    assert [s.path for s in pick_snippets(text, offset, "python", [other("geometry.py", GEOMETRY)])] == ["geometry.py"]


def test_a_file_name_or_a_line_cannot_end_the_comment_a_snippet_is_in():
    # a line break in a file's name put the rest of the name in the prompt as code; in C, a `//` line ending in a
    # backslash comments out the next line too: the prefix's first line after the last snippet line
    snippet = Snippet("evil\nimport os; os.system('x')\n#.h", 0, "#define AREA(w, h) \\\n    ((w) * (h))\n", 1.0)
    rendered = render(snippet, "c")
    assert rendered == ("// Compare this snippet from evil?import os; os.system('x')?#.h:\n"
                        "// #define AREA(w, h)\n//     ((w) * (h))\n")


def test_a_request_searches_open_files_up_to_a_total_size():
    # each new line above the cursor searches every file again: ten files of 500 kB took 81 ms a line here
    text, offset = at(CURRENT)
    filler = "".join(f"def unrelated_{i}(value):\n    return value\n" for i in range(MAX_SEARCHED_CHARS // 40 // 3))
    big = [other(f"big{i}.py", filler + f"\n# {i}\n") for i in range(4)]   # about a third of the total each
    late = other("geometry.py", GEOMETRY)
    assert [s.path for s in pick_snippets(text, offset, "python", [late] + big)] == ["geometry.py"]
    assert pick_snippets(text, offset, "python", big + [late]) == []   # past the total: not searched


def test_snippets_fit_their_budget_best_first_a_long_one_cut_to_its_best_lines():
    text, offset = at(CURRENT)
    long_file = GEOMETRY.replace("import math\n", "import math\n" + "# area of rectangle_area circle_area\n" * 8)
    snippets = pick_snippets(text, offset, "python", [other("long.py", long_file), other("geometry.py", GEOMETRY)])
    assert [s.path for s in snippets] == ["long.py", "geometry.py"]
    costs = [len(render(s, "python")) for s in snippets]
    assert snippets_within(snippets, "python", sum(costs), len)[1] == snippets   # both whole, in their order
    # Room for the shorter only: the better one is cut to the run of its lines that match the query best.
    budget = min(costs) + 1
    kept_text, kept, used = snippets_within(snippets, "python", budget, len)
    assert kept == snippets[:1] and len(kept_text) == used <= budget
    assert kept_text.startswith("# Compare this snippet from long.py:\n# # area of rectangle_area circle_area\n")
    assert kept_text.count("\n") < snippets[0].text.count("\n") + 1


def test_a_window_is_cut_down_to_three_lines_when_only_three_fit():
    """Two lines dropped per try: from 20 the tries went 18, 16, ... 4, and a room for three held nothing."""
    from infill.related import Snippet
    lines = [f"value_{i} = compute(alpha, beta)\n" for i in range(20)]
    snippet = Snippet("values.py", 0, "".join(lines), 0.5, (2,) * 20)
    three = render(snippet, "python", "".join(lines[:3]))
    kept_text, kept, _ = snippets_within([snippet], "python", len(three), len)
    assert kept == [snippet] and kept_text == three


def test_a_small_context_gets_the_best_lines_of_a_window_it_cannot_hold_whole():
    """192 tokens, a quarter for other files: a 20-line window never fit, and relatedFiles "on" added nothing."""
    text, offset = at(CURRENT)
    (snippet,) = pick_snippets(text, offset, "python", [other("geometry.py", GEOMETRY)])
    whole = len(render(snippet, "python"))
    kept_text, kept, used = snippets_within([snippet], "python", whole // 2, len)
    assert kept == [snippet] and used <= whole // 2
    assert "# def rectangle_area(width, height):\n#     return width * height\n" in kept_text
    assert snippets_within([snippet], "python", 20, len)[1] == []   # not even three lines fit: left out


def test_a_snippet_far_longer_than_the_budget_left_is_skipped_without_counting_its_tokens():
    """A minified bundle open in another tab: counting its window's tokens on every keystroke took 0.15-0.2 s of
    each request, to throw it away. No token is ever more than MAX_CHARS_PER_TOKEN characters."""
    from infill.context import MAX_CHARS_PER_TOKEN
    from infill.related import Snippet

    bundle = Snippet("bundle.min.js", 0, "var a=" + "1," * 200_000 + "2;\n", 0.9)
    small = Snippet("util.js", 3, "function area(w, h) {\n  return w * h;\n}\n", 0.5)
    measured = []

    def tokens(text: str) -> int:   # about 4 characters a token
        measured.append(len(text))
        return -(-len(text) // 4)

    kept_text, kept, used = snippets_within([bundle, small], "javascript", 50, tokens)
    assert kept == [small] and used == tokens(render(small, "javascript")) <= 50
    assert max(measured) <= 50 * MAX_CHARS_PER_TOKEN


def test_run_infill_puts_the_snippets_before_the_prefix_within_the_context_budget():
    text, offset = at(CURRENT)
    engine = ScriptedEngine("circle_area(radius)")
    request = InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                            related=[other("geometry.py", GEOMETRY)])
    result = run_infill(request, engine)
    prompt_prefix = engine.calls[0]["prefix"]
    assert prompt_prefix.startswith("# Compare this snippet from geometry.py:\n# import math\n")
    assert prompt_prefix.endswith(text[:offset])                  # the file's own prefix follows, whole here
    context = result.details["context"]
    assert [entry["path"] for entry in context["related"]] == ["geometry.py"] and context["related"][0]["line"] == 1
    assert context["related_tokens"] + context["prefix_tokens"] + context["suffix_tokens"] <= \
        context["max_prompt_tokens"]
    assert result.text == "circle_area(radius)"


@pytest.mark.parametrize("budget", [64, 1024])
def test_snippets_never_take_more_than_a_quarter_of_the_context(budget):
    """With a small model the code around the cursor matters more: a snippet that does not fit a quarter of the
    context whole is cut to its best lines within it, and the file's prefix keeps the rest."""
    text, offset = at(CURRENT)
    engine = ScriptedEngine("1")
    engine.max_prompt_tokens = budget
    engine.count_tokens = lambda s: len(s.split())     # words stand in for the engine's tokens
    request = InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                            related=[other("geometry.py", GEOMETRY)])
    context = run_infill(request, engine).details["context"]
    snippet_words = len(render(pick_snippets(text, offset, "python", request.related)[0], "python").split())
    fits = snippet_words <= (budget - 3) // 4                # the engine's 3 sentinels are not context
    assert fits == (budget == 1024)                          # each case takes its own branch
    assert context["related"] and engine.calls[0]["prefix"].startswith("# Compare this snippet from geometry.py")
    used = context["related_tokens"]
    assert used == snippet_words if fits else 0 < used <= (budget - 3) // 4   # whole, or its best lines


def test_nothing_changes_without_other_files():
    text, offset = at(CURRENT)
    engine = ScriptedEngine("circle_area(radius)")
    run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python"), engine)
    assert engine.calls[0]["prefix"] == text[:offset]


# ---- keeping the last request's snippets (hysteresis) ------------------------------------------------------------

# 40 lines: the first 20 name a1..a20, the last 20 b1..b20, so the windows starting at lines 0, 10 and 20 hold
# {a1..a20}, {a11..a20, b1..b10} and {b1..b20}.
TWO_HALVES = "".join(f"value_a{i} = {i}\n" for i in range(1, 21)) + "".join(f"value_b{i} = {i}\n" for i in range(1, 21))


def typed_after(names: list[str]) -> tuple[str, int]:
    """A document whose lines above the cursor use `names`, the cursor on a new line after them."""
    text = "".join(f"{name} = 0\n" for name in names)
    return text + "\n", len(text)


def names(prefix: str, last: int) -> list[str]:
    return [f"value_{prefix}{i}" for i in range(1, last + 1)]


def test_the_last_snippet_stays_until_another_window_is_clearly_better():
    halves = [other("halves.py", TWO_HALVES)]
    first_text, first_at = typed_after(names("a", 10))
    [first] = pick_snippets(first_text, first_at, "python", halves)
    assert first.first_line == 0
    previous = ((first.path, first.first_line),)

    # Some b-names typed above (the query is the last 20 lines): a later window is now slightly better, by less
    # than the margin.
    text, offset = typed_after(names("a", 9) + names("b", 10))
    [fresh] = pick_snippets(text, offset, "python", halves)
    query = identifiers(query_lines(text, offset))
    assert 0 < fresh.similarity - window_similarity(query, TWO_HALVES, 0) < STICKY_MARGIN, "the case is set up wrong"
    [kept] = pick_snippets(text, offset, "python", halves, previous=previous)
    assert (kept.first_line, kept.text) == (0, "".join(TWO_HALVES.splitlines(keepends=True)[:20]))

    # Many b-names: the b-window wins by far more than the margin, so it replaces the kept one.
    text, offset = typed_after(names("a", 6) + names("b", 14))
    query = identifiers(query_lines(text, offset))
    assert window_similarity(query, TWO_HALVES, 0) >= MIN_SIMILARITY   # still eligible, just beaten
    [moved] = pick_snippets(text, offset, "python", halves, previous=previous)
    assert moved.first_line == 20 and moved == pick_snippets(text, offset, "python", halves)[0]


def test_kept_snippets_keep_their_order_and_fall_away_when_they_no_longer_fit():
    text, offset = typed_after(names("a", 10) + names("b", 9))
    left = other("left.py", "".join(f"value_a{i} = {i}\n" for i in range(1, 21)))
    right = other("right.py", "".join(f"value_b{i} = {i}\n" for i in range(1, 21)))
    fresh = pick_snippets(text, offset, "python", [left, right])
    assert [s.path for s in fresh] == ["left.py", "right.py"] and fresh[0].similarity > fresh[1].similarity
    assert fresh[0].similarity - fresh[1].similarity < STICKY_MARGIN, "the case is set up wrong"
    swapped = (("right.py", 0), ("left.py", 0))
    assert [s.path for s in pick_snippets(text, offset, "python", [left, right], previous=swapped)] == \
        ["right.py", "left.py"]
    # A kept window past a file's end (the file shrank) or of a closed file is simply not kept.
    short = other("right.py", "value_b1 = 1\n")
    gone = pick_snippets(text, offset, "python", [left, short], previous=(("right.py", 30), ("closed.py", 0)))
    assert [(s.path, s.first_line) for s in gone] == \
        [(s.path, s.first_line) for s in pick_snippets(text, offset, "python", [left, short])]


def test_run_infill_reports_the_snippets_it_used_for_the_next_request():
    text, offset = typed_after(names("a", 9) + names("b", 10))
    request = InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python",
                            related=[other("halves.py", TWO_HALVES)])
    engine = ScriptedEngine("1")
    engine.max_prompt_tokens = 4096
    fresh = run_infill(request, engine)
    request.previous = ContextMemory(related=(("halves.py", 0),))
    kept = run_infill(request, engine)
    assert ContextMemory.of(fresh.details).related != ContextMemory.of(kept.details).related == (("halves.py", 0),)
    assert engine.calls[1]["prefix"].startswith("# Compare this snippet from halves.py:\n# value_a1 = 1\n")
