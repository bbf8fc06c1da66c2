"""What a person sees: the plugin in a real Neovim inside a tmux terminal, typed into with `tmux send-keys`.

Neovim runs with editors/nvim/tests/tmux_init.lua against the real `infill-lsp`. The test types a line in insert
mode a key at a time, waits for the ghost text on the screen (`tmux capture-pane`), checks it is the suggestion the
plugin holds (asked over Neovim's own --remote-expr), accepts it with <Tab> and sees it become text. The screen
captures are saved under build/editor-artifacts/ (or $EDITOR_ARTIFACTS_DIR).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import wait_for
from test_editor_neovim import INSTALL_HINT, PLUGIN_DIR, REPO, find_nvim, neovim_env

SAMPLE = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"
TYPED = "return "          # typed at the end of line 2, after its indentation
WIDTH, HEIGHT = 100, 16
GHOST_DEADLINE_S = 90      # the first answer waits for the model to load
ARTIFACTS = Path(os.environ.get("EDITOR_ARTIFACTS_DIR") or REPO / "build" / "editor-artifacts")


class Terminal:
    """One tmux server on a private socket, one window running Neovim."""

    def __init__(self, tmux: str, socket_name: str, env: dict):
        self.tmux, self.socket_name, self.env = tmux, socket_name, env

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket_name, *args], env=self.env, capture_output=True,
                              text=True, check=True, timeout=10).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "nvim", *(["-l"] if literal else []), *keys)

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", "-t", "nvim", *(["-e"] if escapes else []))


def escapes_before_column(row: str, column: int) -> str:
    """The escape sequences between visible character column-1 and column of a `capture-pane -e` row."""
    visible, found = 0, ""
    for token in re.findall(r"\x1b\[[0-9;:]*m|.", row):
        if token.startswith("\x1b"):
            if visible == column:
                found += token
        else:
            if visible == column:
                return found
            visible += 1
    return found


@pytest.fixture
def neovim_in_tmux(tmp_path):
    nvim = find_nvim()
    if nvim is None:
        pytest.skip(f"Neovim 0.11+ is not installed: {INSTALL_HINT}")
    tmux = shutil.which("tmux")
    if tmux is None:   # the installer gets it with apt where it can (root, Debian)
        installed = subprocess.run(["sh", str(REPO / "editors" / "install_neovim.sh"), "--tmux-only"],
                                   capture_output=True, text=True, timeout=300)
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.skip(f"tmux is not installed and editors/install_neovim.sh could not install it: "
                        f"{installed.stderr.strip()[-300:]}")
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    # Unix socket paths are short (about 100 bytes): Neovim's and tmux's go in a short folder, not under tmp_path.
    sockets = Path(tempfile.mkdtemp(prefix="nvim-tmux-", dir="/tmp" if Path("/tmp").is_dir() else None))
    listen = sockets / "nvim.sock"
    env = neovim_env(tmp_path, TERM="xterm-256color", TMUX_TMPDIR=str(sockets))
    env.pop("TMUX", None)
    terminal = Terminal(tmux, f"infill-test-{os.getpid()}", env)
    terminal.run("-f", "/dev/null", "new-session", "-d", "-s", "nvim", "-x", str(WIDTH), "-y", str(HEIGHT),
                 nvim, "--clean", "-n", "-u", str(PLUGIN_DIR / "tests" / "tmux_init.lua"), "--listen", str(listen),
                 str(sample))

    def remote(expression: str):
        """Evaluates Lua in the running Neovim through its own client (nvim --server ... --remote-expr)."""
        vim_string = "'" + f"vim.json.encode({expression})".replace("'", "''") + "'"   # a Vim literal string
        done = subprocess.run([nvim, "--headless", "--server", str(listen), "--remote-expr", f"luaeval({vim_string})"],
                              env=env, capture_output=True, text=True, timeout=10)
        return json.loads(done.stdout) if done.stdout.strip() else None

    try:
        wait_for(lambda: "def add(a, b):" in terminal.screen(), 20, "Neovim to show the file", 0.1)
        yield terminal, remote
    finally:
        try:
            terminal.run("kill-server")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(sockets, ignore_errors=True)


def test_typing_shows_ghost_text_on_screen_and_tab_accepts_it(neovim_in_tmux):
    terminal, remote = neovim_in_tmux
    terminal.keys("2G", "A")
    for char in TYPED:   # a key at a time, like a person
        terminal.keys(char, literal=True)
        time.sleep(0.08)
    typed_line = "    " + TYPED

    # The suggestion the plugin holds, once it has one: what it draws after the cursor.
    ghost_expression = ("(function() local s = require('diffusion_infill.ghost').state(0); "
                        "return s and { text = s.text, row = s.row, col = s.col } or vim.NIL end)()")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("nvim-tmux-*"):
        stale.unlink()
    try:
        ghost = wait_for(lambda: remote(ghost_expression), GHOST_DEADLINE_S, "ghost text after typing", 0.1)
    except AssertionError:
        (ARTIFACTS / "nvim-tmux-no-ghost.txt").write_text(terminal.screen())
        raise
    time.sleep(0.3)   # let the terminal catch up with the redraw
    screen, colored = terminal.screen(), terminal.screen(escapes=True)
    (ARTIFACTS / "nvim-tmux-ghost.txt").write_text(screen)
    (ARTIFACTS / "nvim-tmux-ghost.ansi").write_text(colored)

    assert (ghost["row"], ghost["col"]) == (1, len(typed_line))
    tabstop = remote("vim.bo.tabstop")
    ghost_lines = ghost["text"].replace("\t", " " * tabstop).split("\n")
    rows = screen.split("\n")
    # Line 2 reads as the typed text followed by the suggestion's first line; further lines are drawn below it.
    assert rows[1].rstrip() == (typed_line + ghost_lines[0])[:WIDTH].rstrip(), screen
    for offset, virtual_line in enumerate(ghost_lines[1:], start=2):
        assert rows[offset].rstrip() == virtual_line[:WIDTH].rstrip(), screen
    # And in another colour than the typed text: a new SGR style starts right where the suggestion does.
    if ghost_lines[0]:
        row = colored.split("\n")[1]
        assert escapes_before_column(row, len(typed_line)), repr(row)

    terminal.keys("Tab")
    accepted = typed_line + ghost["text"]

    def buffer_after_accept():
        lines = remote("vim.api.nvim_buf_get_lines(0, 0, -1, false)")
        return lines if "\n".join(lines[1:]).startswith(accepted) else None

    lines = wait_for(buffer_after_accept, 10, "the suggestion in the buffer", 0.1)
    assert lines[0] == "def add(a, b):"
    assert "\n".join(lines) == "\n".join(SAMPLE.split("\n")[:-1]).replace("    \n", accepted + "\n", 1)
    time.sleep(0.3)
    after = terminal.screen()
    (ARTIFACTS / "nvim-tmux-accepted.txt").write_text(after)
    # The accepted text now reads as ordinary text (a next suggestion may already follow it).
    assert after.split("\n")[1].startswith(accepted.split("\n")[0].replace("\t", " " * tabstop)[:WIDTH]), after


def drawing_known_suggestions(remote) -> None:
    """Waits for the plugin to attach the server and stops it asking by itself: the test shows its own suggestion
    with the plugin's extmark ghost text (skipped where Neovim draws natively)."""
    wait_for(lambda: remote("(function() local c = require('diffusion_infill').get_client(0) "
                            "return c ~= nil and c.initialized end)()"), 30, "the plugin to attach infill-lsp", 0.1)
    if remote("require('diffusion_infill').use_native()"):
        pytest.skip("this Neovim draws inline completions natively (0.12+): the plugin's extmark ghost text is unused")
    remote("(function() require('diffusion_infill').config.auto_trigger = false return true end)()")


