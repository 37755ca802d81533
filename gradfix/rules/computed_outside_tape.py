from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix import categories
from gradfix.messages import call_brief
from gradfix.model import Applicability
from gradfix.rule import Invalid, Replacement, Report, Rule
from gradfix.static import tapeflow
from gradfix.static.analysis import GradientCall, ModuleAnalysis, Statement, TapeBlock, lone_assignment, names_read
from gradfix.static.api import LAYER_BASES, VARIABLE_MAKERS
from gradfix.static.names import dotted
from gradfix.static.sources import Source, resolve_sources
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context, Rewrite
from gradfix.transforms.move_into_tape import hoist_target, move_statements


class ComputedOutsideTape(Rule):
    """
    Finds a forward pass or a loss computed outside the `tf.GradientTape` block whose tape is
    asked for the gradient: the model is called before `with tf.GradientTape() as tape:`, so the
    tape records only part of the computation (or nothing at all), or the loss is computed after
    the block has closed. It looks in plain functions, scripts and the methods of a subclassed
    `keras.Model` (`train_step`), follows the forward pass into the module's helper functions and
    methods (and a gradient asked through a helper that takes the tape), and counts what runs under
    `with tape.stop_recording():` as outside the tape. A target written as an operation in the
    gradient call's own arguments (`tape.gradient(-loss, ...)`, `tape.gradient(f(x), x)`) after the
    block has closed is computed outside the tape too, and so are forward passes collected in a list
    before the block (`values.append(model(state))`) and read from it inside. In a Keras layer, a
    tensor computed from its weights in `build` (`self.kernel = tf.concat(parts, -1)`) and read in
    `call` is computed once, outside every tape.

    ## Why gradients vanish

    A `GradientTape` records only the operations that run while its `with` block is open.
    `tape.gradient(loss, variables)` walks that record back from `loss`; an operation that ran
    before the block opened, or after it closed, is not on it, so the path from the variables to
    the loss is cut there and every variable on the far side gets `None`
    (`ValueError: No gradients provided for any variable`).

    ## Example

    ```python
    predictions = model(x, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    ## Fix

    ```python
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    ```

    The statements on the way from the variables to the gradient's target that call the model
    (or read the variables), and those that depend on them, move into the block: those before it
    to its start, those after it (the loss computed after the tape closed) to its end.
    Statements that do not touch the variables (loading data, preparing labels, constants) stay
    where they are.

    A target computed in the gradient call's arguments is computed at the end of the tape's block
    instead, under a new name the gradient call then reads:

    ```python
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(critic(generator(noise)))
        negative_score = -score
    grads = tape.gradient(negative_score, generator.trainable_variables)
    ```

    ## Fix safety

    The moved statements compute the same values as before; only the tape now records them.
    That holds where they keep their order with every statement they share a name with: none
    they move past reads what they compute or writes what they read or compute, the `with`
    line does not read what they compute, and a `tape.watch(h)` of a value they compute goes
    after them (the watches of inputs stay first, before the forward pass that reads them).
    Taking the forward pass out of a `with tape.stop_recording():` block that holds nothing
    else changes nothing but what the tape records. The fix is **safe** when, besides, every
    moved statement is a plain `name = value` assignment, no statement it moves past has a
    visible effect (an expression statement such as `print(...)` or a metric update, or a
    compound statement), and the moved results are read only on the way to the gradient. Otherwise it is **unsafe**: the order of visible effects changes, or a value
    someone relies on elsewhere is now computed under the tape (and kept in its memory), which a
    reviewer should look at. No fix is offered when the statements cannot be moved without
    changing what they compute (a statement in between reassigns a name they read, they sit in a
    different block such as outside the training loop, or they are compound statements).
    Computing a target from the gradient call's arguments at the end of the block (move-into-tape's
    fix) is **safe** when it is arithmetic on names no statement in between mentions: it computes
    the same value a few lines earlier. It is **unsafe** when it calls anything (a model, a function
    of the module, TensorFlow: a call may do more than compute, or depend on when it runs, as a
    random draw does) or a statement in between mentions what it reads; no fix is offered when a
    statement in between rebinds a name it reads, or the gradient call sits in a loop or branch
    that does not hold the tape's block. A tensor computed from a
    layer's weights in `build` gets no automatic fix: moving it into `call` changes what `call`
    computes on each step, which its author should write.

    ## When not to fix

    - A forward pass computed before the tape on purpose, as a constant: a target network's
      output in Q-learning, a teacher's output in distillation, or the same model's output for a
      TD target while the tape records its own call of the model. The rule reports only variables
      whose forward pass the tape records nowhere.
    - Data loading and label preprocessing before the tape.
    - A loss merely renamed after the tape (`total = loss`), which keeps the recorded tensor.
    - A target computed inside another tape's block: that is GF012 (wrong tape).
    """

    code = "GF001"
    name = "computed-outside-tape"
    summary = "Forward pass or loss computed outside the GradientTape block"
    applicability = Applicability.SAFE
    categories = (categories.OUTSIDE_TAPE,)
    # a tape's gradient, or a layer's weights combined once where it is built
    needles = ("GradientTape", "add_weight", "add_variable")

    VALID = [
        # the whole step inside the tape
        """
        import tensorflow as tf

        def train_step(model, optimizer, loss_fn, x, y):
            with tf.GradientTape() as tape:
                predictions = model(x, training=True)
                loss = loss_fn(y, predictions)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
        # label preprocessing and constants before the tape do not depend on the variables
        """
        import tensorflow as tf

        def train_step(model, optimizer, x, y):
            y_onehot = tf.one_hot(y, depth=10)
            scale = tf.constant(0.5)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = scale * tf.reduce_mean(tf.keras.losses.categorical_crossentropy(y_onehot, logits, from_logits=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
        # a target network's output is a constant on purpose
        """
        import tensorflow as tf

        def dqn_step(q_net, target_net, optimizer, states, actions, rewards, next_states, gamma=0.99):
            next_q = target_net(next_states)
            targets = rewards + gamma * tf.reduce_max(next_q, axis=1)
            with tf.GradientTape() as tape:
                q = tf.reduce_sum(q_net(states) * tf.one_hot(actions, 4), axis=1)
                loss = tf.reduce_mean(tf.square(targets - q))
            grads = tape.gradient(loss, q_net.trainable_variables)
            optimizer.apply_gradients(zip(grads, q_net.trainable_variables))
        """,
        # the same model gives the TD target outside the tape, and is called again inside it
        """
        import tensorflow as tf

        def dqn_step(model, optimizer, states, rewards, next_states):
            targets = rewards + 0.9 * tf.reduce_max(model(next_states), axis=1)
            with tf.GradientTape() as tape:
                q = tf.reduce_max(model(states), axis=1)
                loss = tf.reduce_mean(tf.square(targets - q))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
        # a loss renamed after the tape is still the recorded tensor
        """
        import tensorflow as tf

        def step(model, x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x) - y))
            total = loss
            return tape.gradient(total, model.trainable_variables)
        """,
        # the seed's Example 2 (it trains: the loss is computed inside the tape)
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
        # a GAN whose generator output is made under both tapes
        """
        import tensorflow as tf

        def train_step(generator, discriminator, g_opt, d_opt, images, noise):
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                fake = generator(noise, training=True)
                real_out = discriminator(images, training=True)
                fake_out = discriminator(fake, training=True)
                gen_loss = -tf.reduce_mean(fake_out)
                disc_loss = tf.reduce_mean(fake_out) - tf.reduce_mean(real_out)
            g_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, generator.trainable_variables), generator.trainable_variables))
            d_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables), discriminator.trainable_variables))
        """,
        # Look-alike: the forward pass in a helper called inside the tape.
        """
