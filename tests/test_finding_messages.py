"""What a finding says: one short first line (at most 80 characters, one style), the rest as details.

Checked on every rule's invalid examples, on every fixture program, and on the runtime findings of every recorded
repair run; then where the details go: the terminal's indented block, the language server's lines after the first
and its code-action titles, the JSON report's ``detail``.
"""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from click.testing import CliRunner
from fixture_cases import FIXTURES, repair_cases

from gradfix import messages
from gradfix.cli import main
from gradfix.engine import analyze, select_rules
from gradfix.lsp import convert
from gradfix.model import Evidence, Finding, Span
from gradfix.registry import all_rules
from gradfix.source import SourceFile


def _first_line_problems(message: str) -> list[str]:
    problems = []
    if len(message) > messages.LIMIT:
        problems.append(f"{len(message)} characters")
    if "\n" in message:
        problems.append("more than one line")
    if not message or not (message[0].isupper() or message[0].isdigit() or message[0] == "`"):
        problems.append("does not start with a capital letter, a number or code")
    if message.endswith("."):
        problems.append("ends with a full stop")
    if re.search(r"\bit\b", re.sub(r"`[^`]*`", "", message), re.IGNORECASE):
        problems.append('says "it"')  # a first line names what it is about
    return problems


def _example_findings():
    for rule in all_rules():
        for index, example in enumerate(rule.INVALID):
            source = SourceFile("example.py", textwrap.dedent(example.code), "utf-8")
            for finding in analyze(source, [rule()]):
                yield pytest.param(finding, id=f"{rule.code}-invalid-{index}-{finding.span.start_line}")


EXAMPLES = list(_example_findings())


@pytest.mark.parametrize("finding", EXAMPLES)
def test_every_rule_example_has_a_short_first_line_and_details(finding):
    assert not _first_line_problems(finding.message), (finding.message, _first_line_problems(finding.message))
    assert len(finding.detail) > len(finding.message) // 2, "the why and what to do belong in the details"
    assert finding.detail[0].isupper() or finding.detail[0] == "`"
    if finding.fix is not None:
        description = finding.fix.description
        assert description[0].isupper() or description[0] == "`", description
        title = convert.fix_title(finding)
        assert len(title) <= messages.LIMIT and "\n" not in title, title


def test_every_rule_is_covered():
    assert {param.values[0].rule for param in EXAMPLES} == {rule.code for rule in all_rules()}


def test_every_fixture_finding_has_a_short_first_line():
    seen = 0
    for path in sorted(FIXTURES.rglob("*.py")):
        if path.name.endswith((".fixed.py", ".intended.py")):
            continue
        text = path.read_text(encoding="utf-8")
        for finding in analyze(SourceFile(str(path), text, "utf-8"), select_rules()):
            seen += 1
            assert not _first_line_problems(finding.message), (str(path), finding.message)
    assert seen > 50


def test_every_recorded_run_gives_short_first_lines():
    """Runtime findings, made from the recorded runs of the repair fixtures (no TensorFlow needed)."""
    from gradfix.diagnose import diagnose
    from gradfix.runtime.record_facts import load

    seen = 0
    for case in repair_cases():
        if not case.facts.exists():
            continue
        facts, _ = load(case.facts)
        for finding in diagnose(facts).findings:
            seen += 1
            assert not _first_line_problems(finding.message), (case.id, finding.message)
            assert finding.evidence is not Evidence.STATIC and finding.variables
    assert seen > 20


def test_many_variables_are_summarised_not_listed():
    keys = [f"model/dense_{n // 2}/{'kernel' if n % 2 == 0 else 'bias'}" for n in range(122)]
    summary = messages.variables_summary(keys)
    assert summary == "122 variables in 61 layers (model/dense_0, model/dense_1, model/dense_2, model/dense_3 and 57 more)"
    assert messages.variables_summary(["w"]) == "the variable `w`"
    assert messages.variables_summary(["w", "b"]) == "2 variables: `w`, `b`"

    from gradfix import categories as cat
    from gradfix.causes import Cause
    from gradfix.diagnose import runtime_headline
    from gradfix.runtime.facts import SourceFact

    variables = [SourceFact.from_dict({"index": n, "path": key, "name": key, "key": key,
                                       "layer": {"class": "Dense", "name": key.split("/")[1]}})
                 for n, key in enumerate(keys)]
    for category in cat.ALL:
        line = runtime_headline(Cause(category, None, None, variables), "some-rule-name")
        assert line.startswith("122 variables in 61 layers get no gradient")
        assert not _first_line_problems(line), line
    finding = Finding("GF003", "loss-ignores-prediction", "The loss reads `h`, not the final prediction `y`",
                      Span("t.py", 1, 1, 1, 2), evidence=Evidence.RUNTIME, variables=tuple(keys))
    diagnostic = convert.diagnostic(finding, convert.Positions("x = 1\n"))
    assert diagnostic.message.splitlines()[0] == finding.message
    assert "122 variables in 61 layers" in diagnostic.message and "dense_60" not in diagnostic.message


