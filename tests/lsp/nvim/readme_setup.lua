-- Drives the README's Neovim setup (loaded as init.lua): open a buggy file, wait for gradfix's diagnostics,
-- run :GradfixDiagnose and wait for the server's answer. Writes what it saw as JSON to $GRADFIX_NVIM_OUT.
local out = { deprecated = {} }
local deprecate = vim.deprecate
vim.deprecate = function(name, ...)
  table.insert(out.deprecated, name)
  return deprecate(name, ...)
end
local messages = {}
vim.notify = function(message) table.insert(messages, message) end
local handlers = vim.lsp.handlers
local show = handlers["window/showMessage"]
handlers["window/showMessage"] = function(err, result, ctx, config)
  table.insert(messages, result.message)
  if show then return show(err, result, ctx, config) end
end

local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("GRADFIX_NVIM_FILE")))
  local buf = vim.api.nvim_get_current_buf()
  out.got_diagnostics = vim.wait(60000, function() return #vim.diagnostic.get(buf) > 0 end, 20)
  out.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    table.insert(out.diagnostics, { code = d.code, line = d.lnum, source = d.source })
  end
  vim.cmd("GradfixDiagnose")
  out.answered = vim.wait(30000, function()
    for _, message in ipairs(messages) do
      if message:find("diagnose", 1, true) then return true end
    end
    return false
  end, 20)
  out.messages = messages
end)
if not ok then out.error = tostring(err) end
local file = io.open(os.getenv("GRADFIX_NVIM_OUT"), "w")
file:write(vim.fn.json_encode(out))
file:close()
vim.cmd("qa!")
