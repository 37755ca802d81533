from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix import categories
from gradfix.messages import brief
from gradfix.model import Applicability
from gradfix.rule import Invalid, Replacement, Report, Rule
from gradfix.static import tapeflow
from gradfix.static.analysis import GradientCall, ModuleAnalysis, Statement, lone_assignment, names_read
from gradfix.static.api import KERAS_MODELS, NOT_FORWARD, NOT_FORWARD_WORDS
from gradfix.static.gradpath import keras_loss_functions, might_take_gradients, own_method
from gradfix.static.names import dotted
from gradfix.static.sources import Source, resolve_sources
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context
from gradfix.transforms._unread import unread
from gradfix.transforms.add_unused_loss_term import AddUnusedLossTerm
from gradfix.transforms.use_prediction import UsePrediction


class LossIgnoresPrediction(Rule):
    """
    Finds a loss that does not use the model's final prediction. Either a Keras-style loss
    `def loss(y_true, y_pred)` never reads `y_pred` and runs a layer or a sub-model of its own
    instead (`model.layers[0](y_true)`), or a training step computes the final prediction inside
    the tape and then builds the loss from an intermediate output (`model.layers[0](x)`, bound to a
    name or written into the loss, or the features the prediction was made from) while the
    prediction goes unused; or a step computes a loss term in the tape (`reconstruction_loss`,
    named like a loss) and never adds it to the total it differentiates, reading it after the tape only to log
    it (a metric's `update_state`, `print`, the step's returned logs) when it runs a model that nothing in the
    total runs (the VAE whose `total_loss = kl_loss` leaves the decoder untrained). A network of raw variables is read the same way: with
    `pred = hidden @ w2 + b2` in the tape and a loss built from `hidden`, `w2` and `b2` get no
    gradient. The prediction may be bound with others by one tuple assignment (`p1, p2 =
    self.predictor(z1), self.predictor(z2)`, `z_mean, z_log_var, z = self.encoder(data)`), and
    made by a model or layer that the model differentiated holds (`self.predictor` when the
    gradient is asked for `self.trainable_variables` in a Keras `train_step`). The prediction and
    the loss may be made by a function or method of the module that the tape calls
    (`loss = compute_loss(x, y)`), reading the model under the same name.

    ## Why gradients vanish

    A variable gets a gradient only if the loss depends on it. When the loss is built from the
    output of the first layer (or of an encoder), the layers that come after it, the ones that
    turn that output into the final prediction, play no part in the loss: their kernels and
    biases get `None` (`Gradients do not exist for variables [...]`, or `ValueError: No
    gradients provided for any variable` when nothing is left).

    ## Example

    ```python
    def incorrect_loss(y_true, y_pred):
        intermediate_output = model.layers[0](y_true)
        return tf.reduce_mean(tf.abs(intermediate_output))
    ```

    ## Fix

    ```python
    def incorrect_loss(y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_pred))
    ```

    The layer call goes and the prediction takes the place of its result. In a training step,
    the loss reads the final prediction instead of the intermediate output.

    ## Fix safety

    **Unsafe**: the loss then measures a different tensor, of another shape and meaning (the
    model's output instead of a hidden activation), so the number it reports and what training
    optimises change. That is what makes the gradients reach every layer, and almost always what
    was meant, but only the author can say that the remaining arithmetic still makes sense for
    the prediction. No fix is offered when the loss calls several layers, or the step has more
    than one candidate intermediate output: the rule cannot tell which one was meant to be the
    prediction. An unread loss term is added to the total: unsafe too, since the program then
    optimises another objective; leaving the term out may have been meant. Both fixes are the
    `use-prediction` and `add-unused-loss-term` operators, which `gradfix diagnose --fix` uses too.

    ## When not to fix

    - A loss that reads `y_pred` anywhere, even through a helper (`return helper(y_true, y_pred)`).
    - A loss that calls the whole model (the one compiled with it), which reaches every variable.
    - A loss that ignores `y_pred` but calls no layer (a zero loss for an output that is not trained).
    - A training step whose loss uses an intermediate output on purpose, when the later layers
      are not among the variables differentiated, or when the final prediction also feeds the loss.
    """

    code = "GF003"
    name = "loss-ignores-prediction"
    summary = "The loss does not use the model's final prediction"
    applicability = Applicability.UNSAFE
    categories = (categories.LOSS_IGNORES_PREDICTION,)
    needles = ("GradientTape", "compile(")

    def wants(self, text: str) -> bool:
        return might_take_gradients(text)

    VALID = [
        # the seed's Example 2: the loss reads y_pred
        """
        import tensorflow as tf

        model = tf.keras.Sequential([tf.keras.layers.Dense(10, activation='sigmoid')])

        def detached_variable_loss(y_true, y_pred):
            # Incorrect: Modifies the prediction outside the GradientTape
            modified_prediction = y_pred + tf.constant(1.0) #Operation outside the gradient tape
            return tf.reduce_mean(tf.square(y_true - modified_prediction))

        optimizer = tf.keras.optimizers.Adam()

        with tf.GradientTape() as tape:
            predictions = model(tf.random.normal((100,1)))
            loss = detached_variable_loss(tf.random.normal((100,1)), predictions)
        gradients = tape.gradient(loss, model.trainable_variables)

        try:
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        except Exception as e:
            print(f"Error: {e}") # Potential ValueError due to detached tensor
        """,
        # the seed's Example 3
        """
        import tensorflow as tf

        model = tf.keras.Sequential([
            tf.keras.layers.Dense(64, activation='relu', input_shape=(10,)),
            tf.keras.layers.Dense(10, activation='softmax')
        ])

        def correct_loss(y_true, y_pred):
            return tf.keras.losses.categorical_crossentropy(y_true, y_pred)

        optimizer = tf.keras.optimizers.Adam()

        with tf.GradientTape() as tape:
            predictions = model(tf.random.normal((100,10)))
            loss = correct_loss(tf.one_hot(tf.random.uniform((100,), maxval=10, dtype=tf.int32), depth=10), predictions) # Correct use of one hot encoding
        gradients = tape.gradient(loss, model.trainable_variables)

        optimizer.apply_gradients(zip(gradients, model.trainable_variables)) #This should work correctly
        """,
        # y_pred used through a helper, plus a layer call for a regulariser
        """
        import tensorflow as tf
        from tensorflow import keras

        model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])

        def weighted_mse(y_true, y_pred, weight=2.0):
            return weight * tf.reduce_mean(tf.square(y_true - y_pred))

        def loss_with_activity(y_true, y_pred):
            hidden = model.layers[0](y_true)
            return weighted_mse(y_true, y_pred) + 0.01 * tf.reduce_mean(hidden)

        model.compile(optimizer="adam", loss=loss_with_activity)
        """,
        # the loss calls the whole compiled model: every variable is reached
        """
        import tensorflow as tf
        from tensorflow import keras

        autoencoder = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(8)])

        def consistency(y_true, y_pred):
            return tf.reduce_mean(tf.square(autoencoder(y_true) - y_true))

        autoencoder.compile(optimizer="adam", loss=consistency)
        """,
        # a zero loss for an output that is not trained calls no layer
        """
        from tensorflow import keras

        def zero_loss(y_true, y_pred):
            return 0.0 * keras.ops.sum(y_true)

        model = keras.Sequential([keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss=zero_loss)
        """,
        # features used on purpose: the head is trained elsewhere, its variables are not differentiated
        """
        import tensorflow as tf

        def pretrain_step(encoder, head, optimizer, x, x_aug):
            with tf.GradientTape() as tape:
                z = encoder(x, training=True)
                z_aug = encoder(x_aug, training=True)
                logits = head(z)
                loss = tf.reduce_mean(tf.square(z - z_aug))
            grads = tape.gradient(loss, encoder.trainable_variables)
            optimizer.apply_gradients(zip(grads, encoder.trainable_variables))
            return logits
        """,
        # the final prediction feeds the loss too (an auxiliary term on the features)
        """
        import tensorflow as tf

        def train_step(encoder, head, optimizer, x, y):
            with tf.GradientTape() as tape:
                features = encoder(x, training=True)
                logits = head(features, training=True)
                loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
                loss += 1e-3 * tf.reduce_mean(tf.square(features))
            variables = encoder.trainable_variables + head.trainable_variables
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
        """,
        # Look-alike: a Loss subclass that reads `y_pred`.
        """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

class L1Loss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_true - y_pred))

model.compile(optimizer="adam", loss=L1Loss())
""",
        # a hidden layer's output in the loss on purpose, as a penalty beside the prediction
        """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)

def train_step(x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = tf.reduce_mean(tf.square(y - predictions)) + 0.01 * tf.reduce_mean(tf.square(model.layers[0](x)))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
""",
        # raw variables: the hidden activation penalised beside the prediction, which a helper reads
        """
import tensorflow as tf

w1 = tf.Variable(tf.random.normal((4, 8)))
b1 = tf.Variable(tf.zeros((8,)))
w2 = tf.Variable(tf.random.normal((8, 1)))
b2 = tf.Variable(tf.zeros((1,)))

def compute_loss(y_true, y_pred):
    return tf.reduce_mean(tf.square(y_true - y_pred))

def train_step(x, y):
    with tf.GradientTape() as tape:
        hidden1 = tf.nn.relu(x @ w1 + b1)
        predictions = hidden1 @ w2 + b2
        loss = compute_loss(y, predictions) + 1e-3 * tf.reduce_mean(tf.square(hidden1))
    grads = tape.gradient(loss, [w1, b1, w2, b2])
    for g, v in zip(grads, [w1, b1, w2, b2]):
        v.assign_sub(0.01 * g)
    return loss
""",
        # raw variables: only the first layer is trained on its output; the head's variables are not asked for
        """
import tensorflow as tf

w1 = tf.Variable(tf.random.normal((4, 8)))
b1 = tf.Variable(tf.zeros((8,)))
w2 = tf.Variable(tf.random.normal((8, 4)))
b2 = tf.Variable(tf.zeros((4,)))

def pretrain_step(x, target):
    with tf.GradientTape() as tape:
        hidden1 = tf.nn.relu(x @ w1 + b1)
        predictions = hidden1 @ w2 + b2
        loss = tf.reduce_mean(tf.square(target - hidden1))
    grads = tape.gradient(loss, [w1, b1])
    for g, v in zip(grads, [w1, b1]):
        v.assign_sub(0.01 * g)
    return loss, predictions
""",
    ]

    INVALID = [
        # a loss term computed in the tape and left out of the total it differentiates
        Invalid(
            """
            import tensorflow as tf

            def train_step(x):
                with tf.GradientTape() as tape:
                    h = encoder(x)
                    reconstruction_loss = mse(x, decoder(h))
                    total_loss = kl(h)
                return tape.gradient(total_loss, model.trainable_weights)
            """,
            """
            import tensorflow as tf

            def train_step(x):
                with tf.GradientTape() as tape:
                    h = encoder(x)
                    reconstruction_loss = mse(x, decoder(h))
                    total_loss = kl(h) + reconstruction_loss
                return tape.gradient(total_loss, model.trainable_weights)
            """,
            Applicability.UNSAFE,
        ),
        # the seed's Example 1
        Invalid(
            """
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Dense(64, activation='relu', input_shape=(10,)),
                tf.keras.layers.Dense(10, activation='softmax')
            ])

            def incorrect_loss(y_true, y_pred):
                # INCORRECT: Only considers the first layer's output
                intermediate_output = model.layers[0](y_true) #Accessing the layer with its index
                return tf.reduce_mean(tf.abs(intermediate_output)) # L1 loss without considering the final prediction

            optimizer = tf.keras.optimizers.Adam()

            with tf.GradientTape() as tape:
                predictions = model(tf.random.normal((100,10)))
                loss = incorrect_loss(tf.random.normal((100,10)), predictions)
            gradients = tape.gradient(loss, model.trainable_variables)
            """,
            """
            import tensorflow as tf

            model = tf.keras.Sequential([
                tf.keras.layers.Dense(64, activation='relu', input_shape=(10,)),
                tf.keras.layers.Dense(10, activation='softmax')
            ])

            def incorrect_loss(y_true, y_pred):
                return tf.reduce_mean(tf.abs(y_pred)) # L1 loss without considering the final prediction

            optimizer = tf.keras.optimizers.Adam()

            with tf.GradientTape() as tape:
                predictions = model(tf.random.normal((100,10)))
                loss = incorrect_loss(tf.random.normal((100,10)), predictions)
            gradients = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        # passed to compile, the layer call inline
        Invalid(
            """
            from tensorflow import keras

            model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])

            def reconstruction_loss(y_true, y_pred):
                return keras.ops.mean(keras.ops.square(y_true - model.get_layer(index=0)(y_true)))

            model.compile(optimizer="adam", loss=reconstruction_loss)
            """,
            """
            from tensorflow import keras

            model = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])

            def reconstruction_loss(y_true, y_pred):
                return keras.ops.mean(keras.ops.square(y_true - y_pred))

            model.compile(optimizer="adam", loss=reconstruction_loss)
            """,
        ),
        # a training step whose loss uses the first layer's output
        Invalid(
            """
            import tensorflow as tf

            def train_step(model, optimizer, x, y):
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                    hidden = model.layers[0](x)
                    loss = tf.reduce_mean(tf.square(hidden - y))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
            """
            import tensorflow as tf

            def train_step(model, optimizer, x, y):
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                    loss = tf.reduce_mean(tf.square(logits - y))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
        ),
        # the loss reads the features the prediction was made from
        Invalid(
            """
            import tensorflow as tf

            def train_step(encoder, classifier, optimizer, x, y):
                with tf.GradientTape() as tape:
                    features = encoder(x, training=True)
                    logits = classifier(features, training=True)
                    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, features, from_logits=True))
                variables = encoder.trainable_variables + classifier.trainable_variables
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(zip(grads, variables))
            """,
            """
            import tensorflow as tf

            def train_step(encoder, classifier, optimizer, x, y):
                with tf.GradientTape() as tape:
                    features = encoder(x, training=True)
                    logits = classifier(features, training=True)
                    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
                variables = encoder.trainable_variables + classifier.trainable_variables
                grads = tape.gradient(loss, variables)
                optimizer.apply_gradients(zip(grads, variables))
            """,
        ),
        # two layer calls in the loss: which one was meant cannot be told, so no fix
        Invalid(
            """
            from tensorflow import keras

            model = keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(8), keras.layers.Dense(1)])

            def loss(y_true, y_pred):
                a = model.layers[0](y_true)
                b = model.layers[1](a)
                return keras.ops.mean(keras.ops.abs(b))

            model.compile(optimizer="sgd", loss=loss)
            """,
            None,
        ),
        # Variant: the loss made by a factory (`make_loss()`).
        Invalid(
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

def make_loss():
    def loss(y_true, y_pred):
        hidden = model.layers[0](y_true)
        return tf.reduce_mean(tf.abs(hidden))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_pred))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""",
        ),
        # Variant: a `keras.losses.Loss` subclass.
        Invalid(
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

class HiddenLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        hidden = model.layers[0](y_true)
        return tf.reduce_mean(tf.abs(hidden))

model.compile(optimizer="adam", loss=HiddenLoss())
""",
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

class HiddenLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_pred))

model.compile(optimizer="adam", loss=HiddenLoss())
""",
        ),
        # a hidden layer's output written into the loss itself
        Invalid(
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)

