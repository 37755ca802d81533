"""GF005 variable-rebound-to-tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import libcst as cst

from gradfix.categories import VARIABLE_REBOUND
from gradfix.messages import quoted_list
from gradfix.model import Applicability
from gradfix.rule import Invalid, Replacement, Report, Rule
from gradfix.rules._update_shape import UpdateShape
from gradfix.static.analysis import ModuleAnalysis, Statement, chains, in_loop, inside_tape, runs_whenever
from gradfix.static.api import LIBRARY_PREFIXES, VARIABLE_MAKERS
from gradfix.static.names import dotted
from gradfix.static.tree import walk

AUGMENTED_METHOD = {cst.SubtractAssign: "assign_sub", cst.AddAssign: "assign_add"}
# Methods of a variable that hand back its value as a tensor or an array.
VALUE_READS = frozenset({"numpy", "read_value", "value"})
# What a binding gives a name, as far as the fix's `assign` is concerned.
VARIABLE, NOT_A_VARIABLE, UNKNOWN = "variable", "not a variable", "unknown"
# The rebindings the fix turns into in-place updates, as (assignment, name or ``self.w``): once fixed,
# they keep the variable, so a proof looks through them.
InPlace = set[tuple[cst.CSTNode, str]]


class VariableReboundToTensor(Rule):
    """Finds a `tf.Variable` updated by rebinding its name, `w = w - lr * g` or
    `w -= lr * g`, in a training loop or training step, instead of being assigned
    in place.

    ## Why gradients vanish
    `w - lr * g` is a plain tensor. Binding it to `w` leaves the variable behind:
    the next step computes the loss from a constant tensor the tape does not
    watch, so `tape.gradient(loss, [w, b])` returns `None` for it (and
    `w - lr * None` then fails with a `TypeError`). Any list that still holds the
    original variable (`params = [w, b]`) stops being updated at all. (TensorFlow
    refuses `w -= e` on a `tf.Variable` outright, with a `RuntimeError` that names
    `assign_sub`; other variable types rebind silently.)

    ## Example
    ```python
    w = tf.Variable(tf.zeros([3, 1]))
    b = tf.Variable(0.0)
    for step in range(100):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(x @ w + b - y))
        dw, db = tape.gradient(loss, [w, b])
        w = w - lr * dw
        b -= lr * db
    ```

    ## Fix
    ```python
    w = tf.Variable(tf.zeros([3, 1]))
    b = tf.Variable(0.0)
    for step in range(100):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(x @ w + b - y))
        dw, db = tape.gradient(loss, [w, b])
        w.assign_sub(lr * dw)
        b.assign_sub(lr * db)
    ```
    `w = w - e` and `w -= e` become `w.assign_sub(e)`, `w = w + e`, `w = e + w` and
    `w += e` become `w.assign_add(e)`, where `e` holds the gradient (and so has the
    variable's shape); `w -= 0.1` becomes `w.assign(w - 0.1)`, since `assign_sub`
    does not broadcast. Any other `w = expr` that reads `w` (`w *= 0.9`,
    `w = tf.clip_by_value(w, -1, 1)`) becomes `w.assign(expr)`. Attributes made with
    `tf.Variable` or `add_weight` (`self.w = self.w - ...`) are handled the same way.

    ## Fix safety
    Safe only when both things the update assumes are proven. First, that the
    name holds the `tf.Variable` where it is rebound, on every path: each binding
    that can reach the statement, in any branch and around the loop, makes a
    variable (`tf.Variable`, `add_weight`) or is another rebinding this rule turns
    into an in-place update. A module-level name must also be bound to nothing
    else by any later statement of the module (a notebook's later cell, such as
    `W = W.numpy()` for export, may run before the training cell runs again) or by
    a function that declares it `global`; an attribute `self.w`, by no assignment
    in its class. Second, that the new value has the variable's shape and dtype,
    since `assign` and its kin do not broadcast: it is elementwise arithmetic
    (`+ - * / **`, `tf.clip_by_value`, `tf.maximum`, `tf.zeros_like`, ...) of the
    variable, its gradient (`dw` of `dw, db = tape.gradient(loss, [w, b])`,
    `grads[0]`, `tape.gradient(loss, w)`), numbers, names bound only to such
    values and parameters whose default is a number. Then the update computes the
    same values as the rebinding, and the variable is changed in place instead of
    replaced, which is what every later step (and every other holder of the
    variable) expects. Otherwise the fix is unsafe, with the reason: where the
    name holds a tensor or an array, `assign` raises `AttributeError`; where the
    value has another shape (`tf.concat([w, x], 0)`, a learning rate gradfix
    cannot see), it raises `ValueError`.

    ## When not to fix
    Variables made with `trainable=False` (counters, running statistics),
    rebinding a name that holds a plain tensor, `w = tf.Variable(w - ...)`, and a
    rebinding outside any loop or training step, when the name is not read inside
    a `GradientTape` afterwards (`w = w.numpy()` for export after training) are
    left alone. A name is reported only where a binding to the variable reaches
    the rebinding: once every path has bound it to something else, whatever it
    held before (an earlier notebook cell's `x = tf.Variable(3.0)`, then
    `x = tf.random.normal(...)` or `x = layer(inputs)` before the loop), it is not
    reported. Names that are only function parameters are left alone too, since
    gradfix cannot tell whether they hold variables.
    """

    code = "GF005"
    name = "variable-rebound-to-tensor"
    summary = "A tf.Variable rebound to a plain tensor (`w = w - lr * g`) gets no gradient next step"
    applicability = Applicability.SAFE
    categories = (VARIABLE_REBOUND,)
    needles = ("GradientTape",)

    VALID = [
        # In-place updates.
        """
        import tensorflow as tf

        w = tf.Variable(tf.zeros([3, 1]))
        for step in range(10):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(x @ w - y))
            dw = tape.gradient(loss, w)
            w.assign_sub(0.1 * dw)
        """,
        # A plain tensor rebound, a counter that is not trainable, and a new variable each step.
        """
        import tensorflow as tf

        w = tf.Variable(tf.zeros([3, 1]))
        step = tf.Variable(0, trainable=False)
        for x in batches:
            x = x / 255.0
            step = step + 1
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(x @ w))
            dw = tape.gradient(loss, w)
            w = tf.Variable(w - 0.1 * dw)
        """,
        # Rebinding after training, for export: not read by a tape any more.
        """
        import tensorflow as tf

        w = tf.Variable(tf.zeros([3, 1]))
        for step in range(10):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(x @ w - y))
            w.assign_sub(0.1 * tape.gradient(loss, w))
        w = w.numpy()
        w = w * 2
        """,
        # Look-alike: the update made in place with `assign_sub`.
        """
