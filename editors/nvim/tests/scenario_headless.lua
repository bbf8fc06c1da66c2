-- The plugin in a headless Neovim against the real infill-lsp: typed keys drive it, the findings go to REPORT_FILE.
-- Run by tests/test_editor_neovim.py: nvim --headless --clean -u NONE -c "luafile scenario_headless.lua".
local plugin_dir = os.getenv("PLUGIN_DIR")
local H = dofile(plugin_dir .. "/tests/harness.lua")
local api = vim.api
local report = H.report

local INLINE = "textDocument/inlineCompletion"
local EXECUTE = "workspace/executeCommand"
local DID_SHOW = "diffusionInfill/didShowCompletion"

H.run(function()
  -- What the user is told, kept for the assertions (headless Neovim has no message area to read).
  report.notifications = {}
  vim.notify = function(message, level)
    report.notifications[#report.notifications + 1] = { message = message, level = level or vim.log.levels.INFO }
  end
  vim.opt.runtimepath:prepend(plugin_dir)
  vim.cmd.runtime("plugin/diffusion_infill.lua")
  vim.cmd("filetype on")
  local infill = require("diffusion_infill")
  local ghost = require("diffusion_infill.ghost")
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")), settings = vim.json.decode(os.getenv("INFILL_SETTINGS")),
    debounce_ms = 50 })

  -- The sample file in the current window, once infill-lsp is attached to it and initialized: (buffer, client).
  local function open_sample(what)
    vim.cmd.edit(os.getenv("SAMPLE_FILE"))
    local buffer = api.nvim_get_current_buf()
    return buffer, H.wait_for(what, function()
      local found = infill.get_client(buffer)
      return found and found.initialized and found
    end, 20000)
  end
  local bufnr, client = open_sample("the plugin to start and attach infill-lsp")
  -- A user's own insert-mode mapping on a key the plugin takes, made after the plugin attached (as a lazily
  -- loaded plugin does): it must still run when nothing is shown.
  vim.keymap.set("i", "<C-]>", function() api.nvim_put({ "[user]" }, "c", false, true) end)
  H.record_requests(client)
  local provider = client.server_capabilities.executeCommandProvider
  report.client_name = client.name
  report.offset_encoding = client.offset_encoding
  report.tabstop = vim.bo[bufnr].tabstop
  report.server_commands = type(provider) == "table" and provider.commands or {}
  report.original_text = H.text(bufnr)

  -- The model loads in the background; until it is ready the server answers with no items, so ask until it does.
  local ready_params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = 1, character = #"    return " },
    context = { triggerKind = 1 },
  }
  report.ready_attempts = 0
  H.wait_for("a first non-empty answer from the model", function()
    report.ready_attempts = report.ready_attempts + 1
    local response, problem = client:request_sync(INLINE, ready_params, 45000, bufnr)
    report.ready_last = response or problem or vim.NIL
    local result = response and response.result
    if result and (result.items or result)[1] ~= nil then
      return true
    end
    H.sleep(500)
  end, tonumber(os.getenv("ANSWER_DEADLINE_MS")))

  -- The plugin announces inline completion, so the server sends no completion items besides the ghost text.
  report.announces_inline = client.capabilities.textDocument.inlineCompletion ~= nil
  local listed = client:request_sync("textDocument/completion",
    { textDocument = ready_params.textDocument, position = ready_params.position }, 45000, bufnr)
  report.completion_result = listed and listed.result or vim.NIL

  -- What the ghost text looks like now, with the server's answer it shows.
  local function snapshot(name, extra)
    local state = ghost.state(bufnr)
    local data = extra or {}
    data.marks = H.ghost_marks(bufnr, infill.namespace)
    data.lines = H.lines(bufnr)
    data.cursor = api.nvim_win_get_cursor(0)
    data.mode = H.mode()
    if state then
      data.item = state.items[state.index]
      data.index, data.count = state.index, #state.items
      data.item_line = H.lines(bufnr)[data.item.range and data.item.range.start.line + 1 or data.cursor[1]]
    end
    return H.step(name, data)
  end
  local function shown()
    return ghost.state(bufnr) ~= nil and #H.ghost_marks(bufnr, infill.namespace) > 0
  end
  local function requests_of_kind(since, kind)
    local found = {}
    for _, entry in ipairs(H.sent_since(since, INLINE)) do
      if entry.params.context and entry.params.context.triggerKind == kind then
        found[#found + 1] = entry
      end
    end
    return found
  end

  -- The server's counters, read the way :InfillStatus does; it handles messages in order, so every notification
  -- sent before this request is counted in the answer.
  local function server_counters()
    local response = client:request_sync(EXECUTE, { command = "infill.status", arguments = {} }, 10000, bufnr)
    return response and response.result and response.result.counters or vim.NIL
  end
  -- What the server was told went on screen since `since`, and its counters right after.
  local function displays(since, before)
    local notified = H.notified_since(since, DID_SHOW)
    return { before = before, notified = notified, after = server_counters() }
  end

  -- 1. Entering insert mode at the end of `    return ` asks automatically; the answer appears as ghost text.
  local counters_before, notified_mark = server_counters(), #H.notified
  local mark = #H.sent
  H.type("2GA")
  H.wait_for("automatic ghost text after entering insert mode", shown, 40000)
  snapshot("auto", { requests = #requests_of_kind(mark, 2), invoked_requests = #requests_of_kind(mark, 1) })
  report.displays_auto = displays(notified_mark, counters_before)

  -- 2. Dismissing hides it and tells the server when it counts rejections.
  mark = #H.sent
  H.type("<C-]>")
  H.wait_for("the ghost text to go", function() return not shown() end, 5000)
  H.sleep(100)
  snapshot("dismiss", { commands = vim.tbl_map(function(e) return e.params end, H.sent_since(mark, EXECUTE)) })

  -- 3. Typing asks again (debounced): type a character and take it back.
  mark = #H.sent
  H.type("x")
  H.type("<BS>")
  H.wait_for("ghost text after typing", shown, 40000)
  snapshot("typing", { requests = #requests_of_kind(mark, 2) })

  -- Nothing asked automatically from here on: a new suggestion arriving mid-step would race the keys below.
  infill.config.auto_trigger = false

  -- 3b. A suggestion that came while typing holds one candidate: the first "next" asks for several, then moves.
  mark = #H.sent
  H.type("<M-]>")
  H.wait_for("an answered explicit request from the next key", function()
    local invoked = requests_of_kind(mark, 1)
    return invoked[1] and invoked[1].answered and shown()
  end, 40000)
  H.sleep(50)
  local from_auto = requests_of_kind(mark, 1)
  snapshot("cycle_from_auto", { answer = from_auto[1].result, requests = #from_auto })

  -- 4. An explicit invoke asks for several candidates.
  counters_before, notified_mark = server_counters(), #H.notified
  mark = #H.sent
  H.type("<M-\\>")
  H.wait_for("an answered explicit request", function()
    local invoked = requests_of_kind(mark, 1)
    return invoked[#invoked] and invoked[#invoked].answered and shown()
  end, 40000)
  local invoked = requests_of_kind(mark, 1)
  local answer = invoked[#invoked].result
  snapshot("invoke", { answer = answer })

  -- 5. Cycling through them, forwards and back: each candidate is reported on screen once, however often shown.
  local cycle_mark = #H.notified
  H.type("<M-]>")
  snapshot("next")
  H.type("<M-[>")
  snapshot("prev", { notified = H.notified_since(cycle_mark, DID_SHOW) })
  report.displays_invoke = displays(notified_mark, counters_before)

  -- 6. Accepting a word, the rest of the line, then everything.
  -- A short answer may be used up before the last key: a key is pressed only while something is shown.
  mark = #H.sent
  H.type("<M-Right>")
  snapshot("accept_word")
  report.pressed_after_word = {}
  for _, key in ipairs({ "<M-C-Right>", "<Tab>" }) do
    if shown() then
      H.type(key)
      report.pressed_after_word[#report.pressed_after_word + 1] = key
    end
  end
  snapshot("accept_all", { text = H.text(bufnr) })
  H.sleep(100)
  report.accept_commands = vim.tbl_map(function(e) return e.params end, H.sent_since(mark, EXECUTE))

  H.type("<Esc>")
  H.wait_for("normal mode", function() return H.mode() == "n" end, 5000)
  H.sleep(200)
  ghost.clear(bufnr)

  -- 7. With no ghost text, the accept key is a plain Tab.
  H.type("Go")
  H.wait_for("insert mode on a new line", function() return H.mode():match("^i") end, 5000)
  H.type("<C-]>")
  H.step("fallback_user_mapping", { line = api.nvim_get_current_line() })
  -- The user's own mapping of the accept key, recursive and starting with the key itself (as vim-vsnip's README
  -- suggests): Vim does not map the rhs's leading <Tab> again, and neither may the plugin (it fed it back into its
  -- own map, forever, and Neovim hung).
  vim.cmd([[imap <expr> <Tab> pumvisible() ? "\<C-n>" : "\<Tab>"]])
  api.nvim_set_current_line("")
  H.type("<Tab>")
  vim.cmd("iunmap <Tab>")
  H.step("fallback", { line = api.nvim_get_current_line(), expandtab = vim.bo[bufnr].expandtab,
    softtabstop = vim.bo[bufnr].softtabstop, shiftwidth = vim.fn.shiftwidth() })
  -- The user's own <expr> mapping of the accept key under the completion menu. An expression gives key codes
  -- ("\<Down>" evaluates to them): fed as they are, not translated again (its <Down> was typed as the text "kd").
  -- A Lua one is translated only when it asks to be (replace_keycodes, vim.keymap.set's default for expr).
  local function expr_fallback(name, map_tab)
    map_tab()
    api.nvim_set_current_line("")
    H.type("re<C-n>")
    H.wait_for("the completion menu", function() return vim.fn.pumvisible() == 1 end, 5000)
    local before = { line = api.nvim_get_current_line(), selected = vim.fn.complete_info({ "selected" }).selected }
    H.type("<Tab>")
    H.step(name, { before = before, line = api.nvim_get_current_line(), menu = vim.fn.pumvisible(),
      selected = vim.fn.complete_info({ "selected" }).selected })
    H.type("<C-e>")
    vim.keymap.del("i", "<Tab>")
  end
  expr_fallback("fallback_vimscript_expr", function()
    vim.cmd([[inoremap <expr> <Tab> pumvisible() ? "\<Down>" : "\<Tab>"]])
  end)
  expr_fallback("fallback_lua_expr_codes", function()
    vim.keymap.set("i", "<Tab>", function() return vim.keycode(vim.fn.pumvisible() == 1 and "<Down>" or "<Tab>") end,
      { expr = true, replace_keycodes = false })
  end)
  expr_fallback("fallback_lua_expr_notation", function()
    vim.keymap.set("i", "<Tab>", function() return vim.fn.pumvisible() == 1 and "<Down>" or "<Tab>" end,
      { expr = true })
  end)

  -- "Next" with nothing on screen asks for candidates instead of typing its own character.
  api.nvim_set_current_line("")
  mark = #H.sent
  H.type("<M-]>")
  local asked = H.wait_for("an answered explicit request from the next key", function()
    local invoked = requests_of_kind(mark, 1)
    return invoked[1] and invoked[1].answered and invoked
  end, 40000)
  H.step("next_with_nothing_shown", { line = api.nvim_get_current_line(), requests = #asked })
  ghost.clear(bufnr)

  -- 7b. The completion menu open: nothing asked or drawn under it (its keys are the menu's); asked once it closes.
  api.nvim_set_current_line("")
  infill.config.auto_trigger = true   -- (off since 3b)
  H.type("re<C-n>")   -- keyword completion from the buffer's words (result, return, ...)
  H.wait_for("the completion menu", function() return vim.fn.pumvisible() == 1 end, 5000)
  H.sleep(300)
  mark = #H.sent
  H.type("<C-p>s")   -- back to what was typed, then typing on with the menu open (TextChangedP)
  H.sleep(1000)
  local under_menu = { menu = vim.fn.pumvisible(), asked = #H.sent_since(mark, INLINE),
    marks = #H.ghost_marks(bufnr, ghost.namespace) }
  mark = #H.sent
  H.type("<C-e>")
  -- Answered before the next step, whose known candidates it could otherwise replace; still in insert mode.
  H.wait_for("an answered request once the menu closed", function()
    local asked_after = H.sent_since(mark, INLINE)
    return asked_after[1] and asked_after[1].answered
  end, 40000)
  under_menu.closed = vim.fn.pumvisible()
  H.step("completion_menu", under_menu)
  infill.config.auto_trigger = false
  H.sleep(100)
  ghost.clear(bufnr)

  -- 8. Several lines, cycling and partial accepts on a known list (the real answers are short).
  local row = api.nvim_win_get_cursor(0)[1] - 1
  api.nvim_set_current_line("")
  api.nvim_win_set_cursor(0, { row + 1, 0 })
  local here = { line = row, character = 0 }
  local items = {
    { insertText = "for i in range(2):\n\tprint(i)", range = { start = here, ["end"] = here } },
    { insertText = "pass", range = { start = here, ["end"] = here } },
    { insertText = "x = 1", range = { start = here, ["end"] = here } },
  }
  local function known(name)
    return snapshot(name, { row = row })
  end
  ghost.show(bufnr, items, client)
  known("known_first")
  H.type("<M-]>")
  known("known_next")
  H.type("<M-[>")
  H.type("<M-[>")
  known("known_prev_wrapped")
  H.type("<M-]>")
  H.type("<M-Right>")
  known("known_word")
  H.type("<M-C-Right>")
  known("known_line")
  H.type("<M-Right>")
  known("known_newline")
  H.type("<Tab>")
  known("known_all")

  -- Typing what the ghost text says keeps the rest of it on screen.
  H.type("<Esc>o")
  row = api.nvim_win_get_cursor(0)[1] - 1
  api.nvim_set_current_line("")
  api.nvim_win_set_cursor(0, { row + 1, 0 })
  here = { line = row, character = 0 }
  ghost.show(bufnr, { { insertText = "for i in range(2):", range = { start = here, ["end"] = here } } }, client)
  H.type("fo")
  known("known_typed")
  H.type("x")
  known("known_typed_other")

  -- Positions in UTF-16 (what servers use unless they agree on UTF-8) on a line with a two-byte character.
  api.nvim_set_current_line("s = 'é' + ")
  api.nvim_win_set_cursor(0, { row + 1, #"s = 'é' + " })
  local utf16_end = { line = row, character = 10 } -- 10 UTF-16 units, 11 bytes
  ghost.show(bufnr, { { insertText = "'è'", range = { start = utf16_end, ["end"] = utf16_end } } },
    { id = client.id, offset_encoding = "utf-16" })
  known("known_utf16")
  H.type("<Tab>")
  known("known_utf16_accepted")

  -- <C-c> leaves insert mode without InsertLeave: the ghost text goes all the same.
  local line_end = { line = row, character = #api.nvim_get_current_line() }
  ghost.show(bufnr, { { insertText = " -- left", range = { start = line_end, ["end"] = line_end } } },
    { id = client.id, offset_encoding = "utf-8" })
  known("known_before_ctrl_c")
  H.type("<C-c>")
  H.wait_for("normal mode after <C-c>", function() return H.mode() == "n" end, 5000)
  known("known_ctrl_c")
  H.type("<Esc>dd")

  -- 8b. Several lines in the middle of a line: the rest of the line is drawn after the last one, as accepting puts it.
  H.type("o")
  H.wait_for("insert mode on a new line", function() return H.mode():match("^i") end, 5000)
  row = api.nvim_win_get_cursor(0)[1] - 1
  local function mid_line(name, line, col, text, end_col)
    api.nvim_buf_set_lines(bufnr, row, row + 1, false, { line })
    api.nvim_win_set_cursor(0, { row + 1, col })
    local range = { start = { line = row, character = col }, ["end"] = { line = row, character = end_col or col } }
    ghost.show(bufnr, { { insertText = text, range = range } }, { id = client.id, offset_encoding = "utf-8" })
    H.sleep(100) -- autocommands of the line change run; the ghost text stays
    known(name)
    H.type("<Tab>")
    known(name .. "_accepted")
    api.nvim_buf_set_lines(bufnr, row, api.nvim_win_get_cursor(0)[1], false, { "" }) -- back to one empty line
  end
  mid_line("mid_line", "    total = add(a) + 1", #"    total = add(", "b,\n        c,\n        ")
  -- The item's range replaces the closing bracket: it is not shown twice.
  mid_line("mid_line_closer", "    print()  # done", #"    print(", '"hi",\n          end="")', #"    print()")
  mid_line("mid_line_one_line_closer", "    print()", #"    print(", '"hi")', #"    print()")
  -- Text after the cursor that the suggestion happens to begin with stays: the suggestion goes in front of it.
  mid_line("mid_word", "    return value", #"    return ", "val + ")
  mid_line("mid_character", "s = '中'", #"s = '", "了'")
  -- Tabs after text are drawn as wide as they will be: to the next tab stop, not a whole 'tabstop' each.
  mid_line("mid_tabs", "ab)\t# c", 2, "\tcd\n\tx")

  -- A server that follows a CRLF buffer's line ends (fileformat=dos) sends "\r\n": no "\r" reaches the buffer.
  vim.bo[bufnr].fileformat = "dos"
  mid_line("crlf", "", 0, "x = 1\r\n    return x")
  vim.bo[bufnr].fileformat = "unix"

  -- Cycling after typing through or accepting part of a suggestion: only candidates that go on from there.
  local function cycled_after(name, texts, keys)
    api.nvim_buf_set_lines(bufnr, row, row + 1, false, { "x = f()" })
    api.nvim_win_set_cursor(0, { row + 1, #"x = f(" })
    local range = { start = { line = row, character = 6 }, ["end"] = { line = row, character = 7 } } -- over ")"
    local candidates = {}
    for i, text in ipairs(texts) do
      candidates[i] = { insertText = text, range = range }
    end
    ghost.show(bufnr, candidates, { id = client.id, offset_encoding = "utf-8" })
    H.type(keys)
    H.type("<M-]>")
    known(name)
    H.type("<Tab>")
    known(name .. "_accepted")
    api.nvim_buf_set_lines(bufnr, row, api.nvim_win_get_cursor(0)[1], false, { "" })
  end
  cycled_after("cycle_typed_other", { "abc)", "xyz, 1)" }, "ab")
  cycled_after("cycle_typed_fits", { "abc)", "xyz)", "abd)" }, "ab")
  cycled_after("cycle_word_other", { "abc + 1)", "xyz, 1)" }, "<M-Right>")

  -- Keys that arrive together with the accept key (one terminal write): the ghost text catches up before it is
  -- accepted, and a suggestion that no longer fits is not.
  local function accepted_with(name, line, text, keys)
    api.nvim_buf_set_lines(bufnr, row, row + 1, false, { line })
    api.nvim_win_set_cursor(0, { row + 1, #line })
    local here = { line = row, character = #line }
    ghost.show(bufnr, { { insertText = text, range = { start = here, ["end"] = here } } },
      { id = client.id, offset_encoding = "utf-8" })
    H.type(keys)
    known(name)
    api.nvim_buf_set_lines(bufnr, row, api.nvim_win_get_cursor(0)[1], false, { "" })
  end
  accepted_with("together_typed_through", "x = ", "foobar", "f<Tab>")
  accepted_with("together_typed_other", "y = ", "foobar", "z<Tab>")
  accepted_with("together_moved_left", "ab", "foobar", "<Left><Tab>")
  -- A word goes on through letters outside ASCII (Lua's %w stops at them).
  accepted_with("word_non_ascii", "", "café = naïve", "<M-Right>")
  -- An auto-pairs plugin's "(" adds ")" after the cursor too: the line no longer reads as the suggestion says, and
  -- it goes (it stayed, and accepting it gave "print(a, b))").
  vim.keymap.set("i", "(", "()<Left>", { buffer = bufnr })
  accepted_with("typed_autopaired", "print", "(a, b)", "(")
  accepted_with("together_autopaired", "print", "(a, b)", "(<Tab>")
  vim.keymap.del("i", "(", { buffer = bufnr })

  -- Windows and modes around a suggestion on screen (insert mode throughout).
  local function line_here(line)
    local row = api.nvim_win_get_cursor(0)[1] - 1
    api.nvim_buf_set_lines(bufnr, row, row + 1, false, { line })
    api.nvim_win_set_cursor(0, { row + 1, #line })
    return row
  end
  local function show_here(line)
    local row = line_here(line)
    local here = { line = row, character = #line }
    ghost.show(bufnr, { { insertText = "ghostly", range = { start = here, ["end"] = here } } },
      { id = client.id, offset_encoding = "utf-8" })
    return row
  end
  -- A second window on the buffer, its cursor at the same place: the suggestion drawn in one was accepted, unseen,
  -- from the other.
  line_here("z = ")
  vim.cmd("split")
  local split_row = show_here("z = ")
  local drawn = ghost.state(bufnr) ~= nil
  H.type("<Cmd>wincmd j<CR>")
  local kept_after_switch = ghost.state(bufnr) ~= nil
  H.type("<Tab>")
  report.other_window = { drawn = drawn, kept_after_switch = kept_after_switch,
    line = api.nvim_buf_get_lines(bufnr, split_row, split_row + 1, false)[1] }
  vim.cmd("only")
  api.nvim_buf_set_lines(bufnr, split_row, split_row + 1, false, { "" })
  api.nvim_win_set_cursor(0, { split_row + 1, 0 })
  -- <C-o> runs one normal-mode command and comes back: nothing was rejected.
  mark = #H.sent
  show_here("w = ")
  H.type("<C-o>zz")
  H.sleep(100)
  local commands = {}
  for _, sent in ipairs(H.sent_since(mark, EXECUTE)) do
    commands[#commands + 1] = sent.params.command
  end
  report.ctrl_o = { shown = ghost.state(bufnr) ~= nil, mode = H.mode(), commands = commands }
  -- <C-o>:InfillSuggest at the end of a line: the cursor stands on the last character until insert mode resumes;
  -- the request is for the column the user types at, and its answer is not dropped as out of date.
  ghost.dismiss(bufnr)
  line_here("v = ")
  mark = #H.sent
  H.type("<C-o>:InfillSuggest<CR>")
  local asked = H.wait_for("a request from <C-o>:InfillSuggest", function() return H.sent_since(mark, INLINE)[1] end,
    10000)
  report.ctrl_o_suggest = { character = asked.params.position.character, mode = H.mode(),
    cursor = api.nvim_win_get_cursor(0)[2] }
  -- From Replace mode nothing is asked, then or later when insert mode comes back.
  H.wait_for("the answer to <C-o>:InfillSuggest", function() return asked.answered end, 20000)
  ghost.dismiss(bufnr)
  mark = #H.sent
  H.type("<Esc>R<C-o>:InfillSuggest<CR><C-o>:InfillSuggest<CR><Esc>")
  H.type("i")
  H.sleep(300)
  report.ctrl_o_replace = { asked = #H.sent_since(mark, INLINE), mode = H.mode() }
  -- "Next" on one automatic suggestion asks for several; an answer with none (inside a word the server offers
  -- nothing) leaves the suggestion on screen, as the text has not changed since it was drawn.
  local row = line_here("x = compute()")
  api.nvim_win_set_cursor(0, { row + 1, #"x = compu" })
  local inside = { line = row, character = #"x = compu" }
  ghost.show(bufnr, { { insertText = "ghostly", range = { start = inside, ["end"] = inside } } },
    { id = client.id, offset_encoding = "utf-8" })
  mark = #H.sent
  H.type("<M-]>")
  H.wait_for("the answer to next on one suggestion", function()
    local invoked = requests_of_kind(mark, 1)
    return invoked[1] and invoked[1].answered
  end, 20000)
  H.sleep(100)
  local kept = ghost.state(bufnr)
  report.next_answered_empty = { kept = kept ~= nil and kept.items[kept.index].insertText or vim.NIL }
  ghost.dismiss(bufnr)
  -- Several candidates on screen (ids c1, c2, ...), as an explicit request gets them.
  local function candidates(line, texts)
    local here = { line = line_here(line), character = #line }
    local items = {}
    for i, text in ipairs(texts) do
      items[i] = { insertText = text, range = { start = here, ["end"] = here },
        command = { title = "accepted", command = "infill.accepted", arguments = { { id = "c" .. i } } } }
    end
    ghost.show(bufnr, items, { id = client.id, offset_encoding = "utf-8" })
  end
  -- Keys typed in the same burst as "next" (pasted, a slow link) count first: the next candidate that goes on from
  -- them is shown where the cursor is, and <Tab> writes it there.
  candidates("e = ", { "abc + 1", "xyz + 2", "abd + 3" })
  api.nvim_input("ab<M-]>")
  H.sleep(200)
  local burst = ghost.state(bufnr)
  report.cycle_in_a_burst = { text = burst and burst.text or vim.NIL, cursor = api.nvim_win_get_cursor(0)[2] }
  H.type("<Tab>")
  report.cycle_in_a_burst.line = api.nvim_get_current_line()
  -- Cycled to the second and typed on: the server's answer (the rests, under the ids first offered) keeps the second
  -- on screen.
  candidates("r = ", { "total + b", "total * b" })
  H.type("<M-]>t")
  local typed_at = { line = api.nvim_win_get_cursor(0)[1] - 1, character = #"r = t" }
  ghost.show(bufnr, {
    { insertText = "otal + b", range = { start = typed_at, ["end"] = typed_at },
      command = { title = "accepted", command = "infill.accepted", arguments = { { id = "c1" } } } },
    { insertText = "otal * b", range = { start = typed_at, ["end"] = typed_at },
      command = { title = "accepted", command = "infill.accepted", arguments = { { id = "c2" } } } },
  }, { id = client.id, offset_encoding = "utf-8" })
  H.type("<Tab>")
  report.typed_after_cycling = api.nvim_get_current_line()
  -- Another buffer and back, still in insert mode (<Cmd> mappings): a suggestion is asked for again.
  infill.config.auto_trigger = true
  local other = vim.fn.tempname() .. ".py"
  vim.fn.writefile({ "x = 1" }, other)
  H.type("<Cmd>edit " .. other .. "<CR>")
  mark = #H.sent
  H.type("<Cmd>buffer " .. bufnr .. "<CR>")
  local sample_uri = vim.uri_from_bufnr(bufnr)
  report.back_in_buffer = pcall(H.wait_for, "a suggestion asked for on coming back", function()
    for _, sent in ipairs(H.sent_since(mark, INLINE)) do
      if sent.params.textDocument.uri == sample_uri then
        return true
      end
    end
  end, 5000)
  infill.config.auto_trigger = false
  local row_now = api.nvim_win_get_cursor(0)[1] - 1
  api.nvim_buf_set_lines(bufnr, row_now, row_now + 1, false, { "" })
  H.type("<Esc>")
  H.wait_for("normal mode", function() return H.mode() == "n" end, 5000)
  H.type("dd")

  -- 9. :InfillFill and :InfillRewrite on visual selections; the server's edit comes back as workspace/applyEdit.
  H.type("<Esc>")
  H.wait_for("normal mode", function() return H.mode() == "n" end, 5000)
  local function find_line(pattern)
    for i, line in ipairs(H.lines(bufnr)) do
      if line:match(pattern) then
        return i
      end
    end
    error("no line matches " .. pattern)
  end
  local function run_command(name, keys, prompt_answer)
    local before = H.text(bufnr)
    mark = #H.sent
    -- The instruction prompt (vim.ui.input) reads the rest of the typeahead.
    H.type(keys .. (prompt_answer and (prompt_answer .. "<CR>") or ""))
    local sent = H.wait_for(name .. "'s answer", function()
      local commands = H.sent_since(mark, EXECUTE)
      return commands[1] and commands[1].answered and commands[1]
    end, 60000)
    H.sleep(100)
    return H.step(name, { before = before, after = H.text(bufnr), params = sent.params, answer = sent.result or vim.NIL,
      err = sent.err or vim.NIL })
  end
  -- The weak embedded model often writes something that would not parse, and the server then refuses (applied =
  -- false): each command goes through a few selections until one edit is applied. Characterwise ones first.
  local function attempts(name, command, targets, prompt_answer)
    for i, target in ipairs(targets) do
      H.type("<Esc>")
      local found, line = pcall(find_line, target.pattern) -- an earlier edit may have rewritten it
      if found then
        local ran = run_command(name .. "_" .. i, target.keys(line) .. ":" .. command .. "<CR>", prompt_answer)
        ran.target = target.pattern
        if type(ran.answer) == "table" and ran.answer.applied then
          break
        end
      end
    end
  end
  -- Inside a docstring nearly any text parses.
  local docstring = { pattern = '^    """', keys = function(l) return ('%dG0f"3lvt"'):format(l) end }
  attempts("fill", "InfillFill", {
    docstring,
    { pattern = '"hello there"', keys = function(l) return ('%dG0f"lvt"'):format(l) end },
    { pattern = "^    result = a %* b", keys = function(l) return ("%dG0f=wv$"):format(l) end },
    { pattern = "^    result = a %* b", keys = function(l) return ("%dGVj"):format(l) end },
  })
  attempts("rewrite", "InfillRewrite", {
    docstring,
    { pattern = "^    # multiply", keys = function(l) return ("%dGV"):format(l) end },
    { pattern = "^    result = ", keys = function(l) return ("%dGVj"):format(l) end },
    { pattern = "^def mul", keys = function(l) return ("%dGVjjj"):format(l) end },
  }, "use fewer words")
  -- No range given: the cursor's whole line, though a charwise selection began and ended on it before. A line of
  -- its own, which no edit above can have rewritten.
  H.type("<Esc>")
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { 'z = "hi there"' })
  run_command("fill_no_range", ('%dG0f"lvt"<Esc>'):format(api.nvim_buf_line_count(bufnr)) .. ":InfillFill<CR>")
  -- A range typed in normal mode over the lines of an old charwise selection: whole lines too (a line of its own).
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { 'y = "typed range"' })
  local last = api.nvim_buf_line_count(bufnr)
  run_command("fill_typed_range", ('%dG0f"lvt"<Esc>'):format(last) .. (":%d,%dInfillFill<CR>"):format(last, last))
  -- With 'selection' exclusive the '> mark is already past the selection: nothing more is taken.
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { 's = "hello world"' })
  vim.o.selection = "exclusive"
  run_command("fill_exclusive", ('%dG0fwve'):format(api.nvim_buf_line_count(bufnr)) .. ":InfillFill<CR>")
  vim.o.selection = "inclusive"
  -- A last character with a combining mark (e + U+0301): the mark is part of it, and of the selection.
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { 'w = "cafe\204\129"' })
  run_command("fill_combining", ('%dG0f"lvt"'):format(api.nvim_buf_line_count(bufnr)) .. ":InfillFill<CR>")
  -- A visual-mode mapping through <Cmd> (no range, still in visual mode): the selection, not the cursor's line.
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { 'm = "cmd mapping"' })
  vim.keymap.set("x", "<F7>", "<Cmd>InfillFill<CR>")
  run_command("fill_cmd_mapping", ('%dG0f"lvt"'):format(api.nvim_buf_line_count(bufnr)) .. "<F7>")
  vim.keymap.del("x", "<F7>")
  -- A blockwise selection (CTRL-V) is not one span: refused with a message, nothing sent, nothing changed.
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { 'b = "block one"', 'c = "block two"' })
  H.type("<Esc>")
  do
    local sent_before, told, before = #H.sent, #report.notifications, H.text(bufnr)
    H.type(('%dG0f"l<C-v>jt"'):format(api.nvim_buf_line_count(bufnr) - 1) .. ":InfillFill<CR>")
    H.wait_for("the blockwise refusal", function() return #report.notifications > told end, 10000)
    H.sleep(200)
    H.step("fill_blockwise", { before = before, after = H.text(bufnr), sent = #H.sent_since(sent_before, EXECUTE),
      told = vim.list_slice(report.notifications, told + 1) })
  end
  -- A blank line selected (V, then v): an empty range, refused here with a message, not sent to the server.
  api.nvim_buf_set_lines(bufnr, -1, -1, false, { "" })
  for _, keys in ipairs({ "V", "v" }) do
    H.type("<Esc>")
    local sent_before, told, before = #H.sent, #report.notifications, H.text(bufnr)
    H.type(("%dG%s"):format(api.nvim_buf_line_count(bufnr), keys) .. ":InfillFill<CR>")
    H.wait_for("the blank-line refusal", function() return #report.notifications > told end, 10000)
    H.sleep(200)
    H.step("fill_blank_" .. keys, { before = before, after = H.text(bufnr),
      sent = #H.sent_since(sent_before, EXECUTE), told = vim.list_slice(report.notifications, told + 1) })
  end

  -- 9b. An edit made for an older version of the buffer (the user typed while it travelled) is refused, not
  -- reported as applied; one made for the current version lands. Sent the way Neovim hands a server's request on.
  local function apply_edit_for(version)
    local before = H.text(bufnr)
    local edit = { documentChanges = { { textDocument = { uri = vim.uri_from_bufnr(bufnr), version = version },
      edits = { { range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } },
        newText = "# edited\n" } } } } }
    local handler = client.handlers["workspace/applyEdit"] or vim.lsp.handlers["workspace/applyEdit"]
    local answer = handler(nil, { edit = edit }, { client_id = client.id, method = "workspace/applyEdit" })
    return { answer = answer, before = before, after = H.text(bufnr) }
  end
  local version = vim.lsp.util.buf_versions[bufnr]
  H.step("apply_edit_stale", apply_edit_for(version - 1))
  H.step("apply_edit_current", apply_edit_for(version))
  api.nvim_buf_set_lines(bufnr, 0, 1, false, {})

  -- 10. :checkhealth, the status line, and the help file's tags.
  local told = #report.notifications
  vim.cmd("InfillStatus")
  H.wait_for(":InfillStatus's answer", function() return #report.notifications > told end, 10000)
  report.status_message = report.notifications[#report.notifications].message
  report.statusline = infill.statusline(bufnr)
  report.messages = vim.fn.execute("messages") -- the server's window/showMessage lands here
  report.status = infill.status(bufnr)
  vim.cmd("checkhealth diffusion_infill")
  report.health = H.lines(api.nvim_get_current_buf())
  vim.cmd("bwipeout")
  local doc_copy = os.getenv("DOC_COPY")
  local ok, problem = pcall(vim.cmd.helptags, doc_copy)
  report.helptags_error = ok and vim.NIL or tostring(problem)
  vim.opt.runtimepath:prepend(vim.fs.dirname(doc_copy))
  report.help_ok = pcall(vim.cmd.help, "diffusion_infill")
  report.help_tags = vim.fn.readfile(doc_copy .. "/tags")

  -- 11. setup() again with a changed setting: the running server hears it (this bad value earns its warning).
  local settings = vim.json.decode(os.getenv("INFILL_SETTINGS"))
  settings.maxNewTokens = "lots"
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")), settings = settings, debounce_ms = 50 })
  local function warned()
    for _, told in ipairs(report.notifications) do
      if told.message:find("diffusionInfill.maxNewTokens = 'lots' is not valid", 1, true) then
        return true
      end
    end
    return false
  end
  local deadline = vim.uv.now() + 20000
  while not warned() and vim.uv.now() < deadline do
    H.sleep(100)
  end
  report.resetup_warned = warned()

  -- 12. A user's own buffer-local <Tab>, and setup() again with other keys and without a setting.
  local again, attached = open_sample("infill-lsp attached to the sample")
  vim.lsp.buf_detach_client(again, attached.id)
  H.wait_for("the detach", function() return infill.get_client(again) == nil end, 5000)
  vim.keymap.set("i", "<Tab>", "<C-t>", { buffer = again, desc = "user tab" })
  vim.lsp.buf_attach_client(again, attached.id)
  H.wait_for("the attach", function() return infill.get_client(again) ~= nil end, 5000)
  H.sleep(100)
  local function desc_of(lhs)
    local found = vim.fn.maparg(lhs, "i", false, true)
    return type(found) == "table" and found.desc or vim.NIL
  end
  report.keys_attached = { tab = desc_of("<Tab>"), word = desc_of("<M-Right>") }
  local plain = vim.json.decode(os.getenv("INFILL_SETTINGS"))
  plain.maxNewTokens = nil -- set by step 11's setup(); this one leaves it out
  local told_server = vim.NIL
  for _, client in ipairs(vim.lsp.get_clients({ name = infill.name })) do
    local notify = client.notify
    client.notify = function(self, method, params)
      if method == "workspace/didChangeConfiguration" then
        told_server = params.settings.diffusionInfill
      end
      return notify(self, method, params)
    end
  end
  infill.setup({ cmd = vim.json.decode(os.getenv("SERVER_CMD")), settings = plain, debounce_ms = 50,
    keymaps = { accept_word = "<M-w>" } })
  local section = (vim.lsp.config[infill.name].settings or {}).diffusionInfill or {}
  report.keys_resetup = { word = desc_of("<M-Right>"), new_word = desc_of("<M-w>"), tab = desc_of("<Tab>"),
    stale_setting = section.maxNewTokens or vim.NIL }
  report.resetup_told = told_server
  -- setup() enables the config again; vim.lsp.enable attaches open buffers on a later tick (the config's root_dir
  -- is a function): let that pass, so that it does not undo the detach below.
  H.sleep(100)
  vim.lsp.buf_detach_client(again, attached.id)
  H.wait_for("the detach", function() return infill.get_client(again) == nil end, 5000)
  H.sleep(100)
  report.keys_detached = { tab = desc_of("<Tab>"), new_word = desc_of("<M-w>") }
  -- A map another plugin sets on one of our keys while attached (nvim-cmp sets buffer-local ones on InsertEnter)
  -- is not ours to delete on the next detach.
  vim.lsp.buf_attach_client(again, attached.id)
  H.wait_for("the attach", function() return infill.get_client(again) ~= nil end, 5000)
  H.sleep(100)
  vim.keymap.set("i", "<M-w>", "<C-w>", { buffer = again, desc = "plugin word" })
  vim.lsp.buf_detach_client(again, attached.id)
  H.wait_for("the detach", function() return infill.get_client(again) == nil end, 5000)
  H.sleep(100)
  report.keys_later_map = desc_of("<M-w>")

  -- 13. A file of another project (its own root marker): the running server takes it, no second model loads.
  local other_root = vim.fn.tempname()
  vim.fn.mkdir(other_root .. "/.git", "p")
  vim.fn.writefile({ "x = 1" }, other_root .. "/other.py")
  vim.cmd.edit(other_root .. "/other.py")
  local other = api.nvim_get_current_buf()
  local other_client = H.wait_for("a client on the other project's file", function()
    return infill.get_client(other)
  end, 20000)
  local metrics = other_client:request_sync(EXECUTE, { command = "infill.metrics", arguments = {} }, 10000, other)
  report.other_project = { same_client = other_client.id == attached.id,
    clients = #vim.lsp.get_clients({ name = infill.name }),
    server_knows_root = vim.tbl_contains(metrics.result.workspaceFolders, vim.fn.resolve(other_root)) }

  -- 14. An edit made for version 0 (a document as opened, not yet edited) after the user typed is refused too.
  api.nvim_buf_set_lines(other, 0, 0, false, { "# typed" })
  local before_edit = H.text(other)
  local edit = { documentChanges = { { textDocument = { uri = vim.uri_from_bufnr(other), version = 0 },
    edits = { { range = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } },
      newText = "# edited\n" } } } } }
  local handler = other_client.handlers["workspace/applyEdit"] or vim.lsp.handlers["workspace/applyEdit"]
  local answer = handler(nil, { edit = edit }, { client_id = other_client.id, method = "workspace/applyEdit" })
  report.apply_edit_version_0 = { answer = answer, before = before_edit, after = H.text(other) }

  -- 15. The usual restart (stop the clients, :edit): the buffer gets a new server, not the one shutting down.
  local Client = require("vim.lsp.client")
  local early = {} -- notifications sent to a server before it answered initialize
  local class_notify = Client.notify
  Client.notify = function(self, method, params)
    if not self.initialized then
      early[#early + 1] = method
    end
    return class_notify(self, method, params)
  end
  vim.lsp.stop_client(vim.lsp.get_clients({ name = infill.name }))
  vim.cmd("edit!")
  -- A file of a third project opened at once, while the new server has not answered initialize yet: its folder
  -- may reach the server only after `initialized` (a notification before it was dropped, the server had no
  -- workspace yet).
  local third_root = vim.fn.tempname()
  vim.fn.mkdir(third_root .. "/.git", "p")
  vim.fn.writefile({ "z = 3" }, third_root .. "/third.py")
  vim.cmd.edit(third_root .. "/third.py")
  local third = api.nvim_get_current_buf()
  local restarted = H.wait_for("a new client after the restart", function()
    local found = infill.get_client(other)
    return found and found.id ~= other_client.id and found.initialized and found
  end, 20000)
  H.sleep(3000)   -- the old server's exit must not take the new one's buffer with it
  Client.notify = class_notify
  local folders = restarted:request_sync(EXECUTE, { command = "infill.metrics", arguments = {} }, 10000, third)
  report.restart = { attached = infill.get_client(other) ~= nil and infill.get_client(other).id == restarted.id,
    stopped = restarted:is_stopped(), third_attached = infill.get_client(third) == restarted, sent_early = early,
    server_knows_third_root = vim.tbl_contains(folders.result.workspaceFolders, vim.fn.resolve(third_root)) }
end, tonumber(os.getenv("SCENARIO_DEADLINE_MS")))
