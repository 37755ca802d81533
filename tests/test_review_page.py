"""The review page as a reviewer reads it: labels that fit, code set as code, changes marked inside lines,
layer states in words as well as colours, contrast that meets WCAG AA, big models wrapped and grouped, and
every finding `check` makes on the program's files."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from fixture_cases import FIXTURES
from test_html_report import Page, _document, _variable

from gradfix.emit import html, html_diff, html_picture, html_text


def _layers(names_and_classes, gradient=False):
    variables = []
    for name, cls in names_and_classes:
        for part in ("kernel", "bias"):
            variable = _variable(f"sequential/{name}/{part}", name, 4, gradient)
            variable["layer"]["class"] = cls
            variables.append(variable)
    return variables


def test_backticks_in_messages_are_set_as_code(tmp_path, monkeypatch):
    data = _document(tmp_path, monkeypatch)
    data["findings"][0]["message"] = "`tf.argmax` has no gradient"
    page = html.render(data)
    assert '<p class="message"><code>tf.argmax</code> has no gradient</p>' in page
    prose = re.findall(r'<p class="(?:message|detail|explanation|reason)">(.*?)</p>', page)
    assert prose and not any("`" in text for text in prose)


def test_an_unpaired_backtick_is_left_as_written():
    assert html_text.prose("a ` b") == "a ` b"
    assert html_text.prose("`<x>`") == "<code>&lt;x&gt;</code>"


def test_changes_are_marked_inside_changed_lines():
    before, after = html_diff.changed_parts("    loss = loss_fn(y, hidden)", "    loss = loss_fn(y, logits)")
    assert before == "    loss = loss_fn(y, <del>hidden</del>)"
    assert after == "    loss = loss_fn(y, <ins>logits</ins>)"
    before, after = html_diff.changed_parts("x = a<b", "x = a<b and c")
    assert before == "x = a&lt;b" and after == "x = a&lt;b<ins> and c</ins>"


def test_the_side_by_side_diff_marks_only_what_changed(tmp_path, monkeypatch):
    page = html.render(_document(tmp_path, monkeypatch))
    marked = re.findall(r"<(del|ins)>(.*?)</\1>", page)
    assert marked, "a changed line has its changed words marked"
    assert all(len(text) < 40 for _, text in marked)  # words, not whole lines


def test_code_wraps_between_words_not_inside_them():
    """What tests/a11y/test_layout.py measures in a browser, read from the style sheet: no rule lets a line of the
    diff break inside a word, and a narrow window keeps each line whole (it scrolls)."""
    css = html.CSS
    assert not re.search(r"word-break: break-all|overflow-wrap: (break-word|anywhere)|word-wrap: break-word", css)
    assert re.search(r"table\.diff td \{[^}]*white-space: pre-wrap;[^}]*overflow-wrap: normal", css)
    narrow = css[css.index("@media (max-width"):]
    assert re.search(r"table\.diff td \{ white-space: pre; \}", narrow)


def test_a_line_of_code_wraps_only_at_its_spaces():
    """Each run of characters between spaces is kept on one line, marks included: a browser would otherwise break
    ``model.layers[0](x)`` between ``]`` and ``(``."""
    assert html_diff.unbroken_words("    out = model.layers[0](x)") == (
        '    <span class="w">out</span> <span class="w">=</span> <span class="w">model.layers[0](x)</span>')
    before, _ = html_diff.changed_parts("y = f(a, hidden_state)", "y = f(a, logits)")
    assert html_diff.unbroken_words(before) == (
        '<span class="w">y</span> <span class="w">=</span> <span class="w">f(a,</span> <span class="w"><del>hidden_state</del>)</span>')
    # a change spanning a space is marked on both sides of it, each word whole
    assert html_diff.unbroken_words("a<del>b c</del>d") == '<span class="w">a<del>b</del></span><del> </del><span class="w"><del>c</del>d</span>'
    assert re.search(r"table\.diff span\.w \{ white-space: nowrap; \}", html.CSS)


def _pairs(diff: str) -> list[tuple[str, str, str, str]]:
    """The changed rows of a rendered diff: old line number and text, new line number and text (markup kept)."""
    rows = [row for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html_diff.side_by_side(diff))
            if 'class="code del' in row or 'class="code add' in row]
    cells = [re.findall(r'<td class="(?:num|code)[^"]*">(.*?)</td>', row) for row in rows]
    return [tuple(cell) for cell in cells]


def test_a_removed_line_is_paired_with_the_added_line_most_like_it(tmp_path, monkeypatch):
    data = _document(tmp_path, monkeypatch)
    [patch] = data["fixes"]
    rows = _pairs(patch["diff"])
    # the fix removes the comment and the layer call (lines 9 and 10) and rewrites the return (11 -> 9)
    assert [(old, new) for old, _, new, _ in rows] == [("9", ""), ("10", ""), ("11", "9")]
    [(_, old_text, _, new_text)] = [row for row in rows if row[2]]
    assert re.findall(r"<del>(.*?)</del>", old_text) == ["intermediate_output"]
    assert re.findall(r"<ins>(.*?)</ins>", new_text) == ["y_pred"]
    assert "<del>" not in rows[0][1]  # a line with no partner is wholly removed, not marked word by word


def test_lines_are_paired_by_similarity_and_the_rest_in_order():
    old = ["    # set up the head", "    hidden = encoder(x)", "    logits = head(hidden)", "    return loss_fn(y, hidden)"]
    new = ["    return loss_fn(y, logits)", "    print('done')"]
    assert html_diff.paired_lines(old, new) == [(0, None, False), (1, None, False), (2, None, False), (3, 0, True),
                                           (None, 1, False)]
    # nothing alike: side by side in order, none marked as similar
    assert html_diff.paired_lines(["a = 1", "b = 2"], ["print(total_of_everything)"]) == [(0, 0, False), (1, None, False)]
    # the best pair first, then the lines above and below it on their own
    assert html_diff.paired_lines(["x = f(a)", "y = g(b)"], ["y = g(c)", "x = f(d)"]) == [(0, None, False), (1, 0, True), (None, 1, False)]


def test_a_big_rewritten_block_is_paired_in_order():
    old = [f"value_{i} = compute({i})" for i in range(60)]
    new = [f"value_{i} = compute({i + 1})" for i in range(60)][::-1]
    assert html_diff.paired_lines(old, new) == [(i, i, False) for i in range(60)]


def test_layer_state_is_said_in_words_and_outline_not_only_colour(tmp_path, monkeypatch):
    page = Page()
    page.feed(html.render(_document(tmp_path, monkeypatch)))
    text = html.render(_document(tmp_path, monkeypatch))
    for state, words in html_picture.STATE_WORDS.items():
        if f'class="layer {state}"' in text:
            box = text[text.index(f'class="layer {state}"'):]
            assert words in box[:box.index("</g>")]
    assert re.search(r"\.layer\.disconnected rect \{[^}]*stroke-dasharray", html.CSS)
    assert re.search(r"\.layer\.partial rect \{[^}]*stroke-dasharray", html.CSS)


def test_a_deep_model_is_grouped_into_its_repeated_block_and_wrapped():
    blocks = [(f"block{i}_{part}", cls) for i in range(20)
              for part, cls in (("dense", "Dense"), ("norm", "LayerNormalization"), ("proj", "Dense"))]
    variables = _layers(blocks + [("head", "Dense")])
    data = {"diagnose": {"variables": variables, "causes": []}}
    boxes = html_picture.grouped(html_picture.layers(data))
    assert [(box["count"], box["block"]) for box in boxes] == [(20, ["Dense", "LayerNormalization", "Dense"]), (1, ["Dense"])]
    assert sum(len(box["variables"]) for box in boxes) == 122
    svg = html_picture.model_picture(data)
    width = int(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1))
    assert width <= html_picture.PER_ROW * (html_picture.BOX_WIDTH + html_picture.GAP) + html_picture.GAP
    assert "20 × Dense + LayerNormalization + Dense · 120 vars" in svg
    assert 'aria-label="The model: 61 layers with trainable variables"' in svg


def test_the_narrow_picture_is_one_box_a_row_and_keeps_repeated_blocks_grouped():
    blocks = [(f"block{i}_{part}", cls) for i in range(20)
              for part, cls in (("dense", "Dense"), ("norm", "LayerNormalization"), ("proj", "Dense"))]
    data = {"diagnose": {"variables": _layers([("stem", "Conv2D")] + blocks + [("head", "Dense")]), "causes": []}}
    svg = html_picture.narrow_model_picture(data)
    assert int(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1)) == html_picture.NARROW_WIDTH
    boxes = re.findall(r'<g class="layer [a-z]+" data-layer="([^"]*)" data-count="(\d+)">'
                       r'<title>[^<]*</title><rect x="([\d.]+)" y="([\d.]+)" width="(\d+)"', svg)
    assert [(name, count) for name, count, *_ in boxes] == [("stem", "1"), ("block0_dense … block19_proj", "20"),
                                                           ("head", "1")]
    assert len({x for _, _, x, _, _ in boxes}) == 1  # one column
    tops = [float(y) for _, _, _, y, _ in boxes]
    assert tops == sorted(tops) and len(set(tops)) == 3  # top to bottom, a row each
    assert all(float(x) + int(width) <= html_picture.NARROW_WIDTH for _, _, x, _, width in boxes)
    # the block's classes in full, the count of its variables beside its state
    assert 'class="cls">20 × Dense + LayerNormalization + Dense</text>' in svg
    assert 'class="state">✕ no gradient · 120 vars</text>' in svg
    assert 'aria-label="The model: 62 layers with trainable variables"' in svg


def test_the_narrow_pictures_break_names_the_cause_and_its_place_in_two_lines(tmp_path, monkeypatch):
    data = _document(tmp_path, monkeypatch)
    svg = html_picture.narrow_model_picture(data)
    [label] = re.findall(r'class="site">(.*?)</text>', svg)
    assert re.sub(r"<[^>]+>", "|", label) == "loss-ignores-prediction|at train.py:10:27|"
    assert re.findall(r'class="code">(.*?)</text>', svg) == ["run saw it at line 17: loss = f(y)"]
    assert 'data-site="train.py:17" data-breaks-at="train.py:10:27"' in svg
    # the break comes after the last layer, the loss after the break
    last_layer = max(float(y) for y in re.findall(r'<g class="layer[^>]*><title>[^<]*</title><rect x="[\d.]+" y="([\d.]+)"', svg))
    [tensor] = re.findall(r'<rect class="tensor" x="[\d.]+" y="([\d.]+)"', svg)
    [cross] = re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)
    [loss] = re.findall(r'<rect class="loss" x="[\d.]+" y="([\d.]+)"', svg)
    assert last_layer < float(tensor) < float(cross) < float(loss)


def test_many_distinct_layers_wrap_into_rows_instead_of_scrolling():
    variables = _layers([(f"layer{i}", f"Kind{i}") for i in range(30)])
    svg = html_picture.model_picture({"diagnose": {"variables": variables, "causes": []}})
    xs = [float(x) for x in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="150"', svg)]
    assert len(xs) == 30 and max(xs) + html_picture.BOX_WIDTH <= html_picture.PER_ROW * (html_picture.BOX_WIDTH + html_picture.GAP) + html_picture.GAP
    assert len(set(re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="150"', svg))) == 5  # rows


def test_the_break_names_the_findings_place_and_the_statement_the_run_saw(tmp_path, monkeypatch):
    """The run sees the break at the training step's statement (line 17, which calls the loss); the finding is where
    the loss goes wrong (line 10, inside it). The picture names both, so that it agrees with the finding below."""
    data = _document(tmp_path, monkeypatch)
    assert data["findings"][0]["span"]["start_line"] == 10 and data["diagnose"]["causes"][0]["site"]["line"] == 17
    svg = html_picture.model_picture(data)
    [label] = re.findall(r'class="site">(.*?)</text>', svg)
    [code] = re.findall(r'class="code">(.*?)</text>', svg)
    assert label == "loss-ignores-prediction at train.py:10:27"  # the finding's own place, as its section shows it
    assert code == "run saw it at line 17: loss = f(y)"
    assert 'data-site="train.py:17" data-breaks-at="train.py:10:27"' in svg
    # a cause whose finding is at the statement the run saw keeps the one place
    data["findings"][0]["span"].update(start_line=17, end_line=17)
    svg = html_picture.model_picture(data)
    assert re.findall(r'class="site">(.*?)</text>', svg) == ["loss-ignores-prediction at train.py:17"]
    assert re.findall(r'class="code">(.*?)</text>', svg) == ["loss = f(y)"]


def test_the_break_label_fits_over_the_cut_and_keeps_the_line():
    cause = {"category": "non-differentiable-op", "variables": ["v"], "detail": "d",
             "site": {"path": "a rather long project folder name/experiments/train_residual_classifier_experiment.py",
                      "line": 17, "column": 21, "code": "predicted = tf.argmax(logits, axis=-1) " * 3}}
    row = html_picture._break_row(cause, 0, 100)
    [label] = re.findall(r'class="site">(.*?)</text>', row)
    [code] = re.findall(r'class="code">(.*?)</text>', row)
    room = html_picture.BREAK_LENGTH // 7
    assert len(label) <= room and label.endswith(":17:21") and label.startswith("non-differentiable-op at train_")
    assert len(code) <= room
    assert "experiments/train_residual_classifier_experiment.py:17:21" in row  # the whole place, in the title


def _luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _variables():
    return dict(re.findall(r"--([\w-]+):(#[0-9a-f]{6})", html.CSS))


@pytest.mark.parametrize("selector", [r"table\.diff td\.num", r"table\.diff tr\.hunk td", r"\.where", r"\.reason, \.doc, \.vars",
                                      r"\.badge\.safe, \.badge\.verified", r"\.badge\.unsafe", r"\.badge\.failed",
                                      r"\.badge\.display, \.badge\.unverified, \.badge\.none"])
def test_text_meets_wcag_aa_contrast(selector):
    colours = _variables()

    def resolve(value):
        value = value.strip()
        return colours[value[6:-1]] if value.startswith("var(") else value

    [rule] = re.findall(selector + r" \{([^}]*)\}", html.CSS)
    foreground = resolve(re.search(r"(?<![-\w])color: ([^;]+);", rule).group(1))
    found = re.search(r"background: ([^;]+);", rule)
    background = resolve(found.group(1)) if found and resolve(found.group(1)).startswith("#") else "#ffffff"
    assert contrast(foreground, background) >= 4.5, (selector, foreground, background)


@pytest.mark.tensorflow
def test_the_page_counts_every_finding_check_makes_on_the_programs_files(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gradfix.cli import main
    from gradfix.report import target_document, validate

    monkeypatch.chdir(tmp_path)
    shutil.copy(FIXTURES / "seed" / "example1.py", tmp_path / "train.py")
    with open(tmp_path / "train.py", "a") as program:  # a second bug shape on a path the step does not take
        program.write("\n\ndef unused_step(x, y):\n    out = model(x)\n    with tf.GradientTape() as tape:\n"
                      "        loss = tf.reduce_mean(tf.square(out - y))\n    return tape.gradient(loss, model.trainable_variables)\n")
    checked = CliRunner().invoke(main, ["check", "--format", "json", "train.py"])
    static = json.loads(checked.stdout)["findings"]
    data = target_document("train.py")
    validate(data)
    ran = [f for f in data["findings"] if f["evidence"] != "static"]
    read = [f for f in data["findings"] if f["evidence"] == "static"]
    assert ran and [f["rule"] for f in read] == ["GF001"]
    assert any(patch["path"] == "train.py" and "GF001" in {fix["rule"] for fix in patch["fixes"]} for patch in data["fixes"])
    # every finding of check is on the page: the run's (at its line) or one read from the code
    on_page = {(f["rule"], f["span"]["start_line"]) for f in data["findings"]}
    assert {(f["rule"], f["span"]["start_line"]) for f in static} <= on_page
    page = html.render(data)
    assert "Also found by reading the code" in page
    assert f"<b>{len(data['findings'])}</b> findings ({len(ran)} from the run, {len(read)} by reading the code)" in page


def test_many_variables_are_summarised_with_the_list_behind_it(tmp_path, monkeypatch):
    data = _document(tmp_path, monkeypatch)
    names = [f"sequential/block{i}/{part}" for i in range(61) for part in ("kernel", "bias")]
    data["findings"][0]["variables"] = names
    page = html.render(data)
    [summary] = re.findall(r'<details class="vars"><summary>(.*?)</summary>', page)
    assert summary.startswith("122 variables in 61 layers (")
    assert all(f"<code>{name}</code>" in page for name in names)
    data["findings"][0]["variables"] = names[:3]
    page = html.render(data)
    assert '<details class="vars"' not in page and page.count('<p class="vars">') == 1
