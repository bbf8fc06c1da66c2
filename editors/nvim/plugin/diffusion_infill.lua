-- Commands only; the server starts once you call require("diffusion_infill").setup().
if vim.g.loaded_diffusion_infill then
  return
end
vim.g.loaded_diffusion_infill = true

vim.api.nvim_create_user_command("InfillFill", function(command)
  require("diffusion_infill").fill(command.line1, command.line2)
end, { range = true, desc = "Diffusion Infill: fill the selection (or the current line)" })

vim.api.nvim_create_user_command("InfillRewrite", function(command)
  require("diffusion_infill").rewrite(command.line1, command.line2, command.args)
end, { range = true, nargs = "*", desc = "Diffusion Infill: rewrite the selection, optionally following an instruction" })