import tensorflow as tf

w = tf.Variable(tf.zeros([3, 1]))
for step in range(10):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w - y))
    dw = tape.gradient(loss, w)
    w.assign_sub(0.1 * dw)
""",
        # Look-alike: the new value wrapped in a new `tf.Variable`.
        """
import tensorflow as tf

w = tf.Variable(tf.zeros([3, 1]))
for step in range(10):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w - y))
    dw = tape.gradient(loss, w)
    w = tf.Variable(w - 0.1 * dw)
""",
    ]

    INVALID = [
        Invalid(
            """
            import tensorflow as tf

            w = tf.Variable(tf.zeros([3, 1]))
            b = tf.Variable(0.0)
            for step in range(10):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(x @ w + b - y))
                dw, db = tape.gradient(loss, [w, b])
                w = w - 0.1 * dw
                b -= (0.1 * db)
            """,
            """
            import tensorflow as tf

            w = tf.Variable(tf.zeros([3, 1]))
            b = tf.Variable(0.0)
            for step in range(10):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean(tf.square(x @ w + b - y))
                dw, db = tape.gradient(loss, [w, b])
                w.assign_sub(0.1 * dw)
                b.assign_sub(0.1 * db)
            """,
        ),
        Invalid(
            """
            import tensorflow as tf

            class Linear(tf.Module):
                def __init__(self):
                    self.w = tf.Variable(tf.ones([2, 1]))
                    self.b = tf.Variable(tf.zeros([1]))

                def train_step(self, x, y, lr=0.01):
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_mean(tf.square(x @ self.w + self.b - y))
                    dw, db = tape.gradient(loss, [self.w, self.b])
                    self.w = -lr * dw + self.w
                    self.b = tf.clip_by_value(self.b - lr * db, -1.0, 1.0)
                    return loss
            """,
            """
            import tensorflow as tf

            class Linear(tf.Module):
                def __init__(self):
                    self.w = tf.Variable(tf.ones([2, 1]))
                    self.b = tf.Variable(tf.zeros([1]))

                def train_step(self, x, y, lr=0.01):
                    with tf.GradientTape() as tape:
                        loss = tf.reduce_mean(tf.square(x @ self.w + self.b - y))
                    dw, db = tape.gradient(loss, [self.w, self.b])
                    self.w.assign_add(-lr * dw)
                    self.b.assign(tf.clip_by_value(self.b - lr * db, -1.0, 1.0))
                    return loss
            """,
        ),
        # A global updated in a step function; a tuple rebinding.
        Invalid(
            """
            import tensorflow as tf

            W = tf.Variable(tf.random.normal([4, 1]))
            c = tf.Variable(0.0)

            def step(x, y):
                global W, c
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean((x @ W + c - y) ** 2)
                gW, gc = tape.gradient(loss, [W, c])
                W, c = W - 0.05 * gW, c - 0.05 * gc
                W *= 0.999
            """,
            """
            import tensorflow as tf

            W = tf.Variable(tf.random.normal([4, 1]))
            c = tf.Variable(0.0)

            def step(x, y):
                global W, c
                with tf.GradientTape() as tape:
                    loss = tf.reduce_mean((x @ W + c - y) ** 2)
                gW, gc = tape.gradient(loss, [W, c])
                W.assign_sub(0.05 * gW)
                c.assign_sub(0.05 * gc)
                W.assign(W * 0.999)
            """,
        ),
        # A notebook whose later cell rebinds the weights for export: run again after it, the
        # training cell would find an array in `W`, so its `assign_sub` is not safe.
        Invalid(
            """
