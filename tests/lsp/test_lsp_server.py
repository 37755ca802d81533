"""`gradfix lsp` end to end: a real client opens fixtures, reads diagnostics, applies code actions."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, edits_of, open_document, published_for, replace_text, wait_until
from lsprotocol import types

from gradfix.engine import analyze, fix_source
from gradfix.lsp.convert import FIX_ALL_KIND, apply_lsp_edits
from gradfix.source import SourceFile

pytestmark = pytest.mark.asyncio

OUTSIDE = "computed-outside-tape/forward_pass_before_tape.py"


async def code_actions(client, uri, range_, only=None):
    return await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=range_,
        context=types.CodeActionContext(diagnostics=[], only=only),
    ))


def whole_document() -> types.Range:
    return types.Range(types.Position(0, 0), types.Position(10_000, 0))


async def test_open_publishes_rule_diagnostics_with_link_and_related(client, copy_fixture):
    path = copy_fixture(OUTSIDE)
    uri = open_document(client, path)
    params = await wait_until(client, lambda: published_for(client, uri))
    [diagnostic] = params.diagnostics
    assert diagnostic.code == "GF001"
    assert diagnostic.source == "gradfix"
    assert diagnostic.range.start == types.Position(17, 8)  # fixture's .expected: line 18
    assert diagnostic.code_description.href.endswith("GF001-computed-outside-tape.md")
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    related = diagnostic.related_information
    assert related and all(item.location.uri == uri for item in related)
    assert {item.location.range.start.line for item in related} >= {18, 20}  # the tape block, the gradient call


async def test_quick_fix_is_minimal_and_gives_the_expected_program(client, copy_fixture):
    path = copy_fixture(OUTSIDE)
    text = path.read_text()
    uri = open_document(client, path)
    params = await wait_until(client, lambda: published_for(client, uri))
    actions = await code_actions(client, uri, params.diagnostics[0].range)
    [fix] = [a for a in actions if a.title.startswith("Fix GF001")]
    assert fix.kind == types.CodeActionKind.QuickFix and fix.is_preferred
    assert fix.diagnostics[0].code == "GF001"
    edits = edits_of(fix, uri)
    assert all(len(e.new_text) < 80 for e in edits)  # not a whole-document replacement
    assert apply_lsp_edits(text, edits) == (FIXTURES / OUTSIDE).with_name("forward_pass_before_tape.fixed.py").read_text()
    noqa = [a for a in actions if a.title.startswith("Suppress GF001")]
    assert len(noqa) == 1 and not noqa[0].is_preferred


async def test_unsafe_fix_is_labelled_and_not_preferred(client, copy_fixture):
    path = copy_fixture("seed/example1.py")
    uri = open_document(client, path)
    params = await wait_until(client, lambda: published_for(client, uri))
    [diagnostic] = [d for d in params.diagnostics if d.code == "GF003"]
    actions = await code_actions(client, uri, diagnostic.range)
    [fix] = [a for a in actions if "GF003" in a.title and not a.title.startswith("Suppress")]
    assert fix.title.startswith("Unsafe fix GF003: ") and len(fix.title) <= 80
    assert not fix.is_preferred
    assert apply_lsp_edits(path.read_text(), edits_of(fix, uri)) == (FIXTURES / "seed/example1.fixed.py").read_text()


async def test_diagnostics_follow_changes_of_the_editor_text_not_the_file(client, copy_fixture):
    path = copy_fixture(OUTSIDE)
    text = path.read_text()
    uri = open_document(client, path)
    await wait_until(client, lambda: published_for(client, uri, 1))
    replace_text(client, uri, "# one\n# two\n" + text, 2)
    params = await wait_until(client, lambda: published_for(client, uri, 2))
    assert [(d.code, d.range.start.line) for d in params.diagnostics] == [("GF001", 19)]
    fixed = (FIXTURES / OUTSIDE).with_name("forward_pass_before_tape.fixed.py").read_text()
    replace_text(client, uri, fixed, 3)
    params = await wait_until(client, lambda: published_for(client, uri, 3))
    assert list(params.diagnostics) == []
    assert path.read_text() == text  # the file on disk was never the one analysed


async def test_incremental_changes_are_applied_before_analysis(client, copy_fixture):
    path = copy_fixture(OUTSIDE)
    uri = open_document(client, path)
    await wait_until(client, lambda: published_for(client, uri, 1))
    # type the fix by hand: delete the forward pass before the tape, re-type it inside
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[
            types.TextDocumentContentChangePartial(range=types.Range(types.Position(17, 0), types.Position(18, 0)), text=""),
            types.TextDocumentContentChangePartial(range=types.Range(types.Position(18, 0), types.Position(18, 0)),
                                                   text="            logits = model(x_batch, training=True)\n"),
        ],
    ))
    params = await wait_until(client, lambda: published_for(client, uri, 2))
    assert list(params.diagnostics) == []


async def test_syntax_error_mid_typing_is_a_diagnostic_and_stale_positions_are_dropped(client, copy_fixture):
    broken_path = copy_fixture(OUTSIDE)
    other_path = copy_fixture("seed/example1.py")
    uri = open_document(client, broken_path)
    first = await wait_until(client, lambda: published_for(client, uri, 1))
    assert [(d.code, d.range.start.line) for d in first.diagnostics] == [("GF001", 17)]
    text = broken_path.read_text()
    # two lines typed above the finding, and the loss line left unclosed below it
    broken = "# one\n# two\n" + text.replace("loss = loss_fn(y_batch, logits)", "loss = loss_fn(y_batch, logits")
    replace_text(client, uri, broken, 2)
    params = await wait_until(client, lambda: published_for(client, uri, 2))
    syntax, *rest = params.diagnostics
    assert syntax.severity == types.DiagnosticSeverity.Error and syntax.source == "gradfix"
    assert syntax.message == "Syntax error: '(' was never closed"
    assert (syntax.range.start.line, syntax.range.start.character) == (21, 26)  # the unclosed `(`, where it is now
    # the finding on an unchanged line moved with it; none is left at its old line
    assert [(d.code, d.range.start.line) for d in rest] == [("GF001", 19)]
    other = open_document(client, other_path)
    assert (await wait_until(client, lambda: published_for(client, other, 1))).diagnostics
    actions = await code_actions(client, uri, rest[0].range)
    assert not actions  # no fix computed on a text that no longer exists
    # an edit of the finding's own line while the text still does not parse: the finding is not shown there
    replace_text(client, uri, broken.replace("logits = model(x_batch, training=True)", "logits = model(x_batch)"), 3)
    params = await wait_until(client, lambda: published_for(client, uri, 3))
    assert [d.message.split(":")[0] for d in params.diagnostics] == ["Syntax error"]
    replace_text(client, uri, text, 4)
    again = await wait_until(client, lambda: published_for(client, uri, 4))
    assert [(d.code, d.range.start.line) for d in again.diagnostics] == [("GF001", 17)]


async def test_a_pyproject_toml_gradfix_cannot_use_is_shown_and_marked(client, copy_fixture, tmp_path):
    config = tmp_path / "pyproject.toml"
    config.write_text('[project]\nname = "x"\n\n[tool.gradfix]\nselct = ["GF003"]\n')
    path = copy_fixture(OUTSIDE)
    uri = open_document(client, path)
    # the default rules run meanwhile
    assert [d.code for d in (await wait_until(client, lambda: published_for(client, uri, 1))).diagnostics] == ["GF001"]
    [shown] = await wait_until(client, lambda: [m for m in client.messages if "pyproject.toml" in m.message])
    assert shown.type == types.MessageType.Error
    assert f"{config}: [tool.gradfix] selct: unknown key (did you mean select?)" in shown.message
    assert "default rules" in shown.message
    on_config = await wait_until(client, lambda: published_for(client, config.as_uri()))
    [diagnostic] = on_config.diagnostics
    assert diagnostic.range == types.Range(types.Position(4, 0), types.Position(4, 5))  # `selct`
    assert diagnostic.severity == types.DiagnosticSeverity.Error and "unknown key" in diagnostic.message
    # said once, not on every change
    replace_text(client, uri, "# edited\n" + path.read_text(), 2)
    await wait_until(client, lambda: published_for(client, uri, 2))
    assert len([m for m in client.messages if "pyproject.toml" in m.message]) == 1
    # fixed in another editor: the client, asked to watch pyproject.toml files, says so; the diagnostic goes,
    # and the configured rules apply
    [watch] = await wait_until(client, lambda: client.registrations)
    assert watch.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert [w["globPattern"] for w in watch.register_options["watchers"]] == ["**/pyproject.toml"]
    config.write_text('[project]\nname = "x"\n\n[tool.gradfix]\nselect = ["GF003"]\n')
    client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
        changes=[types.FileEvent(uri=config.as_uri(), type=types.FileChangeType.Changed)]))
    cleared = await wait_until(client, lambda: [p for p in client.published if p.uri == config.as_uri() and not p.diagnostics])
    assert cleared
    await wait_until(client, lambda: (p := published_for(client, uri)) is not None and not p.diagnostics)
    # broken another way, and a document saved: said again, for the new problem
    config.write_text('[tool.gradfix]\nselect = ["GF999"]\n')
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
    await wait_until(client, lambda: [m for m in client.messages if "unknown rule GF999" in m.message])
    on_config = await wait_until(client, lambda: (p := published_for(client, config.as_uri())) and p.diagnostics and p)
    assert on_config.diagnostics[0].range.start.line == 1


async def test_a_diagnostic_says_its_first_line_then_the_details(client, copy_fixture):
    path = copy_fixture("seed/example1.py")
    uri = open_document(client, path)
    [diagnostic] = [d for d in (await wait_until(client, lambda: published_for(client, uri))).diagnostics if d.code == "GF003"]
    [finding] = [f for f in analyze(SourceFile(str(path), path.read_text(), "utf-8")) if f.rule == "GF003"]
    first, *rest = diagnostic.message.split("\n")
    assert first == finding.message and len(first) <= 80
    assert rest == [finding.detail]
    assert {item.message for item in diagnostic.related_information} == {r.message for r in finding.related}


async def test_noqa_is_offered_once_per_line(client, tmp_path):
    path = tmp_path / "train.py"
    path.write_text(
        "import numpy as np\nimport tensorflow as tf\n\n\ndef my_loss(y_true, y_pred):\n    err = y_pred - y_true\n"
        "    return float(tf.reduce_mean(err * err)) + np.sum(np.abs(err)) * 0.01\n\n\n"
        "with tf.GradientTape() as tape:\n    loss = my_loss(y, model(x))\ngrads = tape.gradient(loss, model.trainable_variables)\n")
    uri = open_document(client, path)
    params = await wait_until(client, lambda: published_for(client, uri))
    on_line = [d for d in params.diagnostics if d.range.start.line == 6]
    assert len(on_line) >= 2 and {d.code for d in on_line} == {"GF004"}
    actions = await code_actions(client, uri, types.Range(types.Position(6, 0), types.Position(6, 80)))
    [noqa] = [a for a in actions if a.title.startswith("Suppress")]
    assert noqa.title == "Suppress GF004 on this line (# noqa: GF004)"
    assert len(noqa.diagnostics) == len(on_line)  # it silences them all
    assert all(len(a.title) <= 80 for a in actions)


async def test_fix_all_applies_every_safe_fix(client, copy_fixture):
    path = copy_fixture("variable-rebound-to-tensor/linear_regression.py")
    text = path.read_text()
    uri = open_document(client, path)
    params = await wait_until(client, lambda: published_for(client, uri))
    assert len(params.diagnostics) == 2
    actions = await code_actions(client, uri, whole_document(), only=[types.CodeActionKind.SourceFixAll])
    [fix_all] = actions
    assert fix_all.kind == FIX_ALL_KIND
    result = apply_lsp_edits(text, edits_of(fix_all, uri))
    assert result == (FIXTURES / "variable-rebound-to-tensor/linear_regression.fixed.py").read_text()
    assert result == fix_source(SourceFile(str(path), text, "utf-8")).new_text
    quick = await code_actions(client, uri, whole_document(), only=[types.CodeActionKind.QuickFix])
    assert quick and all(a.kind == types.CodeActionKind.QuickFix for a in quick)


async def test_noqa_action_silences_the_finding(client, copy_fixture):
    path = copy_fixture(OUTSIDE)
    text = path.read_text()
    uri = open_document(client, path)
    params = await wait_until(client, lambda: published_for(client, uri, 1))
    actions = await code_actions(client, uri, params.diagnostics[0].range)
    [noqa] = [a for a in actions if a.title.startswith("Suppress GF001")]
    new_text = apply_lsp_edits(text, edits_of(noqa, uri))
    assert new_text.splitlines()[17] == "        logits = model(x_batch, training=True)  # noqa: GF001"
    replace_text(client, uri, new_text, 2)
    assert list((await wait_until(client, lambda: published_for(client, uri, 2))).diagnostics) == []


async def test_opening_a_program_never_runs_it(client, tmp_path):
    marker = tmp_path / "ran"
    program = tmp_path / "train.py"
    program.write_text(f"open({str(marker)!r}, 'w').close()\nimport tensorflow as tf\n")
    uri = open_document(client, program)
    assert list((await wait_until(client, lambda: published_for(client, uri))).diagnostics) == []
    assert not marker.exists()


async def test_diagnose_without_a_target_says_how_to_set_one(client):
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="gradfix.diagnose"))
    assert result["status"] == "no-target"
    assert any("diagnose.target" in m.message for m in client.messages)


async def test_fix_all_offered_among_all_actions_is_resolved_on_choice(client, copy_fixture):
    path = copy_fixture("variable-rebound-to-tensor/linear_regression.py")
    text = path.read_text()
    uri = open_document(client, path)
    await wait_until(client, lambda: published_for(client, uri))
    actions = await code_actions(client, uri, whole_document())
    [placeholder] = [a for a in actions if a.kind == FIX_ALL_KIND]
    assert placeholder.edit is None  # computed only when chosen (codeAction/resolve)
    resolved = await client.code_action_resolve_async(placeholder)
    result = apply_lsp_edits(text, edits_of(resolved, uri))
    assert result == (FIXTURES / "variable-rebound-to-tensor/linear_regression.fixed.py").read_text()
