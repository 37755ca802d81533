"""GF004 numpy-in-gradient-path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradfix.categories import NUMPY_CONVERSION
from gradfix.edits import ReplaceNodes
from gradfix.messages import brief, call_brief
from gradfix.model import Applicability
from gradfix.rule import Invalid, Replacement, Report, Rule
from gradfix.static.analysis import ModuleAnalysis, Statement, module_alias
from gradfix.static.api import (
    ARRAY_METHODS,
    ARRAY_TO_TENSOR,
    CONVERSIONS,
    DISPLAY_CALLS,
    ELEMENTWISE,
    NUMPY_NON_DIFFERENTIABLE,
    REDUCTIONS,
    TENSOR_ATTRIBUTES,
)
from gradfix.static.gradpath import (
    Cut,
    PathContext,
    SourceFlow,
    all_contexts,
    describe_sources,
    might_take_gradients,
    nondifferentiable,
    path_values,
    predict_cuts,
)
from gradfix.static.names import dotted
from gradfix.static.tree import walk
from gradfix.static.watches import is_watched
from gradfix.transforms._operator import Context
from gradfix.transforms.numpy_to_tf import (
    FIRST_OPERAND_DTYPE,
    NumpyToTf,
    attribute_chain,
    fix_commas,
    numpy_call,
    reduction_arguments,
)

if TYPE_CHECKING:
    from libcst.codemod.visitors import ImportItem


class NumpyInGradientPath(Rule):
    """Finds NumPy on the way from the trainable variables to the loss: `.numpy()`,
    `np.mean`, `np.square`, `np.log` and the like applied to tensors inside a
    `GradientTape` (or in a loss function the tape calls), `float(t)`, and
    `tf.constant(t.numpy())` that rebuilds a tensor from its own values; and `model.predict(x)`
    in the tape where the loss is computed from it and from no call of the model itself (or,
    for a gradient of a watched input, from no call of the model on that input).

    ## Why gradients vanish
    A `GradientTape` records TensorFlow operations only. `t.numpy()`, `np.mean(t)`
    or `float(t)` copy the values out of the tensor into a NumPy array or a Python
    number; whatever is computed from the copy (even after `tf.constant` or
    `tf.convert_to_tensor` turns it back into a tensor) has no recorded link to the
    variables, so `tape.gradient` returns `None` for them and the optimizer raises
    `No gradients provided for any variable`. Inside a `tf.function` the same code
    fails earlier, because a symbolic tensor has no value to copy. `model.predict(x)`
    is such a copy too: it runs the model in its own loop, outside the tape's
    record, and returns a NumPy array.

    ## Example
    ```python
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = np.mean(np.square(pred.numpy() - y))
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix
    ```python
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = tf.reduce_mean(tf.square(pred - y))
    grads = tape.gradient(loss, model.trainable_variables)
    ```
    Each NumPy function becomes its TensorFlow twin (`np.mean` -> `tf.reduce_mean`,
    `np.sum` -> `tf.reduce_sum`, `np.log` -> `tf.math.log`, `np.maximum` ->
    `tf.maximum`, ...), keeping `axis` (by keyword or position) and `keepdims`;
    `.numpy()` and `np.array(t)` are dropped where the tensor serves as well, and
    `tf.constant(t.numpy())` becomes `t`. The module's own name for TensorFlow is used.
    `model.predict(x)` becomes `model(x, training=True)` (`model(x)` for a gradient of a
    watched input), and the NumPy after it in the tape becomes TensorFlow with it (the
    `numpy-to-tf` operator's rewrite).

    ## Fix safety
    Safe where the TensorFlow twin computes the same values, of the same shape,
    from the same arguments, and every later use of the value takes a tensor as
    well as it took the array: reductions with only `axis`/`keepdims`,
    element-wise ops given NumPy's own number of positional arguments (a third
    one of `np.log` would be `out`, TensorFlow's `name`), `np.concatenate`, and
    dropping a conversion; no array method, mask or index array, item store,
    `round`, `hash` or dictionary key reads the value later. The twin computes in
    the tensor's dtype: where NumPy met a float64 array it computed in float64,
    the twin in the tensor's float32, the dtype the tape needs for a gradient.
    Unsafe for `float(t)` (the result becomes a float32 tensor, not a Python
    float), for `np.dot` (rewritten to `tf.tensordot(a, b, axes=1)`, which differs
    from `np.dot` when `b` has more than two dimensions), for `np.matmul`
    (`tf.matmul` needs matrices, NumPy also takes vectors), and for a twin whose
    first operand is neither the tensor nor a number (`np.add(y, pred)`):
    TensorFlow converts the other operands to the first one's dtype and fails on
    a float64 array first against a float32 tensor. Display-only when the module
    does not import `tensorflow` itself (only `keras`) and `tf` names something
    else. Unsafe for `model.predict(x)` -> `model(x, training=True)`: the model then
    runs in training mode (dropout, batch statistics) on the whole input at once,
    where `predict` ran it in inference mode, batch by batch, and the values are
    tensors where the code had arrays. No fix is offered when NumPy arguments have no TensorFlow counterpart
    (`dtype=`, `out=`, `ddof=`, `np.clip` with a `None` bound), when the array
    goes on to code that needs NumPy (SciPy, array methods, the uses above), or
    for NumPy functions without a known twin.

    NumPy carried on from one cut (`a = pred.numpy()`, then `np.square(a - y)`,
    `np.mean(...)`) is one finding, at the first call, with the later calls as
    related lines and one fix for all of them: fixing only part of the chain
    would leave the gradient cut. The fix is as safe as its least safe part, and
    is not offered when some part has none.

    ## When not to fix
    NumPy on labels or data that do not come from the model (`np.mean(y_batch)`),
    preprocessing before the tape, and `.numpy()` for logging or metrics after the
    gradient (or inside the tape but not on the way to the target) are left alone,
    and so is NumPy whose result reaches the loss only through something without a
    gradient (a threshold's comparison, a `where`'s condition, an argmax: sample
    weights from `np.asarray(pred) > t`), and the body of a function wrapped by `@tf.numpy_function` (an
    environment's step returning rewards, say): it is NumPy code by design, and the
    tape records nothing inside it.
    Non-differentiable NumPy calls (`np.argmax`, `np.round`) are left to GF008/GF009.
    A `predict` whose result the loss reads beside a call of the model itself (a
    network's own targets, `model.predict(next_states)` next to `model(states)`),
    and a `predict` of another model than the one differentiated, are left alone.
    """

    code = "GF004"
    name = "numpy-in-gradient-path"
    summary = "NumPy or a Python number on the way to the loss cuts the gradient"
    applicability = Applicability.SAFE
    categories = (NUMPY_CONVERSION,)
    needles = ("GradientTape", "compile(", "Loss)")

    def wants(self, text: str) -> bool:
        return might_take_gradients(text)

    VALID = [
        # NumPy on the labels, outside the path from the model.
        """
        import numpy as np
        import tensorflow as tf

        def train_step(model, optimizer, x, y):
            y = np.asarray(y, dtype="float32") / np.max(y)
            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                weight = np.mean(y)
                loss = weight * tf.reduce_mean(tf.square(pred - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return float(loss.numpy())
        """,
        # .numpy() for logging after the gradient, and a metric inside the tape off the path.
        """
        import numpy as np
        import tensorflow as tf

        for x, y in dataset:
            with tf.GradientTape() as tape:
                pred = model(x)
                loss = tf.reduce_mean(tf.square(pred - y))
                mae = np.mean(np.abs(pred.numpy() - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            print("loss", loss.numpy(), "mae", mae)
        """,
        # A loss function that uses NumPy on its labels only.
        """
        import numpy as np
        import tensorflow as tf

        def weighted_mse(y_true, y_pred):
            scale = np.float32(1.0 / np.std(y_true))
            return scale * tf.reduce_mean(tf.square(y_true - y_pred))

        with tf.GradientTape() as tape:
            loss = weighted_mse(labels, model(features))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        # Look-alike: NumPy augmentation of the inputs before the tape, in a method.
        """
import numpy as np
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        x = np.flip(x, axis=1) + np.random.normal(0.0, 0.1, x.shape)
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_fn(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""",
        # Look-alike: NumPy augmentation of the inputs in a helper, inside the tape.
        """
import numpy as np
import tensorflow as tf

def augment(images):
    return np.clip(images + np.random.normal(0.0, 0.1, images.shape), 0.0, 1.0)

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(augment(x), training=True)
            loss = self.loss_fn(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""",
        # Look-alike: NumPy on the prediction for logging only.
        """
import numpy as np
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_fn(y, pred)
        self.history.append(np.mean(pred.numpy()))
        grads = tape.gradient(loss, self.model.trainable_variables)
""",
        # Look-alike: the prediction is made before the tape opens, so the tape recorded none of it; the NumPy
        # inside the tape is not what cuts the gradient (GF001 reports the prediction made outside the tape).
        """
import numpy as np
import tensorflow as tf

def step(x, y):
    pred = model(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(np.square(pred - y))
    return tape.gradient(loss, model.trainable_variables)
""",
        # Look-alike: `model.predict` makes the network's own targets, without a gradient on purpose; the loss
        # is computed from the model's call too.
        """
import numpy as np
import tensorflow as tf

class Trainer:
    def step(self, states, next_states, rewards):
        with tf.GradientTape() as tape:
            targets = rewards + 0.99 * np.max(self.model.predict(next_states, verbose=0), axis=1)
            q_values = tf.reduce_max(self.model(states, training=True), axis=1)
            loss = tf.reduce_mean(tf.square(targets - q_values))
        return tape.gradient(loss, self.model.trainable_variables)
""",
        # Look-alike: the helper returns a constant, so what NumPy squares does not depend on the prediction.
        """
import numpy as np
import tensorflow as tf

def scale(t):
    return 2.0

def step(x, y):
    with tf.GradientTape() as tape:
        pred = model(x)
        loss = tf.reduce_mean(np.square(scale(pred)))
    return tape.gradient(loss, model.trainable_variables)
""",
    ]

    INVALID = [
        Invalid(
            """
            import numpy as np
            import tensorflow as tf

            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                loss = np.mean(np.square(pred.numpy() - y), axis=-1, keepdims=True)
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            """
            import numpy as np
            import tensorflow as tf

            with tf.GradientTape() as tape:
                pred = model(x, training=True)
                loss = tf.reduce_mean(tf.square(pred - y), axis=-1, keepdims=True)
            grads = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        Invalid(
            """
            import numpy as onp
            import tensorflow

            def step(x, y):
                with tensorflow.GradientTape() as tape:
                    logits = x @ w + b
                    probs = tensorflow.constant(logits.numpy())
                    loss = onp.sum(onp.log(1.0 + onp.exp(-y * probs)), 0)
                return tape.gradient(loss, [w, b])
            """,
            """
            import numpy as onp
            import tensorflow

            def step(x, y):
                with tensorflow.GradientTape() as tape:
                    logits = x @ w + b
                    probs = logits
                    loss = tensorflow.reduce_sum(tensorflow.math.log(1.0 + tensorflow.exp(-y * probs)), 0)
                return tape.gradient(loss, [w, b])
            """,
        ),
        # float(t) is unsafe; a loss function of the module is followed.
        Invalid(
            """
            import numpy as np
            import tensorflow as tf

            def my_loss(y_true, y_pred):
                err = y_pred - y_true
                return float(tf.reduce_mean(err * err)) + np.sum(np.abs(err)) * 0.01

            with tf.GradientTape() as tape:
                loss = my_loss(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            """
            import numpy as np
            import tensorflow as tf

            def my_loss(y_true, y_pred):
                err = y_pred - y_true
                return tf.reduce_mean(err * err) + tf.reduce_sum(tf.abs(err)) * 0.01

            with tf.GradientTape() as tape:
                loss = my_loss(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        # The copy is rebuilt into a tensor later: the rebuilding goes with the fix.
        Invalid(
            """
            import numpy as np
            import tensorflow as tf

            with tf.GradientTape() as tape:
                pred = model(x)
                error = np.square(pred.numpy() - y)
                loss = tf.reduce_mean(tf.convert_to_tensor(error)) + pred.numpy().sum(1, keepdims=True)
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            """
            import numpy as np
            import tensorflow as tf

            with tf.GradientTape() as tape:
                pred = model(x)
                error = tf.square(pred - y)
                loss = tf.reduce_mean(error) + tf.reduce_sum(pred, 1, keepdims=True)
            grads = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        # The array goes on to SciPy (or to an array method): reported, but nothing to rewrite automatically.
        Invalid(
            """
            import numpy as np
            import scipy.special
            import tensorflow as tf

            with tf.GradientTape() as tape:
                logits = model(x)
                probs = scipy.special.softmax(logits.numpy(), axis=-1)
                loss = -tf.reduce_mean(tf.math.log(probs) * y) + np.mean(logits).item()
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            None,
        ),
        # No `tf` to write the TensorFlow op with: the fix imports it, where LibCST's AddImportsVisitor puts imports.
        Invalid(
            """
            import numpy as np
            import keras
            from tensorflow import GradientTape

            with GradientTape() as tape:
                loss = np.mean(keras.losses.mean_squared_error(y, model(x)))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            """
            import numpy as np
            import keras
            from tensorflow import GradientTape
            import tensorflow as tf

            with GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.mean_squared_error(y, model(x)))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        # `tf` names something else: the fix cannot be written, so it is only shown.
        Invalid(
            """
            import numpy as np
            from tensorflow import GradientTape

            tf = 3
            with GradientTape() as tape:
                loss = np.mean(np.square(model(x) - y))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            None,
        ),
        # Variant: a `keras.losses.Loss` subclass.
        Invalid(
            """
import numpy as np
import tensorflow as tf

class NumpyLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return np.mean(np.square(y_pred.numpy() - y_true))

model.compile(optimizer="adam", loss=NumpyLoss())
""",
            """
import numpy as np
import tensorflow as tf

class NumpyLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.square(y_pred - y_true))

model.compile(optimizer="adam", loss=NumpyLoss())
""",
        ),
        # Variant: a lambda given to `compile(loss=...)`.
        Invalid(
            """
import numpy as np
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: np.mean(np.square(p.numpy() - y)))
""",
            """
import numpy as np
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.reduce_mean(tf.square(p - y)))
""",
        ),
        # the loss read with `.numpy()` after the gradient: that copy is off the path and stays
        Invalid(
            """
import tensorflow as tf

def train_step(x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = tf.reduce_mean(tf.square(y - predictions.numpy()))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    print(loss.numpy())
    return loss
""",
            """
import tensorflow as tf

def train_step(x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = tf.reduce_mean(tf.square(y - predictions))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    print(loss.numpy())
    return loss
""",
        ),
        # The prediction kept on `self` is read back on the way to the loss.
        Invalid(
            """
import numpy as np
import tensorflow as tf

class Trainer:
    def step(self, x, y):
        with tf.GradientTape() as tape:
            self.pred = self.model(x)
            loss = tf.reduce_mean(np.square(self.pred - y))
        return tape.gradient(loss, self.model.trainable_variables)
""",
            """
import numpy as np
import tensorflow as tf

class Trainer:
    def step(self, x, y):
        with tf.GradientTape() as tape:
            self.pred = self.model(x)
            loss = tf.reduce_mean(tf.square(self.pred - y))
        return tape.gradient(loss, self.model.trainable_variables)
""",
        ),
        # The prediction reaches NumPy through a loop over a list, in a method the tape calls, and from a
        # callable the code cannot tell (a parameter) while the gradient is asked for a model's variables.
        Invalid(
            """
import numpy as np
import tensorflow as tf

class Trainer:
    def loss_of(self, outs, y):
        total = 0.0
        for o in outs:
            total += np.sum(np.square(o - y))
        return total

    def step(self, forward, x, y):
        with tf.GradientTape() as tape:
            loss = self.loss_of([forward(x)], y)
        return tape.gradient(loss, self.model.trainable_variables)
""",
            """
import numpy as np
import tensorflow as tf

class Trainer:
    def loss_of(self, outs, y):
        total = 0.0
        for o in outs:
            total += tf.reduce_sum(tf.square(o - y))
        return total

    def step(self, forward, x, y):
        with tf.GradientTape() as tape:
            loss = self.loss_of([forward(x)], y)
        return tape.gradient(loss, self.model.trainable_variables)
""",
        ),
        # NumPy in a function that a loss function the tape calls calls in turn.
        Invalid(
            """
import numpy as np
import tensorflow as tf

def smoothed_log_probs(probs, eps=1e-3):
    arr = np.clip(probs, eps, 1.0)
    return np.log(arr)

def custom_loss(labels, probs):
    log_probs = smoothed_log_probs(probs)
    return -tf.reduce_mean(tf.reduce_sum(labels * log_probs, axis=1))

with tf.GradientTape() as tape:
    loss = custom_loss(labels, model(x, training=True))
grads = tape.gradient(loss, model.trainable_variables)
""",
            """
import numpy as np
import tensorflow as tf

def smoothed_log_probs(probs, eps=1e-3):
    arr = tf.clip_by_value(probs, eps, 1.0)
    return tf.math.log(arr)

def custom_loss(labels, probs):
    log_probs = smoothed_log_probs(probs)
    return -tf.reduce_mean(tf.reduce_sum(labels * log_probs, axis=1))

with tf.GradientTape() as tape:
    loss = custom_loss(labels, model(x, training=True))
grads = tape.gradient(loss, model.trainable_variables)
""",
        ),
        # `model.predict` in the tape returns NumPy: the tape records no forward pass, and the loss has no gradient.
        Invalid(
            """
import numpy as np
import tensorflow as tf

class Trainer:
    def step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model.predict(x)
            loss = tf.reduce_mean(np.square(pred - y))
        return tape.gradient(loss, self.model.trainable_variables)
""",
            """
import numpy as np
import tensorflow as tf

class Trainer:
    def step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = tf.reduce_mean(tf.square(pred - y))
        return tape.gradient(loss, self.model.trainable_variables)
""",
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        if (not analysis.imports.imports_any("numpy") and ".numpy()" not in analysis.text and "float(" not in analysis.text
                and ".predict" not in analysis.text):
            return
        reported: set[int] = set()
        for top in all_contexts(analysis):
            gradient: cst.CSTNode
            if top.gradient is not None:
                gradient, role = top.gradient.node, "the gradient that comes back None"
            else:
                # a Keras loss (a function given to compile, a Loss's call): its prediction carries the variables
                gradient = top.region.name if isinstance(top.region, cst.FunctionDef) else top.region
                role = "the Keras loss, whose prediction gets no gradient"
            checkers: dict[int, _Checker] = {}
            path = []
            for value, at, context, flow in path_values(analysis, top, SourceFlow(analysis, top, top.sources, frozenset())):
                checker = checkers.get(id(context))
                if checker is None:
                    checker = checkers[id(context)] = _Checker(analysis, context, flow, gradient, role)
                checker.on_path.add(id(at.node))
                path.append((checker, value, at))
            chains: list[list[Report]] = []
            for checker, value, at in path:
                for report in checker.reports(value, at):
                    if id(report.node) not in reported:
                        reported.add(id(report.node))
                        _add_to_chain(analysis, chains, report)
            for chain in chains:
                yield _one_finding(analysis, chain)
            for cut in predict_cuts(analysis, top):
                if id(cut.node) not in reported:
                    reported.add(id(cut.node))
                    yield _predict_report(analysis, top, cut, gradient, role)


def _predict_report(analysis: ModuleAnalysis, top: PathContext, cut: Cut, gradient: cst.CSTNode, role: str) -> Report:
    """``model.predict(x)`` on the only way from the model to the loss, fixed by the numpy-to-tf operator: the
    model's own call in its place, and the NumPy after it in TensorFlow."""
    call = cst.ensure_type(cut.node, cst.Call)
    model = analysis.code(cst.ensure_type(call.func, cst.Attribute).value)
    code = analysis.code(call)
    message = f"`{call_brief(code, 40)}` returns NumPy: the tape records no forward pass"
    detail = (f"`{code}` runs `{model}` outside the tape's record and returns a NumPy array, so the loss computed "
              f"from it has no gradient for {describe_sources(top, cut.sources)}. Call the model itself: "
              f"`{model}(..., training=True)`.")
    context = Context.of_analysis(analysis)
    if cut.context.gradient is not None:
        # the operator's reach ends at the gradient call; in a helper the tape calls, at the helper's end
        context.end_line = analysis.span(gradient).start_line
    # a gradient of a watched input (a saliency map) keeps the model in inference mode: `model(x)`
    context.tensor_sources = top.gradient is not None and any(is_watched(analysis, top.gradient, s) for s in cut.sources)
    rewrite = next(NumpyToTf().rewrite(analysis.statement_of(call), context), None)
    if rewrite is None:
        return Report(call, message, related=[(gradient, role)], detail=detail)
    return Report(call, message, related=[(gradient, role)], detail=detail,
                  replacements=dict(rewrite.replacements), fix_description=rewrite.description,
                  applicability=rewrite.applicability, applicability_reason=rewrite.reason, imports=rewrite.imports)


class _Checker:
    """NumPy on the path of one context: ``flow`` tells which values there carry the sources."""

    def __init__(self, analysis: ModuleAnalysis, context: PathContext, flow: SourceFlow, gradient: cst.CSTNode, role: str):
        self.analysis = analysis
        self.scope = context.scope
        self.flow = flow
        self.gradient = gradient
        self.role = role
        self.on_path: set[int] = set()  # the statements of its path (ids of their nodes)
        self.at: Statement | None = None
        self.tf = module_alias(analysis, "tensorflow")

    def carries(self, expression: cst.CSTNode) -> bool:
        return self.at is not None and self.flow.carries(expression, self.at)

    def reports(self, value: cst.CSTNode, at: Statement) -> Iterator[Report]:
        self.at = at
        for call in self.analysis.calls(value):
            if self._quiet(call, at.node):
                continue
            report = self._report(call)
            if report is not None:
                report.related.append((self.gradient, self.role))
                yield report

    # --- what is wrong ---------------------------------------------------------------------
    def _report(self, call: cst.Call) -> Report | None:
        qualname = self.analysis.qualname(call.func)
        if qualname in ARRAY_TO_TENSOR:
            inner = _first_positional(call)
            if inner is not None and self._conversion(inner) is not None:
                return self._rebuilt(call, inner)
            return None
        if self._conversion(call) is not None:
            parent = self._call_parent(call)
            if parent is not None and self.analysis.qualname(parent.func) in ARRAY_TO_TENSOR:
                return None  # reported as the rebuilding call
            method = self._array_method_call(call)
            if method is not None:
                return self._array_method(method, call)
            return self._dropped_conversion(call)
        if qualname is not None and qualname.startswith("numpy."):
            function = qualname[len("numpy."):]
            if function in NUMPY_NON_DIFFERENTIABLE or function.split(".")[0] == "random":
                return None
            if not any(self.carries(arg.value) for arg in call.args if not self._ignores_gradient_of(call, arg)):
                return None
            return self._numpy_function(call, function)
        if isinstance(call.func, cst.Name) and call.func.value == "float" and qualname is None:
            argument = _first_positional(call)
            if argument is not None and len(call.args) == 1 and self.carries(argument):
                return Report(
                    call,
                    f"`{call_brief(self.analysis.code(call), 24)}` turns a tensor into a Python number in the tape",
                    detail=(f"`{self.analysis.code(call)}` turns a tensor into a Python number inside the tape; "
                            "the loss computed from it no longer depends on the variables. Use the tensor itself."),
                    replacements={call: _in_place(self.analysis, call, argument)},
                    fix_description=f"Use the tensor `{self.analysis.code(argument)}` itself",
                    applicability=Applicability.UNSAFE,
                    applicability_reason="the value becomes a tensor where it was a Python float",
                )
        return None

    def _conversion(self, call: cst.BaseExpression) -> cst.BaseExpression | None:
        """The tensor carrying the sources that ``call`` copies into NumPy (``t.numpy()``, ``np.array(t)``), if it is one."""
        if not isinstance(call, cst.Call):
            return None
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "numpy" and not call.args:
            return func.value if self.carries(func.value) else None
        qualname = self.analysis.qualname(func)
        if qualname is not None and qualname.startswith("numpy.") and qualname[6:] in CONVERSIONS:
            argument = _first_positional(call)
            if argument is not None and len(call.args) == 1 and self.carries(argument):
                return argument
        return None

    # --- reports and their fixes ------------------------------------------------------------
    def _rebuilt(self, call: cst.Call, inner: cst.BaseExpression) -> Report:
        tensor = self._conversion(inner)
        assert tensor is not None, "called for a conversion"
        return Report(
            call,
            f"`{call_brief(self.analysis.code(call))}` rebuilds a tensor from a NumPy copy in the tape",
            detail=(f"`{self.analysis.code(call)}` rebuilds a tensor from a NumPy copy inside the tape; "
                    "the copy has no link to the variables, so neither has the new tensor. Use the tensor itself."),
            replacements={call: _in_place(self.analysis, call, tensor)},
            fix_description=f"Use the tensor `{self.analysis.code(tensor)}` itself",
        )

    def _dropped_conversion(self, call: cst.Call) -> Report:
        tensor = self._conversion(call)
        assert tensor is not None, "called for a conversion"
        message = f"`{call_brief(self.analysis.code(call))}` copies a tensor into NumPy inside the tape"
        detail = (
            f"`{self.analysis.code(call)}` copies a tensor into NumPy inside the tape; the tape does not record "
            "NumPy, so whatever is computed from the copy has no gradient. Stay in TensorFlow."
        )
        if not self._tensor_serves(call):
            return Report(call, message, detail=detail)
        return Report(
            call,
            message,
            detail=detail,
            replacements={call: _in_place(self.analysis, call, tensor), **self._rebuilt_later(call)},
            fix_description=f"Use the tensor `{self.analysis.code(tensor)}` itself",
        )

    def _array_method(self, method: cst.Call, conversion: cst.Call) -> Report:
        assert isinstance(method.func, cst.Attribute), "a method call"
        name = method.func.attr.value
        message = f"`{call_brief(self.analysis.code(method))}` computes on a NumPy copy of a tensor"
        detail = (
            f"`{self.analysis.code(method)}` computes on a NumPy copy of a tensor inside the tape; "
            "the tape does not record NumPy, so the result has no gradient. Stay in TensorFlow."
        )
        tensor = self._conversion(conversion)
        assert tensor is not None, "called for a conversion"
        arguments = reduction_arguments(method.args, first=cst.Arg(tensor))
        if name not in REDUCTIONS or arguments is None:
            return Report(method, message, detail=detail)
        return self._with_tf_call(method, message, REDUCTIONS[name], arguments, Applicability.SAFE, detail)

    def _numpy_function(self, call: cst.Call, function: str) -> Report:
        message = f"`{brief(self.analysis.code(call.func), 24)}` on a tensor returns NumPy, which the tape cannot follow"
        detail = (
            f"`{self.analysis.code(call.func)}` on a tensor on the way to the loss returns a NumPy value; "
            "the tape cannot follow it, so the loss has no gradient."
        )
        twin = numpy_call(function, call.args)
        if twin is not None:
            applicability, reason = twin.applicability, twin.reason
            first = _first_positional(call)
            if (applicability is Applicability.SAFE and function in FIRST_OPERAND_DTYPE and first is not None
                    and not self.carries(first) and not _number(first)):
                applicability = Applicability.UNSAFE
                reason = (f"`{self.analysis.code(first)}` comes first and may be an array of another dtype (float64): "
                          "TensorFlow converts the other operands to the first one's dtype, and fails on a float64 "
                          "array against a float32 tensor; pass the tensor first")
            return self._with_tf_call(call, message, twin.function, twin.arguments, applicability,
                                      detail=f"{detail} Use `{self.tf or 'tf'}.{twin.function}`.", reason=reason)
        known = function in REDUCTIONS or function in ELEMENTWISE or function in {"dot", "concatenate"}
        reason = ("some of its arguments have no TensorFlow counterpart" if known
                  else "gradfix knows no one-to-one TensorFlow twin")
        return Report(call, message, detail=f"{detail} Compute it with TensorFlow ops instead ({reason}).")

    def _with_tf_call(self, call, message, tf_function, arguments, applicability, detail: str = "", reason: str = "") -> Report:
        if not self._tensor_serves(call):
            return Report(call, message, detail=detail)
        alias = self.tf or "tf"
        new_call = cst.Call(func=attribute_chain(f"{alias}.{tf_function}"), args=fix_commas(arguments))
        imports: tuple[ImportItem, ...] = ()
        if self.tf is None:
            if any(name.value == "tf" for name in self.analysis.walk(kind=cst.Name)):
                applicability = Applicability.DISPLAY_ONLY  # `tf` names something else here
            else:
                from libcst.codemod.visitors import ImportItem  # see gradfix.rule: a finding's fix only
                imports = (ImportItem("tensorflow", alias="tf"),)
        return Report(
            call,
            message,
            detail=detail,
            replacements={call: new_call, **self._rebuilt_later(call)},
            fix_description=f"Use `{alias}.{tf_function}`" + (" (importing tensorflow as tf)" if imports else ""),
            applicability=applicability,
            applicability_reason=reason,
            imports=imports,
        )

    def _rebuilt_later(self, call: cst.Call) -> dict[cst.CSTNode, cst.CSTNode]:
        """For ``a = np.f(t)``: the later ``tf.constant(a)`` on the path, which the fix makes pointless."""
        parent = self.analysis.parent(call)
        if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name)):
            return {}
        name = parent.targets[0].target.value
        statement = self.analysis.statement_index(call)
        if statement is None:
            return {}
        rebuilds: dict[cst.CSTNode, cst.CSTNode] = {}
        for later in self.analysis.uses_after(name, statement, self.scope):
            if id(later.node) not in self.on_path:
                continue
            for use in _name_nodes(later.node, name):
                rebuild = self._call_parent(use)
                if rebuild is not None and self.analysis.qualname(rebuild.func) in ARRAY_TO_TENSOR and len(rebuild.args) == 1:
                    rebuilds[rebuild] = use
        return rebuilds

    # --- context -----------------------------------------------------------------------------
    def _quiet(self, call: cst.Call, statement: cst.CSTNode) -> bool:
        """Whether ``call`` only feeds printing or logging, or only what has no gradient anyway."""
        if self._feeds_no_gradient(call, statement):
            return True
        for ancestor in self.analysis.ancestors(call):
            if ancestor is statement:
                return False
            if isinstance(ancestor, cst.Call):
                name = self.analysis.qualname(ancestor.func) or dotted(ancestor.func) or ""
                if name in DISPLAY_CALLS or name.startswith("logging.") or name.split(".")[-1] in {"info", "debug", "warning"}:
                    return True
        return False

    def _feeds_no_gradient(self, node: cst.CSTNode, statement: cst.CSTNode, depth: int = 0) -> bool:
        """Whether the value of ``node`` reaches the loss only through something without a gradient: a
        comparison (a threshold), the condition of a ``where``, an argmax, a rounding, an integer cast. Then
        computing it with NumPy cuts no gradient the TensorFlow twin would have kept. A value bound to a name
        counts when every later use of the name on the path is such a use."""
        child = node
        for ancestor in self.analysis.ancestors(node):
            if ancestor is statement:
                break
            if isinstance(ancestor, cst.Comparison):
                return True
            if isinstance(ancestor, cst.Arg):
                call = self.analysis.parent(ancestor)
                if isinstance(call, cst.Call) and self._ignores_gradient_of(call, ancestor):
                    return True
            if isinstance(ancestor, (cst.Assign, cst.AnnAssign)):
                break
            child = ancestor
        assigned = self.analysis.parent(child)
        if depth >= 2 or not (isinstance(assigned, cst.Assign) and assigned.value is child and len(assigned.targets) == 1
                              and isinstance(assigned.targets[0].target, cst.Name)):
            return False
        name = assigned.targets[0].target.value
        at = self.analysis.statement_index(assigned)
        if at is None:
            return False
        uses = [(use, later.node) for later in self.analysis.uses_after(name, at, self.scope) if id(later.node) in self.on_path
                for use in _name_nodes(later.node, name)]
        return bool(uses) and all(self._feeds_no_gradient(use, line, depth + 1) for use, line in uses)

    def _ignores_gradient_of(self, call: cst.Call, argument: cst.Arg) -> bool:
        """Whether ``call`` gives no gradient to ``argument``: a non-differentiable op, or a ``where``'s condition."""
        qualname = self.analysis.qualname(call.func) or ""
        if qualname in ("numpy.where", "tensorflow.where", "keras.ops.where") and call.args and call.args[0] is argument:
            return True
        if qualname.startswith("numpy.") and qualname[len("numpy."):] in NUMPY_NON_DIFFERENTIABLE:
            return True
        return nondifferentiable(self.analysis, call) is not None

    def _call_parent(self, node: cst.CSTNode) -> cst.Call | None:
        parent = self.analysis.parent(node)
        if isinstance(parent, cst.Arg):
            call = self.analysis.parent(parent)
            return call if isinstance(call, cst.Call) else None
        return None

    def _array_method_call(self, conversion: cst.Call) -> cst.Call | None:
        parent = self.analysis.parent(conversion)
        if isinstance(parent, cst.Attribute) and parent.attr.value in ARRAY_METHODS:
            call = self.analysis.parent(parent)
            if isinstance(call, cst.Call) and call.func is parent:
                return call
        return None

    def _tensor_serves(self, conversion: cst.Call) -> bool:
        """Whether the tensor can stand where its NumPy copy stood."""
        if not self._use_accepts_tensor(conversion):
            return False
        # the value computed from the copy (`err = pred.numpy() - y`, not only `x = pred.numpy()`) becomes a
        # tensor too: every later use of the names it is bound to must take a tensor (no `err.mean()`)
        assign = next((a for a in self.analysis.ancestors(conversion) if isinstance(a, cst.Assign)), None)
        if assign is None:
            return True
        statement = self.analysis.statement_index(conversion)
        if statement is None:
            return False
        names = [n.value for target in assign.targets for n in _name_nodes_in(target.target)]
        for name in names:
            for later in self.analysis.uses_after(name, statement, self.scope):
                for use in _name_nodes(later.node, name):
                    if not self._use_accepts_tensor(use):
                        return False
        return True

    def _use_accepts_tensor(self, node: cst.CSTNode) -> bool:
        parent = self.analysis.parent(node)
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return parent.attr.value in TENSOR_ATTRIBUTES
        if isinstance(parent, cst.Subscript) and parent.value is node:
            # a tensor takes integers, slices, None and `...` as indices, not masks or index arrays, and no stores
            stored = isinstance(self.analysis.parent(parent), (cst.AssignTarget, cst.AugAssign, cst.Del))
            return not stored and all(_basic_index(element.slice) for element in parent.slice)
        if isinstance(parent, (cst.Index, cst.DictElement)) or (
                parent is not None and isinstance(self.analysis.parent(parent), cst.Set)):
            return False  # a key: a tensor is not hashable
        call = self._call_parent(node)
        if call is None:
            return True
        qualname = self.analysis.qualname(call.func)
        if qualname is None:
            return not (isinstance(call.func, cst.Name) and call.func.value in NUMBER_BUILTINS)
        root, _, rest = qualname.partition(".")
        if root == "numpy":
            return rest in REDUCTIONS or rest in ELEMENTWISE or rest in CONVERSIONS or rest in {"dot", "concatenate"}
        return root in {"tensorflow", "keras"}


# Builtins that need a Python number or a hashable value, where a tensor fails.
NUMBER_BUILTINS = frozenset({"round", "hash", "set", "frozenset", "dict"})


def _add_to_chain(analysis: ModuleAnalysis, chains: list[list[Report]], report: Report) -> None:
    """Put ``report`` with the NumPy it computes on (nested in it, or in the statements its values come
    from): one cut of the gradient carried on in NumPy is one cause, and one finding."""
    upstream = {id(s.node) for s in analysis.backward_slice(report.node)}
    for chain in chains:
        for earlier in chain:
            # two NumPy calls side by side on one line (`float(a) + np.sum(b)`) are two cuts, two findings
            if (analysis.is_inside(report.node, earlier.node) or analysis.is_inside(earlier.node, report.node)
                    or id(analysis.statement_of(earlier.node)) in upstream):
                chain.append(report)
                return
    chains.append([report])


_WEAKER = {Applicability.SAFE: 0, Applicability.UNSAFE: 1, Applicability.DISPLAY_ONLY: 2}


def _one_finding(analysis: ModuleAnalysis, chain: list[Report]) -> Report:
    """The first NumPy call of a chain, the later ones as related lines, and one fix for all of them (none
    unless each has one: fixing part of the chain leaves the gradient cut)."""
    first, later = chain[0], chain[1:]
    if not later:
        return first
    first.related = [(report.node, "the chain goes on in NumPy here (fixed with this finding)") for report in later] + first.related
    first.detail += f" The chain goes on in NumPy on {len(later)} more call{'s' if len(later) > 1 else ''} (see the related lines)."
    replacements = _chain_replacements(analysis, chain)
    if replacements is None:
        first.replacements = None
        return first
    weakest = max(chain, key=lambda report: _WEAKER[report.applicability or Applicability.SAFE])
    first.replacements = replacements
    first.imports = tuple(dict.fromkeys(item for report in chain for item in report.imports))
    first.fix_description += ", and the NumPy after it alike"
    if weakest.applicability is not None and weakest.applicability is not Applicability.SAFE:
        first.applicability = weakest.applicability
        first.applicability_reason = weakest.applicability_reason
    return first


def _chain_replacements(analysis: ModuleAnalysis, chain: list[Report]) -> dict[cst.CSTNode, Replacement] | None:
    """Every replacement of the chain, those nested in another's node folded into its new code (which keeps
    the original node it wraps); None when some report has no fix or a nested node cannot be placed."""
    if any(report.replacements is None for report in chain):
        return None
    every: dict[cst.CSTNode, Replacement] = {}
    for report in chain:
        assert report.replacements is not None, "checked above"
        every.update(report.replacements)
    outer = {key: value for key, value in every.items()
             if not any(other is not key and analysis.is_inside(key, other) for other in every)}
    merged: dict[cst.CSTNode, Replacement] = {}
    for key, value in outer.items():
        nested = {inner: new for inner, new in every.items() if inner is not key and analysis.is_inside(inner, key)}
        if nested:
            if not isinstance(value, cst.CSTNode):
                return None  # a removal holds no nested node to place
            present = {id(node) for node in walk(value, cst.CSTNode)}
            if any(id(inner) not in present for inner in nested):
                return None
            value = value.visit(ReplaceNodes(nested))
        merged[key] = value
    return merged


def _number(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.UnaryOperation):
        return _number(node.expression)
    return isinstance(node, (cst.Integer, cst.Float))


def _basic_index(index: cst.BaseSlice) -> bool:
    if isinstance(index, cst.Slice):
        return True  # NumPy takes integers there as well
    value = cst.ensure_type(index, cst.Index).value  # a slice's one other kind
    return _number(value) or isinstance(value, cst.Ellipsis) or (isinstance(value, cst.Name) and value.value == "None")


def _first_positional(call: cst.Call) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is None and not arg.star:
            return arg.value
    return None


_ATOMIC = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer, cst.Float, cst.SimpleString, cst.List, cst.Tuple)


def _in_place(analysis: ModuleAnalysis, replaced: cst.CSTNode, expression: cst.BaseExpression) -> cst.BaseExpression:
    """``expression`` ready to stand where ``replaced`` stood, in parentheses if precedence asks for them."""
    if isinstance(expression, _ATOMIC) or expression.lpar:
        return expression
    if isinstance(analysis.parent(replaced), (cst.Arg, cst.Assign, cst.AugAssign, cst.Return, cst.Expr)):
        return expression
    return expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _name_nodes_in(target: cst.CSTNode) -> list[cst.Name]:
    """The names a target binds (``a``, ``a, b``), not those it only reads (``a[i]``, ``a.b``)."""
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for element in target.elements for n in _name_nodes_in(element.value)]
    return []


def _name_nodes(root: cst.CSTNode, name: str) -> list[cst.Name]:
    return [node for node in walk(root, cst.Name) if node.value == name]
