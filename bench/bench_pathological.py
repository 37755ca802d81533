"""`gradfix check` on pathological files: one very large training module, and deep nesting.

    python bench/bench_pathological.py [--lines 50000] [--depths 50,100,200,500,1000,5000]
                                       [--statement-depths 20,50,100] [--timeout 600] [--only large|nesting]

(a) A generated training module of --lines lines (many small training-step functions and plain
helper functions, one step computing its forward pass before the tape). `gradfix check --format
json FILE` is measured against two baselines on the same file, each in its own interpreter:
LibCST's parse of it (the same work minus the rules) and CPython's `compile` of it.

(b) Deep nesting: a module whose one statement is an expression nested N levels (parentheses,
lists, `1+(1+(...))`, calls `f(f(f(...)))`, and without brackets `1+1+...+1` and `- - -1`), or
whose statements are N nested `if` blocks, after
a small training step so that the rules read the file. For each: gradfix's exit code, the line
it prints, its time and peak memory, and its time relative to CPython's `compile` of the same file.

Every command runs as a child process with a timeout (the whole process group is killed when it
expires), so nothing hangs. Peak memory is the child's own maximum resident set, from wait4.
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

HEAD = '''import numpy as np
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(3)])
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = tf.keras.optimizers.Adam(1e-3)
'''

STEP = '''

def train_step_{i}(model, optimizer, x_batch, y_batch):
    """Training step {i}."""
    with tf.GradientTape() as tape:
        logits = model(x_batch, training=True)
        loss = loss_fn(y_batch, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


def scale_{i}(values, factor={i}):
    total = 0
    for value in values:
        total += value * factor
    return total / max(len(values), 1)
'''

# The one bug of the large module: the forward pass runs before the tape opens (GF001).
BUGGY_STEP = '''

def buggy_step(model, optimizer, x_batch, y_batch):
    logits = model(x_batch, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y_batch, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
'''

# Put before each nested module so that the rules want the file (a file without "GradientTape"
# is only syntax-checked by CPython, and the nesting would never reach LibCST).
NESTING_HEAD = '''import tensorflow as tf


def step(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    return tape.gradient(loss, model.trainable_variables)


def f(value):
    return value

'''


def large_module(lines: int) -> str:
    """About ``lines`` lines: steps and helpers, with the buggy step in the middle."""
    parts, count, index = [HEAD], HEAD.count("\n"), 0
    step_lines = STEP.count("\n")
    blocks = max(1, (lines - count - BUGGY_STEP.count("\n")) // step_lines)
    for index in range(blocks):
        if index == blocks // 2:
            parts.append(BUGGY_STEP)
        parts.append(STEP.format(i=index))
    return "".join(parts)


def nested_expression(shape: str, depth: int) -> str:
    if shape == "parentheses":
        expression = "(" * depth + "1" + ")" * depth
    elif shape == "lists":
        expression = "[" * depth + "1" + "]" * depth
    elif shape == "binary operators":
        expression = "1+(" * (depth - 1) + "1" + ")" * (depth - 1)
    elif shape == "calls":
        expression = "f(" * depth + "1" + ")" * depth
    elif shape == "chained `1+1+...`":
        expression = "+".join(["1"] * depth)
    elif shape == "unary minus `- - -1`":
        expression = "- " * depth + "1"
    else:
        raise ValueError(shape)
    return NESTING_HEAD + f"x = {expression}\n"


def nested_ifs(depth: int) -> str:
    lines = [" " * level + "if x:" for level in range(depth)]
    lines.append(" " * depth + "y = 1")
    return NESTING_HEAD + "x = True\n" + "\n".join(lines) + "\n"


# The first four need a bracket per level, and CPython's tokenizer refuses more than 200 open
# brackets; the last two nest as deep in the tree with no bracket at all.
EXPRESSION_SHAPES = ("parentheses", "lists", "binary operators", "calls", "chained `1+1+...`", "unary minus `- - -1`")


@dataclass
class Run:
    exit_code: int | None  # None: killed at the timeout
    seconds: float
    peak_mb: float
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def run(command: list[str], timeout: float, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> Run:
    """Run ``command``, reaped with wait4 for its own peak memory; its process group is killed at ``timeout``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
        status = usage = None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                _, status, usage = os.wait4(process.pid, 0)
                status = None
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        # reaped here, so Popen must not wait for it again
        process.returncode = os.waitstatus_to_exitcode(status) if status is not None else -signal.SIGKILL
        out.seek(0)
        err.seek(0)
        return Run(
            exit_code=os.waitstatus_to_exitcode(status) if status is not None else None,
            seconds=elapsed,
            # ru_maxrss is in kilobytes on Linux, bytes on macOS
            peak_mb=usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024),
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def gradfix_check(path: pathlib.Path, timeout: float, env: dict[str, str]) -> Run:
    return run([sys.executable, "-m", "gradfix", "check", "--format", "json", str(path)], timeout, env)


def libcst_parse(path: pathlib.Path, timeout: float) -> Run:
    return run([sys.executable, "-c", "import libcst,sys; libcst.parse_module(open(sys.argv[1]).read())", str(path)], timeout)


def cpython_compile(path: pathlib.Path, timeout: float) -> Run:
    return run([sys.executable, "-c", "import sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')", str(path)], timeout)


