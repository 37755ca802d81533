"""What a repair operator is: one class in one file of ``transforms/``.

An operator repairs one kind of cut (a category of gradfix.categories, narrowed to the TensorFlow op
types it knows) wherever a front end pins it: the static rules hand it the node their query found,
the runtime repair the node the run's cut points at. ``rewrite`` returns LibCST replacements with
their applicability and reason (Ruff's habit: safety is data on the edit). Beside each operator
stand ``INVALID`` examples (a cut it rewrites, with the expected text) and ``VALID`` ones (a node it
must leave alone); ``tests/test_operators.py`` runs them. A line of an example ending in ``# cut``
is where the cut is pinned, as a run pins it: by that line and the example's op type.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator, Mapping, Union

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from gradfix import pin
from gradfix.edits import ReplaceNodes
from gradfix.model import Applicability
from gradfix.static.names import ImportMap, dotted
from gradfix.transforms._helper_call import HelperCall, helper_call

if TYPE_CHECKING:
    from libcst.codemod.visitors import ImportItem

Replacement = Union[cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel]


@dataclass(frozen=True)
class CutKind:
    """A cut an operator repairs: a category, and the op types of it (empty: every op of the category)."""

    category: str
    ops: frozenset[str] = frozenset()

    def matches(self, category: str, op: str) -> bool:
        return category == self.category and (not self.ops or op in self.ops)


@dataclass(frozen=True)
class Rewrite:
    """One way to repair the pinned cut: the nodes to replace, and how far the result can be trusted."""

    description: str
    replacements: Mapping[cst.CSTNode, Replacement]
    applicability: Applicability
    reason: str = ""  # why it is not safe: what else it changes
    imports: tuple[ImportItem, ...] = ()


@dataclass(frozen=True)
class Example:
    """An operator's example: ``expected`` is the text after its first rewrite; None: it rewrites nothing."""

    code: str
    op: str = ""  # the op type the cut is pinned by (a run's op type); "" for a category without ops
    expected: str | None = None


