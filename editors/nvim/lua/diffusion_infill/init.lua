-- Diffusion Infill for Neovim: starts `infill-lsp` through vim.lsp and shows its inline completions as ghost text.
-- The server does the work (what to complete, cleaning, edits); this file only asks, draws, and inserts.
local M = {}

local api = vim.api
local NAME = "diffusion_infill"
local SECTION = "diffusionInfill"
local INLINE_COMPLETION = "textDocument/inlineCompletion"
local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2 -- lsp.InlineCompletionTriggerKind: asked for / while typing

M.namespace = api.nvim_create_namespace(NAME)

M.defaults = {
  cmd = { "infill-lsp" },
  filetypes = { "python", "javascript", "typescript", "go", "rust", "c", "cpp", "java", "lua" },
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml", "Makefile" },
  -- The server's "diffusionInfill" section: model, allowDownload, device, maxNewTokens, steps, threads, ...
  settings = {},
  auto_trigger = true, -- ask while typing; false: only when you call suggest() (map it to a key)
  debounce_ms = 200,
  accept_key = "<Tab>", -- insert-mode key that accepts the ghost text (falls back to the key itself); false: none
  highlight = "Comment",
  native = "auto", -- use vim.lsp.inline_completion when Neovim has it (0.12+); false: always our ghost text
}
M.config = vim.deepcopy(M.defaults)

local has_011 = vim.fn.has("nvim-0.11") == 1

-- Neovim 0.11 made client methods colon-calls; 0.10 only has the closures.
local function client_call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local function use_native()
  return M.config.native ~= false and vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

function M.get_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or api.nvim_get_current_buf(), name = NAME })[1]
end

-- ---- starting the server ---------------------------------------------------------------------------------------

local function root_dir(bufnr)
  local name = api.nvim_buf_get_name(bufnr)
  local found = vim.fs.root(bufnr, M.config.root_markers)
  if found then
    return found
  end
  return name ~= "" and vim.fs.dirname(name) or vim.fn.getcwd()
end

--- Starts (or reuses) the server for this buffer's root and attaches the buffer.
function M.start(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local settings = M.config.settings
  -- An empty Lua table would travel as a JSON array, which the server rejects: send the section only when set.
  local section = next(settings) and { [SECTION] = settings } or nil
  return vim.lsp.start({
    name = NAME,
    cmd = M.config.cmd,
    root_dir = root_dir(bufnr),
    init_options = section,
    settings = section or vim.empty_dict(),
  }, { bufnr = bufnr })
end

-- ---- ghost text (Neovim < 0.12) --------------------------------------------------------------------------------

local shown = {} -- bufnr -> { item, encoding } of the ghost text on screen
local pending -- { client, id } of the request in flight
local timer

local function byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col
  if has_011 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  return ok and col or #line
end

local function insert_text_of(item)
  local text = item.insertText
  if type(text) == "table" then
    text = text.value -- a snippet: shown and inserted as plain text, placeholders and all
  end
  return text or ""
end

-- The item's range in bytes: {start_row, start_col, end_row, end_col}, 0-based; no range means the cursor.
local function byte_range(bufnr, item, encoding)
  if not item.range then
    local row, col = unpack(api.nvim_win_get_cursor(0))
    return { row - 1, col, row - 1, col }
  end
  local function at(position)
    local line = api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1] or ""
    return position.line, byte_col(line, position.character, encoding)
  end
  local start_row, start_col = at(item.range.start)
  local end_row, end_col = at(item.range["end"])
  return { start_row, start_col, end_row, end_col }
end

local function common_prefix_length(a, b)
  local n = 0
  while n < #a and n < #b and a:byte(n + 1) == b:byte(n + 1) do
    n = n + 1
  end
  return n
end

