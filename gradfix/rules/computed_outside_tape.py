from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix import categories
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.static import tapeflow
from gradfix.static.sources import Source, resolve_sources
from gradfix.static.analysis import GradientCall, ModuleAnalysis, Statement, TapeBlock, lone_assignment


class ComputedOutsideTape(Rule):
    """
    Finds a forward pass or a loss computed outside the `tf.GradientTape` block whose tape is
    asked for the gradient: the model is called before `with tf.GradientTape() as tape:`, so the
    tape records only part of the computation (or nothing at all), or the loss is computed after
    the block has closed. It looks in plain functions, scripts and the methods of a subclassed
    `keras.Model` (`train_step`), follows the forward pass into the module's helper functions and
    methods (and a gradient asked through a helper that takes the tape), and counts what runs under
    `with tape.stop_recording():` as outside the tape.

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

    ## Fix safety

    The moved statements compute the same values as before; only the tape now records them.
    The fix is **safe** when every moved statement is a plain `name = value` assignment, no
    statement it moves past has a visible effect (an expression statement such as `print(...)`
    or a metric update, or a compound statement), and the moved results are read only on the way
    to the gradient. Otherwise it is **unsafe**: the order of visible effects changes, or a value
    someone relies on elsewhere is now computed under the tape (and kept in its memory), which a
    reviewer should look at. No fix is offered when the statements cannot be moved without
    changing what they compute (a statement in between reassigns a name they read, they sit in a
    different block such as outside the training loop, or they are compound statements).

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
    ]

    def repairs(self, site) -> Iterator:
        """From the run: the target computed in the gradient call's arguments or after the block, the
        forward pass before the block, a loss callable or function that reads a tensor computed before the tape."""
        yield from repair_outside_tape(site)

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for call in analysis.gradient_calls:
            report = self._check_call(analysis, call)
            if report is not None:
                yield report

    def _check_call(self, analysis: ModuleAnalysis, call: GradientCall) -> Report | None:
        tape = call.tape
        if tape is None or call.target is None or analysis.is_inside(call.node, tape.node):
            return None
        sources = resolve_sources(analysis, call.sources, call.scope)
        if not sources:
            return None
        opened = tapeflow.tape_statement(analysis, tape)
        if opened is None:
            return None
        closed = tapeflow.last_index_inside(analysis, tape)
        flow = analysis.backward_slice(call.target, call.scope)
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
            replacements = None
            if len(pause.items) == 1 and isinstance(pause.body, cst.IndentedBlock) and all(
                any(s.node is statement for s in unrecorded) for statement in pause.body.body
            ):
                # the whole paused block is the forward pass: recording it is all the fix does
                replacements = {pause: cst.FlattenSentinel(list(pause.body.body))}
            return Report(
                node=first.node,
                message=(
                    f"`{analysis.code(first.node)}` runs under `{analysis.code(pause.items[0].item)}`, so the tape does not record it "
                    f"and `{analysis.code(call.node)}` gets no gradient for {tapeflow.sources_label(tapeflow.references(analysis, first, missing) or missing)}"
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
            message = (
                f"`{analysis.code(first.node)}` runs before `{with_code}` opens, so the tape does not record it "
                f"and `{gradient_code}` gets no gradient for {tapeflow.sources_label(names)}"
            )
            node = first.node
        else:
            last = move_after[-1]
            message = (
                f"`{analysis.code(last.node)}` runs after the `{with_code}` block has closed, so the tape does not "
                f"record it and `{gradient_code}` gets no gradient at all"
            )
            node = last.node

        replacements, safe = _move(analysis, tape, opened, closed, call, flow, move_before, move_after)
        return Report(
            node=node,
            message=message,
            related=related,
            replacements=replacements,
            fix_description="Move the computation into the GradientTape block",
            applicability=None if replacements is None else (Applicability.SAFE if safe else Applicability.UNSAFE),
        )


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


def _move(analysis, tape, opened, closed, call, flow, move_before, move_after):
    """Replacements moving the statements into the block, and whether that is safe; (None, False) if it cannot be done."""
    parent = analysis.parent(tape.node)
    moved = move_before + move_after
    if any(not isinstance(s.node, cst.SimpleStatementLine) or analysis.parent(s.node) is not parent for s in moved):
        return None, False
    all_statements = analysis.statements(call.scope)
    moved_indices = {s.index for s in moved}
    assigned = set().union(*(s.assigned for s in moved))
    jumped: dict[int, Statement] = {}
    for statement in moved:
        if statement.index < opened.index:
            between = all_statements[statement.index + 1: opened.index]
        else:
            between = all_statements[closed + 1: statement.index]
        for other in between:
            if other.index in moved_indices:
                continue
            if other.read & statement.assigned or other.assigned & (statement.assigned | statement.read):
                return None, False
            jumped[other.index] = other

    body = tape.node.body
    inner = [s for s in body.body if not _is_pass(s)]
    watches = 0
    while watches < len(inner) and _is_watch(inner[watches], tape.name):
        watches += 1
    head = [s.node for s in move_before]
    if head and watches == 0:
        head[0] = head[0].with_changes(leading_lines=[line for line in head[0].leading_lines if line.comment is not None])
    new_body = inner[:watches] + head + inner[watches:] + [s.node for s in move_after]
    replacements: dict = {tape.node: tape.node.with_changes(body=body.with_changes(body=new_body))}
    for statement in moved:
        replacements[statement.node] = cst.RemoveFromParent()

    plain = all(_plain_assignment(s.node) for s in moved)
    quiet = all(_plain_assignment(s.node) for s in jumped.values())
    consumers = {s.index for s in flow} | {i for i in range(opened.index, closed + 1)}
    gradient_statement = analysis.statement_index(call.node)
    if gradient_statement is not None:
        consumers.add(gradient_statement.index)
    used_elsewhere = any(
        s.read & assigned and s.index not in consumers and s.index not in moved_indices
        for s in all_statements
    )
    return replacements, plain and quiet and not used_elsewhere


def _is_watch(statement: cst.CSTNode, tape_name: str | None) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value == "watch"
        and isinstance(small.value.func.value, cst.Name)
        and small.value.func.value.value == tape_name
    )


def _is_pass(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(isinstance(s, cst.Pass) for s in statement.body)


def _plain_assignment(node: cst.CSTNode) -> bool:
    if not isinstance(node, cst.SimpleStatementLine):
        return False
    return all(
        isinstance(small, cst.Assign) and all(isinstance(t.target, (cst.Name, cst.Tuple, cst.List)) for t in small.targets)
        for small in node.body
    )


# --------------------------------------------------------------------------- repairs from a run

def repair_outside_tape(site) -> Iterator:
    from gradfix.repair_site import append_to_block

    cause = site.cause
    where = cause.call.where if cause.call is not None else None
    call = site.gradient_call_at(where.line) if where is not None and where.file == site.path else None
    tape = _tape_of(site, call)
    origin = cause.cut or {}
    if call is not None and tape is not None:
        yield _hoist_target(site, call, tape, append_to_block)
        yield _move_after_block(site, call, tape)
        if cause.site is not None and cause.site.line and cause.site.line < site.lines_of(tape)[0]:
            yield _move_before_block(site, tape, cause.site.line)
    name = origin.get("name") if origin.get("before_window") else None
    line = origin.get("line") if name else (cause.site.line if cause.site is not None else None)
    if line:
        yield from _compute_where_read(site, line, name)


def _tape_of(site, call):
    if call is None or not isinstance(call.func, cst.Attribute) or not isinstance(call.func.value, cst.Name):
        return None
    return site.tape_block(call.func.value.value, site.lines_of(call)[0], site.function_of(call))


def _hoist_target(site, call: cst.Call, tape: cst.With, append_to_block):
    """`tape.gradient(-loss, vars)` after the block: compute the target inside the block instead."""
    import libcst.matchers as m

    target = call.args[0].value
    if isinstance(target, cst.Name):
        return None
    statement = site.statement_at(site.lines_of(call)[0])
    used = {n.value for n in m.findall(target, m.Name())}
    between = site.statements_between(tape, statement)
    if any(used & site.assigned_names(node) for node in between):
        return None  # the expression reads a value set after the block: the statements move instead
    if isinstance(target, cst.UnaryOperation) and isinstance(target.expression, cst.Name):
        base = f"negative_{target.expression.value}" if isinstance(target.operator, cst.Minus) else "gradient_target"
    elif isinstance(target, cst.Call) and isinstance(target.func, cst.Name):
        base = f"{target.func.value}_value"
    else:
        base = "gradient_target"
    name = site.fresh_name(base)
    assignment = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], target)])
    new_call = call.with_changes(args=[call.args[0].with_changes(value=cst.Name(name)), *call.args[1:]])
    text = site.rewrite({tape: append_to_block(tape, [assignment]), call: new_call})
    has_call = bool(m.findall(target, m.Call()))
    return site.candidate(
        "GF001", f"Compute the gradient's target `{site.module.code_for_node(target)}` inside the GradientTape block",
        Applicability.UNSAFE if has_call else Applicability.SAFE, text,
        "the call now runs inside the block, before the statements that follow it" if has_call else "")


def _movable(node: cst.CSTNode) -> bool:
    import libcst.matchers as m

    return not m.findall(node, m.Return() | m.Break() | m.Continue() | m.Yield() | m.Call(func=m.Attribute(attr=m.Name("gradient"))))


def _move_after_block(site, call: cst.Call, tape: cst.With):
    """The loss computed between the block and the gradient call: move those statements into the block."""
    statement = site.statement_at(site.lines_of(call)[0])
    between = site.statements_between(tape, statement)
    if not between or not all(_movable(node) for node in between):
        return None
    body = tape.body
    moved = tape.with_changes(body=body.with_changes(body=[*body.body, *between]))
    replacements = {tape: moved}
    replacements.update({node: cst.RemovalSentinel.REMOVE for node in between})
    return site.candidate("GF001", "Move the statements between the block and the gradient call into the GradientTape block",
                          Applicability.SAFE, site.rewrite(replacements))


def _move_before_block(site, tape: cst.With, line: int):
    """The forward pass before the block (in the same body): open the tape before it instead."""
    parent = site.parent(tape)
    body = list(getattr(parent, "body", ()) or ())
    if tape not in body:
        return None
    first = None
    for node in body[: body.index(tape)]:
        start, end = site.lines_of(node)
        if start <= line <= end:
            first = node
            break
    if first is None:
        return None
    moving = body[body.index(first): body.index(tape)]
    if not all(_movable(node) for node in moving):
        return None
    inner = tape.body
    moved = tape.with_changes(body=inner.with_changes(body=[*moving, *inner.body]))
    replacements = {tape: moved}
    replacements.update({node: cst.RemovalSentinel.REMOVE for node in moving})
    return site.candidate("GF001", "Open the GradientTape before the forward pass, so that it is recorded",
                          Applicability.SAFE, site.rewrite(replacements))


def _compute_where_read(site, line: int, name: str | None) -> Iterator:
    """A tensor computed before the tape and read by a function (or loss callable) that runs inside it:
    compute it in that function, where the tape records it."""
    import libcst.matchers as m

    statement = site.statement_at(line)
    assigned = lone_assignment(statement)
    if assigned is None:
        return
    bound, value = assigned
    if name is not None and bound != name:
        return
    for function in list(site.nodes(cst.Lambda)) + list(site.nodes(cst.FunctionDef)):
        if function is site.function_of(statement) or site.lines_of(function)[0] <= site.lines_of(statement)[0] <= site.lines_of(function)[1]:
            continue
        body = function.body
        reads = {n.value for n in m.findall(body, m.Name())}
        if bound not in reads or bound in site.assigned_names(body):
            continue
        if isinstance(function, cst.Lambda):
            if not (isinstance(body, cst.Name) and body.value == bound):
                continue
            new = function.with_changes(body=value)
        else:
            if not isinstance(body, cst.IndentedBlock):
                continue
            new = function.with_changes(body=body.with_changes(body=[statement.deep_clone().with_changes(leading_lines=()), *body.body]))
        label = "the loss callable" if isinstance(function, cst.Lambda) else f"`{function.name.value}`"
        yield site.candidate(
            "GF001", f"Compute `{bound}` inside {label}, which runs while the tape records",
            Applicability.UNSAFE, site.rewrite({function: new}),
            f"`{bound}` is now recomputed each time {label} runs (the copy before it is left as it was)")
