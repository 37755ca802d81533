from __future__ import annotations

import functools
from typing import Iterator

import libcst as cst

from gradfix.categories import NOT_TRAINABLE
from gradfix.messages import brief, sentence
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Replacement, Report, Rule
from gradfix.static.analysis import GradientCall, ModuleAnalysis
from gradfix.static.api import (
    ALL_VARIABLE_LISTS,
    CONSTANT_MAKERS,
    LAYER_BASES,
    RANGE,
    TRAINABLE_VARIABLE_LISTS,
    VARIABLE_MAKERS,
    integer_dtype,
)
from gradfix.static.bindings import is_false, keyword, parameter, positional, values_of
from gradfix.static.names import dotted
from gradfix.static.sources import source_elements
from gradfix.static.tree import walk
from gradfix.static.watches import is_watched
from gradfix.transforms.float_dtype import float_variable


class NonTrainableSource(Rule):
    """Finds gradient sources that cannot be trained as the program asks: integer variables
    (`tf.Variable(0)`, `dtype=tf.int32`) and variables made with `trainable=False`, which get no
    gradient, and the variables of a layer or model that was frozen (`base_model.trainable = False`)
    passed as sources anyway, as in `tape.gradient(loss, base_model.variables + head.trainable_variables)`,
    or a frozen model's (empty) `trainable_variables` passed as the only sources. A layer's weight made
    with an integer dtype and left trainable (`self.add_weight(..., dtype="int32")`) is found where the
    module trains (`fit`, or a step over `trainable_variables`): it is among the trainable variables.

    ## Why gradients vanish
    Gradients exist only for floating-point values: a tape asked for the gradient of an integer
    variable returns `None` (TensorFlow only logs a warning). A tape watches only the variables that
    TensorFlow itself calls trainable, so a `tf.Variable(..., trainable=False)` is never recorded and
    its gradient is `None`; Keras then warns `Gradients do not exist for variables [...]`, or raises
    `No gradients provided for any variable` when nothing else is left. Keras's own freezing
    (`layer.trainable = False`) works differently: it only takes the variables out of
    `trainable_variables`. Listed explicitly, they still get gradients and the optimizer updates the
    frozen weights, while the non-trainable state among them (batch-norm statistics) gets `None`; and
    a frozen model's `trainable_variables` is empty, so a step that lists only it trains nothing.

    ## Example
    ```python
    slope = tf.Variable(2)
    intercept = tf.Variable(0)
    with tf.GradientTape() as tape:
        y_pred = tf.cast(slope, tf.float32) * x + tf.cast(intercept, tf.float32)
        loss = tf.reduce_mean(tf.square(y - y_pred))
    grads = tape.gradient(loss, [slope, intercept])
    ```

    ## Fix
    ```python
    slope = tf.Variable(2.0)
    intercept = tf.Variable(0.0)
    ```

    ## Fix safety
    Only an integer variable whose initial value is an integer literal with no `dtype` gets a fix,
    the literal made a float (`tf.Variable(0)` to `tf.Variable(0.0)`); it is unsafe because the
    variable's dtype changes for every other use of it. Nothing else is fixed here: whether a
    `trainable=False` variable or a frozen layer was meant to train, or was listed by mistake, only
    its author knows (GF006 offers `trainable_variables` for a `model.variables` source). These
    findings are warnings: the step runs, but not as written.

    ## When not to fix
    A frozen base in transfer learning whose `trainable_variables` (empty) are listed with the
    head's, or the whole model's `trainable_variables`, gets no finding; neither do integer step
    counters that are not gradient sources, nor layers whose `trainable` flag the program toggles
    (as GAN loops do with the discriminator). A `trainable=False` variable the tape is
    told to watch (`tape.watch(x1)`) gets its gradient, and one asked with
    `unconnected_gradients=tf.UnconnectedGradients.ZERO` gets zeros as asked: neither is
    reported.
    """

    code = "GF010"
    name = "non-trainable-source"
    summary = "Integer, `trainable=False` or frozen variables passed as gradient sources"
    applicability = Applicability.UNSAFE
    categories = (NOT_TRAINABLE,)
    needles = ("GradientTape",)

    def wants(self, text: str) -> bool:
        # a tape's sources, or an integer weight of a layer that `fit` (or a step over the trainable variables) trains
        return "GradientTape" in text or ("add_weight" in text or "add_variable" in text) and "int" in text

    VALID = [
        """
        import tensorflow as tf
        base_model = tf.keras.applications.MobileNetV2(include_top=False, weights=None, pooling="avg")
        base_model.trainable = False
        head = tf.keras.layers.Dense(10)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, head(base_model(x, training=False)))
        grads = tape.gradient(loss, base_model.trainable_variables + head.trainable_variables)
        """,
        """
        import tensorflow as tf
        base_model.trainable = False
        model = tf.keras.Sequential([base_model, tf.keras.layers.Dense(1)])
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        """
        import tensorflow as tf
        w = tf.Variable(0.0)
        b = tf.Variable(0, dtype=tf.float32)
        step = tf.Variable(0, trainable=False)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((w * x + b - y) ** 2)
        grads = tape.gradient(loss, [w, b])
        step.assign_add(1)
        """,
        """
        import tensorflow as tf
        def train_discriminator(real, fake):
            discriminator.trainable = True
            with tf.GradientTape() as tape:
                loss = d_loss(discriminator(real), discriminator(fake))
            grads = tape.gradient(loss, discriminator.trainable_variables)
            discriminator.trainable = False
            return grads
        """,
        # Look-alike: a float dtype given by position.
        """
import tensorflow as tf
weights = tf.Variable(tf.zeros([3], tf.float32))
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - tf.reduce_sum(weights) * x))
grads = tape.gradient(loss, [weights])
""",
        # Look-alike: a `trainable=False` counter that is not a gradient source.
        """
