"""read-dropped-output: read a layer chain's dropped output where the chain's own input is read again."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradfix.categories import NEVER_USED
from gradfix.model import Applicability
from gradfix.static.analysis import names_assigned, names_read
from gradfix.transforms._operator import Context, CutKind, Example, Operator, Rewrite


class ReadDroppedOutput(Operator):
    """Repairs a tensor computed through layers and then dropped. In a function, a name is computed
    by a chain of statements from one of the function's parameters (`output = self.linear1(x)`,
    `output = self.linear2(output)`), nothing reads it afterwards, and a later statement reads the
    parameter again instead (`return self.linear4(x)`). The first such statement that does not
    mention the name reads the chain's output there (`return self.linear4(output)`), so the layers
    of the chain reach the loss.

    The cut is pinned at the statement that computes the dropped tensor. The run names that tensor
    (the last one still connected to the loss, never read again); without a run, it is the one name
    the statement binds, and no later statement may read it before binding it anew. Only reads of
    the parameter are renamed: a statement that binds the parameter anew keeps its target.

    Unsafe: the model changes. The next layer reads the chain's output instead of the input, which
    changes what it computes and the shapes it is given; only the author knows whether that was meant.
    """

    name = "read-dropped-output"
    summary = "Read a dropped layer output where the layers' own input is read again"
    cuts = (CutKind(NEVER_USED),)
    explained_by = "GF011"

    VALID = [
        # The chain's output is read on the way to the result: nothing was dropped.
        Example("""
import keras

class Net(keras.Model):
    def call(self, x):
        h = self.dense1(x)  # cut
        return self.out(h) + self.skip(x)
"""),
        # The dropped tensor is not computed from a parameter: no input to read it in place of.
        Example("""
import keras

class Net(keras.Model):
    def call(self, x):
        noise = self.sampler(self.seed)  # cut
        return self.out(x)
"""),
        # Two names bound on the line, and no run to say which one was dropped.
        Example("""
import keras

class Net(keras.Model):
    def call(self, x):
        h, g = self.split(x)  # cut
        return self.out(x)
"""),
    ]

    INVALID = [
        Example("""
import tensorflow as tf

class MyModel(tf.keras.Model):
    def call(self, x):
        output = self.linear1(x)
        output = self.linear2(output)
        output = self.linear3(output)  # cut
        return self.linear4(x)
""", "", """
import tensorflow as tf

class MyModel(tf.keras.Model):
    def call(self, x):
        output = self.linear1(x)
        output = self.linear2(output)
        output = self.linear3(output)  # cut
        return self.linear4(output)
"""),
        # The input is bound anew from itself: its read takes the chain's output, its target stays.
        Example("""
import keras

class Block(keras.layers.Layer):
    def call(self, inputs):
        hidden = self.norm(self.encoder(inputs))  # cut
        inputs = self.head(inputs)
        return inputs
""", "", """
import keras

class Block(keras.layers.Layer):
    def call(self, inputs):
        hidden = self.norm(self.encoder(inputs))  # cut
        inputs = self.head(hidden)
        return inputs
