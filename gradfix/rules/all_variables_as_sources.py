"""GF006 all-variables-as-sources."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NOT_TRAINABLE
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import GradientCall, ModuleAnalysis, assigned_value, children
from gradfix.static.api import MODEL_LOADERS, SEEDED_STATE_LAYERS, TRAINABLE_OF, WEIGHTED_STATE_LAYERS
from gradfix.static.names import copied_iterable, dotted


class AllVariablesAsSources(Rule):
    """Finds `tape.gradient(loss, model.variables)` (or `model.weights`, or a
    layer's) in a module whose model carries non-trainable state: BatchNormalization's
    moving statistics, Dropout's seed, frozen layers.

    ## Why gradients vanish
    `model.variables` and `model.weights` hold every variable of the model, the
    non-trainable ones too. The loss does not depend on a moving mean or a seed,
    so `tape.gradient` returns `None` for them; Keras then warns `Gradients do not
    exist for variables [...]` (or raises `No gradients provided for any variable`
    when nothing else is left), and the optimizer is asked to update state that
    only the layers themselves should touch.

    ## Example
    ```python
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.variables)
    optimizer.apply_gradients(zip(grads, model.variables))
    ```

    ## Fix
    ```python
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    ```
    `.variables` becomes `.trainable_variables` and `.weights` becomes
    `.trainable_weights`, in the gradient call and in every `zip` of the same
    function that pairs the gradients with the same variables, so that the
    pairs stay aligned. When the sources come through a name
    (`params = model.variables`), the assignment is changed instead.

    ## Fix safety
    Safe: the non-trainable variables only ever got `None`, so dropping them
    changes nothing but the warning; the fix is withheld when the same
    `.variables` list is paired with gradients in another function, or when the
    name holding it is used for something else, since changing one side alone
    would misalign the pairs.

    ## When not to fix
    `model.trainable_variables` and `trainable_weights`, `model.variables` used for
    saving, checkpoints or an exponential moving average, and modules where no
    non-trainable state is visible (a `tf.Module` or a model of Dense layers only:
    there `variables` and `trainable_variables` are the same list) are left alone,
    and so is `model.weights` when the only state is a Dropout's seed (Keras 3 keeps
    seed states in `variables` but out of `weights`).
    A model built in another file is out of sight; the runtime detector reports it.
    """

    code = "GF006"
    name = "all-variables-as-sources"
    summary = "Gradients asked for model.variables / model.weights, non-trainable state included"
    applicability = Applicability.SAFE
    categories = (NOT_TRAINABLE,)
    needles = ("GradientTape",)

    VALID = [
        """
        import tensorflow as tf

        model = tf.keras.Sequential([tf.keras.layers.Dense(8), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
        ema = tf.train.ExponentialMovingAverage(0.99)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        ema.apply(model.variables)
        checkpoint_weights = [w.numpy() for w in model.weights]
        """,
        # No non-trainable state in sight: variables == trainable_variables.
        """
        import tensorflow as tf

        class Affine(tf.Module):
            def __init__(self):
                self.w = tf.Variable(tf.ones([3, 1]))

        m = Affine()
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(x @ m.w)
        grads = tape.gradient(loss, m.variables)
        """,
        # Look-alike: `.variables` of a `tf.Module` that makes only trainable variables; a BatchNormalization elsewhere in the file is not its state.
        """
import tensorflow as tf

class Linear(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.normal([3, 1]))
        self.b = tf.Variable(tf.zeros([1]))

    def __call__(self, x):
        return x @ self.w + self.b

linear = Linear()
classifier = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization()])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(linear(x) - y))
grads = tape.gradient(loss, linear.variables)
optimizer.apply_gradients(zip(grads, linear.variables))
""",
    ]

    INVALID = [
        Invalid(
            """
            import tensorflow as tf
            from tensorflow.keras import layers

            model = tf.keras.Sequential([layers.Dense(16), layers.BatchNormalization(), layers.Dense(1)])
            for x, y in dataset:
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
                grads = tape.gradient(loss, model.variables)
                optimizer.apply_gradients(zip(grads, model.variables))
            """,
            """
            import tensorflow as tf
            from tensorflow.keras import layers

            model = tf.keras.Sequential([layers.Dense(16), layers.BatchNormalization(), layers.Dense(1)])
            for x, y in dataset:
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
        ),
        Invalid(
            """
            import keras
            import tensorflow as tf

            class Net(keras.Model):
                def __init__(self):
                    super().__init__()
                    self.body = keras.layers.Dense(8)
                    self.drop = keras.layers.Dropout(0.2)
                    self.head = keras.layers.Dense(1)

                def train_step(self, data):
                    x, y = data
                    params = self.variables
                    with tf.GradientTape() as tape:
                        loss = self.compute_loss(y=y, y_pred=self.head(self.drop(self.body(x))))
                    grads = tape.gradient(loss, params)
                    self.optimizer.apply_gradients(zip(grads, params))
                    return {"loss": loss}
            """,
            """
            import keras
            import tensorflow as tf

            class Net(keras.Model):
                def __init__(self):
                    super().__init__()
                    self.body = keras.layers.Dense(8)
                    self.drop = keras.layers.Dropout(0.2)
                    self.head = keras.layers.Dense(1)

                def train_step(self, data):
                    x, y = data
                    params = self.trainable_variables
                    with tf.GradientTape() as tape:
                        loss = self.compute_loss(y=y, y_pred=self.head(self.drop(self.body(x))))
                    grads = tape.gradient(loss, params)
                    self.optimizer.apply_gradients(zip(grads, params))
                    return {"loss": loss}
            """,
        ),
        # The same list is zipped with the gradients in another function: reported, not fixed.
        Invalid(
            """
            import tensorflow as tf

            base = tf.keras.applications.MobileNetV2(weights=None, include_top=False)

            def grads_of(x):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(base(x, training=True))
                return tape.gradient(loss, base.variables)

            optimizer.apply_gradients(zip(grads_of(images), base.variables))
            """,
            None,
        ),
        # Variant: the sources rebuilt as a list (`[v for v in ...]`).
        Invalid(
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
params = [v for v in model.variables]
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = tape.gradient(loss, params)
optimizer.apply_gradients(zip(grads, params))
""",
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
params = [v for v in model.trainable_variables]
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = tape.gradient(loss, params)
optimizer.apply_gradients(zip(grads, params))
""",
        ),
        # Variant: the gradient asked through a helper that takes the tape.
        Invalid(
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = grads_of(tape, loss, model.variables)
optimizer.apply_gradients(zip(grads, model.variables))
""",
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = grads_of(tape, loss, model.trainable_variables)
optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for gradient in analysis.gradient_calls:
            if gradient.sources is None:
                continue
            report = self._report(analysis, gradient)
            if report is not None:
                yield report

    def _report(self, analysis: ModuleAnalysis, gradient: GradientCall) -> Report | None:
        attributes = _all_variables(analysis, gradient.sources)
        holder = None  # the assignment ``params = model.variables`` the sources come through
        if not attributes and isinstance(gradient.sources, cst.Name):
            holder = _holder(analysis, gradient, gradient.sources.value)
            if holder is not None:
                attributes = _all_variables(analysis, holder.value)
        if not attributes:
            return None
        seeds = any(a.attr.value == "variables" for a in attributes)
        evidence = None
        for within in _where_state_is_made(analysis, attributes):
            evidence = _non_trainable_state(analysis, seeds, within)
            if evidence is not None:
                break
        if evidence is None:
            return None
        if evidence is None:
            return None
        listed = " and ".join(f"`{analysis.code(a)}`" for a in attributes)
        message = (
            f"{listed} also hold{'s' if len(attributes) == 1 else ''} non-trainable variables; "
            "the tape gives them no gradient, and the optimizer warns or fails on the None"
        )
        related = [(evidence, "non-trainable state is made here"), (gradient.node, "the gradient is asked here")]
        replacements: dict[cst.CSTNode, cst.CSTNode] = {a: _trainable(a) for a in attributes}
        if holder is not None:
            if not _only_paired(analysis, holder, gradient):
                return Report(gradient.node, message, related)
        else:
            for attribute in attributes:
                zipped = _zipped(analysis, attribute)
                if any(analysis.scope_of(z) is not gradient.scope for z in zipped):
                    return Report(
                        gradient.node,
                        message + " (the same list is paired with gradients in another function, so no fix is offered)",
                        related,
                    )
                replacements.update({z: _trainable(z) for z in zipped})
        new_names = sorted({TRAINABLE_OF[a.attr.value] for a in attributes})
        return Report(
            gradient.node,
            message,
            related,
            replacements=replacements,
            fix_description=f"ask for the gradients of {' and '.join(f'`.{n}`' for n in new_names)}",
        )


def _where_state_is_made(analysis: ModuleAnalysis, attributes: list[cst.Attribute]) -> list[cst.CSTNode | None]:
    """Where the variables of each source (the model or layer whose variables are listed) are made:
    the class of this module it is an instance of, else anywhere (None).

    An instance of a class written here holds only what that class makes: a layer with
    non-trainable state elsewhere in the file says nothing about it.
    """
    classes = {c.name.value: c for c in analysis.walk(None, cst.ClassDef)}
    places: list[cst.CSTNode | None] = []
    for attribute in attributes:
        klass = _instance_of(analysis, attribute.value, classes)
        if klass is None:
            return [None]
        places.append(klass)
    return places


def _instance_of(analysis: ModuleAnalysis, source: cst.BaseExpression, classes: dict[str, cst.ClassDef]) -> cst.ClassDef | None:
    if not isinstance(source, cst.Name):
        return None
    made = None
    for assign in analysis.walk(None, cst.Assign):
        if any(isinstance(t.target, cst.Name) and t.target.value == source.value for t in assign.targets):
            value = assign.value
            klass = classes.get(value.func.value) if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) else None
            if klass is None or (made is not None and made is not klass):
                return None
            made = klass
    return made


def _non_trainable_state(analysis: ModuleAnalysis, seeds: bool, within: cst.CSTNode | None = None) -> cst.CSTNode | None:
    """The first sign, in this module (or in ``within``), of a variable no gradient reaches (seed states count if ``seeds``)."""
    stateful = WEIGHTED_STATE_LAYERS | SEEDED_STATE_LAYERS if seeds else WEIGHTED_STATE_LAYERS
    for call in analysis.calls(within):
        qualname = analysis.qualname(call.func) or ""
        if qualname.startswith("keras.") and qualname.split(".")[-1] in stateful:
            return call
        if qualname.startswith("keras.applications.") or qualname in MODEL_LOADERS:
            return call
        if any(arg.keyword is not None and arg.keyword.value == "trainable" and dotted(arg.value) == "False" for arg in call.args):
            return call
    for assign in _find(within or analysis.module, cst.Assign):
        for target in assign.targets:
            if isinstance(target.target, cst.Attribute) and target.target.attr.value == "trainable" and dotted(assign.value) == "False":
                return assign
    return None


def _all_variables(analysis: ModuleAnalysis, sources: cst.BaseExpression) -> list[cst.Attribute]:
    """The ``x.variables`` / ``x.weights`` the sources are made of."""
    if isinstance(sources, cst.Attribute):
        if sources.attr.value in TRAINABLE_OF and analysis.qualname(sources) is None:
            return [sources]
        return []
    if isinstance(sources, (cst.List, cst.Tuple)):
        return [a for element in sources.elements for a in _all_variables(analysis, element.value)]
    if isinstance(sources, cst.BinaryOperation) and isinstance(sources.operator, cst.Add):
        return _all_variables(analysis, sources.left) + _all_variables(analysis, sources.right)
    copied = copied_iterable(sources)
    if copied is not None:
        return _all_variables(analysis, copied)
    return []


def _trainable(attribute: cst.Attribute) -> cst.Attribute:
    return attribute.with_changes(attr=cst.Name(TRAINABLE_OF[attribute.attr.value]))


def _holder(analysis: ModuleAnalysis, gradient: GradientCall, name: str) -> cst.Assign | None:
    at = analysis.statement_index(gradient.node)
    if at is None:
        return None
    definitions = analysis.reaching_definitions(name, at, gradient.scope)
    value = assigned_value(definitions[0].node, name) if len(definitions) == 1 else None
    holder = analysis.parent(value) if value is not None else None
    # the fix rewrites the value: with another target beside the name, it would change that one too
    return holder if isinstance(holder, cst.Assign) and len(holder.targets) == 1 else None


def _only_paired(analysis: ModuleAnalysis, holder: cst.Assign, gradient: GradientCall) -> bool:
    """Whether the name bound by ``holder`` only serves as gradient sources and in ``zip`` with gradients."""
    name = holder.targets[0].target.value
    statement = analysis.statement_index(holder)
    for later in analysis.uses_after(name, statement, gradient.scope):
        for use in _find(later.node, cst.Name):
            if use.value != name:
                continue
            parent = analysis.parent(use)
            call = analysis.parent(parent) if isinstance(parent, cst.Arg) else None
            if not isinstance(call, cst.Call):
                return False
            is_zip = isinstance(call.func, cst.Name) and call.func.value == "zip"
            is_gradient = any(g.node is call for g in analysis.gradient_calls)
            if not (is_zip or is_gradient):
                return False
    return True


def _zipped(analysis: ModuleAnalysis, attribute: cst.Attribute) -> list[cst.Attribute]:
    """Every ``zip(..., <the same x.variables>)`` argument in the module."""
    text = analysis.code(attribute)
    found = []
    for call in analysis.calls():
        if isinstance(call.func, cst.Name) and call.func.value == "zip" and analysis.qualname(call.func) is None:
            for arg in call.args:
                if isinstance(arg.value, cst.Attribute) and arg.value is not attribute and analysis.code(arg.value) == text:
                    found.append(arg.value)
    return found


def _find(root: cst.CSTNode, kind: type) -> list:
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            found.append(node)
        stack.extend(children(node))
    return found
