-- Commands only; the server starts once you call require("diffusion_infill").setup().
if vim.g.loaded_diffusion_infill then
  return
end
vim.g.loaded_diffusion_infill = true

local function command(name, run, opts)
  vim.api.nvim_create_user_command(name, function(args)
    run(require("diffusion_infill"), args)
  end, opts)
end

-- The command line last run (`:` on a selection writes '<,'> into it, whether typed or run by a mapping). A range
-- typed in normal mode (`:1,2`) that happens to cover the lines of an old selection means those whole lines, not
-- the old selection's columns; the command-line history cannot tell the two apart when a mapping runs the command.
local last_command_line = nil
vim.api.nvim_create_autocmd("CmdlineLeave", {
  group = vim.api.nvim_create_augroup("diffusion_infill_commands", { clear = true }),
  callback = function()
    if vim.v.event.cmdtype == ":" then
      last_command_line = vim.fn.getcmdline()
    end
  end,
})

-- Whole lines unless the range is the visual selection ('<,'> or *): no range, one line number, or line numbers
-- typed over an old selection's lines.
local function whole_lines(args)
  local line = last_command_line or ""
  last_command_line = nil -- a command run from Lua (vim.cmd) had no command line of its own
  local visual = line:match("^[%s:]*'<%s*,%s*'>") or line:match("^[%s:]*%*")
  return args.range < 2 or not visual
end

-- The lines to work on, and whether as whole lines. A `<Cmd>` mapping runs the command in visual mode with no
-- range: the selection is still on screen, not yet in '< and '>; leaving visual mode puts it there.
local function command_range(args)
  local mode = vim.fn.mode()
  if args.range == 0 and (mode == "v" or mode == "V" or mode == "\22") then
    last_command_line = nil -- (a <Cmd> mapping leaves no command line of its own)
    vim.cmd("normal! \27")
    return vim.fn.line("'<"), vim.fn.line("'>"), false
  end
  return args.line1, args.line2, whole_lines(args)
end

command("InfillFill", function(infill, args)
  local line1, line2, lines = command_range(args)
  infill.fill(line1, line2, nil, { whole_lines = lines })
end, { range = true, desc = "Diffusion Infill: fill the selection (or the current line)" })

command("InfillRewrite", function(infill, args)
  -- No instruction on the command line: ask for one (it may be left empty).
  local line1, line2, lines = command_range(args)
  infill.rewrite(line1, line2, args.args ~= "" and args.args or nil, nil, { whole_lines = lines })
end, { range = true, nargs = "*", desc = "Diffusion Infill: rewrite the selection, optionally following an instruction" })

command("InfillSuggest", function(infill) infill.suggest() end, { desc = "Diffusion Infill: suggest at the cursor now" })
command("InfillNext", function(infill) infill.cycle(nil, 1) end, { desc = "Diffusion Infill: next candidate" })
command("InfillPrev", function(infill) infill.cycle(nil, -1) end, { desc = "Diffusion Infill: previous candidate" })
command("InfillDismiss", function(infill) infill.dismiss() end, { desc = "Diffusion Infill: hide the suggestion" })

command("InfillStatus", function(infill)
  local client = infill.get_client()
  if not client then
    vim.notify("Diffusion Infill: " .. infill.unreachable_reason(), vim.log.levels.WARN)
    return
  end
  infill.refresh_status(client, function()
    local status = infill.status() or {}
    local counters = ""
    if type(status.counters) == "table" then
      local names = vim.tbl_keys(status.counters)
      table.sort(names)
      for i, name in ipairs(names) do
        names[i] = ("%s %s"):format(name, tostring(status.counters[name]))
      end
      counters = "; " .. table.concat(names, ", ")
    end
    vim.notify(("Diffusion Infill: %s%s%s"):format(infill.statusline(),
      status.message and (" (" .. status.message .. ")") or "", counters))
  end)
end, { desc = "Diffusion Infill: show the server's status" })
