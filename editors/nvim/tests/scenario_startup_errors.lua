-- What the user is told when the server cannot work: first a server program that does not exist, then the real
-- infill-lsp with a model folder that does not exist. Findings go to REPORT_FILE.
-- Run by tests/test_editor_neovim.py: nvim --headless --clean -u NONE -c "luafile scenario_startup_errors.lua".
local plugin_dir = os.getenv("PLUGIN_DIR")
local H = dofile(plugin_dir .. "/tests/harness.lua")
local report = H.report

H.run(function()
  H.record_notifications()
  report.echoes = {} -- what went to the message line without vim.notify
  local echo = vim.api.nvim_echo
  vim.api.nvim_echo = function(chunks, history, opts)
    report.echoes[#report.echoes + 1] = { text = chunks[1] and chunks[1][1], mode = vim.api.nvim_get_mode().mode }
    return echo(chunks, history, opts)
  end
  local infill = H.load_plugin()

  -- 1. No such program: Neovim itself would only write it to its LSP log.
  infill.setup({ cmd = { "no-such-infill-lsp" } })
  vim.cmd.edit(os.getenv("SAMPLE_FILE"))
  H.sleep(300)
  report.missing = {
    notifications = report.notifications,
    statusline = infill.statusline(),
    clients = #vim.lsp.get_clients({ name = infill.name }),
  }

  -- The status line is evaluated on every redraw: count the executable() lookups behind it, through a wrapper, over
  -- many evaluations of the real 'statusline' expression.
  local function redraws(count)
    local executable, looked_up, shown = vim.fn.executable, {}, {}
    vim.fn.executable = function(program)
      looked_up[#looked_up + 1] = program
      return executable(program)
    end
    for _ = 1, count do
      local text = vim.api.nvim_eval_statusline("%{v:lua.require'diffusion_infill'.statusline()}", {}).str
      shown[text] = (shown[text] or 0) + 1
    end
    vim.fn.executable = executable
    return { looked_up = table.concat(looked_up, " "), shown = shown }
  end
  report.redraws = { missing = redraws(100) } -- looked up already (the FileType notice, the statusline above)
  infill.config.cmd = { "no-such-infill-lsp-either" } -- another program: looked up once, then kept
  report.redraws.other_missing = redraws(100)
  infill.config.cmd = vim.json.decode(os.getenv("SERVER_CMD")) -- one that exists: the status line goes blank
  report.redraws.found = redraws(100)
  local interval = infill.server_check_interval_ms
  infill.server_check_interval_ms = 100 -- a short wait instead of seconds: an old answer is looked up again
  H.sleep(150)
  report.redraws.aged = redraws(100)
  infill.server_check_interval_ms = interval

  -- 2. The real server with a model folder that is not there; the user types as usual.
  report.notifications = {}
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")),
    settings = { model = os.getenv("MISSING_MODEL"), threads = 1 }, debounce_ms = 20 })
  vim.cmd.edit(os.getenv("SECOND_FILE"))
  local bufnr = vim.api.nvim_get_current_buf()
  H.wait_for("the server to report the failed load", function()
    local status = infill.status(bufnr)
    return status and status.state == "error"
  end, tonumber(os.getenv("LOAD_DEADLINE_MS")))
  -- The load's own error comes a moment after the status (the server waits in case a newer setting replaces it).
  H.wait_for("the failed load's message", function()
    for _, note in ipairs(report.notifications) do
      if note.level == vim.log.levels.ERROR and note.message:find(os.getenv("MISSING_MODEL"), 1, true) then
        return true
      end
    end
  end, 5000)
  -- Typing alone does not repeat the load error; asking (<M-]> with nothing shown) gets the reason, in a message
  -- longer than the message line: while in insert mode it is only previewed (a hit-enter prompt would swallow the
  -- next <Space>), and shown whole after <Esc>.
  H.type("Goreturn <M-]>")
  H.wait_for("the server's answer to typing", function()
    local status = infill.status(bufnr)
    return status and status.counters and (status.counters.requests or 0) >= 1
  end, 10000)
  H.sleep(200)
  local requests = infill.status(bufnr).counters.requests
  H.type("<M-]>") -- asked again, refused for the same reason: still one message after <Esc>
  H.wait_for("the server's answer to asking again", function()
    local status = infill.status(bufnr)
    return status and status.counters and (status.counters.requests or 0) > requests
  end, 10000)
  H.sleep(200)
  H.type(" x")
  report.held = { notified = vim.deepcopy(report.notifications), echoes = vim.deepcopy(report.echoes),
    line = vim.api.nvim_get_current_line() }
  H.type("<Esc>")
  H.wait_for("the held message after leaving insert mode", function()
    for _, note in ipairs(report.notifications) do
      if note.message:find("not available", 1, true) then
        return true
      end
    end
  end, 5000)
  report.bad_model = {
    notifications = report.notifications,
    statusline = infill.statusline(bufnr),
    status = infill.status(bufnr),
    lines = H.lines(bufnr),
  }

  -- 3. A server program that exits with an error at once (a broken install), then three files opened: it is
  -- started once, not once per file, and the status line says it failed. Each start is counted in START_LOG.
  for _, client in ipairs(vim.lsp.get_clients({ name = infill.name })) do
    client:stop(true)
  end
  H.wait_for("the bad-model server to stop", function() return #vim.lsp.get_clients({ name = infill.name }) == 0 end,
    10000)
  local broken = os.getenv("BROKEN_SERVER")
  vim.fn.writefile({ "#!/bin/sh", "echo started >> " .. vim.fn.shellescape(os.getenv("START_LOG")),
    "echo 'ImportError: a broken install' >&2", "exit 3" }, broken)
  vim.fn.setfperm(broken, "rwx------")
  report.notifications = {}
  vim.cmd("silent %bwipeout!")   -- setup() starts a server for each open file of a served type: none here
  infill.setup({ cmd = { broken } })
  local shown = {}
  for i, name in ipairs({ "broken_a.py", "broken_b.py", "broken_c.py" }) do
    vim.cmd.edit(os.getenv("SCRATCH_DIR") .. "/" .. name)
    H.sleep(i == 1 and 1500 or 500)
    shown[#shown + 1] = infill.statusline()
  end
  report.broken = { notifications = vim.deepcopy(report.notifications), statuslines = shown,
    starts = #vim.fn.readfile(os.getenv("START_LOG")) }
  -- :checkhealth says the server failed (it said "open a file to start it", which does nothing now).
  vim.cmd("checkhealth diffusion_infill")
  report.broken.health = H.lines(vim.api.nvim_get_current_buf())
  vim.cmd("bwipeout")
  -- setup() again (the install fixed, say) starts a server for the next file opened.
  infill.setup({ cmd = { broken } })
  vim.cmd.edit(os.getenv("SCRATCH_DIR") .. "/broken_d.py")
  H.sleep(1500)
  report.broken.starts_after_setup = #vim.fn.readfile(os.getenv("START_LOG"))

  -- 4. A `cmd` that exits with code 0 before it is up (`infill-lsp --help`): it was taken for a server stopped as
  -- asked, said nothing, and started again for every file.
  local quiet, quiet_log = os.getenv("SCRATCH_DIR") .. "/help-only", os.getenv("SCRATCH_DIR") .. "/help-starts.log"
  vim.fn.writefile({ "#!/bin/sh", "echo started >> " .. vim.fn.shellescape(quiet_log), "echo 'usage: ...'",
    "exit 0" }, quiet)
  vim.fn.setfperm(quiet, "rwx------")
  report.notifications = {}
  vim.cmd("silent %bwipeout!")
  infill.setup({ cmd = { quiet } })
  shown = {}
  for i, name in ipairs({ "quiet_a.py", "quiet_b.py" }) do
    vim.cmd.edit(os.getenv("SCRATCH_DIR") .. "/" .. name)
    H.sleep(i == 1 and 1500 or 500)
    shown[#shown + 1] = infill.statusline()
  end
  report.exit_zero = { notifications = vim.deepcopy(report.notifications), statuslines = shown,
    starts = #vim.fn.readfile(quiet_log) }

  -- 5. A server still starting (it has not answered initialize): the status says so, and a command says so too,
  -- before a rewrite asks for an instruction it could not use.
  local slow = os.getenv("SCRATCH_DIR") .. "/slow-start"
  vim.fn.writefile({ "#!/bin/sh", "exec sleep 60" }, slow)
  vim.fn.setfperm(slow, "rwx------")
  vim.cmd("silent %bwipeout!")
  infill.setup({ cmd = { slow } })
  vim.cmd.edit(os.getenv("SCRATCH_DIR") .. "/starting.py")
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "x = 1" })
  H.sleep(500)
  report.notifications = {}
  local prompts = {}
  local input = vim.ui.input
  vim.ui.input = function(opts, on_answer) prompts[#prompts + 1] = opts.prompt end
  vim.cmd("InfillStatus")
  infill.rewrite(1, 1, nil, nil, { whole_lines = true })
  vim.ui.input = input
  report.starting = { statusline = infill.statusline(), notifications = vim.deepcopy(report.notifications),
    prompts = prompts }
  for _, client in ipairs(vim.lsp.get_clients({ name = infill.name, _uninitialized = true })) do
    client:stop(true)
  end

  -- 6. A buffer without a name: "save it and the server attaches" only where the server would attach.
  report.notifications = {}
  vim.cmd.enew()
  infill.fill(1, 1, nil, { whole_lines = true })   -- no filetype: not served whatever its name
  vim.bo.filetype = "python"
  infill.fill(1, 1, nil, { whole_lines = true })
  report.unnamed = vim.deepcopy(report.notifications)
end, tonumber(os.getenv("SCENARIO_DEADLINE_MS")))