import tensorflow as tf

def forward(model, x):
    return model(x, training=True)

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = forward(model, x)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Look-alike: only a metric runs under `tape.stop_recording()`.
        """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
        with tape.stop_recording():
            accuracy = tf.reduce_mean(tf.cast(tf.equal(y, tf.argmax(predictions, -1)), tf.float32))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Look-alike: a target network's output computed before the tape, in a method.
        """
import tensorflow as tf

class Agent:
    def train_step(self, s, a, r, s2):
        target = r + 0.99 * tf.reduce_max(self.target_model(s2), axis=1)
        with tf.GradientTape() as tape:
            q = tf.reduce_sum(self.model(s) * tf.one_hot(a, 4), axis=1)
            loss = tf.reduce_mean(tf.square(target - q))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""",
        # Look-alike: a script's helper, defined before the tape, reads the variable and is called inside it.
        """
import tensorflow as tf

w = tf.Variable(2.0)

def energy(x):
    return tf.square(w * x)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    loss = energy(x)
grad = tape.gradient(loss, w)
""",
        # Look-alike: a script's helper, defined before the tapes, runs both models and is called inside them.
        """
import tensorflow as tf

enc = tf.keras.Sequential([tf.keras.layers.Dense(2)])
disc = tf.keras.Sequential([tf.keras.layers.Dense(1)])

