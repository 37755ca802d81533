"""What following the gradients to a manual update costs: `gradfix diagnose` against the plain run, in one run.

    python bench/bench_updates.py [--repeat N] [--layers L]

Two programs that differ only in their update: a model of L Dense layers (2L variables) trained with
``v.assign_sub(lr * g)`` for each variable, and the same model trained with ``optimizer.apply_gradients``.
After each gradient call the child follows the gradients through the ops computed from them (an op callback,
on for at most 5000 ops) to tell which gradient each manual assign stores. Each program's baseline is its own
plain run; the ratio of diagnose to the plain run of the manual step, against the same ratio of the optimizer
step, is what the following costs. Medians of N interleaved runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_diagnose import report, timed  # noqa: E402

PROGRAM = """
import keras
import numpy as np
import tensorflow as tf

x = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((16,))] + [keras.layers.Dense(16, activation="relu") for _ in range({layers})]
                         + [keras.layers.Dense(1)])
optimizer = keras.optimizers.SGD(0.001)
for step in range(3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = tape.gradient(loss, model.trainable_variables)
{update}
"""
UPDATES = {
    "manual assign_sub": "    for variable, grad in zip(model.trainable_variables, grads):\n        variable.assign_sub(0.001 * grad)",
    "optimizer": "    optimizer.apply_gradients(zip(grads, model.trainable_variables))",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layers", type=int, default=30)
    options = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for name, update in UPDATES.items():
            path = Path(folder) / f"{name.split()[0]}.py"
            path.write_text(PROGRAM.format(layers=options.layers, update=update))
            runs[f"{name}: plain run"] = [python, path.name]
            runs[f"{name}: diagnose"] = [python, "-m", "gradfix", "diagnose", "--quiet", path.name]
        results: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(options.repeat):
            for name, command in runs.items():
                results[name].append(timed(command, Path(folder)))
    print(f"{options.layers + 1} Dense layers, {2 * (options.layers + 1)} variables")
    medians = report(results, "optimizer: plain run")
    manual = medians["manual assign_sub: diagnose"] / medians["manual assign_sub: plain run"]
    optimizer = medians["optimizer: diagnose"] / medians["optimizer: plain run"]
    print(f"diagnose / plain run: manual {manual:.2f}, optimizer {optimizer:.2f}; following the gradients: {manual / optimizer:.2f}x")


if __name__ == "__main__":
    main()
