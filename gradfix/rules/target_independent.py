"""GF014 target-independent."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import TARGET_INDEPENDENT
from gradfix.messages import brief
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Report, Rule
from gradfix.static import tapeflow
from gradfix.static.analysis import GradientCall, ModuleAnalysis, Statement, argument, lone_assignment, names_read
from gradfix.static.api import CONSTANT_MAKERS, LIBRARY_PREFIXES
from gradfix.static.sources import Source, resolve_sources
from gradfix.static.tree import walk

# library code that computes only from its arguments: what it returns reaches a variable only through them
_PURE_BUILTINS = {"float", "int", "abs", "len", "min", "max", "sum", "round"}


class TargetIndependent(Rule):
    """Finds a gradient asked of a value that depends on nothing the tape watched: a constant
    (`tf.constant(3.0)`, a literal) or a tensor made only from constants, differentiated with
    respect to variables or watched tensors; or a loss computed only from the data
    (`tf.reduce_mean(tf.square(labels - features))`) while the model's prediction goes unused.
    The second is reported only when every step on the way to the target is plain TensorFlow or
    NumPy arithmetic, a Keras loss object (also one held on `self`: made in `__init__`, or given to
    an overridden `compile` by every call of it in the module, as `self.loss_fn`), or a function of
    the module that runs no model and reads no source: a call the analysis cannot see into could
    reach the variables.
    A gradient asked with `unconnected_gradients=tf.UnconnectedGradients.ZERO` is not reported: it is
    a tensor of zeros, not `None`, which is the exact gradient of a target the sources do not reach.

    ## Why gradients vanish
    A gradient measures how the target changes with each source. A target computed without any of
    them does not change at all, so every gradient is `None`, and `tape.watch` on the sources does not
    change that: there is no path from them to the target.

    ## Example
    ```python
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.constant(3.0)
    dy_dx = tape.gradient(y, x)
    ```

    ## Fix
    Compute the target from the sources:
    ```python
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = 3.0 * x
    dy_dx = tape.gradient(y, x)
    ```

    ## Fix safety
    Display-only. What the target should be computed from is the program's meaning, which gradfix
    cannot guess; it names the target and the sources, and `gradfix diagnose` shows that the run
    agrees (the target depends on nothing the tape watched).
    """

    code = "GF014"
    name = "target-independent"
    summary = "The gradient's target depends on nothing the tape watched, so every gradient is None"
    applicability = Applicability.DISPLAY_ONLY
    unsafe_reason = "what the target should be computed from is the program's meaning; gradfix cannot guess it"
    severity = Severity.ERROR
    categories = (TARGET_INDEPENDENT,)

    VALID = [
        """
        import tensorflow as tf
        x = tf.constant(2.0)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = x * x
        dy_dx = tape.gradient(y, x)
        """,
        # a constant added to a computed value still depends on the sources
        """
        import tensorflow as tf
        def step(model, x):
            with tf.GradientTape() as tape:
                offset = tf.constant(1.0)
                loss = tf.reduce_mean(model(x)) + offset
            return tape.gradient(loss, model.trainable_variables)
        """,
        # the prediction made by a helper that runs the model
        """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])

def forward(x):
    return model(x, training=True)

def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(y - forward(x)))
    return tape.gradient(loss, model.trainable_variables)
""",
        # the prediction kept in a list the slice of `loss` does not assign
        """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])

def train_step(x, y):
    outputs = []
    with tf.GradientTape() as tape:
        outputs.append(model(x, training=True))
        loss = tf.reduce_mean(tf.square(y - outputs[0]))
    return tape.gradient(loss, model.trainable_variables)
""",
        # the prediction left on `self` by a method
        """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])

    def forward(self, x):
        self.last = self.model(x, training=True)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            self.forward(x)
            loss = tf.reduce_mean(tf.square(y - self.last))
        return tape.gradient(loss, self.model.trainable_variables)
""",
        # the model's regularisation losses
        """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1, kernel_regularizer="l2")])

def regularize(x):
    with tf.GradientTape() as tape:
        model(x)
        loss = tf.add_n(model.losses)
    return tape.gradient(loss, model.trainable_variables)
""",
        # Look-alike: the target made from the watched tensor by a helper.
        """
import tensorflow as tf

def square(t):
    return t * t

x = tf.constant(2.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    y = square(x)
dy_dx = tape.gradient(y, x)
""",
    ]
    INVALID = [
        Invalid(
            """
            import tensorflow as tf
            x = tf.constant(2.0)
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.constant(3.0)
            dy_dx = tape.gradient(y, x)
            """
        ),
        Invalid(
            """
            import tensorflow as tf
            def step(model):
                with tf.GradientTape() as tape:
                    loss = 0.0
                return tape.gradient(loss, model.trainable_variables)
            """
        ),
        # the loss reads the data only, while the prediction goes unused
        Invalid(
            """
import tensorflow as tf

features = tf.random.normal((8, 4))
labels = tf.random.normal((8, 1))
model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)

