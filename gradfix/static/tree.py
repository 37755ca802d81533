"""Walking a LibCST tree fast.

LibCST computes ``node.children`` anew on every access, by running the node's
whole visit machinery, and the rules walk the tree many times. The file being
analysed has its tree indexed once, and every walk reads that index (other
nodes fall back to ``node.children``). The index reads a node's fields
directly, in the order LibCST's own ``children`` gives them, learnt once per
kind of node and set of filled fields. Each top-level statement, and each statement of a top-level class, is
indexed on its own and its index kept while its node lives: after an edit, only the statements whose nodes the
parse made anew (``gradfix.static.piecewise``) are indexed again, and the module's index is joined from theirs,
by the nodes' ids (a LibCST node hashes in Python, an int in C).
"""

from __future__ import annotations

import bisect
import dataclasses
import sys
import threading
import typing
from collections import OrderedDict
from typing import Any, Iterator

import libcst as cst


class _Indexed(threading.local):
    """The tree this thread is analysing, indexed: each thread its own (the language server analyses an edit
    while a diagnose run joins its findings in another thread)."""

    children: dict[int, list[cst.CSTNode]] = {}  # by the node's id
    tree: "_Tree | None" = None


_indexed = _Indexed()

# layout that no rule reads: whitespace, comments, commas, brackets (the operators are kept)
LAYOUT = (
    cst.SimpleWhitespace, cst.ParenthesizedWhitespace, cst.TrailingWhitespace, cst.EmptyLine, cst.Newline,
    cst.Comment, cst.Comma, cst.Dot, cst.Colon, cst.Semicolon, cst.AssignEqual, cst.LeftParen, cst.RightParen,
    cst.LeftSquareBracket, cst.RightSquareBracket, cst.LeftCurlyBrace, cst.RightCurlyBrace,
)

_FIELDS: dict[type, tuple[str, ...]] = {}
# (node type, the fields holding nodes) -> those fields in lexical order, or None where they interleave
_ORDER: dict[tuple[type, tuple[str, ...]], tuple[str, ...] | None] = {}


def _fields(kind: type) -> tuple[str, ...]:
    """The fields of a kind of node that can hold a node other than layout, by their declared types."""
    names = _FIELDS.get(kind)
    if names is None:
        try:
            hints = typing.get_type_hints(kind)
        except Exception:  # noqa: BLE001 - an annotation that does not resolve: read every field
            hints = {}
        names = _FIELDS[kind] = tuple(
            field.name for field in dataclasses.fields(kind)
            if field.name not in hints or _may_hold_content(hints[field.name])
        )
    return names


def _may_hold_content(annotation: object) -> bool:
    parts = _annotation_parts(annotation)
    if not all(isinstance(part, type) for part in parts):
        return True  # a type variable or a string: cannot tell
    return any(isinstance(part, type) and issubclass(part, cst.CSTNode) and not _layout_only(part) for part in parts)


def _annotation_parts(annotation: object) -> list[object]:
    arguments = typing.get_args(annotation)
    if not arguments:
        return [type(None) if annotation is None else annotation]
    return [part for argument in arguments for part in _annotation_parts(argument)]


def _layout_only(kind: type) -> bool:
    """Whether every node of ``kind`` is layout (``BaseParenthesizableWhitespace`` is, through its subclasses)."""
    if issubclass(kind, LAYOUT):
        return True
    # LibCST makes each node class anew with slots: the class it replaced stays among the subclasses
    subclasses = [sub for sub in kind.__subclasses__() if getattr(sys.modules.get(sub.__module__), sub.__name__, None) is sub]
    return bool(subclasses) and all(_layout_only(subclass) for subclass in subclasses)


_NOT_NODE, _NODE, _LAYOUT_NODE, _SEQUENCE = 0, 1, 2, 3
# what a field's value is, by its type: LibCST's node classes are ABCs, whose isinstance checks cost
# far more than one dictionary lookup per type
_VALUE_KIND: dict[type, int] = {}


