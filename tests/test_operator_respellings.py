"""Each operator on the same bug in each spelling and wherever it sits, pinned as a run pins it (line + op type).

A spelling is an API family and import form (`tf.`, `tf.math.`, `K.`, `tf.keras.backend.`, `keras.ops.`,
`from keras import ops`, a name imported from TensorFlow, a Python operator, a builtin); a location is
where the expression sits (inline in a tape, a helper, a method, `Layer.call`, a `Lambda`, a loss given to
`compile`, `train_step`, a `tf.function`). Every pair must be rewritten, compile, change only the cut line
(and an import the rewrite needs), and read as expected.
"""

from __future__ import annotations

import pytest
from test_operators import rewrites

from gradfix.transforms.add_unused_loss_term import AddUnusedLossTerm
from gradfix.transforms.float_dtype import FloatDtype
from gradfix.transforms.functional_state import FunctionalState
from gradfix.transforms.move_into_tape import MoveIntoTape
from gradfix.transforms.numpy_to_tf import NumpyToTf
from gradfix.transforms.surrogate import Surrogate
from gradfix.transforms.unwrap_stop_gradient import UnwrapStopGradient
from gradfix.transforms.use_prediction import UsePrediction
from gradfix.transforms.watch import Watch

TF = "import tensorflow as tf"
K = "from tensorflow.keras import backend as K"

LOCATIONS = {
    "inline": """
{imports}
import tensorflow as tf

with tf.GradientTape() as tape:
    p = model(x, training=True)
    q = {expr}  # cut
    loss = tf.reduce_mean(q)
grads = tape.gradient(loss, model.trainable_variables)
""",
    "helper": """
{imports}

def hard(p):
    return {expr}  # cut
""",
    "method": """
{imports}

class Quantizer:
    def apply(self, p):
        q = {expr}  # cut
        return q
""",
    "layer-call": """
{imports}
import keras

class Hard(keras.layers.Layer):
    def call(self, p):
        return {expr}  # cut
""",
    "lambda": """
{imports}
from tensorflow.keras.layers import Lambda

hard = Lambda(lambda p: {expr})  # cut
""",
    "compiled-loss": """
{imports}

def loss_fn(y_true, p):
    return {expr}  # cut

model.compile(optimizer="adam", loss=loss_fn)
""",
    "train-step": """
{imports}
import keras
import tensorflow as tf

class Net(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            p = self(x, training=True)
            loss = keras.ops.mean({expr})  # cut
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {{"loss": loss}}
""",
    "tf-function": """
{imports}
import tensorflow as tf

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        p = model(x)
        loss = tf.reduce_mean({expr})  # cut
    return tape.gradient(loss, model.trainable_variables)
""",
}

