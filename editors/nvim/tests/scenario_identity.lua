-- A buffer's name and language change while it is attached: the server must hear of both at once (vim.lsp sends
-- neither while the buffer stays attached). Records the plugin client's didOpen/didClose/didChange and asks the
-- server once after a rename. Findings go to REPORT_FILE.
-- Run by tests/test_editor_neovim.py: nvim --headless --clean -u NONE -c "luafile scenario_identity.lua".
local plugin_dir = os.getenv("PLUGIN_DIR")
local H = dofile(plugin_dir .. "/tests/harness.lua")
local api = vim.api
local report = H.report

local DOCUMENT_NOTES = { ["textDocument/didOpen"] = "open", ["textDocument/didClose"] = "close",
  ["textDocument/didChange"] = "change" }

-- What the server was told since the `index`th notification: { "open", uri, languageId } and so on.
local function told_since(index)
  local told = {}
  for i = index + 1, #H.notified do
    local note = H.notified[i]
    local kind = DOCUMENT_NOTES[note.method]
    if kind then
      local document = note.params.textDocument
      told[#told + 1] = { kind, document.uri, document.languageId or vim.NIL }
    end
  end
  return told
end

H.run(function()
  H.record_notifications()
  local infill = H.load_plugin()
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")),
    settings = vim.json.decode(os.getenv("INFILL_SETTINGS")) })
  vim.cmd.edit(os.getenv("SAMPLE_FILE"))
  local buf = api.nvim_get_current_buf()
  H.wait_for("infill-lsp to attach", function()
    local client = infill.get_client(buf)
    return client and client.initialized
  end, 20000)
  H.record_requests(infill.get_client(buf))

  local before = #H.notified
  vim.bo[buf].filetype = "lua"          -- served to served: the server must read it as Lua now
  H.sleep(200)
  report.to_lua = told_since(before)
  report.attached_as_lua = infill.get_client(buf) ~= nil

  before = #H.notified
  vim.bo[buf].filetype = "lua"          -- the same again: nothing to tell
  H.sleep(200)
  report.same_again = told_since(before)

  before = #H.notified
  vim.bo[buf].filetype = "python"
  H.sleep(200)
  before = #H.notified
  vim.cmd("file " .. vim.fn.fnameescape(os.getenv("RENAME_TO")))
  H.sleep(200)
  api.nvim_buf_set_lines(buf, 0, 0, false, { "# renamed" })
  H.sleep(300)
  report.renamed = told_since(before)
  local client = infill.get_client(buf)
  report.attached_after_rename = client ~= nil
  if client then
    local answer, err = client:request_sync("textDocument/inlineCompletion", {
      textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 2, character = 11 },
      context = { triggerKind = 1 } }, 30000, buf)
    report.asked_after_rename = { error = err and tostring(err) or (answer and answer.err and answer.err.message)
      or vim.NIL }
  end

  before = #H.notified
  vim.cmd("silent write")                -- written under the new name: opened once, not again
  H.sleep(300)
  report.written = told_since(before)
end, tonumber(os.getenv("SCENARIO_DEADLINE_MS")))
