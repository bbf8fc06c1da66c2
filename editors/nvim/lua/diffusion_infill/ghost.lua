-- Ghost text drawn with extmarks, for Neovim without vim.lsp.inline_completion (0.11) or with `native = false`.
-- One suggestion per buffer: the server's items, the one on screen, and where its new text goes.
local M = {}

local api = vim.api
local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2 -- lsp.InlineCompletionTriggerKind
local INLINE_COMPLETION = "textDocument/inlineCompletion"
local DID_SHOW = "diffusionInfill/didShowCompletion" -- { id }: the server counts each of its items on screen once

M.namespace = api.nvim_create_namespace("diffusion_infill")

-- Filled in by init.lua: the config, how to find our client, how to run a server command.
M.config = {}
M.get_client = function(_) return nil end
M.execute = function(_, _, _) end

-- bufnr -> {
--   items, index, client_id, encoding,   -- the server's answer and the candidate on screen
--   spots,                              -- index -> where each candidate went when the answer came (see spot_of)
--   consumed,                           -- what was typed through or accepted since then, at the spot's start
--   row, col,                           -- 0-based byte position where the candidate's new text goes
--   text,                               -- what is still to insert there (what the user typed already is skipped)
--   end_row, end_col,                   -- the candidate's range end: a full accept replaces [row,col .. end)
--   extmark, cover_extmark,             -- the ghost text; the blanks over a rest of the line it moves below
--   tick, cursor, rest,                 -- when drawn: the buffer's changedtick, the cursor, the line after col
--   command_sent,                       -- the acceptance command runs once per candidate
--   displayed,                          -- index -> true once the server was told that candidate is on screen
-- }
local states = {}
local pending = {} -- bufnr -> { client, id } of the request in flight
local timers = {} -- bufnr -> uv timer of the debounce

