-- `routec lsp` for `.route` files in Neovim. Put this file on your
-- runtimepath (e.g. ~/.config/nvim/plugin/routec.lua), or paste it into
-- init.lua. Works with Neovim 0.7 and later.

vim.cmd([[autocmd BufRead,BufNewFile *.route setfiletype route]])

vim.api.nvim_create_autocmd("FileType", {
  pattern = "route",
  callback = function(args)
    vim.bo[args.buf].commentstring = "# %s"
    local root = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ":p:h")
    local config = { name = "routec", cmd = { "routec", "lsp" }, root_dir = root }
    if vim.lsp.start then
      -- 0.8 and later: reuses a running server for the same root.
      vim.lsp.start(config)
    else
      -- 0.7: one client per directory, attached by hand.
      _G.routec_clients = _G.routec_clients or {}
      local id = _G.routec_clients[root]
      if not id then
        id = vim.lsp.start_client(config)
        _G.routec_clients[root] = id
      end
      if id then
        vim.lsp.buf_attach_client(args.buf, id)
      end
    end
  end,
})
