-- Drives Neovim's built-in LSP client against `gradfix lsp`: open a file, wait for gradfix's
-- diagnostics, ask for code actions, apply the preferred quick fix through the editor, save,
-- and wait for the diagnostics to clear. Writes what it saw as JSON to $GRADFIX_NVIM_OUT.
local out = {}
local function finish()
  local file = io.open(os.getenv("GRADFIX_NVIM_OUT"), "w")
  file:write(vim.fn.json_encode(out))
  file:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("GRADFIX_NVIM_FILE")))
  local buf = vim.api.nvim_get_current_buf()
  local client_id = vim.lsp.start_client({
    name = "gradfix",
    cmd = { os.getenv("GRADFIX_NVIM_PYTHON"), "-m", "gradfix", "lsp" },
    root_dir = vim.fn.fnamemodify(os.getenv("GRADFIX_NVIM_FILE"), ":h"),
    init_options = { debounceMs = 20 },
  })
  vim.lsp.buf_attach_client(buf, client_id)
  out.attached = vim.wait(60000, function()
    local client = vim.lsp.get_client_by_id(client_id)
    return client ~= nil and client.initialized
  end, 20)
  out.got_diagnostics = vim.wait(60000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
  out.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(out.diagnostics, { code = d.code, line = d.lnum, col = d.col, source = d.source })
  end
  local first = vim.diagnostic.get(buf)[1]
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(buf) },
    range = { start = { line = first.lnum, character = first.col }, ["end"] = { line = first.end_lnum, character = first.end_col } },
    context = { diagnostics = vim.lsp.diagnostic.get_line_diagnostics(buf, first.lnum) },
  }
  local responses = vim.lsp.buf_request_sync(buf, "textDocument/codeAction", params, 30000)
  out.titles = {}
  local chosen
  for _, response in pairs(responses or {}) do
    for _, action in ipairs(response.result or {}) do
      table.insert(out.titles, action.title)
      if action.isPreferred and chosen == nil then chosen = action end
    end
  end
  if chosen ~= nil then
    vim.lsp.util.apply_workspace_edit(chosen.edit, "utf-16")
    out.applied = chosen.title
    vim.cmd("write")
    out.cleared = vim.wait(60000, function() return #vim.diagnostic.get(buf) == 0 end, 20)
  end
end)
if not ok then out.error = tostring(err) end
finish()