def test_multiline_ghost_text_in_the_middle_of_a_line_reads_as_the_accepted_text(neovim_in_tmux):
    """Neovim 0.11's extmark ghost text with the cursor mid-line: the rest of the line shows after the last
    suggestion line, where accepting puts it, not after the first. A known suggestion, so the model is not needed."""
    terminal, remote = neovim_in_tmux
    drawing_known_suggestions(remote)
    line, rest = "    total = add(a) + 1", "a) + 1"
    terminal.keys("2G", "S")   # replaces line 2's indentation with the typed line
    terminal.keys(line.lstrip(), literal=True)
    terminal.keys(*["Left"] * len(rest))
    col = len(line) - len(rest)
    wait_for(lambda: remote("vim.api.nvim_win_get_cursor(0)") == [2, col]
             and remote("vim.api.nvim_get_mode().mode") == "i", 10, "the cursor in the middle of line 2, in insert mode", 0.1)
    suggestion = "b,\n        c,\n        "
    shown = remote("(function() local bufnr = vim.api.nvim_get_current_buf() local here = { line = 1, character = %d } "
                   "return require('diffusion_infill.ghost').show(bufnr, { { insertText = %s, "
                   "range = { start = here, ['end'] = here } } }, require('diffusion_infill').get_client(bufnr)) end)()"
                   % (col, json.dumps(suggestion)))
    assert shown, "the plugin drew nothing"
    expected = ["    total = add(b,", "        c,", "        a) + 1"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def screen_shows_it():
        rows = terminal.screen().split("\n")
        return rows if [row.rstrip() for row in rows[1:4]] == expected else None

    try:
        rows = wait_for(screen_shows_it, 10, "the suggestion with the rest of the line after its last line", 0.1)
    finally:
        (ARTIFACTS / "nvim-tmux-midline-ghost.txt").write_text(terminal.screen())
    assert rows[0] == "def add(a, b):" and rows[4].strip() == "" and rows[6].startswith("print(add(1, 2))")
    assert remote("vim.api.nvim_buf_get_lines(0, 0, -1, false)") == SAMPLE.replace("    \n", line + "\n", 1).split(
        "\n")[:-1]   # only drawn: the buffer is untouched
    # The moved rest is ordinary text, the suggestion grey: the style changes where the rest starts.
    colored = terminal.screen(escapes=True).split("\n")
    assert escapes_before_column(colored[3], len("        ")), repr(colored[3])

    terminal.keys("Tab")
    lines = wait_for(lambda: (found := remote("vim.api.nvim_buf_get_lines(0, 0, -1, false)"))[1:4] == expected
                     and found, 10, "the accepted suggestion in the buffer", 0.1)
    assert lines == ["def add(a, b):", *expected, "", "", "print(add(1, 2))"]
    time.sleep(0.3)
    after = terminal.screen()
    (ARTIFACTS / "nvim-tmux-midline-accepted.txt").write_text(after)
    assert after.split("\n")[:4] == rows[:4]   # what was on screen is now the text


def test_ghost_text_shows_only_in_the_window_being_typed_in(neovim_in_tmux):
    """Extmarks belong to a buffer, so without scoping the suggestion would show in every window on the file
    (a :split of it, say), looking like text there. A known suggestion, so the model is not needed."""
    terminal, remote = neovim_in_tmux
    drawing_known_suggestions(remote)
    terminal.keys(":split", "Enter")   # two windows on the file, the cursor in the upper one
    wait_for(lambda: terminal.screen().count("def add(a, b):") == 2, 10, "the file in two windows", 0.1)
    terminal.keys("2G", "A")
    wait_for(lambda: remote("vim.api.nvim_get_mode().mode") == "i", 10, "insert mode", 0.1)
    shown = remote("(function() local bufnr = vim.api.nvim_get_current_buf() local here = { line = 1, character = 4 } "
                   "return require('diffusion_infill.ghost').show(bufnr, { { insertText = 'return a + b\\n    pass', "
                   "range = { start = here, ['end'] = here } } }, require('diffusion_infill').get_client(bufnr)) end)()")
    assert shown, "the plugin drew nothing"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        rows = wait_for(lambda: (found := terminal.screen().split("\n"))[1].rstrip() == "    return a + b" and found,
                        10, "the suggestion in the window being typed in", 0.1)
        time.sleep(0.3)
        rows = terminal.screen().split("\n")
    finally:
        (ARTIFACTS / "nvim-tmux-split-ghost.txt").write_text(terminal.screen())
    assert rows[2].rstrip() == "    pass"   # the suggestion's second line, drawn below
    assert sum("return a + b" in row for row in rows) == 1, "\n".join(rows)
    assert not any(row.strip() == "pass" for row in rows[3:]), "\n".join(rows)
    assert sum("def add(a, b):" in row for row in rows) == 2   # the other window still shows the file