"""),
    ]

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        return _plan(node, context) is not None

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        plan = _plan(node, context)
        if plan is None:
            return
        name, root, statement = plan
        yield Rewrite(f"Read `{name}` (the output of the layers before it) where `{root}` is read again",
                      {statement: _reads_renamed(statement, root, name)}, Applicability.UNSAFE,
                      f"this changes the model: the next layer reads `{name}` instead of `{root}`; only do it if that "
                      "was the intent")


def _plan(node: cst.CSTNode, context: Context) -> tuple[str, str, cst.CSTNode] | None:
    """(the dropped name, the parameter its chain started from, the later statement that reads that parameter)."""
    if not isinstance(node, cst.SimpleStatementLine):
        return None
    name = _dropped_name(node, context)
    function = next((a for a in context.ancestors(node) if isinstance(a, cst.FunctionDef)), None)
    if name is None or function is None or not isinstance(function.body, cst.IndentedBlock):
        return None
    body = list(function.body.body)
    if node not in body:
        return None
    index = body.index(node)
    later = body[index + 1:]
    if context.last_connected is None and _read_before_bound(name, later):
        return None  # the run would have said it was dropped; without one, the code must say so
    first = next(s for s in body[:index + 1] if name in _bound(s))
    parameters = {p.name.value for p in function.params.params}
    roots = [n for n in _names_in_order(first) if n in parameters and n not in (name, "self")]
    for statement in later:
        if name in names_read(statement):
            continue
        for root in roots:
            if _reads(statement, root):
                return name, root, statement
    return None


def _dropped_name(statement: cst.SimpleStatementLine, context: Context) -> str | None:
    """The name the run saw last connected, if this statement computed it; without a run, the one name it binds."""
    bound = _bound(statement)
    last = context.last_connected
    if last is None:
        return next(iter(bound)) if len(bound) == 1 else None
    start, end = context.lines_of(statement)
    name, line = last.get("name") or "", last.get("line") or 0
    return name if name.isidentifier() and name in bound and start <= line <= end else None


def _bound(statement: cst.CSTNode) -> frozenset[str]:
    if not isinstance(statement, cst.SimpleStatementLine):
        return names_assigned(statement)
    return frozenset().union(*(names_assigned(small) for small in statement.body))


def _read_before_bound(name: str, statements: list[cst.CSTNode]) -> bool:
    """Whether a statement reads ``name`` before another binds it anew."""
    for statement in statements:
        if _reads(statement, name):
            return True
        if name in _bound(statement):
            return False
    return False


def _reads(statement: cst.CSTNode, name: str) -> bool:
    return any(read.value == name for read in _loads(statement))


def _names_in_order(node: cst.CSTNode) -> list[str]:
    return list(dict.fromkeys(read.value for read in _loads(node)))


def _loads(node: cst.CSTNode) -> list[cst.Name]:
    """The names ``node`` reads, in source order: not the names it binds (assignment, loop and ``as`` targets,
    parameters), attribute names or keywords, and nothing of a nested function or class, which has its own scope."""
    found: list[cst.Name] = []

    class Reads(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

        def visit_AssignTarget(self, target: cst.AssignTarget) -> bool:
            return False

        def visit_AugAssign(self, assign: cst.AugAssign) -> bool:
            assign.value.visit(self)  # its target is read too, but bound anew: not a read to rename
            return False

        def visit_AnnAssign(self, assign: cst.AnnAssign) -> bool:
            if assign.value is not None:
                assign.value.visit(self)
            return False

        def visit_AsName(self, name: cst.AsName) -> bool:
            return False

        def visit_Param(self, param: cst.Param) -> bool:
            return False

        def visit_For(self, loop: cst.For) -> bool:
            for part in (loop.iter, loop.body, loop.orelse):
                if part is not None:
                    part.visit(self)
            return False

        def visit_CompFor(self, comprehension: cst.CompFor) -> bool:
            comprehension.iter.visit(self)
            for condition in comprehension.ifs:
                condition.visit(self)
            if comprehension.inner_for_in is not None:
                comprehension.inner_for_in.visit(self)
            return False

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

        def visit_Arg(self, arg: cst.Arg) -> bool:
            arg.value.visit(self)
            return False

        def visit_FunctionDef(self, function: cst.FunctionDef) -> bool:
            return False

        def visit_ClassDef(self, class_node: cst.ClassDef) -> bool:
            return False

    node.visit(Reads())
    return found


def _reads_renamed(statement: cst.CSTNode, old: str, new: str) -> cst.CSTNode:
    """``statement`` with its reads of ``old`` (as ``_loads`` finds them) reading ``new``."""
    reads = {id(read) for read in _loads(statement) if read.value == old}

    class Renamed(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
            return updated.with_changes(value=new) if id(original) in reads else updated

    return statement.visit(Renamed())
