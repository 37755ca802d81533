"""Every safe fix of the rules' examples and of the fixtures, as a program that runs its training step.

A rule's example is a snippet: it reads names it does not bind (`model`, `x`, `optimizer`) and defines a
step it does not call. A :class:`Driver` makes one a program: the lines put before it (data, a model, an
optimizer) and after it (the call of its step, or `fit`). The example is fixed as written, with every rule
and safe fixes only, as `gradfix fix` would fix the file; then the driver's lines go around it. A driver
serves the examples of its rule whose code holds its ``marker``; each example with a safe fix must be served
by exactly one (``tests/test_safe_fixes.py`` checks that without TensorFlow).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from fix_safety_cases import CASES
from fixture_cases import buggy_cases

from gradfix.engine import analyze, fix_source
from gradfix.model import Applicability
from gradfix.registry import all_rules
from gradfix.rule import Invalid
from gradfix.source import SourceFile, read_source

# Regression data and a small model, as most examples read them.
REGRESSION = """
import numpy as np
import tensorflow as tf
x = np.random.rand(8, 4).astype("float32")
y = np.random.rand(8, 1).astype("float32")
labels = y
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(8, activation="relu"),
                             tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)
loss_fn = tf.keras.losses.MeanSquaredError()
dataset = [(x, y)]
"""

# Ten classes: integer labels `y`, one-hot labels `y_onehot`, a model that outputs probabilities.
CLASSES = """
import numpy as np
import tensorflow as tf
x = np.random.rand(8, 4).astype("float32")
y = np.random.randint(0, 10, size=(8,))
y_onehot = tf.one_hot(y, 10)
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(10, activation="softmax")])
"""

# 0/1 labels and a model that outputs one probability.
BINARY = """
import numpy as np
import tensorflow as tf
x = np.random.rand(8, 4).astype("float32")
y = np.random.randint(0, 2, size=(8, 1)).astype("float32")
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(1, activation="sigmoid")])
"""

FIT = "model.fit(x, y, batch_size=4, epochs=1, verbose=0)"


@dataclass(frozen=True)
class Driver:
    rule: str
    marker: str  # text of the example, as written, that names the examples this driver serves
    before: str = ""
    after: str = ""
    # (the start of a line of the example, lines put right after it): a model the example makes unbuilt is built there
    inserted: tuple[str, str] | None = None

    def serves(self, code: str) -> bool:
        return self.marker in textwrap.dedent(code)


DRIVERS = [
    # --- GF001 ---------------------------------------------------------------------------------------
    Driver("GF001", "def train_step(model, optimizer, loss_fn, x, y):", REGRESSION, "train_step(model, optimizer, loss_fn, x, y)"),
    Driver("GF001", "def train_step(model, optimizer, x, y):", """
import numpy as np
import tensorflow as tf
x = np.random.rand(8, 4).astype("float32")
y = np.random.randint(0, 3, size=(8,))
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(3)])
optimizer = tf.keras.optimizers.SGD(0.01)
""", "train_step(model, optimizer, x, y)"),
    Driver("GF001", "dw, db = tape.gradient(loss, [w, b])"),
    Driver("GF001", "grad = tape.gradient(scaled, w)"),
    Driver("GF001", "def ascent_step(model, optimizer, x):", REGRESSION, "ascent_step(model, optimizer, x)"),
    Driver("GF001", "class Classifier(keras.Model):", after="""
import numpy as np
classifier = Classifier()
classifier.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
classifier.fit(np.random.rand(8, 4).astype("float32"), np.random.randint(0, 3, size=(8,)), batch_size=4, epochs=1, verbose=0)
"""),
    # --- GF002 ---------------------------------------------------------------------------------------
    Driver("GF002", "\ngrads = ", REGRESSION),
    Driver("GF002", "model.compile(", REGRESSION, FIT),
    Driver("GF002", "class Trainer:", REGRESSION, """
