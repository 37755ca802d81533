"""The review page checked by axe-core (WCAG 2.1 A and AA, and axe's best practices) in headless Chromium."""

from __future__ import annotations

import html as html_text
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from chromium_page import measure  # noqa: E402
from test_html_report import _document  # noqa: E402
from test_review_page import _layers  # noqa: E402

from gradfix.emit import html  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def axe_script() -> pathlib.Path | None:
    """axe-core's browser build: $AXE_CORE_JS, `npm install --prefix tests/a11y axe-core`, or npm's global folder."""
    candidates = [os.environ.get("AXE_CORE_JS"), HERE / "node_modules" / "axe-core" / "axe.min.js"]
    npm = shutil.which("npm")
    if npm:
        root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60).stdout.strip()
        candidates.append(pathlib.Path(root) / "axe-core" / "axe.min.js")
    return next((pathlib.Path(c) for c in candidates if c and pathlib.Path(c).is_file()), None)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

pytestmark = [
    pytest.mark.slow,  # starts a browser
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium to run axe-core in (apt-get install chromium)"),
    pytest.mark.skipif(axe_script() is None, reason="axe-core is not installed (npm install --prefix tests/a11y axe-core)"),
]

RUN_AXE = """<script>{axe}</script><script>
axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}}})
  .then(function (result) {{
    var out = document.createElement('pre');
    out.id = 'axe-results';
    out.textContent = JSON.stringify(result.violations.map(function (v) {{
      return {{id: v.id, impact: v.impact, nodes: v.nodes.map(function (n) {{ return n.target.join(' '); }})}};
    }}));
    document.body.appendChild(out);
  }});
</script></body>"""


AXE_IN_FRAME = """
return window.axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
  .then(function (result) {
    return result.violations.map(function (v) {
      return {id: v.id, impact: v.impact, nodes: v.nodes.map(function (n) { return n.target.join(' '); })};
    });
  });
"""


def violations(page: str, folder: pathlib.Path, width: int | None = None) -> list[dict]:
    """axe-core's findings on ``page``; laid out ``width`` px wide when given (in a frame: Chromium's headless
    window is never narrower than 500 px)."""
    if width is not None:
        with_axe = page.replace("</body>", f"<script>{axe_script().read_text()}</script></body>", 1)
        return measure(with_axe, AXE_IN_FRAME, folder, width)
    checked = folder / "checked.html"
    checked.write_text(page.replace("</body>", RUN_AXE.format(axe=axe_script().read_text()), 1), encoding="utf-8")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                          "--dump-dom", checked.as_uri()], capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', dom, re.S)
    assert found, "axe-core did not report (the page's scripts did not run)"
    return json.loads(html_text.unescape(found.group(1)))


# 420: the one-column diff and the narrow picture; 1280: the wide picture (each page holds both, one not displayed)
@pytest.mark.parametrize("width", [None, 420, 1280], ids=["window", "narrow", "desktop"])
def test_the_review_page_has_no_accessibility_violations(tmp_path, monkeypatch, width):
    data = _document(tmp_path, monkeypatch)
    blocks = [(f"block{i}_{part}", cls) for i in range(20)
              for part, cls in (("dense", "Dense"), ("norm", "LayerNormalization"), ("proj", "Dense"))]
    data["diagnose"]["variables"] += _layers(blocks)
    static = dict(data["findings"][0], evidence="static", message="`tf.stop_gradient` cuts the path")
    data["findings"].append(static)
    assert violations(html.render(data), tmp_path, width) == []


def test_axe_finds_what_it_should(tmp_path):
    """The check itself: a page with unlabelled, low-contrast text is reported."""
    page = ('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
            '<p style="color:#aaa;background:#fff">faint</p><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></main></body>')
    found = {v["id"] for v in violations(page, tmp_path)}
    assert {"color-contrast", "image-alt"} <= found