def train_step(x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = tf.reduce_mean(tf.square(y - model.layers[0](x)))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
""",
            """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)

def train_step(x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = tf.reduce_mean(tf.square(y - predictions))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
""",
        ),
        # raw variables: the loss reads the hidden activation, so `w2` and `b2` get no gradient
        Invalid(
            """
import tensorflow as tf

w1 = tf.Variable(tf.random.normal((4, 8)))
b1 = tf.Variable(tf.zeros((8,)))
w2 = tf.Variable(tf.random.normal((8, 1)))
b2 = tf.Variable(tf.zeros((1,)))

def train_step(x, y):
    with tf.GradientTape() as tape:
        hidden1 = tf.nn.relu(x @ w1 + b1)
        predictions = hidden1 @ w2 + b2
        loss = tf.reduce_mean(tf.square(y - hidden1))
    grads = tape.gradient(loss, [w1, b1, w2, b2])
    for g, v in zip(grads, [w1, b1, w2, b2]):
        v.assign_sub(0.01 * g)
    return loss
""",
            """
import tensorflow as tf

w1 = tf.Variable(tf.random.normal((4, 8)))
b1 = tf.Variable(tf.zeros((8,)))
w2 = tf.Variable(tf.random.normal((8, 1)))
b2 = tf.Variable(tf.zeros((1,)))

def train_step(x, y):
    with tf.GradientTape() as tape:
        hidden1 = tf.nn.relu(x @ w1 + b1)
        predictions = hidden1 @ w2 + b2
        loss = tf.reduce_mean(tf.square(y - predictions))
    grads = tape.gradient(loss, [w1, b1, w2, b2])
    for g, v in zip(grads, [w1, b1, w2, b2]):
        v.assign_sub(0.01 * g)
    return loss
""",
        ),
        # a lambda given to compile that runs a layer on the labels instead of reading the prediction
        Invalid(
            """
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])
            model.compile(optimizer="adam", loss=lambda y_true, y_pred: tf.reduce_mean(tf.abs(model.layers[0](y_true))))
            """,
            """
            import tensorflow as tf

            model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])
            model.compile(optimizer="adam", loss=lambda y_true, y_pred: tf.reduce_mean(tf.abs(y_pred)))
            """,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        yield from self._check_loss_functions(analysis)
        for call in analysis.gradient_calls:
            report = self._check_training_step(analysis, call)
            if report is not None:
                yield report
        yield from self._unused_loss_terms(analysis)

    # --- (c) a loss term computed in the tape and never added to the total -----------------------
    def _unused_loss_terms(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        operator, context = AddUnusedLossTerm(), Context.of_analysis(analysis)
        for call in analysis.gradient_calls:
            if call.tape is None:
                continue
            for statement in walk(call.tape.node, cst.SimpleStatementLine):
                rewrite = next(operator.rewrite(statement, context), None)
                if rewrite is None:
                    continue
                found = unread(statement, context)
                assert found is not None, "the operator rewrites only an unread `name = value` line"
                term = found.name
                read = "only logged after it" if found.logged else "read by nothing after it"
                (total,) = rewrite.replacements
                yield Report(
                    node=statement,
                    message=f"The loss term `{brief(term, 32)}` is computed and never added",
                    detail=(
                        f"`{term}` is computed in the tape, named like a loss, and {read}: the "
                        f"value differentiated (`{brief(analysis.code(total).strip(), 48)}`) leaves it out, so "
                        "the variables only it depends on get no gradient. Add it to the total, or remove it."
                    ),
                    related=[(total, "the total, which leaves it out"), (call.node, "the gradient")],
                    replacements=rewrite.replacements,
                    fix_description=rewrite.description,
                    applicability_reason=rewrite.reason,
                )

    # --- (a) a Keras loss that never reads y_pred ------------------------------------------------
    def _check_loss_functions(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        uses = _loss_uses(analysis)
        constructed = _network_names(analysis)
        checked: set[int] = set()
        for function in analysis.functions:
            if function.name.value not in uses or analysis.enclosing_class(function) is not None:
                continue
            params = [p for p in function.params.params]
            if len(params) < 2 or params[0].star or params[1].star:
                continue
            checked.add(id(function))
            report = self._loss_function(analysis, function, params[0].name.value, params[1].name.value, uses[function.name.value], constructed)
            if report is not None:
                yield report
        # the losses compile gets in other shapes (what a factory returns, a Loss subclass's call): any compiled model may be the one
        compiled = [
            (call, dotted(call.func.value)) for call in analysis.calls()
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == "compile"
        ]
        for loss_function, y_pred in keras_loss_functions(analysis):
            if id(loss_function) in checked or not compiled:
                continue
            names = [p.name.value for p in loss_function.params.params]
            y_true = names[names.index(y_pred) - 1]
            report = self._loss_function(analysis, loss_function, y_true, y_pred, compiled, constructed)
            if report is not None:
                yield report

    def _loss_function(self, analysis, function: cst.FunctionDef | cst.Lambda, y_true: str, y_pred: str, sites, constructed) -> Report | None:
        if isinstance(function, cst.Lambda):
            if y_pred in names_read(function.body):
                return None
        elif any(y_pred in s.read or y_pred in s.assigned for s in analysis.statements(function)):
            return None
        full_models = {model for _, model in sites if model}
        partial = [
            call for call in analysis.calls(function.body)
            if _is_partial_network_call(call, full_models, constructed)
        ]
        if not partial:
            return None
        klass = analysis.enclosing_class(function)
        if isinstance(function, cst.Lambda):
            loss = f"lambda {y_true}, {y_pred}: ..."
        else:
            label = f"{klass.name.value}.{function.name.value}" if klass is not None else function.name.value
            loss = f"{label}({y_true}, {y_pred})"
        layer = analysis.code(partial[0].func)
        message = f"The loss runs `{brief(layer, 24)}` itself instead of reading `{brief(y_pred, 16)}`"
        detail = (
            f"The loss `{loss}` never reads the prediction `{y_pred}`; it runs `{layer}` on the input itself "
            "instead, so the model's layers after that one get no gradient. Compute the loss from the prediction."
        )
        related = [(site, "used as the loss here") for site, _ in sites]
        replacements = _use_prediction_in_loss(analysis, function, partial, y_pred) if len(partial) == 1 else None
        return Report(
            node=partial[0],
            message=message,
            detail=detail,
            related=related,
            replacements=replacements,
            fix_description=f"Use the prediction `{y_pred}` in the loss, not `{layer}`",
        )

    # --- (b) a training step whose loss uses an intermediate output ------------------------------
    def _check_training_step(self, analysis: ModuleAnalysis, call: GradientCall) -> Report | None:
        tape = call.tape
        if tape is None or not isinstance(call.target, cst.Name):
            return None
        sources = resolve_sources(analysis, call.sources, call.scope) or ()
        models = [o for o in sources if not o.is_variable]
        variables = [o for o in sources if o.is_variable]
        if not sources:
            return None
        opened = tapeflow.tape_statement(analysis, tape)
        if opened is None:
            return None
        closed = tapeflow.last_index_inside(analysis, tape)
        flow = analysis.backward_slice(call.target, call.scope)
        flow_reads = set(names_read(call.target)).union(*(s.read for s in flow)) if flow else set()
        statements = analysis.statements(call.scope)
        recorded = statements[opened.index + 1: closed + 1]
        reached = set().union(*(tapeflow.references(analysis, s, variables) for s in flow)) if variables else set()

        where = "in the tape"
        findings = _unused_predictions(analysis, call.scope, recorded, flow, flow_reads, models, variables, reached, opened.index, closed)
        if not findings:
            # the loss made by a function of the module that the tape calls, which makes the prediction itself
            for helper in _helpers_on_path(analysis, call, flow, opened.index, closed, sources):
                helper_flow, helper_reads = _return_flow(analysis, helper)
                helper_reached = set().union(*(tapeflow.references(analysis, s, variables) for s in helper_flow)) if variables else set()
                helper_statements = analysis.statements(helper)
                findings = _unused_predictions(analysis, helper, helper_statements, helper_flow, helper_reads, models, variables,
                                               helper_reached, -1, len(helper_statements))
                if findings:
                    statements, where = helper_statements, f"in `{helper.name.value}` (which the tape calls)"
                    break
        if not findings:
            return None
        statement, prediction, intermediate, loss_statements, unreached = findings[0]
        first = loss_statements[0]
        if unreached:
            starved = ", ".join(f"`{o.name}`" for o in unreached) + (" gets" if len(unreached) == 1 else " get")
        else:
            starved = f"the layers that make `{prediction}` get"
        message = f"The loss reads `{brief(intermediate.value, 24)}`, not the final prediction `{brief(prediction, 20)}`"
        detail = (
            f"The loss is computed from `{intermediate.value}` ({intermediate.kind}), while the final prediction "
            f"`{prediction}` is computed {where} but not used by the loss: {starved} no gradient from "
            f"`{analysis.code(call.node)}`. Compute the loss from `{prediction}`."
        )
        replacements: dict[cst.CSTNode, Replacement] | None = None
        if len(findings) == 1 and all(s.index > statement.index and isinstance(s.node, cst.SimpleStatementLine) for s in loss_statements):
            if intermediate.inline is not None:
                replacements = {intermediate.inline: cst.Name(prediction)}
            else:
                replacements = _use_prediction(analysis, statement, intermediate.value)
        if replacements is not None:
            if intermediate.removable:
                others = [
                    s for s in statements
                    if intermediate.value in s.read and s not in loss_statements and s is not intermediate.definition
                ]
                if not others:
                    replacements[intermediate.definition.node] = cst.RemoveFromParent()
        return Report(
            node=intermediate.inline if intermediate.inline is not None else first.node,
            message=message,
            detail=detail,
            related=[(statement.node, "the final prediction, which the loss does not use"), (call.node, "the gradient")],
            replacements=replacements,
            fix_description=f"Compute the loss from the final prediction `{prediction}`",
        )


def _unused_predictions(analysis, scope, recorded, flow, flow_reads, models, variables, reached, opened: int, closed: int):
    """Predictions made in ``recorded`` that the loss (``flow``, what it is computed from) does not read, each with
    the intermediate it reads instead and the statements where it does."""
    findings: list = []
    for statement, names, value in ((s, names, value) for s in recorded for names, value in bound_values(s.node)):
        if flow_reads.intersection(names):
            continue
        prediction = ", ".join(names)
        source = _model_called(analysis, value, models)
        if source is not None:
            unreached: list[Source] = []
            intermediates = _intermediates(analysis, statement, value, source, flow, opened, closed)
        elif lone_assignment(statement.node) is not None:
            unreached, intermediates = _variable_prediction(analysis, statement, recorded, variables, reached, flow, scope)
        else:
            continue
        for intermediate in intermediates:
            if intermediate.inline is not None:
                loss_statements = [] if _feeds(analysis, intermediate.definition, statement, scope) else [intermediate.definition]
            else:
                loss_statements = [
                    s for s in flow
                    if intermediate.value in s.read and s is not intermediate.definition
                    and not _feeds(analysis, s, statement, scope)
                ]
            if loss_statements:
                findings.append((statement, prediction, intermediate, loss_statements, unreached))
    return findings


def _helpers_on_path(analysis: ModuleAnalysis, call: GradientCall, flow, opened: int, closed: int, sources) -> Iterator[cst.FunctionDef]:
    """The functions and methods of the module that the tape's statements on the way to the target call, reading the
    sources under the same names (``model`` of the module, ``self.model``): neither parameters nor bound by them."""
    heads = {source.name.split(".")[0] for source in sources}
    seen: set[int] = set()
    for statement in flow:
        if not opened < statement.index <= closed:
            continue
        for inner in analysis.calls(tapeflow.statement_code(statement.node)):
            callee = analysis.callee(inner)
            if callee is None or callee[0] is call.scope or id(callee[0]) in seen:
                continue
            function, bound = callee
            seen.add(id(function))
            params = [p.name.value for p in function.params.params][bound:]
            if heads & set(params) or any(heads & s.assigned for s in analysis.statements(function)):
                continue
            if "self" in heads and not bound:
                continue  # `self` there is another object, or none
            yield function


def _return_flow(analysis: ModuleAnalysis, function: cst.FunctionDef) -> tuple[list[Statement], set[str]]:
    """The statements a function's return values are computed in (the returns too), and the names they read."""
    found: dict[int, Statement] = {}
    reads: set[str] = set()
    for returned in analysis.walk(function.body, cst.Return):
        value = returned.value
        at = analysis.statement_index(returned)
        if value is None or at is None or analysis.scope_of(returned) is not function:
            continue
        found[at.index] = at
        reads |= names_read(value)
        for statement in analysis.backward_slice(value, function):
            found[statement.index] = statement
            reads |= statement.read
    return [found[i] for i in sorted(found)], reads


