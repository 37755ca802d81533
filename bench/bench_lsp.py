"""Time from a change to its diagnostics, and of code actions, through `gradfix lsp` as an editor drives it.

    python bench/bench_lsp.py [--lines 2000] [--changes 40]
    python bench/bench_lsp.py --file PATH [--changes 40]   # a real module, e.g. TensorFlow's framework/test_util.py
    python bench/bench_lsp.py --file PATH --finding-in-class --burst 8   # with a bug in its largest class; typing bursts

Starts the server as a process, opens a generated training module of about --lines lines, then
repeats: change one line in a different step each time, every other time adding a line (a full-text
didChange, as a client sends on typing), wait for the
publishDiagnostics of that version; ask for the code actions of the finding. The baseline is
gradfix's `analyze()` on the same texts in this process, without the protocol. Prints p50/p95.

``--finding-in-class`` adds, at the end of the module's largest top-level class, a method whose forward pass runs
before its tape (a GF001 finding), so that the rules that follow ``self.`` attributes through a class have a class to
follow. ``--burst N`` times typing instead of single changes: at each of ``--changes`` code lines, N characters
typed one by one, ``--typing-ms`` apart, with the server's own debounce (an editor's typing is what it is for), timed
from the last keystroke to the diagnostics of its version.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import re
import statistics
import sys
import tempfile
import time

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from gradfix.engine import analyze
from gradfix.source import SourceFile

STEP = '''

def train_step_{i}(model, optimizer, loss_fn, x_batch, y_batch):
    """Custom training step {i}."""
    with tf.GradientTape() as tape:
        logits = model(x_batch, training=True)
        loss = loss_fn(y_batch, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


def evaluate_{i}(model, x, y):
    predictions = model(x, training=False)
    hits = tf.equal(tf.argmax(predictions, axis=-1), y)
    return float(tf.reduce_mean(tf.cast(hits, tf.float32)))
'''

HEAD = '''import numpy as np
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(3)])
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
optimizer = tf.keras.optimizers.Adam(1e-3)


def buggy_step(x_batch, y_batch):
    logits = model(x_batch, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y_batch, logits)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
'''


# As VS Code and Neovim 0.10 declare: code actions resolved on choice, so fix-all costs nothing until chosen.
CAPABILITIES = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
    code_action=types.CodeActionClientCapabilities(resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]))))


def module(lines: int) -> str:
    text, i = HEAD, 0
    while text.count("\n") < lines:
        text += STEP.format(i=i)
        i += 1
    return text


def edit(text: str, number: int, steps: int) -> str:
    """The text after change ``number``: a different step each time; every other change adds a line (moving those below)."""
    step = (number * 7) % steps
    marker = f'"""Custom training step {step}."""'
    if number % 2:
        return text.replace(marker, f'"""Custom training step {step}, edit {number}."""\n    # a new line')
    return text.replace(marker, f'"""Custom training step {step}, edit {number}."""')


def _typing_line(lines: list[str], number: int) -> int:
    """The code line change ``number`` types at: one that ends a statement, spread over the file."""
    code = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith(("#", '"', "'", "@"))
            and not line.rstrip().endswith(("\\", ",", "(", "[", "{", ":")) and "#" not in line and '"""' not in line]
    return code[(number * 7919) % len(code)]


def real_edit(text: str, number: int) -> str:
    """The real file after change ``number``: one character typed at the end of a code line, spread over the file."""
    lines = text.split("\n")
    chosen = _typing_line(lines, number)
    lines[chosen] = lines[chosen] + " "
    return "\n".join(lines)


PLANTED_METHOD = '''
  def planted_train_step(self, model, optimizer, x, y):
    predictions = model(x, training=True)
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(y - predictions))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
'''


