"""GF006 all-variables-as-sources."""

from __future__ import annotations

import builtins
from typing import Iterator

import libcst as cst

from gradfix.categories import NOT_TRAINABLE
from gradfix.edits import ReplaceNodes
from gradfix.messages import brief
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import (
    GradientCall,
    ModuleAnalysis,
    argument,
    assigned_value,
    attributes_assigned,
    chains,
    children,
    names_read,
    target_names,
)
from gradfix.static.api import (
    ALL_VARIABLE_LISTS,
    LIBRARY_PREFIXES,
    MODEL_LOADERS,
    SEEDED_STATE_LAYERS,
    TRAINABLE_OF,
    WEIGHTED_STATE_LAYERS,
)
from gradfix.static.names import copied_iterable, dotted
from gradfix.static.origins import made_within

# Methods that consume (gradient, variable) pairs or update a variable: the gradients end there.
CONSUMERS = frozenset({"apply_gradients", "apply", "minimize", "assign", "assign_sub", "assign_add"})
# Builtins that store what they are given somewhere else; the others only look at it, convert or regroup it.
STORING_BUILTINS = frozenset({"setattr", "exec", "eval", "globals", "vars"})

# Keywords under which a step that takes the gradients and the variables apart is given the variables.
VARIABLES_KEYWORDS = ("trainable_variables", "var_list", "variables")


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
    `.trainable_weights`, in the gradient call and wherever the same function
    pairs the gradients with the same variables: a `zip` with the gradients, or a
    step given the gradients and the variables as two arguments
    (`optimizer.apply(grads, model.variables)`), so that the pairs stay aligned.
    A `zip` that pairs no gradients, such as a moving average of the weights
    (`zip(model.weights, ema_model.weights)`), is left as it is. When the sources
    come through a name (`params = model.variables`), the assignment is changed
    instead.

    ## Fix safety
    Safe only when the list changed is the one the optimizer pairs with these
    gradients and nothing else reads it: wherever the function pairs the gradients
    with variables (a `zip`, a Keras optimizer's `apply(grads, variables)`), the
    variables are the same list, changed alike, or already its trainable part; and
    a name holding the list serves only as the sources and in those pairings. The
    non-trainable variables only ever got `None`, so dropping them changes nothing
    but the warning. When the gradients are paired with variables written apart
    from their sources (`optimizer.apply(grads, update_variables)`, a `zip` with
    another list), the fix is display-only, since changing the sources alone would
    give gradients to the wrong variables. When a step of the program's own is
    given both lists (`sgd_step(grads, model.variables)`, or an optimizer class of
    its own whose `apply_gradients(grads, variables)` takes two lists), both change alike but
    the fix is unsafe: what the step does with the variables besides pairing them
    is not proven. When the gradients leave the function (returned, kept on an
    object or in a global, given to a function of the program's own or to a
    method that is not an optimizer's or a variable's update), the pairing is out
    of sight and the fix is unsafe. No fix is offered when the same list is
    paired with gradients in another function, or when the name holding it is
    used for something else (a moving average of the weights, say, also when a
    function reads a module-level name).

    ## When not to fix
    `model.trainable_variables` and `trainable_weights`, `model.variables` used for
    saving, checkpoints or an exponential moving average, and modules where no
    non-trainable state is visible (a `tf.Module` or a model of Dense layers only:
    there `variables` and `trainable_variables` are the same list) are left alone,
    and so is `model.weights` when the only state is a Dropout's seed (Keras 3 keeps
    seed states in `variables` but out of `weights`). A gradient asked with
    `unconnected_gradients=tf.UnconnectedGradients.ZERO` (or `"zero"`) is not
    reported: the non-trainable variables get zeros, not `None`.
    The non-trainable state must belong to the model whose variables are listed:
    it is looked for only in the code that model's value flows from (its
    assignments, the arguments the step's callers pass for it, the classes and
    functions of this module those call), so a model loaded in a later notebook
    cell or a network built for something else is no evidence.
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
        # keras-io's diffusion model: the weights' moving average copies `network.weights` into
        # `ema_network.weights`; that `zip` pairs no gradients and must keep every weight.
        Invalid(
            """
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers


def get_network(image_size, widths):
    noisy_images = keras.Input(shape=(image_size, image_size, 3))
    x = layers.Conv2D(widths[0], kernel_size=1)(noisy_images)
    for width in widths:
        residual = layers.Conv2D(width, kernel_size=1)(x)
        x = layers.BatchNormalization(center=False, scale=False)(x)
        x = layers.Conv2D(width, kernel_size=3, padding="same", activation="swish")(x)
        x = layers.Add()([x, residual])
    x = layers.Conv2D(3, kernel_size=1, kernel_initializer="zeros")(x)
    return keras.Model(noisy_images, x, name="residual_unet")


class DiffusionModel(keras.Model):
    def __init__(self, image_size, widths, ema=0.999):
        super().__init__()
        self.network = get_network(image_size, widths)
        self.ema_network = keras.models.clone_model(self.network)
        self.ema = ema
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")

    def train_step(self, images):
        noises = tf.random.normal(shape=tf.shape(images))
        with tf.GradientTape() as tape:
            pred_noises = self.network(images + noises, training=True)
            noise_loss = self.loss(noises, pred_noises)
        gradients = tape.gradient(noise_loss, self.network.weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.weights))
        self.noise_loss_tracker.update_state(noise_loss)
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {"n_loss": self.noise_loss_tracker.result()}
""",
            """
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers


def get_network(image_size, widths):
    noisy_images = keras.Input(shape=(image_size, image_size, 3))
    x = layers.Conv2D(widths[0], kernel_size=1)(noisy_images)
    for width in widths:
        residual = layers.Conv2D(width, kernel_size=1)(x)
        x = layers.BatchNormalization(center=False, scale=False)(x)
        x = layers.Conv2D(width, kernel_size=3, padding="same", activation="swish")(x)
        x = layers.Add()([x, residual])
    x = layers.Conv2D(3, kernel_size=1, kernel_initializer="zeros")(x)
    return keras.Model(noisy_images, x, name="residual_unet")


class DiffusionModel(keras.Model):
    def __init__(self, image_size, widths, ema=0.999):
        super().__init__()
        self.network = get_network(image_size, widths)
        self.ema_network = keras.models.clone_model(self.network)
        self.ema = ema
        self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")

    def train_step(self, images):
        noises = tf.random.normal(shape=tf.shape(images))
        with tf.GradientTape() as tape:
            pred_noises = self.network(images + noises, training=True)
            noise_loss = self.loss(noises, pred_noises)
        gradients = tape.gradient(noise_loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        self.noise_loss_tracker.update_state(noise_loss)
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return {"n_loss": self.noise_loss_tracker.result()}
""",
            Applicability.SAFE,
        ),
        # The list held by `params` also feeds a moving average of the weights: changing it would
        # misalign that copy, so the finding comes without a fix.
        Invalid(
            """
import tensorflow as tf
from tensorflow import keras

model = keras.Sequential([keras.layers.Dense(64), keras.layers.BatchNormalization(), keras.layers.Dense(10)])
ema_model = keras.models.clone_model(model)
params = model.weights
for images, labels in dataset:
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(images, training=True))
    grads = tape.gradient(loss, params)
    optimizer.apply_gradients(zip(grads, params))
    for w, ema_w in zip(params, ema_model.weights):
        ema_w.assign(0.999 * ema_w + 0.001 * w)
""",
            None,
        ),
        # A Keras 3 train_step that gives the optimizer the gradients and the variables apart:
        # both lists change together, or the gradients would go to the wrong variables.
        Invalid(
            """
import tensorflow as tf
import keras


class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.encoder = keras.Sequential([keras.layers.Dense(64), keras.layers.LayerNormalization()])
        self.head = keras.Sequential([keras.layers.Dense(64), keras.layers.BatchNormalization(), keras.layers.Dense(10)])
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, x, training=False):
        return self.head(self.encoder(x, training=training), training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=logits)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply(grads, self.variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}
""",
            """
import tensorflow as tf
import keras


class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.encoder = keras.Sequential([keras.layers.Dense(64), keras.layers.LayerNormalization()])
        self.head = keras.Sequential([keras.layers.Dense(64), keras.layers.BatchNormalization(), keras.layers.Dense(10)])
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, x, training=False):
        return self.head(self.encoder(x, training=training), training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=logits)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}
""",
            Applicability.SAFE,
        ),
        # The variables given to `optimizer.apply` come from another expression than the gradient's
        # sources: changing the sources alone would misalign them, so the fix is only shown.
        Invalid(
            """
import tensorflow as tf
import keras

model = keras.Sequential([keras.layers.Dense(64), keras.layers.LayerNormalization(), keras.layers.Dense(64),
                          keras.layers.BatchNormalization(), keras.layers.Dense(10)])
optimizer = keras.optimizers.Adam(1e-3)
update_variables = model.variables
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.variables)
    optimizer.apply(grads, update_variables)
""",
            None,
            Applicability.DISPLAY_ONLY,
        ),
        # Gradients accumulated over several batches in a list sized from all the variables: the
        # accumulator is paired with the gradients apart from their sources, so the fix is only shown.
        Invalid(
            """
import tensorflow as tf
from tensorflow import keras


class AccumulatingTrainer:
    def __init__(self, model, optimizer, steps=4):
        self.model = model
        self.optimizer = optimizer
        self.steps = steps
        self.accumulated = [tf.zeros_like(v) for v in model.variables]

    def train_step(self, step, x, y):
        with tf.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(y, self.model(x, training=True))
        grads = tape.gradient(loss, self.model.variables)
        self.accumulated = [total + grad for total, grad in zip(self.accumulated, grads)]
        if (step + 1) % self.steps == 0:
            self.optimizer.apply_gradients(zip(self.accumulated, self.model.variables))
            self.accumulated = [tf.zeros_like(v) for v in self.model.variables]


trainer = AccumulatingTrainer(keras.Sequential([keras.layers.Dense(32), keras.layers.BatchNormalization(),
                                                keras.layers.Dense(1)]), keras.optimizers.Adam())
""",
            None,
            Applicability.DISPLAY_ONLY,
        ),
        # A hand-written two-argument step: both of its lists change together, but what the
        # function does with the variables besides pairing them is not proven.
        Invalid(
            """
import tensorflow as tf
import keras


def sgd_step(grads, variables, lr=0.01):
    for grad, variable in zip(grads, variables):
        variable.assign_sub(lr * grad)


model = keras.Sequential([keras.layers.Dense(64), keras.layers.LayerNormalization(), keras.layers.Dense(64),
                          keras.layers.BatchNormalization(), keras.layers.Dense(10)])
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.variables)
    sgd_step(grads, model.variables)
""",
            """
import tensorflow as tf
import keras


def sgd_step(grads, variables, lr=0.01):
    for grad, variable in zip(grads, variables):
        variable.assign_sub(lr * grad)


model = keras.Sequential([keras.layers.Dense(64), keras.layers.LayerNormalization(), keras.layers.Dense(64),
                          keras.layers.BatchNormalization(), keras.layers.Dense(10)])
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    sgd_step(grads, model.trainable_variables)
""",
            Applicability.UNSAFE,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for gradient in analysis.gradient_calls:
            if gradient.sources is None or analysis.zeros_when_unconnected(gradient):
                continue
            report = self._report(analysis, gradient)
            if report is not None:
                yield report

    def _report(self, analysis: ModuleAnalysis, gradient: GradientCall) -> Report | None:
        assert gradient.sources is not None, "checked by check"
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
        holds = "holds" if len(attributes) == 1 else "hold"
        message = f"Gradients asked of {' and '.join(f'`{brief(analysis.code(a), 24)}`' for a in attributes)}, non-trainable state included"
        detail = (
            f"{listed} also {holds} non-trainable variables (a BatchNormalization's moving statistics, frozen layers); "
            "the tape gives them no gradient, and the optimizer warns or fails on the None. "
            f"Ask for the gradients of {' and '.join(f'`.{TRAINABLE_OF[a.attr.value]}`' for a in attributes)}."
        )
        related = [(evidence, "non-trainable state is made here"), (gradient.node, "the gradient is asked here")]
        replacements: dict[cst.CSTNode, cst.CSTNode] = {a: _trainable(a) for a in attributes}
        if holder is not None:
            if not _only_paired(analysis, holder, gradient):
                return Report(
                    gradient.node,
                    message,
                    related,
                    detail=detail + f" No fix is offered: `{cst.ensure_type(holder.targets[0].target, cst.Name).value}` is also used for something "
                    "other than pairing these gradients with their variables.",
                )
        elif any(_paired_elsewhere(analysis, attribute, gradient) for attribute in attributes):
            return Report(
                gradient.node,
                message,
                related,
                detail=detail + " No fix is offered: the same list is paired with gradients in another function.",
            )
        updates = _Updates(analysis, gradient, attributes, holder)
        replacements.update(updates.replacements)
        new_names = sorted({TRAINABLE_OF[a.attr.value] for a in attributes})
        report = Report(
            gradient.node,
            message,
            related,
            detail=detail,
            replacements=replacements,
            fix_description=f"Ask for the gradients of {' and '.join(f'`.{n}`' for n in new_names)}",
        )
        if updates.apart:
            report.related = related + [(node, "the gradients are paired here with variables written apart from their sources")
                                        for node in updates.apart]
            report.applicability = Applicability.DISPLAY_ONLY
            report.applicability_reason = (
                "the variables the gradients are applied to are written apart from the gradient's sources (see the related "
                "lines): changing the sources alone would pair gradients with the wrong variables; change both alike"
            )
        elif updates.custom:
            names = ", ".join(f"`{analysis.code(call.func)}`" for call in updates.custom)
            report.applicability = Applicability.UNSAFE
            report.applicability_reason = (
                f"{names} is given the gradients and the variables apart; both lists change alike, but what it does "
                "with the variables besides pairing them with the gradients is not known"
            )
        else:
            leaving = _gradients_leave(analysis, gradient)
            if leaving:
                report.related = related + [(node, "the gradients leave the function here") for node in leaving]
                report.applicability = Applicability.UNSAFE
                report.applicability_reason = (
                    "the gradients leave this function (see the related lines), so where they are paired with "
                    "variables is out of sight: there the variables must become the trainable list too"
                )
        return report


def _gradients_leave(analysis: ModuleAnalysis, gradient: GradientCall) -> list[cst.CSTNode]:
    """Where the gradients (or values computed from them) leave their function: returned or yielded, stored
    on an object or in a global, or given to a function of the program's own or to a method that is not an
    optimizer's or a variable's update. Only where they do not is every pairing of them in sight."""
    scope = gradient.scope
    asked = analysis.statement_index(gradient.node)
    if asked is None:
        return [gradient.node]
    carrying: set[str] = set()
    shared = _declared_shared(scope)
    leaving: list[cst.CSTNode] = []

    def carries(node: cst.CSTNode) -> bool:
        return analysis.is_inside(gradient.node, node) or bool(names_read(node) & carrying)

    for statement in analysis.statements(scope)[asked.index:]:
        line = statement.node
        if isinstance(line, cst.For):
            if carries(line.iter):
                carrying |= target_names(line.target)
            continue
        if not isinstance(line, cst.SimpleStatementLine):
            continue
        for small in line.body:
            if isinstance(small, cst.Return) and small.value is not None and carries(small.value):
                leaving.append(small)
            elif isinstance(small, cst.Expr) and isinstance(small.value, (cst.Yield, cst.Await)) and carries(small.value):
                leaving.append(small)
            elif isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)) and small.value is not None and carries(small.value):
                targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                for target in targets:
                    bound = target_names(target)
                    if not bound or bound & shared or not isinstance(target, (cst.Name, cst.Tuple, cst.List)):
                        leaving.append(small)
                    carrying |= bound
        for call in analysis.calls(line):
            if any(carries(arg.value) for arg in call.args) and _takes_gradients_away(analysis, call, gradient, carries):
                leaving.append(call)
    return leaving


