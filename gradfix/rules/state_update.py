"""GF013 state-update-in-forward-path."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import STATE_UPDATE
from gradfix.messages import brief
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.static import tapeflow
from gradfix.static.analysis import ModuleAnalysis, names_read
from gradfix.static.losses import metrics_used_as_losses, tracked_value
from gradfix.static.names import dotted
from gradfix.static.sources import resolve_sources
from gradfix.static.tree import walk
from gradfix.transforms.functional_state import functional_value, metric_as_loss
from gradfix.transforms.functional_state import update_call as _update_call


class StateUpdateInForwardPath(Rule):
    """Finds a value stored into a variable with `assign`, `assign_add` or `assign_sub` and read
    back on the way to the loss: a layer's `call` or a custom loss that updates its state and returns
    the variable, a model's output stored in a variable in the tape's block and the loss computed
    from the variable, and a stateful Keras metric (`keras.metrics.MeanSquaredError()`, ...) used as the loss.

    ## Why gradients vanish
    A variable holds state. The tape records the read of a variable, not how its value was computed,
    so what is stored with `assign` and read back has no gradient to the tensors it came from:
    everything before the `assign` gets `None`. A Keras metric object updates its running totals with
    `assign` and returns what it reads back, so a metric used as a loss gives no gradient at all
    (`No gradients provided for any variable`).

    ## Example
    ```python
    class Memory(keras.layers.Layer):
        def call(self, inputs):
            write = self.controller(inputs)
            self.memory.assign(0.9 * self.memory + 0.1 * write)
            return inputs * self.memory
    ```

    ## Fix
    Compute the new value as a tensor, store it, and use the tensor:
    ```python
        def call(self, inputs):
            write = self.controller(inputs)
            new_memory = 0.9 * self.memory + 0.1 * write
            self.memory.assign(new_memory)
            return inputs * new_memory
    ```
    For a metric used as a loss, call the loss of the same name (`keras.losses.MeanSquaredError()`).

    ## Fix safety
    Unsafe. The value computed is the same, but the gradient now reaches what the new state was
    computed from, which is the point, and changes training; a metric averages over every batch since
    it was reset, where the loss is the batch's own value. `gradfix diagnose --fix` proves each fix by
    re-running the step. A tensor stored in a tape's block gets no automatic fix: what reads the
    variable back may be a helper or a later step that needs the stored state.
    """

    code = "GF013"
    name = "state-update-in-forward-path"
    summary = "A value stored with `assign` and read back on the way to the loss, or a stateful metric used as the loss"
    applicability = Applicability.UNSAFE
    unsafe_reason = "the gradient now reaches what the stored value was computed from, which changes training"
    categories = (STATE_UPDATE,)
    needles = (".assign", "metrics")

    def wants(self, text: str) -> bool:
        # an update read back in a layer's `call`, or a stateful metric: nothing else is this rule's
        return ".assign" in text and ("def call" in text or "def __call__" in text or "GradientTape" in text) or "metrics" in text

    VALID = [
        # a counter updated in call() and never read on the way to the output
        """
        import tensorflow as tf
        class Counting(tf.keras.layers.Layer):
            def call(self, inputs):
                self.calls.assign_add(1)
                return inputs * 2.0
        """,
        # the update of an optimizer-like step outside the forward pass
        """
        import tensorflow as tf
        def sgd(w, g, lr):
            w.assign_sub(lr * g)
            return w
        """,
        # a metric updated for reporting, the loss computed by a loss function
        """
        import tensorflow as tf
        mse = tf.keras.metrics.MeanSquaredError()
        def step(model, x, y):
            with tf.GradientTape() as tape:
                pred = model(x)
                loss = tf.reduce_mean(tf.square(pred - y))
            mse.update_state(y, pred)
            return tape.gradient(loss, model.trainable_variables)
        """,
        # Look-alike: a counter updated in `call` but not read back.
        """
import tensorflow as tf
class Counting(tf.keras.layers.Layer):
    def call(self, inputs):
        self.calls.assign_add(1)
        return self.dense(inputs)