def _value_kind(kind: type) -> int:
    found = _VALUE_KIND.get(kind)
    if found is None:
        if issubclass(kind, LAYOUT):
            found = _LAYOUT_NODE
        elif issubclass(kind, cst.CSTNode):
            found = _NODE
        elif issubclass(kind, (list, tuple)):
            found = _SEQUENCE
        else:
            found = _NOT_NODE
        _VALUE_KIND[kind] = found
    return found


def _filled(node: cst.CSTNode) -> tuple[list[str], dict[str, list[cst.CSTNode]]]:
    present: list[str] = []
    values: dict[str, list[cst.CSTNode]] = {}
    for name in _fields(type(node)):
        value = getattr(node, name)
        kind = _VALUE_KIND.get(type(value))
        if kind is None:
            kind = _value_kind(type(value))
        if kind == _NODE:
            present.append(name)
            values[name] = [value]
        elif kind == _SEQUENCE and value:
            nodes = [item for item in value if _value_kind(type(item)) == _NODE]
            if nodes:
                present.append(name)
                values[name] = nodes
    return present, values


def is_kind(node: object, kind: type | tuple[type, ...]) -> bool:
    """``isinstance(node, kind)``, remembered per type of node (see ``_VALUE_KIND``)."""
    key = (type(node), kind)
    found = _IS_KIND.get(key)
    if found is None:
        found = _IS_KIND[key] = isinstance(node, kind)
    return found


_IS_KIND: dict[tuple[type, object], bool] = {}


def _learn_order(node: cst.CSTNode, present: list[str], values: dict[str, list[cst.CSTNode]]) -> tuple[str, ...] | None:
    owner = {id(item): name for name, items in values.items() for item in items}
    order: list[str] = []
    for child in node.children:
        if _value_kind(type(child)) == _LAYOUT_NODE:
            continue
        name = owner.get(id(child))
        if name is None:
            return None
        if not order or order[-1] != name:
            if name in order:
                return None
            order.append(name)
    return tuple(order) if len(order) == len(present) else None


def node_children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node.children`` less layout, without running LibCST's visitor."""
    fields = _FIELDS.get(type(node))
    if fields is not None and not fields:
        return []  # a name, a number, an operator: two nodes in five, nothing to read
    present, values = _filled(node)
    key = (type(node), tuple(present))
    if key not in _ORDER:
        _ORDER[key] = _learn_order(node, present, values)
    order = _ORDER[key]
    if order is None:
        return [child for child in node.children if _value_kind(type(child)) != _LAYOUT_NODE]
    return [child for name in order for child in values[name]]


@dataclasses.dataclass(frozen=True)
class _Unit:
    """One statement's subtree indexed: a statement an edit left alone keeps its node, so its index is kept too."""

    root: cst.CSTNode
    nodes: list[cst.CSTNode]  # in source order, the statement first
    ids: list[int]
    kids: list[list[cst.CSTNode]]
    last: list[int]  # the number of the last node in each node's subtree (the statement's numbers, from 0)
    parents: dict[int, cst.CSTNode]  # by the child's id: each node's parent, but the statement's own
    by_type: dict[type, list[int]]
    depth: int  # levels below the statement


_units: "OrderedDict[int, _Unit]" = OrderedDict()
_units_lock = threading.Lock()
UNIT_CACHE_NODES = 200_000  # the nodes of the statements kept indexed (an index takes ~0.5 KB a node)
_unit_nodes = [0]