def _takes_gradients_away(analysis: ModuleAnalysis, call: cst.Call, gradient: GradientCall, carries) -> bool:
    func = call.func
    if any(g.node is call for g in analysis.gradient_calls) or _variables_given_apart(analysis, call, gradient) is not None:
        return False  # the gradient call itself, or a two-argument step (its own verdict)
    if (analysis.qualname(func) or "").startswith(LIBRARY_PREFIXES):
        return False
    if isinstance(func, cst.Name):
        builtin = func.value in vars(builtins) and func.value not in STORING_BUILTINS
        return not (builtin and analysis.function_named(func.value) is None)
    if isinstance(func, cst.Attribute):
        # a method of the gradients themselves (`g.numpy()`), or one that consumes the pairs
        return not (func.attr.value in CONSUMERS or carries(func.value))
    return True


def _declared_shared(scope: cst.CSTNode) -> set[str]:
    """The names a function declares ``global`` or ``nonlocal``: what it binds to them outlives the call."""
    if not isinstance(scope, cst.FunctionDef):
        return set()
    return {item.name.value for node in _find(scope.body, (cst.Global, cst.Nonlocal)) for item in node.names}


def _where_state_is_made(analysis: ModuleAnalysis, attributes: list[cst.Attribute]) -> list[cst.CSTNode | None]:
    """Where the variables of each source (the model or layer whose variables are listed) are made: the code
    its value flows from (its assignments, the arguments its function's callers pass, the classes and
    functions of this module those call), else, when that is out of sight, anywhere (None).

    A layer with non-trainable state made for another model, or a model loaded in another notebook cell,
    says nothing about this one.
    """
    places: list[cst.CSTNode | None] = []
    for attribute in attributes:
        origins = made_within(analysis, attribute.value)
        if origins is None:
            return [None]
        places.extend(origins)
    return places


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
    """Whether the name bound by ``holder`` only serves as gradient sources and as the variables these
    gradients are paired with (in a ``zip`` with them, or given beside them to a step)."""
    name = cst.ensure_type(holder.targets[0].target, cst.Name).value
    statement = analysis.statement_index(holder)
    assert statement is not None, "the holder is a statement of its scope"
    if analysis.scope_of(holder) is analysis.module and any(
        name in names_read(function.body) and not any(name in s.assigned for s in analysis.statements(function))
        for function in analysis.functions
    ):
        return False  # a function reads the module's list too (a moving average kept in a helper, say)
    for later in analysis.uses_after(name, statement, gradient.scope):
        for use in _find(later.node, cst.Name):
            if use.value != name:
                continue
            parent = analysis.parent(use)
            call = analysis.parent(parent) if isinstance(parent, cst.Arg) else None
            if not isinstance(call, cst.Call):
                return False
            assert isinstance(parent, cst.Arg), "a call is found only above an argument"
            if any(g.node is call for g in analysis.gradient_calls):
                continue
            if _is_zip(analysis, call):
                if not any(_carries_gradients(analysis, arg.value, gradient) for arg in call.args):
                    return False  # a copy of the weights (a moving average, a transfer), not a pairing
            elif _variables_given_apart(analysis, call, gradient) is not parent.value:
                return False
    return True


