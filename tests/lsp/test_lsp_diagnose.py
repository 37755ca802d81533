"""`gradfix.diagnose` through the server: the runtime detector in a child, progress, cancel, a hang."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from conftest import FIXTURES, edits_of, open_document, published_for, wait_until
from lsprotocol import types

from gradfix.lsp.convert import apply_lsp_edits

pytestmark = [pytest.mark.asyncio, pytest.mark.tensorflow]


def execute(client, arguments, token=None):
    return client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="gradfix.diagnose", arguments=arguments, work_done_token=token))


async def test_diagnose_publishes_runtime_findings_with_verified_fixes(client, tmp_path):
    path = tmp_path / "outside_tape.py"
    shutil.copy(FIXTURES / "runtime" / "outside_tape.py", path)
    text = path.read_text()
    uri = open_document(client, path)
    await wait_until(client, lambda: published_for(client, uri, 1))
    static_publishes = len(client.published)
    client.progress_reports["run-1"] = []
    result = await execute(client, [{"target": "outside_tape.py", "cwd": str(tmp_path), "timeout": 240}], "run-1")
    assert result["status"] == "ok" and result["findings"] >= 1, result
    reports = client.progress_reports["run-1"]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    params = await wait_until(client, lambda: len(client.published) > static_publishes and published_for(client, uri))
    [runtime] = [d for d in params.diagnostics if d.source == "gradfix (run)"]
    assert runtime.code == "GF001" and runtime.range.start.line == 9
    assert "verified" in runtime.message
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=runtime.range,
        context=types.CodeActionContext(diagnostics=[runtime])))
    [fix] = [a for a in actions if a.title.startswith("Fix GF001")]
    assert fix.title.endswith(" (verified)") and len(fix.title) <= 80 and fix.is_preferred
    assert fix.title == "Fix GF001: Open the GradientTape before the forward pass (verified)"
    fixed = apply_lsp_edits(text, edits_of(fix, uri))
    assert "    with tf.GradientTape() as tape:\n        pred = model(x, training=True)\n" in fixed


async def test_diagnose_can_be_cancelled_and_the_server_survives_a_hang(client, tmp_path):
    shutil.copy(FIXTURES / "runtime" / "faults" / "hangs.py", tmp_path / "hangs.py")
    client.progress_reports["run-2"] = []
    running = asyncio.ensure_future(execute(client, [{"target": "hangs.py", "cwd": str(tmp_path), "timeout": 300}], "run-2"))
    await wait_until(client, lambda: client.progress_reports["run-2"])  # begun
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token="run-2"))
    result = await asyncio.wait_for(running, 60)
    assert result["status"] == "cancelled"
    # a run that hangs until its timeout is stopped, and the server answers afterwards
    result = await execute(client, [{"target": "hangs.py", "cwd": str(tmp_path), "timeout": 3}])
    assert result["status"] == "timeout"
    path = tmp_path / "hangs.py"
    uri = open_document(client, path)
    assert (await wait_until(client, lambda: published_for(client, uri))) is not None


async def test_diagnose_of_a_crashing_program_reports_it(client, tmp_path):
    shutil.copy(FIXTURES / "runtime" / "faults" / "crash_before_gradient.py", tmp_path / "crash.py")
    result = await execute(client, [{"target": "crash.py", "cwd": str(tmp_path), "timeout": 240}])
    assert result["status"] == "crashed" and result["error"]
    assert any("could not diagnose crash.py: crashed" in m.message for m in client.messages)