def compute_losses(x):
    z = enc(x)
    return tf.reduce_mean(disc(tf.random.normal(tf.shape(z)))) - tf.reduce_mean(disc(z)), tf.reduce_mean(disc(z))

x = tf.random.normal((4, 3))
with tf.GradientTape() as enc_tape, tf.GradientTape() as disc_tape:
    latent_loss, enc_loss = compute_losses(x)
enc_grads = enc_tape.gradient(enc_loss, enc.trainable_variables)
disc_grads = disc_tape.gradient(latent_loss, disc.trainable_variables)
""",
        # Look-alike: the negated loss is asked of the tape inside its block, where it is recorded.
        """
import tensorflow as tf

def ascent_step(model, optimizer, x):
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(model(x, training=True))
        grads = tape.gradient(-score, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Look-alike: the target picked from a dict by a helper, which computes nothing after the tape.
        """
import tensorflow as tf

def pick(outputs):
    return outputs["loss"]

def train_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:
        outputs = {"loss": tf.reduce_mean(tf.square(model(x) - y))}
    grads = tape.gradient(pick(outputs), model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Look-alike: the forward passes collected in a list inside the tape's block.
        """
import tensorflow as tf

def episode_step(model, optimizer, states, returns):
    with tf.GradientTape() as tape:
        values = []
        for state in states:
            values.append(model(state))
        loss = tf.add_n([tf.square(r - v) for r, v in zip(returns, values)])
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Look-alike: a target network's outputs collected before the tape, the model run inside it.
        """
import tensorflow as tf

def step(model, target_model, optimizer, states, next_states):
    targets = []
    for s2 in next_states:
        targets.append(target_model(s2))
    with tf.GradientTape() as tape:
        loss = tf.add_n([tf.reduce_sum(tf.square(t - model(s))) for t, s in zip(targets, states)])
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        # Look-alike: the weights made in `build` and concatenated in `call`, on every step.
        """
import tensorflow as tf

class ConcatDense(tf.keras.layers.Layer):
    def build(self, input_shape):
        self.parts = [self.add_weight(shape=(int(input_shape[-1]), 4)) for _ in range(2)]
        self.scale = tf.constant(0.5)

    def call(self, inputs):
        return self.scale * tf.matmul(inputs, tf.concat(self.parts, axis=-1))
""",
        # Look-alike: a value computed from the weights in `build` that `call` never reads.
        """
import tensorflow as tf

class Dense(tf.keras.layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(int(input_shape[-1]), 4))
        self.initial_norm = tf.norm(self.kernel)

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)
""",
        # Look-alike: a cast in the gradient call's arguments, to the dtype the loss has, hands it back as it is.
        """
import tensorflow as tf

def step(model, x):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x))
    return tape.gradient(tf.cast(loss, tf.float32), model.trainable_variables)