def _is_zip(analysis: ModuleAnalysis, call: cst.Call) -> bool:
    return isinstance(call.func, cst.Name) and call.func.value == "zip" and analysis.qualname(call.func) is None


def _carries_gradients(analysis: ModuleAnalysis, expression: cst.BaseExpression, gradient: GradientCall) -> bool:
    """Whether ``expression``, in the gradient's function, is computed from what the gradient call returns."""
    if analysis.is_inside(gradient.node, expression):
        return True
    if analysis.scope_of(expression) is not gradient.scope:
        return False
    asked = analysis.statement_of(gradient.node)
    if attributes_assigned(asked) & chains(expression):
        return True  # `self.grads = tape.gradient(...)`, read back: the slice follows names only
    return any(statement.node is asked for statement in analysis.backward_slice(expression, gradient.scope))


def _variables_given_apart(analysis: ModuleAnalysis, call: cst.Call, gradient: GradientCall) -> cst.BaseExpression | None:
    """The variables of a step that takes the gradients and the variables as two arguments
    (``optimizer.apply(grads, variables)``, ``sgd_step(grads, variables)``), when ``call`` is one."""
    func = call.func
    if isinstance(func, cst.Name) and func.value in vars(builtins) and analysis.function_named(func.value) is None:
        return None
    if (analysis.qualname(func) or "").startswith(LIBRARY_PREFIXES) or any(g.node is call for g in analysis.gradient_calls):
        return None
    if isinstance(func, cst.Attribute) and func.attr.value == "minimize":
        return None  # it takes a loss
    if isinstance(func, cst.Attribute) and func.attr.value == "apply_gradients" and argument(call, 1) is None:
        return None  # a Keras optimizer's: (gradient, variable) pairs; given two lists, it is an optimizer of the program's own
    grads = argument(call, 0)
    if grads is None or (isinstance(grads, cst.Call) and _is_zip(analysis, grads)):
        return None
    variables = argument(call, 1)
    if variables is None:
        variables = next((arg.value for arg in call.args if arg.keyword is not None and arg.keyword.value in VARIABLES_KEYWORDS), None)
    if variables is None or isinstance(variables, (cst.BaseNumber, cst.BaseString)):
        return None
    return variables if _carries_gradients(analysis, grads, gradient) else None


