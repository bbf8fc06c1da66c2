-- A buffer without a file name is not served (Neovim would send every such buffer as "file://", one document for
-- the server, and an edit for "file://" would land in a new buffer for "/"); once it is saved under a name, the
-- server attaches. Findings go to REPORT_FILE.
-- Run by tests/test_editor_neovim.py: nvim --headless --clean -u NONE -c "luafile scenario_unnamed.lua".
local plugin_dir = os.getenv("PLUGIN_DIR")
local H = dofile(plugin_dir .. "/tests/harness.lua")
local report = H.report

H.run(function()
  H.record_notifications()
  local infill = H.load_plugin()
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")) })
  -- A named file first, so that the server is running: an unnamed buffer then is the only reason not to attach.
  vim.cmd.edit(os.getenv("SAMPLE_FILE"))
  local named = vim.api.nvim_get_current_buf()
  H.wait_for("infill-lsp to attach", function() return infill.get_client(named) end, 20000)
  local unnamed = {}
  for i = 1, 2 do
    vim.cmd("enew")
    vim.bo.filetype = "python"
    vim.api.nvim_buf_set_lines(0, 0, -1, false, { "x = " .. i })
    unnamed[i] = vim.api.nvim_get_current_buf()
  end
  H.sleep(500)
  report.unnamed_attached = (infill.get_client(unnamed[1]) or infill.get_client(unnamed[2])) and true or false
  report.selection_refused = infill.run_on_selection("infill.fillSelection", 1, 1, nil, function() end) == false
  vim.cmd.saveas(os.getenv("SAVE_AS"))
  H.wait_for("infill-lsp to attach once saved", function() return infill.get_client(unnamed[2]) end, 20000)
  report.saved_uri = vim.uri_from_bufnr(unnamed[2])
  report.other_still_unattached = infill.get_client(unnamed[1]) == nil
  -- A server the user stopped stays stopped when a served file is written: only buffers skipped for having no
  -- name are looked at again.
  infill.get_client(named):stop(true)
  H.wait_for("the server to stop", function() return #vim.lsp.get_clients({ name = infill.name }) == 0 end, 10000)
  vim.cmd("buffer " .. named)
  vim.cmd("silent write")
  H.sleep(500)
  report.started_again_on_write = #vim.lsp.get_clients({ name = infill.name }) > 0
end, tonumber(os.getenv("SCENARIO_DEADLINE_MS")))