# (id, imports, expression over `p`, the run's op type, the text the cut line must hold after the rewrite)
SURROGATE_SPELLINGS = [
    ("round-tf", TF, "tf.round(p)", "Round", "p + tf.stop_gradient(tf.round(p) - p)"),
    ("round-tf.math", TF, "tf.math.round(p)", "Round", "p + tf.stop_gradient(tf.math.round(p) - p)"),
    ("round-K", K, "K.round(p)", "Round", "p + K.stop_gradient(K.round(p) - p)"),
    ("round-tf.keras.backend", TF, "tf.keras.backend.round(p)", "Round",
     "p + tf.keras.backend.stop_gradient(tf.keras.backend.round(p) - p)"),
    ("round-keras.ops", "import keras", "keras.ops.round(p)", "Round", "p + keras.ops.stop_gradient(keras.ops.round(p) - p)"),
    ("round-from-keras-import-ops", "from keras import ops", "ops.round(p)", "Round", "p + ops.stop_gradient(ops.round(p) - p)"),
    ("round-imported-name", "from tensorflow.math import round as tround", "tround(p)", "Round",
     "p + tf.stop_gradient(tround(p) - p)"),
    ("round-builtin", "import numpy as np", "round(p)", "Round", "p + tf.stop_gradient(round(p) - p)"),
    ("floor-tf.math", TF, "tf.math.floor(p * 4.0)", "Floor", "(p * 4.0) + tf.stop_gradient(tf.math.floor(p * 4.0) - (p * 4.0))"),
    ("sign-keras.ops", "import keras", "keras.ops.sign(p)", "Sign", "p + keras.ops.stop_gradient(keras.ops.sign(p) - p)"),
    ("floordiv-operator", TF, "p // 0.25", "FloorDiv", "p / 0.25 + tf.stop_gradient(p // 0.25 - p / 0.25)"),
    ("cast-int-K", K, 'K.cast(p * 4.0, "int32")', "Cast",
     '(p * 4.0) + K.stop_gradient(K.cast(K.cast(p * 4.0, "int32"), (p * 4.0).dtype) - (p * 4.0))'),
    ("greater-operator-tf", TF, "tf.cast(p > 0.5, tf.float32)", "Greater",
     "p + tf.stop_gradient(tf.cast(p > 0.5, tf.float32) - p)"),
    ("less-equal-operator-K", K, 'K.cast(p <= 0.5, "float32")', "LessEqual",
     '-p + K.stop_gradient(K.cast(p <= 0.5, "float32") + p)'),
    ("greater-call-keras.ops", "import keras", 'keras.ops.cast(keras.ops.greater(p, 0.5), "float32")', "Greater",
     'p + keras.ops.stop_gradient(keras.ops.cast(keras.ops.greater(p, 0.5), "float32") - p)'),
    ("random-threshold-K", K, 'K.cast(K.random_uniform(K.shape(p)) < p, "float32")', "Less",
     'p + K.stop_gradient(K.cast(K.random_uniform(K.shape(p)) < p, "float32") - p)'),
    ("equal-call-tf.math", TF, "tf.cast(tf.math.equal(p, 1.0), tf.float32)", "Equal",
     "p + tf.stop_gradient(tf.cast(tf.math.equal(p, 1.0), tf.float32) - p)"),
    ("one-hot-argmax-K", K, "K.one_hot(K.argmax(p), 3)", "ArgMax",
     "K.softmax(p, axis=-1) + K.stop_gradient(K.one_hot(K.argmax(p), 3) - K.softmax(p, axis=-1))"),
    ("one-hot-argmax-tf", TF, "tf.one_hot(tf.argmax(p, axis=-1), 3)", "ArgMax",
     "tf.nn.softmax(p, axis=-1) + tf.stop_gradient(tf.one_hot(tf.argmax(p, axis=-1), 3) - tf.nn.softmax(p, axis=-1))"),
    ("one-hot-argmax-keras.ops", "import keras", "keras.ops.one_hot(keras.ops.argmax(p, axis=-1), 3)", "ArgMax",
     "keras.ops.softmax(p, axis=-1) + keras.ops.stop_gradient(keras.ops.one_hot(keras.ops.argmax(p, axis=-1), 3) - "
     "keras.ops.softmax(p, axis=-1))"),
    ("argmax-output-K", K, 'K.cast(K.argmax(p), "float32")', "ArgMax",
     'K.sum(K.softmax(p, axis=-1) * (K.cumsum(K.ones_like(p), axis=-1) - 1.0), axis=-1) + K.stop_gradient('
     'K.cast(K.argmax(p), "float32") - K.sum(K.softmax(p, axis=-1) * (K.cumsum(K.ones_like(p), axis=-1) - 1.0), axis=-1))'),
]

# Spellings with no module of their own to follow.
UNSPELLED = {"round-imported-name", "round-builtin", "floordiv-operator"}

STOP_SPELLINGS = [
    ("tf", TF, "tf.stop_gradient(p * 2.0)", "p * 2.0"),
    ("K", K, "K.stop_gradient(p * 2.0)", "p * 2.0"),
    ("keras.ops", "import keras", "keras.ops.stop_gradient(p * 2.0)", "p * 2.0"),
    ("tf.keras.backend", TF, "tf.keras.backend.stop_gradient(p * 2.0)", "p * 2.0"),
    ("imported-name", "from tensorflow import stop_gradient", "stop_gradient(p * 2.0)", "p * 2.0"),
    ("inside-an-operator", TF, "2.0 * tf.stop_gradient(p + 1.0)", "2.0 * (p + 1.0)"),
]