def with_finding_in_class(text: str) -> str:
    """``text`` with PLANTED_METHOD at the end of its largest top-level class (indented as the class's methods are)."""
    import ast
    classes = [node for node in ast.parse(text).body if isinstance(node, ast.ClassDef)]
    largest = max(classes, key=lambda node: node.end_lineno - node.lineno)
    lines = text.split("\n")
    indent = re.match(r"[ \t]*", lines[largest.body[-1].lineno - 1]).group(0)
    method = "\n".join(indent + line[2:] if line else line for line in PLANTED_METHOD.split("\n"))
    lines[largest.end_lineno:largest.end_lineno] = method.rstrip("\n").split("\n")
    if not re.search(r"^import tensorflow as tf$", text, re.M):
        lines.insert(0, "import tensorflow as tf")
    return "\n".join(lines)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(lines: int, changes: int, real: str | None = None, finding_in_class: bool = False,
              burst: int = 0, typing_ms: float = 60) -> None:
    text = pathlib.Path(real).read_text(encoding="utf-8") if real else module(lines)
    if finding_in_class:
        text = with_finding_in_class(text)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="gradfix-bench-lsp-"))
    path = folder / "train.py"
    path.write_text(text)
    uri = path.as_uri()
    client = LanguageClient("bench", "1")
    published: dict[int, list] = {}
    arrived = asyncio.Event()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: types.PublishDiagnosticsParams):
        published[params.version] = params.diagnostics
        arrived.set()

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params):
        pass

    await client.start_io(sys.executable, "-m", "gradfix", "lsp")
    await client.initialize_async(types.InitializeParams(
        capabilities=CAPABILITIES, root_uri=folder.as_uri(), initialization_options={} if burst else {"debounceMs": 0}))
    client.initialized(types.InitializedParams())

    async def wait_version(version):
        while version not in published:
            arrived.clear()
            await arrived.wait()
        return published[version]

    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text)))
    diagnostics = await wait_version(1)
    finding = diagnostics[0] if diagnostics else None
    change_ms, action_ms, baseline_ms = [], [], []
    steps = text.count("def train_step_")
    for number in range(0 if burst else changes):
        version = number + 2
        edited = real_edit(text, number) if real else edit(text, number, steps)
        started = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=edited)]))
        await wait_version(version)
        change_ms.append((time.perf_counter() - started) * 1000)
        if finding is not None:
            started = time.perf_counter()
            actions = await client.text_document_code_action_async(types.CodeActionParams(
                types.TextDocumentIdentifier(uri), finding.range, types.CodeActionContext(diagnostics=[finding])))
            action_ms.append((time.perf_counter() - started) * 1000)
            assert actions, "no code action for the finding"
        started = time.perf_counter()
        analyze(SourceFile(str(path), edited, "utf-8"))
        baseline_ms.append((time.perf_counter() - started) * 1000)
    burst_ms = []
    version = 1
    lines = text.split("\n")
    for number in range(changes if burst else 0):
        at = _typing_line(lines, number)
        for typed in range(1, burst + 1):
            version += 1
            keys = (" # " + "typed " * burst)[:typed]  # a comment: the text parses at every key
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                [types.TextDocumentContentChangeWholeDocument(text="\n".join([*lines[:at], lines[at] + keys, *lines[at + 1:]]))]))
            started = time.perf_counter()
            if typed < burst:
                await asyncio.sleep(typing_ms / 1000)
        await wait_version(version)
        burst_ms.append((time.perf_counter() - started) * 1000)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    print(f"module: {real or 'generated'}, {text.count(chr(10))} lines, {len(diagnostics)} finding(s); {changes} changes")
    print(f"{'measure':<42} {'p50 ms':>8} {'p95 ms':>8}")
    rows = [
        ("baseline: analyze() in process", baseline_ms),
        ("change -> publishDiagnostics (LSP)", change_ms),
        ("codeAction on the finding (LSP)", action_ms),
        (f"burst of {burst} keys, last key -> diagnostics", burst_ms),
    ]
    for name, values in rows:
        if not values:
            continue
        print(f"{name:<42} {statistics.median(values):8.1f} {percentile(values, 0.95):8.1f}")
    if change_ms:
        print(f"ratio change/baseline, p50: {statistics.median(change_ms) / statistics.median(baseline_ms):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--file", help="a real module to edit instead of a generated one")
    parser.add_argument("--finding-in-class", action="store_true", help="add a method with a GF001 bug to the largest class")
    parser.add_argument("--burst", type=int, default=0, help="also time bursts of this many keys typed")
    parser.add_argument("--typing-ms", type=float, default=60, help="time between keys in a burst")
    options = parser.parse_args()
    asyncio.run(run(options.lines, options.changes, options.file, options.finding_in_class, options.burst, options.typing_ms))


if __name__ == "__main__":
    main()
