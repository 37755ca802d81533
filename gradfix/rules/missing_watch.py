from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import MISSING_WATCH
from gradfix.messages import brief, quoted_list
from gradfix.model import Applicability
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import CODE_SCOPE, Binding, GradientCall, ModuleAnalysis, TapeBlock, names_read
from gradfix.static.api import (
    FLOAT_BY_DEFAULT,
    FRESH_TENSOR_MAKERS,
    TENSOR_CONVERTERS,
    VARIABLE_LISTS,
    VARIABLE_MAKERS,
    dtype_name,
    integer_dtype,
)
from gradfix.static.bindings import (
    bindings,
    ever_bound_in_scope,
    is_false,
    keyword,
    parameter,
    positional,
    self_attribute_values,
    values_of,
)
from gradfix.static.names import dotted
from gradfix.static.sources import source_elements
from gradfix.static.tree import walk
from gradfix.static.watches import is_watched, watch_calls
from gradfix.transforms.watch import with_watches

TENSOR, VARIABLE, INTEGER = "tensor", "variable", "integer"


class MissingWatch(Rule):
    """Finds `tape.gradient(y, x)` where `x` is a plain tensor (`tf.constant`, `tf.convert_to_tensor`,
    `tf.random.normal`, a batch from a `tf.data.Dataset`) that the tape was never told to watch, and
    tapes opened with `watch_accessed_variables=False` that watch nothing at all. `x` may be a
    local name, a module-level name (also one a step function rebinds with `global`), or an
    attribute on `self` made in the class's methods, or one name of a literal tuple unpacked
    (`c1, c2 = tf.constant(5.0), tf.constant(3.0)`); updates such as `w = w - lr * g` keep a plain
    tensor plain and do not hide it, and arithmetic on a variable done before the tape
    (`x = x0 + x1`) gives a plain tensor too.

    ## Why gradients vanish
    A `GradientTape` records the operations whose inputs it watches. It watches the trainable
    variables it sees read (unless `watch_accessed_variables=False`) and whatever `tape.watch` names;
    a tensor is neither, so nothing computed from it is recorded and the gradient with respect to it
    is `None`. Gradients of inputs (adversarial examples, saliency maps) and of coordinates
    (physics-informed networks, `du/dx` with an inner tape) need the explicit watch.

    ## Example
    ```python
    image = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        prediction = model(image)
        loss = loss_fn(label, prediction)
    gradient = tape.gradient(loss, image)  # None
    ```

    ## Fix
    ```python
    image = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(image)
        prediction = model(image)
        loss = loss_fn(label, prediction)
    gradient = tape.gradient(loss, image)
    ```

    ## Fix safety
    Safe: watching a tensor only makes the tape record what it computes, so the gradient exists; the
    values the program computes do not change. What the fix assumes, that the name holds a tensor
    (`tape.watch` raises on a NumPy array or a Python number), is what the rule reports on: every
    binding of the name that reaches the gradient call (every binding in the module, for a module
    name a function reads) makes a float tensor (`tf.constant`, `tf.random.*`, `tf.convert_to_tensor`
    before the tape, arithmetic on such tensors, arithmetic done before the tape with one such
    TensorFlow tensor or variable among its operands (`real + alpha * (fake - real)` with `alpha` from
    `tf.random.uniform`: a NumPy array or a number meeting a tensor gives a tensor, and so does a
    variable's value), the same arithmetic spelled `tf.add`, `tf.multiply`, `tf.matmul`, ..., a batch of a
    `tf.data` dataset); where one may hold something else, there is no finding. The watch goes first in the block, or right after the
    statement that makes the tensor when that happens inside the block (no fix when that statement
    is a compound one). A tape opened with
    `watch_accessed_variables=False` that watches nothing at all gets `watch_accessed_variables=False`
    removed instead (watching the variables by hand would miss those a model creates on its first
    call, and Keras 3 variables must be watched through `.value`); that fix is unsafe, because the
    tape then records every trainable variable the block reads, not only the sources.

    ## When not to fix
    Sources that are variables (`tf.Variable`, `model.trainable_variables`), tensors already watched
    (also through a list such as `tape.watch([x, t])`), intermediate tensors computed inside the tape
    from watched values (a Grad-CAM's convolution output, `h = x * 2.0` after `tape.watch(x)`), integer tensors (a watch would not help:
    integers have no gradient), and tensors the tape block never reads are left alone.
    """

    code = "GF007"
    name = "missing-watch"
    summary = "Gradient with respect to a tensor the tape never watched: add `tape.watch(x)`"
    applicability = Applicability.SAFE
    categories = (MISSING_WATCH,)
    needles = ("GradientTape",)

    VALID = [
        """
        import tensorflow as tf
        w = tf.Variable(3.0)
        with tf.GradientTape() as tape:
            y = w * w
        dy_dw = tape.gradient(y, w)
        """,
        """
        import tensorflow as tf
        x = tf.constant(3.0)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        dy_dx = tape.gradient(y, x)
        """,
        """
        import tensorflow as tf
        x = tf.random.uniform((8, 1))
        t = tf.random.uniform((8, 1))
        inputs = [x, t]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            u = model(tf.concat(inputs, axis=1))
        du_dx, du_dt = tape.gradient(u, [x, t])
        """,
        """
        import tensorflow as tf
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(model.trainable_variables)
            loss = loss_fn(y, model(x))
        grads = tape.gradient(loss, model.trainable_variables)
        """,
        """
        import tensorflow as tf
        images = tf.random.normal((8, 32, 32, 3))
        with tf.GradientTape() as tape:
            features = conv_model(images)
            score = head(features)[:, 0]
        cam_grads = tape.gradient(score, features)
        """,
        """
        import tensorflow as tf
        n = tf.constant(3)
        with tf.GradientTape() as tape:
            y = tf.cast(n, tf.float32) * w
        grads = tape.gradient(y, [w])
        """,
        """
        import tensorflow as tf
        def train_step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            return tape.gradient(loss, x)
        w = tf.Variable(tf.zeros((8, 4)))
        train_step(w, tf.zeros((8, 1)))
        """,
        """
        import tensorflow as tf
        w = tf.Variable(tf.random.normal((4, 1)))
        for step in range(3):
            with tf.GradientTape() as tape:
                y = x @ w
            g = tape.gradient(y, w)
            w = w - 0.1 * g
        """,
        """
        import tensorflow as tf
        x = tf.constant(2.0)
        with tf.GradientTape() as tape:
            y = model(other)
        g = tape.gradient(y, x)
        """,
        """
        import numpy as np
        import tensorflow as tf
        for x_batch, y_batch in zip(np_batches, np_labels):
            with tf.GradientTape() as tape:
                loss = loss_fn(y_batch, model(x_batch))
            grads = tape.gradient(loss, x_batch)
        """,
        # Look-alike: the tensor watched by a helper that takes the tape.
        """
import tensorflow as tf

def watch_all(tape, tensors):
    for t in tensors:
        tape.watch(t)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    watch_all(tape, [x])
    y = x * x
dy_dx = tape.gradient(y, x)
""",
        # tensors kept on `self` and watched
        """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.w1 = tf.random.normal((4, 1)) * 0.1
        self.b1 = tf.zeros((1,))

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            tape.watch(self.w1)
            tape.watch(self.b1)
            loss = tf.reduce_mean(tf.square(y - (x @ self.w1 + self.b1)))
        g_w1, g_b1 = tape.gradient(loss, [self.w1, self.b1])
        self.w1 = self.w1 - 0.01 * g_w1
        self.b1 = self.b1 - 0.01 * g_b1
        return loss
""",
        # variables kept on `self`
        """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.w1 = tf.Variable(tf.random.normal((4, 1)) * 0.1)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(y - x @ self.w1))
        (g_w1,) = tape.gradient(loss, [self.w1])
        self.w1.assign_sub(0.01 * g_w1)
        return loss
""",
        # module-level tensors a step function rebinds (`global`) and watches
        """
import tensorflow as tf

w1 = tf.random.normal((4, 1)) * 0.1

def train_step(x, y):
    global w1
    with tf.GradientTape() as tape:
        tape.watch([w1])
        loss = tf.reduce_mean(tf.square(y - x @ w1))
    (g_w1,) = tape.gradient(loss, [w1])
    w1 = w1 - 0.01 * g_w1
    return loss
""",
        # Look-alike: a `tf.Variable` under an import alias needs no watch.
        """
import tensorflow as T
x = T.Variable(3.0)
with T.GradientTape() as tape:
    y = x * x
dy_dx = tape.gradient(y, x)
""",
        # Look-alike: two variables bound by unpacking a literal tuple.
        """
import tensorflow as tf

v1, v2 = tf.Variable(5.0), tf.Variable(3.0)
with tf.GradientTape() as tape:
    z = v1 * v1 + v2
dz = tape.gradient(z, [v1, v2])
""",
        # Look-alike: a tensor and a variable unpacked together; only the variable is asked for.
        """
import tensorflow as tf

c, v = tf.constant(5.0), tf.Variable(3.0)
with tf.GradientTape() as tape:
    z = c * v
dz = tape.gradient(z, v)
""",
        # Look-alike: a variable plus a constant computed inside the tape, the gradient asked for the variable.
        """
import tensorflow as tf

x0 = tf.Variable(0.0)
with tf.GradientTape() as tape:
    x = x0 + tf.constant(3.0)
    z = x * x
dz_dx0 = tape.gradient(z, x0)
""",
    ]

    INVALID = [
        # A second tape under the same name watches: the first, asked first, still watched nothing.
        Invalid(
            """
            import tensorflow as tf
            c1, c2 = tf.constant(5.0), tf.constant(3.0)
            with tf.GradientTape() as tape:
                z = 3 * c1 ** 2 + 2 * c1 * c2
            gradients = tape.gradient(z, [c1, c2])

            with tf.GradientTape() as tape:
                tape.watch(c1)
                tape.watch(c2)
                z = 3 * c1 ** 2 + 2 * c1 * c2
            gradients = tape.gradient(z, [c1, c2])
            """,
            expected="""
            import tensorflow as tf
            c1, c2 = tf.constant(5.0), tf.constant(3.0)
            with tf.GradientTape() as tape:
                tape.watch(c1)
                tape.watch(c2)
                z = 3 * c1 ** 2 + 2 * c1 * c2
            gradients = tape.gradient(z, [c1, c2])

            with tf.GradientTape() as tape:
                tape.watch(c1)
                tape.watch(c2)
                z = 3 * c1 ** 2 + 2 * c1 * c2
            gradients = tape.gradient(z, [c1, c2])
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            x = tf.constant(3.0)
            with tf.GradientTape() as tape:
                y = x * x
            dy_dx = tape.gradient(y, x)
            """,
            expected="""
            import tensorflow as tf
            x = tf.constant(3.0)
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = x * x
            dy_dx = tape.gradient(y, x)
            """,
        ),
        Invalid(
            """
            import numpy as np
            import tensorflow as tf

            def adversarial_pattern(model, image, label):
                with tf.GradientTape() as tape:
                    prediction = model(image)
                    loss = tf.keras.losses.categorical_crossentropy(label, prediction)
                gradient = tape.gradient(loss, image)
                return tf.sign(gradient)

            image = tf.convert_to_tensor(np.random.rand(1, 28, 28, 1), dtype=tf.float32)
            pattern = adversarial_pattern(model, image, label)
            """,
            expected="""
            import numpy as np
            import tensorflow as tf

            def adversarial_pattern(model, image, label):
                with tf.GradientTape() as tape:
                    tape.watch(image)
                    prediction = model(image)
                    loss = tf.keras.losses.categorical_crossentropy(label, prediction)
                gradient = tape.gradient(loss, image)
                return tf.sign(gradient)

            image = tf.convert_to_tensor(np.random.rand(1, 28, 28, 1), dtype=tf.float32)
            pattern = adversarial_pattern(model, image, label)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            x = tf.random.uniform((16, 1))
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    u = net(x)
                du_dx = inner.gradient(u, x)
                loss = tf.reduce_mean((du_dx - tf.cos(x)) ** 2)
            grads = outer.gradient(loss, net.trainable_variables)
            """,
            expected="""
            import tensorflow as tf
            x = tf.random.uniform((16, 1))
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    u = net(x)
                du_dx = inner.gradient(u, x)
                loss = tf.reduce_mean((du_dx - tf.cos(x)) ** 2)
            grads = outer.gradient(loss, net.trainable_variables)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
            for x_batch, y_batch in dataset:
                with tf.GradientTape() as tape:
                    loss = loss_fn(y_batch, model(x_batch))
                saliency = tape.gradient(loss, x_batch)
            """,
            expected="""
            import tensorflow as tf
            dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(8)
            for x_batch, y_batch in dataset:
                with tf.GradientTape() as tape:
                    tape.watch(x_batch)
                    loss = loss_fn(y_batch, model(x_batch))
                saliency = tape.gradient(loss, x_batch)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            with tf.GradientTape() as tape:
                x = tf.constant([1.0, 2.0])
                y = tf.reduce_sum(x ** 2)
            g = tape.gradient(y, x)
            """,
            expected="""
            import tensorflow as tf
            with tf.GradientTape() as tape:
                x = tf.constant([1.0, 2.0])
                tape.watch(x)
                y = tf.reduce_sum(x ** 2)
            g = tape.gradient(y, x)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            expected="""
            import tensorflow as tf
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf
            with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
            expected="""
            import tensorflow as tf
            with tf.GradientTape(persistent=True) as tape:
                loss = loss_fn(y, model(x))
            grads = tape.gradient(loss, model.trainable_variables)
            """,
        ),
        # Variant: the gradient asked through a helper that takes the tape.
        Invalid(
            """
import tensorflow as tf

def grads_of(tape, target, sources):
    return tape.gradient(target, sources)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    y = x * x
dy_dx = grads_of(tape, y, x)
""",
            """
import tensorflow as tf

def grads_of(tape, target, sources):
    return tape.gradient(target, sources)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    y = x * x
dy_dx = grads_of(tape, y, x)
""",
        ),
        # module-level tensors a step function reads and rebinds (`global`): the first step's gradients are None
        Invalid(
            """
import tensorflow as tf

w1 = tf.random.normal((4, 1)) * 0.1
b1 = tf.zeros((1,))

def train_step(x, y):
    global w1, b1
    with tf.GradientTape() as tape:
        predictions = x @ w1 + b1
        loss = tf.reduce_mean(tf.square(y - predictions))
    g_w1, g_b1 = tape.gradient(loss, [w1, b1])
    w1 = w1 - 0.01 * g_w1
    b1 = b1 - 0.01 * g_b1
    return loss
""",
            """
import tensorflow as tf

w1 = tf.random.normal((4, 1)) * 0.1
b1 = tf.zeros((1,))

def train_step(x, y):
    global w1, b1
    with tf.GradientTape() as tape:
        tape.watch(w1)
        tape.watch(b1)
        predictions = x @ w1 + b1
        loss = tf.reduce_mean(tf.square(y - predictions))
    g_w1, g_b1 = tape.gradient(loss, [w1, b1])
    w1 = w1 - 0.01 * g_w1
    b1 = b1 - 0.01 * g_b1
    return loss
""",
        ),
        # tensors kept on `self`, made in `__init__`
        Invalid(
            """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.w1 = tf.random.normal((4, 1)) * 0.1
        self.b1 = tf.zeros((1,))

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            predictions = x @ self.w1 + self.b1
            loss = tf.reduce_mean(tf.square(y - predictions))
        g_w1, g_b1 = tape.gradient(loss, [self.w1, self.b1])
        self.w1 = self.w1 - 0.01 * g_w1
        self.b1 = self.b1 - 0.01 * g_b1
        return loss
""",
            """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.w1 = tf.random.normal((4, 1)) * 0.1
        self.b1 = tf.zeros((1,))

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            tape.watch(self.w1)
            tape.watch(self.b1)
            predictions = x @ self.w1 + self.b1
            loss = tf.reduce_mean(tf.square(y - predictions))
        g_w1, g_b1 = tape.gradient(loss, [self.w1, self.b1])
        self.w1 = self.w1 - 0.01 * g_w1
        self.b1 = self.b1 - 0.01 * g_b1
        return loss
""",
        ),
        # Variant: two tensors bound by unpacking a literal tuple.
        Invalid(
            """
import tensorflow as tf

c1, c2 = tf.constant(5.0), tf.constant(3.0)
with tf.GradientTape() as tape:
    z = c1 * c1 + c2
dz = tape.gradient(z, [c1, c2])
""",
            """
import tensorflow as tf

c1, c2 = tf.constant(5.0), tf.constant(3.0)
with tf.GradientTape() as tape:
    tape.watch(c1)
    tape.watch(c2)
    z = c1 * c1 + c2
dz = tape.gradient(z, [c1, c2])
""",
        ),
        # Variant: a variable plus a constant, computed before the tape, is a plain tensor.
        Invalid(
            """
import tensorflow as tf

x0 = tf.Variable(0.0)
x = x0 + tf.constant(3.0)
with tf.GradientTape() as tape:
    z = x * x
dz_dx = tape.gradient(z, x)
""",
            """
import tensorflow as tf

x0 = tf.Variable(0.0)
x = x0 + tf.constant(3.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    z = x * x
dz_dx = tape.gradient(z, x)
""",
        ),
        # Variant: `tf.add` of two tensors before the tape.
        Invalid(
            """
import tensorflow as tf

v = tf.random.normal((4, 3))
r = tf.add(v, tf.random.uniform((4, 3), maxval=0.01))
with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(r))
grad = tape.gradient(loss, r)
""",
            """
import tensorflow as tf

v = tf.random.normal((4, 3))
r = tf.add(v, tf.random.uniform((4, 3), maxval=0.01))
with tf.GradientTape() as tape:
    tape.watch(r)
    loss = tf.reduce_sum(tf.square(r))
grad = tape.gradient(loss, r)
""",
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for call in analysis.gradient_calls:
            if call.tape is None or call.sources is None:
                continue
            if _watches_nothing_by_choice(analysis, call):
                yield from self._unwatched_variables(analysis, call)
            else:
                yield from self._unwatched_tensors(analysis, call)

    def _unwatched_tensors(self, analysis: ModuleAnalysis, call: GradientCall) -> Iterator[Report]:
        tape = call.tape
        # check passes only calls with sources, asked of a tape block, which binds the tape's name
        assert tape is not None and tape.name is not None and call.sources is not None, "checked by check"
        body_reads = names_read(tape.node.body)
        body_attributes = {dotted(a) for a in walk(tape.node.body, cst.Attribute)}
        unwatched: list[tuple[cst.BaseExpression, cst.CSTNode, str]] = []
        for source in source_elements(analysis, call.sources, depth=0):
            if isinstance(source, cst.Name):
                if source.value not in body_reads or _ever_a_variable(analysis, source.value, call.scope):
                    continue  # a variable rebound to a tensor is GF005's to explain
            elif not (isinstance(source, cst.Attribute) and isinstance(source.value, cst.Name)
                      and source.value.value == "self" and dotted(source) in body_attributes):
                continue
            name = dotted(source)
            assert name is not None, "a name or self.attr"
            if any(dotted(n) == name for n, _, _ in unwatched) or is_watched(analysis, call, name):
                continue
            kind, origin = _kind(analysis, source, tape, depth=3)
            if kind == TENSOR:
                unwatched.append((source, origin, _describe(analysis, origin)))
        if not unwatched:
            return
        names = [dotted(name) or "" for name, _, _ in unwatched]  # never "": each is a name or self.attr
        listed = ", ".join(f"`{n}`" for n in names)
        first, origin, described = unwatched[0]
        what = f"{listed}, a plain tensor ({described})" if len(names) == 1 else f"{listed}, plain tensors"
        watches = " and ".join(f"`{tape.name}.watch({n})`" for n in names)
        if len(names) == 1:
            message = f"The tape `{brief(tape.name, 16)}` never watches the tensor `{brief(names[0], 24)}`"
        else:
            message = f"The tape `{brief(tape.name, 16)}` never watches the tensors {quoted_list(names, 2)}"
        them = "it" if len(names) == 1 else "them"
        detail = (
            f"The gradient with respect to {what} is None: the tape `{tape.name}` never watched {them}, and a tape "
            f"records only the trainable variables it sees read and the tensors it is told to watch. "
            f"Add {watches} at the start of the tape block."
        )
        related = [(origin, f"`{dotted(name)}` is made here, as a tensor, not a variable") for name, origin, _ in unwatched]
        related.append((tape.node, "the tape block"))
        replacements = _insert_watches(analysis, tape, [name.deep_clone() for name, _, _ in unwatched], names)
        yield Report(
            node=first,
            message=message,
            detail=detail,
            related=related,
            replacements=replacements,
            fix_description=f"Watch {listed} at the start of the tape block",
        )

    def _unwatched_variables(self, analysis: ModuleAnalysis, call: GradientCall) -> Iterator[Report]:
        tape = call.tape
        assert tape is not None and tape.name is not None, "checked by check"
        message = f"The tape `{brief(tape.name, 16)}` watches nothing: opened with `watch_accessed_variables=False`"
        detail = (
            f"`{tape.name}` was opened with `watch_accessed_variables=False` and watches nothing, so every gradient "
            f"of it is None. Drop `watch_accessed_variables=False`, or watch the sources at the start of the block "
            f"(with Keras 3, `{tape.name}.watch([v.value for v in model.trainable_variables])`)."
        )
        yield Report(
            node=call.node,
            message=message,
            detail=detail,
            related=[(tape.call, "opened without watching the variables it reads")],
            replacements={tape.call: _without_keyword(tape.call, "watch_accessed_variables")},
            fix_description="Let the tape watch the trainable variables it reads",
            applicability=Applicability.UNSAFE,
        )


def _without_keyword(call: cst.Call, name: str) -> cst.Call:
    args = [arg for arg in call.args if not (arg.keyword is not None and arg.keyword.value == name)]
    if args:
        args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return call.with_changes(args=args)


def _watches_nothing_by_choice(analysis: ModuleAnalysis, call: GradientCall) -> bool:
    assert call.tape is not None, "checked by check"
    tape_call = call.tape.call
    if not isinstance(tape_call, cst.Call) or not is_false(keyword(tape_call, "watch_accessed_variables")):
        return False
    return not any(True for _ in watch_calls(analysis, call))


def _ever_a_variable(analysis: ModuleAnalysis, name: str, scope: CODE_SCOPE) -> bool:
    for binding in ever_bound_in_scope(analysis, name, scope) + ever_bound_in_scope(analysis, name, analysis.module):
        if binding.value is not None and any(analysis.is_call_to(c, *VARIABLE_MAKERS) for c in walk(binding.value, cst.Call)):
            return True
    return False


def _kind(analysis: ModuleAnalysis, node: cst.BaseExpression, tape: TapeBlock | None, depth: int) -> tuple[str | None, cst.CSTNode]:
    """What ``node`` holds: TENSOR (a plain, unwatched tensor), VARIABLE, INTEGER or None (cannot tell)."""
    if depth < 0:
        return None, node
    if isinstance(node, cst.Call):
        qualname = analysis.qualname(node.func)
        if qualname in VARIABLE_MAKERS:
            return VARIABLE, node
        if qualname in FRESH_TENSOR_MAKERS:
            return (INTEGER if _integer_call(analysis, node, qualname) else TENSOR), node
        if qualname in TENSOR_CONVERTERS:
            if _integer_call(analysis, node, qualname):
                return INTEGER, node
            inside = tape is not None and analysis.is_inside(node, tape.node)
            if not inside:
                return TENSOR, node
            argument = positional(node, 0)
            return _kind(analysis, argument, tape, depth - 1) if argument is not None else (None, node)
        if qualname in _ARITHMETIC_FUNCTIONS:
            operands = [positional(node, 0), positional(node, 1)]
            if all(operand is not None for operand in operands) and len(node.args) == 2:
                return _kind_of_operands(analysis, node, [o for o in operands if o is not None], True, tape, depth), node
        return None, node
    if isinstance(node, cst.Attribute):
        if node.attr.value in VARIABLE_LISTS:
            return VARIABLE, node
        if isinstance(node.value, cst.Name) and node.value.value == "self":
            return _kind_of_attribute(analysis, node, tape, depth)
        return None, node
    if isinstance(node, (cst.BinaryOperation, cst.UnaryOperation)):
        return _kind_of_arithmetic(analysis, node, tape, depth), node
    if isinstance(node, cst.Name):
        return _kind_of_name(analysis, node, tape, depth)
    return None, node


def _kind_of_arithmetic(analysis, node: cst.BinaryOperation | cst.UnaryOperation, tape, depth) -> str | None:
    """Arithmetic on plain tensors is a plain tensor. Made before the tape opens, arithmetic with one TensorFlow
    tensor among its operands is one too, whatever the others are (``real + alpha * diff`` with ``alpha`` from
    ``tf.random.uniform``: a NumPy array or a number on the other side defers to the tensor's operator, a
    variable's value is read into a new tensor), and the tape records none of it. Inside the tape, arithmetic on
    something the tape watches is recorded: the gradient of it exists."""
    operands = [node.left, node.right] if isinstance(node, cst.BinaryOperation) else [node.expression]
    arithmetic = isinstance(node, cst.BinaryOperation) and isinstance(node.operator, _ARITHMETIC)
    return _kind_of_operands(analysis, node, operands, arithmetic, tape, depth)


def _kind_of_operands(analysis, node: cst.CSTNode, operands: list[cst.BaseExpression], arithmetic: bool, tape,
                      depth) -> str | None:
    inside = tape is not None and analysis.is_inside(node, tape.node)
    if inside and tape.name is not None and names_read(node) & _watched_names(tape):
        return None
    # the operands are parts of one expression: only following a name back costs depth
    kinds = [_kind(analysis, operand, tape, depth) for operand in operands if not isinstance(operand, (cst.Integer, cst.Float))]
    if kinds and all(kind == TENSOR for kind, _ in kinds):
        return TENSOR
    if not inside and arithmetic:
        # a variable's value is read into the new tensor as well
        tensors = [origin for kind, origin in kinds if kind in (TENSOR, VARIABLE) and not _numpy_made(analysis, origin)]
        if tensors and all(kind in (TENSOR, VARIABLE, None) for kind, _ in kinds):
            return TENSOR
    return None


# TensorFlow's spellings of arithmetic on two tensors (``tf.add(v, r)``)
_ARITHMETIC_FUNCTIONS = frozenset(
    f"tensorflow.{space}{name}" for space in ("", "math.") for name in ("add", "subtract", "multiply", "divide")
) | {"tensorflow.matmul", "tensorflow.linalg.matmul"}


_ARITHMETIC = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.Power, cst.MatrixMultiply)


def _numpy_made(analysis: ModuleAnalysis, origin: cst.CSTNode) -> bool:
    """An array made by NumPy (``np.random.normal``): arithmetic with it is NumPy's unless a tensor is there too."""
    return isinstance(origin, cst.Call) and (analysis.qualname(origin.func) or "").startswith("numpy.")


def _watched_names(tape: TapeBlock) -> set[str]:
    """The names the tape block tells its tape to watch."""
    watched: set[str] = set()
    for call in walk(tape.node, cst.Call):
        func = call.func
        if (isinstance(func, cst.Attribute) and func.attr.value == "watch" and isinstance(func.value, cst.Name)
                and func.value.value == tape.name and call.args):
            watched |= names_read(call.args[0].value)
    return watched


def _kind_of_name(analysis, node: cst.Name, tape, depth) -> tuple[str | None, cst.CSTNode]:
    found = bindings(analysis, node.value, node)
    if not found:
        return None, node
    kinds: list[tuple[str | None, cst.CSTNode]] = []
    for binding in found:
        if binding.kind == "value" and _steps_itself(binding.value, node.value):
            continue
        if binding.kind == "value" and binding.value is not None:
            kinds.append(_kind(analysis, binding.value, tape, depth - 1))
        elif binding.kind == "loop" and _is_dataset(analysis, binding.value, depth):
            kinds.append((TENSOR, binding.statement))
        elif binding.kind == "unpacked" and binding.value is not None and _is_dataset(analysis, binding.value, depth):
            kinds.append((TENSOR, binding.value))
        elif binding.kind == "unpacked" and (element := _unpacked_element(binding, node.value)) is not None:
            kinds.append(_kind(analysis, element, tape, depth - 1))
        elif binding.kind == "param":
            assert binding.function is not None and binding.param is not None, "a parameter's binding names both"
            kinds.append(_kind_of_parameter(analysis, binding.function, binding.param, depth - 1))
        else:
            kinds.append((None, node))
    if kinds and all(kind == TENSOR for kind, _ in kinds):
        return TENSOR, kinds[0][1]
    return (VARIABLE if any(kind == VARIABLE for kind, _ in kinds) else None), node


def _unpacked_element(binding: Binding, name: str) -> cst.BaseExpression | None:
    """``c1, c2 = tf.constant(5.), tf.constant(3.)``: the element of a literal tuple that ``name`` takes, when
    the target and the value are flat and of the same length."""
    if not isinstance(binding.statement, cst.SimpleStatementLine) or not isinstance(binding.value, (cst.Tuple, cst.List)):
        return None
    for small in binding.statement.body:
        if not isinstance(small, cst.Assign) or small.value is not binding.value:
            continue
        for target in small.targets:
            if not isinstance(target.target, (cst.Tuple, cst.List)):
                continue
            names = [e.value for e in target.target.elements]
            values = [e.value for e in binding.value.elements]
            flat = all(isinstance(e, cst.Element) for e in (*target.target.elements, *binding.value.elements))
            if flat and len(names) == len(values) and all(isinstance(n, cst.Name) for n in names):
                for target_name, value in zip(names, values):
                    if isinstance(target_name, cst.Name) and target_name.value == name:
                        return value
    return None


def _steps_itself(value: cst.BaseExpression | None, name: str) -> bool:
    """``w = w - lr * g``: arithmetic on the name's own value, which leaves a plain tensor plain (and makes a
    variable a tensor, which GF005 explains), so it adds nothing to what the name holds."""
    if isinstance(value, cst.BinaryOperation):
        return any(dotted(side) == name for side in (value.left, value.right))
    return False


def _kind_of_attribute(analysis, node: cst.Attribute, tape, depth) -> tuple[str | None, cst.CSTNode]:
    """``self.w``: what the class's methods assign to it."""
    klass = analysis.enclosing_class(node)
    if klass is None:
        return None, node
    name = dotted(node)
    assert name is not None, "called for self.attr"
    values = [v for v in self_attribute_values(analysis, klass, node.attr.value) if not _steps_itself(v, name)]
    if not values or any(analysis.is_call_to(c, *VARIABLE_MAKERS) for v in values for c in walk(v, cst.Call)):
        return None, node
    kinds = [_kind(analysis, value, tape, depth - 1) for value in values]
    if all(kind == TENSOR for kind, _ in kinds):
        return TENSOR, kinds[0][1]
    return None, node


def _kind_of_parameter(analysis, function: cst.FunctionDef, param: cst.Param, depth) -> tuple[str | None, cst.CSTNode]:
    """A parameter holds a plain tensor when every call of the function in the module passes one."""
    if depth < 0 or analysis.enclosing_class(function) is not None or param.star:
        return None, param
    plain = list(function.params.posonly_params) + list(function.params.params)
    index = next((i for i, p in enumerate(plain) if p is param), None)
    kinds = []
    for site in analysis.calls():
        if not (isinstance(site.func, cst.Name) and site.func.value == function.name.value):
            continue
        if analysis.is_inside(site, function):
            return None, param  # recursion: too unclear
        argument = keyword(site, param.name.value)
        if argument is None and index is not None:
            argument = positional(site, index)
        if argument is None or any(a.star for a in site.args):
            return None, param
        kinds.append(_kind(analysis, argument, None, depth))
    if kinds and all(kind == TENSOR for kind, _ in kinds):
        return TENSOR, kinds[0][1]
    return None, param


def _is_dataset(analysis: ModuleAnalysis, node: cst.BaseExpression | None, depth: int) -> bool:
    while node is not None and depth >= 0:
        if isinstance(node, cst.Call):
            qualname = analysis.qualname(node.func) or ""
            if qualname.startswith("tensorflow.data."):
                return True
            if isinstance(node.func, cst.Name) and node.func.value in {"enumerate", "iter", "next"}:
                node = positional(node, 0)
            elif isinstance(node.func, cst.Attribute):
                node = node.func.value
            else:
                return False
        elif isinstance(node, cst.Attribute):
            node = node.value
        elif isinstance(node, cst.Name):
            values = values_of(analysis, node)
            return values is not None and bool(values) and all(_is_dataset(analysis, v, depth - 1) for v in values)
        else:
            return False
    return False


def _integer_call(analysis: ModuleAnalysis, call: cst.Call, qualname: str) -> bool:
    dtype = parameter(analysis, call, "dtype")
    if dtype is not None:
        return _no_gradient_dtype(analysis, dtype)
    if qualname in FLOAT_BY_DEFAULT or qualname in TENSOR_CONVERTERS:
        return False
    value = positional(call, 0)
    return value is not None and _integer_literal(value)


def _no_gradient_dtype(analysis: ModuleAnalysis, dtype: cst.BaseExpression) -> bool:
    """Integers and booleans, and strings: a watch gives none of them a gradient, so no watch is missing."""
    return integer_dtype(analysis, dtype) or dtype_name(analysis, dtype) == "string"


def _integer_literal(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Integer):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _integer_literal(node.expression)
    if isinstance(node, (cst.List, cst.Tuple)):
        return bool(node.elements) and all(_integer_literal(e.value) for e in node.elements)
    return False


def _describe(analysis: ModuleAnalysis, origin: cst.CSTNode) -> str:
    if isinstance(origin, cst.Call):
        qualname = analysis.qualname(origin.func) or analysis.code(origin.func)
        short = qualname.replace("tensorflow.", "tf.")
        return f"made by `{short}` on {analysis.line_reference(origin)}"
    if isinstance(origin, cst.For):
        return f"a batch of the dataset looped over on {analysis.line_reference(origin)}"
    if isinstance(origin, cst.Param):
        return "every call passes a tensor"
    return f"from {analysis.line_reference(origin)}"


def _insert_watches(analysis: ModuleAnalysis, tape: TapeBlock, watched: list[cst.BaseExpression], names: list[str]):
    """The watch operator's insertion, with what each statement of the block binds (also in nested statements)."""
    scope = analysis.statements(analysis.scope_of(tape.node))

    def bound(statement):
        return set().union(*(inner.assigned for inner in scope
                             if inner.node is statement or analysis.is_inside(inner.node, statement)))

    changed = with_watches(tape.node, tape.name, watched, names, bound)
    return None if changed is None else {tape.node: changed}
