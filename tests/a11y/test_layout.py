"""The review page as headless Chromium lays it out, on a phone-sized window (420 px) and a desktop one: code
never broken inside a word, the diff in one column when narrow, the model's picture laid out for the width with its
labels drawn large enough to read, and no sideways scrolling of the page itself."""

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


# The model pictures the page holds and the one shown: its layout (the caption says which way data flows), its
# labels with the height each is drawn at (the font size times the picture's scale), its box's widths, and where the
# break's label and the loss's box end up, against the part of the window the box shows.
SHOWN_PICTURE = r"""
var shown = Array.prototype.filter.call(document.querySelectorAll('svg.model'), function (svg) {
  return svg.getClientRects().length > 0;
});
var result = {pictures: document.querySelectorAll('svg.model').length, shown: shown.length,
              pageScroll: document.documentElement.scrollWidth, pageClient: document.documentElement.clientWidth};
var hint = document.querySelector('.picture-hint');
result.hint = Boolean(hint && hint.getClientRects().length);
if (shown.length !== 1) return result;
var svg = shown[0], box = svg.parentNode, seen = box.getBoundingClientRect();
var within = function (element) {
  var r = element.getBoundingClientRect();
  return r.left >= seen.left - 1 && r.right <= seen.left + box.clientWidth + 1 && r.right <= window.innerWidth;
};
result.caption = svg.querySelector('.caption').textContent;
result.labels = Array.prototype.map.call(svg.querySelectorAll('text'), function (text) {
  return [text.textContent, text.getScreenCTM().a * parseFloat(window.getComputedStyle(text).fontSize)];
});
result.svgWidth = svg.getBoundingClientRect().width;
result.boxClient = box.clientWidth;
result.boxScroll = box.scrollWidth;
result.breakLabels = Array.prototype.map.call(svg.querySelectorAll('.break .site'), within);
result.losses = Array.prototype.map.call(svg.querySelectorAll('rect.loss'), within);
result.groups = Array.prototype.map.call(svg.querySelectorAll('g.layer'), function (g) { return g.dataset.count; });
return result;
"""


def _deep_document(tmp_path, monkeypatch, deep):
    data = _document(tmp_path, monkeypatch)
    if deep == "distinct":  # a model whose picture is wider than a desktop window
        data["diagnose"]["variables"] += _layers([(f"layer{i}", f"Kind{i}") for i in range(30)])
    elif deep == "blocks":  # a block of three layers repeated twenty times: one box
        data["diagnose"]["variables"] += _layers([(f"block{i}_{part}", cls) for i in range(20)
                                                  for part, cls in (("dense", "Dense"), ("norm", "LayerNormalization"),
                                                                    ("proj", "Dense"))])
    return data


@pytest.mark.parametrize("deep", ["example", "distinct", "blocks"])
def test_at_a_phone_width_the_picture_is_laid_out_for_the_width(tmp_path, monkeypatch, deep):
    """At 420 px the picture shown is the one laid out top to bottom: it fits its box (nothing to scroll to), its
    labels keep their size, and the break's label and the loss are in sight."""
    layout = measure(html.render(_deep_document(tmp_path, monkeypatch, deep)), SHOWN_PICTURE, tmp_path, NARROW)
    assert layout["shown"] == 1, layout
    assert layout["svgWidth"] <= layout["boxClient"] and layout["boxScroll"] <= layout["boxClient"], layout
    assert layout["breakLabels"] == [True] and layout["losses"] == [True]
    assert not layout["hint"], "nothing to scroll, nothing to say about scrolling"
    assert len(layout["labels"]) > 8
    assert min(size for _, size in layout["labels"]) >= 11, sorted(layout["labels"], key=lambda label: label[1])[:3]
    assert layout["pageScroll"] <= layout["pageClient"]
    assert "top to bottom" in layout["caption"] and layout["pictures"] == 2  # the wide one is there, not displayed
    if deep == "blocks":
        assert "20" in layout["groups"], "the repeated block is one box, n ×, in the narrow picture too"


@pytest.mark.parametrize(("deep", "width", "hint"), [("example", 1280, False), ("distinct", 1280, True),
                                                     ("distinct", 1000, True), ("blocks", 1280, False)])
def test_a_desktop_window_shows_the_wide_picture_alone(tmp_path, monkeypatch, deep, width, hint):
    """The rows of boxes, data flowing left to right, in any window that fits the break row; scrolled in its box,
    with the hint, when its rows are wider still (1000 px is such a window for thirty distinct layers)."""
    layout = measure(html.render(_deep_document(tmp_path, monkeypatch, deep)), SHOWN_PICTURE, tmp_path, width)
    assert layout["shown"] == 1 and layout["pictures"] == 2, layout
    assert "left to right" in layout["caption"]
    assert min(size for _, size in layout["labels"]) >= 11
    assert (layout["boxScroll"] > layout["boxClient"]) is hint
    assert layout["hint"] is hint
    assert layout["pageScroll"] <= layout["pageClient"]