import tensorflow as tf

# In[1]:
W = tf.Variable(tf.random.normal([2, 1], stddev=0.01))
b = tf.Variable(tf.zeros([1]))

# In[2]:
for epoch in range(20):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x_train @ W + b - y_train))
    dW, db = tape.gradient(loss, [W, b])
    W = W - 0.1 * dW
    b.assign_sub(0.1 * db)

# In[3]:
W = W.numpy()
print("learned weights:", W.ravel())
""",
            """
import tensorflow as tf

# In[1]:
W = tf.Variable(tf.random.normal([2, 1], stddev=0.01))
b = tf.Variable(tf.zeros([1]))

# In[2]:
for epoch in range(20):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x_train @ W + b - y_train))
    dW, db = tape.gradient(loss, [W, b])
    W.assign_sub(0.1 * dW)
    b.assign_sub(0.1 * db)

# In[3]:
W = W.numpy()
print("learned weights:", W.ravel())
""",
            Applicability.UNSAFE,
        ),
        # Rebound to a tensor in one branch: on that path `w` holds no variable when the loop starts.
        Invalid(
            """
import numpy as np
import tensorflow as tf

def fit(x, y, init=None, steps=100, lr=0.1):
    w = tf.Variable(tf.zeros([x.shape[1], 1]))
    if init is not None:
        w = tf.constant(np.load(init))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = tf.reduce_mean(tf.square(x @ w - y))
        w = w - lr * tape.gradient(loss, w)
    return w
""",
            """
import numpy as np
import tensorflow as tf

def fit(x, y, init=None, steps=100, lr=0.1):
    w = tf.Variable(tf.zeros([x.shape[1], 1]))
    if init is not None:
        w = tf.constant(np.load(init))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = tf.reduce_mean(tf.square(x @ w - y))
        w.assign_sub(lr * tape.gradient(loss, w))
    return w