class _Updates:
    """Where the gradients are paired with variables in their own function, and what the fix must change there.

    replacements: the variables paired with the gradients that are the gradient's sources written again
    (``zip(grads, model.variables)``), changed alike; apart: variables paired with the gradients that
    are written otherwise, which the fix would leave misaligned; custom: the calls other than an
    optimizer's ``apply`` given the gradients and those same variables apart (both changed alike).
    """

    def __init__(self, analysis: ModuleAnalysis, gradient: GradientCall, attributes: list[cst.Attribute],
                 holder: cst.Assign | None):
        self.analysis = analysis
        assert gradient.sources is not None, "the rule checks only gradients with sources"
        self.holder_name = cst.ensure_type(holder.targets[0].target, cst.Name).value if holder is not None else None
        self.sources = _listing(analysis, gradient.sources)
        fixed = gradient.sources.visit(ReplaceNodes({a: _trainable(a) for a in attributes}))
        assert isinstance(fixed, cst.BaseExpression), "attributes replaced by attributes"
        self.fixed_sources = _listing(analysis, fixed)
        self.replacements: dict[cst.CSTNode, cst.CSTNode] = {}
        self.apart: list[cst.CSTNode] = []
        self.custom: list[cst.Call] = []
        for call in analysis.walk(gradient.scope, cst.Call):
            if analysis.scope_of(call) is not gradient.scope or analysis.is_inside(call, gradient.node):
                continue
            if _is_zip(analysis, call):
                values = [arg.value for arg in call.args]
                paired = [value for value in values if _carries_gradients(analysis, value, gradient)]
                if paired:
                    for value in values:
                        if not any(value is p for p in paired):
                            self._pair(value)
                continue
            variables = _variables_given_apart(analysis, call, gradient)
            if variables is not None and self._pair(variables):
                optimizer_step = isinstance(call.func, cst.Attribute) and call.func.attr.value == "apply"
                if not optimizer_step:
                    self.custom.append(call)

    def _pair(self, variables: cst.BaseExpression) -> bool:
        """Note what the fix does to variables paired with the gradients; whether they change alike."""
        listing = _listing(self.analysis, variables)
        if self.holder_name is not None and isinstance(variables, cst.Name) and variables.value == self.holder_name:
            return True  # the holder's value changes
        if self.holder_name is None and listing == self.sources:
            self.replacements.update({a: _trainable(a) for a in _all_variables(self.analysis, variables)})
            return True
        if listing != self.fixed_sources:
            self.apart.append(variables)
        return False