for epoch in range(2):
    with tf.GradientTape() as tape:
        predictions = model(features, training=True)
        loss = tf.reduce_mean(tf.square(labels - features))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""",
            None,
        ),
        # raw variables in a step function, with a Keras loss object and a loss helper of the module
        Invalid(
            """
import tensorflow as tf

loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
w = tf.Variable(tf.random.normal((4, 3)))
b = tf.Variable(tf.zeros((3,)))

def compute_loss(y_true, y_pred):
    return loss_fn(y_true, y_pred)

def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = x @ w + b
        loss = compute_loss(y, tf.zeros((8, 3)))
    return tape.gradient(loss, [w, b])
""",
            None,
        ),
        # Variant: TensorFlow imported under another name.
        Invalid(
            """
import tensorflow as T
x = T.constant(2.0)
with T.GradientTape() as tape:
    tape.watch(x)
    y = T.constant(3.0)
dy_dx = tape.gradient(y, x)
""",
            None,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        for gradient in analysis.gradient_calls:
            target = gradient.target
            if not isinstance(target, cst.Name) or analysis.zeros_when_unconnected(gradient):
                continue
            name = target.value
            statement = analysis.statement_index(gradient.statement)
            if statement is None:
                continue
            definitions = analysis.reaching_definitions(name, statement, gradient.scope)
            if not definitions:
                continue
            if all(self._constant(analysis, d.node, name) for d in definitions):
                yield Report(
                    node=target,
                    message=f"The gradient's target `{brief(name, 28)}` is a constant",
                    detail=f"`{name}` is a constant: it depends on nothing the tape watched, so every gradient of it is None "
                    "(`tape.watch` would not change that). Decide what it should be computed from.",
                )
                continue
            sources = _unreached_sources(analysis, gradient)
            if sources:
                yield Report(
                    node=target,
                    message=f"The gradient's target `{brief(name, 28)}` depends on none of its sources",
                    detail=f"`{name}` is computed from none of the gradient's sources ({tapeflow.sources_label(sources)}): "
                    "nothing on its way from the inputs runs the model or reads a variable, so every gradient of it is None. "
                    "Compute it from the model's output.",
                )

    def _constant(self, analysis: ModuleAnalysis, node: cst.CSTNode, name: str) -> bool:
        for assign in walk(node, cst.Assign):
            if not any(isinstance(t.target, cst.Name) and t.target.value == name for t in assign.targets):
                continue
            value = assign.value
            if isinstance(value, (cst.Integer, cst.Float)):
                return True
            if isinstance(value, cst.Call) and analysis.qualname(value.func) in CONSTANT_MAKERS:
                # only literals and imported names (a dtype, under whatever alias), no value of the program's own
                return all(name in analysis.imports.aliases for arg in value.args for name in names_read(arg.value))
        return False


def _unreached_sources(analysis: ModuleAnalysis, gradient: GradientCall) -> list[Source]:
    """The sources, when the target's backward slice provably touches none of them; otherwise nothing.

    Provably: every statement on the way is read whole by the slice (no call that could run the model
    through a name the slice does not follow, no attribute of a program object, no object changed in
    place by a statement the slice leaves out).
    """
    if gradient.tape is None or not isinstance(gradient.target, cst.Name):
        return []
    sources = resolve_sources(analysis, gradient.sources, gradient.scope)
    if not sources:
        return []
    flow = analysis.backward_slice(gradient.target, gradient.scope)
    if not flow:
        return []
    heads = {source.name.split(".")[0] for source in sources}
    for statement in flow:
        if _reads_heads(analysis, statement, heads) or tapeflow.references(analysis, statement, sources):
            return []
        if not _inert(analysis, tapeflow.statement_code(statement.node), heads, 0):
            return []
    read = set().union(*(s.read for s in flow))
    in_flow = {s.index for s in flow}
    opened = tapeflow.tape_statement(analysis, gradient.tape)
    if opened is None:
        return []
    closed = tapeflow.last_index_inside(analysis, gradient.tape)
    for statement in analysis.statements(gradient.scope)[opened.index + 1: closed + 1]:
        # `outputs.append(model(x))` changes what `outputs` holds without assigning it
        if statement.index not in in_flow and statement.read & read and lone_assignment(statement.node) is None:
            return []
    return sources


def _reads_heads(analysis: ModuleAnalysis, statement: Statement, heads: set[str]) -> bool:
    """Whether the statement reads a name the sources start from (``self`` of ``self.discriminator``), other than
    as the object holding a loss it calls (``self.loss_fn(labels, labels)``)."""
    read = statement.read & heads
    if read != {"self"}:
        return bool(read)
    code = tapeflow.statement_code(statement.node)
    return not all(_calls_a_loss(analysis, name) for name in analysis.walk(code, cst.Name) if name.value == "self")


def _calls_a_loss(analysis: ModuleAnalysis, name: cst.CSTNode) -> bool:
    """``self`` of ``self.loss_fn(...)``, with ``self.loss_fn`` a loss (:func:`_loss_attribute`)."""
    attribute = analysis.parent(name)
    call = analysis.parent(attribute) if attribute is not None else None
    return (isinstance(attribute, cst.Attribute) and isinstance(call, cst.Call) and call.func is attribute
            and _loss_attribute(analysis, attribute))


def _loss_attribute(analysis: ModuleAnalysis, node: cst.CSTNode) -> bool:
    """``self.loss_fn`` holding a Keras loss object and nothing else: every value the class's methods assign to it
    is one made in sight (``keras.losses.BinaryCrossentropy()``), or a parameter of the method assigning it
    (``compile``) that every call of that method in the module fills with one."""
    if not (isinstance(node, cst.Attribute) and _is_name(node.value, "self")):
        return False
    klass = analysis.enclosing_class(node)
    if klass is None:
        return False
    # the model's index of assignments, not a matcher's visit of every method
    assigned = [(assign, method) for method in klass.body.body if isinstance(method, cst.FunctionDef)
                for assign in analysis.walk(method, cst.Assign) if _assigns_self_attribute(assign, node.attr.value)]
    return bool(assigned) and all(
        _loss_made(analysis, assign.value) or _loss_passed(analysis, klass, method, assign.value)
        for assign, method in assigned
    )


def _is_name(node: cst.CSTNode, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


def _assigns_self_attribute(assign: cst.Assign, attribute: str) -> bool:
    """``self.<attribute> = ...``, its one target."""
    if len(assign.targets) != 1:
        return False
    target = assign.targets[0].target
    return isinstance(target, cst.Attribute) and _is_name(target.value, "self") and target.attr.value == attribute


def _loss_made(analysis: ModuleAnalysis, value: cst.BaseExpression) -> bool:
    """A Keras loss object made here (``keras.losses.MeanSquaredError()``), or a module-level name bound to one."""
    if isinstance(value, cst.Name):
        return _loss_object(analysis, value.value)
    return isinstance(value, cst.Call) and ".losses." in (analysis.qualname(value.func) or "")


def _loss_passed(analysis: ModuleAnalysis, klass: cst.ClassDef, method: cst.FunctionDef, value: cst.BaseExpression) -> bool:
    """``value`` is a parameter of ``method`` that every call of it on an instance (``gan.compile(loss_fn=...)``)
    fills with a Keras loss object; at least one such call."""
    params = [p.name.value for p in method.params.params]
    if not isinstance(value, cst.Name) or value.value not in params[1:]:
        return False
    position = params.index(value.value) - 1
    sites = [call for call in analysis.calls() if isinstance(call.func, cst.Attribute) and call.func.attr.value == method.name.value
             and not analysis.is_inside(call, klass) and not isinstance(cst.ensure_type(call.func, cst.Attribute).value, cst.Call)]
    if not sites or any(arg.star for call in sites for arg in call.args):
        return False
    for call in sites:
        passed = argument(call, position, value.value)
        if passed is None or not _loss_made(analysis, passed):
            return False
    return True


def _inert(analysis: ModuleAnalysis, node: cst.CSTNode, heads: set[str], depth: int) -> bool:
    """Whether the code reaches no variable except through the names it reads."""
    imported = analysis.imports.aliases
    for attribute in walk(node, cst.Attribute):
        if _loss_attribute(analysis, attribute):
            continue
        root = attribute
        while isinstance(root, (cst.Attribute, cst.Subscript, cst.Call)):
            root = root.value if not isinstance(root, cst.Call) else root.func
        if not isinstance(root, cst.Name) or root.value not in imported:
            return False
    for call in walk(node, cst.Call):
        qualname = analysis.qualname(call.func) or ""
        if qualname.startswith(LIBRARY_PREFIXES) or _loss_attribute(analysis, call.func):
            continue
        if not isinstance(call.func, cst.Name):
            return False
        name = call.func.value
        if name in _PURE_BUILTINS and name not in analysis.imports.aliases and analysis.function_named(name) is None:
            continue
        if _loss_object(analysis, name):
            continue
        function = analysis.function_named(name)
        if function is None or depth > 1 or names_read(function.body) & heads:
            return False
        if not _inert(analysis, function.body, heads, depth + 1):
            return False
    return True


def _loss_object(analysis: ModuleAnalysis, name: str) -> bool:
    """A module-level name bound only to a Keras loss or metric object."""
    values = [
        assigned[1] for statement in analysis.module.body
        if (assigned := lone_assignment(statement)) is not None and assigned[0] == name
    ]
    return bool(values) and all(
        isinstance(value, cst.Call) and any(part in (analysis.qualname(value.func) or "") for part in (".losses.", ".metrics."))
        for value in values
    )