NUMPY_SPELLINGS = [
    ("numpy-and-.numpy()", "import numpy as np\n" + TF, "np.mean(np.square(p.numpy() - 1.0))",
     "tf.reduce_mean(tf.square(p - 1.0))"),
    ("numpy-alias", "import numpy as onp\n" + TF, "onp.sum(onp.abs(p))", "tf.reduce_sum(tf.abs(p))"),
    ("array-method", TF, "(p.numpy() - 1.0).mean()", "tf.reduce_mean((p - 1.0))"),
    ("float", TF, "float(tf.reduce_mean(p))", "tf.reduce_mean(p)"),
    ("predict", "import numpy as np\n" + TF, "np.mean(net.predict(p))", "tf.reduce_mean(net(p, training=True))"),
]


def _program(location: str, imports: str, expr: str) -> str:
    return LOCATIONS[location].format(imports=imports, expr=expr)


def _check(operator, code: str, op: str, expected: str):
    made = rewrites(operator, code, op)
    assert made, f"{operator.name} rewrote nothing in:\n{code}"
    _, text = made[0]
    compile(text, "respelled.py", "exec")
    old_lines = [line for line in code.splitlines() if not line.startswith(("import ", "from "))]
    new_lines = [line for line in text.splitlines() if not line.startswith(("import ", "from "))]
    assert len(old_lines) == len(new_lines) or expected == "", text
    changed = [new for old, new in zip(old_lines, new_lines) if old != new]
    assert len(changed) == 1 and changed[0].rstrip().endswith("# cut"), f"only the cut line may change:\n{text}"
    assert expected in changed[0], f"{expected!r} not in {changed[0]!r}"
    return text


@pytest.mark.parametrize("location", list(LOCATIONS))
@pytest.mark.parametrize("case", SURROGATE_SPELLINGS, ids=[c[0] for c in SURROGATE_SPELLINGS])
def test_surrogate_in_every_spelling_and_place(case, location):
    name, imports, expr, op, expected = case
    if name in UNSPELLED and location == "train-step":
        # an operator, a builtin or a bare name takes the family of the call around it: keras.ops.mean here
        expected = expected.replace("tf.stop_gradient", "keras.ops.stop_gradient")
    text = _check(Surrogate(), _program(location, imports, expr), op, expected)
    if "tf.stop_gradient" in expected:
        assert "import tensorflow as tf" in text, "a TensorFlow spelling needs TensorFlow imported"


@pytest.mark.parametrize("location", list(LOCATIONS))
@pytest.mark.parametrize("case", STOP_SPELLINGS, ids=[c[0] for c in STOP_SPELLINGS])
def test_unwrap_stop_gradient_in_every_spelling_and_place(case, location):
    _, imports, expr, expected = case
    text = _check(UnwrapStopGradient(), _program(location, imports, expr), "StopGradient", expected)
    assert "stop_gradient(" not in text.split("# cut")[0].splitlines()[-1]


@pytest.mark.parametrize("location", list(LOCATIONS))
@pytest.mark.parametrize("case", NUMPY_SPELLINGS, ids=[c[0] for c in NUMPY_SPELLINGS])
def test_numpy_to_tf_in_every_spelling_and_place(case, location):
    _, imports, expr, expected = case
    _check(NumpyToTf(), _program(location, imports, expr), "", expected)


def test_a_surrogate_spelled_in_tensorflow_imports_it_when_missing():
    code = _program("lambda", "import numpy as np", "round(p)")
    _, text = rewrites(Surrogate(), code, "Round")[0]
    assert "import tensorflow as tf" in text and "import tensorflow as tf" not in code


def test_a_surrogate_is_not_offered_where_tf_names_something_else():
    code = "tf = object()\n\ndef hard(p):\n    return round(p)  # cut\n"
    assert rewrites(Surrogate(), code, "Round") == []


def test_the_pin_takes_only_the_op_the_run_saw():
    code = _program("inline", TF, "tf.round(p) + tf.cast(p > 0.5, tf.float32)")
    made = rewrites(Surrogate(), code, "Greater")
    assert made and all("tf.round(p) +" in text for _, text in made), "the round the run did not name stays as it is"


# --------------------------------------------------------------------------- move-into-tape

# (id, imports, the `with` header's items up to the tape's own `as tape`)
TAPE_SPELLINGS = [
    ("tf", TF, "tf.GradientTape()"),
    ("imported-name", "from tensorflow import GradientTape", "GradientTape()"),
    ("module-alias", "import tensorflow as T", "T.GradientTape()"),
    ("persistent", TF, "tf.GradientTape(persistent=True)"),
    ("two-items", TF, "tf.GradientTape() as other, tf.GradientTape()"),
]

