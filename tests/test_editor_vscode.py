"""The VS Code extension in real VS Code (code-server 4.100.3 in Debian's Chromium, driven by selenium), talking to
the real `infill-lsp` server with the embedded model. Nothing is mocked.

`editors/install_code_server.sh` installs the browser, code-server (into the user's cache, shared by every checkout)
and the packaged extension (.vsix) into the git-ignored editors/.cache/vscode (cold: a few minutes; warm: a second). The test opens a Python file of a fresh
workspace (after turning diffusionInfill.enable off and on in the Settings editor first, which must not start a
server while no Python file is open), waits for the status bar to say the model is ready, types, waits for the server's ghost text, accepts it
with Tab, saves and reads the file back, asks once explicitly (Trigger Inline Suggestion), then runs "Fill
Selection" on a selection through its keybinding and "Rewrite Selection" through the command palette and its
instruction box, then through the server's code action (Refactor...), checking that each changed the selection and
nothing else, and finally changes
diffusionInfill.threads in the Settings editor and waits for the server to reload the model. Screenshots land in editors/.cache/vscode/screenshots/.

The embedded model is weak, so the assertions are about the mechanism (ghost text shown, the accepted text is what
the server sent, the fill changed the selection), never about the quality of the code.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import wait_for
from engine.loading import embedded_model_dir

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "editors" / "install_code_server.sh"
CACHE = REPO / "editors" / ".cache" / "vscode"
SCREENSHOTS = CACHE / "screenshots"
CODE_SERVER = CACHE / "code-server" / "node_modules" / ".bin" / "code-server"
SERVER = Path(sys.executable).parent / "infill-lsp"
SECTION_NAME = "diffusionInfill"
INSTALL_TIMEOUT_S = 600
MODEL_READY_S = 180      # code-server starts, the extension starts the server, torch and the model load
EDIT_S = 120
UI_S = 60                # the workbench itself on a busy machine

SAMPLE = (
    "def top_three(values):\n"
    "    return sorted(set(values), key=lambda v: (-v, str(v)))[:3]\n"
    "\n"
    "\n"
    "def add(a, b):\n"
    "    return "
)
# What the test types at the end of `return `: the first piece, then one more piece each time no ghost text came
# (the model's answer for a context is deterministic, and the server drops answers that would break the syntax; the
# weak embedded model's answers that pass are mostly a trailing comment, after a space).
TYPED = ["a ", "+ b ", "- 1 ", "* 2 "]
ATTEMPT_S = 25
EDIT_LINE = 2   # 1-based: the body of top_three, where Fill and Rewrite Selection work
# Where a selection starts on that line, after the indentation, tried in turn until the weak model's answer passes
# the checks (the last ones start inside the comment a fill tends to leave after `return `).
EDIT_SKIPS = [len("return "), 0, len("return s"), 11, 14, 16, 18]
# One torch thread and few denoising steps: the machine's cores are shared, and only the plumbing is under test.
SETTINGS = {
    "diffusionInfill.threads": 1,
    "diffusionInfill.steps": 12,
    "diffusionInfill.maxNewTokens": 16,
    "diffusionInfill.inlineBudgetMs": 0,   # no latency budget: answers must not depend on the clock
    "diffusionInfill.logLevel": "debug",
    # The embedded model, through a folder of the workspace named with the variable (it reached the server as
    # the literal "${workspaceFolder}/model", and no model loaded).
    "diffusionInfill.model": "${workspaceFolder}/model",
    # A quiet workbench: no welcome page, trust prompt, other suggestion widgets or auto-closing to get in the way.
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "extensions.ignoreRecommendations": True,
    "git.enabled": False,
    "editor.minimap.enabled": False,
    "editor.inlineSuggest.enabled": True,
    "editor.quickSuggestions": {"other": "off", "comments": "off", "strings": "off"},
    "editor.suggestOnTriggerCharacters": False,
    "editor.wordBasedSuggestions": "off",
    "editor.autoClosingBrackets": "never",
    # Tabs drawn 8 wide, levels of 4 spaces: the server must be told the level (it was told 8).
    "editor.detectIndentation": False,
    "editor.tabSize": 8,
    "editor.indentSize": 4,
    "editor.insertSpaces": True,
    "editor.autoClosingQuotes": "never",
    "files.trimTrailingWhitespace": False,
    "files.insertFinalNewline": False,
    "files.hotExit": "off",
    "files.autoSave": "off",
    "files.exclude": {"**/.venv": True},
    "chat.commandCenter.enabled": False,
}


# A notebook of a markdown cell and a Python cell under it: the sample's first function, and the second one's start.
# The server reads the markdown as comments above the cell (notebook sync).
SAMPLE_CELL = SAMPLE + "a + b"
NOTEBOOK_NOTE = "Helpers for lists of numbers."
NOTEBOOK = {
    "cells": [{"cell_type": "markdown", "metadata": {}, "source": [NOTEBOOK_NOTE]},
              {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
               "source": SAMPLE_CELL.splitlines(keepends=True)}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def cell_source(notebook_text: str) -> str | None:
    try:
        return "".join(json.loads(notebook_text)["cells"][1]["source"])
    except (ValueError, KeyError, IndexError):
        return None


# ---- install ------------------------------------------------------------------------------------------------------

def reachable(host: str, port: int = 443) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def code_server_install() -> Path:
    """Runs the installer (cached); skips only when the editor cannot be installed on this machine."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the VS Code editor test installs Debian's chromium and code-server: Linux only")
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("cannot install code-server: node and npm are not installed (Node 20 is needed)")
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[test]'")
    if not SERVER.exists():
        pytest.fail(f"{SERVER} is missing: install the project with pip install -e '.[test]'")
    try:
        done = subprocess.run([str(INSTALLER), str(CACHE)], capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{INSTALLER.name} took longer than {INSTALL_TIMEOUT_S} s")
    if done.returncode == 0:
        return CACHE
    output = (done.stdout + done.stderr)[-3000:]
    if done.returncode == 2:   # Debian packages missing and no root or no apt-get to install them
        pytest.skip(f"cannot install the editor's system packages here:\n{output}")
    unreachable = [host for host in ("registry.npmjs.org", "deb.debian.org") if not reachable(host)]
    if unreachable:
        pytest.skip(f"cannot install the editor: {', '.join(unreachable)} unreachable:\n{output}")
    pytest.fail(f"{INSTALLER.name} failed (exit {done.returncode}) with the registries reachable:\n{output}")


# ---- code-server and the browser ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def code_server(code_server_install: Path, tmp_path: Path):
    """code-server on a free port, serving a fresh workspace with the sample file; yields (url, workspace, dirs)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "demo.py").write_text(SAMPLE)
    # The extension finds the server in the workspace's .venv by itself: a launcher for the real one stands there.
    launcher = workspace / ".venv" / "bin" / "infill-lsp"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(f'#!/bin/sh\nexec "{SERVER}" "$@"\n')
    launcher.chmod(0o755)
    (workspace / "model").symlink_to(embedded_model_dir(), target_is_directory=True)
    user_data = tmp_path / "user-data"
    (user_data / "User").mkdir(parents=True)
    (user_data / "User" / "settings.json").write_text(json.dumps(SETTINGS, indent=2))
    # One entry for VS Code's suggestion list (word suggestions are off and the server offers no completion items
    # to an editor with ghost text): with the list open, inline requests carry the selected entry.
    (user_data / "User" / "snippets").mkdir()
    (user_data / "User" / "snippets" / "python.json").write_text(json.dumps(
        {"probe": {"prefix": "infillprobe", "body": "infill_probe()", "description": "a suggestion list entry"}}))
    runtime = tmp_path / "run"
    runtime.mkdir()
    (runtime / "config.yaml").write_text("auth: none\n")
    port = free_port()
    # TMPDIR and XDG_* keep code-server's sockets and state out of /tmp and the home folder.
    env = {**os.environ, "TMPDIR": str(runtime), "XDG_DATA_HOME": str(runtime / "data"),
           "XDG_CONFIG_HOME": str(runtime / "config"), "XDG_CACHE_HOME": str(runtime / "cache")}
    log = (tmp_path / "code-server.log").open("w")
    process = subprocess.Popen(
        [str(CODE_SERVER), "--config", str(runtime / "config.yaml"), "--user-data-dir", str(user_data),
         "--extensions-dir", str(code_server_install / "extensions"), "--bind-addr", f"127.0.0.1:{port}",
         "--auth", "none", "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
         "--disable-getting-started-override", str(workspace)],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for(lambda: process.poll() is not None or reachable("127.0.0.1", port), UI_S, "code-server to listen")
        assert process.poll() is None, f"code-server exited: {(tmp_path / 'code-server.log').read_text()[-2000:]}"
        yield f"http://127.0.0.1:{port}/?folder={workspace}", workspace, user_data
    finally:
        # Its own process group: the extension host and infill-lsp go with it.
        with_group = lambda sig: os.killpg(process.pid, sig)  # noqa: E731
        try:
            with_group(signal.SIGTERM)
            process.wait(15)
        except subprocess.TimeoutExpired:
            with_group(signal.SIGKILL)
            process.wait(15)
        except ProcessLookupError:
            pass
        log.close()


@pytest.fixture
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")   # selenium-manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# ---- the workbench ----------------------------------------------------------------------------------------------

def visible(driver, css: str):
    from selenium.common.exceptions import StaleElementReferenceException

    shown = []
    for element in driver.find_elements("css selector", css):
        try:
            if element.is_displayed():
                shown.append(element)
        except StaleElementReferenceException:  # redrawn since it was found: not shown any more
            continue
    return shown


# One script call finds and reads the elements together: the workbench redraws as the server answers, so an element
# found by one WebDriver call can be gone by the next (a stale element reference).
VISIBLE_TEXTS_JS = """
return Array.from(document.querySelectorAll(arguments[0]))
    .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
    .map(e => e.innerText);
"""


def visible_texts(driver, css: str) -> list[str]:
    return driver.execute_script(VISIBLE_TEXTS_JS, css)


def status_label(driver) -> str:
    """The extension's status bar item, by the accessible label it sets (`Diffusion Infill: ...`)."""
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute('aria-label'))",
        "#workbench\\.parts\\.statusbar [aria-label]")
    return next((label for label in labels if label and label.startswith("Diffusion Infill:")), "")