""",
    ]

    INVALID = [
        # forward pass before the tape
        Invalid(
            """
            import tensorflow as tf

            def train_step(model, optimizer, loss_fn, x, y):
                predictions = model(x, training=True)
                with tf.GradientTape() as tape:
                    loss = loss_fn(y, predictions)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
            """
            import tensorflow as tf

            def train_step(model, optimizer, loss_fn, x, y):
                with tf.GradientTape() as tape:
                    predictions = model(x, training=True)
                    loss = loss_fn(y, predictions)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
        ),
        # loss computed after the tape closed
        Invalid(
            """
            import tensorflow as tf

            def train_step(model, optimizer, x, y):
                y_onehot = tf.one_hot(y, depth=3)
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y_onehot, logits))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
            """
            import tensorflow as tf

            def train_step(model, optimizer, x, y):
                y_onehot = tf.one_hot(y, depth=3)
                with tf.GradientTape() as tape:
                    logits = model(x, training=True)
                    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y_onehot, logits))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
        ),
        # the tape recorded nothing: variables read before it, in a script
        Invalid(
            """
            import tensorflow as tf

            w = tf.Variable(tf.random.normal((3, 1)))
            b = tf.Variable(tf.zeros((1,)))
            x = tf.random.normal((8, 3))
            y = tf.random.normal((8, 1))
            pred = tf.matmul(x, w) + b
            loss = tf.reduce_mean(tf.square(pred - y))
            with tf.GradientTape() as tape:
                tape.watch([w, b])
            dw, db = tape.gradient(loss, [w, b])
            """,
            """
            import tensorflow as tf

            w = tf.Variable(tf.random.normal((3, 1)))
            b = tf.Variable(tf.zeros((1,)))
            x = tf.random.normal((8, 3))
            y = tf.random.normal((8, 1))
            with tf.GradientTape() as tape:
                tape.watch([w, b])
                pred = tf.matmul(x, w) + b
                loss = tf.reduce_mean(tf.square(pred - y))
            dw, db = tape.gradient(loss, [w, b])
            """,
        ),
        # a subclassed model's train_step
        Invalid(
            """
            import tensorflow as tf
            from tensorflow import keras

            class Classifier(keras.Model):
                def __init__(self):
                    super().__init__()
                    self.hidden = keras.layers.Dense(16, activation="relu")
                    self.out = keras.layers.Dense(3)

                def call(self, x):
                    return self.out(self.hidden(x))

                def train_step(self, data):
                    x, y = data
                    y_pred = self(x, training=True)
                    with tf.GradientTape() as tape:
                        loss = self.compute_loss(y=y, y_pred=y_pred)
                    grads = tape.gradient(loss, self.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                    return {"loss": loss}
            """,
            """
            import tensorflow as tf
            from tensorflow import keras

            class Classifier(keras.Model):
                def __init__(self):
                    super().__init__()
                    self.hidden = keras.layers.Dense(16, activation="relu")
                    self.out = keras.layers.Dense(3)

                def call(self, x):
                    return self.out(self.hidden(x))

                def train_step(self, data):
                    x, y = data
                    with tf.GradientTape() as tape:
                        y_pred = self(x, training=True)
                        loss = self.compute_loss(y=y, y_pred=y_pred)
                    grads = tape.gradient(loss, self.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                    return {"loss": loss}
            """,
        ),
        # the forward pass outside the training loop: reported, not moved
        Invalid(
            """
            import tensorflow as tf

            def fit(model, optimizer, x, y, steps=10):
                predictions = model(x)
                for _ in range(steps):
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_mean(tf.square(predictions - y))
                    grads = tape.gradient(loss, model.trainable_variables)
                    optimizer.apply_gradients(zip(grads, model.trainable_variables))
            """,
            None,
        ),
        # Variant: the forward pass in a helper function, called before the tape.
        Invalid(
            """
import tensorflow as tf

def forward(model, x):
    return model(x, training=True)

def train_step(model, optimizer, loss_fn, x, y):
    predictions = forward(model, x)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            """
import tensorflow as tf

def forward(model, x):
    return model(x, training=True)

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = forward(model, x)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        ),
        # Variant: the forward pass under `tape.stop_recording()`.
        Invalid(
            """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        with tape.stop_recording():
            predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        ),
        # Variant: the sources rebuilt as a list (`[v for v in ...]`).
        Invalid(
            """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    params = [v for v in model.trainable_variables]
    predictions = model(x, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, params)
    optimizer.apply_gradients(zip(grads, params))
""",
            """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    params = [v for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
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

def train_step(model, optimizer, loss_fn, x, y):
    predictions = model(x, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = grads_of(tape, loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
    grads = grads_of(tape, loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        ),
        # Variant: the forward pass run layer by layer in a loop over `model.layers`.
        Invalid(
            """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    h = x
    for layer in model.layers:
        h = layer(h)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, h)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            None,
        ),
        # Variant: a script's helper that reads the variable, called before the tape.
        Invalid(
            """
import tensorflow as tf

w = tf.Variable(2.0)

def energy(x):
    return tf.square(w * x)

x = tf.constant(3.0)
loss = energy(x)
with tf.GradientTape() as tape:
    scaled = 0.5 * loss
grad = tape.gradient(scaled, w)
""",
            """
import tensorflow as tf

w = tf.Variable(2.0)

def energy(x):
    return tf.square(w * x)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    loss = energy(x)
    scaled = 0.5 * loss
grad = tape.gradient(scaled, w)
""",
        ),
        # Variant: the target negated in the gradient call's own arguments, after the block.
        Invalid(
            """
import tensorflow as tf

def ascent_step(model, optimizer, x):
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(model(x, training=True))
    grads = tape.gradient(-score, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            """
import tensorflow as tf

def ascent_step(model, optimizer, x):
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(model(x, training=True))
        negative_score = -score
    grads = tape.gradient(negative_score, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
        ),
        # Variant: a random draw in the target: computed earlier, it may take another place in the seed's stream.
        Invalid(
            """
import tensorflow as tf

def ascent_step(model, optimizer, x):
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(model(x, training=True))
    grads = tape.gradient(-score + 0.01 * tf.random.normal([]), model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            """
import tensorflow as tf

def ascent_step(model, optimizer, x):
    with tf.GradientTape() as tape:
        score = tf.reduce_mean(model(x, training=True))
        gradient_target = -score + 0.01 * tf.random.normal([])
    grads = tape.gradient(gradient_target, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            applicability=Applicability.UNSAFE,
        ),
        # Variant: a function of the module called in the gradient call's arguments; the tape watched only `x`.
        Invalid(
            """
import tensorflow as tf

def f(x):
    return x ** 2

def grad(x):
    with tf.GradientTape() as t:
        t.watch(x)
    return t.gradient(f(x), x)
""",
            """
import tensorflow as tf

def f(x):
    return x ** 2

def grad(x):
    with tf.GradientTape() as t:
        t.watch(x)
        f_value = f(x)
    return t.gradient(f_value, x)
""",
        ),
        # Variant: the forward passes collected in a list before the tape, the loss summed from it inside.
        Invalid(
            """
import tensorflow as tf

def episode_step(model, optimizer, states, returns):
    values = []
    for state in states:
        values.append(model(state))
    with tf.GradientTape() as tape:
        loss = tf.add_n([tf.square(r - v) for r, v in zip(returns, values)])
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            None,
        ),
        # Variant: a layer's weights concatenated once in `build`, the result read in `call`.
        Invalid(
            """
import tensorflow as tf

class ConcatDense(tf.keras.layers.Layer):
    def build(self, input_shape):
        parts = [self.add_weight(shape=(int(input_shape[-1]), 4)) for _ in range(2)]
        self.kernel = tf.concat(parts, axis=-1)

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)
""",
            None,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for call in analysis.gradient_calls:
            report = self._check_call(analysis, call)
            if report is not None:
                yield report
        if "add_weight" in analysis.text or "add_variable" in analysis.text:
            yield from _weights_combined_in_build(analysis)

    def _check_call(self, analysis: ModuleAnalysis, call: GradientCall) -> Report | None:
        tape = call.tape
        if tape is None or call.target is None or analysis.is_inside(call.node, tape.node):
            return None
        opened = tapeflow.tape_statement(analysis, tape)
        if opened is None:
            return None
        closed = tapeflow.last_index_inside(analysis, tape)
        in_arguments = _target_computed_in_call(analysis, call, tape, opened, closed)
        if in_arguments is not None:
            return in_arguments
        sources = resolve_sources(analysis, call.sources, call.scope)
        if not sources:
            return None
        flow = _with_appends(analysis, analysis.backward_slice(call.target, call.scope), call)
        if any(_inside_another_tape(analysis, s, tape) for s in flow):
            return None  # GF012's business
        inside = [s for s in flow if opened.index < s.index <= closed]
        before = [s for s in flow if s.index < opened.index]
        after = [s for s in flow if s.index > closed]
        paused = [s for s in inside if tapeflow.paused_by(analysis, s.node, tape) is not None]
        inside = [s for s in inside if s not in paused]

        recorded: set[Source] = set()
        for statement in inside:
            recorded |= tapeflow.references(analysis, statement, sources)
            recorded |= tapeflow.passed_as_argument(statement, sources)
        missing = set(sources) - recorded
        unrecorded = _carrying(analysis, paused, missing) if missing else []
        if unrecorded:
            first = unrecorded[0]
            pause = tapeflow.paused_by(analysis, first.node, tape)
            assert pause is not None, "unrecorded statements are among the paused"
            replacements: dict[cst.CSTNode, Replacement] | None = None
            if len(pause.items) == 1 and isinstance(pause.body, cst.IndentedBlock) and all(
                any(s.node is statement for s in unrecorded) for statement in pause.body.body
            ):
                # the whole paused block is the forward pass: recording it is all the fix does
                replacements = {pause: cst.FlattenSentinel(list(pause.body.body))}
            return Report(
                node=first.node,
                message=f"`{call_brief(analysis.code(first.node))}` runs while the tape is paused",
                detail=(
                    f"`{analysis.code(first.node)}` runs under `{analysis.code(pause.items[0].item)}`, so the tape does not record it, "
                    f"and `{analysis.code(call.node)}` gets no gradient for "
                    f"{tapeflow.sources_label(tapeflow.references(analysis, first, missing) or missing)}. "
                    "Record the forward pass: take it out of the paused block."
                ),
                related=[(pause, "the tape stops recording here"), (call.node, "the gradient asked of it")],
                replacements=replacements,
                fix_description=f"Record the forward pass: take it out of `{analysis.code(pause.items[0].item)}`",
            )
        move_before = _carrying(analysis, before, missing) if missing else []
        move_after = after if _breaks_after(analysis, after, inside, move_before, sources) else []
        if not move_before and not move_after:
            return None

        with_code = analysis.code(tape.node).splitlines()[0]
        gradient_code = analysis.code(call.node)
        related = [(tape.node, "the tape records only what runs inside this block"), (call.node, "the gradient asked of it")]
        if move_before:
            first = move_before[0]
            used = tapeflow.references(analysis, first, missing) or missing
            names = [o for o in sources if o in used]
            message = f"`{call_brief(analysis.code(first.node))}` runs before the GradientTape block"
            detail = (
                f"`{analysis.code(first.node)}` runs before `{with_code}` opens, so the tape does not record it, "
                f"and `{gradient_code}` gets no gradient for {tapeflow.sources_label(names)}. "
                "Move the forward pass into the tape's block."
            )
            node = first.node
        else:
            last = move_after[-1]
            message = f"`{call_brief(analysis.code(last.node))}` runs after the GradientTape block"
            detail = (
                f"`{analysis.code(last.node)}` runs after the `{with_code}` block has closed, so the tape does not "
                f"record it, and `{gradient_code}` gets no gradient at all. Compute the loss inside the tape's block."
            )
            node = last.node

        replacements, safe = move_statements(analysis, tape, opened, closed, call, flow, move_before, move_after)
        return Report(
            node=node,
            message=message,
            detail=detail,
            related=related,
            replacements=replacements,
            fix_description="Move the computation into the GradientTape block",
            applicability=None if replacements is None else (Applicability.SAFE if safe else Applicability.UNSAFE),
        )


def _with_appends(analysis: ModuleAnalysis, flow: list[Statement], call: GradientCall) -> list[Statement]:
    """The flow with the statements that grow its lists (``history.append(model(s))``) and what they read: a list
    of forward passes collected before the tape and summed in it carries them to the target."""
    at = analysis.statement_index(call.node)
    if at is None or ".append(" not in analysis.text and ".extend(" not in analysis.text:
        return flow
    statements = analysis.statements(call.scope)[:at.index]
    found = {s.index: s for s in flow}
    changed = True
    while changed:
        changed = False
        read = set().union(*(s.read for s in found.values())) if found else set()
        for statement in statements:
            if statement.index in found:
                continue
            grown = _grown_list(statement)
            if grown is None or grown[0] not in read:
                continue
            found[statement.index] = statement
            for upstream in analysis.backward_slice(grown[1], call.scope):
                found.setdefault(upstream.index, upstream)
            changed = True
    return [found[i] for i in sorted(found)]


def _grown_list(statement: Statement) -> tuple[str, cst.Call] | None:
    """``losses.append(loss)``: the list's name, and the call that grows it."""
    node = statement.node
    if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1 or not isinstance(node.body[0], cst.Expr):
        return None
    call = node.body[0].value
    if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Name) \
            and call.func.attr.value in ("append", "extend", "insert"):
        return call.func.value.value, call
    return None


def _inside_another_tape(analysis: ModuleAnalysis, statement: Statement, tape: TapeBlock) -> bool:
    for block in tapeflow.tape_blocks_holding(analysis, statement):
        if block is not tape.node and not analysis.is_inside(tape.node, block) and not analysis.is_inside(block, tape.node):
            return True
    return False


def _carrying(analysis: ModuleAnalysis, statements: list[Statement], sources: set[Source]) -> list[Statement]:
    """The statements that use the sources' variables, and those that use their results, in order."""
    carrying: list[Statement] = []
    names: set[str] = set()
    for statement in statements:
        if tapeflow.references(analysis, statement, sources) or statement.read & names:
            carrying.append(statement)
            names |= statement.assigned
    return carrying


def _breaks_after(analysis, after: list[Statement], inside: list[Statement], move_before, sources) -> bool:
    """Whether statements after the tape carry the recorded computation on to the target."""
    carried: set[str] = set()
    for statement in inside + move_before:
        carried |= statement.assigned
    for statement in after:
        if not statement.read & carried and not tapeflow.references(analysis, statement, sources):
            continue
        assigned = lone_assignment(statement.node)
        if assigned is not None and isinstance(assigned[1], cst.Name):
            carried |= statement.assigned  # a mere alias keeps the recorded tensor
            continue
        return True
    return False


def _target_computed_in_call(analysis: ModuleAnalysis, call: GradientCall, tape: TapeBlock, opened: Statement,
                             closed: int) -> Report | None:
    """``tape.gradient(-loss, ...)``, ``tape.gradient(f(x), x)``: the target is an operation written in the
    gradient call's own arguments, after the tape's block has closed, so the tape recorded none of it."""
    target = call.target
    assert target is not None, "the caller checks the target"
    at = analysis.statement_index(call.node)
    if call.helper is not None or at is None or at.index <= closed or not _runs_an_operation(analysis, target, 0):
        return None
    if not names_read(target):
        return None  # a constant: GF014's business
    with_code = analysis.code(tape.node).splitlines()[0]
    target_code = analysis.code(target)
    made, touched = _compute_target_in_block(analysis, call, tape, opened, closed, at)
    safe = made is not None and made.applicability == Applicability.SAFE and not touched
    return Report(
        node=target,
        message=f"`{call_brief(target_code)}` is computed in the gradient call, after the GradientTape block",
        detail=(
            f"`{analysis.code(call.node)}` computes `{target_code}` in its own arguments, after the "
            f"`{with_code}` block has closed, so the tape did not record it and every gradient is None. "
            "Compute the target inside the tape's block and ask for the gradient of that."
        ),
        related=[(tape.node, "the tape records only what runs inside this block")],
        replacements=made.replacements if made is not None else None,
        fix_description=made.description if made is not None else "",
        applicability=None if made is None else (Applicability.SAFE if safe else Applicability.UNSAFE),
        applicability_reason="" if safe or made is None else (made.reason or
                                                                "a statement between the block and the gradient call "
                                                                "mentions what the target reads, and may change it"),
    )


_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Power, cst.MatrixMultiply, cst.Modulo)
_OPERATIONS_OF = ("tensorflow.", "keras.", "tf_keras.")