import tensorflow as tf
step = tf.Variable(0, trainable=False)
w = tf.Variable(1.0)
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - w * x))
grads = tape.gradient(loss, [w])
step.assign_add(1)
""",
        # Look-alike: an integer weight of a layer made with `trainable=False` (a counter), trained with `fit`.
        """
import keras

class Counting(keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 1), initializer="glorot_uniform")
        self.calls = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False)

    def call(self, inputs):
        self.calls.assign_add(1)
        return inputs @ self.kernel

model = keras.Sequential([keras.Input((4,)), Counting()])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, y, epochs=1)
""",
    ]

    INVALID = [
        Invalid(
            """
            import tensorflow as tf
            slope = tf.Variable(2)
            intercept = tf.Variable(0)
            with tf.GradientTape() as tape:
                y_pred = tf.cast(slope, tf.float32) * x + tf.cast(intercept, tf.float32)
                loss = tf.reduce_mean(tf.square(y - y_pred))
            grads = tape.gradient(loss, [slope, intercept])
            """,
            expected="""
            import tensorflow as tf
            slope = tf.Variable(2.0)
            intercept = tf.Variable(0.0)
            with tf.GradientTape() as tape:
                y_pred = tf.cast(slope, tf.float32) * x + tf.cast(intercept, tf.float32)
                loss = tf.reduce_mean(tf.square(y - y_pred))
            grads = tape.gradient(loss, [slope, intercept])
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            shift = tf.Variable([1, -2, 3])
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.cast(shift, tf.float32) * x)
            grads = tape.gradient(loss, shift)
            """,
            expected="""
            import tensorflow as tf
            shift = tf.Variable([1.0, -2.0, 3.0])
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.cast(shift, tf.float32) * x)
            grads = tape.gradient(loss, shift)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            offset = tf.Variable(0, dtype=tf.int32)
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x) + tf.cast(offset, tf.float32))
            grads = tape.gradient(loss, model.trainable_variables + [offset])
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            temperature = tf.Variable(1.0, trainable=False)
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x) / temperature)
            grads = tape.gradient(loss, model.trainable_variables + [temperature])
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            base_model = tf.keras.applications.MobileNetV2(include_top=False, weights=None, pooling="avg")
            base_model.trainable = False
            head = tf.keras.layers.Dense(10)
            with tf.GradientTape() as tape:
                loss = loss_fn(y, head(base_model(x, training=False)))
            grads = tape.gradient(loss, base_model.variables + head.trainable_variables)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            for layer in encoder.layers:
                layer.trainable = False
            with tf.GradientTape() as tape:
                loss = loss_fn(y, encoder(x))
            grads = tape.gradient(loss, encoder.trainable_variables)
            """,
        ),
        # Variant: the integer dtype given by position to the initial value.
        Invalid(
            """
