"""What a rule is: one class in one file of ``gradfix/rules/``.

A rule reads a :class:`ModuleAnalysis` and yields :class:`Report` objects: the
node at fault, the message, and, when it can fix the code, the nodes to replace.
Beside its code stand ``VALID`` and ``INVALID`` examples, which the test suite
runs, and its docstring, from which its documentation page is made.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Iterator, Mapping, Union

import libcst as cst

from gradfix.model import Applicability, Severity
from gradfix.static.analysis import ModuleAnalysis

if TYPE_CHECKING:  # LibCST's codemod package loads its matchers, which a check without a fix does not need
    from libcst.codemod.visitors import ImportItem

Replacement = Union[cst.CSTNode, cst.RemovalSentinel, cst.FlattenSentinel[cst.CSTNode]]


@dataclass(frozen=True)
class Invalid:
    """An example the rule must report; ``expected`` is the source after its fix, if it has one.

    ``applicability``, when given, is what every fix of the example must be labelled: a fix whose
    text is right can still be wrongly trusted.
    """

    code: str
    expected: str | None = None
    applicability: Applicability | None = None


@dataclass
class Report:
    node: cst.CSTNode
    message: str  # what is wrong, in one line (``gradfix.messages``: at most 80 characters, cut to fit)
    related: list[tuple[cst.CSTNode, str]] = field(default_factory=list)
    replacements: Mapping[cst.CSTNode, Replacement] | None = None
    fix_description: str = ""
    applicability: Applicability | None = None  # overrides the rule's own for this report
    applicability_reason: str = ""  # why this report's fix is less safe than the rule's own, shown with the fix
    severity: Severity | None = None
    # imports the fix's new code needs (``import tensorflow as tf``), added where LibCST's AddImportsVisitor puts them
    imports: tuple[ImportItem, ...] = ()
    detail: str = ""  # why, with the names involved, and what to do: the lines after the first


class Rule:
    """Base of every rule. Subclasses set the class attributes and implement ``check``."""

    code: ClassVar[str]  # stable id, e.g. "GF001"
    name: ClassVar[str]  # kebab-case name, e.g. "computed-outside-tape"
    summary: ClassVar[str]  # one line for the rule table
    applicability: ClassVar[Applicability] = Applicability.SAFE
    severity: ClassVar[Severity] = Severity.ERROR
    # Why the rule's fix is unsafe or display-only, when it always is (one sentence, shown beside the fix).
    unsafe_reason: ClassVar[str] = ""
    # The runtime break categories (see gradfix.categories) this rule explains.
    categories: ClassVar[tuple[str, ...]] = ()
    # Bytes that must occur in a file for the rule to have anything to say; files without any are skipped unparsed.
    needles: ClassVar[tuple[str, ...]] = ("GradientTape",)

    VALID: ClassVar[list[str]] = []
    INVALID: ClassVar[list[Invalid]] = []

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    def wants(self, text: str) -> bool:
        return any(needle in text for needle in self.needles)
