-- :checkhealth diffusion_infill
local M = {}

local health = vim.health

local function check_neovim()
  local version = vim.version()
  local shown = ("%d.%d.%d"):format(version.major, version.minor, version.patch)
  if vim.fn.has("nvim-0.12") == 1 and vim.lsp.inline_completion then
    health.ok("Neovim " .. shown .. ": native vim.lsp.inline_completion available")
  elseif vim.fn.has("nvim-0.11") == 1 then
    health.ok("Neovim " .. shown .. ": ghost text drawn by the plugin (extmarks)")
  else
    health.error("Neovim " .. shown .. " is too old (the plugin needs vim.lsp.config)",
      { "Use Neovim 0.11 or newer, e.g. editors/install_neovim.sh" })
  end
end

local function check_executable(infill)
  local cmd = infill.config.cmd
  local program = type(cmd) == "table" and cmd[1] or nil
  if type(cmd) == "function" then
    health.info("cmd is a function: the server executable cannot be checked")
  elseif not program then
    health.error("setup({ cmd = ... }) is empty")
  elseif vim.fn.executable(program) == 1 then
    health.ok(("server executable: %s"):format(vim.fn.exepath(program)))
  else
    health.error(("server executable `%s` not found"):format(program), {
      "Install the server (pip install -e . in the repository) so that `infill-lsp` is on PATH",
      "or point setup({ cmd = { '/path/to/venv/bin/infill-lsp' } }) at it",
    })
  end
end

local function describe(status)
  local parts = { status.state }
  if status.model then
    parts[#parts + 1] = "model " .. tostring(status.model)
  end
  if status.device then
    parts[#parts + 1] = "on " .. tostring(status.device)
  end
  if type(status.lastLatencyMs) == "number" then
    parts[#parts + 1] = ("last answer %d ms"):format(status.lastLatencyMs)
  end
  if status.message and status.message ~= "" then
    parts[#parts + 1] = "(" .. tostring(status.message) .. ")"
  end
  return table.concat(parts, ", ")
end

local function check_server(infill)
  local clients = vim.lsp.get_clients({ name = infill.name })
  if #clients == 0 then
    local exit = infill.failed_start or infill.last_exit
    local how = exit and ("code %d, signal %d"):format(exit.code, exit.signal)
    if not infill.configured then
      health.warn("setup() has not been called", { 'Add require("diffusion_infill").setup() to your config' })
    elseif infill.missing_server() then
      return   -- the executable check above said why and what to do
    elseif infill.failed_start then
      -- Opening a file does not start it again (a broken install would fail the same way at every file).
      health.error(("the server exited (%s) before it was up; it is not started again until setup() runs"):format(how),
        { "Read its messages in the LSP log (:LspLog)", "Fix setup({ cmd = ... }) or the install, then call setup() again" })
    elseif infill.last_exit then
      health.warn(("the server stopped unasked (%s); open a file of one of these filetypes to start another: %s")
        :format(how, table.concat(infill.config.filetypes, ", ")), { "Read its messages in the LSP log (:LspLog)" })
    else
      health.info("no server running: open a file of one of these filetypes to start it: "
        .. table.concat(infill.config.filetypes, ", "))
    end
    return
  end
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_keys(client.attached_buffers)
    health.ok(("server running (client %d, %d buffer%s attached)"):format(client.id, #buffers,
      #buffers == 1 and "" or "s"))
    if client.server_capabilities.inlineCompletionProvider then
      health.ok("the server offers inline completion")
    else
      health.error("the server does not offer textDocument/inlineCompletion")
    end
    if not infill.advertises(client, "infill.status") then
      health.info("this server version reports no status (no infill.status command)")
    else
      -- A fresh answer, not only the last notification.
      local response = client:request_sync("workspace/executeCommand", { command = "infill.status", arguments = {} },
        3000)
      local status = response and response.result or infill.statuses[client.id]
      if type(status) == "table" and status.state then
        infill.statuses[client.id] = status
        local report = ("model %s"):format(describe(status))
        if status.state == "ready" then
          health.ok(report)
        elseif status.state == "loading" then
          health.info(report)
        else
          health.error(report)
        end
        if type(status.counters) == "table" then
          health.info("counters: " .. vim.inspect(status.counters, { newline = " ", indent = "" }))
        end
      else
        health.warn("infill.status gave no answer: " .. tostring(response and response.err and
          response.err.message or "timed out"))
      end
    end
  end
end

function M.check()
  health.start("diffusion_infill: Neovim")
  check_neovim()
  local ok, infill = pcall(require, "diffusion_infill")
  if not ok then
    health.error("the plugin failed to load: " .. tostring(infill))
    return
  end
  health.start("diffusion_infill: server")
  check_executable(infill)
  check_server(infill)
  health.start("diffusion_infill: inline completion")
  if infill.use_native() then
    health.ok("using the native vim.lsp.inline_completion")
  else
    health.ok("using the plugin's ghost text; accept key: " .. tostring(infill.config.keymaps
      and infill.config.keymaps.accept or "none"))
  end
end

return M