def _unit(root: cst.CSTNode) -> _Unit:
    key = id(root)
    with _units_lock:
        known = _units.get(key)
        if known is not None and known.root is root:
            _units.move_to_end(key)
            return known
    nodes: list[cst.CSTNode] = []
    kids_of: list[list[cst.CSTNode]] = []
    parents: dict[int, cst.CSTNode] = {}
    by_type: dict[type, list[int]] = {}
    stack: list[cst.CSTNode] = [root]
    levels: list[int] = [0]
    depth = 0
    while stack:
        node = stack.pop()
        level = levels.pop()
        depth = level if level > depth else depth
        number = len(nodes)
        nodes.append(node)
        found = by_type.get(type(node))
        if found is None:
            found = by_type[type(node)] = []
        found.append(number)
        kids = node_children(node)
        kids_of.append(kids)
        for child in kids:
            parents[id(child)] = node
        stack.extend(reversed(kids))
        levels.extend([level + 1] * len(kids))
    ids = list(map(id, nodes))
    order = dict(zip(ids, range(len(nodes))))
    last = list(range(len(nodes)))
    for number in range(len(nodes) - 1, -1, -1):
        kids = kids_of[number]
        if kids:
            last[number] = last[order[id(kids[-1])]]
    unit = _Unit(root, nodes, ids, kids_of, last, parents, by_type, depth)
    with _units_lock:
        replaced = _units.get(key)  # a node that was dropped, whose id a new node took
        _unit_nodes[0] += len(nodes) - (len(replaced.nodes) if replaced is not None else 0)
        _units[key] = unit
        while _unit_nodes[0] > UNIT_CACHE_NODES and len(_units) > 1:
            _, dropped = _units.popitem(last=False)
            _unit_nodes[0] -= len(dropped.nodes)
    return unit


def forget_indexes() -> None:
    """Drop the statements' indexes kept, and this thread's index of the tree it analysed last: after each file of
    a batch check, and in tests of an analysis from nothing."""
    with _units_lock:
        _units.clear()
        _unit_nodes[0] = 0
    _indexed.children = {}
    _indexed.tree = None


def _statements_apart(module: cst.Module) -> set[int]:
    """The ids of the statements indexed each on its own: the top-level ones, and those of top-level classes' bodies."""
    apart: set[int] = set()
    for statement in module.body:
        body = getattr(statement, "body", None) if isinstance(statement, cst.ClassDef) else None
        if isinstance(body, cst.IndentedBlock):
            apart.update(map(id, body.body))
        else:
            apart.add(id(statement))
    return apart


def index_tree(module: cst.Module) -> tuple[dict[int, list[cst.CSTNode]], dict[int, int], dict[int, cst.CSTNode], int]:
    """Index ``module``'s children and number its nodes in source order; make it the tree ``children`` and ``walk`` read.

    Returns, by each node's id, its children, its number and its parent; and the tree's depth (the levels below
    the module), which bounds how deep a recursive walk of it goes. Each top-level statement and each statement of
    a top-level class is indexed once per node (see ``_Unit``), and the module's index joined from theirs."""
    index: dict[int, list[cst.CSTNode]] = {}
    order: dict[int, int] = {}
    parents: dict[int, cst.CSTNode] = {}
    by_type: dict[type, tuple[list[int], list[cst.CSTNode]]] = {}
    nodes: list[cst.CSTNode] = []
    last: list[int] = []
    joined: list[int] = []  # the numbers of the nodes indexed here rather than in a statement's unit
    units: list[tuple[int, _Unit]] = []  # each statement's unit, and the number of its first node
    apart = _statements_apart(module)
    stack: list[cst.CSTNode] = [module]
    levels: list[int] = [0]
    depth = 0
    while stack:
        node = stack.pop()
        level = levels.pop()
        number = len(nodes)
        if id(node) in apart:
            unit = _unit(node)
            depth = max(depth, level + unit.depth)
            nodes.extend(unit.nodes)
            index.update(zip(unit.ids, unit.kids))
            order.update(zip(unit.ids, range(number, number + len(unit.nodes))))
            parents.update(unit.parents)
            last.extend(map(number.__add__, unit.last))
            units.append((number, unit))
            continue
        depth = level if level > depth else depth
        order[id(node)] = number
        nodes.append(node)
        last.append(number)
        joined.append(number)
        found = by_type.get(type(node))
        if found is None:
            found = by_type[type(node)] = ([], [])
        found[0].append(number)
        found[1].append(node)
        kids = node_children(node)
        index[id(node)] = kids
        for child in kids:
            parents[id(child)] = node
        stack.extend(reversed(kids))
        levels.extend([level + 1] * len(kids))
    # the last number in each node's subtree: its descendants are numbered right after it
    for number in reversed(joined):
        kids = index[id(nodes[number])]
        if kids:
            last[number] = last[order[id(kids[-1])]]
    _indexed.children = index
    _indexed.tree = _Tree(order, last, by_type, units)
    return index, order, parents, depth


