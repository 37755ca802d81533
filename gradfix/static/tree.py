"""Walking a LibCST tree fast.

LibCST computes ``node.children`` anew on every access, and the rules walk the
tree many times; the file being analysed has its tree indexed once, and every
walk reads that index (other nodes fall back to ``node.children``).
"""

from __future__ import annotations

from typing import Iterator

import libcst as cst

_children_index: dict[cst.CSTNode, list[cst.CSTNode]] = {}


def index_tree(module: cst.Module) -> dict[cst.CSTNode, list[cst.CSTNode]]:
    """Index ``module``'s children, and make it the tree that ``children`` and ``walk`` read."""
    global _children_index
    index: dict[cst.CSTNode, list[cst.CSTNode]] = {}
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        kids = list(node.children)
        index[node] = kids
        stack.extend(kids)
    _children_index = index
    return index


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    kids = _children_index.get(node)
    return kids if kids is not None else list(node.children)


def walk(root: cst.CSTNode, kind: type | tuple[type, ...] = cst.CSTNode, skip: tuple[type, ...] = ()) -> Iterator:
    """Nodes of ``kind`` under ``root`` in source order; nodes of a ``skip`` type are not entered (but may be yielded)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            yield node
        if node is not root and skip and isinstance(node, skip):
            continue
        stack.extend(reversed(children(node)))