def status_tooltip(driver) -> str:
    """The text of the extension's status bar item's hover, shown by moving the pointer onto the item."""
    from selenium.webdriver.common.action_chains import ActionChains

    items = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".filter(e => (e.getAttribute('aria-label') || '').startsWith('Diffusion Infill:'))",
        "#workbench\\.parts\\.statusbar [aria-label]")
    if not items:
        return ""
    ActionChains(driver).move_to_element(items[0]).perform()
    return " ".join(visible_texts(driver, ".workbench-hover, .monaco-hover"))


def press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def chord(driver, modifiers: list[str], key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver)
    for modifier in modifiers:
        actions.key_down(modifier)
    actions.send_keys(key)
    for modifier in reversed(modifiers):
        actions.key_up(modifier)
    actions.perform()


def run_command(driver, title: str) -> None:
    """Through the command palette, as a person would."""
    from selenium.webdriver.common.keys import Keys

    press(driver, Keys.F1)
    box = wait_for(lambda: visible(driver, ".quick-input-widget input"), UI_S, "the command palette")[0]
    box.send_keys(title)
    rows = ".quick-input-list .monaco-list-row"
    wait_for(lambda: any(title.lower() in text.lower() for text in visible_texts(driver, rows)),
             UI_S, f"{title!r} in the command palette")
    box.send_keys(Keys.ENTER)


def select_all_in_editor(driver) -> None:
    """Ctrl+A in the editor just opened, pressed again until its selection shows: the palette offers the selection
    commands only with a selection, and a chord sent before the editor took the focus selects nothing. From the
    Settings editor the focus stayed in its search box (a Monaco editor too) and every Ctrl+A went there: a click in
    the active group's text gives the file's editor the focus first."""
    from selenium.webdriver.common.keys import Keys

    text = ".editor-group-container.active .editor-instance .monaco-editor .view-lines"
    selection = ".editor-group-container.active .editor-instance .monaco-editor.focused .selected-text"

    def selected() -> bool:
        if visible(driver, selection):
            return True
        lines = visible(driver, text)
        if lines:
            lines[0].click()
        chord(driver, [Keys.CONTROL], "a")
        return False

    chord(driver, [Keys.CONTROL], "a")
    wait_for(selected, UI_S, "the editor's text to be selected")


def quick_open(driver, name: str) -> None:
    """Ctrl+P, the file's name, Enter: as a person opens a file."""
    from selenium.webdriver.common.keys import Keys

    chord(driver, [Keys.CONTROL], "p")
    box = wait_for(lambda: visible(driver, ".quick-input-widget input"), UI_S, "quick open")[0]
    box.send_keys(name)
    wait_for(lambda: any(name in text for text in visible_texts(driver, ".quick-input-list .monaco-list-row")),
             UI_S, f"{name} in quick open")
    box.send_keys(Keys.ENTER)