trainer = Trainer()
trainer.model, trainer.loss_fn = model, loss_fn
trainer.train_step(x, y)
"""),
    Driver("GF002", "def train_step(x, y):", REGRESSION, "train_step(x, y)"),
    # --- GF004 ---------------------------------------------------------------------------------------
    Driver("GF004", "\ngrads = ", REGRESSION),
    Driver("GF004", "def step(x, y):", REGRESSION + "w = tf.Variable(tf.zeros([4, 1]))\nb = tf.Variable(0.0)\n", "step(x, y)"),
    Driver("GF004", "model.compile(", REGRESSION, FIT),
    Driver("GF004", "def train_step(x, y):", REGRESSION, "train_step(x, y)"),
    Driver("GF004", "def step(self, x, y):", REGRESSION, "trainer = Trainer()\ntrainer.model = model\ntrainer.step(x, y)"),
    Driver("GF004", "def step(self, forward, x, y):", REGRESSION, "trainer = Trainer()\ntrainer.model = model\ntrainer.step(model, x, y)"),
    # --- GF005 ---------------------------------------------------------------------------------------
    Driver("GF005", "b = tf.Variable(0.0)\nfor step in range(10):", """
import numpy as np
x = np.random.rand(8, 3).astype("float32")
y = np.random.rand(8, 1).astype("float32")
"""),
    Driver("GF005", "class Linear(tf.Module):", after="""
import numpy as np
Linear().train_step(np.random.rand(8, 2).astype("float32"), np.random.rand(8, 1).astype("float32"))
"""),
    Driver("GF005", "global W, c", after="""
import numpy as np
for _ in range(2):
    step(np.random.rand(8, 4).astype("float32"), np.random.rand(8, 1).astype("float32"))
"""),
    # --- GF006 ---------------------------------------------------------------------------------------
    Driver("GF006", "for x, y in dataset:", REGRESSION),
    Driver("GF006", "class Net(keras.Model):", REGRESSION, """
net = Net()
net.head(net.drop(net.body(x)))
net.compile(optimizer="adam", loss="mse")
net.fit(x, y, batch_size=4, epochs=1, verbose=0)
"""),
    Driver("GF006", "params = [v for v in model.variables]", REGRESSION, inserted=("model = ", "model.build((None, 4))")),
    Driver("GF006", "def grads_of(tape, loss, variables):", REGRESSION),
    Driver("GF006", "class DiffusionModel(keras.Model):", after="""
import numpy as np
diffusion = DiffusionModel(image_size=8, widths=[4])
diffusion.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.MeanAbsoluteError())
diffusion.fit(np.random.rand(4, 8, 8, 3).astype("float32"), batch_size=2, epochs=1, verbose=0)
"""),
    Driver("GF006", "class Classifier(keras.Model):", after="""
import numpy as np
classifier = Classifier()
classifier.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
classifier.fit(np.random.rand(8, 4).astype("float32"), np.random.randint(0, 10, size=(8,)), batch_size=4, epochs=1, verbose=0)
"""),
    # --- GF007 ---------------------------------------------------------------------------------------
    Driver("GF007", "x = tf.constant(3.0)"),
    Driver("GF007", "c1, c2 = tf.constant(5.0), tf.constant(3.0)"),
    Driver("GF007", "x = x0 + tf.constant(3.0)"),
    Driver("GF007", "r = tf.add(v, tf.random.uniform((4, 3), maxval=0.01))"),
    Driver("GF007", "x = tf.constant([1.0, 2.0])"),
    Driver("GF007", "def adversarial_pattern(", """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(28, 28, 1)), tf.keras.layers.Flatten(),
                             tf.keras.layers.Dense(10, activation="softmax")])
label = tf.one_hot([3], 10)
"""),
    Driver("GF007", "with tf.GradientTape() as outer:", """
import tensorflow as tf
net = tf.keras.Sequential([tf.keras.layers.Input(shape=(1,)), tf.keras.layers.Dense(8, activation="tanh"),
                           tf.keras.layers.Dense(1)])
"""),
    Driver("GF007", "from_tensor_slices((features, labels))", REGRESSION + "features = x\n"),
    Driver("GF007", "global w1, b1", REGRESSION, "for _ in range(2):\n    train_step(x, y)"),
    Driver("GF007", "class Trainer:", REGRESSION, "trainer = Trainer()\nfor _ in range(2):\n    trainer.train_step(x, y)"),
    # --- GF008 ---------------------------------------------------------------------------------------
    Driver("GF008", "loss_fn = tf.keras.losses.CategoricalCrossentropy()", CLASSES),
    Driver("GF008", "SparseCategoricalCrossentropy(from_logits=True)(y,", CLASSES),
    Driver("GF008", "model.compile(", BINARY, FIT),
    # --- GF010 ---------------------------------------------------------------------------------------
    Driver("GF010", "base_model.trainable = False", """