def _runs_an_operation(analysis: ModuleAnalysis, node: cst.BaseExpression, depth: int) -> bool:
    """Whether evaluating ``node`` runs a TensorFlow operation (and so makes a new tensor) rather than
    handing back a value computed earlier: arithmetic, a TensorFlow function, a model or layer run
    (``model(x)``), or a function of this module that returns one of these."""
    if isinstance(node, cst.UnaryOperation):
        return isinstance(node.operator, (cst.Minus, cst.Plus))
    if isinstance(node, cst.BinaryOperation):
        return isinstance(node.operator, _ARITHMETIC)
    if not isinstance(node, cst.Call):
        return False
    qualname = analysis.qualname(node.func)
    if qualname is not None:
        # a conversion or a cast to the dtype it has hands a tensor back as it is, recorded or not
        return qualname.startswith(_OPERATIONS_OF) and not qualname.endswith(("Variable", "constant", "convert_to_tensor", "cast"))
    if isinstance(node.func, cst.Name) and node.func.value == "sum" and analysis.function_named("sum") is None:
        return True  # sum of tensors adds them
    callee = analysis.callee(node)
    if callee is not None:
        if depth > 2:
            return False
        returned = [r.value for r in walk(callee[0].body, cst.Return) if analysis.scope_of(r) is callee[0]]
        return bool(returned) and all(v is not None and _runs_an_operation(analysis, v, depth + 1) for v in returned)
    return False


