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

-- args.range < 2: no range or one line number given, so an old visual selection on the line does not count.
command("InfillFill", function(infill, args)
  infill.fill(args.line1, args.line2, nil, { whole_lines = args.range < 2 })
end, { range = true, desc = "Diffusion Infill: fill the selection (or the current line)" })

command("InfillRewrite", function(infill, args)
  -- No instruction on the command line: ask for one (it may be left empty).
  infill.rewrite(args.line1, args.line2, args.args ~= "" and args.args or nil, nil, { whole_lines = args.range < 2 })
end, { range = true, nargs = "*", desc = "Diffusion Infill: rewrite the selection, optionally following an instruction" })

command("InfillSuggest", function(infill) infill.suggest() end, { desc = "Diffusion Infill: suggest at the cursor now" })
command("InfillNext", function(infill) infill.cycle(nil, 1) end, { desc = "Diffusion Infill: next candidate" })
command("InfillPrev", function(infill) infill.cycle(nil, -1) end, { desc = "Diffusion Infill: previous candidate" })
command("InfillDismiss", function(infill) infill.dismiss() end, { desc = "Diffusion Infill: hide the suggestion" })

command("InfillStatus", function(infill)
  local client = infill.get_client()
  if not client then
    vim.notify("Diffusion Infill: the server is not attached to this buffer", vim.log.levels.WARN)
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