def bound_values(statement: cst.CSTNode) -> list[tuple[tuple[str, ...], cst.BaseExpression]]:
    """What a line of its own binds to bare names, as (names, value): ``a = f(x)``; ``a, b = f(x), g(y)`` pair by
    pair; ``a, b, c = f(x)``: the names of one value's parts together."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return []
    small = statement.body[0]
    if not isinstance(small, cst.Assign) or len(small.targets) != 1:
        return []
    target, value = small.targets[0].target, small.value
    if isinstance(target, cst.Name):
        return [((target.value,), value)]
    if not isinstance(target, (cst.Tuple, cst.List)) or not all(
            isinstance(e, cst.Element) and isinstance(e.value, cst.Name) for e in target.elements):
        return []
    names = tuple(cst.ensure_type(e.value, cst.Name).value for e in target.elements)
    if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(names) and all(
            isinstance(e, cst.Element) for e in value.elements):
        return [((name,), element.value) for name, element in zip(names, value.elements)]
    return [(names, value)]


def _model_called(analysis: ModuleAnalysis, value: cst.BaseExpression, models: list[Source]) -> Source | None:
    """The model whose call ``value`` is: one of the sources (``model(x)``, ``self.call(x)``), or a model or
    layer one of them holds and is differentiated with (``self.predictor(z)`` of ``self.trainable_variables``:
    an attribute called on an argument, not a method of the module's classes, not named as a loss or metric)."""
    if not isinstance(value, cst.Call):
        return None
    func = dotted(value.func)
    if func is None:
        return None
    source = next((o for o in models if func in {o.name, o.name + ".call"}), None)
    if source is not None or not value.args:
        return source
    owner, _, attribute = func.rpartition(".")
    if (not any(o.name == owner for o in models) or attribute in NOT_FORWARD or own_method(analysis, attribute)
            or any(word in attribute.lower() for word in NOT_FORWARD_WORDS)):
        return None
    return Source(func, False)


def _use_prediction(analysis, statement: Statement, intermediate: str):
    """The use-prediction operator's rewrite of the loss statements that read ``intermediate``, as the runtime
    repair makes it."""
    context = Context.of_analysis(analysis)
    for rewrite in UsePrediction().rewrite(statement.node, context):
        if rewrite.description.endswith(f"instead of `{intermediate}`"):
            return dict(rewrite.replacements)
    return None


class _Intermediate:
    def __init__(self, value: str, definition: Statement, kind: str, removable: bool, inline: cst.Call | None = None):
        self.value = value
        self.definition = definition
        self.kind = kind
        self.removable = removable
        self.inline = inline  # a layer call written into the loss itself rather than bound to a name


def _is_layer_of(func: cst.BaseExpression, source) -> bool:
    return (
        (isinstance(func, cst.Subscript) and dotted(func.value) == source.name + ".layers")
        or (isinstance(func, cst.Call) and dotted(func.func) == source.name + ".get_layer")
    )


def _intermediates(analysis, prediction_statement, prediction_call, source, flow, opened, closed):
    """Outputs on the way to the prediction, or of one of the model's own layers, that the loss uses instead."""
    found = []
    for statement in flow:
        if not opened < statement.index <= closed:
            continue
        bound = bound_values(statement.node)
        values = [value for _, value in bound]
        for layer_call in analysis.calls(tapeflow.statement_code(statement.node)):
            if all(layer_call is not value for value in values) and _is_layer_of(layer_call.func, source):
                found.append(_Intermediate(
                    analysis.code(layer_call), statement, f"the output of `{analysis.code(layer_call.func)}`", False, layer_call,
                ))
        lone = lone_assignment(statement.node) is not None
        for names, value in bound:
            if not isinstance(value, cst.Call):
                continue
            if _is_layer_of(value.func, source):
                found += [_Intermediate(name, statement, f"the output of `{analysis.code(value.func)}`", lone) for name in names]
            elif statement.index < prediction_statement.index:
                found += [_Intermediate(name, statement, f"the input of `{analysis.code(prediction_call.func)}`", False)
                          for name in names if name in names_read(prediction_call)]
    return found


def _variable_prediction(analysis, statement: Statement, recorded: list[Statement], variables, reached, flow, scope):
    """For a prediction made from the sources themselves (``pred = h @ w2 + b2``): the variables only it
    reads, and the values on the way to it that the loss uses instead.

    Only the last value of such a chain counts as the prediction: one that other statements the tape records go on
    to read (``h2`` in ``pred = h2 @ w3``) is a step on the way.
    """
    if not variables or any(statement.assigned & later.read for later in recorded if later.index > statement.index):
        return [], []
    upstream = [s for s in analysis.backward_slice(statement.node, scope) if s in recorded]
    used = set().union(*(tapeflow.references(analysis, s, variables) for s in [*upstream, statement]))
    unreached = [o for o in variables if o in used and o not in reached]
    if not unreached:
        return [], []
    assigned = lone_assignment(statement.node)
    assert assigned is not None, "called for `name = value` lines"
    prediction = assigned[0]
    flow_indices = {s.index for s in flow}
    found = []
    for step in upstream:
        assigned = lone_assignment(step.node)
        if assigned is not None and step.index in flow_indices:
            found.append(_Intermediate(assigned[0], step, f"computed on the way to `{prediction}`", False))
    return unreached, found


def _feeds(analysis, statement: Statement, prediction_statement: Statement, scope) -> bool:
    """Whether ``statement`` lies on the way to the prediction itself."""
    if statement.index >= prediction_statement.index:
        return False
    return statement.index in {s.index for s in analysis.backward_slice(prediction_statement.node, scope)}


def _loss_uses(analysis: ModuleAnalysis) -> dict[str, list[tuple[cst.CSTNode, str | None]]]:
    """Functions used as a loss: name -> [(where, the model whose prediction it gets, if known)]."""
    uses: dict[str, list[tuple[cst.CSTNode, str | None]]] = {}
    for call in analysis.calls():
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "compile":
            model = dotted(func.value)
            loss = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "loss"), None)
            positional = [a for a in call.args if a.keyword is None]
            if loss is None and len(positional) > 1:
                loss = positional[1].value
            for name in _names_in(loss):
                uses.setdefault(name, []).append((call, model))
        elif isinstance(func, cst.Name) and analysis.tape_around(call) is not None:
            positional = [a for a in call.args if a.keyword is None]
            if len(positional) < 2:
                continue
            model = _model_of_prediction(analysis, call, positional[1].value)
            if model is not None:
                uses.setdefault(func.value, []).append((call, model))
    return uses