def _compute_target_in_block(analysis: ModuleAnalysis, call: GradientCall, tape: TapeBlock, opened: Statement,
                             closed: int, at: Statement) -> tuple[Rewrite | None, bool]:
    """move-into-tape's fix for a target written in the gradient call (computed at the block's end under a new
    name), and whether a statement in between mentions what the target reads. None where the target could read
    other values there: a statement in between rebinds a name it reads, or the call sits in a loop or branch that
    does not hold the tape's block."""
    target = call.target
    if target is None or at.enclosing != opened.enclosing:
        return None, False
    if not isinstance(call.statement, (cst.SimpleStatementLine, cst.BaseSmallStatement)):
        return None, False  # a loop's header asks again on every turn
    read = names_read(target)
    between = analysis.statements(call.scope)[closed + 1:at.index]
    if any(statement.assigned & read for statement in between):
        return None, False
    made = hoist_target(Context.of_analysis(analysis), call.node, tape.node)
    return made, any(names_read(statement.node) & read for statement in between)


_WEIGHT_MAKERS = ("add_weight", "add_variable")


def _weights_combined_in_build(analysis: ModuleAnalysis) -> Iterator[Report]:
    """``self.kernel = tf.concat(parts, -1)`` in a layer's ``build`` (or ``__init__``), ``parts`` its new weights, and
    ``self.kernel`` read in ``call``: computed once, before any tape, so the weights get no gradient."""
    for klass in analysis.walk(None, cst.ClassDef):
        if not any(analysis.qualname(base.value) in LAYER_BASES for base in klass.bases):
            continue
        methods = {m.name.value: m for m in klass.body.body if isinstance(m, cst.FunctionDef)}
        call = methods.get("call")
        if call is None:
            continue
        read_in_call = {dotted(node) for node in walk(call, cst.Attribute)}
        for method in (methods.get("build"), methods.get("__init__")):
            if method is None:
                continue
            weights: set[str] = set()
            for assign in walk(method, cst.Assign):
                targets = [dotted(t.target) for t in assign.targets]
                if _makes_weights(assign.value):
                    weights |= {t for t in targets if t is not None}
                    continue
                stored = [t for t in targets if t is not None and t.startswith("self.") and t in read_in_call]
                if not stored or not weights or not _computes_from(analysis, assign.value, weights):
                    continue
                statement = analysis.statement_of(assign)
                yield Report(
                    node=statement,
                    message=f"`{call_brief(analysis.code(statement))}` is computed once in `{method.name.value}`, outside every tape",
                    detail=(
                        f"`{analysis.code(statement).strip()}` runs once, when the layer is built, not in the training step: "
                        f"`{stored[0]}` is then a fixed tensor, and the tape of each step records only `call`, where it is "
                        "read, so no gradient reaches the weights it was computed from. "
                        f"Keep the weights in `{method.name.value}` and compute this in `call`."
                    ),
                    related=[(next(n for n in walk(call, cst.Attribute) if dotted(n) == stored[0]), f"`call` reads `{stored[0]}`")],
                )


def _makes_weights(value: cst.BaseExpression) -> bool:
    """``self.add_weight(...)``, or a list of them (``[self.add_weight(...) for i in range(n)]``)."""
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        value = value.elt
    elif isinstance(value, (cst.List, cst.Tuple)):
        return bool(value.elements) and all(_makes_weights(e.value) for e in value.elements)
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and dotted(value.func.value) == "self" \
        and value.func.attr.value in _WEIGHT_MAKERS


def _computes_from(analysis: ModuleAnalysis, value: cst.BaseExpression, weights: set[str]) -> bool:
    """Whether ``value`` is a TensorFlow computation (a ``tf.*`` function, arithmetic) on the weights: a new tensor."""
    if isinstance(value, cst.BinaryOperation):
        computes = isinstance(value.operator, _ARITHMETIC)
    elif isinstance(value, cst.Call):
        qualname = analysis.qualname(value.func) or ""
        computes = qualname.startswith("tensorflow.") and qualname not in VARIABLE_MAKERS
    else:
        computes = False
    if not computes:
        return False
    reads = {dotted(node) for node in walk(value, (cst.Name, cst.Attribute))}
    return bool(reads & weights)
