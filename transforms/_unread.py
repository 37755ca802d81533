"""A value computed in the tape and never read: what the loss-ignores-prediction operators start from.

The run names it (``cause.site`` is where the last tensor that depends on the variables is bound,
and that tensor is never read on the way to the loss); a rule finds the same statement statically.
Either way the pinned node is that statement, and what is asked here of the code around it is
plain syntax: the name it binds, whether a later statement of the function reads it, the gradient
call after it, the statements its target is computed from.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass

import libcst as cst

from gradfix.static.names import dotted
from gradfix.static.tree import walk
from gradfix.transforms._operator import Context

LOSS_NAME = re.compile(r"loss|cost|penalty", re.IGNORECASE)


@dataclass(frozen=True)
class Unread:
    """``name = value``, bound in a tape of ``function`` (the module, for a script's top level) and read by no
    later statement of it, or only to be logged (``logged``)."""

    statement: cst.SimpleStatementLine
    name: str
    value: cst.BaseExpression
    function: cst.FunctionDef | cst.Module
    tape: cst.With
    logged: bool = False


# calls that only show or record a value: a term read by them alone is still left out of what is differentiated
LOGGING_METHODS = frozenset({"update_state", "log", "info", "debug", "warning", "scalar", "histogram", "add_scalar"})
LOGGING_FUNCTIONS = frozenset({"print", "tf.print", "tensorflow.print", "tf.summary.scalar", "tensorflow.summary.scalar"})


def lone_binding(node: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
    """``(name, value)`` for a line ``name = value`` (one target, one statement)."""
    if not isinstance(node, cst.SimpleStatementLine) or len(node.body) != 1:
        return None
    assign = node.body[0]
    if isinstance(assign, cst.Assign) and len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name):
        return assign.targets[0].target.value, assign.value
    if isinstance(assign, cst.AnnAssign) and isinstance(assign.target, cst.Name) and assign.value is not None:
        return assign.target.value, assign.value
    return None


def unread(node: cst.CSTNode, context: Context) -> Unread | None:
    """The pinned statement as an :class:`Unread`, when it is one."""
    binding = lone_binding(node)
    if binding is None:
        return None
    function = next((a for a in context.ancestors(node) if isinstance(a, (cst.FunctionDef, cst.Module))), None)
    tape = next((a for a in context.ancestors(node) if isinstance(a, cst.With) and _is_tape(a, context)), None)
    if function is None or tape is None or all(a is not function for a in context.ancestors(tape)):
        return None
    name, value = binding
    later = [read for read in reads(function, name, context) if context.follows(read, node)]
    if any(not logged_only(read, context) for read in later):
        return None
    return Unread(node, name, value, function, tape, logged=bool(later))


def logged_only(read: cst.Name, context: Context) -> bool:
    """Whether this read of a name only shows or records its value: an argument of a metric's ``update_state``,
    of ``print``, ``tf.print``, a logger or a summary, or a value of the dictionary a step returns as its logs."""
    child: cst.CSTNode = read
    for parent in context.ancestors(read):
        if isinstance(parent, cst.Call) and child is not parent.func:
            name = context.qualname(parent.func) or dotted(parent.func) or ""
            method = parent.func.attr.value if isinstance(parent.func, cst.Attribute) else ""
            return name in LOGGING_FUNCTIONS or method in LOGGING_METHODS
        if isinstance(parent, cst.DictElement) and child is parent.value:
            statement = context.statement_of(parent)
            return isinstance(statement, cst.SimpleStatementLine) and any(isinstance(small, cst.Return) for small in statement.body)
        if isinstance(parent, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            return False
        child = parent
    return False


LIBRARIES = ("tensorflow", "keras", "numpy", "tf_keras", "jax")


def models_called(statements: list[cst.SimpleStatementLine], context: Context) -> set[str]:
    """What the statements call that is not a library function: the models and layers they run (``self.decoder``)."""
    called = set()
    for statement in statements:
        for call in walk(statement, cst.Call):
            qualname = context.qualname(call.func) or ""
            name = dotted(call.func)
            if name is not None and qualname.split(".")[0] not in LIBRARIES and name not in vars(builtins):
                called.add(name)
    return called


def reads(root: cst.CSTNode, name: str, context: Context) -> list[cst.Name]:
    """The places ``root`` reads ``name``: not as an attribute, a keyword or the target of an assignment."""
    found = []
    for node in walk(root, cst.Name):
        if node.value != name:
            continue
        parent = context.parent(node)
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            continue
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            continue
        if isinstance(parent, (cst.AssignTarget, cst.Param)) or (isinstance(parent, cst.AnnAssign) and parent.target is node):
            continue
        found.append(node)
    return found


def _is_tape(block: cst.With, context: Context) -> bool:
    for item in block.items:
        call = item.item
        if isinstance(call, cst.Call):
            name = context.qualname(call.func) or dotted(call.func) or ""
            if name.rsplit(".", 1)[-1] == "GradientTape":
                return True
    return False


def gradient_target(found: Unread, context: Context) -> tuple[cst.Call, str] | None:
    """The gradient call after the unread statement (the run's, when its line is known) and its target's name."""
    after = context.lines_of(found.statement)[1]
    calls = [call for call in walk(found.function, cst.Call)
             if isinstance(call.func, cst.Attribute) and call.func.attr.value == "gradient" and call.args
             and isinstance(call.args[0].value, cst.Name) and context.lines_of(call)[0] > after]
    if context.end_line is not None:
        calls = [call for call in calls if context.lines_of(call)[0] <= context.end_line <= context.lines_of(call)[1]] or calls
    if not calls:
        return None
    return calls[0], calls[0].args[0].value.value


def statements_between(function: cst.CSTNode, first: int, last: int, context: Context) -> list[cst.SimpleStatementLine]:
    """The simple statement lines of ``function`` that start after line ``first`` and before line ``last``."""
    return [s for s in walk(function, cst.SimpleStatementLine) if first < context.lines_of(s)[0] < last]


def backward_slice(statements: list[cst.SimpleStatementLine], target: str, context: Context) -> list[cst.SimpleStatementLine]:
    """The statements among ``statements`` (in source order) that the value of ``target`` after them is computed from."""
    wanted = {target}
    flow = []
    for statement in reversed(statements):
        binding = lone_binding(statement)
        if binding is None or binding[0] not in wanted:
            continue
        flow.append(statement)
        wanted |= read_names(binding[1], context)
    return list(reversed(flow))


def read_names(expression: cst.BaseExpression, context: Context) -> set[str]:
    """The names ``expression`` reads (not attribute names, not keywords)."""
    names = set()
    for node in walk(expression, cst.Name):
        parent = context.parent(node)
        if isinstance(parent, cst.Attribute) and parent.attr is node or isinstance(parent, cst.Arg) and parent.keyword is node:
            continue
        names.add(node.value)
    return names


def last_binding(statements: list[cst.SimpleStatementLine], name: str) -> cst.SimpleStatementLine | None:
    for statement in reversed(statements):
        binding = lone_binding(statement)
        if binding is not None and binding[0] == name:
            return statement
    return None