import numpy as np
import tensorflow as tf
x = np.random.rand(2, 32, 32, 3).astype("float32")
y = np.random.randint(0, 10, size=(2,))
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
"""),
    # --- GF012 ---------------------------------------------------------------------------------------
    Driver("GF012", "def train_step(generator, discriminator, g_opt, d_opt, images, noise):", """
import numpy as np
import tensorflow as tf
generator = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(6)])
discriminator = tf.keras.Sequential([tf.keras.layers.Input(shape=(6,)), tf.keras.layers.Dense(1)])
g_opt, d_opt = tf.keras.optimizers.Adam(), tf.keras.optimizers.Adam()
images = np.random.rand(8, 6).astype("float32")
noise = np.random.rand(8, 4).astype("float32")
""", "train_step(generator, discriminator, g_opt, d_opt, images, noise)"),
    Driver("GF012", "def train_step(generator, discriminator, images, noise):", """
import numpy as np
import tensorflow as tf
generator = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(6)])
discriminator = tf.keras.Sequential([tf.keras.layers.Input(shape=(6,)), tf.keras.layers.Dense(1)])
images = np.random.rand(8, 6).astype("float32")
noise = np.random.rand(8, 4).astype("float32")
""", "train_step(generator, discriminator, images, noise)"),
]


@dataclass(frozen=True)
class SafeFixProgram:
    """A program made of a safe fix: ``text`` is run as ``name`` in a folder of its own (or in ``folder``,
    for a fixture that imports its neighbours), as ``target``."""

    id: str
    text: str
    name: str = "program.py"
    target: str = ""
    folder: str = ""


def _source(code: str) -> SourceFile:
    return SourceFile(path="example.py", text=textwrap.dedent(code), encoding="utf-8")


def has_safe_fix(source: SourceFile) -> bool:
    return any(f.fix is not None and f.fix.applicability is Applicability.SAFE for f in analyze(source))


def examples_with_safe_fixes() -> list[tuple[str, int, Invalid]]:
    """(rule code, index, example) for each invalid example some rule offers a safe fix for."""
    return [(rule.code, index, example) for rule in all_rules() for index, example in enumerate(rule.INVALID)
            if has_safe_fix(_source(example.code))]


def drivers_of(code: str, example: Invalid) -> list[Driver]:
    return [driver for driver in DRIVERS if driver.rule == code and driver.serves(example.code)]


def example_programs() -> list[SafeFixProgram]:
    programs = []
    for code, index, example in examples_with_safe_fixes():
        drivers = drivers_of(code, example)
        if len(drivers) != 1:
            continue  # tests/test_safe_fixes.py reports it
        driver = drivers[0]
        fixed = fix_source(_source(example.code), include_unsafe=False).new_text
        if driver.inserted is not None:
            fixed = _insert_after(fixed, *driver.inserted)
        text = "\n".join(part.strip("\n") for part in (driver.before, fixed, driver.after) if part.strip()) + "\n"
        programs.append(SafeFixProgram(f"{code}-invalid-{index}", text))
    return programs


def _insert_after(text: str, start: str, inserted: str) -> str:
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(start))
    return "".join(lines[:at + 1]) + inserted.strip("\n") + "\n" + "".join(lines[at + 1:])


def case_programs() -> list[SafeFixProgram]:
    """The whole programs among the look-alikes of ``fix_safety_cases``, with their safe fixes applied."""
    return [SafeFixProgram(case.id, fix_source(SourceFile("case.py", case.code.lstrip("\n"), "utf-8"),
                                               include_unsafe=False).new_text)
            for case in CASES if case.program]


def fixture_programs() -> list[SafeFixProgram]:
    """Each fixture with a safe fix, with its safe fixes applied (and only those)."""
    programs = []
    for case in buggy_cases():
        source = read_source(str(case.buggy))
        if not has_safe_fix(source):
            continue
        target, folder = case.run_target()
        text = fix_source(source, include_unsafe=False).new_text
        programs.append(SafeFixProgram(case.id, text, case.buggy.name, target, str(folder)))
    return programs
