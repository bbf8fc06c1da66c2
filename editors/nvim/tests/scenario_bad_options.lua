-- setup() given options of the wrong type: each is reported once and its default used, and typing in insert mode
-- raises no Lua error (a debounce_ms of "fast" failed on every keystroke; keymaps = { accept = true } failed
-- before any key was mapped). Findings go to REPORT_FILE.
-- Run by tests/test_editor_neovim.py: nvim --headless --clean -u NONE -c "luafile scenario_bad_options.lua".
local plugin_dir = os.getenv("PLUGIN_DIR")
local H = dofile(plugin_dir .. "/tests/harness.lua")
local report = H.report

H.run(function()
  H.record_notifications()
  local infill = H.load_plugin()
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")), settings = "x", debounce_ms = "fast",
    keymaps = { accept = true, acept = "<C-y>" }, auto_trigger = "yes", colour = 1 })
  report.config = { debounce_ms = infill.config.debounce_ms, accept = infill.config.keymaps.accept,
    settings = vim.tbl_isempty(infill.config.settings) and "empty" or infill.config.settings,
    auto_trigger = infill.config.auto_trigger, colour = infill.config.colour or vim.NIL }
  vim.cmd.edit(os.getenv("SAMPLE_FILE"))
  local bufnr = vim.api.nvim_get_current_buf()
  H.wait_for("infill-lsp to attach", function() return infill.get_client(bufnr) end, 20000)
  H.type("Go")
  H.type("x")
  H.type("y")
  H.sleep(300)
  report.errmsg = vim.v.errmsg
  local tab = vim.fn.maparg("<Tab>", "i", false, true)
  report.tab = type(tab) == "table" and tab.desc or vim.NIL
  report.line = vim.api.nvim_get_current_line()
end, tonumber(os.getenv("SCENARIO_DEADLINE_MS")))