def open_file(driver, name: str, tries: int = 3) -> None:
    """Quick open, then wait until the window's title names the file: the editor shown before (the Settings editor,
    whose search box is a Monaco editor too) could otherwise take the next keys, and Ctrl+A selected its search.
    Quick open again when it opened nothing: once in a fresh-clone CI run, an Enter pressed as the list was listing
    the file left the Settings editor in front for a whole minute."""
    from selenium.webdriver.common.keys import Keys

    for attempt in range(1, tries + 1):
        quick_open(driver, name)
        try:
            wait_for(lambda: name in driver.title and visible(driver, ".editor-instance .monaco-editor textarea"),
                     UI_S / 2, lambda: f"an editor for {name}; the window's title is {driver.title!r}")
            return
        except AssertionError:
            if attempt == tries:
                raise
            chord(driver, [], Keys.ESCAPE)   # a quick open still showing goes before the next one


def open_notebook_cell(driver, name: str) -> None:
    """Opens a notebook through quick open and puts the cursor in its first code cell's editor (a markdown cell
    shows its rendering, not an editor)."""
    quick_open(driver, name)
    cell = ".notebook-editor .cell-editor-container .monaco-editor"
    wait_for(lambda: visible(driver, cell), UI_S, f"a cell editor in {name}")[0].click()
    wait_for(lambda: visible(driver, f"{cell}.focused"), UI_S, "the cell editor to take the cursor")


