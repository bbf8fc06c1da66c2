"""infill/ on real tree-sitter grammars. The engine here is a scripted stand-in defined in this file: infill/ must
be testable without torch, and the real model is exercised by test_engine.py and the end-to-end tests."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from infill import InfillRequest, run_infill
from infill.clean import clean_middle, drop_suffix_overlap, drop_unmatched_closers, keep_inside_scope
from infill.context import completion_shape, context_window, length_plan
from infill.languages import grammar_for
from infill.queries import load_query
from infill.spans import analyse


class ScriptedEngine:
    """Returns the given middles as candidates, in order, and records what it was asked."""

    def __init__(self, *middles: str):
        self.middles = middles
        self.calls = []

    def _candidates(self, reason: str):
        items = [SimpleNamespace(text=m, confidence=0.9 - 0.1 * i, length=len(m), ended=True, steps=3)
                 for i, m in enumerate(self.middles)]
        return SimpleNamespace(items=items, layout="psm-sentinels", reason=reason, timings={"total_ms": 1.0})

    def fill(self, prefix, suffix, *, max_new_tokens=64, lengths=None, cancel=None, seed=None):
        self.calls.append(("fill", prefix, suffix, lengths))
        return self._candidates("scripted fill")

    def rewrite(self, prefix, suffix, original, *, strength=0.5, instruction=None, cancel=None, seed=None):
        self.calls.append(("rewrite", prefix, suffix, original, instruction))
        return self._candidates("scripted rewrite")


def at(text: str, marker: str = "<|>") -> tuple[str, int]:
    offset = text.index(marker)
    return text.replace(marker, ""), offset


# ---- languages and spans ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("language_id,path,expected", [
    ("python", None, "python"), ("typescriptreact", None, "tsx"), (None, "src/main.rs", "rust"),
    (None, "a/b.go", "go"), ("cobol", "x.cob", None), (None, None, None),
])
def test_grammar_choice(language_id, path, expected):
    assert grammar_for(language_id, path) == expected


@pytest.mark.parametrize("grammar", ["python", "javascript", "typescript", "tsx", "go", "rust", "c", "cpp", "java",
                                     "lua"])
def test_every_grammar_ships_a_query(grammar):
    assert "@scope" in load_query(grammar) and "@comment" in load_query(grammar)


@pytest.mark.parametrize("grammar,source,kind", [
    ("python", "import os\n\nclass A:\n    def run(self):\n        x = <|>\n\nprint(1)\n", "function_definition"),
    ("javascript", "const a = 1;\nfunction add(x, y) {\n  return <|>\n}\nadd(1, 2);\n", "function_declaration"),
    ("go", "package main\n\nfunc add(a int, b int) int {\n\treturn <|>\n}\n", "function_declaration"),
    ("rust", "struct S;\nimpl S {\n    fn get(&self) -> u32 {\n        <|>\n    }\n}\n", "function_item"),
    ("java", "class A {\n  int f() {\n    return <|>;\n  }\n}\n", "method_declaration"),
])
def test_enclosing_scope_is_the_innermost_function(grammar, source, kind):
    text, offset = at(source)
    facts = analyse(grammar, text, offset, offset)
    assert facts.scope.kind == kind
    assert facts.scope.start < offset
    # the scope reaches the cursor, or stops just short of it where the parser cut an unfinished statement
    assert offset <= facts.scope.end or not text[facts.scope.end:offset].strip()
    assert not facts.in_string_or_comment


def test_scope_offsets_count_characters_not_bytes():
    text, offset = at('s = "héllo wörld"\ndef f():\n    return <|>\n')
    facts = analyse("python", text, offset, offset)
    assert text[facts.scope.start:].startswith("def f():")


def test_no_scope_at_module_level_is_the_document():
    text, offset = at("x = 1\n<|>\n")
    assert analyse("python", text, offset, offset).scope.kind == "document"


@pytest.mark.parametrize("source", ['x = "abc<|>def"\n', "# a comment<|>\nx = 1\n", "// note<|>\nlet x = 1;\n"])
def test_strings_and_comments_are_quiet(source):
    text, offset = at(source)
    grammar = "rust" if source.startswith("//") else "python"
    assert analyse(grammar, text, offset, offset).in_string_or_comment


# ---- context and completion shape --------------------------------------------------------------------------------

def test_context_window_cuts_at_line_boundaries():
    text = "".join(f"line {i}\n" for i in range(1000))
    offset = text.index("line 500")
    window = context_window(text, offset, offset, prefix_budget=100, suffix_budget=100)
    assert window.prefix.startswith("line ") and window.prefix.endswith("\n")
    assert window.suffix.startswith("line 500\n") and window.suffix.endswith("\n")
    assert len(window.prefix) <= 100 and len(window.suffix) <= 100


@pytest.mark.parametrize("source,shape", [
    ("x = foo(<|>)\n", "single"),
    ("total = <|>\n", "single"),
    ("def f(a):\n    <|>\n", "multi"),
    ("def f(a):\n<|>", "multi"),
    ("for item in items:<|>\n", "single"),
    ("value = compu<|>te()\n", "none"),
])
def test_completion_shape(source, shape):
    text, offset = at(source)
    assert completion_shape(text, offset, in_string_or_comment=False)[0] == shape


def test_length_plan_respects_the_cap():
    assert length_plan("single", 64) == [8, 16, 32]
    assert length_plan("multi", 20) == [16, 20]


# ---- cleaning ----------------------------------------------------------------------------------------------------

def test_single_line_keeps_the_first_line():
    assert clean_middle("a + b\nprint(x)\n", shape="single", suffix="\n", line_before_cursor="    return ",
                        rest_of_line="") == "a + b"


def test_suffix_overlap_is_removed():
    assert drop_suffix_overlap("compute(a, b))", "))\nnext()") == "compute(a, b"
    assert drop_suffix_overlap("x = 1\ny = 2\nreturn x", "    return x\n") == "x = 1\ny = 2"


def test_unmatched_closers_supplied_by_the_line_are_dropped():
    assert drop_unmatched_closers("a, b)", ")") == "a, b"
    assert drop_unmatched_closers("f(a)", ")") == "f(a)"  # its own pair stays


def test_multi_line_stops_when_leaving_the_scope():
    middle = "total += v\n    count += 1\nprint('done')\n"
    assert keep_inside_scope(middle, "    ") == "total += v\n    count += 1"


def test_line_endings_follow_the_document():
    cleaned = clean_middle("a = 1\n    b = 2", shape="multi", suffix="", line_before_cursor="    ",
                           rest_of_line="", line_ending="\r\n")
    assert cleaned == "a = 1\r\n    b = 2"


def test_whitespace_only_middle_is_empty():
    assert clean_middle("   \n  ", shape="multi", suffix="", line_before_cursor="", rest_of_line="") == ""


# ---- the pipeline ------------------------------------------------------------------------------------------------

def test_inline_completion_end_to_end_with_parse_validation():
    text, offset = at("def f(a, b):\n    return <|>\n")
    engine = ScriptedEngine("a + b)", "a + b")  # the first would add a parse error
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="python"),
                        engine)
    assert result.text == "a + b"
    assert result.start == result.end == offset
    assert "candidate 2" in result.details["chosen"]
    kind, prefix, suffix, lengths = engine.calls[0]
    assert prefix.endswith("    return ") and suffix == "\n" and lengths == [8, 16, 32]


def test_inside_a_comment_nothing_is_asked():
    text, offset = at("# explain <|>this\nx = 1\n")
    engine = ScriptedEngine("anything")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, path="a.py"), engine)
    assert result.text == "" and engine.calls == []


def test_fill_replaces_the_selection_and_keeps_whole_lines():
    text = "def f(xs):\n    s = 0\n    return s\n"
    start, end = text.index("    s = 0"), text.index("    return")
    engine = ScriptedEngine("    s = sum(xs)")
    result = run_infill(InfillRequest(text=text, mode="fill", start=start, end=end, language_id="python"), engine)
    assert (result.start, result.end) == (start, end)
    assert result.text == "    s = sum(xs)\n"
    assert engine.calls[0][1] == "def f(xs):\n" and engine.calls[0][2] == "    return s\n"


def test_rewrite_passes_the_original_and_instruction():
    text = "x = [i for i in range(3)]\n"
    engine = ScriptedEngine("x = list(range(3))")
    result = run_infill(InfillRequest(text=text, mode="rewrite", start=0, end=len(text) - 1, language_id="python",
                                      instruction="simpler"), engine)
    assert result.text == "x = list(range(3))"
    assert engine.calls[0][3] == "x = [i for i in range(3)]" and engine.calls[0][4] == "simpler"


@pytest.mark.parametrize("text,start,end,mode,fragment", [
    ("a\x00b", 1, 1, "inline", "NUL"),
    ("x" * 2_000_001, 1, 1, "inline", "larger"),
    ("abc", 5, 5, "inline", "out of range"),
    ("abc", -1, 0, "inline", "out of range"),
    ("abc", 2, 1, "fill", "out of range"),
    ("abc", 1, 1, "fill", "select"),
    ("bad \ufffd bytes", 1, 1, "inline", "UTF-8"),
])
def test_bad_input_is_an_empty_result_with_a_message(text, start, end, mode, fragment):
    engine = ScriptedEngine("never")
    result = run_infill(InfillRequest(text=text, mode=mode, start=start, end=end, language_id="python"), engine)
    assert result.text == "" and fragment in result.message and engine.calls == []


def test_unknown_language_uses_plain_text_and_says_so():
    text, offset = at("PROGRAM-ID. HELLO.\n<|>")
    engine = ScriptedEngine("DISPLAY 'HI'.")
    result = run_infill(InfillRequest(text=text, mode="inline", start=offset, end=offset, language_id="cobol"),
                        engine)
    assert result.text == "DISPLAY 'HI'."
    assert result.details["fallback"] is True and "no tree-sitter grammar" in result.message


def test_empty_document_still_asks_the_engine():
    engine = ScriptedEngine("import os")
    result = run_infill(InfillRequest(text="", mode="inline", start=0, end=0, language_id="python"), engine)
    assert result.text == "import os" and engine.calls[0][1:3] == ("", "")
