"""The wiring: LSP messages in, handlers of ``documents``, ``convert`` and ``diagnose_command`` out.

Analysis runs in one worker thread, after the editor has been quiet for ``debounce`` seconds,
on the text the editor holds; a code action asked for before that analyses the text at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import os
from typing import Sequence

import libcst.matchers  # noqa: F401 - loaded here, not lazily on first use by one of two threads (gradfix.lazy)
from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

from gradfix import __version__
from gradfix.config import ConfigError
from gradfix.engine import applicable, fix_source
from gradfix.lsp import convert
from gradfix.lsp.diagnose_command import COMMAND as DIAGNOSE_COMMAND
from gradfix.lsp.diagnose_command import DiagnoseCommand
from gradfix.lsp.documents import Analysis, Document, Documents, analyse_text
from gradfix.lsp.settings import config_problem, rules_for
from gradfix.lsp.settings import reload as reload_settings
from gradfix.model import Finding
from gradfix.source import SourceError, SourceFile, read_source

log = logging.getLogger(__name__)

DEFAULT_DEBOUNCE = 0.05  # seconds of quiet after a change before analysing; initializationOptions.debounceMs


# The workDoneToken of the executeCommand request being handled: pygls hands commands their arguments only.
COMMAND_TOKEN: contextvars.ContextVar[lsp.ProgressToken | None] = contextvars.ContextVar("gradfix_command_token", default=None)


class GradfixProtocol(LanguageServerProtocol):
    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: lsp.ExecuteCommandParams):
        COMMAND_TOKEN.set(params.work_done_token)
        return (yield from super().lsp_workspace__execute_command(params))


class GradfixServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("gradfix", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
                         protocol_cls=GradfixProtocol)
        self.documents = Documents()
        self.debounce = DEFAULT_DEBOUNCE
        self.pending: dict[str, asyncio.Task] = {}
        self.analyser = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradfix-analyse")
        self.diagnose = DiagnoseCommand(self, self.publish_runtime)
        self.closed_with_runtime: set[str] = set()  # files not open that show a run's findings
        self.config_problems: dict[str, ConfigError] = {}  # pyproject.toml files that cannot be used, by absolute path

    @property
    def encoding(self) -> str:
        try:
            return str(self.workspace.position_encoding or "utf-16")
        except RuntimeError:
            return "utf-16"

    # ------------------------------------------------------------------ analysis

    def schedule(self, document: Document, delay: float) -> None:
        """Analyse the document after ``delay`` seconds unless it changes again first."""
        previous = self.pending.pop(document.uri, None)
        if previous is not None:
            previous.cancel()
        self.pending[document.uri] = asyncio.ensure_future(self._analyse_later(document, delay))

    async def _analyse_later(self, document: Document, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self.analyse_now(document)
        except asyncio.CancelledError:
            pass
        finally:
            if self.pending.get(document.uri) is asyncio.current_task():
                del self.pending[document.uri]

    async def analyse_now(self, document: Document) -> Analysis:
        """The analysis of the document's current text, computed if need be, and published."""
        current = document.current
        if current is not None:
            return current
        text = document.text
        loop = asyncio.get_running_loop()
        analysis = await loop.run_in_executor(self.analyser, analyse_text, document.path, text)
        if document.text != text or self.documents.get(document.uri) is not document:
            return analysis  # changed or closed meanwhile: a newer analysis is on its way
        # Mid-typing, a text that does not parse shows its syntax error, and the findings of the last text
        # that parsed on the lines left as they were, at their new places.
        self.documents.record(document, analysis)
        self.publish(document)
        self.config_problem(analysis.config_error)
        return analysis

    def publish(self, document: Document) -> None:
        positions = convert.Positions(document.text, self.encoding)
        diagnostics = [convert.diagnostic(f, positions, self._uri_of(document)) for f in self.documents.shown(document)]
        current = document.current
        if current is not None and current.error is not None:
            diagnostics.insert(0, convert.error_diagnostic(current.error, current.error_span, positions))
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=document.uri, diagnostics=diagnostics, version=document.version))

    # ------------------------------------------------------------------ configuration

    def config_problem(self, error: ConfigError | None) -> None:
        """A pyproject.toml that cannot be used: said once in a message, and shown on the file until it can be."""
        if error is None:
            return
        path = os.path.abspath(error.path)
        known = self.config_problems.get(path)
        if known is not None and known.problem == error.problem:
            return
        self.config_problems[path] = error
        self.window_show_message(lsp.ShowMessageParams(
            type=lsp.MessageType.Error,
            message=f"gradfix: {path}: {error.problem}; gradfix runs its default rules until it is fixed"))
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=convert.to_uri(path), diagnostics=[convert.config_diagnostic(error)]))

    def configuration_changed(self) -> None:
        """A pyproject.toml may have changed: read the settings again, clear the problems fixed, analyse again."""
        reload_settings()
        for path in list(self.config_problems):
            now = config_problem(path)
            if now is None or now.problem != self.config_problems[path].problem:
                del self.config_problems[path]
                self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                    uri=convert.to_uri(path), diagnostics=[]))
                self.config_problem(now)
        for document in self.documents.by_uri.values():
            document.analysis = None  # the rules may have changed
            self.schedule(document, 0)

    def _uri_of(self, document: Document):
        def uri_of(path: str) -> str:
            return document.uri if os.path.abspath(path) == os.path.abspath(document.path) else convert.to_uri(path)
        return uri_of

    def publish_runtime(self, by_path: dict[str, list[Finding]]) -> None:
        """A run's findings: shown on the open documents whose text is the one that ran, and on files on disk."""
        open_paths = {os.path.abspath(d.path): d for d in self.documents.by_uri.values()}
        for document in self.documents.by_uri.values():
            had = bool(document.runtime)
            document.runtime, document.runtime_text = (), None
            if had and os.path.abspath(document.path) not in by_path:
                self.publish(document)
        for uri in self.closed_with_runtime - {convert.to_uri(p) for p in by_path}:
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        self.closed_with_runtime = set()
        for path, findings in by_path.items():
            open_document = open_paths.get(path)
            try:
                on_disk = read_source(path).text
            except SourceError:
                continue
            if open_document is not None:
                if open_document.text != on_disk:
                    log.warning("gradfix: %s has unsaved changes; the run saw the file on disk", path)
                    self.window_log_message(lsp.LogMessageParams(
                        type=lsp.MessageType.Warning,
                        message=f"gradfix: {path} has unsaved changes; save it and run gradfix.diagnose again to see the run's findings there"))
                    continue
                open_document.runtime, open_document.runtime_text = tuple(findings), on_disk
                self.publish(open_document)
            else:
                positions = convert.Positions(on_disk, self.encoding)
                uri = convert.to_uri(path)
                self.closed_with_runtime.add(uri)
                self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                    uri=uri, diagnostics=[convert.diagnostic(f, positions) for f in findings]))

    # ------------------------------------------------------------------ code actions

    async def code_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        document = self.documents.get(params.text_document.uri)
        if document is None:
            return []
        pending = self.pending.pop(document.uri, None)
        if pending is not None:
            pending.cancel()
        await self.analyse_now(document)
        only = params.context.only
        actions: list[lsp.CodeAction] = []
        if _wanted(only, lsp.CodeActionKind.QuickFix):
            actions.extend(self._quick_fixes(document, params.range))
        if _wanted(only, convert.FIX_ALL_KIND):
            # fix-all re-analyses after each fix: worth it when asked for by name (on save), or once chosen
            lazy = not only and self._resolves_edits()
            if lazy:
                fix_all = self._fix_all_placeholder(document)
            else:
                fix_all = await asyncio.get_running_loop().run_in_executor(self.analyser, self._fix_all, document)
            if fix_all is not None:
                actions.append(fix_all)
        return actions

    def _resolves_edits(self) -> bool:
        text = self.client_capabilities.text_document
        action = text.code_action if text is not None else None
        support = action.resolve_support if action is not None else None
        return bool(support and "edit" in support.properties)

    def _fix_all_placeholder(self, document: Document) -> lsp.CodeAction | None:
        current = document.current
        if current is None or current.error is not None:
            return None
        count = sum(1 for f in current.findings if applicable(f.fix, include_unsafe=False))
        if not count:
            return None
        return lsp.CodeAction(title="gradfix: apply all safe fixes", kind=convert.FIX_ALL_KIND,
                              data={"uri": document.uri, "version": document.version})

    async def resolve(self, action: lsp.CodeAction) -> lsp.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        document = self.documents.get(data.get("uri", ""))
        if document is None or action.kind != convert.FIX_ALL_KIND or data.get("version") != document.version:
            return action  # the document changed since: no edit rather than a stale one
        await self.analyse_now(document)
        loop = asyncio.get_running_loop()
        resolved = await loop.run_in_executor(self.analyser, self._fix_all, document)
        return resolved if resolved is not None else action

    def _quick_fixes(self, document: Document, requested: lsp.Range) -> list[lsp.CodeAction]:
        positions = convert.Positions(document.text, self.encoding)
        uri_of = self._uri_of(document)
        fixes: list[lsp.CodeAction] = []
        noqa: list[lsp.CodeAction] = []
        noqa_offered: dict[tuple[int, str], lsp.CodeAction] = {}
        for finding, text in self.documents.fixable(document):
            diagnostic = convert.diagnostic(finding, positions, uri_of)
            if not _overlaps(diagnostic.range, requested):
                continue
            fix = finding.fix
            if fix is not None and applicable(fix, include_unsafe=True):
                fixes.append(lsp.CodeAction(
                    title=convert.fix_title(finding),
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    is_preferred=convert.is_preferred(fix),
                    edit=self._edit(document, convert.minimal_edits(text, fix.edits, positions)),
                ))
            key = (finding.span.start_line, finding.rule)
            if key in noqa_offered:
                # one suppression action per line and rule, silencing every finding that shares them
                offered = noqa_offered[key].diagnostics
                assert isinstance(offered, list), "made as a list below"
                offered.append(diagnostic)
                continue
            edit = convert.noqa_edit(text, finding.span.start_line, finding.rule, positions)
            if edit is not None:
                noqa_offered[key] = lsp.CodeAction(
                    title=f"Suppress {finding.rule} on this line (# noqa: {finding.rule})",
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    edit=self._edit(document, [edit]),
                )
                noqa.append(noqa_offered[key])
        return fixes + noqa

    def _fix_all(self, document: Document) -> lsp.CodeAction | None:
        current = document.current
        if current is None or current.error is not None:
            return None
        if not any(applicable(f.fix, include_unsafe=False) for f in current.findings):
            return None
        try:
            outcome = fix_source(SourceFile(document.path, document.text, "utf-8"), rules_for(document.path))
        except SourceError as error:
            log.warning("gradfix: fix-all on %s: %s", document.path, error)
            return None
        if not outcome.changed:
            return None
        edits = convert.text_edits(document.text, outcome.new_text, convert.Positions(document.text, self.encoding))
        return lsp.CodeAction(
            title=f"gradfix: apply all safe fixes ({len(outcome.applied)})",
            kind=convert.FIX_ALL_KIND,
            edit=self._edit(document, edits),
        )

    def _edit(self, document: Document, edits: list[lsp.TextEdit]) -> lsp.WorkspaceEdit:
        """Versioned edits where the client takes them, so a stale edit is refused rather than misapplied."""
        changes = self.client_capabilities.workspace
        versioned = bool(changes and changes.workspace_edit and changes.workspace_edit.document_changes)
        if versioned:
            return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(
                text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=document.uri, version=document.version),
                edits=edits,
            )])
        return lsp.WorkspaceEdit(changes={document.uri: edits})