def _names_in(expression: cst.BaseExpression | None) -> list[str]:
    if isinstance(expression, cst.Name):
        return [expression.value]
    if isinstance(expression, (cst.List, cst.Tuple)):
        return [n for e in expression.elements for n in _names_in(e.value)]
    if isinstance(expression, cst.Dict):
        return [n for e in expression.elements if isinstance(e, cst.DictElement) for n in _names_in(e.value)]
    return []


def _model_of_prediction(analysis: ModuleAnalysis, call: cst.Call, prediction: cst.BaseExpression) -> str | None:
    """``model`` when the argument is ``model(x)`` or a name assigned from it in the same tape."""
    if isinstance(prediction, cst.Call):
        return dotted(prediction.func)
    if not isinstance(prediction, cst.Name):
        return None
    at = analysis.statement_index(call)
    if at is None:
        return None
    definitions = analysis.reaching_definitions(prediction.value, at, analysis.scope_of(call))
    if len(definitions) != 1:
        return None
    assigned = lone_assignment(definitions[0].node)
    if assigned is None or not isinstance(assigned[1], cst.Call):
        return None
    return dotted(assigned[1].func)


def _network_names(analysis: ModuleAnalysis) -> set[str]:
    """Module-level names bound to a Keras layer or model."""
    keras_classes = {
        c.name.value for c in analysis.module.body if isinstance(c, cst.ClassDef)
        and any((analysis.qualname(b.value) or "").startswith("keras.") for b in c.bases)
    }
    names = set()
    for statement in analysis.module.body:
        assigned = lone_assignment(statement)
        if assigned is None or not isinstance(assigned[1], cst.Call):
            continue
        qualname = analysis.qualname(assigned[1].func) or ""
        if qualname.startswith("keras.layers.") or qualname in KERAS_MODELS or dotted(assigned[1].func) in keras_classes:
            names.add(assigned[0])
    return names