@dataclass
class Context:
    """What an operator may ask about the module around the pinned node, from either front end."""

    module: cst.Module
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]
    lines_of: Callable[[cst.CSTNode], tuple[int, int]]  # a node's first and last line
    imports: ImportMap = field(default=None)  # type: ignore[assignment]
    cut: Mapping = field(default_factory=dict)  # the run's fact at the cut (op, dst_dtype...), {} from a rule
    end_line: int | None = None  # where the repair's reach ends: the gradient call's line, when known
    tensor_sources: bool = False  # the gradient is asked for plain tensors the tape watched, not only variables
    # every line the run places the cut on (gradfix.pin.cut_lines): two integer variables are one cut made on
    # two lines, and are repaired together; () from a rule
    cut_lines: tuple[int, ...] = ()
    # the last tensor the run saw still connected to the loss (its name, line, function); {} when the run saw
    # none in this file, None from a rule
    last_connected: Mapping | None = None
    # a cause lifted out of a helper (gradfix.lift): the caller's call of it, read through its arguments
    through: "HelperCall | None" = None
    # whether the first node starts after the second ends; by default read from their lines, but a rule's model
    # knows source order without positions, which cost a print of the statement
    starts_after: Callable[[cst.CSTNode, cst.CSTNode], bool] | None = None

    def follows(self, node: cst.CSTNode, other: cst.CSTNode) -> bool:
        """Whether ``node`` starts on a line after ``other`` ends."""
        if self.starts_after is not None:
            return self.starts_after(node, other)
        return self.lines_of(node)[0] > self.lines_of(other)[1]

    def __post_init__(self):
        if self.imports is None:
            self.imports = ImportMap(self.module)

    @classmethod
    def of_module(cls, module: cst.Module, **extra) -> "Context":
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        parents = wrapper.resolve(ParentNodeProvider)
        positions = wrapper.resolve(PositionProvider)
        return cls(wrapper.module, parents.get, lambda node: (positions[node].start.line, positions[node].end.line), **extra)

    @classmethod
    def of_analysis(cls, analysis) -> "Context":
        """For a static rule: the ModuleAnalysis it queried."""
        def lines_of(node):
            span = analysis.span(node)
            return span.start_line, span.end_line

        def starts_after(node, other):
            if not analysis.precedes(other, node) or analysis.is_inside(node, other):
                return False
            # a later statement on the same line (after a semicolon) is not on a later line
            return analysis.statement_of(node) is not analysis.statement_of(other) or lines_of(node)[0] > lines_of(other)[1]

        return cls(analysis.module, analysis.parent, lines_of, analysis.imports, starts_after=starts_after)

    @classmethod
    def of_site(cls, site) -> "Context":
        """For the runtime repair: a gradfix.repair_site.RepairSite and the run's cut there."""
        cause = site.cause
        call = cause.call
        end = call.where.line if call is not None and call.where is not None else None
        tensors = any(v.kind != "variable" for v in cause.variables)
        last = cause.last_connected or {}
        here = last if last.get("file") and os.path.abspath(last["file"]) == os.path.abspath(site.path) else {}
        through = None
        if cause.lifted_from is not None and cause.site is not None:
            caller = call.where if call is not None and call.where is not None and call.where.line == cause.site.line else cause.site
            through = helper_call(site.module, site.parent, site.lines_of, caller, cause.lifted_from)
        return cls(site.module, site.parent, site.lines_of, cut=cause.cut or {}, end_line=end, tensor_sources=tensors,
                   cut_lines=tuple(pin.cut_lines(cause)), last_connected=here, through=through)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parent_of(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        current = self.parent_of(node)
        while current is not None:
            yield current
            current = self.parent_of(current)

    def statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            return node
        for ancestor in self.ancestors(node):
            if isinstance(ancestor, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                return ancestor
        return node

    def statement_at(self, line: int) -> cst.CSTNode | None:
        """The innermost simple statement line holding ``line``, or the header of a compound statement there."""
        best = None
        for node in _walk(self.module, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            start, end = self.lines_of(node)
            if isinstance(node, cst.BaseCompoundStatement) and isinstance(node.body, cst.IndentedBlock):
                end = start
            if start <= line <= end and (best is None or self.lines_of(best)[0] <= start):
                best = node
        return best

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()

    def qualname(self, node: cst.BaseExpression) -> str | None:
        return self.imports.resolve(node)

    def local_name(self, module: str) -> str | None:
        """The name bound to ``module`` itself (``tf`` for ``import tensorflow as tf``), if one is."""
        names = sorted(local for local, target in self.imports.aliases.items() if target == module)
        if not names:
            return None
        return "tf" if module == "tensorflow" and "tf" in names else names[0]

    def name_is_free(self, name: str) -> bool:
        return name not in self.imports.aliases and not any(
            isinstance(n, cst.Name) and n.value == name for n in _names(self.module))

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3``...: the first that no name in the module uses."""
        taken = {n.value for n in _names(self.module)} | set(self.imports.aliases)
        name, number = base, 2
        while name in taken:
            name, number = f"{base}_{number}", number + 1
        return name

    def called_argument(self, node: cst.CSTNode) -> tuple[cst.Call, int | str] | None:
        """The call ``node`` is an argument of, with its position (or keyword)."""
        arg = self.parent(node)
        if not isinstance(arg, cst.Arg) or arg.value is not node:
            return None
        call = self.parent(arg)
        if not isinstance(call, cst.Call):
            return None
        if arg.keyword is not None:
            return call, arg.keyword.value
        return call, [a for a in call.args if a.keyword is None].index(arg)

    def new_text(self, rewrite: Rewrite) -> str:
        """The module's text with the rewrite made, imports added where LibCST's AddImportsVisitor puts them."""
        changed = self.module.visit(ReplaceNodes(rewrite.replacements))
        if rewrite.imports:
            from libcst.codemod import CodemodContext  # see gradfix.lazy: loaded for a fix that imports only
            from libcst.codemod.visitors import AddImportsVisitor
            changed = AddImportsVisitor(CodemodContext(), list(rewrite.imports)).transform_module(changed)
        return changed.code


def _walk(root: cst.CSTNode, kind):
    from gradfix.static.tree import walk

    return walk(root, kind)


def _names(module: cst.Module):
    return _walk(module, cst.Name)


class Operator:
    """Base of every repair operator. Subclasses set the class attributes and implement ``rewrite``."""

    name: ClassVar[str]  # kebab-case, e.g. "surrogate"
    summary: ClassVar[str]
    cuts: ClassVar[tuple[CutKind, ...]] = ()
    # The rule whose page explains the fix: a fix is reported under that rule's code.
    explained_by: ClassVar[str]

    VALID: ClassVar[list[Example]] = []
    INVALID: ClassVar[list[Example]] = []

    def repairs(self, category: str, op: str = "") -> bool:
        return any(kind.matches(category, op or "") for kind in self.cuts)

    def pins(self, node: cst.CSTNode, context: Context, op: str) -> bool:
        """Whether ``node`` is one this operator rewrites for a cut of op type ``op`` (used to pin a cut by line)."""
        raise NotImplementedError

    def rewrite(self, node: cst.CSTNode, context: Context) -> Iterator[Rewrite]:
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


def suggested(rewrite: Rewrite) -> dict:
    """A rewrite as the fields of a rule's report (gradfix.rule.Report) that shows it as a display-only suggestion."""
    return {"replacements": rewrite.replacements, "fix_description": rewrite.description, "imports": rewrite.imports,
            "applicability_reason": rewrite.reason}


def dotted_prefix(func: cst.BaseExpression) -> str | None:
    """``K`` for ``K.argmax``, ``tf.keras.backend`` for ``tf.keras.backend.argmax``: how the code reached the module."""
    name = dotted(func)
    if name is None or "." not in name:
        return None
    return name.rsplit(".", 1)[0]