def gradfix_message(result: Run, folder: pathlib.Path) -> str:
    """The one line gradfix printed (without the scratch folder's path): its first error line, or what its report holds."""
    if result.timed_out:
        return "(killed at the timeout)"
    for line in result.stderr.splitlines():
        if line.startswith("gradfix:"):
            return line.replace(f"{folder}{os.sep}", "")
    try:
        document = json.loads(result.stdout)
    except ValueError:
        tail = [line for line in result.stderr.splitlines() if line.strip()]
        return tail[-1] if tail else "(no output)"
    findings = document.get("findings", [])
    if not findings:
        return "no findings"
    first = findings[0]
    return f"{len(findings)} finding(s): {first['rule']} at line {first['span']['start_line']}"


def python_message(result: Run) -> str:
    """CPython's verdict: ok, or the last line of its traceback (the exception and its message)."""
    if result.timed_out:
        return "(killed at the timeout)"
    if result.exit_code == 0:
        return "ok"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {result.exit_code}"


def cell(text: str, width: int | None = None) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def exit_text(result: Run) -> str:
    return "timeout" if result.timed_out else str(result.exit_code)


def ratio(a: Run, b: Run) -> str:
    if a.timed_out or b.timed_out or b.seconds <= 0:
        return "-"
    return f"{a.seconds / b.seconds:.2f}"


def bench_large(lines: int, timeout: float, env: dict[str, str], scratch: pathlib.Path) -> None:
    path = scratch / "large_training_module.py"
    path.write_text(large_module(lines), encoding="utf-8")
    count = path.read_text(encoding="utf-8").count("\n")
    compiled = cpython_compile(path, timeout)
    parsed = libcst_parse(path, timeout)
    checked = gradfix_check(path, timeout, env)
    print(f"\n### (a) one training module of {count:,} lines ({path.stat().st_size / 1e6:.1f} MB)\n")
    print("| run | exit | message | seconds | peak RSS MB | ratio to compile | ratio to LibCST parse |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, result, message in (
        ("CPython `compile`", compiled, python_message(compiled)),
        ("LibCST `parse_module`", parsed, python_message(parsed)),
        ("`gradfix check --format json`", checked, gradfix_message(checked, scratch)),
    ):
        print(f"| {name} | {exit_text(result)} | {cell(message)} | {result.seconds:.2f} | {result.peak_mb:.0f} "
              f"| {ratio(result, compiled)} | {ratio(result, parsed)} |")
    sys.stdout.flush()


def bench_nesting(depths: list[int], statement_depths: list[int], timeout: float, env: dict[str, str],
                  scratch: pathlib.Path) -> None:
    print("\n### (b) deep nesting\n")
    print("| shape | depth | exit | gradfix prints | seconds | over the head alone | peak RSS MB | `compile` seconds "
          "| `compile` verdict | ratio to compile |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---|---:|")
    # the head alone: what any file costs gradfix (start-up, rules, one small step), before nesting adds to it
    cases = [("(the head alone)", 0, NESTING_HEAD)]
    cases += [(shape, depth, nested_expression(shape, depth)) for shape in EXPRESSION_SHAPES for depth in depths]
    cases += [("nested `if` blocks", depth, nested_ifs(depth)) for depth in statement_depths]
    head = None
    for number, (shape, depth, text) in enumerate(cases):
        path = scratch / f"nested_{number}_{depth}.py"
        path.write_text(text, encoding="utf-8")
        compiled = cpython_compile(path, timeout)
        checked = gradfix_check(path, timeout, env)
        head = head or checked
        added = "-" if checked.timed_out or head.timed_out else f"{checked.seconds - head.seconds:+.2f}"
        print(f"| {shape} | {depth} | {exit_text(checked)} | {cell(gradfix_message(checked, scratch))} | {checked.seconds:.2f} "
              f"| {added} | {checked.peak_mb:.0f} | {compiled.seconds:.2f} | {cell(python_message(compiled))} "
              f"| {ratio(checked, compiled)} |")
        sys.stdout.flush()


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50000, help="lines of the large module (default 50000)")
    parser.add_argument("--depths", type=numbers, default=[50, 100, 200, 500, 1000, 5000],
                        help="nesting depths of the expressions, comma-separated")
    parser.add_argument("--statement-depths", type=numbers, default=[20, 50, 100],
                        help="nesting depths of the `if` blocks, comma-separated")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a command is killed (default 600)")
    parser.add_argument("--file-timeout", type=float, default=None,
                        help="GRADFIX_FILE_TIMEOUT for gradfix's runs (gradfix's own default, 60 s, when not given)")
    parser.add_argument("--only", choices=["large", "nesting"], default=None)
    options = parser.parse_args()
    env = dict(os.environ)
    if options.file_timeout is not None:
        env["GRADFIX_FILE_TIMEOUT"] = str(options.file_timeout)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; each command in its own interpreter "
          f"(start-up included), timeout {options.timeout:.0f} s; "
          f"GRADFIX_FILE_TIMEOUT={env.get('GRADFIX_FILE_TIMEOUT', '(default)')}")
    with tempfile.TemporaryDirectory(prefix="gradfix-bench-") as folder:
        scratch = pathlib.Path(folder)
        if options.only in (None, "large"):
            bench_large(options.lines, options.timeout, env, scratch)
        if options.only in (None, "nesting"):
            bench_nesting(options.depths, options.statement_depths, options.timeout, env, scratch)


if __name__ == "__main__":
    main()
