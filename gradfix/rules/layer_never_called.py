from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NEVER_USED
from gradfix.messages import brief
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import ModuleAnalysis
from gradfix.static.api import (
    DYNAMIC_ATTRIBUTE_CALLS,
    DYNAMIC_ATTRIBUTE_METHODS,
    DYNAMIC_ATTRIBUTES,
    LAYER_BASES,
    LAYER_WEIGHTS,
    NOT_A_LAYER_CALL,
    NOT_LAYERS,
    SEQUENTIAL,
    WEIGHTLESS_LAYER_PREFIXES,
    WEIGHTLESS_LAYER_SUFFIXES,
    WEIGHTLESS_LAYERS,
)
from gradfix.static.bindings import values_of
from gradfix.static.sources import source_elements
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context, suggested
from gradfix.transforms._unread import lone_binding
from gradfix.transforms.read_dropped_output import ReadDroppedOutput


class LayerNeverCalled(Rule):
    """Finds a layer that is built but never run on the way to the loss: a layer made in the
    `__init__` of a subclassed `keras.Model` or `keras.layers.Layer` (`self.dense2 = Dense(64)`)
    that no method of the class ever calls, or a layer made in a script whose variables are passed
    to `tape.gradient` (also under another name, `e_vars = encoder.trainable_variables`) although it
    is never called.

    ## Why gradients vanish
    A layer's variables enter the loss only through its call. A layer that is never called either
    stays unbuilt (Keras warns that the model "looks like it has unbuilt state", and the layer
    trains nothing) or, when it was built explicitly (in the model's `build`, by `layer.build(shape)`),
    has variables that the loss never reads: their gradients are `None`, and Keras warns
    `Gradients do not exist for variables [...]`, or raises `No gradients provided for any variable`
    when they are all there is.

    ## Example
    ```python
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense1 = keras.layers.Dense(32, activation="relu")
            self.dense2 = keras.layers.Dense(32, activation="relu")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.dense1(x))
    ```

    ## Fix
    There is no automatic fix, because only the author knows where the layer belongs:
    ```python
        def call(self, x):
            return self.out(self.dense2(self.dense1(x)))
    ```
    or remove the layer, or leave its variables out of the ones that are trained.

    A layer output that `call` computes and never reads, reading its own input again after it
    (`output = self.linear3(output)` then `return self.linear4(x)`), is the same bug: the layers
    that made it are called, but their output never reaches the loss. The suggestion reads it there.

    A layer that is neither called nor built explicitly has no variables at all (Keras builds layers
    on their first call): it trains nothing, which is reported as information.

    ## Fix safety
    Display-only: calling the layer changes the model, removing it changes its saved weights, and
    excluding its variables changes what is trained; each is a decision about the model, not a repair.

    ## When not to fix
    Layers used through a list attribute (`self.blocks = [...]` then `for block in self.blocks`), in a
    helper method, in a subclass's `call`, or reached dynamically (`getattr`, `self.layers`,
    `self.__dict__`) are left alone, and so are layers without variables (`Dropout`, `Flatten`,
    pooling), whose absence costs no gradient, and `keras.layers.InputSpec`, which is not a layer.
    A class without a `call` of its own (a functional model built in `__init__`) is not judged.
    """

    code = "GF011"
    name = "layer-never-called"
    summary = "A layer is built but never called, so its variables get no gradient"
    applicability = Applicability.DISPLAY_ONLY
    severity = Severity.WARNING
    categories = (NEVER_USED,)
    needles = ("GradientTape", "def call")

    VALID = [
        """
        from tensorflow import keras
        class Tower(keras.Model):
            def __init__(self):
                super().__init__()
                self.blocks = [keras.layers.Dense(16, activation="relu") for _ in range(3)]
                self.out = keras.layers.Dense(1)

            def call(self, x):
                for block in self.blocks:
                    x = block(x)
                return self.out(x)
        """,
        """
        from tensorflow import keras
        class Encoder(keras.layers.Layer):
            def __init__(self):
                super().__init__()
                self.proj = keras.layers.Dense(16)
                self.norm = keras.layers.LayerNormalization()
                self.dropout = keras.layers.Dropout(0.1)

            def _project(self, x):
                return self.norm(self.proj(x))

            def call(self, x):
                return self._project(x)
        """,
        """
        import tensorflow as tf
        class Net(tf.keras.Model):
            def __init__(self, depth):
                super().__init__()
                self.depth = depth
                self.layer_0 = tf.keras.layers.Dense(8)
                self.layer_1 = tf.keras.layers.Dense(8)

            def call(self, x):
                for i in range(self.depth):
                    x = getattr(self, f"layer_{i}")(x)
                return x
        """,
        """
        import tensorflow as tf
        class Base(tf.keras.Model):
            def __init__(self):
                super().__init__()
                self.body = tf.keras.layers.Dense(8)

        class Child(Base):
            def call(self, x):
                return self.body(x)
        """,
        """
        import tensorflow as tf
        encoder = tf.keras.layers.Dense(8)
        head = tf.keras.layers.Dense(1)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((head(encoder(x)) - y) ** 2)
        grads = tape.gradient(loss, encoder.trainable_variables + head.trainable_variables)
        """,
        # Look-alike: a layer called and its kernel read again (tied weights).
        """
import tensorflow as tf
from tensorflow import keras

class Tied(keras.Model):
    def __init__(self):
        super().__init__()
        self.encoder = keras.layers.Dense(32)
        self.decoder_bias = tf.Variable(tf.zeros([784]))

    def call(self, x):
        h = self.encoder(x)
        return tf.matmul(h, self.encoder.kernel, transpose_b=True) + self.decoder_bias
""",
        # Look-alike: a layer never called whose kernel and bias the forward pass reads directly.
        """
import tensorflow as tf
from tensorflow import keras

class Projector(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(16)
        self.dense.build((None, 8))

    def call(self, x):
        return tf.matmul(x, self.dense.kernel) + self.dense.bias
""",
        # Look-alike: layers in a list, called in a loop.
        """
from tensorflow import keras

class Stack(keras.Model):
    def __init__(self):
        super().__init__()
        self.blocks = [keras.layers.Dense(32, activation="relu") for _ in range(3)]
        self.out = keras.layers.Dense(1)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.out(x)
""",
        # Look-alike: in a script, a layer's kernel read directly on the way to the loss.
        """
import tensorflow as tf

dense = tf.keras.layers.Dense(16)
dense.build((None, 8))
with tf.GradientTape() as tape:
    y = tf.matmul(x, dense.kernel) + dense.bias
    loss = tf.reduce_mean(tf.square(y))
grads = tape.gradient(loss, dense.trainable_variables)
""",
        # Look-alike: a model's variables held under another name, and the model called on the way to the loss.
        """
import tensorflow as tf

encoder = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(2)])
e_vars = encoder.trainable_variables
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(encoder(x))
grads = tape.gradient(loss, e_vars)
""",
    ]

    INVALID = [
        Invalid(
            """
            import tensorflow as tf
            class MyModel(tf.keras.Model):
                def call(self, x):
                    output = self.linear1(x)
                    output = self.linear2(output)
                    output = self.linear3(output)
                    return self.linear4(x)
            """
        ),
        Invalid(
            """
            from tensorflow import keras
            class Classifier(keras.Model):
                def __init__(self):
                    super().__init__()
                    self.dense1 = keras.layers.Dense(32, activation="relu")
                    self.dense2 = keras.layers.Dense(32, activation="relu")
                    self.out = keras.layers.Dense(1)

                def build(self, input_shape):
                    self.dense1.build(input_shape)
                    self.dense2.build((None, 32))
                    self.out.build((None, 32))

                def call(self, x):
                    return self.out(self.dense1(x))
            """
        ),
        Invalid(
            """
            import tensorflow as tf
            class ResidualBlock(tf.keras.layers.Layer):
                def __init__(self, units):
                    super().__init__()
                    self.inner = tf.keras.layers.Dense(units, activation="relu")
                    self.shortcut = tf.keras.layers.Dense(units)

                def call(self, x):
                    return x + self.inner(x)
            """
        ),
        Invalid(
            """
            import tensorflow as tf
            encoder = tf.keras.layers.Dense(8)
            aux = tf.keras.layers.Dense(8)
            head = tf.keras.layers.Dense(1)
            aux.build((None, 4))
            variables = encoder.trainable_variables + aux.trainable_variables + head.trainable_variables
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((head(encoder(x)) - y) ** 2)
            grads = tape.gradient(loss, variables)
            """
        ),
        # Variant: the variables of a model that is never called, held under another name.
        Invalid(
            """
import tensorflow as tf

generator = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(4)])
style_encoder = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(2)])
with tf.GradientTape(persistent=True) as tape:
    loss = tf.reduce_mean(tf.square(generator(x) - x))
g_grads = tape.gradient(loss, generator.trainable_variables)
e_vars = style_encoder.trainable_variables
e_grads = tape.gradient(loss, e_vars)
""",
            None,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        yield from self._class_layers(analysis)
        yield from self._script_layers(analysis)
        yield from self._dropped_outputs(analysis)

    # --- layers whose output `call` computes and then drops --------------------------------------
    def _dropped_outputs(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        operator, context = ReadDroppedOutput(), Context.of_analysis(analysis)
        for class_node in _keras_classes(analysis):
            for method in _methods(class_node, "call"):
                for statement in walk(method, cst.SimpleStatementLine):
                    rewrite = next(operator.rewrite(statement, context), None)
                    if rewrite is None:
                        continue
                    name = lone_binding(statement)[0]
                    (reader,) = rewrite.replacements
                    yield Report(
                        node=statement,
                        message=f"`{brief(name, 28)}` is computed by layers in `call` and never read",
                        detail=(
                            f"`call` computes `{name}` through layers, then reads its own input again instead "
                            f"(`{brief(analysis.code(reader).strip(), 40)}`): the layers that make `{name}` "
                            f"never reach the output and get no gradient. Read `{name}` there, or remove the layers."
                        ),
                        related=[(reader, "reads the input again instead")],
                        **suggested(rewrite),
                    )

    # --- layers kept as attributes of a subclassed model or layer ------------------------------
    def _class_layers(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        classes = _keras_classes(analysis)
        for class_node in classes:
            family = _family(class_node, classes)
            if not any(_defines(member, "call", "__call__") for member in family):
                continue
            if any(_reaches_layers_dynamically(member) for member in family):
                continue
            for assign, attribute, made in _layer_attributes(analysis, class_node, classes):
                if _named_in_strings(family, attribute) or _attribute_used(analysis, attribute):
                    continue
                built = _built_explicitly(analysis, attribute) or _makes_own_weights(made, classes)
                consequence = (
                    "so its variables never reach the loss and get no gradient"
                    if built
                    else "so it is never built and trains nothing (Keras warns that the model has unbuilt state)"
                )
                yield Report(
                    node=made,
                    message=f"The layer `self.{brief(attribute, 28)}` is made but never called",
                    detail=(
                        f"`self.{attribute}` is made here but `call` never runs it (nor does any other method), "
                        f"{consequence}. Call it in `call`, remove it, or leave its variables out of the ones you train."
                    ),
                    related=[(f, "the forward pass that skips it") for member in family for f in _methods(member, "call")],
                    severity=Severity.WARNING if built else Severity.INFO,
                )

    # --- layers in a script whose variables are listed as gradient sources ----------------------
    def _script_layers(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        reported: set[int] = set()
        local_classes = _keras_classes(analysis)
        for call in analysis.gradient_calls:
            if call.sources is None:
                continue
            for part in source_elements(analysis, call.sources):
                if isinstance(part, cst.Name):
                    # `e_vars = style_encoder.trainable_variables` and then `tape.gradient(loss, e_vars)`
                    aliased = values_of(analysis, part)
                    if aliased and len(aliased) == 1 and isinstance(aliased[0], cst.Attribute):
                        part = aliased[0]
                if not (
                    isinstance(part, cst.Attribute)
                    and part.attr.value in NOT_A_LAYER_CALL
                    and isinstance(part.value, cst.Name)
                ):
                    continue
                values = values_of(analysis, part.value)
                if not values or len(values) != 1 or not _makes_weighted_layer(analysis, values[0], local_classes):
                    continue
                made = values[0]
                assert isinstance(made, cst.Call), "_makes_weighted_layer holds only for calls"
                name = part.value.value
                if id(made) in reported or _name_used(analysis, name):
                    continue
                reported.add(id(made))
                built = (_built_explicitly(analysis, name, attribute=False) or _makes_own_weights(made, local_classes)
                         or _built_from_input(analysis, made))
                consequence = (
                    "they never reach the loss and get no gradient"
                    if built
                    else "it is never built, so the list is empty and it trains nothing"
                )
                yield Report(
                    node=made,
                    message=f"The layer `{brief(name, 28)}` is never called, yet its variables are trained",
                    detail=(
                        f"`{name}` is never called, yet its variables are passed to `{call.tape_name}.gradient`: "
                        f"{consequence}. Call `{name}` in the forward pass, remove it, or leave "
                        f"`{name}.{part.attr.value}` out of the sources."
                    ),
                    related=[(part, "its variables are listed here")],
                    severity=Severity.WARNING if built else Severity.INFO,
                )


def _keras_classes(analysis: ModuleAnalysis) -> list[cst.ClassDef]:
    classes = [c for c in walk(analysis.module, cst.ClassDef)]
    found: list[cst.ClassDef] = []
    names: set[str] = set()
    changed = True
    while changed:
        changed = False
        for class_node in classes:
            if class_node in found:
                continue
            for base in class_node.bases:
                qualname = analysis.qualname(base.value)
                local = isinstance(base.value, cst.Name) and base.value.value in names
                if qualname in LAYER_BASES or local:
                    found.append(class_node)
                    names.add(class_node.name.value)
                    changed = True
                    break
    return found


def _family(class_node: cst.ClassDef, classes: list[cst.ClassDef]) -> list[cst.ClassDef]:
    """The class with its ancestors and descendants among the module's own classes."""
    by_name = {c.name.value: c for c in classes}
    family = {class_node}
    changed = True
    while changed:
        changed = False
        for other in classes:
            if other in family:
                continue
            bases = {b.value.value for b in other.bases if isinstance(b.value, cst.Name)}
            parents = {b.value.value for member in family for b in member.bases if isinstance(b.value, cst.Name)}
            if bases & {m.name.value for m in family} or (other.name.value in parents and by_name.get(other.name.value) is other):
                family.add(other)
                changed = True
    return list(family)


def _methods(class_node: cst.ClassDef, *names: str) -> list[cst.FunctionDef]:
    body = class_node.body.body if isinstance(class_node.body, cst.IndentedBlock) else ()
    return [s for s in body if isinstance(s, cst.FunctionDef) and s.name.value in names]


def _defines(class_node: cst.ClassDef, *names: str) -> bool:
    return bool(_methods(class_node, *names))


def _reaches_layers_dynamically(class_node: cst.ClassDef) -> bool:
    if _defines(class_node, *DYNAMIC_ATTRIBUTE_METHODS):
        return True
    for node in walk(class_node, cst.Call):
        if isinstance(node.func, cst.Name) and node.func.value in DYNAMIC_ATTRIBUTE_CALLS:
            return True
    for node in walk(class_node, cst.Attribute):
        if node.attr.value in DYNAMIC_ATTRIBUTES and isinstance(node.value, cst.Name) and node.value.value == "self":
            return True
    return False


def _layer_attributes(analysis: ModuleAnalysis, class_node: cst.ClassDef, classes) -> Iterator[tuple[cst.CSTNode, str, cst.Call]]:
    for function in _methods(class_node, "__init__", "build"):
        for node in walk(function, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            if len(targets) != 1 or node.value is None:
                continue
            target = targets[0]
            if not (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and target.value.value == "self"):
                continue
            if _makes_weighted_layer(analysis, node.value, classes):
                yield node, target.attr.value, node.value


def _makes_weighted_layer(analysis: ModuleAnalysis, node: cst.BaseExpression, local_classes) -> bool:
    if not isinstance(node, cst.Call):
        return False
    if isinstance(node.func, cst.Name) and node.func.value in {c.name.value for c in local_classes}:
        return True
    qualname = analysis.qualname(node.func) or ""
    if qualname in SEQUENTIAL:
        return True
    if not qualname.startswith(("keras.layers.", "keras.applications.")):
        return False
    last = qualname.rsplit(".", 1)[-1]
    if not last[:1].isupper() or last in WEIGHTLESS_LAYERS or last in NOT_LAYERS:
        return False
    return not (last.startswith(WEIGHTLESS_LAYER_PREFIXES) or last.endswith(WEIGHTLESS_LAYER_SUFFIXES))


def _attribute_used(analysis: ModuleAnalysis, attribute: str) -> bool:
    """Whether ``.attribute`` is read anywhere in the module other than to assign it or to build it."""
    for node in walk(analysis.module, cst.Attribute):
        if node.attr.value != attribute:
            continue
        parent = analysis.parent(node)
        if isinstance(parent, (cst.AssignTarget, cst.AnnAssign)) and getattr(parent, "target", None) is node:
            continue
        if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in {"build", "built"}:
            continue
        return True
    return False


def _named_in_strings(family: list[cst.ClassDef], attribute: str) -> bool:
    for member in family:
        for node in walk(member, cst.SimpleString):
            if node.evaluated_value == attribute:
                return True
    return False


def _name_used(analysis: ModuleAnalysis, name: str) -> bool:
    """Whether ``name`` is read anywhere other than to assign it or to reach its variables."""
    for node in walk(analysis.module, cst.Name):
        if node.value != name:
            continue
        parent = analysis.parent(node)
        if isinstance(parent, cst.AssignTarget) and parent.target is node:
            continue
        if isinstance(parent, cst.Attribute):
            if parent.attr is node:
                continue
            if parent.value is node and parent.attr.value in NOT_A_LAYER_CALL:
                if parent.attr.value in LAYER_WEIGHTS and not _in_sources(analysis, parent):
                    return True  # `tf.matmul(x, dense.kernel)` takes the weight into the computation without a call
                continue
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            continue
        return True
    return False


def _in_sources(analysis: ModuleAnalysis, node: cst.CSTNode) -> bool:
    return any(g.sources is not None and analysis.is_inside(node, g.sources) for g in analysis.gradient_calls)


def _built_explicitly(analysis: ModuleAnalysis, name: str, attribute: bool = True) -> bool:
    """Whether ``<...>.name.build(...)`` (or ``name.build(...)``) is called anywhere in the module."""
    for call in walk(analysis.module, cst.Call):
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "build"):
            continue
        owner = func.value
        if attribute and isinstance(owner, cst.Attribute) and owner.attr.value == name:
            return True
        if not attribute and isinstance(owner, cst.Name) and owner.value == name:
            return True
    return False


def _built_from_input(analysis: ModuleAnalysis, made: cst.Call) -> bool:
    """``Sequential([Input(shape=...), ...])`` (or a first layer given ``input_shape``): built where it is made."""
    if analysis.qualname(made.func) not in SEQUENTIAL or not made.args or not isinstance(made.args[0].value, (cst.List, cst.Tuple)):
        return False
    elements = made.args[0].value.elements
    first = elements[0].value if elements else None
    if not isinstance(first, cst.Call):
        return False
    if (analysis.qualname(first.func) or "").rsplit(".", 1)[-1] in ("Input", "InputLayer"):
        return True
    return any(arg.keyword is not None and arg.keyword.value in ("input_shape", "input_dim") for arg in first.args)


def _makes_own_weights(made: cst.Call, classes: list[cst.ClassDef]) -> bool:
    """A layer class of this module that creates variables in its ``__init__``."""
    if not isinstance(made.func, cst.Name):
        return False
    for class_node in classes:
        if class_node.name.value != made.func.value:
            continue
        for init in _methods(class_node, "__init__"):
            for call in walk(init, cst.Call):
                func = call.func
                if isinstance(func, cst.Attribute) and func.attr.value in {"add_weight", "Variable"}:
                    return True
    return False

