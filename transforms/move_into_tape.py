"""move-into-tape: compute what the tape must record while it records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradfix.categories import OUTSIDE_TAPE
from gradfix.lazy import lazy_module
from gradfix.model import Applicability
from gradfix.static.analysis import lone_assignment
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite

if TYPE_CHECKING:
    import libcst.matchers as m
else:
    m = lazy_module("libcst.matchers")  # see gradfix.lazy

EFFECTS_REASON = "a moved statement is more than a plain assignment: what it does now happens while the tape records"
RECOMPUTED_REASON = "`{name}` is now recomputed each time {where} runs (the copy before it is left as it was)"
CALL_REASON = "the call now runs inside the block, before the statements that follow it"
HELPER_REASON = "`{name}` now runs while the tape records, and the block's other statements run before it returns"


class MoveIntoTape(Operator):
    """Moves the computation the tape missed to where the tape records it, wherever the tape sits
    (function, method, `train_step`, `tf.function`, loop body) and however it is spelled
    (`tf.GradientTape()`, an imported `GradientTape()`, `persistent=True`, several items):

    - the forward pass a few statements before `with ... as tape:` (in the same body, a loop body
      too): the tape opens before it;
    - the loss computed between the block and the gradient call: those statements move to the
      block's end;
    - a target computed in the gradient call's own arguments (`tape.gradient(-loss, vars)`,
      `tape.gradient(model_loss(x), vars)`): it is computed at the block's end;
    - a tensor computed once (at module level, before the tape) and read by a function or loss
      callable that runs under the tape (`opt.minimize(lambda: loss, var_list)`): it is computed
      inside that function;
    - a tensor computed once in `build()` from the layer's weights (`self.kernel =
      tf.concat(parts, -1)`) and read in another method: it is recomputed where it is read;
    - the gradient asked for in a helper called after the block (`grads(tape, loss, model)`
      returning `tape.gradient(-loss, ...)`): the helper's call moves to the block's end.

    A forward pass made in a helper (`pred = forward(model, x)` before the block) is moved by its
    call, where the run saw the helper called.

    Safe where every moved statement is a plain `name = value` assignment and nothing is jumped
    over (the statements keep their order, only the tape now records them); unsafe otherwise,
    and always when a value computed once is recomputed where it is read.
    """

    name = "move-into-tape"
    summary = "Compute the forward pass and the loss while the tape records"
    cuts = (CutKind(OUTSIDE_TAPE),)
    explained_by = "GF001"

    VALID = [
        # The gradient's target is computed inside the block already: nothing to move.
        Example("""
import tensorflow as tf

def step(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    return tape.gradient(loss, model.trainable_variables)  # cut
"""),
    ]

    INVALID = [
        # The forward pass before the block, in a loop body.
        Example("""
import tensorflow as tf

for x, y in data:
    predictions = model(x, training=True)  # cut
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
""", "", """
import tensorflow as tf

for x, y in data:
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)  # cut
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
"""),
        # A forward pass set apart by blank lines: they stay outside the block.
        Example("""
import tensorflow as tf

model = make()

pred = model(x)  # cut

with tf.GradientTape() as tape:
    loss = f(pred)
grads = tape.gradient(loss, model.trainable_variables)
""", "", """
import tensorflow as tf

model = make()

with tf.GradientTape() as tape:
    pred = model(x)  # cut
    loss = f(pred)
grads = tape.gradient(loss, model.trainable_variables)
"""),
        # The loss computed after the block has closed, with an imported, persistent tape.
        Example("""
from tensorflow import GradientTape

def step(model, x, y):
    with GradientTape(persistent=True) as tape:
        logits = model(x)
    loss = loss_fn(y, logits)
    return tape.gradient(loss, model.trainable_variables)  # cut
""", "", """
from tensorflow import GradientTape

def step(model, x, y):
    with GradientTape(persistent=True) as tape:
        logits = model(x)
        loss = loss_fn(y, logits)
    return tape.gradient(loss, model.trainable_variables)  # cut
"""),
        # The target negated in the gradient call's own arguments.
        Example("""
import tensorflow as tf

class GAN:
    def train_step(self, z):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            score = self.disc(self.gen(z))
        grads = g_tape.gradient(-score, self.gen.trainable_variables)  # cut
""", "", """
import tensorflow as tf

class GAN:
    def train_step(self, z):
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            score = self.disc(self.gen(z))
            negative_score = -score
        grads = g_tape.gradient(negative_score, self.gen.trainable_variables)  # cut
"""),
        # A loss callable that returns a loss computed once, before it runs.
        Example("""
import tensorflow as tf

w = tf.Variable([1.0, 2.0])
cost = tf.reduce_sum(tf.square(w))  # cut
opt.minimize(lambda: cost, var_list=[w])
""", "", """
import tensorflow as tf

w = tf.Variable([1.0, 2.0])
cost = tf.reduce_sum(tf.square(w))  # cut
opt.minimize(lambda: tf.reduce_sum(tf.square(w)), var_list=[w])
"""),
        # A prediction computed once at module level and read inside the tape of the step function.
        Example("""
import tensorflow as tf

prediction = model(x)  # cut


def train_step():
    print("step")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(prediction - y))
    return tape.gradient(loss, model.trainable_variables)
""", "", """
import tensorflow as tf

prediction = model(x)  # cut


def train_step():
    print("step")
    with tf.GradientTape() as tape:
        prediction = model(x)  # cut
        loss = tf.reduce_mean(tf.square(prediction - y))
    return tape.gradient(loss, model.trainable_variables)
"""),
        # Weights concatenated once in build() and read in call().
        Example("""
import tensorflow as tf

class ConcatDense(tf.keras.layers.Layer):
    def build(self, input_shape):
        parts = [self.add_weight(shape=(4, 2)) for _ in range(2)]
        self.kernel = tf.concat(parts, axis=-1)  # cut

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)
""", "", """
import tensorflow as tf

class ConcatDense(tf.keras.layers.Layer):
    def build(self, input_shape):
        parts = [self.add_weight(shape=(4, 2)) for _ in range(2)]
        self.parts = parts

    def call(self, inputs):
        return tf.matmul(inputs, tf.concat(self.parts, axis=-1))
"""),
        # The same, combined by a method of the layer: `self` is the object, not a name to keep on it.
        Example("""
import tensorflow as tf

class ConcatDense(tf.keras.layers.Layer):
    def build(self, input_shape):
        parts = [self.add_weight(shape=(4, 2)) for _ in range(2)]
        self.kernel = self.combine(parts)  # cut

    def combine(self, parts):
        return tf.concat(parts, axis=-1)

    def call(self, inputs):
        return tf.matmul(inputs, self.kernel)
""", "", """
import tensorflow as tf

class ConcatDense(tf.keras.layers.Layer):
    def build(self, input_shape):
        parts = [self.add_weight(shape=(4, 2)) for _ in range(2)]
        self.parts = parts

    def combine(self, parts):
        return tf.concat(parts, axis=-1)

    def call(self, inputs):
        return tf.matmul(inputs, self.combine(self.parts))
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        return isinstance(node, cst.SimpleStatementLine)

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        if not isinstance(node, cst.SimpleStatementLine):
            return
        call = _gradient_call_at(context, context.end_line) if context.end_line else _gradient_call_after(context, node)
        tape = _tape_of(context, call)
        if call is not None and tape is not None:
            for made in (hoist_target(context, call, tape), move_after_block(context, call, tape),
                         move_before_block(context, tape, node)):
                if made is not None:
                    yield made
        elif call is None and context.through is not None:
            made = move_helper_call_into_block(context)
            if made is not None:
                yield made
        cut = context.cut
        name = cut.get("name") if cut.get("before_window") else None
        yield from compute_where_read(context, node, name)
        yield from recompute_attribute_where_read(context, node)


# --------------------------------------------------------------------------- the tape and its gradient call

def _gradient_call_in(node: cst.CSTNode) -> cst.Call | None:
    for call in m.findall(node, m.Call(func=m.Attribute(attr=m.Name("gradient")))):
        if call.args:
            return call
    return None


def _gradient_call_after(context: Context, node: cst.CSTNode) -> cst.Call | None:
    """Without the run's gradient call (an example, a rule): the first one of the node's scope from its line on."""
    line, scope = context.lines_of(node)[0], _function_of(context, node)
    calls = [c for c in _walk(context.module, cst.Call) if m.matches(c.func, m.Attribute(attr=m.Name("gradient")))
             and c.args and context.lines_of(c)[0] >= line and _function_of(context, c) is scope]
    return min(calls, key=lambda c: context.lines_of(c)[0], default=None)


def _gradient_call_at(context: Context, line: int) -> cst.Call | None:
    statement = context.statement_at(line)
    return _gradient_call_in(statement) if statement is not None else None


def _function_of(context: Context, node: cst.CSTNode) -> cst.FunctionDef | None:
    return next((a for a in context.ancestors(node) if isinstance(a, cst.FunctionDef)), None)


def _tape_of(context: Context, call: cst.Call | None, tape_name: str | None = None) -> cst.With | None:
    """The last ``with ... as tape:`` block of the call's function (or the module) that opens before it."""
    if call is None:
        return None
    if tape_name is None:
        if not isinstance(call.func, cst.Attribute) or not isinstance(call.func.value, cst.Name):
            return None
        tape_name = call.func.value.value
    line, scope = context.lines_of(call)[0], _function_of(context, call)
    best = None
    for block in _walk(context.module, cst.With):
        if context.lines_of(block)[0] >= line or _function_of(context, block) is not scope:
            continue
        if any(item.asname is not None and m.matches(item.asname.name, m.Name(tape_name)) for item in block.items):
            if best is None or context.lines_of(block)[0] > context.lines_of(best)[0]:
                best = block
    return best


def _body_holding(context: Context, node: cst.CSTNode) -> list[cst.CSTNode] | None:
    body = getattr(context.parent(node), "body", None)
    return list(body) if isinstance(body, (list, tuple)) and node in body else None


def _statements_between(context: Context, block: cst.CSTNode, statement: cst.CSTNode) -> list[cst.CSTNode]:
    """Statements of the block's body that come after it and before ``statement`` (or what holds it)."""
    nodes = _body_holding(context, block)
    if nodes is None:
        return []
    top = statement
    while top is not None and top not in nodes:
        top = context.parent(top)
    return nodes[nodes.index(block) + 1: nodes.index(top) if top is not None else len(nodes)]


def _assigned_names(node: cst.CSTNode) -> set[str]:
    return {name.value for target in m.findall(node, m.AssignTarget() | m.AugAssign() | m.AnnAssign())
            for name in m.findall(target.target, m.Name())}


def _bound_names(node: cst.CSTNode) -> set[str]:
    """The names a body binds (``x = ...``, ``a, b = ...``, ``for x in``), not the objects whose attributes it sets."""
    bound: set[str] = set()
    for target in m.findall(node, m.AssignTarget() | m.AugAssign() | m.AnnAssign() | m.For()):
        found = target.target
        if isinstance(found, cst.Name):
            bound.add(found.value)
        elif isinstance(found, (cst.Tuple, cst.List)):
            bound.update(e.value.value for e in found.elements if isinstance(e.value, cst.Name))
    return bound


def _movable(node: cst.CSTNode) -> bool:
    return not m.findall(node, m.Return() | m.Break() | m.Continue() | m.Yield()
                         | m.Call(func=m.Attribute(attr=m.Name("gradient"))))


def _with_body(tape: cst.With, statements: list[cst.BaseStatement], at_start: bool = False) -> cst.With:
    body = tape.body
    new = [*statements, *body.body] if at_start else [*body.body, *statements]
    return tape.with_changes(body=body.with_changes(body=new))


def _moving(statements: list[cst.CSTNode]) -> tuple[Applicability, str]:
    if all(plain_assignment(s) for s in statements):
        return Applicability.SAFE, ""
    return Applicability.UNSAFE, EFFECTS_REASON


# --------------------------------------------------------------------------- the rewrites

def hoist_target(context: Context, call: cst.Call, tape: cst.With) -> Rewrite | None:
    """``tape.gradient(-loss, vars)`` after the block: compute the target at the block's end instead."""
    target = call.args[0].value
    if isinstance(target, cst.Name) or not isinstance(tape.body, cst.IndentedBlock):
        return None
    statement = context.statement_of(call)
    used = {n.value for n in m.findall(target, m.Name())}
    if any(used & _assigned_names(node) for node in _statements_between(context, tape, statement)):
        return None  # the expression reads a value set after the block: the statements move instead
    if isinstance(target, cst.UnaryOperation) and isinstance(target.expression, cst.Name):
        base = f"negative_{target.expression.value}" if isinstance(target.operator, cst.Minus) else "gradient_target"
    elif isinstance(target, cst.Call) and isinstance(target.func, cst.Name):
        base = f"{target.func.value}_value"
    else:
        base = "gradient_target"
    name = context.fresh_name(base)
    assignment = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], target)])
    new_call = call.with_changes(args=[call.args[0].with_changes(value=cst.Name(name)), *call.args[1:]])
    has_call = bool(m.findall(target, m.Call()))
    return Rewrite(f"Compute the gradient's target `{context.code(target)}` inside the GradientTape block",
                   {tape: _with_body(tape, [assignment]), call: new_call},
                   Applicability.UNSAFE if has_call else Applicability.SAFE, CALL_REASON if has_call else "")


def move_after_block(context: Context, call: cst.Call, tape: cst.With) -> Rewrite | None:
    """The loss computed between the block and the gradient call: those statements move to the block's end."""
    between = _statements_between(context, tape, context.statement_of(call))
    if not between or not isinstance(tape.body, cst.IndentedBlock) or not all(_movable(node) for node in between):
        return None
    replacements = {tape: _with_body(tape, between)}
    replacements.update({node: cst.RemovalSentinel.REMOVE for node in between})
    return Rewrite("Move the statements between the block and the gradient call into the GradientTape block",
                   replacements, *_moving(between))


def move_before_block(context: Context, tape: cst.With, first: cst.CSTNode) -> Rewrite | None:
    """The forward pass before the block, in the same body: the tape opens before it instead."""
    body = _body_holding(context, tape)
    if body is None or not isinstance(tape.body, cst.IndentedBlock):
        return None
    while first is not None and first not in body:
        first = context.parent(first)
    if first is None or body.index(first) >= body.index(tape):
        return None
    moving = body[body.index(first): body.index(tape)]
    if not all(_movable(node) for node in moving):
        return None
    # the blank lines that set the forward pass apart stay outside: inside the block they would be indented whitespace
    opening = moving[0].with_changes(leading_lines=[line for line in moving[0].leading_lines if line.comment is not None])
    replacements = {tape: _with_body(tape, [opening, *moving[1:]], at_start=True)}
    replacements.update({node: cst.RemovalSentinel.REMOVE for node in moving})
    return Rewrite("Open the GradientTape before the forward pass, so that it is recorded", replacements, *_moving(moving))


def move_helper_call_into_block(context: Context) -> Rewrite | None:
    """The gradient asked for in a helper called after the block (``grads(tape, loss, vars)`` computing
    ``tape.gradient(-loss, vars)``): the helper's call, and the statements before it, move to the block's end,
    so that what the helper computes from the loss is recorded."""
    through = context.through
    inner = through.gradient_call(lambda node: _helper_lines(context, node))
    if inner is None or not isinstance(inner.func, cst.Attribute):
        return None
    tape_arg = through.in_caller(inner.func.value)
    if not isinstance(tape_arg, cst.Name):
        return None
    tape = _tape_of(context, through.call, tape_arg.value)
    if tape is None or not isinstance(tape.body, cst.IndentedBlock):
        return None
    statement = context.statement_of(through.call)
    between = _statements_between(context, tape, statement)
    body = _body_holding(context, tape)
    if body is None or statement not in body:
        return None
    if all(_movable(node) for node in between):
        moving = [*between, statement]
    elif _independent(statement, between):
        moving = [statement]  # it jumps over statements it neither reads from nor writes to
    else:
        return None
    replacements = {tape: _with_body(tape, moving)}
    replacements.update({node: cst.RemovalSentinel.REMOVE for node in moving})
    name = through.function.name.value
    return Rewrite(f"Call `{name}` inside the GradientTape block, so that what it computes from the target is recorded",
                   replacements, Applicability.UNSAFE, HELPER_REASON.format(name=name))


def _independent(statement: cst.CSTNode, others: list[cst.CSTNode]) -> bool:
    bound, read = _assigned_names(statement), _read_names(statement)
    return all(not (_assigned_names(o) & (read | bound)) and not (_read_names(o) & bound) for o in others)


def _read_names(node: cst.CSTNode) -> set[str]:
    return {n.value for n in m.findall(node, m.Name())} - _assigned_names(node)


def _helper_lines(context: Context, node: cst.CSTNode) -> tuple[int, int]:
    return context.lines_of(node)


def compute_where_read(context: Context, statement: cst.CSTNode, name: str | None) -> Iterator[Rewrite]:
    """A tensor computed before the tape and read by a function (or loss callable) that runs inside it:
    compute it in that function, where the tape records it."""
    assigned = lone_assignment(statement)
    if assigned is None:
        return
    bound, value = assigned
    if name is not None and bound != name:
        return
    start = context.lines_of(statement)[0]
    own = _function_of(context, statement)
    for function in [*_walk(context.module, cst.Lambda), *_walk(context.module, cst.FunctionDef)]:
        first, last = context.lines_of(function)
        if function is own or first <= start <= last:
            continue
        body = function.body
        if bound not in {n.value for n in m.findall(body, m.Name())} or bound in _assigned_names(body):
            continue
        if isinstance(function, cst.Lambda):
            if not (isinstance(body, cst.Name) and body.value == bound):
                continue
            replacements = {function: function.with_changes(body=value)}
        else:
            if not isinstance(body, cst.IndentedBlock):
                continue
            copy = statement.deep_clone().with_changes(leading_lines=())
            reader = _first_reader(body, bound)
            if reader is not None:
                # just before the first statement that reads it: inside the tape's block when that is where it is read
                replacements = {reader: cst.FlattenSentinel([copy.with_changes(leading_lines=reader.leading_lines),
                                                             reader.with_changes(leading_lines=())])}
            else:
                replacements = {function: function.with_changes(body=body.with_changes(body=[copy, *body.body]))}
        where = "the loss callable" if isinstance(function, cst.Lambda) else f"`{function.name.value}`"
        yield Rewrite(f"Compute `{bound}` inside {where}, which runs while the tape records", replacements,
                      Applicability.UNSAFE, RECOMPUTED_REASON.format(name=bound, where=where))


def _first_reader(body: cst.IndentedBlock, name: str) -> cst.SimpleStatementLine | None:
    """The first simple statement of ``body`` (at any depth) that reads ``name``, when no compound statement's
    header reads it before."""
    for node in _walk(body, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
        if isinstance(node, cst.SimpleStatementLine):
            if any(n.value == name for n in m.findall(node, m.Name())):
                return node
        else:
            header = [getattr(node, field) for field in ("test", "iter") if getattr(node, field, None) is not None]
            header += [item.item for item in getattr(node, "items", ())]
            if any(n.value == name for part in header for n in m.findall(part, m.Name())):
                return None
    return None


def recompute_attribute_where_read(context: Context, statement: cst.CSTNode) -> Iterator[Rewrite]:
    """``self.kernel = tf.concat(parts, -1)`` in ``build()``, read in ``call()``: keep what it is computed from
    on the layer and compute it in each method that reads it, where the tape records it."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return
    assign = statement.body[0]
    if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1
            and m.matches(assign.targets[0].target, m.Attribute(value=m.Name("self"), attr=m.Name()))):
        return
    attribute, value = assign.targets[0].target.attr.value, assign.value
    method = _function_of(context, statement)
    owner = context.parent(context.parent(method)) if method is not None else None
    if not isinstance(owner, cst.ClassDef):
        return
    methods = [s for s in owner.body.body if isinstance(s, cst.FunctionDef) and s is not method]
    readers = [f for f in methods if _reads_attribute(f, attribute)]
    if not readers or any(_assigns_attribute(f, attribute) for f in methods):
        return
    # the method's own names the value reads are kept on the object under the same name
    local = sorted({n.value for n in m.findall(value, m.Name())} & _bound_names(method.body))
    taken = {a.attr.value for a in m.findall(owner, m.Attribute(value=m.Name("self")))}
    if any(name in taken for name in local):
        return
    kept = [cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.parse_expression(f"self.{name}"))], cst.Name(name))],
                                    leading_lines=statement.leading_lines) for name in local]
    if not kept and len(method.body.body) == 1:
        return
    recomputed = value.visit(_Renamer({name: f"self.{name}" for name in local}))
    if not isinstance(recomputed, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        recomputed = recomputed.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    replacements: dict = {statement: cst.FlattenSentinel(kept) if kept else cst.RemovalSentinel.REMOVE}
    for reader in readers:
        for node in m.findall(reader, m.Attribute(value=m.Name("self"), attr=m.Name(attribute))):
            replacements[node] = recomputed
    where = " and ".join(f"`{f.name.value}`" for f in readers)
    yield Rewrite(f"Compute `self.{attribute}` in {where} instead of once in `{method.name.value}`", replacements,
                  Applicability.UNSAFE, RECOMPUTED_REASON.format(name=f"self.{attribute}", where=where))


def _reads_attribute(function: cst.FunctionDef, attribute: str) -> bool:
    return bool(m.findall(function, m.Attribute(value=m.Name("self"), attr=m.Name(attribute))))


def _assigns_attribute(function: cst.FunctionDef, attribute: str) -> bool:
    target = m.Attribute(value=m.Name("self"), attr=m.Name(attribute))
    return bool(m.findall(function, m.AssignTarget(target=target) | m.AugAssign(target=target)))


class _Renamer(cst.CSTTransformer):
    """Names read replaced by expressions; an attribute's name and a keyword stay as they are."""

    def __init__(self, names: dict[str, str]):
        super().__init__()
        self.names = names

    def leave_Name(self, original, updated):
        return cst.parse_expression(self.names[updated.value]) if updated.value in self.names else updated

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)


# --------------------------------------------------------------------------- the static fix's move

def move_statements(analysis, tape, opened, closed, call, flow, move_before, move_after):
    """GF001's fix: the block with the statements moved in (those before it to its start, after its watches;
    those after it to its end), and whether that is safe; (None, False) when they cannot be moved without
    changing what they compute."""
    parent = analysis.parent(tape.node)
    moved = move_before + move_after
    if any(not isinstance(s.node, cst.SimpleStatementLine) or analysis.parent(s.node) is not parent for s in moved):
        return None, False
    all_statements = analysis.statements(call.scope)
    moved_indices = {s.index for s in moved}
    assigned = set().union(*(s.assigned for s in moved))
    jumped: dict = {}
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

    ahead = set().union(*(s.assigned for s in move_before))
    if any(ahead & _read_names(item) for item in tape.node.items):
        return None, False  # the `with` line reads what the moved statements compute: they cannot follow it
    body = tape.node.body
    inner = [s for s in body.body if not _is_pass(s)]
    watches = 0
    while watches < len(inner) and _is_watch(inner[watches], tape.name):
        watches += 1
    # a watch of an input goes before the forward pass that reads it; a watch of what the forward pass computes
    # (`tape.watch(h)` for a moved `h = encoder(x)`) after it, or it would read `h` before it is bound
    first = [w for w in inner[:watches] if not ahead & _read_names(w)]
    later = [w for w in inner[:watches] if ahead & _read_names(w)]
    head = [s.node for s in move_before]
    if head and not first:
        head[0] = head[0].with_changes(leading_lines=[line for line in head[0].leading_lines if line.comment is not None])
    if later and head:
        later[0] = later[0].with_changes(leading_lines=[])
    new_body = first + head + later + inner[watches:] + [s.node for s in move_after]
    replacements: dict = {tape.node: tape.node.with_changes(body=body.with_changes(body=new_body))}
    for statement in moved:
        replacements[statement.node] = cst.RemoveFromParent()

    plain = all(plain_assignment(s.node) for s in moved)
    quiet = all(plain_assignment(s.node) for s in jumped.values())
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


def plain_assignment(node: cst.CSTNode) -> bool:
    """``name = value`` (or a tuple or list of names), nothing else on the line: moving it changes no effect's order."""
    if not isinstance(node, cst.SimpleStatementLine):
        return False
    return all(
        isinstance(small, cst.Assign) and all(isinstance(t.target, (cst.Name, cst.Tuple, cst.List)) for t in small.targets)
        for small in node.body
    )


def _walk(root, kind):
    from gradfix.static.tree import walk

    return walk(root, kind)