def test_fit_shortens_code_then_cuts_at_a_word():
    line = messages.fit("Unsafe fix GF012: Swap the losses `actor_loss_of_the_policy_net` and "
                        "`critic_loss_of_the_value_net` now")
    assert line == "Unsafe fix GF012: Swap the losses `actor_loss_of...` and `critic_loss_of...` now"  # cut alike
    assert messages.fit("`" + "x" * 100 + "` is bad") == "`" + "x" * 68 + "...` is bad"
    line = messages.fit("Let the gradient through `tf.one_hot(tf.argmax(x, axis=-1), depth=M)` by the softmax it stands "
                        "for (a straight-through estimator: the forward value stays one-hot)", 60)
    assert line == "Let the gradient through `tf.one_hot(...)` by the softmax..."
    assert messages.clause("Open the GradientTape before the forward pass, so that it is recorded", 50) == (
        "Open the GradientTape before the forward pass")
    assert messages.clause("Stay in TensorFlow on the way to the loss: NumPy calls, `.numpy()` and `float()` become "
                           "TensorFlow ops", 50) == "Stay in TensorFlow on the way to the loss"
    assert messages.call_brief("predictions = model(x, training=True)") == "predictions = model(...)"
    assert messages.call_brief("pred.numpy().mean(axis=1, keepdims=True)") == "pred.numpy().mean(...)"
    assert messages.sentence("float(x) turns a tensor into a number.") == "float(x) turns a tensor into a number"
    assert messages.sentence("a threshold of the prediction") == "A threshold of the prediction"


SEED = FIXTURES / "seed" / "example1.py"


def test_the_terminal_prints_the_first_line_then_the_details_indented(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(SEED.read_text())
    result = CliRunner().invoke(main, ["check", "train.py"])
    [finding] = json.loads(CliRunner().invoke(main, ["check", "--format", "json", "train.py"]).stdout)["findings"]
    lines = result.stdout.splitlines()
    assert lines[0] == f"train.py:10:27: GF003 [loss-ignores-prediction] {finding['message']}"
    assert len(finding["message"]) <= 80 and finding["detail"]
    block = []
    for line in lines[3:]:  # after the excerpt and its carets
        if line.startswith("  note:"):
            break
        block.append(line)
    assert block and all(line.startswith("  ") and len(line) <= 100 for line in block)
    assert " ".join(line.strip() for line in block) == " ".join(finding["detail"].split())


def test_sarif_and_github_put_the_first_line_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(SEED.read_text())
    [finding] = json.loads(CliRunner().invoke(main, ["check", "--format", "json", "train.py"]).stdout)["findings"]
    sarif = json.loads(CliRunner().invoke(main, ["check", "--format", "sarif", "train.py"]).stdout)
    text = sarif["runs"][0]["results"][0]["message"]["text"]
    assert text.split("\n") == [finding["message"], finding["detail"]]
    github = CliRunner().invoke(main, ["check", "--format", "github", "train.py"]).stdout
    assert github.split("::", 2)[2].startswith(finding["message"] + "%0A" + finding["detail"])


def test_diagnose_counts_the_variables_of_a_cause_and_lists_them_with_verbose(capsys, monkeypatch):
    """The recorded run of a VAE whose forward pass is before the tape: 16 variables without a gradient."""
    from gradfix.diagnose import diagnose
    from gradfix.diagnose_cli import VARIABLES_LISTED, _text
    from gradfix.runtime.record_facts import load

    monkeypatch.setenv("NO_COLOR", "1")
    [case] = [case for case in repair_cases() if case.id == "vae_forward_pass_before_tape"]
    facts, _ = load(case.facts)
    result = diagnose(facts)
    [cause] = result.causes
    assert len(cause.variables) == 16 > VARIABLES_LISTED
    _text(result, result.findings, [], None, False, False)
    short = capsys.readouterr().out
    [summary] = [line for line in short.splitlines() if "--verbose lists each" in line]
    assert summary.strip().startswith("16 variables in ") and " layers (" in summary
    assert not any(variable.key in short for variable in cause.variables)
    _text(result, result.findings, [], None, False, False, verbose=True)
    verbose = capsys.readouterr().out
    assert all(variable.key in verbose for variable in cause.variables)
    assert "--verbose lists each" not in verbose
