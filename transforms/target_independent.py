"""GF014 target-independent."""

from __future__ import annotations

from typing import Iterator

import libcst as cst
import libcst.matchers as m

from gradfix.categories import TARGET_INDEPENDENT
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Report, Rule
from gradfix.static.analysis import ModuleAnalysis, names_read

_CONSTANT_MAKERS = {"tensorflow.constant", "tensorflow.ones", "tensorflow.zeros", "tensorflow.fill"}


class TargetIndependent(Rule):
    """Finds a gradient asked of a value that depends on nothing the tape watched: a constant
    (`tf.constant(3.0)`, a literal) or a tensor made only from constants, differentiated with
    respect to variables or watched tensors.

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
            if not isinstance(target, cst.Name):
                continue
            name = target.value
            statement = analysis.statement_index(gradient.statement)
            if statement is None:
                continue
            definitions = analysis.reaching_definitions(name, statement, gradient.scope)
            if not definitions or not all(self._constant(analysis, d.node, name) for d in definitions):
                continue
            yield Report(
                node=target,
                message=f"`{name}` is a constant: it depends on nothing the tape watched, so every gradient of it is None "
                "(tape.watch would not change that)",
            )

    def _constant(self, analysis: ModuleAnalysis, node: cst.CSTNode, name: str) -> bool:
        for assign in m.findall(node, m.Assign()):
            if not any(m.matches(t.target, m.Name(name)) for t in assign.targets):
                continue
            value = assign.value
            if isinstance(value, (cst.Integer, cst.Float)):
                return True
            if isinstance(value, cst.Call) and analysis.qualname(value.func) in _CONSTANT_MAKERS:
                # only literals and imported names (a dtype, under whatever alias), no value of the program's own
                return all(name in analysis.imports.aliases for arg in value.args for name in names_read(arg.value))
        return False