""",
        # Look-alike: a metric updated beside a real loss.
        """
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model
        self.mse = tf.keras.metrics.MeanSquaredError()
        self.loss_fn = tf.keras.losses.MeanSquaredError()

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_fn(y, pred)
        self.mse.update_state(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
        # Look-alike: the output is stored, and the loss is computed from the output itself.
        """
import tensorflow as tf

encoder = tf.keras.Sequential([tf.keras.layers.Dense(4)])
code = tf.Variable(tf.zeros([8, 4]), trainable=False)

def step(x):
    with tf.GradientTape() as tape:
        h = encoder(x)
        code.assign(h)
        loss = tf.reduce_mean(tf.square(h))
    return tape.gradient(loss, encoder.trainable_variables)
""",
        # Look-alike: a step counter updated in the tape's block and read by the loss.
        """
import tensorflow as tf

steps = tf.Variable(0.0, trainable=False)

def step(model, x):
    with tf.GradientTape() as tape:
        steps.assign_add(1.0)
        loss = tf.reduce_mean(model(x)) / steps
    return tape.gradient(loss, model.trainable_variables)
""",
    ]
    INVALID = [
        Invalid(
            """
            import tensorflow as tf
            class Memory(tf.keras.layers.Layer):
                def call(self, inputs):
                    write = tf.reduce_mean(inputs, axis=0, keepdims=True)
                    self.memory.assign(0.9 * self.memory + 0.1 * write)
                    return inputs * self.memory
            """,
            """
            import tensorflow as tf
            class Memory(tf.keras.layers.Layer):
                def call(self, inputs):
                    write = tf.reduce_mean(inputs, axis=0, keepdims=True)
                    new_memory = 0.9 * self.memory + 0.1 * write
                    self.memory.assign(new_memory)
                    return inputs * new_memory
            """,
        ),
        # an exponential moving average returned by a custom loss
        Invalid(
            """
            import tensorflow as tf
            class SmoothedMSE:
                def __call__(self, y_true, y_pred):
                    mse = tf.reduce_mean(tf.square(y_true - y_pred))
                    self.ema.assign_add(mse)
                    return self.ema
            """,
            """
            import tensorflow as tf
            class SmoothedMSE:
                def __call__(self, y_true, y_pred):
                    mse = tf.reduce_mean(tf.square(y_true - y_pred))
                    new_ema = self.ema + (mse)
                    self.ema.assign(new_ema)
                    return new_ema
            """,
        ),
        # a stateful metric used as a custom loss
        Invalid(
            """
            import keras
            sparse_cc = keras.metrics.SparseCategoricalCrossentropy(from_logits=False, ignore_class=-1)
            def custom_loss(y_true, y_pred):
                loss = sparse_cc(y_true, y_pred)
                return loss
            """,
            """
            import keras
            sparse_cc = keras.metrics.SparseCategoricalCrossentropy(from_logits=False, ignore_class=-1)
            def custom_loss(y_true, y_pred):
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=False, ignore_class=-1)(y_true, y_pred)
                return loss
            """,
        ),
        # Variant: a metric held on `self` used as the loss in a method.
        Invalid(
            """
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model
        self.mse = tf.keras.metrics.MeanSquaredError()

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.mse(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
            """
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model
        self.mse = tf.keras.metrics.MeanSquaredError()

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = tf.keras.losses.MeanSquaredError()(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
        ),
        # Variant: the metric class imported under another name.
        Invalid(
            """
import tensorflow as tf
from tensorflow.keras.metrics import MeanSquaredError as MSE

mse = MSE()
with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = mse(y, pred)
grads = tape.gradient(loss, model.trainable_variables)
""",
            None,
        ),
        # Variant: a model's output stored in a variable in the tape's block, the loss computed from the variable.
        Invalid(
            """
import tensorflow as tf

encoder = tf.keras.Sequential([tf.keras.layers.Dense(4)])
code = tf.Variable(tf.zeros([8, 4]), trainable=False)

def step(x):
    with tf.GradientTape() as tape:
        code.assign(encoder(x))
        loss = tf.reduce_mean(tf.square(code))
    return tape.gradient(loss, encoder.trainable_variables)
""",
            None,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for function in analysis.functions:
            # the forward path: a layer's or a loss object's call (an optimizer-like helper updates state on purpose)
            if function.name.value in ("call", "__call__") and analysis.enclosing_class(function) is not None:
                yield from self._assigns_read_back(analysis, function)
        yield from self._assigns_read_back_in_tape(analysis)
        yield from self._metrics_as_losses(analysis)

    def _assigns_read_back(self, analysis: ModuleAnalysis, function: cst.FunctionDef) -> Iterator[Report]:
        body = function.body
        if not isinstance(body, cst.IndentedBlock):
            return
        statements = list(body.body)
        for index, statement in enumerate(statements):
            update = _update_call(statement)
            if update is None:
                continue
            owner = update.func.value
            returns = [r for later in statements[index + 1:] for r in walk(later, cst.Return)]
            if not any(_reads(r, owner) for r in returns):
                continue
            if not _computed_in(update.args[0].value, function, owner):
                continue  # a constant step (a counter) carries no gradient either way
            replacements = functional_value(statement, update, statements[index + 1:], _fresh(analysis, owner))
            yield Report(
                node=statement,
                message=f"`{brief(analysis.code(owner), 20)}` is stored and read back on the way to the loss",
                detail=f"`{analysis.code(owner)}.{update.func.attr.value}(...)` stores a tensor that `{function.name.value}` "
                "returns by reading the variable back: what is read from a variable has no gradient. "
                "Use the new value itself as a tensor, and store it too.",
                replacements=replacements,
                fix_description=f"Use the new value of `{analysis.code(owner)}` itself, and store it too",
            )

    def _assigns_read_back_in_tape(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        """``v.assign(h)`` in a tape's block, ``h`` computed there from the sources, and the gradient's target
        computed from ``v`` read back, not from ``h``: the sources that reach the target only so get no gradient."""
        reported: set[cst.CSTNode] = set()
        for call in analysis.gradient_calls:
            tape = call.tape
            if tape is None or call.target is None:
                continue
            sources = resolve_sources(analysis, call.sources, call.scope)
            if not sources:
                continue
            flow = analysis.backward_slice(call.target, call.scope)
            reaching: set = set().union(*(tapeflow.references(analysis, s, sources) for s in flow))
            for statement in analysis.statements(call.scope):
                update = _update_call(statement.node)
                if update is None or statement.node in reported or not analysis.is_inside(statement.node, tape.node):
                    continue
                owner = dotted(update.func.value)
                stored = names_read(update.args[0].value)
                if owner is None or not stored:
                    continue
                root = owner.split(".")[0]
                readers = [s for s in flow if s.index > statement.index and root in s.read and _reads(s.node, update.func.value)]
                if not readers or any(s.read & stored for s in flow):
                    continue  # the stored tensor itself also reaches the target
                upstream = [*analysis.backward_slice(update.args[0].value, call.scope), statement]
                lost = set().union(*(tapeflow.references(analysis, s, sources) for s in upstream)) - reaching
                if not lost:
                    continue
                reported.add(statement.node)
                yield Report(
                    node=statement.node,
                    message=f"`{brief(owner, 20)}` is stored and read back on the way to the loss",
                    detail=f"`{analysis.code(statement.node).strip()}` stores a tensor computed under the tape, and "
                    f"`{analysis.code(call.node)}` reaches it only by reading `{owner}` back: what is read from a variable "
                    f"has no gradient, so none reaches {tapeflow.sources_label(lost)}. Use the stored tensor itself "
                    "on the way to the loss (store it too, if the state is needed).",
                    related=[(readers[0].node, f"`{owner}` read back here"), (call.node, "the gradient asked of it")],
                )

    def _metrics_as_losses(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for used in metrics_used_as_losses(analysis):
            tracked = tracked_value(analysis, used)
            replacement = tracked if tracked is not None else metric_as_loss(used.constructor, used.as_called())
            yield Report(
                node=used.call,
                message=f"The stateful Keras metric `{brief(used.name, 28)}` is used as a loss",
                detail=f"`{used.name}` is a stateful Keras metric used as a loss: it stores the batch's value "
                "with assign and returns what it reads back, which has no gradient. Call the loss of the same name.",
                replacements={used.call: replacement} if replacement is not None else None,
                fix_description="Call the loss of the same name instead of the metric",
            )


def _reads(node: cst.CSTNode, owner: cst.BaseExpression) -> bool:
    return any(n.deep_equals(owner) for n in walk(node, (cst.Attribute, cst.Name)))


def _computed_in(value: cst.BaseExpression, function: cst.FunctionDef, owner: cst.BaseExpression) -> bool:
    """Does the stored value read a parameter of the function or a name it computes (not only the state)?"""
    params = {p.name.value for p in function.params.params if p.name.value != "self"}
    assigned = {t.target.value for t in walk(function.body, cst.AssignTarget) if isinstance(t.target, cst.Name)}
    return any(n.value in params | assigned for n in walk(value, cst.Name))


def _fresh(analysis: ModuleAnalysis, owner: cst.BaseExpression) -> str:
    base = "new_" + (owner.attr.value if isinstance(owner, cst.Attribute) else getattr(owner, "value", "value"))
    taken = {n.value for n in analysis.walk(None, cst.Name)}
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    return name