""",
            Applicability.UNSAFE,
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        variables = _Variables(analysis)
        if not variables.names and not variables.attributes:
            return
        found: dict[cst.Assign | cst.AugAssign, list[_Rebind]] = {}
        for node in _assignments(analysis.module):
            rebinds = [rebind for rebind in variables.rebinds(node) if variables.matters(rebind)]
            if rebinds:
                found[node] = rebinds
        # A rebinding of a name that certainly holds no variable there is no finding; dropping it may
        # leave another rebinding of the same name without the variable it relied on, so look again.
        while True:
            in_place: InPlace = {(node, rebind.chain) for node, rebinds in found.items() for rebind in rebinds}
            proofs = {(node, rebind.chain): variables.proof(node, rebind, in_place)
                      for node, rebinds in found.items() for rebind in rebinds}
            tensors = {key for key, proof in proofs.items() if proof.verdict == NOT_A_VARIABLE}
            if not tensors:
                break
            found = {node: kept for node, rebinds in found.items()
                     if (kept := [rebind for rebind in rebinds if (node, rebind.chain) not in tensors])}
        for node, rebinds in found.items():
            yield _report(analysis, node, rebinds, [proofs[(node, rebind.chain)] for rebind in rebinds])


@dataclass
class _Rebind:
    target: cst.BaseExpression  # the variable's name or ``self.w``
    chain: str
    value: cst.BaseExpression
    operator: cst.BaseAugOp | None  # for ``w -= e``


@dataclass
class _Proof:
    """Whether the name holds the variable where it is rebound, on every path (``VARIABLE``), certainly
    holds something else (``NOT_A_VARIABLE``), or may hold something else (``UNKNOWN``)."""

    chain: str
    verdict: str
    others: list[cst.CSTNode]  # the bindings to something other than a variable that may reach it


class _Variables:
    """The names and ``self`` attributes bound to trainable variables, and where."""

    def __init__(self, analysis: ModuleAnalysis):
        self.analysis = analysis
        self.names: dict[tuple[int, str], cst.CSTNode] = {}  # (id(scope), name) -> the tf.Variable call
        self.attributes: dict[tuple[int, str], cst.CSTNode] = {}  # (id(class), "self.w") -> the maker call
        for node in _assignments(analysis.module):
            if not isinstance(node, cst.Assign):
                continue
            for target in node.targets:
                for name_node, value in _pairs(target.target, node.value):
                    if not self._makes_variable(value):
                        continue
                    chain = dotted(name_node)
                    if isinstance(name_node, cst.Name):
                        self.names[(id(analysis.scope_of(node)), name_node.value)] = value
                    elif chain is not None and chain.startswith("self.") and chain.count(".") == 1:
                        owner = analysis.enclosing_class(node)
                        if owner is not None:
                            self.attributes[(id(owner), chain)] = value

    def _makes_variable(self, value: cst.BaseExpression) -> bool:
        if not isinstance(value, cst.Call):
            return False
        qualname = self.analysis.qualname(value.func)
        maker = qualname in VARIABLE_MAKERS or dotted(value.func) == "self.add_weight"
        return maker and not any(
            arg.keyword is not None and arg.keyword.value == "trainable" and dotted(arg.value) == "False"
            for arg in value.args
        )

    def is_variable(self, target: cst.BaseExpression, at: cst.CSTNode) -> bool:
        analysis = self.analysis
        chain = dotted(target)
        if isinstance(target, cst.Name):
            scope = analysis.scope_of(at)
            if (id(scope), chain) in self.names:
                return True
            return (id(analysis.module), chain) in self.names and chain in _globals_of(scope)
        owner = analysis.enclosing_class(at)
        return owner is not None and (id(owner), chain) in self.attributes

    def rebinds(self, node: cst.Assign | cst.AugAssign) -> Iterator[_Rebind]:
        if isinstance(node, cst.AugAssign):
            chain = dotted(node.target)
            if chain and self.is_variable(node.target, node):
                yield _Rebind(node.target, chain, node.value, node.operator)
            return
        if len(node.targets) != 1:
            return
        for target, value in _pairs(node.targets[0].target, node.value):
            chain = dotted(target)
            if chain is None or not self.is_variable(target, node):
                continue
            if chain not in chains(value) or self._makes_variable(value) or _method_of(value, chain):
                continue
            yield _Rebind(target, chain, value, None)

    def matters(self, rebind: _Rebind) -> bool:
        """Whether the rebinding happens again and again, or before a tape reads the name."""
        analysis = self.analysis
        if not self._used_for_gradients(rebind):
            return False
        if in_loop(analysis, rebind.target):
            return True
        scope = analysis.scope_of(rebind.target)
        if isinstance(scope, cst.FunctionDef) and any(t.scope is scope for t in analysis.tapes):
            return True
        statement = analysis.statement_index(rebind.target)
        if statement is None or "." in rebind.chain:
            return False
        tapes = [t.node for t in analysis.tapes if t.scope is scope]
        return any(
            any(inside_tape(later, tape) for tape in tapes)
            for later in analysis.uses_after(rebind.chain, statement, scope)
        )

    def proof(self, node: cst.Assign | cst.AugAssign, rebind: _Rebind, in_place: InPlace) -> _Proof:
        """What the name holds where ``node`` rebinds it."""
        if isinstance(rebind.target, cst.Name):
            return self._name_proof(node, rebind.chain, in_place)
        return self._attribute_proof(node, rebind.chain, in_place)

    def _name_proof(self, node: cst.CSTNode, name: str, in_place: InPlace) -> _Proof:
        analysis = self.analysis
        module = analysis.module
        scope = analysis.scope_of(node)
        at = analysis.statement_index(node)
        if at is None:
            return _Proof(name, UNKNOWN, [])
        kinds, unbound_path = self._reaching(name, at, scope, in_place)
        kinds += self._back_edges(name, at, scope, in_place)
        # Only a binding that reaches this line can have left the variable here: once every path rebinds
        # the name to something not shown to be a variable (`y = layer(x)` after an earlier cell's
        # `y = tf.Variable(3.0)`), the variable this rule knows of is not what is rebound.
        if not unbound_path and kinds and all(kind != VARIABLE for kind, _ in kinds):
            if scope is module or name not in _globals_of(scope):
                return _Proof(name, NOT_A_VARIABLE, [binding for _, binding in kinds])
        if scope is module:
            # a notebook's later cell, run before this one runs again, leaves its value here too
            made = [binding for kind, binding in kinds if kind == VARIABLE]
            kinds += self._module_bindings(name, in_place, after=min(made, key=analysis.order_of) if made else None)
        elif name in _globals_of(scope) and unbound_path:
            # the module's name: whatever any statement of the module binds it to may be there when the function runs
            unbound_path = False
            kinds += self._module_bindings(name, in_place, after=None)
        others = [binding for kind, binding in kinds if kind != VARIABLE]
        if others or unbound_path or not kinds:
            return _Proof(name, UNKNOWN, others)
        return _Proof(name, VARIABLE, [])

    def _reaching(self, name: str, at: Statement, scope, in_place: InPlace) -> tuple[list[tuple[str, cst.CSTNode]], bool]:
        """The bindings of ``name`` that reach ``at`` from before it, looking through the updates the fix
        makes in place; and whether some path reaches ``at`` with no binding at all."""
        analysis = self.analysis
        kinds: list[tuple[str, cst.CSTNode]] = []
        current = at
        while True:
            definitions = analysis.reaching_definitions(name, current, scope)
            if not definitions:
                return kinds, True
            for definition in definitions:
                kinds += self._kept(definition, name, in_place)
            nearest = definitions[-1]
            if not runs_whenever(nearest, current):
                return kinds, True
            if self._kept(nearest, name, in_place):
                return kinds, False
            current = nearest

    def _back_edges(self, name: str, at: Statement, scope, in_place: InPlace) -> list[tuple[str, cst.CSTNode]]:
        """The bindings of ``name`` after ``at`` in a loop around it: the next turn of the loop reads them."""
        loops = [block for block in at.enclosing if isinstance(block, (cst.For, cst.While))]
        kinds: list[tuple[str, cst.CSTNode]] = []
        for later in self.analysis.statements(scope)[at.index + 1:] if loops else ():
            if name in later.assigned and any(loop in later.enclosing for loop in loops):
                kinds += self._kept(later, name, in_place)
        return kinds

    def _module_bindings(self, name: str, in_place: InPlace, after: cst.CSTNode | None) -> list[tuple[str, cst.CSTNode]]:
        """The bindings of the module-level ``name``: the module's own (after ``after``, when given)
        and those of every function that declares it ``global``."""
        analysis = self.analysis
        kinds: list[tuple[str, cst.CSTNode]] = []
        scopes = [analysis.module] + [f for f in analysis.functions if name in _globals_of(f)]
        for scope in scopes:
            for statement in analysis.statements(scope):
                if name not in statement.assigned:
                    continue
                if scope is analysis.module and after is not None and not analysis.precedes(after, statement.node):
                    continue
                kinds += self._kept(statement, name, in_place)
        return kinds

    def _attribute_proof(self, node: cst.CSTNode, chain: str, in_place: InPlace) -> _Proof:
        """``self.w`` holds the variable when every assignment of it in the class makes a variable or is an update the fix makes in place."""
        owner = self.analysis.enclosing_class(node)
        if owner is None:
            return _Proof(chain, UNKNOWN, [])
        kinds = []
        for assignment in walk(owner, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            for binding, value in _bound_values(assignment, chain):
                if (assignment, chain) not in in_place:
                    kinds.append((self._kind(binding, value), binding))
        others = [binding for kind, binding in kinds if kind != VARIABLE]
        return _Proof(chain, UNKNOWN if others else VARIABLE, others)

    def _kept(self, statement: Statement, name: str, in_place: InPlace) -> list[tuple[str, cst.CSTNode]]:
        """What each binding of ``name`` in a statement gives it, but for the updates the fix makes in place."""
        line = statement.node
        if not isinstance(line, cst.SimpleStatementLine):
            return [(UNKNOWN, line.target if isinstance(line, cst.For) else line)]
        bindings = [(small, binding, value) for small in line.body for binding, value in _bound_values(small, name)]
        if not bindings:
            return [(UNKNOWN, line)]  # an import, a `with ... as`: nothing the fix could rely on
        return [(self._kind(binding, value), binding) for small, binding, value in bindings if (small, name) not in in_place]

    def _kind(self, binding: cst.CSTNode, value: cst.BaseExpression | None) -> str:
        if isinstance(binding, cst.AugAssign):
            return NOT_A_VARIABLE  # `w *= 2` on anything but a variable leaves a tensor or a number
        if value is None:
            return UNKNOWN
        if isinstance(value, cst.Name):
            return NOT_A_VARIABLE if value.value in ("None", "True", "False") else UNKNOWN
        if isinstance(value, cst.Call):
            func = value.func
            qualname = self.analysis.qualname(func) or ""
            if qualname in VARIABLE_MAKERS or (isinstance(func, cst.Attribute) and func.attr.value == "add_weight"):
                return VARIABLE
            if isinstance(func, cst.Attribute) and func.attr.value in VALUE_READS:
                return NOT_A_VARIABLE
            if qualname.startswith(LIBRARY_PREFIXES) and "variable" not in qualname.rsplit(".", 1)[-1].lower():
                return NOT_A_VARIABLE
            return UNKNOWN
        if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation, cst.Comparison, cst.BaseNumber, cst.BaseString,
                              cst.List, cst.Tuple, cst.Dict, cst.Set, cst.ListComp, cst.SetComp, cst.DictComp)):
            return NOT_A_VARIABLE
        return UNKNOWN

    def _used_for_gradients(self, rebind: _Rebind) -> bool:
        analysis = self.analysis
        for tape in analysis.tapes:
            if rebind.chain in chains(tape.node.body):
                return True
        return any(call.sources is not None and rebind.chain in chains(call.sources) for call in analysis.gradient_calls)


def _report(analysis: ModuleAnalysis, node: cst.Assign | cst.AugAssign, updates: list[_Rebind], proofs: list[_Proof]) -> Report:
    report, reshaped = _rewrite(analysis, node, updates)
    unproven = [proof for proof in proofs if proof.verdict != VARIABLE]
    if report.replacements is None or not (unproven or reshaped):
        return report
    report.applicability = Applicability.UNSAFE
    if unproven:
        doubted = ", ".join(f"`{proof.chain}`" for proof in unproven)
        report.related.extend((binding, f"binds {doubted} to something other than a tf.Variable")
                              for proof in unproven for binding in proof.others)
        report.applicability_reason = (
            f"{doubted} may not hold the tf.Variable here: "
            + ("another statement binds it to something else (see the related lines)" if report.related
               else "some path reaches this line with no tf.Variable bound to it")
            + ", and `assign` on anything but a variable fails"
        )
    else:
        chain, operands = reshaped[0]
        shown = quoted_list([analysis.code(operand) for operand in operands], 2) if operands else "its value"
        report.applicability_reason = (
            f"the new value of `{chain}` is not shown to keep its shape and dtype: {shown} is not shown to be a "
            "number, the variable or its gradient, and `assign` raises on any other shape"
        )
    return report


def _rewrite(analysis: ModuleAnalysis, node: cst.Assign | cst.AugAssign, updates: list[_Rebind]
             ) -> tuple[Report, list[tuple[str, list[cst.BaseExpression]]]]:
    """The report with its fix, and the variables whose new value is not shown to keep their shape, each with
    the operands that leave it unproven."""
    names = ", ".join(f"`{update.chain}`" for update in updates)
    chains_shown = quoted_list([update.chain for update in updates], 2)
    if len(updates) == 1:
        message = f"The variable {chains_shown} is rebound to a plain tensor"
        detail = (
            f"`{analysis.code(node)}` replaces the variable {names} with a plain tensor; "
            "the next step's tape does not watch a plain tensor, so that name gets no gradient. "
            "Update the variable in place (`w.assign_sub(lr * g)`)."
        )
    else:
        message = f"The variables {chains_shown} are rebound to plain tensors"
        detail = (
            f"`{analysis.code(node)}` replaces the variables {names} with plain tensors; "
            "the next step's tape does not watch them, so they get no gradient. "
            "Update the variables in place (`w.assign_sub(lr * g)`)."
        )
    parent = analysis.parent(node)
    if isinstance(node, cst.Assign) and len(updates) != len(list(_pairs(node.targets[0].target, node.value))):
        return Report(node, message, detail=detail), []  # a tuple assignment that also binds other things
    if len(updates) > 1 and any(
        other.chain in chains(update.value) for update in updates for other in updates if other is not update
    ):
        return Report(node, message, detail=detail), []  # the updates read each other: order would matter
    shapes = [UpdateShape(analysis, update.chain, node) for update in updates]
    calls = [_update_call(update, shape) for update, shape in zip(updates, shapes)]
    reshaped = [(update.chain, shape.doubtful(_new_value(update))) for update, shape in zip(updates, shapes)
                if not shape.keeps_shape(_new_value(update))]
    replacement: dict[cst.CSTNode, Replacement]
    if len(calls) == 1:
        replacement = {node: cst.Expr(calls[0])}
    elif isinstance(parent, cst.SimpleStatementLine) and len(parent.body) == 1:
        replacement = {parent: cst.FlattenSentinel([parent.with_changes(body=[cst.Expr(call)]) for call in calls])}
    else:
        return Report(node, message, detail=detail), []
    return Report(
        node,
        message,
        detail=detail,
        replacements=replacement,
        fix_description=f"Update {names} in place with `{cst.ensure_type(calls[0].func, cst.Attribute).attr.value}`",
    ), reshaped


def _new_value(rebind: _Rebind) -> cst.BaseExpression:
    """What the rebinding gives the name: ``w - e`` for ``w -= e``."""
    if rebind.operator is None:
        return rebind.value
    operator = _binary_operator(rebind.operator)
    value = rebind.value
    tighter = (isinstance(operator, (cst.Add, cst.Subtract)) and isinstance(value, cst.BinaryOperation)
               and isinstance(value.operator, (cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power)))
    return cst.BinaryOperation(left=rebind.target, operator=operator, right=value if tighter else _wrapped(value))


def _update_call(rebind: _Rebind, shape: UpdateShape) -> cst.Call:
    """``w.assign_sub(e)`` for ``w = w - e`` where ``e`` is as large as ``w`` (its gradient, scaled): it then
    fails only where the rebinding changed the variable's shape. ``w.assign(w - e)`` otherwise: ``assign_sub``
    does not broadcast, so ``w.assign_sub(0.1)`` raises on a variable that is not a scalar."""
    target = rebind.target
    value = rebind.value
    delta = None
    if rebind.operator is not None:
        method = AUGMENTED_METHOD.get(type(rebind.operator))
        if method is not None:
            delta = (method, value)
    elif isinstance(value, cst.BinaryOperation) and not value.lpar:
        if isinstance(value.operator, cst.Subtract) and dotted(value.left) == rebind.chain:
            delta = ("assign_sub", value.right)
        elif isinstance(value.operator, cst.Add) and dotted(value.left) == rebind.chain:
            delta = ("assign_add", value.right)
        elif isinstance(value.operator, cst.Add) and dotted(value.right) == rebind.chain:
            delta = ("assign_add", value.left)
    if delta is not None and shape.has_own_shape(delta[1]):
        return _call(target, *delta)
    return _call(target, "assign", _new_value(rebind))


def _call(target: cst.BaseExpression, method: str, argument: cst.BaseExpression) -> cst.Call:
    if isinstance(argument, (cst.BinaryOperation, cst.UnaryOperation, cst.Name, cst.Call, cst.Attribute)):
        argument = argument.with_changes(lpar=[], rpar=[])
    return cst.Call(func=cst.Attribute(value=target, attr=cst.Name(method)), args=[cst.Arg(argument)])


def _wrapped(value: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(value, (cst.BinaryOperation, cst.BooleanOperation, cst.Comparison, cst.IfExp)) and not value.lpar:
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return value


_AUGMENTED_TO_BINARY: dict[type[cst.BaseAugOp], Callable[[], cst.BaseBinaryOp]] = {
    cst.MultiplyAssign: cst.Multiply, cst.DivideAssign: cst.Divide, cst.PowerAssign: cst.Power,
    cst.FloorDivideAssign: cst.FloorDivide, cst.ModuloAssign: cst.Modulo, cst.MatrixMultiplyAssign: cst.MatrixMultiply,
    cst.SubtractAssign: cst.Subtract, cst.AddAssign: cst.Add,
}


def _binary_operator(operator: cst.BaseAugOp) -> cst.BaseBinaryOp:
    return _AUGMENTED_TO_BINARY[type(operator)]()


def _pairs(target: cst.BaseExpression, value: cst.BaseExpression) -> Iterator[tuple[cst.BaseExpression, cst.BaseExpression]]:
    """``a, b = x, y`` as (a, x), (b, y); a single target as itself and the value."""
    if isinstance(target, (cst.Tuple, cst.List)):
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(target.elements):
            for t, v in zip(target.elements, value.elements):
                if not isinstance(t, cst.StarredElement) and not isinstance(v, cst.StarredElement):
                    yield t.value, v.value
        return
    yield target, value


def _bound_values(small: cst.CSTNode, chain: str) -> Iterator[tuple[cst.CSTNode, cst.BaseExpression | None]]:
    """Each binding of the name or attribute ``chain`` in a small statement, with the value it gets
    (None when unpacked from a value that is not a tuple of the same length)."""
    if isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        if dotted(small.target) == chain:
            yield small, small.value if isinstance(small, cst.AnnAssign) else None
        return
    if not isinstance(small, cst.Assign):
        return
    for target in small.targets:
        paired = [value for bound, value in _pairs(target.target, small.value) if dotted(bound) == chain]
        if paired:
            yield small, paired[0]
        elif chain in _target_chains(target.target):
            yield small, None


def _target_chains(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return {chain for element in target.elements for chain in _target_chains(element.value)}
    if isinstance(target, cst.StarredElement):
        return _target_chains(target.value)
    chain = dotted(target)
    return {chain} if chain else set()


def _method_of(value: cst.BaseExpression, chain: str) -> bool:
    """``w.assign_sub(...)``, ``w.numpy()``: a call of the variable's own method."""
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and dotted(value.func.value) == chain


def _globals_of(scope: cst.CSTNode) -> set[str]:
    names: set[str] = set()
    if not isinstance(scope, cst.FunctionDef):
        return names

    for node in walk(scope, cst.Global, skip=(cst.FunctionDef,)):
        names.update(item.name.value for item in node.names)
    return names


def _assignments(module: cst.Module) -> Iterator[cst.Assign | cst.AugAssign]:
    return walk(module, (cst.Assign, cst.AugAssign))
