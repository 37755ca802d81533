"""A page laid out by headless Chromium at a given width, and a script's measurements of it.

Chromium's headless window is never narrower than 500 px, so the page is laid out in a frame of the width
asked for (its media queries see that width) and the script measures inside the frame; its result comes back
through the dumped DOM, as the axe-core check gets its own.
"""

from __future__ import annotations

import html
import json
import pathlib
import re
import shutil
import subprocess
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

HARNESS = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>layout</title></head>
<body style="margin:0"><iframe id="page" title="page" style="border:0;width:{width}px;height:{height}px" srcdoc="{page}"></iframe>
<script>
document.getElementById('page').addEventListener('load', function () {{
  var frame = this.contentWindow;
  var measure = function (window, document) {{ {script} }};
  var report = function (result) {{
    var out = document.createElement('pre');
    out.id = 'measured';
    out.textContent = JSON.stringify(result);
    document.body.appendChild(out);
  }};
  new Promise(function (resolve) {{ resolve(measure(frame, frame.document)); }})
    .then(function (value) {{ report({{value: value}}); }},
          function (error) {{ report({{error: String(error && error.stack || error)}}); }});
}});
</script></body></html>"""


def measure(page: str, script: str, folder: pathlib.Path, width: int, height: int = 1600) -> Any:
    """What ``script`` returns, the body of a function of the frame's ``window`` and ``document`` run once the
    page, laid out ``width`` px wide, has loaded; its value (or what the promise it returns resolves to) must be
    JSON."""
    harness = folder / f"layout-{width}.html"
    harness.write_text(HARNESS.format(width=width, height=height, page=html.escape(page, quote=True), script=script),
                       encoding="utf-8")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000",
                          "--window-size=1400,1000", "--dump-dom", harness.as_uri()],
                         capture_output=True, text=True, timeout=180).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not report (the page's scripts did not run)"
    result = json.loads(html.unescape(found.group(1)))
    assert "error" not in result, result.get("error")
    return result["value"]
