-- A small driver for testing the plugin inside a real Neovim: the scenario runs as a coroutine that types with
-- nvim_input (real typeahead: mappings, insert mode and autocommands all run as for a person) and polls for
-- what it expects, yielding to the event loop in between. The findings are written as JSON for pytest.
local H = {}

local api = vim.api
H.report = { steps = {} }
H.sent = {} -- every request the plugin's client sent: { method, params, result, err }
H.notified = {} -- every notification it sent: { method, params }

local scenario

local function write_report()
  local out = assert(io.open(os.getenv("REPORT_FILE"), "w"))
  out:write(vim.json.encode(H.report))
  out:close()
end

function H.finish()
  write_report()
  vim.cmd("qall!")
end

--- Resumes the scenario after `ms`, from the main loop (not a fast callback, so any API call is allowed).
local function resume_later(ms)
  vim.defer_fn(function()
    local ok, problem = coroutine.resume(scenario)
    if not ok then
      H.report.problem = debug.traceback(scenario, problem)
      H.finish()
    elseif coroutine.status(scenario) == "dead" then
      H.finish()
    end
  end, ms)
end

function H.sleep(ms)
  resume_later(ms)
  coroutine.yield()
end

--- Polls `condition` every 20 ms until it returns a truthy value (returned) or `timeout_ms` passes (error).
function H.wait_for(what, condition, timeout_ms)
  local deadline = vim.uv.now() + (timeout_ms or 30000)
  while true do
    local value = condition()
    if value then
      return value
    end
    if vim.uv.now() > deadline then
      error("timed out waiting for " .. what, 2)
    end
    H.sleep(20)
  end
end

--- Types keys as a user would (keycodes like <Esc> allowed) and lets Neovim process them.
function H.type(keys)
  api.nvim_input(keys)
  H.sleep(60) -- typeahead runs when the event loop is idle; what it causes is polled for by the caller
end

function H.mode()
  return api.nvim_get_mode().mode
end

function H.lines(bufnr)
  return api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

function H.text(bufnr)
  return table.concat(H.lines(bufnr), "\n") .. "\n"
end

--- The ghost text's extmarks read back: { row, col, lines = { first line, virtual lines... }, chunks }.
function H.ghost_marks(bufnr, namespace)
  local found = {}
  for _, mark in ipairs(api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, { details = true })) do
    local details = mark[4]
    -- line_chunks: the text of each chunk, line by line; chunk_highlights: their groups (vim.NIL for none).
    local shown = { row = mark[2], col = mark[3], highlights = {}, line_chunks = {}, chunk_highlights = {} }
    local function add_line(chunks)
      local parts, groups = {}, {}
      for _, chunk in ipairs(chunks) do
        parts[#parts + 1] = chunk[1]
        groups[#groups + 1] = chunk[2] or vim.NIL
        shown.highlights[#shown.highlights + 1] = chunk[2]
      end
      shown.line_chunks[#shown.line_chunks + 1] = parts
      shown.chunk_highlights[#shown.chunk_highlights + 1] = groups
    end
    add_line(details.virt_text or {})
    for _, virt_line in ipairs(details.virt_lines or {}) do
      add_line(virt_line)
    end
    shown.virt_text_pos = details.virt_text_pos or vim.NIL
    found[#found + 1] = shown
  end
  return found
end

--- Records every request the client sends, with its answer, and every notification, without changing what is sent
--- or received.
function H.record_requests(client)
  local original_notify = client.notify
  client.notify = function(self, method, params)
    H.notified[#H.notified + 1] = { method = method, params = params }
    return original_notify(self, method, params)
  end
  local original = client.request
  client.request = function(self, method, params, handler, bufnr)
    local entry = { method = method, params = params }
    H.sent[#H.sent + 1] = entry
    return original(self, method, params, function(err, result, ...)
      entry.err, entry.result, entry.answered = err, result, true
      if handler then
        return handler(err, result, ...)
      end
    end, bufnr)
  end
end

function H.sent_since(index, method)
  local found = {}
  for i = index + 1, #H.sent do
    if not method or H.sent[i].method == method then
      found[#found + 1] = H.sent[i]
    end
  end
  return found
end

--- The params of the notifications named `method` sent after the first `index` ones.
function H.notified_since(index, method)
  local found = {}
  for i = index + 1, #H.notified do
    if H.notified[i].method == method then
      found[#found + 1] = H.notified[i].params
    end
  end
  return found
end

function H.step(name, data)
  data.name = name
  H.report.steps[#H.report.steps + 1] = data
  return data
end

--- Records every vim.notify in report.notifications (message, level, mode), then shows it as usual: Neovim's own
--- vim.notify is part of what the user sees (an error message raised in the wrong place becomes a Lua error).
function H.record_notifications()
  H.report.notifications = {}
  local notify = vim.notify
  vim.notify = function(message, level, opts)
    H.report.notifications[#H.report.notifications + 1] = { message = message,
      level = level or vim.log.levels.INFO, mode = vim.api.nvim_get_mode().mode }
    return notify(message, level, opts)
  end
end

--- The plugin from PLUGIN_DIR, loaded as a plugin manager would, with filetype detection on.
function H.load_plugin()
  vim.opt.runtimepath:prepend(os.getenv("PLUGIN_DIR"))
  vim.cmd.runtime("plugin/diffusion_infill.lua")
  vim.cmd("filetype on")
  return require("diffusion_infill")
end

--- Runs `body` as the scenario; a hard deadline writes what was found so far.
function H.run(body, deadline_ms)
  scenario = coroutine.create(body)
  vim.defer_fn(function()
    if coroutine.status(scenario) ~= "dead" then
      H.report.problem = "the scenario did not finish within " .. deadline_ms .. " ms"
      H.finish()
    end
  end, deadline_ms)
  resume_later(0)
end

return H
