"""`gradfix lsp`: the language server, so an editor shows gradfix's findings as you type.

- ``server``: the wiring of LSP messages to the handlers below (pygls);
- ``documents``: what the editor holds, its findings, and the debounce of re-analysis;
- ``convert``: findings to diagnostics, fixes to the smallest text edits, positions in the client's encoding;
- ``diagnose_command``: ``gradfix.diagnose``, the runtime detector in a child process, on request only;
- ``settings``: the workspace's ``[tool.gradfix]`` as the server needs it.
"""
