"""The review page as headless Chromium lays it out, on a phone-sized window (420 px) and a desktop one: code
never broken inside a word, the diff in one column when narrow, the model's labels drawn large enough to read,
and no sideways scrolling of the page itself."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from chromium_page import CHROMIUM, measure  # noqa: E402
from test_html_report import _document  # noqa: E402
from test_review_page import _layers  # noqa: E402

from gradfix.emit import html  # noqa: E402

pytestmark = [
    pytest.mark.slow,  # starts a browser
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium to lay the page out in (apt-get install chromium)"),
]

NARROW = 420

# Every line break inside a code cell, with the characters on either side of it; whether the diff's changed
# pair (old line 11, new line 9 of the example) is stacked or side by side; and the widths that show scrolling.
DIFF_LAYOUT = r"""
var breaks = [];
document.querySelectorAll('table.diff td.code').forEach(function (cell) {
  var walker = document.createTreeWalker(cell, 4 /* text nodes */), node, previous = null;
  while ((node = walker.nextNode())) {
    for (var i = 0; i < node.length; i++) {
      var range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      var box = range.getClientRects()[0];
      if (!box) continue;
      if (previous && box.top > previous.top + 2) breaks.push(previous.character + '|' + node.data[i]);
      previous = {character: node.data[i], top: box.top};
    }
  }
});
var added = document.querySelector('td.del + td.num + td.add');  // a removed line's added partner
var removed = added.parentNode.querySelector('td.del');
var old = removed.getBoundingClientRect(), now = added.getBoundingClientRect();
var diff = document.querySelector('table.diff').parentNode;  // the box that scrolls it
return {breaks: breaks, old: [old.left, old.right, old.top, old.bottom], now: [now.left, now.right, now.top, now.bottom],
        diffScroll: diff.scrollWidth, diffClient: diff.clientWidth,
        pageScroll: document.documentElement.scrollWidth, pageClient: document.documentElement.clientWidth};
"""


def _inside_a_word(breaks: list[str]) -> list[str]:
    """The breaks with no white space on either side: a token, such as ``incorrect_lo|ss``, cut in two."""
    return [pair for pair in breaks if not pair[0].isspace() and not pair[2].isspace()]


def test_at_a_narrow_width_the_diff_is_one_column_and_code_is_never_broken_inside_a_word(tmp_path, monkeypatch):
    page = html.render(_document(tmp_path, monkeypatch))
    layout = measure(page, DIFF_LAYOUT, tmp_path, NARROW)
    assert _inside_a_word(layout["breaks"]) == []
    old_left, _, _, old_bottom = layout["old"]
    new_left, _, new_top, _ = layout["now"]
    assert abs(new_left - old_left) < 1 and new_top >= old_bottom - 1, "the new line stands under the old one"
    # the longest line (107 characters) scrolls inside the diff's box, not the page
    assert layout["diffScroll"] > layout["diffClient"]
    assert layout["pageScroll"] <= layout["pageClient"]


@pytest.mark.parametrize("width", [1280, 800])  # 800: columns narrower than the example's longest word
def test_at_a_wide_width_the_diff_is_side_by_side_and_wraps_only_between_words(tmp_path, monkeypatch, width):
    page = html.render(_document(tmp_path, monkeypatch))
    layout = measure(page, DIFF_LAYOUT, tmp_path, width)
    assert layout["breaks"], "the example's long lines wrap at this width"
    assert _inside_a_word(layout["breaks"]) == []
    _, old_right, old_top, _ = layout["old"]
    new_left, _, new_top, _ = layout["now"]
    assert new_left >= old_right and abs(new_top - old_top) < 1, "the new line stands beside the old one"
    assert layout["pageScroll"] <= layout["pageClient"]


# Each label of the model picture with the height its font is drawn at: the font size times the picture's scale.
LABEL_SIZES = r"""
var labels = Array.prototype.map.call(document.querySelectorAll('svg.model text'), function (text) {
  return [text.textContent, text.getScreenCTM().a * parseFloat(window.getComputedStyle(text).fontSize)];
});
var picture = document.querySelector('svg.model').parentNode;
var hint = document.querySelector('.picture-hint');
return {labels: labels, hint: Boolean(hint && hint.getClientRects().length), pictureScroll: picture.scrollWidth,
        pictureClient: picture.clientWidth, svgWidth: document.querySelector('svg.model').getBoundingClientRect().width,
        pageScroll: document.documentElement.scrollWidth, pageClient: document.documentElement.clientWidth};
"""


@pytest.mark.parametrize("deep", [False, True], ids=["example", "deep-model"])
def test_the_model_pictures_labels_stay_legible_at_a_narrow_width(tmp_path, monkeypatch, deep):
    data = _document(tmp_path, monkeypatch)
    if deep:  # a model whose picture is wider than a desktop window
        data["diagnose"]["variables"] += _layers([(f"layer{i}", f"Kind{i}") for i in range(30)])
    layout = measure(html.render(data), LABEL_SIZES, tmp_path, NARROW)
    assert len(layout["labels"]) > 8
    assert min(size for _, size in layout["labels"]) >= 11, sorted(layout["labels"], key=lambda label: label[1])[:3]
    # the whole picture can be reached by scrolling its own box; the page does not scroll sideways
    assert layout["pictureScroll"] >= layout["svgWidth"] - 1
    assert layout["pageScroll"] <= layout["pageClient"]
    assert layout["hint"], "the reader is told that the picture scrolls"


@pytest.mark.parametrize(("deep", "hint"), [(False, False), (True, True)], ids=["example", "deep-model"])
def test_a_desktop_window_says_the_picture_scrolls_only_when_it_does(tmp_path, monkeypatch, deep, hint):
    data = _document(tmp_path, monkeypatch)
    if deep:
        data["diagnose"]["variables"] += _layers([(f"layer{i}", f"Kind{i}") for i in range(30)])
    layout = measure(html.render(data), LABEL_SIZES, tmp_path, 1280)
    assert (layout["pictureScroll"] > layout["pictureClient"]) is hint  # the picture is wider than its box
    assert layout["hint"] is hint