def save_and_read(driver, path: Path, condition) -> str:
    """Saves (Ctrl+S) and reads the file back once `condition(text)` holds, or after UI_S seconds: saving is
    asynchronous, and the caller's assertion then says what differs."""
    from selenium.webdriver.common.keys import Keys

    chord(driver, [Keys.CONTROL], "s")
    deadline = time.monotonic() + UI_S
    while not condition(text := path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return text


def ghost_text(driver) -> str:
    return "".join(visible_texts(driver, ".ghost-text-decoration, .ghost-text"))


def squeeze(text: str) -> str:
    """Text without whitespace: the DOM draws spaces as no-break spaces and lines as separate elements."""
    return re.sub(r"\s+", "", text)


def log_lines(user_data: Path, pattern: str) -> list[str]:
    """Lines of the extension's output channel (VS Code keeps each channel in a file under the logs folder)."""
    found = []
    for path in (user_data / "logs").rglob("*Diffusion Infill.log"):
        found += [line for line in path.read_text(errors="replace").splitlines() if re.search(pattern, line)]
    return found


def logged_texts(user_data: Path, pattern: str) -> list[str]:
    """The JSON strings the extension logs after `pattern`, e.g. each suggestion it received."""
    return [json.loads(re.search(pattern + r"(.*)$", line).group(1)) for line in log_lines(user_data, pattern)]


def set_setting_box(driver, setting: str, value: str) -> bool:
    """Types `value` into a setting's box in the Settings editor; False until the box holds it (the editor
    redraws its list while the search settles, so a box found early may be gone)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.keys import Keys

    try:
        boxes = visible(driver, f'.settings-editor input[aria-label="{setting}"]')
        if not boxes:
            return False
        boxes[0].click()
        chord(driver, [Keys.CONTROL], "a")
        press(driver, value)
        return boxes[0].get_attribute("value") == value
    except WebDriverException:
        return False


def set_checkbox(driver, css: str, checked: bool) -> bool:
    """Clicks the first visible checkbox matching `css` if it is not `checked` yet; True once it is. Clicking only
    on a difference lets a caller poll this without toggling the box back and forth."""
    from selenium.common.exceptions import WebDriverException

    try:
        found = visible(driver, css)
        if not found:
            return False
        if (found[0].get_attribute("aria-checked") == "true") != checked:
            found[0].click()
        return (found[0].get_attribute("aria-checked") == "true") == checked
    except WebDriverException:
        return False


def edit_selection(driver, user_data: Path, server_command: str, invoke) -> str:
    """Selects the rest of line EDIT_LINE from one of EDIT_SKIPS, runs `invoke` (the command, as a person would)
    and returns the text the server applied. The server refuses an edit that would break the syntax; then the
    selection starts elsewhere and the command runs again."""
    from selenium.webdriver.common.keys import Keys

    pattern = re.escape(server_command) + "( applied |: )"
    for skip in EDIT_SKIPS:
        asked = len(log_lines(user_data, pattern))
        chord(driver, [Keys.CONTROL], Keys.HOME)
        for _ in range(EDIT_LINE - 1):
            press(driver, Keys.DOWN)
        press(driver, Keys.HOME)   # to the first non-blank character
        for _ in range(skip):
            press(driver, Keys.RIGHT)
        chord(driver, [Keys.SHIFT], Keys.END)
        invoke()
        wait_for(lambda: len(log_lines(user_data, pattern)) > asked, EDIT_S,
                 lambda: f"an answer to {server_command}; log: {log_lines(user_data, '')}")
        # (This answer's line only: an earlier run of the same command applied text too.)
        answer = log_lines(user_data, pattern)[asked]
        if re.search(re.escape(server_command) + " applied ", answer):
            return logged_texts(user_data, re.escape(server_command) + " applied ")[-1]
    raise AssertionError(f"the server applied no {server_command}; log: {log_lines(user_data, server_command)}")


def pick_code_action(driver, title: str) -> None:
    """Refactor... from the command palette, then the action of that title from its menu, as a person would."""
    from selenium.webdriver.common.keys import Keys

    rows = ".action-widget .monaco-list-row"
    # (Asked again when no menu comes: on a loaded machine the palette can close before the editor has the focus
    # back, and the command then finds no selection.)
    for attempt in range(3):
        run_command(driver, "Refactor...")
        try:
            wait_for(lambda: any(title in text for text in visible_texts(driver, rows)), UI_S / 3,
                     lambda: f"{title!r} among the code actions: {visible_texts(driver, rows)} "
                             f"(screenshot: {screenshot(driver, 'vscode-code-actions.png')})")
            break
        except AssertionError:
            if attempt == 2:
                raise
            press(driver, Keys.ESCAPE)
    # (The keys, not a click: the widget's own overlay takes a click on the row.)

    for _ in range(10):
        if any(title in text for text in visible_texts(driver, f"{rows}.focused")):
            press(driver, Keys.ENTER)
            return
        press(driver, Keys.DOWN)
    raise AssertionError(f"{title!r} never took the focus among {visible_texts(driver, rows)}")


def logged_objects(user_data: Path, pattern: str) -> list[dict]:
    """The JSON objects the extension logs after `pattern`, e.g. each status the server sent."""
    return [json.loads(re.search(pattern + r"(\{.*)$", line).group(1)) for line in log_lines(user_data, pattern)]


def screenshot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    return path


# ---- the test -------------------------------------------------------------------------------------------------------

def test_ghost_text_accept_fill_and_rewrite_in_code_server(code_server, browser):
    from selenium.webdriver.common.keys import Keys

    url, workspace, user_data = code_server
    demo = workspace / "demo.py"
    notebook = workspace / "cells.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK, indent=1))
    (workspace / "notes.txt").write_text("plain notes, not a served language\n")
    browser.get(url)
    wait_for(lambda: visible(browser, ".monaco-workbench"), UI_S, "the VS Code workbench")
    # No Python file open yet: a setting that restarts the server must not start one (and load the model) for
    # nothing; it starts when the file opens below.
    wait_for(lambda: "starts when a file" in status_label(browser), UI_S, "the extension to wait for a file")
    # (code-server does not notice settings.json written behind its back: the Settings editor it is.)
    run_command(browser, "Preferences: Open Settings (UI)")
    wait_for(lambda: visible(browser, ".settings-editor"), UI_S, "the Settings editor")
    press(browser, "diffusionInfill.enable")
    checkbox = ".settings-editor .setting-value-checkbox"
    wait_for(lambda: len(visible(browser, checkbox)) == 1, UI_S, "the search to leave one checkbox: enable's")
    for checked, wanted in ((False, "enable is false"), (True, "starts when a file")):   # off, then on: a restart
        wait_for(lambda: set_checkbox(browser, checkbox, checked) and wanted in status_label(browser), UI_S,
                 lambda: f"enable's box to be {checked} and the status bar to say {wanted!r}: it says "
                         f"{status_label(browser)!r}")
    time.sleep(3)
    assert not log_lines(user_data, r"starting .*infill-lsp"), log_lines(user_data, "")
    assert "starts when a file" in status_label(browser)
    press(browser, Keys.ESCAPE)
    open_file(browser, "demo.py")

    # The extension starts infill-lsp for the Python file; the status bar follows it to "ready".
    label = wait_for(lambda: (lambda l: l if "ready" in l or "error" in l else "")(status_label(browser)),
                     MODEL_READY_S, "the status bar item to say the model is ready")
    assert re.search(r"ready on (cpu|cuda|mps)", label), f"the status bar reports {label!r}"
    assert log_lines(user_data, r"starting .*/\.venv/bin/infill-lsp \(from the workspace\)"), \
        f"the server was not started from the workspace's .venv; log: {log_lines(user_data, 'starting')}"

    # Type at the end of `return ` and wait for the server's ghost text; without one, type a little more.
    chord(browser, [Keys.CONTROL], Keys.END)
    typed = ""
    for piece in TYPED:
        press(browser, piece)
        typed += piece
        try:
            wait_for(lambda: ghost_text(browser), ATTEMPT_S, "ghost text")
            break
        except AssertionError:
            continue
    shown = ghost_text(browser)
    assert shown, f"no ghost text after typing {typed!r}; log: {log_lines(user_data, '')}"
    screenshot(browser, "vscode-ghost-text.png")
    # The extension logs each suggestion it receives (logLevel debug); the one drawn is the one to be accepted.
    received = logged_texts(user_data, r"inline completion at 6:\d+: ")
    drawn = [text for text in received if squeeze(text) == squeeze(shown)]
    assert drawn, f"the ghost text {shown!r} is none of the suggestions the server sent: {received!r}"
    suggested = drawn[-1]

    press(browser, Keys.TAB)
    wait_for(lambda: not ghost_text(browser), UI_S, "the ghost text to be accepted")
    screenshot(browser, "vscode-accepted.png")
    expected = SAMPLE + typed + suggested
    assert save_and_read(browser, demo, lambda text: text == expected) == expected
    # Accepting ran the item's command, which tells the server (its counters come back in diffusionInfill/status).
    wait_for(lambda: any(status["counters"].get("accepted", 0) >= 1
                         for status in logged_objects(user_data, "status: ")), UI_S,
             lambda: f"the server to count the accepted suggestion; log: {log_lines(user_data, 'status: ')}")
    # Typing asked as LSP's Automatic (2): one candidate per answer. vscode-languageclient 9 would send VS Code's
    # own numbers (Automatic 1 = LSP's Invoked: three candidates each, no latency budget).
    counters = logged_objects(user_data, "status: ")[-1]["counters"]
    # (an answer typed through is the rest of a suggestion already counted as shown)
    assert counters["answered"] >= 1 and counters["shown"] == counters["answered"] - counters["typedThrough"], counters

    # An explicit request (Trigger Inline Suggestion, also what "show next" sends) reaches the server as Invoked (1);
    # VS Code's own 0 would be rejected as invalid params before the server's handler runs.
    requests = counters["requests"]
    run_command(browser, "Trigger Inline Suggestion")
    wait_for(lambda: any(status["counters"]["requests"] > requests for status in logged_objects(user_data, "status: ")),
             EDIT_S, lambda: f"the server to answer an explicit request; log: {log_lines(user_data, '')[-20:]}")
    assert not log_lines(user_data, "Invalid Params"), log_lines(user_data, "Invalid Params")
    press(browser, Keys.ESCAPE)

    # Fill Selection on the body of top_three through its keybinding, as a person would.
    before = demo.read_text()
    line = before.splitlines()[EDIT_LINE - 1]
    applied = edit_selection(browser, user_data, "infill.fillSelection",
                             lambda: chord(browser, [Keys.CONTROL, Keys.ALT], "f"))
    # With the editor's indentation: levels of 4 spaces (indentSize), not the 8 columns a tab is drawn in.
    sent = logged_objects(user_data, r"infill\.fillSelection (?=\{)")
    assert sent and sent[-1]["options"] == {"tabSize": 4, "insertSpaces": True}, sent
    screenshot(browser, "vscode-fill-selection.png")
    after = save_and_read(browser, demo, lambda text: text != before)
    assert after != before, "Fill Selection did not change the document"
    lines = after.splitlines()
    assert lines[0] == "def top_three(values):" and lines[EDIT_LINE - 1] != line
    assert after.endswith(SAMPLE.split("\n\n\n")[1] + typed + suggested), "the fill touched text outside the selection"
    assert applied in after, "the document does not hold the text the server applied"

    # Rewrite Selection from the command palette: it asks for an instruction first.
    before = after

    def rewrite() -> None:
        run_command(browser, "Diffusion Infill: Rewrite Selection")
        box = wait_for(lambda: visible(browser, ".quick-input-widget input"), UI_S, "the instruction box")[0]
        wait_for(lambda: any("instruction" in text for text in visible_texts(browser, ".quick-input-widget")), UI_S,
                 "the instruction prompt")
        box.send_keys("use shorter names", Keys.ENTER)

    applied = edit_selection(browser, user_data, "infill.rewriteSelection", rewrite)
    screenshot(browser, "vscode-rewrite-selection.png")
    after = save_and_read(browser, demo, lambda text: text != before)
    assert after != before and applied in after, "Rewrite Selection did not change the document"
    assert after.splitlines()[0] == "def top_three(values):"
    assert after.endswith(SAMPLE.split("\n\n\n")[1] + typed + suggested), "the rewrite touched other text"

    # The same from the server's code action (Refactor...): it runs through the extension too, with its
    # instruction prompt, progress and the editor's indentation (it ran the server's command bare), and sends the
    # range and version the action was offered for.
    before = after

    def rewrite_from_code_action() -> None:
        pick_code_action(browser, "Rewrite selection (Diffusion Infill)")
        box = wait_for(lambda: visible(browser, ".quick-input-widget input"), UI_S, "the instruction box")[0]
        box.send_keys(Keys.ENTER)

    applied = edit_selection(browser, user_data, "infill.rewriteSelection", rewrite_from_code_action)
    sent = logged_objects(user_data, r"infill\.rewriteSelection (?=\{)")[-1]
    assert sent["options"] == {"tabSize": 4, "insertSpaces": True} and isinstance(sent.get("version"), int), sent
    after = save_and_read(browser, demo, lambda text: text != before)
    assert after != before and applied in after, "the code action's rewrite did not change the document"
    assert after.endswith(SAMPLE.split("\n\n\n")[1] + typed + suggested), "the rewrite touched other text"

    # A changed model setting reaches the server (workspace/didChangeConfiguration), which reloads the model.
    # (threads: one keystroke, so the box never holds an in-between value; steps would apply without a reload.)
    loads = len(log_lines(user_data, "model ready on"))
    run_command(browser, "Preferences: Open Settings (UI)")
    wait_for(lambda: visible(browser, ".settings-editor"), UI_S, "the Settings editor")
    press(browser, "diffusionInfill.threads")
    wait_for(lambda: set_setting_box(browser, "diffusionInfill.threads", "2"), UI_S,
             "the diffusionInfill.threads box in the Settings editor to take 2")
    screenshot(browser, "vscode-settings.png")
    wait_for(lambda: len(log_lines(user_data, "model ready on")) > loads, MODEL_READY_S,
             lambda: f"the server to reload the model after a settings change; log: {log_lines(user_data, '')}")
    assert log_lines(user_data, r'settings changed: sending .*"threads":2'), "the new setting was not sent"
    assert not log_lines(user_data, "unknown option"), "the extension sent the server options it does not know"

    # With VS Code's suggestion list open, an inline request carries the selected entry and its range.
    # vscode-languageclient 9 sends that range as an array, which the server rejects as invalid params: no ghost
    # text while the list is open, i.e. on most identifier keystrokes with word suggestions on.
    press(browser, Keys.ESCAPE)
    open_file(browser, "demo.py")
    # (The keys go to demo.py's editor only once it has the focus: the Settings editor's boxes held it just now.)
    wait_for(lambda: visible(browser, ".editor-instance .monaco-editor.focused"), UI_S, "demo.py's editor to take keys")
    chord(browser, [Keys.CONTROL], Keys.END)
    press(browser, Keys.ENTER)
    # The snippet's first letters, so the list holds it near the top: the words of the model's text typed above
    # can fill the rows the list draws (it draws only those in view), and it was not among them.
    press(browser, "infillp")
    wait_for(lambda: any("infillp" in text for text in visible_texts(browser, ".editor-instance .view-line")), UI_S,
             lambda: f"the letters typed into demo.py; its lines: {visible_texts(browser, '.editor-instance .view-line')}")
    time.sleep(1)
    requests = logged_objects(user_data, "status: ")[-1]["counters"]["requests"]
    # (On a loaded machine the first Ctrl+Space can come before the editor has the focus back: ask again.)
    for attempt in range(3):
        chord(browser, [Keys.CONTROL], Keys.SPACE)
        try:
            wait_for(lambda: any("infillprobe" in text
                                 for text in visible_texts(browser, ".suggest-widget .monaco-list-row")),
                     UI_S / 3, "the suggestion list with the snippet")
            break
        except AssertionError:
            if attempt == 2:
                raise
            press(browser, Keys.ESCAPE)
    rejected = "do not fit the LSP schema|Invalid Params"
    wait_for(lambda: log_lines(user_data, rejected) or any(
        status["counters"]["requests"] > requests for status in logged_objects(user_data, "status: ")),
        EDIT_S, lambda: f"an inline request with the suggestion list open; log: {log_lines(user_data, '')[-20:]}")
    assert not log_lines(user_data, rejected), log_lines(user_data, rejected)
    press(browser, Keys.ESCAPE)

    # A Jupyter notebook (VS Code's own ipynb support, no Jupyter extension): Fill Selection in the code cell under a
    # markdown one. Cells were once not synced to the server, which answered "unknown document"; they come through
    # notebookDocument/* now (the server asks for them), each cell a document of its own.
    open_notebook_cell(browser, "cells.ipynb")
    applied = edit_selection(browser, user_data, "infill.fillSelection",
                             lambda: chord(browser, [Keys.CONTROL, Keys.ALT], "f"))
    screenshot(browser, "vscode-notebook-fill.png")
    saved = json.loads(save_and_read(browser, notebook, lambda text: '"def top_three' in text and
                                     cell_source(text) != SAMPLE_CELL))
    assert "".join(saved["cells"][0]["source"]) == NOTEBOOK_NOTE
    source = cell_source(json.dumps(saved))
    assert source != SAMPLE_CELL and applied in source, f"the cell was not filled: {source!r}"
    assert source.splitlines()[0] == "def top_three(values):" and source.endswith(SAMPLE_CELL.split("\n\n\n")[1])

    # In a file of a language not served, Ctrl+Alt+F is left to whatever else binds it: the command does not run
    # (it said "plaintext is not in diffusionInfill.languages"). The command palette still offers it, and says so.
    def toasts() -> str:
        return " ".join(visible_texts(browser, ".notifications-toasts"))

    open_file(browser, "notes.txt")
    select_all_in_editor(browser)
    chord(browser, [Keys.CONTROL, Keys.ALT], "f")
    time.sleep(3)
    assert "is not in" not in toasts(), toasts()
    run_command(browser, "Diffusion Infill: Fill Selection")
    wait_for(lambda: "is not in" in toasts(), UI_S, "the palette's Fill Selection to say plaintext is not served")

    # Turned off, the extension stops the server, and the status bar forgets what that server said: its hover named
    # the stopped server's model still.
    wait_for(lambda: "Model: model" in status_tooltip(browser), UI_S,
             lambda: f"the status bar's hover to name the model; it shows {status_tooltip(browser)!r}")
    run_command(browser, "Preferences: Open Settings (UI)")
    wait_for(lambda: visible(browser, ".settings-editor"), UI_S, "the Settings editor")
    chord(browser, [Keys.CONTROL], "a")   # the search box keeps the last search
    press(browser, "diffusionInfill.enable")
    wait_for(lambda: len(visible(browser, checkbox)) == 1, UI_S, "the search to leave one checkbox: enable's")
    wait_for(lambda: set_checkbox(browser, checkbox, False) and "enable is false" in status_label(browser), UI_S,
             lambda: f"the status bar to say enable is false: it says {status_label(browser)!r}")
    hover = wait_for(lambda: status_tooltip(browser), UI_S, "the status bar's hover")
    assert "enable is false" in hover and "Model:" not in hover, hover
    # Off, Fill Selection from the palette did nothing and said nothing outside the status bar.
    open_file(browser, "demo.py")
    select_all_in_editor(browser)
    run_command(browser, "Diffusion Infill: Fill Selection")
    wait_for(lambda: "is off" in toasts(), UI_S, lambda: f"Fill Selection to say the extension is off: {toasts()!r}")
    press(browser, Keys.ESCAPE)

    # A serverPath naming a program that never answers initialize (python, say) held the extension for good: the
    # status spun on "starting", and setting the path right (or Restart) waited on that start forever.
    def search_settings(query: str) -> None:
        run_command(browser, "Preferences: Open Settings (UI)")
        wait_for(lambda: visible(browser, ".settings-editor"), UI_S, "the Settings editor")
        chord(browser, [Keys.CONTROL], "f")   # the search box, wherever the focus was in the editor
        chord(browser, [Keys.CONTROL], "a")
        press(browser, query)

    def path_box_value() -> str | None:
        boxes = visible(browser, f'.settings-editor input[aria-label="{path_box}"]')
        return boxes[0].get_attribute("value") if boxes else None

    hang = workspace / "hang.sh"
    hang.write_text("#!/bin/sh\nexec sleep 300\n")
    hang.chmod(0o755)
    path_box = "diffusionInfill.serverPath"
    # (A machine setting: code-server's Settings editor shows it on the Remote tab, not the User one.)
    def remote_tab() -> bool:
        tabs = [tab for tab in visible(browser, ".settings-editor .settings-tabs-widget .action-label")
                if tab.text.startswith("Remote")]
        if tabs:
            tabs[0].click()
        return bool(tabs)

    # A server that exits before it answers initialize (a broken install: torch missing) was started three times,
    # each importing again only to fail, and the user got five error pop-ups: it is started once and said once.
    crash, spawns = workspace / "crash.sh", workspace / "crash-spawns.log"
    crash.write_text(f"#!/bin/sh\necho spawn >> {spawns}\necho 'ImportError: No module named torch' >&2\nexit 1\n")
    crash.chmod(0o755)
    search_settings(path_box)
    wait_for(remote_tab, UI_S, "the Settings editor's Remote tab")
    wait_for(lambda: set_setting_box(browser, path_box, str(crash)), UI_S, "the serverPath box to take crash.sh")
    time.sleep(3)   # (the Settings editor writes a typed value a moment later)
    search_settings("diffusionInfill.enable")
    wait_for(lambda: len(visible(browser, checkbox)) == 1, UI_S, "the search to leave one checkbox: enable's")
    # (It says "exited before it answered", or the pipe's error when the process ended before initialize was sent.)
    wait_for(lambda: set_checkbox(browser, checkbox, True) and "could not start" in status_label(browser),
             UI_S, lambda: f"the status bar to say the server did not start: it says {status_label(browser)!r}")
    time.sleep(5)   # (a restart by vscode-languageclient would come within a second or two)
    assert spawns.read_text().count("spawn") == 1, spawns.read_text()
    errors = [text for text in visible_texts(browser, ".notifications-toasts .notification-list-item-message")
              if re.search(r"start|connection|server", text)]   # (the toast about notes.txt may still show)
    assert len(errors) == 1 and "could not start" in errors[0], errors
    assert log_lines(user_data, "No module named torch"), log_lines(user_data, "")[-12:]   # its words, in the log
    press(browser, Keys.ESCAPE)
    wait_for(lambda: set_checkbox(browser, checkbox, False) and "enable is false" in status_label(browser), UI_S,
             lambda: f"the status bar to say enable is false: it says {status_label(browser)!r}")

    # The real server killed a few seconds after it started (as the kernel kills one out of memory while it loads
    # the model) was started again four more times, each loading the model, then left for dead whatever setting
    # changed. It is started again at most once, and only if it had loaded the model; the user is told once how it
    # ended; a changed server setting (int4, fewer threads) starts it again.
    killed, killed_spawns = workspace / "killed.sh", workspace / "killed-spawns.log"
    killed.write_text(f"#!/bin/sh\necho spawn >> {killed_spawns}\n(sleep 4; kill -9 $$) &\nexec {SERVER}\n")
    killed.chmod(0o755)
    search_settings(path_box)
    wait_for(remote_tab, UI_S, "the Settings editor's Remote tab")
    wait_for(lambda: set_setting_box(browser, path_box, str(killed)), UI_S, "the serverPath box to take killed.sh")
    time.sleep(3)   # (the Settings editor writes a typed value a moment later)
    search_settings("diffusionInfill.enable")
    wait_for(lambda: len(visible(browser, checkbox)) == 1, UI_S, "the search to leave one checkbox: enable's")
    wait_for(lambda: set_checkbox(browser, checkbox, True) and "stopped (signal SIGKILL" in status_label(browser),
             MODEL_READY_S, lambda: f"the status bar to say how the server ended: it says {status_label(browser)!r}")
    time.sleep(8)   # (the library restarted it within a second or two)
    spawned = killed_spawns.read_text().count("spawn")
    assert spawned <= 2, f"the killed server was started {spawned} times"   # (twice if it was ready within 4 s)
    said = [text for text in visible_texts(browser, ".notifications-toasts .notification-list-item-message")
            if re.search(r"start|connection|server", text)]
    assert len(said) == 1 and "out of memory?" in said[0], said
    press(browser, Keys.ESCAPE)
    search_settings("diffusionInfill.threads")
    wait_for(lambda: set_setting_box(browser, "diffusionInfill.threads", "3"), UI_S, "the threads box to take 3")
    wait_for(lambda: killed_spawns.read_text().count("spawn") > spawned, UI_S,
             lambda: f"a changed setting to start the server again: {log_lines(user_data, '')[-6:]}")
    search_settings("diffusionInfill.enable")
    wait_for(lambda: len(visible(browser, checkbox)) == 1, UI_S, "the search to leave one checkbox: enable's")
    wait_for(lambda: set_checkbox(browser, checkbox, False) and "enable is false" in status_label(browser), UI_S,
             lambda: f"the status bar to say enable is false: it says {status_label(browser)!r}")

    search_settings(path_box)
    wait_for(remote_tab, UI_S, "the Settings editor's Remote tab")
    wait_for(lambda: set_setting_box(browser, path_box, str(hang)), UI_S,
             lambda: f"the serverPath box to take the script: the boxes are "
                     f"{[(e.get_attribute('aria-label'), e.get_attribute('value')) for e in visible(browser, '.settings-editor input')]}")
    time.sleep(3)   # (the Settings editor writes a typed value a moment later)
    search_settings("diffusionInfill.enable")
    wait_for(lambda: len(visible(browser, checkbox)) == 1, UI_S, "the search to leave one checkbox: enable's")
    wait_for(lambda: set_checkbox(browser, checkbox, True) and "starting" in status_label(browser), UI_S,
             lambda: f"the server to be starting (demo.py is open): the status bar says {status_label(browser)!r}")
    time.sleep(2)
    assert log_lines(user_data, rf"starting {re.escape(str(hang))}"), (status_label(browser),
                                                                       log_lines(user_data, "")[-12:])
    search_settings(path_box)
    wait_for(remote_tab, UI_S, "the Settings editor's Remote tab")
    wait_for(lambda: set_setting_box(browser, path_box, Keys.BACKSPACE) or path_box_value() == "", UI_S,
             "the serverPath box to be emptied")
    wait_for(lambda: "ready" in status_label(browser), MODEL_READY_S,
             lambda: f"the workspace's server to start after the hung one: the status bar says {status_label(browser)!r}")
    assert not log_lines(user_data, "did not answer"), "the hung start was waited for until the timeout"
    time.sleep(3)   # (the client kills a process that never came up 2 s after giving up on it)
    assert subprocess.run(["pgrep", "-f", str(hang)], capture_output=True).returncode != 0, "the hung program runs on"

    # Two restarts close together: the first one's "off" (written once it had stopped its server) landed on the
    # status of the server the second one had started, and stayed there with that server running.
    run_command(browser, "Diffusion Infill: Restart Server")
    run_command(browser, "Diffusion Infill: Restart Server")
    wait_for(lambda: "ready" in status_label(browser), MODEL_READY_S,
             lambda: f"the status bar to say ready after two restarts: it says {status_label(browser)!r}")
    time.sleep(4)
    assert "ready" in status_label(browser), status_label(browser)


def test_a_folder_added_or_removed_restarts_nothing_when_no_setting_in_effect_changes(code_server, browser, tmp_path):
    """VS Code names `diffusionInfill.enable` in its change event when a workspace folder whose settings.json
    mentions it comes or goes, though its value in effect stays: the server was restarted (the model loaded again,
    requests in progress dropped) each time."""
    url, workspace, user_data = code_server
    other = tmp_path / "other project"
    (other / ".vscode").mkdir(parents=True)
    (other / ".vscode" / "settings.json").write_text(json.dumps({f"{SECTION_NAME}.enable": True}))
    (other / "notes.py").write_text("x = 1\n")
    workspace_file = tmp_path / "both.code-workspace"

    def folders(*paths: Path) -> None:   # code-server follows the workspace file's folders as it changes
        workspace_file.write_text(json.dumps({"folders": [{"path": str(path)} for path in paths]}))

    folders(workspace, other)
    browser.get(f"{url.split('?')[0]}?workspace={workspace_file}")
    wait_for(lambda: visible(browser, ".monaco-workbench"), UI_S, "the VS Code workbench")
    open_file(browser, "demo.py")
    label = wait_for(lambda: (lambda l: l if "ready" in l or "error" in l else "")(status_label(browser)),
                     MODEL_READY_S, "the status bar item to say the model is ready")
    assert "ready" in label, label
    explorer_roots = ".explorer-folders-view .monaco-list-row[aria-level='1']"
    for shown in ((workspace,), (workspace, other)):
        folders(*shown)
        wait_for(lambda: len(visible(browser, explorer_roots)) == len(shown), UI_S,
                 lambda: f"the Explorer to show {len(shown)} folders: {visible_texts(browser, explorer_roots)}")
        time.sleep(3)   # (a restart comes within a second of the change)
        assert "ready" in status_label(browser), status_label(browser)
    assert len(log_lines(user_data, r"starting .*infill-lsp")) == 1, log_lines(user_data, r"\[info\]")
    assert not log_lines(user_data, "restarting the server"), log_lines(user_data, r"\[info\]")


def test_settings_the_extension_sends_default_to_the_servers_own_options():
    """The Settings editor shows, for every option the extension passes to the server, the default the server
    itself uses (an empty model box and an empty steps or threads box are the server's None)."""
    from dataclasses import fields

    from lsp_server.config import CHECKS, ServerOptions

    manifest = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    settings_ts = (REPO / "editors" / "vscode" / "src" / "settings.ts").read_text()
    sent = re.findall(r"'(\w+)'", re.search(r"SERVER_KEYS = \[([^\]]*)\]", settings_ts)[1])
    server_defaults = {field.name: field.default for field in fields(ServerOptions)}
    # every option the server knows, except the completion-menu copy VS Code has no use for
    assert set(sent) == set(CHECKS) - {"completionItems"}, set(CHECKS) ^ set(sent)
    for key in sent:
        setting = properties[f"{SECTION_NAME}.{key}"]
        shown = None if setting["default"] == "" else setting["default"]
        assert shown == server_defaults[key], (key, setting["default"], server_defaults[key])
        assert setting.get("description") or setting.get("markdownDescription"), key


def test_every_value_the_settings_schema_lets_through_is_one_the_server_takes():
    """VS Code checks a setting only against package.json; a value it let through that the server refuses was
    replaced by the server's default behind a warning (`cuda:1024`, a seed past 2**63 or one that JavaScript
    rounds, past 2**53)."""
    from lsp_server.config import CHECKS

    manifest = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    for name, setting in properties.items():
        key = name.removeprefix(f"{SECTION_NAME}.")
        if key not in CHECKS:
            continue
        takes = CHECKS[key][0]
        if "integer" in setting["type"]:
            assert setting.get("maximum", 2**63) <= 2**53 - 1, (key, "a bound JavaScript keeps exactly")
            assert takes(setting["minimum"]) and takes(setting["maximum"]), key
            assert not takes(setting["minimum"] - 1) and not takes(setting["maximum"] + 1), key
        for value in setting.get("enum", []):
            assert takes(value), (key, value)
        if "pattern" in setting:
            for value in ("auto", "cpu", "cuda", "mps", "cuda:0", "cuda:7", "cuda:1023", "cuda:1024", "cuda:01",
                          "cuda:99999", "cuda:", "gpu"):
                assert bool(re.fullmatch(setting["pattern"], value)) == takes(value), (key, value)


def test_a_workspace_cannot_choose_downloads_or_code_and_every_served_language_is_on_by_default():
    from infill.languages import LANGUAGE_IDS

    manifest = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    # a repository's .vscode/settings.json could otherwise turn on downloads of a model it names, or remote code
    for key in ("allowDownload", "trustRemoteCode"):
        assert properties[f"{SECTION_NAME}.{key}"]["scope"] == "machine", key
    restricted = manifest["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"]
    assert {f"{SECTION_NAME}.{key}" for key in ("serverPath", "model", "allowDownload")} <= set(restricted)
    # .jsx and .tsx files had no suggestions unless the user added their language ids
    assert set(properties[f"{SECTION_NAME}.languages"]["default"]) == set(LANGUAGE_IDS) - {"cuda-cpp"}
    nvim = (REPO / "editors" / "nvim" / "lua" / "diffusion_infill" / "init.lua").read_text()
    filetypes = re.search(r"filetypes = \{([^}]*)\}", nvim)[1]
    assert set(re.findall(r'"([\w-]+)"', filetypes)) == set(LANGUAGE_IDS) - {"cuda-cpp"}


def test_extension_finds_the_server_in_setting_then_workspace_venv_then_path(code_server_install, tmp_path):
    """The compiled out/serverPath.js of the extension, run by Node as VS Code's extension host would."""
    finder = REPO / "editors" / "vscode" / "out" / "serverPath.js"
    with_venv, without_venv, not_executable, on_path = (tmp_path / name for name in
                                                         ("with", "without", "not-executable", "path-bin"))
    for folder, mode in ((with_venv / ".venv" / "bin", 0o755), (not_executable / ".venv" / "bin", 0o644),
                         (on_path, 0o755)):
        folder.mkdir(parents=True)
        (folder / "infill-lsp").write_text("#!/bin/sh\n")
        (folder / "infill-lsp").chmod(mode)
    without_venv.mkdir()
    script = """
const { findServer } = require(process.argv[1]);
const [withVenv, withoutVenv, notExecutable] = process.argv.slice(2);
console.log(JSON.stringify([
  findServer('', [withoutVenv, withVenv]),
  findServer('', [withoutVenv, notExecutable]),
  findServer('/opt/x/infill-lsp', [withVenv]),
  findServer('tools/infill-lsp', [withVenv]),
  findServer('${workspaceFolder}/bin/infill-lsp', [withVenv]),
  findServer('.venv\\\\Scripts\\\\infill-lsp.exe', [withVenv]),
  findServer('.venv/bin/infill-lsp', []),
  findServer('${workspaceFolder}/bin/infill-lsp', []),
  findServer('infill-lsp', []),
  findServer('${workspaceFolder}/bin/infill-lsp', ["/home/u/cost$$tools"]),
  findServer('${workspaceFolder}/bin/infill-lsp', ["/home/u/a$'b"]),
  findServer(' "/opt/x y/infill-lsp" ', [withVenv]),
  findServer(['/opt/x/infill-lsp', '--device', 'cpu'], [withVenv]),
  findServer(42, [withVenv]),
  findServer(undefined, [withoutVenv, withVenv]),
]));
"""
    env = {**os.environ, "PATH": f"{on_path}{os.pathsep}/usr/bin:/bin"}
    done = subprocess.run(["node", "-e", script, str(finder), str(with_venv), str(without_venv), str(not_executable)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found[0] == {"command": str(with_venv / ".venv" / "bin" / "infill-lsp"), "foundIn": "workspace"}
    assert found[1] == {"command": str(on_path / "infill-lsp"), "foundIn": "PATH"}   # not executable: skipped
    assert found[2] == {"command": "/opt/x/infill-lsp", "foundIn": "setting"}
    assert found[3] == {"command": str(with_venv / "tools" / "infill-lsp"), "foundIn": "setting"}
    assert found[4] == {"command": str(with_venv / "bin" / "infill-lsp"), "foundIn": "setting"}
    # a relative path written with Windows' separator is the workspace's too (it was left to the spawner's cwd)
    assert found[5] == {"command": f"{with_venv}/.venv\\Scripts\\infill-lsp.exe", "foundIn": "setting"}
    # no folder to be relative to (an untrusted workspace passes none): refused, not run from the working folder
    for refused in found[6:8]:
        assert set(refused) == {"problem"} and "not trusted" in refused["problem"], refused
    assert found[8] == {"command": "infill-lsp", "foundIn": "setting"}   # a bare name is a PATH lookup
    # a folder whose name holds `$$` or `$'`: taken as it is (a replacement string read them as patterns)
    assert found[9] == {"command": "/home/u/cost$$tools/bin/infill-lsp", "foundIn": "setting"}
    assert found[10] == {"command": "/home/u/a$'b/bin/infill-lsp", "foundIn": "setting"}
    # a path pasted with its quotes ("Copy as path") is the path inside them, not one relative to the workspace
    assert found[11] == {"command": "/opt/x y/infill-lsp", "foundIn": "setting"}
    # a setting of another type (a command list, as Neovim's `cmd`): a problem to show, not a throw that left the
    # extension without its commands
    for refused in found[12:14]:
        assert set(refused) == {"problem"} and "one path, as a string" in refused["problem"], refused
    assert found[14] == found[0]   # not set at all: the workspace's .venv