class _Tree:
    """The indexed tree's nodes by type, in source order, for walks that select by kind; a type's nodes are
    gathered from the statements' units when a walk first asks for them (the rules ask for a few types)."""

    def __init__(self, order: dict[int, int], last: list[int], joined: dict[type, tuple[list[int], list[cst.CSTNode]]],
                 units: list[tuple[int, _Unit]]):
        self.order = order
        self.last = last
        self._joined = joined  # the nodes indexed outside the units, by type
        self._units = units
        self._by_type: dict[type, tuple[list[int], list[cst.CSTNode]]] = {}
        self._types: dict[object, list[type]] = {}
        self._present: set[type] | None = None

    def types(self, kind: type | tuple[type, ...]) -> list[type]:
        found = self._types.get(kind)
        if found is None:
            if self._present is None:
                self._present = set(self._joined).union(*(unit.by_type for _, unit in self._units))
            found = self._types[kind] = [t for t in self._present if issubclass(t, kind)]
        return found

    def of_type(self, kind_type: type) -> tuple[list[int], list[cst.CSTNode]]:
        """The numbers and nodes of one type, in source order."""
        found = self._by_type.get(kind_type)
        if found is None:
            numbers: list[int] = []
            nodes: list[cst.CSTNode] = []
            for first, unit in self._units:
                local = unit.by_type.get(kind_type)
                if local:
                    numbers.extend(map(first.__add__, local))
                    nodes.extend(map(unit.nodes.__getitem__, local))
            for number, node in zip(*self._joined.get(kind_type, ((), ()))):
                at = bisect.bisect_left(numbers, number)  # few: the module, its classes' lines and bodies
                numbers.insert(at, number)
                nodes.insert(at, node)
            found = self._by_type[kind_type] = (numbers, nodes)
        return found

    def select(self, root: cst.CSTNode, kind: type | tuple[type, ...]) -> list[cst.CSTNode] | None:
        first = self.order.get(id(root))
        if first is None:
            return None
        end = self.last[first]
        parts: list[tuple[list[int], list[cst.CSTNode], int, int]] = []
        for kind_type in self.types(kind):
            numbers, nodes = self.of_type(kind_type)
            start = bisect.bisect_left(numbers, first)
            stop = bisect.bisect_right(numbers, end, start)
            if start < stop:
                parts.append((numbers, nodes, start, stop))
        if len(parts) == 1:
            _, nodes, start, stop = parts[0]
            return nodes[start:stop]
        merged = [(numbers[i], nodes[i]) for numbers, nodes, start, stop in parts for i in range(start, stop)]
        merged.sort(key=lambda pair: pair[0])
        return [node for _, node in merged]


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    kids = _indexed.children.get(id(node))
    return kids if kids is not None else node_children(node)


def walk(root: cst.CSTNode, kind: type | tuple[type, ...] = cst.CSTNode, skip: tuple[type, ...] = ()) -> Iterator[Any]:
    """Nodes of ``kind`` under ``root`` in source order; nodes of a ``skip`` type are not entered (but may be yielded)."""
    # Any: the nodes are of the kind asked for, which callers rely on
    tree = _indexed.tree
    if not skip and kind is not cst.CSTNode and tree is not None:
        selected = tree.select(root, kind)
        if selected is not None:
            yield from selected
            return
    stack = [root]
    while stack:
        node = stack.pop()
        if is_kind(node, kind):
            yield node
        if node is not root and skip and is_kind(node, skip):
            continue
        stack.extend(reversed(children(node)))