import tensorflow as tf
counts = tf.Variable(tf.zeros([3], tf.int32))
with tf.GradientTape() as tape:
    y_pred = tf.reduce_sum(tf.cast(counts, tf.float32)) * x
    loss = tf.reduce_mean(tf.square(y - y_pred))
grads = tape.gradient(loss, [counts])
""",
            None,
        ),
        # Variant: `trainable` given by position.
        Invalid(
            """
import tensorflow as tf
scale = tf.Variable(2.0, False)
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - scale * x))
grads = tape.gradient(loss, [scale])
""",
            None,
        ),
        # Variant: an integer dtype, as a string, given by position to the initial value.
        Invalid(
            """
import tensorflow as tf
counts = tf.Variable(tf.zeros([3], "int32"))
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - tf.reduce_sum(tf.cast(counts, tf.float32)) * x))
grads = tape.gradient(loss, [counts])
""",
            None,
        ),
        # Variant: a layer's integer weight left trainable, the model trained with `fit`.
        Invalid(
            """
import keras

class Scale(keras.layers.Layer):
    def build(self, input_shape):
        self.var = self.add_weight(shape=(1,), initializer="zeros", dtype="int32")

    def call(self, inputs):
        return inputs * self.var

model = keras.Sequential([keras.Input((1,), dtype="int32"), Scale()])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, y, epochs=1)
""",
            None,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        yield from self._integer_layer_weights(analysis)
        for call in analysis.gradient_calls:
            if call.sources is None:
                continue
            parts = source_elements(analysis, call.sources)
            for part in parts:
                if isinstance(part, cst.Attribute) and part.attr.value in ALL_VARIABLE_LISTS:
                    yield from self._frozen_owner(analysis, call, part, alone=len(parts) == 1)
                elif isinstance(part, (cst.Name, cst.Attribute)):
                    yield from self._variable(analysis, call, part)

    def _integer_layer_weights(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        """``self.add_weight(..., dtype="int32")`` in a Keras layer, left trainable, in a module that trains its
        trainable variables (``fit``, or a step over ``trainable_variables``): the weight is among them and gets None."""
        if not any(word in analysis.text for word in (".fit(", ".train_on_batch(", "trainable_variables", "trainable_weights")):
            return
        for klass in walk(analysis.module, cst.ClassDef):
            if not any(analysis.qualname(base.value) in LAYER_BASES for base in klass.bases):
                continue
            for made in walk(klass, cst.Call):
                func = made.func
                if not (isinstance(func, cst.Attribute) and dotted(func.value) == "self"
                        and func.attr.value in ("add_weight", "add_variable")):
                    continue
                trainable = keyword(made, "trainable")
                if trainable is not None and not (isinstance(trainable, cst.Name) and trainable.value == "True"):
                    continue  # not trainable (or not known to be): the optimizer does not ask for its gradient
                dtype = keyword(made, "dtype")
                if dtype is None or not integer_dtype(analysis, dtype):
                    continue
                yield Report(
                    node=made,
                    message=f"The integer weight `{brief(analysis.code(made), 28)}` is trainable, and gets None",
                    detail=(
                        f"`{analysis.code(made)}` makes a trainable weight of an integer dtype: it is among the layer's "
                        "trainable variables, but integers have no gradient, so its gradient is always None (and "
                        "`No gradients provided for any variable` when it is the model's only one). Give it a floating "
                        "dtype such as `\"float32\"` (casting integer inputs to it) if it is meant to be trained, or "
                        "`trainable=False` if it is state."
                    ),
                    severity=Severity.ERROR,
                )

    def _variable(self, analysis: ModuleAnalysis, call: GradientCall, part: cst.BaseExpression) -> Iterator[Report]:
        values = values_of(analysis, part)
        if not values or len(values) != 1:
            return
        made = values[0]
        if not (isinstance(made, cst.Call) and analysis.qualname(made.func) in VARIABLE_MAKERS):
            return
        shown = analysis.code(part)
        initial = keyword(made, "initial_value") or positional(made, 0)
        not_trainable = is_false(parameter(analysis, made, "trainable"))
        integer = _integer_variable(analysis, made, initial)
        if integer:
            fixable = integer == "literal" and not not_trainable
            replacements: dict[cst.CSTNode, Replacement] | None = None
            if fixable:
                floated = float_variable(made)
                replacements = {made: floated} if floated is not None else None
            advice = (
                f"make its initial value a float (`{_floated(analysis, made)}`) if it is meant to be trained"
                if integer == "literal"
                else "give it a floating dtype such as `tf.float32` if it is meant to be trained"
            )
            yield Report(
                node=made,
                message=f"The integer variable `{brief(shown, 28)}` is a gradient source, and gets None",
                detail=(
                    f"`{shown}` is an integer variable passed to `{call.tape_name}.gradient` as a source; integers have no "
                    f"gradient, so its gradient is always None. {sentence(advice)}, or leave it out of the sources if it "
                    "is a counter."
                ),
                related=[(call.node, "asked for its gradient here")],
                replacements=replacements,
                fix_description=f"Make `{shown}` a float variable",
                severity=Severity.ERROR,
            )
        elif not_trainable and not analysis.zeros_when_unconnected(call) and not is_watched(analysis, call, shown, in_block=True):
            # watched, the tape records it after all; asked with zeros for the unconnected, it gets zeros, not None
            yield Report(
                node=part,
                message=f"`{brief(shown, 28)}` is a gradient source made with `trainable=False`",
                detail=(
                    f"`{shown}` was made with `trainable=False`, so the tape never watches it and its gradient is None. "
                    "Drop `trainable=False` if it is meant to train, or leave it out of the sources if it is meant to "
                    "stay fixed."
                ),
                related=[(made, "made non-trainable here")],
                severity=Severity.WARNING,
            )

    def _frozen_owner(self, analysis: ModuleAnalysis, call: GradientCall, part: cst.Attribute, alone: bool) -> Iterator[Report]:
        owner = dotted(part.value)
        if owner is None:
            return
        freezing = _freezing(analysis, call, part.value, owner)
        if freezing is None:
            return
        attribute = part.attr.value
        if attribute in TRAINABLE_VARIABLE_LISTS:
            if not alone:
                return  # a frozen base listed with a head: an empty list, nothing lost
            yield Report(
                node=part,
                message=f"`{brief(owner, 24)}` is frozen, so this gradient trains nothing",
                detail=(
                    f"`{owner}` is frozen, so `{owner}.{attribute}` is an empty list and this gradient trains nothing. "
                    f"Unfreeze `{owner}` (`{owner}.trainable = True`) before this step if it is meant to train."
                ),
                related=[(freezing, "frozen here")],
                severity=Severity.WARNING,
            )
            return
        yield Report(
            node=part,
            message=f"`{brief(owner, 20)}` is frozen, yet all its variables are gradient sources",
            detail=(
                f"`{owner}` is frozen, yet `{owner}.{attribute}` passes its variables to `{call.tape_name}.gradient`: "
                f"Keras freezing only hides them from `trainable_variables`, so the tape still gives them gradients and "
                f"the optimizer updates the frozen weights (and any non-trainable state, such as batch-norm statistics, "
                f"gets None). If the freezing is meant, list `{owner}.trainable_variables` or leave `{owner}` out; "
                f"if `{owner}` is meant to train, remove the freezing."
            ),
            related=[(freezing, "frozen here")],
            severity=Severity.WARNING,
        )


def _floated(analysis: ModuleAnalysis, made: cst.Call) -> str:
    class Floats(cst.CSTTransformer):
        def leave_Integer(self, original, updated):
            return cst.Float(updated.value + ".0") if updated.value.isdigit() else updated

    floated = made.visit(Floats())
    assert isinstance(floated, cst.CSTNode), "numbers replaced by numbers"
    return cst.Module([]).code_for_node(floated).strip()


def _integer_variable(analysis: ModuleAnalysis, made: cst.Call, initial: cst.BaseExpression | None) -> str | None:
    """"literal" for ``tf.Variable(0)``, "dtype" for an integer dtype or integer tensor; None for floats or unknown."""
    dtype = parameter(analysis, made, "dtype")
    if dtype is not None:
        return "dtype" if integer_dtype(analysis, dtype) else None
    if initial is None:
        return None
    if _integer_literal(initial):
        return "literal" if all(n.value.isdigit() for n in walk(initial, cst.Integer)) else "dtype"
    if isinstance(initial, cst.Call) and analysis.qualname(initial.func) in CONSTANT_MAKERS | {RANGE}:
        inner_dtype = parameter(analysis, initial, "dtype")
        if inner_dtype is not None:
            return "dtype" if integer_dtype(analysis, inner_dtype) else None
        if analysis.qualname(initial.func) in {"tensorflow.constant", RANGE}:
            value = positional(initial, 0)
            return "dtype" if value is not None and _integer_literal(value) else None
    return None


def _integer_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Integer):
        return True
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return _integer_literal(node.expression)
    if isinstance(node, (cst.List, cst.Tuple)):
        return bool(node.elements) and all(_integer_literal(e.value) for e in node.elements)
    return False


@functools.lru_cache(maxsize=8)
def _trainable_assignments(analysis: ModuleAnalysis) -> tuple[cst.Assign, ...]:
    """Every `x.trainable = ...` of the module: walked once per module, not once per gradient call."""
    return tuple(a for a in walk(analysis.module, cst.Assign)
                 if any(isinstance(t.target, cst.Attribute) and t.target.attr.value == "trainable" for t in a.targets))


def _freezing(analysis: ModuleAnalysis, call: GradientCall, owner_node: cst.BaseExpression, owner: str) -> cst.CSTNode | None:
    """The statement that froze ``owner`` before this gradient call, when every setting of its
    ``trainable`` flag in the module is ``False``; None when it is never frozen or is toggled."""
    freezes: list[cst.CSTNode] = []
    for assign in _trainable_assignments(analysis):
        for target in assign.targets:
            node = target.target
            if not (isinstance(node, cst.Attribute) and node.attr.value == "trainable"):
                continue
            if dotted(node.value) == owner:
                if not is_false(assign.value):
                    return None
                freezes.append(assign)
            elif _loop_variable_of_layers(analysis, assign, node.value, owner):
                if not is_false(assign.value):
                    return None
                freezes.append(assign)
    values = values_of(analysis, owner_node) if isinstance(owner_node, cst.Name) else None
    for value in values or ():
        if isinstance(value, cst.Call) and is_false(parameter(analysis, value, "trainable")):
            freezes.append(value)
    if isinstance(call.scope, cst.Module):
        freezes = [f for f in freezes if analysis.precedes(f, call.node)]
    freezes.sort(key=analysis.order_of)
    return freezes[0] if freezes else None


def _loop_variable_of_layers(analysis: ModuleAnalysis, assign: cst.Assign, target: cst.BaseExpression, owner: str) -> bool:
    """``for layer in owner.layers: layer.trainable = ...`` (the whole list, not a slice)."""
    if not isinstance(target, cst.Name):
        return False
    for ancestor in analysis.ancestors(assign):
        if isinstance(ancestor, cst.For):
            return (
                isinstance(ancestor.target, cst.Name)
                and ancestor.target.value == target.value
                and dotted(ancestor.iter) == f"{owner}.layers"
            )
        if isinstance(ancestor, (cst.FunctionDef, cst.ClassDef)):
            return False
    return False

