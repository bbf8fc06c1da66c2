-- The config of the Neovim a person would run, for tests/test_editor_nvim_tmux.py: the plugin from this checkout,
-- the test's server command and fast settings, a status line showing the server's state.
vim.opt.runtimepath:prepend(os.getenv("PLUGIN_DIR"))
vim.cmd.runtime("plugin/diffusion_infill.lua")
vim.cmd("filetype plugin indent on")
vim.o.laststatus = 2
vim.o.statusline = "%f %= %{v:lua.require'diffusion_infill'.statusline()} "
require("diffusion_infill").setup({
  cmd = vim.json.decode(os.getenv("SERVER_CMD")),
  settings = vim.json.decode(os.getenv("INFILL_SETTINGS")),
})
