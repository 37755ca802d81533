"""`gradfix check` on real training code, every finding judged by hand (tests/corpus/expectations.json).

The corpus is keras-io's examples and guides and the TensorFlow docs notebooks that train something
(tests/corpus/README.md). A finding without an entry fails, so does an entry judged false (the rule must
be fixed, not the entry kept), and so does an entry whose finding is gone (a judged demo or bug that the
rules stopped seeing). Every safe fix offered on the corpus is applied and the fixed text must compile.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from gradfix.engine import FoundFile, check_file, fix_source
from gradfix.model import Applicability
from gradfix.notebook import is_notebook, read_notebook
from gradfix.source import read_source

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
EXPECTATIONS = json.loads((CORPUS / "expectations.json").read_text())["findings"]
VERDICTS = {"true", "demo", "false"}
CELL = re.compile(r"Cell (\d+): ")

FILES = [CORPUS / source["name"] / entry["path"] for source in MANIFEST["sources"] for entry in source["files"]]
MISSING = [path for path in FILES if not path.is_file()]

pytestmark = [
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"{len(MISSING)} of the corpus's {len(FILES)} files are not copied in: run tests/corpus/populate.py "
               "with git copies of the repositories tests/corpus/manifest.json names",
    ),
    # Python's own complaints about the corpus's code (an invalid escape sequence in a string)
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning"),
]


def _key(path: str, rule: str, cell: int | None, line: int) -> tuple[str, str, int | None, int]:
    return path, rule, cell, line


def _check_corpus() -> dict[pathlib.Path, list]:
    found = {}
    for path in FILES:
        result = check_file(FoundFile(str(path)))
        assert result is not None and result.error is None, f"{path}: {result.error if result else 'not read'}"
        found[path] = result.findings
    return found


def _keyed(results) -> dict:
    keyed = {}
    for path, file_findings in results.items():
        relative = path.relative_to(CORPUS).as_posix()
        for finding in file_findings:
            cell = CELL.match(finding.message)
            keyed[_key(relative, finding.rule, int(cell.group(1)) if cell else None, finding.span.start_line)] = finding
    return keyed


def test_every_entry_is_judged():
    for entry in EXPECTATIONS:
        assert entry["verdict"] in VERDICTS and entry["reason"].strip(), entry


def test_no_finding_on_the_corpus_is_false():
    false = [entry for entry in EXPECTATIONS if entry["verdict"] == "false"]
    assert not false, f"findings judged false remain: {false}"


def test_the_findings_are_the_judged_ones_and_their_safe_fixes_compile():
    # one test, so that the corpus is checked once whichever worker runs it
    results = _check_corpus()
    findings = _keyed(results)
    expected = {_key(e["path"], e["rule"], e["cell"], e["line"]) for e in EXPECTATIONS}
    unjudged = [f"{path} cell {cell} line {line}: {rule} {findings[(path, rule, cell, line)].message}"
                for path, rule, cell, line in findings if (path, rule, cell, line) not in expected]
    assert not unjudged, "findings no entry judges:\n" + "\n".join(unjudged)
    gone = [e for e in EXPECTATIONS if _key(e["path"], e["rule"], e["cell"], e["line"]) not in findings]
    assert not gone, f"judged findings no longer reported: {gone}"
    _every_safe_fix_compiles(results)


def _every_safe_fix_compiles(results) -> None:
    for path, file_findings in results.items():
        if not any(f.fix is not None and f.fix.applicability is Applicability.SAFE for f in file_findings):
            continue
        if is_notebook(str(path)):
            notebook = read_notebook(str(path))
            outcome = fix_source(notebook.source(), layout=notebook.layout())
        else:
            outcome = fix_source(read_source(str(path)))
        assert outcome.applied, f"{path}: a safe fix was offered but none was applied"
        compile(outcome.new_text, str(path), "exec")
