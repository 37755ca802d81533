"""The review page: one self-contained file whose structure a reviewer relies on."""

from __future__ import annotations

import json
import re
import shutil
from html import escape
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from fixture_cases import FIXTURES

from gradfix.cli import main
from gradfix.config import clear_cache
from gradfix.docs import page as rule_page
from gradfix.docs import rule_url
from gradfix.edits import apply_edits
from gradfix.emit import html
from gradfix.engine import analyze
from gradfix.model import Evidence
from gradfix.patch import make_diff
from gradfix.registry import rule_by_code
from gradfix.report import document, patch_dict, validate
from gradfix.source import read_source

BUGGY = FIXTURES / "seed" / "example1.py"


class Page(HTMLParser):
    """Elements with their classes and attributes, in document order."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.sections: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "section" and "finding" in attrs.get("class", "").split():
            self.sections.append({"id": attrs["id"], "tags": []})
        elif self.sections and tag != "section":
            self.sections[-1]["tags"].append((tag, attrs))

    def classes(self, tag):
        return [attrs.get("class", "").split() for t, attrs in self.elements if t == tag]


def _variable(path, layer, built_line, gradient):
    site = {"path": "train.py", "line": built_line, "column": 5, "function": "<module>", "code": "Dense(...)"}
    return {"path": path, "kind": "variable", "shape": [2], "dtype": "float32", "trainable": True, "gradient": gradient,
            "created_at": site, "layer": {"class": "Dense", "name": layer, "built_at": site}}


def _document(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(BUGGY, tmp_path / "train.py")
    source = read_source("train.py")
    [finding] = analyze(source)
    fix = finding.fix.__class__(**{**finding.fix.__dict__, "verified": True})
    finding = finding.replace(fix=fix, evidence=Evidence.VERIFIED, variables=("sequential/dense_1/kernel",),
                              explanation="The loss reads the first layer's output, so the second layer plays no part.")
    diff = make_diff("train.py", source.text, apply_edits(source.text, fix.edits))
    variables = [_variable("sequential/dense/kernel", "dense", 4, True), _variable("sequential/dense/bias", "dense", 4, True),
                 _variable("sequential/dense_1/kernel", "dense_1", 5, False),
                 _variable("sequential/dense_1/bias", "dense_1", 5, False),
                 _variable("sequential/head/kernel", "head", 6, True), _variable("sequential/head/bias", "head", 6, False)]
    diagnose = {
        "target": "train.py", "args": [], "status": "ok", "tensorflow_version": "2.21.0", "keras_version": "3.15.1",
        "error": None, "gradients": {v["path"]: v["gradient"] for v in variables}, "variables": variables,
        "causes": [{"category": "loss-ignores-prediction", "finding": 0, "detail": "the loss reads <the first layer>",
                    "site": {"path": "train.py", "line": 17, "column": None, "function": "<module>", "code": "loss = f(y)"},
                    "variables": ["sequential/dense_1/kernel", "sequential/dense_1/bias"],
                    "last_connected": {"name": "predictions", "path": "train.py", "line": 16, "code": "predictions = model(x)",
                                       "shape": [100, 10], "dtype": "float32"}}],
    }
    verification = {"ran": True, "status": "ok", "reason": "", "before": diagnose["gradients"],
                    "after": {v["path"]: True for v in variables}, "lost": [],
                    "fixes": [{"finding": 0, "rule": "GF003", "verified": True, "still_failing": []}]}
    data = document("report", [finding], fixes=[patch_dict("train.py", diff, [fix], applied=False)],
                    verification=verification, extra={"diagnose": diagnose}, exit_code=1)
    validate(data)
    return data


def test_page_structure(tmp_path, monkeypatch):
    data = _document(tmp_path, monkeypatch)
    text = html.render(data)
    page = Page()
    page.feed(text)
    # one section per finding, each with its diff table, its badges and its explanation
    assert [s["id"] for s in page.sections] == ["finding-0"]
    tags = page.sections[0]["tags"]
    assert any(t == "table" and "diff" in a.get("class", "") for t, a in tags)
    badges = [a["class"].split()[1] for t, a in tags if t == "span" and a.get("class", "").startswith("badge ")]
    assert badges == ["unsafe", "verified"]
    assert any(t == "p" and a.get("class") == "explanation" for t, a in tags)
    # the diff is side by side: removed lines on the left, added lines on the right
    cells = page.classes("td")
    assert ["code", "del"] in cells and ["code", "add"] in cells
    # the model: one box per layer, in creation order, coloured by whether its variables got gradients; drawn
    # twice, in rows for a wide window and top to bottom for a narrow one
    layers = [(a["data-layer"], a["class"].split()[1]) for t, a in page.elements if t == "g" and a.get("class", "").startswith("layer ")]
    assert layers == 2 * [("dense", "connected"), ("dense_1", "disconnected"), ("head", "partial")]
    # the break, between the last connected tensor and the loss, at the cause's site
    breaks = [a["data-site"] for t, a in page.elements if t == "g" and a.get("class") == "break"]
    assert breaks == 2 * ["train.py:17"]
    assert "last connected" in text and "predictions · line 16" in text
    # self-contained: nothing fetched (the SVG namespace is an identifier, not a request; a link is followed
    # only when the reader clicks it)
    fetched = [a for t, a in page.elements if t != "a" for k, v in a.items()
               if k in ("src", "href") or (k == "style" and "url(" in (v or ""))]
    assert fetched == []
    # the rule's code and the line under the fix link to the rule's documentation, carried by the page
    assert [a["href"] for t, a in page.elements if t == "a"] == ["#rule-GF003", "#rule-GF003"]
    assert rule_url("GF003").startswith("file:") and "file:" not in text
    assert not re.search(r"<(script|link|img|iframe)\b", text)
    assert not re.search(r"@import|url\((?!#)", text)


def _rule_docs(text: str, code: str) -> str:
    found = re.search(rf'<details class="rule" id="rule-{code}" open>(.*?)</details>', text, re.S)
    assert found, f"no documentation of {code} on the page"
    return found.group(1)


def test_the_page_carries_the_documentation_of_the_rules_it_reports(tmp_path, monkeypatch):
    clear_cache()
    text = html.render(_document(tmp_path, monkeypatch))
    docs = _rule_docs(text, "GF003")
    markdown = rule_page(rule_by_code("GF003"))
    # every section heading, code example and list item of the shipped page, rendered
    for heading in re.findall(r"^## (.+)$", markdown, re.M):
        assert f"<h3>{heading}</h3>" in docs
    for code in re.findall(r"```python\n(.*?)\n```", markdown, re.S):
        assert f'<pre tabindex="0"><code class="language-python">{escape(code, quote=False)}\n</code></pre>' in docs
    assert docs.count("<li>") == len(re.findall(r"^- ", markdown, re.M)) > 0
    assert "<code>y_pred</code>" in docs and "`" not in docs and "##" not in docs
    assert text.count('id="rule-GF003"') == 1


def test_a_project_that_publishes_the_rule_pages_gets_links_to_them(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.gradfix]\ndocs-url = "https://ml.example.com/lint/gradfix"\n')
    clear_cache()
    try:
        text = html.render(_document(tmp_path, monkeypatch))
    finally:
        clear_cache()
    page = Page()
    page.feed(text)
    published = "https://ml.example.com/lint/gradfix/GF003-loss-ignores-prediction.md"
    assert [a["href"] for t, a in page.elements if t == "a"] == [published, published]
    assert "<h3>Why gradients vanish</h3>" in _rule_docs(text, "GF003")  # the page still reads offline


def test_markdown_is_rendered_to_simple_html():
    from gradfix.emit.markdown import to_html

    markdown = ("# Title\n\nA *first* paragraph\nthat goes on, with `a < b` and **bold**.\n\n## Example\n\n"
                "```python\nif a < b:\n    x = y * 2  # `not code`\n```\n\n- one item\n  continued\n- `two` items\n\n"
                "1. first\n2. second\n\nSee [the guide](https://example.com/?a=1&b=2). <script>alert(1)</script>\n")
    rendered = " ".join(to_html(markdown, heading_offset=1).split())
    for part in ("<h2>Title</h2>", "<h3>Example</h3>", "<em>first</em>", "<code>a &lt; b</code>", "<strong>bold</strong>",
                 '<pre tabindex="0"><code class="language-python">if a &lt; b: x = y * 2 # `not code` </code></pre>',
                 "<ul> <li>one item continued</li> <li><code>two</code> items</li> </ul>",
                 "<ol> <li>first</li> <li>second</li> </ol>", '<a href="https://example.com/?a=1&amp;b=2">the guide</a>',
                 "&lt;script&gt;alert(1)&lt;/script&gt;"):
        assert part in rendered, part
    assert "<script>" not in rendered and "<h1>" not in rendered
    assert " ".join(to_html("a * b * c and `x*y*`").split()) == "<p>a * b * c and <code>x*y*</code></p>"


def test_page_without_a_run_says_so(tmp_path, monkeypatch):
    data = _document(tmp_path, monkeypatch)
    data["diagnose"].update(status="crashed", variables=[], causes=[], gradients={})
    text = html.render(data)
    assert "no picture of the model" in text and "run status: crashed" in text


@pytest.mark.tensorflow
def test_report_command_writes_the_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(BUGGY, tmp_path / "train.py")
    result = CliRunner().invoke(main, ["report", "train.py", "-o", "review.html"])
    assert result.exit_code == 1, result.output
    page = Page()
    page.feed((tmp_path / "review.html").read_text())
    layers = [(a["data-layer"], a["class"].split()[1]) for t, a in page.elements if t == "g" and a.get("class", "").startswith("layer ")]
    assert layers == 2 * [("dense", "connected"), ("dense_1", "disconnected")]  # the wide picture and the narrow one
    assert [s["id"] for s in page.sections] == ["finding-0"]
    assert (tmp_path / "train.py").read_text() == BUGGY.read_text()  # the report writes nothing else


@pytest.mark.tensorflow
def test_diagnose_document_follows_the_schema(tmp_path, monkeypatch):
    from gradfix.report import target_document

    monkeypatch.chdir(tmp_path)
    shutil.copy(BUGGY, tmp_path / "train.py")
    data = target_document("train.py", command="diagnose")
    validate(data)
    assert data["diagnose"]["gradients"]["sequential/dense_1/kernel"] is False
    assert data["verification"]["after"]["sequential/dense_1/kernel"] is True
    assert data["findings"][0]["fix"]["verified"] is True
    assert json.loads(json.dumps(data)) == data
