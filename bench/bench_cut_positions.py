"""What pinning cuts to expressions costs the child: the per-op record, and the one range worked out.

    python bench/bench_cut_positions.py [--ops N] [--repeat R]

While a tape is alive, every op TensorFlow runs calls the child's op callback, which records it
(``ops._on_op``); each record keeps the user frame's (code, instruction offset). Timed on
small eager ops (``tf.add`` of two 4x4 tensors) from a frame of this file, as a user's expression
runs them: with no callback (the baseline), with the record as a list (as it was before records were
typed), and with the record as it is (a ``records.OpRecord``). Then the source range of one record (``frames.instruction_span``, worked out only
for the op a cut is named from). Interleaved rounds, medians of R rounds of N ops, in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradfix.runtime.child import ops, state  # noqa: E402
from gradfix.runtime.child.frames import instruction_span  # noqa: E402
from gradfix.runtime.child.state import ASSIGN_OPS, MAX_OPS, STATE  # noqa: E402


def record_as_list(op_type, inputs, attrs, outputs, op_name=None, graph=None):
    """``ops._on_op`` as it was before records were typed: a list, position included."""
    if STATE.in_gradfix or graph is not None or not STATE.tapes.live_tapes:
        return None
    current, frame = ops._here()
    if current is None:
        return None
    try:
        STATE.records.ops.append([STATE.trace.line_serial, current[0], current[1], bool(STATE.tapes.active_tapes), op_type,
                                  tuple(inputs or ()), tuple(outputs or ()), attrs,
                                  STATE.variables.layer_stack[-1] if STATE.variables.layer_stack else None,
                                  ops._owning_metric(2) if op_type in ASSIGN_OPS else None,
                                  ops._where(frame, op_type in ASSIGN_OPS)])
        if len(STATE.records.ops) > MAX_OPS:
            del STATE.records.ops[: MAX_OPS // 2]
    except Exception:  # noqa: BLE001 - as in the child's own hook: a failed record must not stop the user's op
        pass
    return None


def _run_ops(tf, callback, a, b, count):
    from tensorflow.python.framework import op_callbacks

    if callback is not None:
        op_callbacks.add_op_callback(callback)
    STATE.trace.current_frame = sys._getframe()
    STATE.trace.current_line = (__file__, sys._getframe().f_lineno, "_run_ops")
    del STATE.records.ops[:]
    try:
        start = time.perf_counter()
        for _ in range(count):
            tf.add(a, b)
        return (time.perf_counter() - start) / count
    finally:
        if callback is not None:
            op_callbacks.remove_op_callback(callback)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    import tensorflow as tf

    state.tf = tf
    STATE.tapes.live_tapes = {1: 0}
    a, b = tf.ones((4, 4)), tf.ones((4, 4))
    STATE.trace.current_thread = threading.get_ident()
    runs = {"none": [], "before": [], "now": []}
    spans = []
    _run_ops(tf, None, a, b, 1000)  # warm up
    for _ in range(options.repeat):
        runs["none"].append(_run_ops(tf, None, a, b, options.ops))
        runs["before"].append(_run_ops(tf, record_as_list, a, b, options.ops))
        runs["now"].append(_run_ops(tf, ops._on_op, a, b, options.ops))
        code, lasti = STATE.records.ops[-1].where
        start = time.perf_counter()
        for _ in range(1000):
            instruction_span(code, lasti)
        spans.append((time.perf_counter() - start) / 1000)
    base = statistics.median(runs["none"])
    rows = [("eager op, no callback (baseline)", base),
            ("eager op, recorded as a list", statistics.median(runs["before"])),
            ("eager op, recorded as an OpRecord", statistics.median(runs["now"])),
            ("the range of one record (the cut op only)", statistics.median(spans))]
    print(f"{'what':44s} {'median µs':>10s} {'ratio':>7s}")
    for what, seconds in rows:
        print(f"{what:44s} {seconds * 1e6:10.2f} {seconds / base:7.2f}")


if __name__ == "__main__":
    main()