function M.state(bufnr)
  return states[(bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr]
end

-- Buffer lines hold no line ends: a server that follows a CRLF document's endings (fileformat=dos) would otherwise
-- leave a "\r" at the end of every inserted line but the last.
local function insert_text_of(item)
  local text = item.insertText
  if type(text) == "table" then
    text = text.value -- a snippet: shown and inserted as plain text
  end
  return (type(text) == "string" and text or ""):gsub("\r\n?", "\n")
end

local function byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  return ok and col or #line
end

local function line_at(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

local function is_continuation_byte(byte)
  return byte ~= nil and byte >= 0x80 and byte < 0xC0
end

-- Where an item puts new text, in bytes, on the buffer as it is now: { row, col, text, end_row, end_col }. An item
-- that starts before the cursor may repeat what the user typed there: that much is skipped, never more (what
-- follows the cursor is the document's, which the item's text goes in front of), and never half a character.
local function spot_of(bufnr, item, encoding)
  local text = insert_text_of(item)
  local cursor = api.nvim_win_get_cursor(0)
  local row, col, end_row, end_col
  if item.range then
    row = item.range.start.line
    col = byte_col(line_at(bufnr, row), item.range.start.character, encoding)
    end_row = item.range["end"].line
    end_col = byte_col(line_at(bufnr, end_row), item.range["end"].character, encoding)
  else
    row, col = cursor[1] - 1, cursor[2]
    end_row, end_col = row, col
  end
  local typed = ""
  if cursor[1] - 1 == row and cursor[2] > col then
    typed = line_at(bufnr, row):sub(col + 1, cursor[2])
  end
  local skip = 0
  while skip < #typed and skip < #text and typed:byte(skip + 1) == text:byte(skip + 1) do
    skip = skip + 1
  end
  while skip > 0 and is_continuation_byte(text:byte(skip + 1)) do
    skip = skip - 1
  end
  col = col + skip
  if end_row == row and end_col < col then
    end_col = col
  end
  return { row = row, col = col, text = text:sub(skip + 1), end_row = end_row, end_col = end_col }
end

-- Puts candidate `index` on the state, past what the user consumed since the answer came (typed through or
-- accepted in part). Returns false when the candidate does not go on from there: it starts elsewhere, it differs
-- from what was consumed, nothing of it is left, or the consumed text broke the line (its range no longer holds).
local function place(state, index)
  local spot, consumed = state.spots[index], state.consumed
  if consumed ~= "" and (consumed:find("\n", 1, true) or spot.row ~= state.spots[state.index].row
      or spot.col ~= state.spots[state.index].col or spot.text:sub(1, #consumed) ~= consumed) then
    return false
  end
  if #spot.text <= #consumed then
    return false
  end
  state.index, state.row, state.col, state.text = index, spot.row, spot.col + #consumed, spot.text:sub(#consumed + 1)
  -- What was consumed went in before the range's end, which moved right by as much.
  state.end_row = spot.end_row
  state.end_col = spot.end_row == spot.row and spot.end_col + #consumed or spot.end_col
  state.command_sent = false
  return true
end

-- The first line of the candidate goes inline at the cursor, the others as virtual lines below. In the middle of a
-- line the screen shows what accepting gives: the rest of the line (less what the item's range replaces) moves
-- after the last line, drawn as plain text, and blanks cover it where it stands (the buffer is not touched).
-- Virtual text draws a tab as one cell: each becomes the spaces it will take where it lands (to the next
-- multiple of 'tabstop' from its screen column `vcol`).
local function expand_tabs(text, vcol, tabstop)
  local out = {}
  for piece, tab in text:gmatch("([^\t]*)(\t?)") do
    out[#out + 1] = piece
    vcol = vcol + vim.fn.strdisplaywidth(piece)
    if tab ~= "" then
      local width = tabstop - vcol % tabstop
      out[#out + 1] = string.rep(" ", width)
      vcol = vcol + width
    end
  end
  return table.concat(out)
end

local function draw(bufnr, state)
  api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  local tabstop = vim.bo[bufnr].tabstop
  local line = line_at(bufnr, state.row)
  local lines = vim.split(state.text, "\n", { plain = true })
  local first_vcol = vim.fn.strdisplaywidth(line:sub(1, state.col))
  for i, text in ipairs(lines) do
    lines[i] = expand_tabs(text, i == 1 and first_vcol or 0, tabstop)
  end
  local highlight = M.config.highlight
  local rest = line:sub(state.col + 1)
  local tail = state.end_row == state.row and line:sub(state.end_col + 1) or rest
  local moves_rest = rest ~= "" and (#lines > 1 or tail ~= rest)
  local mark = { hl_mode = "combine", right_gravity = false }
  mark.virt_text = { { lines[1], highlight } }
  mark.virt_text_pos = "inline"
  if #lines > 1 then
    mark.virt_lines = {}
    for i = 2, #lines do
      mark.virt_lines[#mark.virt_lines + 1] = { { lines[i], highlight } }
    end
  end
  local last = mark.virt_lines and mark.virt_lines[#mark.virt_lines] or mark.virt_text
  if moves_rest and tail ~= "" then
    local tail_vcol = (#lines == 1 and first_vcol or 0) + vim.fn.strdisplaywidth(lines[#lines])
    last[#last + 1] = { expand_tabs(tail, tail_vcol, tabstop) } -- no highlight group: reads as the buffer's text
  end
  if M.config.show_counter and #state.items > 1 then
    last[#last + 1] = { (" (%d/%d)"):format(state.index, #state.items), M.config.counter_highlight }
  end
  state.extmark = api.nvim_buf_set_extmark(bufnr, M.namespace, state.row, state.col, mark)
  state.cover_extmark = nil
  if moves_rest then
    -- An overlay at the same column lands after the inline text: as wide as the rest from there (tabs included).
    local inline_text = table.concat(vim.tbl_map(function(chunk) return chunk[1] end, mark.virt_text))
    local start_vcol = vim.fn.strdisplaywidth(line:sub(1, state.col)) + vim.fn.strdisplaywidth(inline_text)
    local width = vim.fn.strdisplaywidth(rest, start_vcol)
    state.cover_extmark = api.nvim_buf_set_extmark(bufnr, M.namespace, state.row, state.col,
      { virt_text = { { string.rep(" ", width) } }, virt_text_pos = "overlay", hl_mode = "combine" })
  end
  -- Extmarks belong to the buffer and show in every window on it: the suggestion is only for the one typed in.
  -- nvim__ns_set (0.11, still marked experimental) scopes the namespace; without it every window shows it.
  if api.nvim__ns_set then
    pcall(api.nvim__ns_set, M.namespace, { wins = { api.nvim_get_current_win() } })
  end
  -- What the buffer, cursor and the line after the suggestion looked like when drawn: later events compare against it.
  state.tick, state.cursor, state.rest = api.nvim_buf_get_changedtick(bufnr), api.nvim_win_get_cursor(0), rest
  state.win = api.nvim_get_current_win()
  return state.extmark
end

-- The server's id for an item (the argument of its acceptance command), or nil for items from elsewhere.
local function suggestion_id(item)
  local arguments = item.command and item.command.arguments
  local first = type(arguments) == "table" and arguments[1]
  return type(first) == "table" and type(first.id) == "string" and first.id or nil
end

-- Tells the server, once per candidate, that the one just drawn is on screen; it only counts it.
local function report_display(state)
  local id = suggestion_id(state.items[state.index])
  if not id or state.text == "" or state.displayed[state.index] then
    return
  end
  state.displayed[state.index] = true
  local client = vim.lsp.get_client_by_id(state.client_id)
  if client then
    client:notify(DID_SHOW, { id = id })
  end
end

--- Removes the ghost text without telling the server anything (the user typed or moved on).
function M.clear(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
  states[bufnr] = nil
end

--- Shows the server's items (an InlineCompletionList's items) as ghost text, the first one on screen; or, when they
--- hold the candidate on screen now (by its id: the server's answer while it is typed through), that one.
--- Returns the extmark id, or nil when no item has anything new to show.
function M.show(bufnr, items, client)
  local before = states[bufnr]
  local on_screen = before and suggestion_id(before.items[before.index])
  M.clear(bufnr)
  local state = { items = {}, spots = {}, consumed = "", client_id = client.id,
    encoding = client.offset_encoding or "utf-16", displayed = {} }
  local order = {}
  for _, item in ipairs(items or {}) do
    if insert_text_of(item) ~= "" then
      state.items[#state.items + 1] = item
      state.spots[#state.items] = spot_of(bufnr, item, state.encoding)
      table.insert(order, on_screen and suggestion_id(item) == on_screen and 1 or #order + 1, #state.items)
    end
  end
  for _, index in ipairs(order) do
    if place(state, index) then
      states[bufnr] = state
      local extmark = draw(bufnr, state)
      report_display(state)
      return extmark
    end
  end
  return nil
end

local typed_through -- defined below, with the autocommands that call it

--- The suggestion's state once caught up with keys that ran before TextChangedI and CursorMovedI could update it
--- (typed in one burst with the key that asks: a busy editor, pasted input); nil, and cleared, when it no longer
--- fits where the cursor is, or was drawn in another window on this buffer (it is not on screen here).
function M.catch_up(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state = states[bufnr]
  if not state then
    return nil
  end
  if state.tick ~= api.nvim_buf_get_changedtick(bufnr) and not typed_through(bufnr)
    or not vim.deep_equal(api.nvim_win_get_cursor(0), state.cursor)
    or (state.win and state.win ~= api.nvim_get_current_win()) then
    M.clear(bufnr)
    return nil
  end
  return states[bufnr]
end

--- Shows the next (count 1) or previous (count -1) candidate among those that still go on from what the user typed
--- through or accepted of the one on screen. Returns the index shown, or nil with nothing shown.
function M.cycle(bufnr, count)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state = M.catch_up(bufnr)
  if not state then
    return nil
  end
  count = count or 1
  local direction, total = count < 0 and -1 or 1, #state.items
  local index = state.index
  for _ = 1, math.abs(count) do
    for _ = 1, total - 1 do
      index = (index - 1 + direction) % total + 1
      if index ~= state.index and place(state, index) then
        break
      end
    end
  end
  draw(bufnr, state)
  report_display(state)
  return state.index
end

local function send_acceptance(bufnr, state)
  local item = state.items[state.index]
  if item.command and not state.command_sent then
    state.command_sent = true
    M.execute(vim.lsp.get_client_by_id(state.client_id), item.command, bufnr, true)
  end
end

-- How much of `text` one accept takes: everything, up to the end of the next word, or up to the end of the line.
local function chunk_of(text, how)
  if how ~= "word" and how ~= "line" then
    return text
  end
  local newline = text:find("\n", 1, true)
  if newline == 1 then
    return text:match("^\n[ \t]*") -- the line break and the next line's indentation
  end
  local line = newline and text:sub(1, newline - 1) or text
  if how == "line" then
    return line
  end
  -- Leading spaces and punctuation travel with the word after them. Bytes of UTF-8 characters (0x80-0xFF) are
  -- word bytes: Lua's %w is ASCII only, and "café" is one word.
  local start = line:find("[%w_\128-\255]+")
  return start and line:sub(1, select(2, line:find("^[%w_\128-\255]+", start))) or line
end

--- Accepts the ghost text on screen: all of it (how = "all", the default), the next word, or the rest of the line.
--- The cursor ends after the inserted text. Returns true when something was inserted.
function M.accept(bufnr, how)
  bufnr = bufnr or api.nvim_get_current_buf()
  -- Keys that arrived with the accept key ran before the ghost text caught up: accept nothing that no longer fits.
  local state = M.catch_up(bufnr)
  if not state then
    return false
  end
  local chunk = chunk_of(state.text, how)
  local lines = vim.split(chunk, "\n", { plain = true })
  local whole = chunk == state.text
  if whole then
    -- The last piece replaces the item's whole range (e.g. a closing bracket the suggestion rewrites).
    M.clear(bufnr)
    api.nvim_buf_set_text(bufnr, state.row, state.col, state.end_row, state.end_col, lines)
  else
    api.nvim_buf_set_text(bufnr, state.row, state.col, state.row, state.col, lines)
  end
  local last_row = state.row + #lines - 1
  local last_col = (#lines == 1 and state.col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  send_acceptance(bufnr, state)
  if not whole then
    -- The rest stays on screen, now starting at the cursor; the range end moved with the inserted text.
    if state.end_row == state.row then
      state.end_col = state.end_col - state.col + last_col
    end
    state.end_row = state.end_row + #lines - 1
    state.row, state.col, state.text = last_row, last_col, state.text:sub(#chunk + 1)
    state.consumed = state.consumed .. chunk
    draw(bufnr, state)
  end
  return true
end

--- Hides the ghost text the user turned down, and tells the server (`infill.rejected`) when it listens for that.
function M.dismiss(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local state = states[bufnr]
  if not state then
    return false
  end
  M.clear(bufnr)
  local item = state.items[state.index]
  local client = vim.lsp.get_client_by_id(state.client_id)
  if item.command and not state.command_sent and client then
    M.execute(client, { title = "rejected", command = "infill.rejected", arguments = item.command.arguments }, bufnr,
      true)
  end
  return true
end

local waiting_for_insert = {} -- bufnr -> the ModeChanged autocmd of a request asked from <C-o> (see M.suggest)

local function cancel_pending(bufnr)
  local request = pending[bufnr]
  if request then
    pcall(request.client.cancel_request, request.client, request.id)
    pending[bufnr] = nil
  end
end

--- Asks the server for suggestions at the cursor and shows them, unless the buffer or the cursor moved meanwhile.
--- Called without a trigger kind it is an explicit request (the server then offers several candidates).
function M.suggest(bufnr, trigger_kind)
  bufnr = bufnr or api.nvim_get_current_buf()
  trigger_kind = trigger_kind or TRIGGER_INVOKED
  local client = M.get_client(bufnr)
  if not client or api.nvim_get_current_buf() ~= bufnr then
    return false
  end
  if api.nvim_get_mode().mode:match("^ni") then
    -- Run from insert mode's one normal-mode command (<C-o>:InfillSuggest): at the end of a line the cursor stands
    -- on the last character until insert mode resumes, so the answer would be for the column before the user's.
    -- One such wait per buffer, and only back in insert mode: from Replace mode (or a command that ends insert
    -- mode) nothing is asked, later or elsewhere.
    if waiting_for_insert[bufnr] then
      pcall(api.nvim_del_autocmd, waiting_for_insert[bufnr])
    end
    waiting_for_insert[bufnr] = api.nvim_create_autocmd("ModeChanged", { pattern = "ni*:*", once = true,
      callback = function()
        waiting_for_insert[bufnr] = nil
        if vim.v.event.new_mode:match("^i") and api.nvim_buf_is_valid(bufnr) then
          vim.schedule(function() M.suggest(bufnr, trigger_kind) end)
        end
      end })
    return true
  end
  cancel_pending(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = trigger_kind }
  local asked_at = { api.nvim_buf_get_changedtick(bufnr), unpack(api.nvim_win_get_cursor(0)) }
  local id
  -- The real buffer number matters: with 0, Neovim 0.11 does not flush the pending didChange first.
  local ok
  ok, id = client:request(INLINE_COMPLETION, params, function(err, result)
    local latest = pending[bufnr] ~= nil and pending[bufnr].id == id
    if latest then
      pending[bufnr] = nil
    end
    -- Only the latest request's answer, and only while typing: nothing clears ghost text in normal mode.
    if not latest or err or not result or not api.nvim_buf_is_valid(bufnr) or api.nvim_get_current_buf() ~= bufnr
        or not api.nvim_get_mode().mode:match("^i") or vim.fn.pumvisible() == 1 then
      return
    end
    local now = { api.nvim_buf_get_changedtick(bufnr), unpack(api.nvim_win_get_cursor(0)) }
    if not vim.deep_equal(now, asked_at) then
      return -- typed or moved since: the answer is for text that is gone
    end
    local items = result.items or result
    if trigger_kind == TRIGGER_INVOKED and states[bufnr]
        and not vim.iter(items):any(function(item) return insert_text_of(item) ~= "" end) then
      return -- asked for more (next on one suggestion) and none came: the one on screen still fits the text
    end
    M.show(bufnr, items, client)
    if M.on_shown then
      M.on_shown(bufnr, trigger_kind)
    end
  end, bufnr)
  if ok then
    pending[bufnr] = { client = client, id = id }
  end
  return ok
end

-- Typing what the ghost text says keeps it on screen, shortened, until the server's next answer replaces it.
typed_through = function(bufnr)
  local state = states[bufnr]
  if not state or state.tick == api.nvim_buf_get_changedtick(bufnr) then
    return state ~= nil -- nothing typed since it was drawn (e.g. the change was our own accept)
  end
  local cursor = api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  if row == state.row and col > state.col then
    local line = line_at(bufnr, row)
    local typed = line:sub(state.col + 1, col)
    -- Only typed in front of the rest of the line: a key that also changed it (an auto-pairs plugin's "(" adds
    -- ")") would leave the range end short of the text it covers, and accepting would keep both brackets.
    if typed ~= "" and typed == state.text:sub(1, #typed) and #typed < #state.text
        and line:sub(col + 1) == state.rest then
      if state.end_row == state.row then
        state.end_col = state.end_col + #typed
      end
      state.col, state.text = col, state.text:sub(#typed + 1)
      state.consumed = state.consumed .. typed
      draw(bufnr, state)
      return true
    end
  end
  M.clear(bufnr)
  return false
end

local function suggest_soon(bufnr)
  if not M.config.auto_trigger then
    return
  end
  local timer = timers[bufnr]
  if not timer then
    timer = vim.uv.new_timer()
    timers[bufnr] = timer
  end
  timer:stop()
  timer:start(M.config.debounce_ms, 0, vim.schedule_wrap(function()
    if api.nvim_buf_is_valid(bufnr) and api.nvim_get_current_buf() == bufnr and api.nvim_get_mode().mode:match("^i")
      and vim.fn.pumvisible() == 0 then
      M.suggest(bufnr, TRIGGER_AUTOMATIC)
    end
  end))
end

--- Asks soon (debounced) if the user is typing in this buffer: after attaching, or once the model is ready.
function M.suggest_if_typing(bufnr)
  if api.nvim_get_current_buf() == bufnr and api.nvim_get_mode().mode:match("^i") and not states[bufnr] then
    suggest_soon(bufnr)
  end
end

local function stop(bufnr)
  if timers[bufnr] then
    timers[bufnr]:stop()
    timers[bufnr]:close()
    timers[bufnr] = nil
  end
  cancel_pending(bufnr)
end

--- Wires a buffer: ask while typing (when auto_trigger), keep or clear the ghost text as the user types and moves.
function M.attach(bufnr)
  local group = api.nvim_create_augroup("diffusion_infill_ghost_" .. bufnr, { clear = true })
  -- auto_trigger is read on each event, so it can be switched at any time.
  api.nvim_create_autocmd("TextChangedI", {
    group = group, buffer = bufnr, callback = function()
      typed_through(bufnr)
      if M.config.auto_trigger then
        suggest_soon(bufnr)
      end
    end,
  })
  -- While the completion menu is open (Neovim's own, vim.lsp.completion's) no ghost text, as copilot.vim does: the
  -- menu's keys (<Tab>, <C-n>) are the user's then, and ghost text accepted under it was replaced by the menu's
  -- next pick. Asked again once the menu closes.
  api.nvim_create_autocmd({ "CompleteChanged", "TextChangedP" }, {
    group = group, buffer = bufnr, callback = function()
      stop(bufnr)
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd("CompleteDone", {
    group = group, buffer = bufnr, callback = function()
      if M.config.auto_trigger then
        suggest_soon(bufnr)
      end
    end,
  })
  api.nvim_create_autocmd("InsertEnter", {
    group = group, buffer = bufnr, callback = function()
      if M.config.auto_trigger then
        suggest_soon(bufnr)
      end
    end,
  })
  api.nvim_create_autocmd("CursorMovedI", {
    group = group, buffer = bufnr, callback = function()
      -- Moving without typing abandons the suggestion; typing is TextChangedI's business.
      local state = states[bufnr]
      if state and api.nvim_buf_get_changedtick(bufnr) == state.tick
        and not vim.deep_equal(api.nvim_win_get_cursor(0), state.cursor) then
        stop(bufnr)
        M.clear(bufnr)
      end
    end,
  })
  -- Not for <C-o> (mode niI, InsertLeave fires there too): one command, then back to insert mode; the user
  -- rejected nothing.
  api.nvim_create_autocmd("InsertLeave", {
    group = group, buffer = bufnr, callback = function()
      if api.nvim_get_mode().mode:match("^ni") then
        return
      end
      stop(bufnr)
      M.dismiss(bufnr)
    end,
  })
  -- <C-c> leaves insert mode without InsertLeave: the ghost text would stay in normal mode, looking like text.
  api.nvim_create_autocmd("ModeChanged", {
    group = group, buffer = bufnr, callback = function()
      local new_mode = vim.v.event.new_mode
      if vim.v.event.old_mode:match("^i") and not new_mode:match("^i") and not new_mode:match("^ni") then
        stop(bufnr)
        M.dismiss(bufnr)
      end
    end,
  })
  -- Another window on this buffer does not show the suggestion (it is drawn in one window only): leaving the
  -- window it is in abandons it, as leaving the buffer does.
  api.nvim_create_autocmd({ "BufLeave", "BufUnload", "WinLeave" }, {
    group = group, buffer = bufnr, callback = function()
      stop(bufnr)
      M.clear(bufnr)
    end,
  })
  -- Back in this buffer (or window) still in insert mode, as a <Cmd> mapping leaves the user: InsertEnter does not
  -- fire, so ask here, or nothing is suggested until a key is typed.
  api.nvim_create_autocmd({ "BufEnter", "WinEnter" }, {
    group = group, buffer = bufnr, callback = function()
      if M.config.auto_trigger then
        M.suggest_if_typing(bufnr)
      end
    end,
  })
  -- The user may have started typing before the server was up.
  M.suggest_if_typing(bufnr)
end

function M.detach(bufnr)
  stop(bufnr)
  M.clear(bufnr)
  pcall(api.nvim_del_augroup_by_name, "diffusion_infill_ghost_" .. bufnr)
end

return M