def _listing(analysis: ModuleAnalysis, expression: cst.BaseExpression) -> tuple[str, ...] | str:
    """What a list of variables is, to compare two spellings of it: the variable lists it is made of
    (``[v for v in model.variables]`` and ``model.variables`` alike), or else its code."""
    lists = _variable_lists(expression)
    if lists is not None:
        return tuple(analysis.module.code_for_node(a).strip() for a in lists)
    return analysis.module.code_for_node(expression).strip()


def _variable_lists(expression: cst.BaseExpression) -> list[cst.Attribute] | None:
    """The ``x.variables``, ``x.trainable_weights``, ... an expression is made of alone, or None."""
    if isinstance(expression, cst.Attribute):
        return [expression] if expression.attr.value in ALL_VARIABLE_LISTS else None
    if isinstance(expression, (cst.List, cst.Tuple)):
        parts = [_variable_lists(element.value) for element in expression.elements]
        return None if any(p is None for p in parts) else [a for p in parts if p is not None for a in p]
    if isinstance(expression, cst.BinaryOperation) and isinstance(expression.operator, cst.Add):
        left, right = _variable_lists(expression.left), _variable_lists(expression.right)
        return None if left is None or right is None else left + right
    copied = copied_iterable(expression)
    return _variable_lists(copied) if copied is not None else None


def _paired_elsewhere(analysis: ModuleAnalysis, attribute: cst.Attribute, gradient: GradientCall) -> bool:
    """Whether the same ``x.variables`` is paired with gradients in another function: a ``zip`` of it that
    is not a copy from one list of variables to another, or a step given it beside gradients."""
    text = analysis.code(attribute)
    for call in analysis.calls():
        if analysis.scope_of(call) is gradient.scope:
            continue
        values = [arg.value for arg in call.args]
        if not any(analysis.code(value) == text for value in values):
            continue
        if _is_zip(analysis, call):
            if not all(_variable_lists(value) is not None for value in values):
                return True
        elif isinstance(call.func, cst.Attribute) and call.func.attr.value == "apply" and len(values) > 1:
            return True
    return False


def _find(root: cst.CSTNode, kind: type | tuple[type, ...]) -> list:
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            found.append(node)
        stack.extend(children(node))
    return found