def _is_partial_network_call(call: cst.Call, full_models: set[str], constructed: set[str]) -> bool:
    func = call.func
    if isinstance(func, cst.Subscript):
        return (dotted(func.value) or "").endswith(".layers")
    if isinstance(func, cst.Call) and isinstance(func.func, cst.Attribute):
        return func.func.attr.value == "get_layer"
    if isinstance(func, cst.Name):
        return func.value in constructed and func.value not in full_models
    return False


def _use_prediction_in_loss(analysis: ModuleAnalysis, function: cst.FunctionDef | cst.Lambda, partial: list[cst.Call], y_pred: str):
    call = partial[0]
    if isinstance(function, cst.Lambda):
        return {call: cst.Name(y_pred)}
    line = analysis.statement_of(call)
    assigned = lone_assignment(line)
    statements = analysis.statements(function)
    if assigned is not None and assigned[1] is call and analysis.parent(line) is function.body:
        name = assigned[0]
        if sum(name in s.assigned for s in statements) != 1:
            return None
        replacements: dict = {line: cst.RemoveFromParent()}
        for statement in function.body.body:
            if statement is not line and name in names_read(statement):
                replacements[statement] = tapeflow.rename_reads(statement, name, y_pred)
        return replacements
    return {call: cst.Name(y_pred)}