function M.clear(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
  shown[bufnr] = nil
end

--- Draws one InlineCompletionItem as ghost text: the first line inline at the insertion point, the rest as
--- virtual lines below. Returns the extmark id, or nil when there is nothing to show.
function M.render(bufnr, item, encoding)
  M.clear(bufnr)
  local text = insert_text_of(item)
  local range = byte_range(bufnr, item, encoding or "utf-16")
  local row, col = range[1], range[2]
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  -- The item may start before the cursor and repeat what is typed already: show only what is new.
  local skip = common_prefix_length(line:sub(col + 1), text)
  text, col = text:sub(skip + 1), col + skip
  if text == "" then
    return nil
  end
  local spaces = string.rep(" ", vim.bo[bufnr].tabstop)
  local lines = vim.split(text:gsub("\t", spaces), "\n", { plain = true })
  local mark = { hl_mode = "combine" }
  if lines[1] ~= "" then
    mark.virt_text = { { lines[1], M.config.highlight } }
    mark.virt_text_pos = "inline"
  end
  if #lines > 1 then
    mark.virt_lines = {}
    for i = 2, #lines do
      mark.virt_lines[#mark.virt_lines + 1] = { { lines[i], M.config.highlight } }
    end
  end
  local id = api.nvim_buf_set_extmark(bufnr, M.namespace, row, col, mark)
  shown[bufnr] = { item = item, encoding = encoding or "utf-16" }
  return id
end

--- Inserts the ghost text on screen and moves the cursor after it. Returns true when there was one.
function M.accept(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if use_native() then
    return vim.lsp.inline_completion.get({ bufnr = bufnr }) and true or false
  end
  local current = shown[bufnr]
  if not current then
    return false
  end
  M.clear(bufnr)
  local range = byte_range(bufnr, current.item, current.encoding)
  local lines = vim.split(insert_text_of(current.item), "\n", { plain = true })
  api.nvim_buf_set_text(bufnr, range[1], range[2], range[3], range[4], lines)
  local last_row = range[1] + #lines - 1
  local last_col = (#lines == 1 and range[2] or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  return true
end

local function cancel_pending()
  if pending then
    pcall(client_call, pending.client, "cancel_request", pending.id)
    pending = nil
  end
end

--- Asks the server for a suggestion at the cursor and draws it, unless the buffer or cursor moved meanwhile.
--- Called without arguments (e.g. from an insert-mode mapping) it counts as an explicit request.
function M.suggest(bufnr, trigger_kind)
  bufnr = bufnr or api.nvim_get_current_buf()
  trigger_kind = trigger_kind or TRIGGER_INVOKED
  local client = M.get_client(bufnr)
  if not client or not api.nvim_get_mode().mode:match("^i") then
    return
  end
  cancel_pending()
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = trigger_kind }
  local asked_at = { api.nvim_buf_get_changedtick(bufnr), unpack(api.nvim_win_get_cursor(0)) }
  -- The real buffer number matters: with 0, Neovim 0.11 does not flush the pending didChange first.
  local ok, id
  ok, id = client_call(client, "request", INLINE_COMPLETION, params, function(err, result)
    if pending and pending.id == id then
      pending = nil
    end
    if err or not result or api.nvim_get_current_buf() ~= bufnr or not api.nvim_get_mode().mode:match("^i") then
      return
    end
    local now = { api.nvim_buf_get_changedtick(bufnr), unpack(api.nvim_win_get_cursor(0)) }
    if not vim.deep_equal(now, asked_at) then
      return -- typed or moved since: the answer is for text that is gone
    end
    local items = result.items or result
    if items[1] then
      M.render(bufnr, items[1], client.offset_encoding)
    end
  end, bufnr)
  if ok then
    pending = { client = client, id = id }
  end
end

local function suggest_soon(bufnr)
  timer = timer or vim.uv.new_timer()
  timer:stop()
  timer:start(M.config.debounce_ms, 0, vim.schedule_wrap(function()
    if api.nvim_buf_is_valid(bufnr) and api.nvim_get_current_buf() == bufnr then
      M.suggest(bufnr, TRIGGER_AUTOMATIC)
    end
  end))
end

local function stop_suggesting(bufnr)
  if timer then
    timer:stop()
  end
  cancel_pending()
  M.clear(bufnr)
end

local function attach_ghost_text(bufnr)
  local group = api.nvim_create_augroup(NAME .. "_ghost_" .. bufnr, { clear = true })
  if M.config.auto_trigger then
    api.nvim_create_autocmd({ "InsertEnter", "TextChangedI" }, {
      group = group, buffer = bufnr, callback = function() suggest_soon(bufnr) end,
    })
  end
  -- CursorMovedI runs before TextChangedI, so typing clears the old ghost text and then asks again.
  api.nvim_create_autocmd({ "InsertLeave", "CursorMovedI", "BufLeave" }, {
    group = group, buffer = bufnr, callback = function() stop_suggesting(bufnr) end,
  })
end

local function map_accept_key(bufnr)
  local key = M.config.accept_key
  if not key then
    return
  end
  vim.keymap.set("i", key, function()
    if not M.accept(bufnr) then
      api.nvim_feedkeys(api.nvim_replace_termcodes(key, true, false, true), "n", false)
    end
  end, { buffer = bufnr, desc = "Diffusion Infill: accept the suggestion" })
end

-- ---- fill / rewrite a selection --------------------------------------------------------------------------------

local function lsp_position(bufnr, row, col, encoding)
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  col = math.min(col, #line)
  return { line = row, character = vim.lsp.util.character_offset(bufnr, row, col, encoding) }
end

-- The LSP range of a command's range: the last charwise visual selection when the command was given exactly
-- its lines ('<,'>), else whole lines. 1-based inclusive lines in, 0-based end-exclusive positions out.
local function selection_range(bufnr, line1, line2, encoding)
  local start_mark, end_mark = api.nvim_buf_get_mark(bufnr, "<"), api.nvim_buf_get_mark(bufnr, ">")
  local charwise = vim.fn.visualmode() == "v" and start_mark[1] == line1 and end_mark[1] == line2
  local start_col, end_col = 0, math.huge
  if charwise then
    local last_line = api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ""
    local last_char = vim.fn.strcharpart(last_line:sub(end_mark[2] + 1), 0, 1)
    start_col, end_col = start_mark[2], end_mark[2] + #last_char -- '> marks the last character's first byte
  end
  return {
    start = lsp_position(bufnr, line1 - 1, start_col, encoding),
    ["end"] = lsp_position(bufnr, line2 - 1, end_col, encoding),
  }
end

--- Sends infill.fillSelection / infill.rewriteSelection for lines line1..line2; the server applies the edit.
function M.run_on_selection(server_command, line1, line2, instruction)
  local bufnr = api.nvim_get_current_buf()
  local client = M.get_client(bufnr)
  if not client then
    vim.notify("Diffusion Infill: the server is not attached to this buffer", vim.log.levels.WARN)
    return
  end
  local argument = {
    uri = vim.uri_from_bufnr(bufnr),
    range = selection_range(bufnr, line1, line2, client.offset_encoding),
    instruction = instruction,
  }
  vim.notify("Diffusion Infill: working on the selection…")
  client_call(client, "request", "workspace/executeCommand",
    { command = server_command, arguments = { argument } }, function(err, answer)
      if err then
        vim.notify("Diffusion Infill: " .. (err.message or tostring(err)), vim.log.levels.ERROR)
      elseif answer and answer.applied == false and answer.message then
        vim.notify("Diffusion Infill: " .. answer.message, vim.log.levels.WARN)
      end
    end, bufnr)
end

function M.fill(line1, line2)
  M.run_on_selection("infill.fillSelection", line1, line2)
end

function M.rewrite(line1, line2, instruction)
  M.run_on_selection("infill.rewriteSelection", line1, line2, instruction ~= "" and instruction or nil)
end

-- ---- setup -----------------------------------------------------------------------------------------------------

local function on_attach(bufnr)
  if use_native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    attach_ghost_text(bufnr)
  end
  map_accept_key(bufnr)
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  local group = api.nvim_create_augroup(NAME, { clear = true })
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(event)
      if vim.bo[event.buf].buftype == "" then
        M.start(event.buf)
      end
    end,
  })
  api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if client and client.name == NAME then
        on_attach(event.buf)
      end
    end,
  })
  -- Buffers opened before setup() (e.g. lazy loading) get the server too.
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.start(bufnr)
    end
  end
end

return M
