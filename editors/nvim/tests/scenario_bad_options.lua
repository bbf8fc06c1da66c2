-- setup() given options of the wrong type: each is reported once and its default used, and typing in insert mode
-- raises no Lua error (a debounce_ms of "fast" failed on every keystroke; keymaps = { accept = true } failed
-- before any key was mapped), and right ones of every documented form are taken (root_markers with a nested list of
-- names of equal priority). Findings go to REPORT_FILE.
-- Run by tests/test_editor_neovim.py: nvim --headless --clean -u NONE -c "luafile scenario_bad_options.lua".
local plugin_dir = os.getenv("PLUGIN_DIR")
local H = dofile(plugin_dir .. "/tests/harness.lua")
local report = H.report

H.run(function()
  H.record_notifications()
  local infill = H.load_plugin()
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")), settings = "x", debounce_ms = "fast",
    keymaps = { accept = true, acept = "<C-y>" }, auto_trigger = "yes", colour = 1,
    root_markers = { { "setup.py", "pyproject.toml" }, ".git" } })
  report.config = { debounce_ms = infill.config.debounce_ms, accept = infill.config.keymaps.accept,
    settings = vim.tbl_isempty(infill.config.settings) and "empty" or infill.config.settings,
    auto_trigger = infill.config.auto_trigger, colour = infill.config.colour or vim.NIL }
  vim.cmd.edit(os.getenv("SAMPLE_FILE"))
  local bufnr = vim.api.nvim_get_current_buf()
  local client = H.wait_for("infill-lsp to attach", function() return infill.get_client(bufnr) end, 20000)
  report.root_dir = client.root_dir or vim.NIL
  H.type("Go")
  H.type("x")
  H.type("y")
  H.sleep(300)
  report.errmsg = vim.v.errmsg
  local function desc_of(lhs)
    local found = vim.fn.maparg(lhs, "i", false, true)
    return type(found) == "table" and found.desc or vim.NIL
  end
  report.tab = desc_of("<Tab>")
  report.line = vim.api.nvim_get_current_line()
  -- keymaps as a list names no action: merged over the defaults it replaced them all (no key was mapped), and the
  -- checks emptied the caller's own table.
  local given_keys = { "<M-y>" }
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")), keymaps = given_keys })
  report.keymaps_list = { given = given_keys, tab = desc_of("<Tab>"), next = desc_of("<M-]>") }
end, tonumber(os.getenv("SCENARIO_DEADLINE_MS")))
