"""The child's source range of a suspended frame's instruction (``frames.instruction_span``), without TensorFlow.

A probe object stands in for a tensor: its operator and method run from the program's expression, as
TensorFlow's do, and read the calling frame's instruction offset the way the child's op records do.
"""

from __future__ import annotations

import runpy
import sys
import textwrap

import pytest

from gradfix.runtime.child.frames import _line_span, instruction_span

PROGRAM = textwrap.dedent("""\
    import sys

    seen = []


    class Probe:
        def _where(self):
            frame = sys._getframe(2)
            seen.append((frame.f_code, frame.f_lasti))
            return self

        def __gt__(self, other):
            return self._where()

        def __floordiv__(self, other):
            return self._where()

        def numpy(self):
            return self._where()


    def probe(value):
        return Probe()._where()


    a, b = Probe(), 1
    hits = a > b
    half = [a // 2][0]
    donnée = "é"; values = (probe(donnée), a.numpy())
    spread = probe(
        1,
    )
    """)

EXPECTED = ["a > b", "a // 2", "probe(donnée)", "a.numpy()", "probe(\n    1,\n)"]


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    path = tmp_path_factory.mktemp("span") / "program.py"
    path.write_text(PROGRAM, encoding="utf-8")
    return path, runpy.run_path(str(path))["seen"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10 has no column table (co_positions)")
def test_the_range_is_the_expression_the_frame_runs(seen):
    path, records = seen
    spans = [instruction_span(code, lasti) for code, lasti in records]
    assert [span["text"] for span in spans] == EXPECTED
    lines = path.read_text(encoding="utf-8").splitlines(True)
    for span, text in zip(spans, EXPECTED):
        assert span["exact"] is True
        if span["line"] == span["end_line"]:
            # columns count characters (co_positions counts UTF-8 bytes: "donnée" is one byte longer)
            assert lines[span["line"] - 1][span["column"] - 1:span["end_column"] - 1] == text


def test_without_columns_the_range_is_the_line(seen):
    """What Python 3.10 gives: the instruction's own line (not the statement's first), no columns."""
    path, records = seen
    spans = [_line_span(code, lasti) for code, lasti in records]
    lines = path.read_text(encoding="utf-8").splitlines()
    expected_lines = [next(n for n, line in enumerate(lines, 1) if line.startswith(start))
                      for start in ("hits =", "half =", "donnée =", "donnée =", "spread =")]
    assert [span["line"] for span in spans] == expected_lines
    assert all(span["exact"] is False and span["column"] is None and span["end_column"] is None for span in spans)
    assert [span["text"] for span in spans] == [lines[n - 1].strip() for n in expected_lines]
