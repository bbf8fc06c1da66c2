-- Diffusion Infill for Neovim: runs `infill-lsp` through vim.lsp and shows its inline completions as ghost text.
-- The server does the work (what to complete, cleaning, edits); the plugin asks, draws, inserts and reports back.
local M = {}

local api = vim.api
local ghost = require("diffusion_infill.ghost")

local NAME = "diffusion_infill"
local SECTION = "diffusionInfill"
local STATUS_NOTIFICATION = "diffusionInfill/status"
local STATUS_COMMAND = "infill.status"

M.name = NAME
M.namespace = ghost.namespace

M.defaults = {
  cmd = { "infill-lsp" },
  filetypes = { "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "rust", "c", "cpp",
    "java", "lua" },
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml", "Makefile" },
  -- The server's "diffusionInfill" section: model, allowDownload, device, maxNewTokens, steps, threads, ...
  settings = {},
  auto_trigger = true, -- ask while typing; false: only on the invoke key or :InfillSuggest
  debounce_ms = 75, -- light: the server debounces as well
  -- Insert-mode keys; each does its usual job (the user's own mapping, else the key) when there is no ghost text
  -- for it to act on. false disables one (or all).
  keymaps = {
    accept = "<Tab>",
    accept_word = "<M-Right>",
    accept_line = "<M-C-Right>",
    next = "<M-]>",
    prev = "<M-[>",
    dismiss = "<C-]>",
    invoke = "<M-\\>",
  },
  highlight = "DiffusionInfillGhost", -- grey unless you define it
  counter_highlight = "DiffusionInfillCounter", -- the " (2/3)" after a candidate when there are several
  show_counter = true,
  native = "auto", -- use vim.lsp.inline_completion when Neovim has it (0.12+); false: always the plugin's ghost text
}
M.config = vim.deepcopy(M.defaults)

-- client id -> the server's latest status object ({state, model, device, message, lastLatencyMs, counters}).
M.statuses = {}

local function use_native()
  local native = vim.lsp.inline_completion
  return M.config.native ~= false and native ~= nil and native.enable ~= nil
end
M.use_native = use_native

function M.get_client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or api.nvim_get_current_buf(), name = NAME })[1]
end

-- ---- server commands and status --------------------------------------------------------------------------------

local function advertises(client, command)
  local provider = client and client.server_capabilities.executeCommandProvider
  return type(provider) == "table" and vim.list_contains(provider.commands or {}, command)
end
M.advertises = advertises

