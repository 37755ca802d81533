"""``gradfix.diagnose``: run the training entry point once under the runtime detector, on request only.

The run happens in a child process started by ``diagnose_target`` in a worker thread, so
the server keeps answering while it runs; progress is reported as LSP work-done progress,
and either ``$/cancelRequest`` or a work-done cancel sets the event that stops the child.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from lsprotocol import types as lsp

from gradfix.lsp.settings import diagnose_settings
from gradfix.model import Finding

log = logging.getLogger(__name__)

COMMAND = "gradfix.diagnose"
DEFAULT_TIMEOUT = 120.0
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class Request:
    target: str
    args: tuple[str, ...]
    cwd: str
    timeout: float
    python: str
    unsafe_fixes: bool


def parse_arguments(arguments: list[Any] | None, folder: str) -> Request | str:
    """The run asked for: ``[{"target", "args", "timeout", "python", "unsafeFixes", "cwd"}]`` or ``["train.py"]``,
    completed from ``[tool.gradfix] diagnose``; a message when there is no target."""
    given: dict[str, Any] = {}
    if arguments:
        first = arguments[0]
        if isinstance(first, str):
            given = {"target": first, "args": [str(a) for a in arguments[1:]]}
        elif isinstance(first, dict):
            given = dict(first)
    configured = diagnose_settings(folder)
    target = given.get("target") or configured.target
    if not target:
        return ("no training entry point to run: set `[tool.gradfix] diagnose.target` in pyproject.toml "
                "or pass {\"target\": \"train.py\"} to the gradfix.diagnose command")
    timeout = given.get("timeout") or configured.timeout or DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        return f"the timeout {timeout!r} is not a finite number of seconds above 0"
    cwd = os.path.abspath(given.get("cwd") or configured.root or folder)
    return Request(
        target=_within(str(target), cwd),
        args=tuple(str(a) for a in given.get("args") or ()),
        cwd=cwd,
        timeout=float(timeout),
        python=str(given.get("python") or sys.executable),
        unsafe_fixes=bool(given.get("unsafeFixes", configured.unsafe_fixes)),
    )


def _within(target: str, cwd: str) -> str:
    """An editor sends the file's absolute path; a file inside the run's folder is run and named relative to it, as
    `gradfix diagnose train.py` names it (messages then fit a notification)."""
    if os.path.isabs(target):
        path = os.path.abspath(target)
        if os.path.commonpath([cwd, path]) == cwd:
            return os.path.relpath(path, cwd)
    return target


def run_diagnosis(request: Request, cancel: threading.Event, progress: Callable[[str], None] | None = None):
    from gradfix.diagnose import diagnose_target

    return diagnose_target(
        request.target, request.args, python=request.python, timeout=request.timeout, cwd=request.cwd,
        fix=True, unsafe_fixes=request.unsafe_fixes, quiet=True, cancel=cancel, progress=progress,
    )


class DiagnoseCommand:
    """One run at a time; ``publish(findings_by_path)`` hands the run's findings to the documents."""

    def __init__(self, server, publish: Callable[[dict[str, list[Finding]]], None], runner=run_diagnosis):
        self.server = server
        self.publish = publish
        self.runner = runner
        self.running: threading.Event | None = None
        self.idle = threading.Event()  # set while no run is under way (its processes ended, its folders removed)
        self.idle.set()
        self.stage = "running its first training step"  # the run's latest step, set from the worker thread

    def stop(self, wait: float) -> None:
        """Cancel the run under way, if any, and wait up to ``wait`` seconds for it to end."""
        cancel = self.running
        if cancel is not None:
            cancel.set()
        self.idle.wait(wait)

    async def __call__(self, arguments: list[Any] | None, work_done_token: lsp.ProgressToken | None = None) -> dict:
        folder = self._folder()
        request = parse_arguments(arguments, folder)
        if isinstance(request, str):
            self._show(lsp.MessageType.Error, f"gradfix: {request}")
            return {"status": "no-target", "error": request}
        if self.running is not None:
            self._show(lsp.MessageType.Warning, "gradfix: a diagnosis is already running")
            return {"status": "busy", "error": "a diagnosis is already running"}
        cancel = self.running = threading.Event()
        self.idle.clear()
        self._watch_cancel_request(cancel)
        token = await self._progress_token(work_done_token)
        progress = self.server.work_done_progress
        name = os.path.basename(request.target)
        if token is not None:
            progress.begin(token, lsp.WorkDoneProgressBegin(
                title=f"gradfix: diagnosing {name}", message="running its first training step", cancellable=True))
            cancelled = progress.tokens.get(token)
            if cancelled is not None:
                cancelled.add_done_callback(lambda future: cancel.set() if future.cancelled() else None)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        job = loop.run_in_executor(None, functools.partial(self._run, request, cancel))
        try:
            while True:
                done, _ = await asyncio.wait({job}, timeout=TICK_SECONDS)
                if done:
                    break
                if token is not None:
                    what = "stopping" if cancel.is_set() else self.stage
                    progress.report(token, lsp.WorkDoneProgressReport(
                        message=f"{what}, {time.monotonic() - started:.0f} s", cancellable=not cancel.is_set()))
            result = job.result()
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.shield(job)
            raise
        finally:
            self.running = None
        summary = self._summarise(request, result)
        if token is not None:
            progress.end(token, lsp.WorkDoneProgressEnd(message=summary["message"]))
        return summary

    def _run(self, request: Request, cancel: threading.Event):
        def progress(line: str) -> None:
            self.stage = line

        try:
            return self.runner(request, cancel, progress)
        except Exception as error:  # noqa: BLE001 - the server outlives a detector that fails
            log.exception("gradfix.diagnose failed")
            return error
        finally:
            self.idle.set()

    def _summarise(self, request: Request, result) -> dict:
        if isinstance(result, Exception):
            message = f"gradfix could not diagnose {request.target}: internal error {result.__class__.__name__}: {result}"
            self._show(lsp.MessageType.Error, message)
            return {"status": "error", "message": message, "error": str(result), "findings": 0}
        facts = result.facts
        findings = list(result.findings) if facts.status == "ok" else list(getattr(result, "crash_findings", []))
        by_path: dict[str, list[Finding]] = {}
        for finding in findings:
            path = finding.span.path
            if path and not os.path.isabs(path):
                path = os.path.join(request.cwd, path)
            by_path.setdefault(os.path.abspath(path), []).append(finding)
        self.publish(by_path)
        error = facts.error.message if facts.error is not None else None
        if facts.status == "ok":
            verified = sum(1 for f in findings if f.fix is not None and f.fix.verified is True)
            message = (f"{len(findings)} finding{'s' * (len(findings) != 1)} from the run"
                       + (f", {verified} with a verified fix" if verified else "") if findings
                       else "every trainable variable gets a gradient")
            self._show(lsp.MessageType.Info, f"gradfix: {request.target}: {message}")
        else:
            message = f"could not diagnose {request.target}: {facts.status}" + (f" ({error})" if error else "")
            self._show(lsp.MessageType.Warning if facts.status == "cancelled" else lsp.MessageType.Error, f"gradfix: {message}")
        return {"status": facts.status, "message": message, "error": error, "findings": len(findings),
                "files": sorted(by_path)}

    def _watch_cancel_request(self, cancel: threading.Event) -> None:
        # pygls runs a command inside its own executeCommand handler: `$/cancelRequest` cancels that
        # request's future (kept by the protocol under the request id), not this coroutine.
        protocol = self.server.protocol
        future = getattr(protocol, "_request_futures", {}).get(protocol.msg_id)
        if future is not None:
            future.add_done_callback(lambda f: cancel.set() if f.cancelled() else None)

    async def _progress_token(self, given: lsp.ProgressToken | None) -> lsp.ProgressToken | None:
        if given is not None:
            return given
        window = self.server.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"gradfix-diagnose-{uuid.uuid4()}"
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception as error:  # noqa: BLE001 - no progress bar is not a reason to refuse the run
            log.warning("gradfix: the client refused a progress token: %s", error)
            return None
        return token

    def _folder(self) -> str:
        workspace = self.server.workspace
        folders = list(workspace.folders.values()) if workspace.folders else []
        if folders:
            from gradfix.lsp.documents import path_of

            return path_of(folders[0].uri)
        return workspace.root_path or os.getcwd()

    def _show(self, kind: lsp.MessageType, message: str) -> None:
        self.server.window_show_message(lsp.ShowMessageParams(type=kind, message=message))
        self.server.window_log_message(lsp.LogMessageParams(type=kind, message=message))