def _wanted(only: Sequence[str] | None, kind: str) -> bool:
    """Whether a code action of ``kind`` answers a request limited to ``only`` (kinds are dotted hierarchies)."""
    if not only:
        return True
    return any(kind == want or kind.startswith(want + ".") for want in only)


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(p: lsp.Position):
        return (p.line, p.character)
    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def build() -> GradfixServer:
    server = GradfixServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(params: lsp.InitializeParams) -> None:
        options = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        if isinstance(options.get("debounceMs"), (int, float)) and options["debounceMs"] >= 0:
            server.debounce = options["debounceMs"] / 1000

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        document = server.documents.open(item.uri, item.text, item.version)
        server.schedule(document, 0)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        text = server.workspace.get_text_document(uri).source  # pygls applied the changes
        document = server.documents.change(uri, text, params.text_document.version)
        if document is not None:
            server.schedule(document, server.debounce)

    @server.feature(lsp.INITIALIZED)
    async def initialized(params: lsp.InitializedParams) -> None:
        workspace = server.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is not None and watched.dynamic_registration:
            asyncio.ensure_future(_watch_pyproject(server))

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    async def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        server.configuration_changed()  # a saved pyproject.toml may have changed the rules of every document

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def did_change_watched_files(params: lsp.DidChangeWatchedFilesParams) -> None:
        if any(change.uri.endswith("pyproject.toml") for change in params.changes):
            server.configuration_changed()

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = server.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        server.documents.close(uri)
        server.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(
        lsp.TEXT_DOCUMENT_CODE_ACTION,
        lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix, convert.FIX_ALL_KIND], resolve_provider=True),
    )
    async def code_action(params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return await server.code_actions(params)

    @server.feature(lsp.CODE_ACTION_RESOLVE)
    async def code_action_resolve(action: lsp.CodeAction) -> lsp.CodeAction:
        return await server.resolve(action)

    @server.command(DIAGNOSE_COMMAND)
    async def diagnose(*arguments) -> dict:
        return await server.diagnose(list(arguments), COMMAND_TOKEN.get())

    return server


async def _watch_pyproject(server: GradfixServer) -> None:
    """Ask the client to say when a pyproject.toml changes, saved in the editor or not (where it can watch files)."""
    try:
        await server.client_register_capability_async(lsp.RegistrationParams(registrations=[lsp.Registration(
            id="gradfix-pyproject", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=lsp.DidChangeWatchedFilesRegistrationOptions(
                watchers=[lsp.FileSystemWatcher(glob_pattern="**/pyproject.toml")]),
        )]))
    except Exception as error:  # noqa: BLE001 - a client that refuses still gets the settings again on each save
        log.info("gradfix: the client does not watch pyproject.toml for us: %s", error)


# Seconds a run has, after SIGTERM or SIGHUP to the server, to end its program and remove its folders.
STOP_WAIT = 10.0


def _end_runs_on_signals(server: GradfixServer) -> None:
    """SIGTERM or SIGHUP to the server cancels the diagnosis under way, waits for it to end its processes and
    remove its folders, kills whatever of it is left, and ends the server with 128 + the signal's number."""
    import signal

    from gradfix.runtime.containment import live_runs

    def stop(signum, frame):
        server.diagnose.stop(wait=STOP_WAIT)
        live_runs.kill_all()
        os._exit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


def serve() -> None:
    logging.basicConfig(level=os.environ.get("GRADFIX_LSP_LOG", "WARNING").upper(),
                        format="gradfix-lsp %(levelname)s %(name)s: %(message)s")
    server = build()
    _end_runs_on_signals(server)
    server.start_io()
