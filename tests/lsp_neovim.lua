-- Driven by tests/lsp_neovim.rs: headless Neovim (0.7's built-in client,
-- started with vim.lsp.start_client, which 0.7 has; vim.lsp.start came in
-- 0.8) opens a policy with an error, checks the diagnostic, then jumps to
-- a definition. Writes "ok" or "fail" and what it saw to $RESULT_FILE.

local out = os.getenv("RESULT_FILE")
local function finish(ok, msg)
  local f = io.open(out, "w")
  f:write((ok and "ok" or "fail") .. "\n" .. msg .. "\n")
  f:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  local file = os.getenv("POLICY_FILE")
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = "routec",
    cmd = { os.getenv("ROUTEC"), "lsp" },
    root_dir = vim.fn.fnamemodify(file, ":h"),
  })
  if not id then
    return finish(false, "vim.lsp.start_client failed")
  end
  vim.lsp.buf_attach_client(buf, id)

  if not vim.wait(10000, function() return #vim.diagnostic.get(buf) > 0 end, 20) then
    return finish(false, "no diagnostics within 10 s")
  end
  local d = vim.diagnostic.get(buf)[1]
  local lines = { string.format("diagnostic %s %d", tostring(d.code), d.lnum + 1) }

  -- Go to definition from the route target, through the client's own
  -- handler: the cursor must land on the provider's name.
  local line = tonumber(os.getenv("FROM_LINE"))
  local col = tonumber(os.getenv("FROM_COL"))
  vim.api.nvim_win_set_cursor(0, { line, col })
  vim.lsp.buf.definition()
  if not vim.wait(10000, function() return vim.api.nvim_win_get_cursor(0)[1] ~= line end, 20) then
    return finish(false, table.concat(lines, "\n") .. "\ndefinition did not move the cursor within 10 s")
  end
  local cur = vim.api.nvim_win_get_cursor(0)
  table.insert(lines, string.format("definition %s %d %d",
    vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ":t"), cur[1], cur[2]))
  vim.lsp.stop_client(id)
  finish(true, table.concat(lines, "\n"))
end)
if not ok then
  finish(false, "lua error: " .. tostring(err))
end
