"""Resolving what a name in the source means, from the module's own imports.

LibCST's QualifiedNameProvider would do this through full scope analysis, which
costs several times the parse; import aliases are all gradfix needs, so they are
read straight off the import statements.
"""

from __future__ import annotations

import libcst as cst

from gradfix.static.tree import walk

# Spellings of one API that gradfix treats as the same thing.
_CANONICAL_PREFIXES = (
    ("tensorflow.compat.v2.", "tensorflow."),
    ("tensorflow.python.keras.", "keras."),
    ("tensorflow.keras.", "keras."),
    ("tf_keras.", "keras."),
    ("keras.api.", "keras."),
    ("keras.src.", "keras."),
    ("numpy.core.", "numpy."),
)

_CANONICAL_EXACT = {
    "tensorflow.keras": "keras",
    "tf_keras": "keras",
    "tensorflow.compat.v2": "tensorflow",
}


def canonical(name: str) -> str:
    if name in _CANONICAL_EXACT:
        return _CANONICAL_EXACT[name]
    for prefix, replacement in _CANONICAL_PREFIXES:
        if name.startswith(prefix):
            return replacement + name[len(prefix):]
    return name


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of attribute accesses on a name, else None."""
    parts: list[str] = []
    # exact types: LibCST's node classes are ABCs, slow to ``isinstance`` on a miss, and these two have no subclasses
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is cst.Name:
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def copied_iterable(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """What ``[v for v in xs]`` (or ``list(xs)``, ``tuple(xs)``) copies: ``xs``; a copy holds the same variables."""
    if isinstance(node, (cst.ListComp, cst.GeneratorExp)):
        loop = node.for_in
        if (loop.inner_for_in is None and not loop.ifs and isinstance(loop.target, cst.Name)
                and isinstance(node.elt, cst.Name) and node.elt.value == loop.target.value):
            return loop.iter
        return None
    if isinstance(node, cst.Call) and dotted(node.func) in {"list", "tuple"} and len(node.args) == 1 and not node.args[0].star:
        return copied_iterable(node.args[0].value) or node.args[0].value
    return None


def _module_name(node: cst.BaseExpression | None) -> str:
    return (dotted(node) or "") if node is not None else ""


class ImportMap:
    """Local names bound by import statements anywhere in the module, and what they stand for."""

    def __init__(self, module: cst.Module):
        self.aliases: dict[str, str] = {}
        collector = _ImportCollector(self.aliases)
        for node in walk(module, (cst.Import, cst.ImportFrom)):
            if isinstance(node, cst.Import):
                collector.visit_Import(node)
            else:
                collector.visit_ImportFrom(node)

    def resolve(self, node: cst.BaseExpression) -> str | None:
        """The canonical dotted name an expression refers to, if it starts from an import."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        target = self.aliases.get(head)
        if target is None:
            return None
        return canonical(f"{target}.{rest}" if rest else target)

    def imports_any(self, *roots: str) -> bool:
        return any(canonical(target).split(".")[0] in roots for target in self.aliases.values())


class _ImportCollector:
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _module_name(alias.name)
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                head = full.split(".")[0]
                self.aliases[head] = head

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or isinstance(node.names, cst.ImportStar):
            return
        module = _module_name(node.module)
        for alias in node.names:
            imported = _module_name(alias.name)
            local = imported
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.aliases[local] = f"{module}.{imported}"