TAPE_LOCATIONS = {
    "module": """
{imports}

predictions = model(x, training=True)  # cut
with {tape} as tape:
    loss = loss_fn(y, predictions)
grads = tape.gradient(loss, model.trainable_variables)
""",
    "function": """
{imports}

def step(model, x, y):
    predictions = model(x, training=True)  # cut
    with {tape} as tape:
        loss = loss_fn(y, predictions)
    return tape.gradient(loss, model.trainable_variables)
""",
    "method": """
{imports}

class Trainer:
    def step(self, x, y):
        predictions = self.model(x, training=True)  # cut
        with {tape} as tape:
            loss = self.loss_fn(y, predictions)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""",
    "train-step": """
{imports}
import keras

class Net(keras.Model):
    def train_step(self, data):
        x, y = data
        y_pred = self(x, training=True)  # cut
        with {tape} as tape:
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {{"loss": loss}}
""",
    "tf-function": """
{imports}
import tensorflow as tf

@tf.function
def step(x, y):
    predictions = model(x)  # cut
    with {tape} as tape:
        loss = loss_fn(y, predictions)
    return tape.gradient(loss, model.trainable_variables)
""",
    "loop-body": """
{imports}

for epoch in range(3):
    for x, y in dataset:
        predictions = model(x, training=True)  # cut
        with {tape} as tape:
            loss = loss_fn(y, predictions)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
}


def _opened_before(text: str, statement: str) -> bool:
    """Whether ``statement`` now sits inside the ``with`` block that precedes it."""
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("with "))
    moved = next(i for i, line in enumerate(lines) if line.strip().startswith(statement))
    indent = lambda line: len(line) - len(line.lstrip())  # noqa: E731
    return header < moved and indent(lines[moved]) > indent(lines[header])


@pytest.mark.parametrize("location", list(TAPE_LOCATIONS))
@pytest.mark.parametrize("case", TAPE_SPELLINGS, ids=[c[0] for c in TAPE_SPELLINGS])
def test_move_into_tape_opens_the_tape_before_the_forward_pass_in_every_spelling_and_place(case, location):
    _, imports, tape = case
    code = TAPE_LOCATIONS[location].format(imports=imports, tape=tape)
    made = rewrites(MoveIntoTape(), code, "")
    assert made, f"move-into-tape rewrote nothing in:\n{code}"
    rewrite, text = made[0]
    compile(text, "respelled.py", "exec")
    forward = next(line.strip() for line in code.splitlines() if line.rstrip().endswith("# cut"))
    assert _opened_before(text, forward), text
    assert sorted(text.split()) == sorted(code.split()), "only the order of the lines may change"
    assert rewrite.applicability.value == "safe"


@pytest.mark.parametrize("location", list(TAPE_LOCATIONS))
def test_move_into_tape_calls_a_moved_statement_with_an_effect_unsafe(location):
    code = TAPE_LOCATIONS[location].format(imports=TF, tape="tf.GradientTape()")
    code = code.replace("  # cut", "  # cut\n" + " " * 4 * location_depth(code) + "print('forward done')")
    rewrite, text = rewrites(MoveIntoTape(), code, "")[0]
    assert "print('forward done')" in text and rewrite.applicability.value == "unsafe" and rewrite.reason


def location_depth(code: str) -> int:
    line = next(line for line in code.splitlines() if line.rstrip().endswith("# cut"))
    return (len(line) - len(line.lstrip())) // 4


@pytest.mark.parametrize("case", TAPE_SPELLINGS, ids=[c[0] for c in TAPE_SPELLINGS])
def test_move_into_tape_computes_a_negated_target_inside_the_block(case):
    _, imports, tape = case
    code = (f"{imports}\n\ndef step(model, x):\n    with {tape} as tape:\n        score = model(x)\n"
            "    return tape.gradient(-score, model.trainable_variables)  # cut\n")
    _, text = rewrites(MoveIntoTape(), code, "")[0]
    assert "        negative_score = -score\n" in text and "tape.gradient(negative_score," in text


def test_move_into_tape_recomputes_a_module_level_prediction_where_the_compiled_loss_reads_it():
    code = ("import tensorflow as tf\n\npred = model(x)  # cut\n\ndef loss_fn(y_true, y_pred):\n"
            "    return tf.reduce_mean(tf.square(y_true - pred))\n\nmodel.compile(optimizer='adam', loss=loss_fn)\n")
    rewrite, text = rewrites(MoveIntoTape(), code, "")[0]
    assert "def loss_fn(y_true, y_pred):\n    pred = model(x)" in text
    assert rewrite.applicability.value == "unsafe" and "recomputed" in rewrite.reason


def test_move_into_tape_leaves_a_layer_attribute_alone_when_the_names_it_keeps_are_taken():
    code = ("import tensorflow as tf\n\nclass L(tf.keras.layers.Layer):\n    def build(self, shape):\n"
            "        parts = [self.add_weight(shape=(2, 2)) for _ in range(2)]\n        self.parts = None\n"
            "        self.kernel = tf.concat(parts, axis=-1)  # cut\n\n    def call(self, x):\n"
            "        return tf.matmul(x, self.kernel)\n")
    assert [t for _, t in rewrites(MoveIntoTape(), code, "") if "self.kernel" not in t] == []


# A value computed in the tape and never read (loss-ignores-prediction): the tape in each spelling, the step in each place.
STEP_TAPE_SPELLINGS = [
    ("tf", "import tensorflow as tf", "tf.GradientTape()"),
    ("alias", "import tensorflow as T", "T.GradientTape(persistent=True)"),
    ("imported-name", "from tensorflow import GradientTape", "GradientTape()"),
]

STEP_PLACES = {
    "top-level": """
{imports}

with {tape} as tape:
{body}
grads = tape.gradient({target}, model.trainable_variables)
""",
    "function": """
{imports}

def step(x, y):
    with {tape} as tape:
{body}
    grads = tape.gradient({target}, model.trainable_variables)
    return grads
""",
    "train-step": """
{imports}
import keras

class VAE(keras.Model):
    def train_step(self, data):
        x, y = data
        with {tape} as tape:
{body}
        grads = tape.gradient({target}, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {{"loss": {target}}}
""",
    "tf-function-loop": """
{imports}
import tensorflow as tf

@tf.function
def train(batches):
    for x, y in batches:
        with {tape} as tape:
{body}
        grads = tape.gradient({target}, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
}

UNUSED_TERM = """    h = encoder(x)
    reconstruction_loss = mse(x, decoder(h))  # cut
    kl_loss = kl(h)
    total_loss = 0.5 * kl_loss"""

IGNORED_PREDICTION = """    hidden = encoder(x)
    logits = head(hidden)  # cut
    loss = xent(y, hidden)"""


def _step(place: str, imports: str, tape: str, body: str, target: str) -> str:
    indent = {"top-level": "", "function": "    ", "train-step": "        ", "tf-function-loop": "        "}[place]
    shaped = "\n".join(indent + line for line in body.splitlines())
    code = STEP_PLACES[place].format(imports=imports, tape=tape, body=shaped, target=target)
    compile(code, "respelled.py", "exec")
    return code


def _changed_lines(code: str, text: str) -> list[str]:
    return [new for old, new in zip(code.splitlines(), text.splitlines()) if old != new]


@pytest.mark.parametrize("place", list(STEP_PLACES))
@pytest.mark.parametrize("spelling", STEP_TAPE_SPELLINGS, ids=[s[0] for s in STEP_TAPE_SPELLINGS])
def test_add_unused_loss_term_wherever_the_step_sits(spelling, place):
    _, imports, tape = spelling
    code = _step(place, imports, tape, UNUSED_TERM, "total_loss")
    made = rewrites(AddUnusedLossTerm(), code, "")
    assert made, f"nothing rewritten in:\n{code}"
    rewrite, text = made[0]
    compile(text, "respelled.py", "exec")
    assert [line.strip() for line in _changed_lines(code, text)] == ["total_loss = 0.5 * kl_loss + reconstruction_loss"]
    assert rewrite.applicability.value == "unsafe" and "objective" in rewrite.reason
    assert rewrites(UsePrediction(), code, "") == [], "a term named like a loss is not a prediction"


@pytest.mark.parametrize("place", list(STEP_PLACES))
@pytest.mark.parametrize("spelling", STEP_TAPE_SPELLINGS, ids=[s[0] for s in STEP_TAPE_SPELLINGS])
def test_use_prediction_wherever_the_step_sits(spelling, place):
    _, imports, tape = spelling
    code = _step(place, imports, tape, IGNORED_PREDICTION, "loss")
    made = rewrites(UsePrediction(), code, "")
    assert made, f"nothing rewritten in:\n{code}"
    _, text = made[0]
    compile(text, "respelled.py", "exec")
    assert [line.strip() for line in _changed_lines(code, text)] == ["loss = xent(y, logits)"]
    assert rewrites(AddUnusedLossTerm(), code, "") == []


def test_a_term_read_after_the_tape_is_not_added():
    code = _step("function", TF, "tf.GradientTape()", UNUSED_TERM, "total_loss").replace(
        "    return grads", "    return grads, reconstruction_loss")
    assert rewrites(AddUnusedLossTerm(), code, "") == []


def test_a_tape_that_is_not_a_gradient_tape_gives_no_rewrite():
    code = _step("function", TF, "tf.device('/cpu:0')", UNUSED_TERM, "total_loss")
    assert rewrites(AddUnusedLossTerm(), code, "") == []


WATCH_PLACES = {
    "top-level": """
{imports}
import tensorflow as tf

x = tf.random.normal((2, 3))
with {tape} as g:
    y = model(x)
grad = g.gradient(y, x)  # cut
""",
    "function": """
{imports}
import tensorflow as tf

def saliency(model, images):
    x = tf.convert_to_tensor(images, dtype=tf.float32)
    with {tape} as g:
        y = model(x)
        grad = g.gradient(y, [x])  # cut
    return grad
""",
    "method-interpolation": """
{imports}
import tensorflow as tf

class WGAN:
    def gradient_penalty(self, real, fake):
        alpha = tf.random.uniform([4, 1])
        with {tape} as g:
            x = alpha * real + (1 - alpha) * fake
            y = self.critic(x, training=True)
        return g.gradient(y, x)  # cut
""",
}


@pytest.mark.parametrize("place", list(WATCH_PLACES))
@pytest.mark.parametrize("spelling", STEP_TAPE_SPELLINGS, ids=[s[0] for s in STEP_TAPE_SPELLINGS])
def test_watch_wherever_the_gradient_is_asked(spelling, place):
    _, imports, tape = spelling
    code = WATCH_PLACES[place].format(imports=imports, tape=tape)
    made = rewrites(Watch(), code, "")
    assert made, f"nothing rewritten in:\n{code}"
    rewrite, text = made[0]
    compile(text, "respelled.py", "exec")
    added = [line for line in text.splitlines() if line not in code.splitlines()]
    assert [line.strip() for line in added] == ["g.watch(x)"]
    body = text.split(" as g:\n", 1)[1].splitlines()
    assert "g.watch(x)" in body[1 if place == "method-interpolation" else 0], "watched right after x exists in the block"
    assert rewrite.applicability.value == "safe", "x is a tensor wherever it is bound"


def test_watch_of_a_parameter_is_unsafe():
    code = """
import tensorflow as tf

def saliency(model, x):
    with tf.GradientTape() as tape:
        y = model(x)
    return tape.gradient(y, x)  # cut
"""
    made = rewrites(Watch(), code, "")
    assert made and made[0][0].applicability.value == "unsafe" and "tensor" in made[0][0].reason


# Where an integer variable is made, and how: (name, imports, creation, expected text on the cut line).
VARIABLE_LOCATIONS = {
    "module": "{imports}\n\nw = {expr}  # cut\n",
    "helper": "{imports}\n\ndef make():\n    return {expr}  # cut\n",
    "layer-build": "{imports}\nimport keras\n\nclass Scale(keras.layers.Layer):\n    def build(self, input_shape):\n"
                   "        self.w = {expr}  # cut\n",
    "model-init": "{imports}\nimport keras\n\nclass Net(keras.Model):\n    def __init__(self):\n        super().__init__()\n"
                  "        self.w = {expr}  # cut\n",
}
FLOAT_DTYPE_SPELLINGS = [
    ("python-int", TF, "tf.Variable(3)", "tf.Variable(3.0)"),
    ("int-list", TF, "tf.Variable([1, -2])", "tf.Variable([1.0, -2.0])"),
    ("tf-dtype", TF, "tf.Variable(0, dtype=tf.int32)", "dtype=tf.float32"),
    ("string-dtype", TF, "tf.Variable(0, dtype='int64')", "dtype='float32'"),
    ("numpy-dtype", "import numpy as np\n" + TF, "tf.Variable(0, dtype=np.int32)", "dtype=np.float32"),
    ("dtypes-module", TF, "tf.Variable([0, 1], dtype=tf.dtypes.int64)", "dtype=tf.dtypes.float32"),
    ("keras-variable", "import keras", 'keras.Variable(1, dtype="int32")', 'dtype="float32"'),
    ("imported-variable", "from tensorflow import Variable", "Variable(7)", "Variable(7.0)"),
]
WEIGHT_SPELLINGS = [
    ("add-weight-string", TF, 'self.add_weight(shape=(1,), initializer="zeros", dtype="int32")', 'dtype="float32"'),
    ("add-weight-tf", TF, "self.add_weight(shape=(2, 3), dtype=tf.int64)", "shape=(2, 3), dtype=tf.float32"),
    ("add-variable-positional-shape", TF, "self.add_variable((1,), initializer='zeros', dtype=tf.int32)",
     "add_variable((1,), initializer='zeros', dtype=tf.float32)"),
]


@pytest.mark.parametrize("location", list(VARIABLE_LOCATIONS))
@pytest.mark.parametrize("case", FLOAT_DTYPE_SPELLINGS, ids=[c[0] for c in FLOAT_DTYPE_SPELLINGS])
def test_float_dtype_in_every_spelling_and_place(case, location):
    _, imports, expr, expected = case
    code = VARIABLE_LOCATIONS[location].format(imports=imports, expr=expr)
    _check(FloatDtype(), code, "", expected)


@pytest.mark.parametrize("location", ["layer-build", "model-init"])
@pytest.mark.parametrize("case", WEIGHT_SPELLINGS, ids=[c[0] for c in WEIGHT_SPELLINGS])
def test_float_dtype_of_a_layer_weight_keeps_its_shape(case, location):
    _, imports, expr, expected = case
    code = VARIABLE_LOCATIONS[location].format(imports=imports, expr=expr)
    _check(FloatDtype(), code, "", expected)


def test_float_dtype_leaves_float_and_unknown_variables_alone():
    for expr in ("tf.Variable(1.5)", "tf.Variable(0, dtype=tf.float32)", "tf.Variable(initial)",
                 "self.add_weight(shape=(1,))"):
        code = VARIABLE_LOCATIONS["layer-build"].format(imports=TF, expr=expr)
        assert rewrites(FloatDtype(), code, "") == [], expr


METRIC_SPELLINGS = [
    ("tf-keras", TF, "mse = tf.keras.metrics.MeanSquaredError()", "tf.keras.losses.MeanSquaredError()(y, p)"),
    ("keras", "import keras", "mse = keras.metrics.MeanSquaredError()", "keras.losses.MeanSquaredError()(y, p)"),
    ("loss-arguments", "import keras", "mse = keras.metrics.BinaryCrossentropy(from_logits=True)",
     "keras.losses.BinaryCrossentropy(from_logits=True)(y, p)"),
]


@pytest.mark.parametrize("case", METRIC_SPELLINGS, ids=[c[0] for c in METRIC_SPELLINGS])
@pytest.mark.parametrize("place", ["module", "helper"])
def test_functional_state_turns_a_metric_used_as_a_loss_into_its_loss(case, place):
    _, imports, made, expected = case
    use = "loss = mse(y, p)  # cut" if place == "module" else "def loss_fn(y, p):\n    return mse(y, p)  # cut"
    _check(FunctionalState(), f"{imports}\n{made}\n{use}\n", "", expected)


@pytest.mark.parametrize("method", ["assign", "assign_add", "assign_sub"])
def test_functional_state_reads_the_new_value_of_every_assign_method(method):
    code = (f"import keras\n\nclass Ema(keras.losses.Loss):\n    def __call__(self, y, p):\n"
            f"        self.ema.{method}(keras.ops.mean(y - p))  # cut\n        return self.ema\n")
    made = rewrites(FunctionalState(), code, "")
    assert made, code
    text = made[0][1]
    assert "return new_ema" in text and "self.ema.assign(new_ema)" in text, text
    compile(text, "respelled.py", "exec")


def test_functional_state_leaves_a_state_update_that_is_not_read_back():
    code = "def step(self, x):\n    self.count.assign_add(1)  # cut\n    return x\n"
    assert rewrites(FunctionalState(), code, "") == []