--- Runs a server command (an item's `command`, or one of ours). Commands the server does not list are skipped
--- quietly when `only_if_advertised`, since older servers do not count acceptances.
function M.execute(client, command, bufnr, only_if_advertised, on_answer)
  if not client or not command or (only_if_advertised and not advertises(client, command.command)) then
    return false
  end
  local ok = client:request("workspace/executeCommand", { command = command.command, arguments = command.arguments },
    function(err, answer)
      if on_answer then
        on_answer(err, answer)
      end
    end, bufnr)
  return ok
end
ghost.execute = M.execute
ghost.get_client = M.get_client

local function store_status(client_id, status)
  if type(status) ~= "table" or not status.state then
    return
  end
  local previous = M.statuses[client_id]
  M.statuses[client_id] = status
  api.nvim_exec_autocmds("User", { pattern = "DiffusionInfillStatus", modeline = false })
  vim.schedule(function() pcall(vim.cmd.redrawstatus) end) -- status lines showing statusline() follow
  if status.state == "ready" and previous and previous.state ~= "ready" and not use_native() then
    -- Answers asked for while the model loaded came back empty: ask again where the user is typing.
    local bufnr = api.nvim_get_current_buf()
    local client = M.get_client(bufnr)
    if client and client.id == client_id then
      ghost.suggest_if_typing(bufnr)
    end
  end
end

--- Asks the server for `infill.status` (when it has that command) and stores the answer.
function M.refresh_status(client, on_done)
  if not M.execute(client, { command = STATUS_COMMAND, arguments = {} }, nil, true, function(err, status)
    if not err then
      store_status(client.id, status)
    end
    if on_done then
      on_done(err, status)
    end
  end) and on_done then
    on_done(nil, nil)
  end
end

--- The latest status of the server for this buffer: the server's own report when it sends one, else a guess.
function M.status(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  -- (get_clients leaves out a server that has not answered initialize yet: ask for those too, or a starting
  -- server reads as none at all.)
  local client = M.get_client(bufnr)
    or vim.lsp.get_clients({ bufnr = bufnr, name = NAME, _uninitialized = true })[1]
  if not client then
    return nil
  end
  return M.statuses[client.id] or { state = client.initialized and "attached" or "starting" }
end

--- For a statusline: "infill: ready cpu 812ms", "infill: loading", ... "infill: no server" when the configured
--- program cannot be run, "infill: failed (exit 1)" when it exited before it was up, "infill: stopped (exit 1)"
--- when the last one ended unasked, or "" when the server is not attached.
function M.statusline(bufnr)
  local status = M.status(bufnr)
  if not status then
    bufnr = bufnr or api.nvim_get_current_buf()
    local served = M.configured and vim.list_contains(M.config.filetypes, vim.bo[bufnr].filetype)
    if not served then
      return ""
    end
    if M.missing_server() then
      return "infill: no server"
    end
    local exit = M.failed_start or M.last_exit
    return exit and ("infill: %s (exit %d%s)"):format(M.failed_start and "failed" or "stopped", exit.code,
      exit.signal ~= 0 and (", signal " .. exit.signal) or "") or ""
  end
  local parts = { "infill:", status.state }
  if status.state == "ready" and status.device then
    parts[#parts + 1] = status.device
  end
  -- The model's time for the last answer it computed: an answer typed through a suggestion or from the cache
  -- takes about 0 ms and says nothing of the model's speed.
  local latency = status.lastModelLatencyMs
  if type(latency) ~= "number" then
    latency = status.lastLatencyMs
  end
  if type(latency) == "number" then
    parts[#parts + 1] = ("%dms"):format(latency)
  end
  return table.concat(parts, " ")
end

--- Why a command cannot reach the server from this buffer, in words for the user.
function M.unreachable_reason(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  local served = M.configured and vim.list_contains(M.config.filetypes, vim.bo[bufnr].filetype)
  local status = M.status(bufnr)
  if status and status.state == "starting" then
    return "the server is starting; try again in a moment"
  end
  if served and api.nvim_buf_get_name(bufnr) == "" then
    return "this buffer has no file name; save it (:saveas {file}) and the server attaches"
  end
  local line = served and M.statusline(bufnr) or ""
  if line ~= "" then
    return ("the server is not running here (%s)"):format((line:gsub("^infill: ", "")))
  end
  return "the server is not attached to this buffer"
end

-- ---- inline completion: the same calls on either implementation ------------------------------------------------

--- Accepts the suggestion on screen: how = "all" (default), "word" or "line". Returns true when one was accepted.
function M.accept(bufnr, how)
  bufnr = bufnr or api.nvim_get_current_buf()
  if use_native() then
    if how and how ~= "all" then
      return false -- the native inline completion accepts whole candidates only
    end
    return vim.lsp.inline_completion.get({ bufnr = bufnr }) == true
  end
  return ghost.accept(bufnr, how)
end

function M.accept_word(bufnr)
  return M.accept(bufnr, "word")
end

function M.accept_line(bufnr)
  return M.accept(bufnr, "line")
end

local cycle_after_answer = {} -- bufnr -> count, for a cycle that had to ask for candidates first

--- Shows the next (count 1) or previous (-1) candidate; with one candidate on screen asks for several first, and
--- with none asks for candidates.
function M.cycle(bufnr, count)
  bufnr = bufnr or api.nvim_get_current_buf()
  if use_native() then
    local native = vim.lsp.inline_completion
    local select = native.select or native.jump
    if not select then
      return nil
    end
    select({ bufnr = bufnr, count = count or 1 }) -- returns nothing: true keeps the key from typing "]" or "["
    return true
  end
  local state = ghost.catch_up(bufnr) -- keys typed in the same burst as this one count first
  if not state then
    -- Nothing on screen: ask for candidates. Falling back to the key itself would type a stray "]" or "[".
    cycle_after_answer[bufnr] = nil
    return ghost.suggest(bufnr)
  end
  if #state.items == 1 and not state.invoked then
    -- Automatic requests get one candidate, an explicit one several: ask, then move once they are here.
    cycle_after_answer[bufnr] = count or 1
    return ghost.suggest(bufnr)
  end
  return ghost.cycle(bufnr, count)
end

function M.dismiss(bufnr)
  if use_native() then
    return false -- the native ghost text goes away when the cursor moves
  end
  return ghost.dismiss(bufnr)
end

--- Asks for suggestions now, as an explicit invoke (several candidates).
function M.suggest(bufnr)
  bufnr = bufnr or api.nvim_get_current_buf()
  if use_native() then
    return false -- the native inline completion asks by itself (and its get() would accept, not ask)
  end
  -- A cycle that waited for an answer dropped as out of date must not move this one's candidates.
  cycle_after_answer[bufnr] = nil
  return ghost.suggest(bufnr)
end

ghost.on_shown = function(bufnr, trigger_kind)
  local state = ghost.state(bufnr)
  local count = cycle_after_answer[bufnr]
  cycle_after_answer[bufnr] = nil
  if state then
    state.invoked = trigger_kind == 1
    if count and #state.items > 1 then
      ghost.cycle(bufnr, count)
    end
  end
end

M.clear = ghost.clear

local function feed(keys, remap)
  -- "i": in front of keys already waiting (a macro being replayed), where the user typed it.
  api.nvim_feedkeys(api.nvim_replace_termcodes(keys, true, false, true), remap and "im" or "in", false)
end

-- The keys of the user's own mapping of `lhs`, fed as Vim would run them: a mapping whose keys start with its own
-- lhs (`imap <expr> <Tab> pumvisible() ? "\<C-n>" : "\<Tab>"`) does not map that first key again. feedkeys knows
-- no such rule, and would feed it into our map of the same key, forever. `in_notation`: the keys are written as
-- "<Down>" (a plain rhs), not already key codes (what an expression gives).
local function feed_mapping(lhs, keys, remap, in_notation)
  local codes = in_notation and api.nvim_replace_termcodes(keys, true, false, true) or keys
  local own = api.nvim_replace_termcodes(lhs, true, false, true)
  if remap and codes:sub(1, #own) == own then
    api.nvim_feedkeys(codes:sub(#own + 1), "im", false)
    api.nvim_feedkeys(own, "in", false)   -- "i" again: in front of the rest
  else
    api.nvim_feedkeys(codes, remap and "im" or "in", false)
  end
end

-- What the key did before we mapped it: the user's own insert-mode mapping (a completion plugin's <Tab>, say;
-- `existing` is maparg's dict of it), else the key itself.
local function previous_meaning(lhs, existing)
  if type(existing) ~= "table" or vim.tbl_isempty(existing) or (existing.desc or ""):find("^Diffusion Infill") then
    return function() feed(lhs, false) end
  end
  local remap = existing.noremap ~= 1
  return function()
    local keys = existing.rhs
    if existing.callback then
      keys = existing.callback()
      if existing.expr ~= 1 then
        return -- a Lua mapping that did its work itself
      end
    elseif existing.expr == 1 then
      keys = api.nvim_eval(existing.rhs)
    end
    -- An expression's result is key codes already ("\<Down>" evaluates to them): translated again, its bytes were
    -- typed as text. Only a mapping made with replace_keycodes asks Vim to translate it, as a plain rhs always is.
    local in_notation = existing.expr ~= 1 or existing.replace_keycodes == 1
    if type(keys) == "string" and keys ~= "" then
      feed_mapping(lhs, keys, remap, in_notation)
    end
  end
end

-- The global insert-mode mapping of `lhs` as it is now (nvim_get_keymap's dict), or nil: plugin managers map keys
-- lazily (on InsertEnter), after our buffer-local map was made.
local function global_mapping(lhs)
  local key = vim.keycode(lhs)
  for _, mapping in ipairs(api.nvim_get_keymap("i")) do
    -- lhsraw may hold the modifier form (<C-]> as K_SPECIAL bytes), lhsrawalt the plain one (\29)
    if vim.keycode(mapping.lhs) == key or mapping.lhsraw == key or mapping.lhsrawalt == key then
      return mapping
    end
  end
  return nil
end

-- bufnr -> { lhs -> the user's own buffer-local mapping our map replaced (maparg's dict), or false }
local replaced_maps = {}

-- Our maps go, and the user's own buffer-local ones come back (on detach, or before mapping other keys).
local function unmap_keys(bufnr)
  for lhs, saved in pairs(replaced_maps[bufnr] or {}) do
    -- Only a map that is still ours goes: one the user or another plugin set on the key since then stays.
    local current = api.nvim_buf_is_valid(bufnr)
      and api.nvim_buf_call(bufnr, function() return vim.fn.maparg(lhs, "i", false, true) end)
    local ours = type(current) == "table" and current.buffer == 1
      and (current.desc or ""):find("^Diffusion Infill") ~= nil
    if ours then
      pcall(vim.keymap.del, "i", lhs, { buffer = bufnr })
      if saved then
        pcall(api.nvim_buf_call, bufnr, function() vim.fn.mapset("i", false, saved) end)
      end
    end
  end
  replaced_maps[bufnr] = nil
end
M.unmap_keys = unmap_keys

local function map_keys(bufnr)
  unmap_keys(bufnr) -- keys of an earlier setup() are not left behind
  local keys = M.config.keymaps
  if not keys then
    return
  end
  replaced_maps[bufnr] = {}
  local function map(lhs, action, desc, falls_back)
    if not lhs then
      return
    end
    local existing = api.nvim_buf_call(bufnr, function() return vim.fn.maparg(lhs, "i", false, true) end)
    replaced_maps[bufnr][lhs] = type(existing) == "table" and existing.buffer == 1
      and not (existing.desc or ""):find("^Diffusion Infill") and existing or false
    local own = replaced_maps[bufnr][lhs]
    vim.keymap.set("i", lhs, function()
      if not action() and falls_back then
        -- Looked up at the key press: a global mapping made since we attached is the one the user expects.
        previous_meaning(lhs, own or global_mapping(lhs))()
      end
    end, { buffer = bufnr, desc = "Diffusion Infill: " .. desc })
  end
  map(keys.accept, function() return M.accept(bufnr) end, "accept the suggestion", true)
  map(keys.accept_word, function() return M.accept(bufnr, "word") end, "accept the next word", true)
  map(keys.accept_line, function() return M.accept(bufnr, "line") end, "accept the rest of the line", true)
  map(keys.next, function() return M.cycle(bufnr, 1) end, "next candidate", true)
  map(keys.prev, function() return M.cycle(bufnr, -1) end, "previous candidate", true)
  map(keys.dismiss, function() return M.dismiss(bufnr) end, "dismiss the suggestion", true)
  map(keys.invoke, function() return M.suggest(bufnr) end, "suggest now", false)
end

-- ---- fill / rewrite a selection --------------------------------------------------------------------------------

local function lsp_position(bufnr, row, col, encoding)
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  col = math.min(col, #line)
  return { line = row, character = vim.lsp.util.character_offset(bufnr, row, col, encoding) }
end

-- The last visual selection's mode ("v", "V" or CTRL-V) when the command was given exactly its lines ('<,'>).
local function visual_mode_of(bufnr, line1, line2)
  local start_mark, end_mark = api.nvim_buf_get_mark(bufnr, "<"), api.nvim_buf_get_mark(bufnr, ">")
  return start_mark[1] == line1 and end_mark[1] == line2 and vim.fn.visualmode() or nil
end

-- The LSP range of a command's range: the last charwise visual selection when the command was given exactly
-- its lines ('<,'>), else whole lines (always with `whole_lines`: a command given no range works on the cursor's
-- line, even where an old selection began and ended). 1-based inclusive lines in, 0-based end-exclusive
-- positions out.
local function selection_range(bufnr, line1, line2, encoding, whole_lines)
  local start_mark, end_mark = api.nvim_buf_get_mark(bufnr, "<"), api.nvim_buf_get_mark(bufnr, ">")
  local charwise = not whole_lines and visual_mode_of(bufnr, line1, line2) == "v"
  local start_col, end_col = 0, math.huge
  if charwise then
    local last_line = api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ""
    local last_char = vim.fn.strcharpart(last_line:sub(end_mark[2] + 1), 0, 1, 1) -- with its combining marks
    -- '> marks the last character's first byte; with 'selection' exclusive, the first byte after the selection.
    start_col, end_col = start_mark[2], end_mark[2] + (vim.o.selection == "exclusive" and 0 or #last_char)
  end
  return {
    start = lsp_position(bufnr, line1 - 1, start_col, encoding),
    ["end"] = lsp_position(bufnr, line2 - 1, end_col, encoding),
  }
end

--- The client and the LSP range for a command on lines line1..line2, or nil after telling the user why not.
local function selection_target(server_command, bufnr, line1, line2, opts)
  local client = M.get_client(bufnr)
  if not client then
    vim.notify("Diffusion Infill: " .. M.unreachable_reason(bufnr), vim.log.levels.WARN)
    return nil
  end
  if not (opts and opts.whole_lines) and visual_mode_of(bufnr, line1, line2) == "\22" then
    -- A rectangle is not one span of text: filling its whole lines would rewrite text the user did not select.
    vim.notify("Diffusion Infill: a blockwise selection (CTRL-V) is not one span of text; select characters (v) "
      .. "or lines (V)", vim.log.levels.WARN)
    return nil
  end
  local range = selection_range(bufnr, line1, line2, client.offset_encoding, opts and opts.whole_lines)
  if range.start.line == range["end"].line and range.start.character == range["end"].character then
    -- A blank line (V or v on it): nothing to fill or rewrite. Said here, before "working on the selection…".
    vim.notify("Diffusion Infill: the selection is empty (a blank line); select the code to "
      .. (server_command == "infill.fillSelection" and "fill" or "rewrite")
      .. ", or ask for a suggestion at the cursor (:InfillSuggest)", vim.log.levels.WARN)
    return nil
  end
  return client, range
end

--- Sends infill.fillSelection / infill.rewriteSelection for lines line1..line2; the server applies the edit
--- (workspace/applyEdit, handled by Neovim). on_done(err, answer) is called with the server's answer.
--- opts.whole_lines: the lines as they are, not the last charwise selection on them.
function M.run_on_selection(server_command, line1, line2, instruction, on_done, opts)
  local bufnr = api.nvim_get_current_buf()
  local client, range = selection_target(server_command, bufnr, line1, line2, opts)
  if not client then
    return false
  end
  local argument = { uri = vim.uri_from_bufnr(bufnr), range = range, instruction = instruction }
  vim.notify("Diffusion Infill: working on the selection…")
  return M.execute(client, { command = server_command, arguments = { argument } }, bufnr, false, function(err, answer)
    -- A refused edit (applied = false) is explained by the server itself (window/showMessage).
    if err then
      vim.notify("Diffusion Infill: " .. (err.message or tostring(err)), vim.log.levels.ERROR)
    end
    if on_done then
      on_done(err, answer)
    end
  end)
end

function M.fill(line1, line2, on_done, opts)
  return M.run_on_selection("infill.fillSelection", line1, line2, nil, on_done, opts)
end

--- Rewrites lines line1..line2. instruction nil: ask for one (an empty answer means none); "" means none.
function M.rewrite(line1, line2, instruction, on_done, opts)
  if instruction == nil then
    -- Refusals first: an instruction typed for a command that cannot run would be typed for nothing.
    if not selection_target("infill.rewriteSelection", api.nvim_get_current_buf(), line1, line2, opts) then
      return false
    end
    vim.ui.input({ prompt = "Rewrite instruction (optional): " }, function(answer)
      if answer ~= nil then -- nil: the user cancelled the prompt
        M.rewrite(line1, line2, answer, on_done, opts)
      end
    end)
    return true
  end
  return M.run_on_selection("infill.rewriteSelection", line1, line2, instruction ~= "" and instruction or nil, on_done,
    opts)
end

-- ---- setup -----------------------------------------------------------------------------------------------------

local opened_as = {} -- bufnr -> the filetype the server was told at didOpen (its languageId)

local function on_attach(client, bufnr)
  opened_as[bufnr] = vim.bo[bufnr].filetype
  if use_native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  else
    ghost.attach(bufnr)
  end
  map_keys(bufnr)
  if not M.statuses[client.id] then
    M.refresh_status(client)
  end
end

local held_messages = {} -- { message, level } that arrived in insert mode and were too long to show whole there
local ECHO_HIGHLIGHTS = { [vim.log.levels.ERROR] = "ErrorMsg", [vim.log.levels.WARN] = "WarningMsg" }

-- lsp.MessageType -> vim.log.levels
local MESSAGE_LEVELS = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG,
  vim.log.levels.DEBUG }

-- The server's window/showMessage through vim.notify, as the server worded it. Neovim's own handler echoes
-- "LSP[name][Warning] ..." with a line break at the end: even a short message then stops the user at a
-- hit-enter prompt, often in the middle of typing, and notification plugins never see it.
local function show_server_message(_, params)
  local message = type(params) == "table" and params.message
  if type(message) ~= "string" or message == "" then
    return
  end
  message = vim.trim(message)
  if not message:find("^Diffusion Infill") then
    message = "Diffusion Infill: " .. message -- e.g. pygls' own "Error in server: ..."
  end
  local level = MESSAGE_LEVELS[params.type] or vim.log.levels.INFO
  if api.nvim_get_mode().mode:match("^i") and vim.fn.strdisplaywidth(message) >= vim.v.echospace then
    -- Longer than the message line, it would stop the typing at a hit-enter prompt that swallows the next
    -- <Space> or <CR>: what fits now, the whole message once the user leaves insert mode.
    -- The same message asked again (each <M-]> refused for the same reason) is shown once, not at one prompt each.
    for i = #held_messages, 1, -1 do
      if held_messages[i][1] == message then
        table.remove(held_messages, i)
      end
    end
    held_messages[#held_messages + 1] = { message, level }
    local shown = vim.fn.strcharpart(message, 0, math.max(vim.v.echospace - 2, 1)) .. "…"
    api.nvim_echo({ { shown, ECHO_HIGHLIGHTS[level] } }, false, {})
    return
  end
  vim.notify(message, level)
end

--- Shows the messages held back while typing (called on leaving insert mode).
function M.show_held_messages()
  local held = held_messages
  held_messages = {}
  for _, entry in ipairs(held) do
    vim.notify(entry[1], entry[2])
  end
end

-- The plugin shows inline completions itself (0.11) or through vim.lsp.inline_completion (0.12+). Saying so keeps the
-- server from also offering each suggestion as a completion item (its completionItems "auto" is for clients that
-- have no ghost text), which a completion plugin would list a second time.
local function client_capabilities()
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.textDocument.inlineCompletion = capabilities.textDocument.inlineCompletion
    or { dynamicRegistration = false }
  return capabilities
end

-- Neovim (0.11 at least) skips a document edit older than its buffer, prints "newer than edits" and still answers
-- applied = true, so the server would report a fill that never happened. Such an edit is refused here, by name.
local APPLY_EDIT = "workspace/applyEdit"

local function stale_document(edit)
  for _, change in ipairs(type(edit) == "table" and edit.documentChanges or {}) do
    local document = change.textDocument
    local version = document and document.version
    if type(version) == "number" and version >= 0 then -- Neovim opens a document as version 0
      local bufnr = vim.uri_to_bufnr(document.uri) -- as Neovim's own handler finds it
      if (vim.lsp.util.buf_versions[bufnr] or 0) > version then
        return document.uri
      end
    end
  end
  return nil
end

local function apply_edit(err, params, context)
  local stale = stale_document(params and params.edit)
  if stale then
    return { applied = false, failureReason = stale .. " changed after the server made this edit" }
  end
  return vim.lsp.handlers[APPLY_EDIT](err, params, context)
end

-- Neovim (0.11) reuses our one server for a buffer of another project without telling it the new root: we do,
-- so that the server keeps each project's files apart (one project's code never lends to another's completions).
-- client id -> folders added while its server had not answered initialize; on_init sends them (LSP: nothing but
-- `initialized` may reach a server before it answers initialize).
local folders_before_init = {}

local function tell_folders(client, folders)
  client:notify("workspace/didChangeWorkspaceFolders", { event = { added = folders, removed = {} } })
end

local function add_workspace_folder(client, root_dir)
  if not root_dir then
    return
  end
  local uri = vim.uri_from_fname(root_dir)
  for _, folder in ipairs(client.workspace_folders or {}) do
    if folder.uri == uri then
      return
    end
  end
  local folder = { uri = uri, name = root_dir }
  client.workspace_folders = client.workspace_folders or {}
  table.insert(client.workspace_folders, folder)
  if client.initialized then
    tell_folders(client, { folder })
  else
    folders_before_init[client.id] = folders_before_init[client.id] or {}
    table.insert(folders_before_init[client.id], folder)
  end
end

local function send_folders_added_before_init(client)
  local folders = folders_before_init[client.id]
  folders_before_init[client.id] = nil
  if folders then
    tell_folders(client, folders)
  end
end

local told_unnamed = false
local skipped_unnamed = {} -- bufnr -> true: buffers not served for having no name, looked at again once named

-- Neovim names every unnamed buffer "file://" to a server: two of them would be one document there, and an edit the
-- server sends for "file://" lands in a new buffer for "/". Such a buffer is served once it has a name.
local function has_name(bufnr)
  if api.nvim_buf_get_name(bufnr) ~= "" then
    return true
  end
  skipped_unnamed[bufnr] = true
  if not told_unnamed then
    told_unnamed = true
    vim.schedule(function()
      vim.notify("Diffusion Infill: a buffer without a file name gets no suggestions (every unnamed buffer would "
        .. "reach the server as the same file); they start once it has one (:saveas {file} or :file {name})",
        vim.log.levels.INFO)
    end)
  end
  return false
end

-- The folder nearest the file holding the first root marker found; a nested list is one marker of equal-priority
-- names ({ { "pyproject.toml", "setup.py" }, ".git" }), as vim.lsp documents it. Found here, not by vim.lsp: Neovim
-- 0.11.0 fails on the nested form and takes a flat list's names as of equal priority.
local function find_root(bufnr)
  local folder = vim.fn.fnamemodify(api.nvim_buf_get_name(bufnr), ":p:h")
  for _, marker in ipairs(M.config.root_markers) do
    local found = vim.fs.find(marker, { upward = true, path = folder, limit = 1 })[1]
    if found then
      return vim.fs.dirname(found)
    end
  end
  return nil
end

-- Clients whose server answered `initialize`.
local servers_up = {}
-- How the last server ended when it did not end as asked (an exit code or a signal): { code, signal }.
M.last_exit = nil
-- Set when a server exited so before it was up (a broken install): no server starts again until setup() runs.
M.failed_start = nil

local function on_server_exit(code, signal, client_id)
  local was_up = servers_up[client_id]
  servers_up[client_id] = nil
  M.statuses[client_id] = nil   -- its last report would describe a server that is gone
  -- Ended by itself before it answered initialize (Neovim stops such a server with a kill): a broken install, or a
  -- `cmd` that is not the server at all (`infill-lsp --help` exits with 0, and was restarted for every file).
  local failed = not was_up and signal == 0
  if code == 0 and (signal == 0 or signal == 15) and not failed then
    return   -- stopped as asked: shutdown and exit, or killed by Neovim's own stop (one not up yet, or ++force)
  end
  M.last_exit = { code = code, signal = signal }
  if failed then
    M.failed_start = M.last_exit
    vim.schedule(function()
      vim.notify(("Diffusion Infill: the server exited (code %d, signal %d) before it was up%s; it is not started "
        .. "again until setup() runs again. Its messages are in the LSP log (:LspLog)"):format(code, signal,
          code == 0 and " (does `cmd` start the language server itself?)" or ""),
        vim.log.levels.ERROR)
    end)
  end
end

local function client_config()
  -- An empty Lua table would travel as a JSON array, which the server rejects: send the section only when set.
  local section = next(M.config.settings) and { [SECTION] = M.config.settings } or nil
  return {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    -- Not called back for a buffer without a name: vim.lsp.enable then leaves it alone.
    -- Nor after a server exited before it was up: each file opened would start another that fails the same way.
    root_dir = function(bufnr, on_dir)
      if has_name(bufnr) and not M.failed_start then
        on_dir(find_root(bufnr))
      end
    end,
    -- One server (one model in memory) for every project, as in VS Code: Neovim would start one per root.
    reuse_client = function(client, config)
      -- A server on its way out (a restart stops it first) would take the buffer down with it.
      if client.name ~= config.name or client:is_stopped() then
        return false
      end
      add_workspace_folder(client, config.root_dir)
      return true
    end,
    on_init = function(client)
      servers_up[client.id] = true
      M.last_exit, M.failed_start = nil, nil   -- (one started by :LspRestart, which asks no root_dir)
      send_folders_added_before_init(client)
    end,
    on_exit = on_server_exit,
    init_options = section,
    capabilities = client_capabilities(),
    settings = section or vim.empty_dict(),
    handlers = {
      [STATUS_NOTIFICATION] = function(_, status, context)
        store_status(context.client_id, status)
      end,
      ["window/showMessage"] = show_server_message,
      [APPLY_EDIT] = apply_edit,
    },
  }
end

-- The status line asks on every redraw while no client is attached, and each executable() lookup stats the
-- program in every PATH folder: the answer is kept per program, looked up again once it is this old (a server
-- installed meanwhile shows up), when the configured program changes, or on setup().
M.server_check_interval_ms = 3000
local server_check = nil -- { program, missing, checked_at (vim.uv.now()) }

--- The server program when setup's cmd names one that cannot be run (vim.lsp.enable then only logs it), else nil.
function M.missing_server()
  local cmd = M.config.cmd
  local program = type(cmd) == "table" and cmd[1] or nil
  if type(program) ~= "string" then
    return nil
  end
  local now = vim.uv.now()
  if not server_check or server_check.program ~= program
      or now - server_check.checked_at >= M.server_check_interval_ms then
    server_check = { program = program, missing = vim.fn.executable(program) == 0, checked_at = now }
  end
  return server_check.missing and program or nil
end

local told_missing = false

-- Once per session, when a file the server would serve opens: Neovim itself would say nothing at all.
local function tell_if_server_missing(bufnr)
  if told_missing or vim.bo[bufnr].buftype ~= "" then
    return
  end
  local program = M.missing_server()
  if program then
    told_missing = true
    -- Scheduled: an error message raised inside the FileType autocommand of a file being read would turn into
    -- a Lua error with a stack trace.
    vim.schedule(function()
      vim.notify(("Diffusion Infill: cannot start the server: `%s` is not an executable program. Install it or "
        .. "set setup({ cmd = ... }); see :checkhealth diffusion_infill"):format(program), vim.log.levels.ERROR)
    end)
  end
end

-- Grey in any terminal (Comment is plain text in some colour schemes); `default`: a user's own definition wins.
local function define_highlights()
  api.nvim_set_hl(0, "DiffusionInfillGhost", { fg = "#808080", ctermfg = 8, default = true })
  api.nvim_set_hl(0, "DiffusionInfillCounter", { link = "NonText", default = true })
end

local function is_string_list(value)
  return type(value) == "table" and vim.islist(value) and #value > 0
    and vim.iter(value):all(function(item) return type(item) == "string" end)
end

-- root_markers: file names, or lists of names of equal priority.
local function is_marker_list(value)
  return type(value) == "table" and vim.islist(value) and #value > 0
    and vim.iter(value):all(function(item) return type(item) == "string" or is_string_list(item) end)
end

local function is_key(value)
  return value == false or (type(value) == "string" and value ~= "")
end

-- What each option of setup() takes, and how to say it. A wrong one is reported and its default used (in
-- insert mode it failed on every keystroke, or before any key was mapped).
local OPTION_CHECKS = {
  cmd = { function(v) return is_string_list(v) or type(v) == "function" end, "a list of strings (the command)" },
  filetypes = { is_string_list, "a list of filetype names" },
  root_markers = { is_marker_list, "a list of file names (or of lists of names of equal priority)" },
  settings = { function(v) return type(v) == "table" and (vim.tbl_isempty(v) or not vim.islist(v)) end,
    "a table of the server's settings" },
  auto_trigger = { function(v) return type(v) == "boolean" end, "true or false" },
  debounce_ms = { function(v) return type(v) == "number" and v >= 0 and v < 60000 end,
    "a number of milliseconds from 0" },
  -- A list names no action: merged over the defaults it would replace them all, leaving no key mapped.
  keymaps = { function(v) return v == false or (type(v) == "table" and (next(v) == nil or not vim.islist(v))) end,
    'a table of keys by action ({ accept = "<Tab>", ... }), or false' },
  highlight = { function(v) return type(v) == "string" and v ~= "" end, "a highlight group name" },
  counter_highlight = { function(v) return type(v) == "string" and v ~= "" end, "a highlight group name" },
  show_counter = { function(v) return type(v) == "boolean" end, "true or false" },
  native = { function(v) return v == "auto" or v == false end, '"auto" or false' },
}

--- setup()'s options merged over the defaults, each wrong one replaced by its default, and what was wrong.
function M.checked_options(opts)
  local problems = {}
  local function problem(name, value, expected)
    problems[#problems + 1] = ("%s must be %s, not %s: using the default"):format(name, expected, vim.inspect(value))
  end
  if opts ~= nil and type(opts) ~= "table" then
    problem("setup()'s argument", opts, "a table of options")
    opts = {}
  end
  -- A copy: the merge keeps the user's own tables, which the checks below would otherwise change.
  opts = vim.deepcopy(opts or {})
  local config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  for name, value in pairs(opts) do
    local check = OPTION_CHECKS[name]
    if not check then
      problems[#problems + 1] = ("there is no option %q (ignored)"):format(tostring(name))
      config[name] = nil
    elseif not check[1](value) then
      problem(name, value, check[2])
      config[name] = vim.deepcopy(M.defaults[name])
    end
  end
  if type(config.keymaps) == "table" then
    for action, key in pairs(config.keymaps) do
      if M.defaults.keymaps[action] == nil then
        problems[#problems + 1] = ("keymaps has no key %q (ignored)"):format(tostring(action))
        config.keymaps[action] = nil
      elseif not is_key(key) then
        problem("keymaps." .. action, key, "a key (a string) or false")
        config.keymaps[action] = M.defaults.keymaps[action]
      end
    end
  end
  return config, problems
end

function M.setup(opts)
  if vim.fn.has("nvim-0.11") == 0 then
    vim.notify("Diffusion Infill needs Neovim 0.11 or newer (vim.lsp.config)", vim.log.levels.ERROR)
    return
  end
  local problems
  M.config, problems = M.checked_options(opts)
  if #problems > 0 then
    vim.notify("Diffusion Infill: setup(): " .. table.concat(problems, "; "), vim.log.levels.WARN)
  end
  M.configured = true
  server_check = nil
  M.failed_start, M.last_exit = nil, nil   -- a new setup (a fixed cmd, say) may start a server again
  ghost.config = M.config
  local group = api.nvim_create_augroup(NAME, { clear = true })
  define_highlights()
  api.nvim_create_autocmd("ColorScheme", { group = group, callback = define_highlights })
  api.nvim_create_autocmd("ModeChanged", {
    group = group,
    callback = function()
      if #held_messages > 0 and vim.v.event.old_mode:match("^i") and not vim.v.event.new_mode:match("^i") then
        vim.schedule(M.show_held_messages)
      end
    end,
  })
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(event) tell_if_server_missing(event.buf) end,
  })
  -- The server knows a document by the name and language it was opened with, and vim.lsp tells it of neither
  -- change while the buffer stays attached: a served filetype set to another served one (the server went on
  -- checking with the old grammar), or a rename by :file or :saveas (sent only at the next :write; until then the
  -- server ignored every edit under the new name). The buffer is detached (didClose, old name and language) and
  -- attached again (didOpen).
  api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(event)
      local client = M.get_client(event.buf)
      if client and opened_as[event.buf] and opened_as[event.buf] ~= event.match then
        vim.lsp.buf_detach_client(event.buf, client.id)
        vim.lsp.buf_attach_client(event.buf, client.id)
      end
    end,
  })
  local renamed = {} -- bufnr -> the client it was detached from, until BufFilePost
  api.nvim_create_autocmd("BufFilePre", {
    group = group,
    callback = function(event)
      local client = M.get_client(event.buf)
      if client then
        renamed[event.buf] = client.id
        vim.lsp.buf_detach_client(event.buf, client.id)
      end
    end,
  })
  api.nvim_create_autocmd("BufFilePost", {
    group = group,
    callback = function(event)
      local client = vim.lsp.get_client_by_id(renamed[event.buf] or -1)
      renamed[event.buf] = nil
      if client and not client:is_stopped() and has_name(event.buf) then
        vim.lsp.buf_attach_client(event.buf, client.id)
      end
    end,
  })
  -- A buffer that was skipped for having no name, named since (:saveas, :file, :write {file}): vim.lsp.enable only
  -- looks again at a FileType event, so its own autocommand is run for that buffer, once. (Not for any buffer
  -- without a client: a server that failed or was stopped would be started again at every :write.)
  api.nvim_create_autocmd({ "BufFilePost", "BufWritePost" }, {
    group = group,
    callback = function(event)
      if skipped_unnamed[event.buf] and api.nvim_buf_get_name(event.buf) ~= "" then
        skipped_unnamed[event.buf] = nil
        pcall(api.nvim_exec_autocmds, "FileType", { group = "nvim.lsp.enable", buffer = event.buf, modeline = false })
      end
    end,
  })
  api.nvim_create_autocmd({ "BufWipeout" }, {
    group = group,
    callback = function(event)
      skipped_unnamed[event.buf] = nil
      cycle_after_answer[event.buf] = nil
    end,
  })
  api.nvim_create_autocmd("LspAttach", {
    group = group,
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if client and client.name == NAME then
        on_attach(client, event.buf)
      end
    end,
  })
  api.nvim_create_autocmd("LspDetach", {
    group = group,
    callback = function(event)
      local client = vim.lsp.get_client_by_id(event.data.client_id)
      if client and client.name == NAME then
        opened_as[event.buf] = nil
        ghost.detach(event.buf)
        -- Our maps go too (left in place, the next attach would take them for the user's own), and the user's
        -- own buffer-local ones on those keys come back.
        unmap_keys(event.buf)
      end
    end,
  })
  local config = client_config()
  if M.configured_before then
    -- vim.lsp.config() merges into what an earlier setup() gave it: a setting dropped since would stay.
    vim.lsp.config[NAME] = config
  else
    vim.lsp.config(NAME, config)
  end
  M.configured_before = true
  vim.lsp.enable(NAME)
  -- Buffers already attached take the keys of this setup().
  for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
    for bufnr in pairs(client.attached_buffers or {}) do
      if api.nvim_buf_is_valid(bufnr) then
        map_keys(bufnr)
      end
    end
  end
  -- setup() again after the server started: vim.lsp.config only shapes the next start, so the running server is
  -- told the new settings (it reloads the model only when a model option changed). The server keeps an option a
  -- notification leaves out, so one dropped since the last setup() goes as null: back to its default.
  local told = vim.deepcopy(M.config.settings)
  for key in pairs(M.told_settings or {}) do
    if told[key] == nil then
      told[key] = vim.NIL
    end
  end
  M.told_settings = vim.deepcopy(M.config.settings)
  if next(told) then
    for _, client in ipairs(vim.lsp.get_clients({ name = NAME })) do
      client.settings = config.settings
      client:notify("workspace/didChangeConfiguration", { settings = { [SECTION] = told } })
    end
  end
end

return M
