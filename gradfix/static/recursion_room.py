"""Room to recurse through a deep syntax tree, or a clear refusal.

LibCST's printer, its visitors and its position metadata recurse once per level
of the tree (and several of the rules' helpers do as well), and LibCST's tree is
far deeper than CPython's for some ordinary-looking code: a chain of ``and``
terms, or of adjacent string literals, nests one level per term. Python's
default limit of 1000 frames stops such a walk part way with a RecursionError,
which would leave the file analysed in part. So a deep tree is analysed in a
thread whose stack and recursion limit are sized for its depth, and a tree
deeper than ``MAX_TREE_DEPTH`` is refused with an error naming its depth.
"""

from __future__ import annotations

import ast
import ctypes
import re
import sys
import threading
from typing import Callable, TypeVar

from gradfix.source import quiet_compile_warnings

T = TypeVar("T")

# Trees up to this depth fit in the default limit of 1000 frames, at a few frames a level.
SHALLOW_DEPTH = 150
# Deeper trees are refused: the stack for 50,000 levels is about 600 MB of address space (touched only as used).
MAX_TREE_DEPTH = 50_000
# Measured: LibCST's printer takes 3 frames a level (a 10,000-level chain of ``and`` needs a limit of
# 30,000 and 8 to 16 MB of stack, 30,000 levels 32 to 64 MB); these leave room for the rules' recursion on top.
FRAMES_PER_LEVEL = 6
STACK_BYTES_PER_LEVEL = 12 * 1024
BASE_STACK_BYTES = 16 * 1024 * 1024
BASE_FRAMES = 1000


# LibCST's parser (native code) overflows the default 8 MB stack somewhere between 3,000 and 10,000
# terms of one ``and`` chain; texts with more ``and``/``or`` words than this are measured first.
PARSER_SAFE_CHAIN = 1000
_CHAIN_WORDS = re.compile(r"\b(?:and|or)\b")


def parse_depth(text: str) -> int:
    """About how deep LibCST's tree of ``text`` is, where long ``and``/``or`` chains may make it too deep to
    parse on the default stack; 0 otherwise (the usual case, told from a count of the words)."""
    if text.count("and") + text.count("or") <= PARSER_SAFE_CHAIN:
        return 0
    if sum(1 for _ in _CHAIN_WORDS.finditer(text)) <= PARSER_SAFE_CHAIN:
        return 0
    try:
        with quiet_compile_warnings():
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        # LibCST nests a chain of n terms n - 1 levels deep, where CPython's tree holds them in one list
        below = depth + 1 + (len(node.values) - 1 if isinstance(node, ast.BoolOp) else 0)
        stack.extend((child, below) for child in ast.iter_child_nodes(node))
    return deepest


class TreeTooDeep(Exception):
    def __init__(self, depth: int, limit: int = MAX_TREE_DEPTH):
        on = "" if limit == MAX_TREE_DEPTH else f" on Python {sys.version_info[0]}.{sys.version_info[1]}"
        super().__init__(f"its syntax tree is {depth} levels deep, over gradfix's limit of {limit}{on}")
        self.depth = depth


# Python 3.12 and 3.13 count a call made through ``self.method(**kwargs)`` against a C recursion limit fixed when
# the interpreter was built, which setrecursionlimit does not move (1,500 calls in 3.12.1, 10,000 in 3.13.0; 3.14
# measures the stack instead); LibCST's printer makes one such call a level. A tree deeper than the room it leaves
# would fail part way, so it is refused as too deep, with the limit of this interpreter.
_capped_levels: int | None = None


class _Level:
    reached = 0

    def down(self, depth: int, **options: object) -> None:
        _Level.reached = depth
        if depth < MAX_TREE_DEPTH:
            self.down(depth + 1, **options)


def deepest_tree() -> int:
    """The deepest tree gradfix analyses with this interpreter: MAX_TREE_DEPTH, or less where C recursion is capped."""
    global _capped_levels
    if sys.version_info[:2] not in ((3, 12), (3, 13)):
        return MAX_TREE_DEPTH
    if _capped_levels is None:
        def measure() -> None:
            try:
                _Level().down(0)
            except RecursionError:
                pass

        _Level.reached = 0
        worker = room._start(MAX_TREE_DEPTH, measure)
        try:
            worker.join()
        finally:
            room._release()
        # a tenth left for the frames a rule's own walk adds at the deepest level
        _capped_levels = min(MAX_TREE_DEPTH, _Level.reached * 9 // 10)
    return _capped_levels


class RecursionRoom:
    """Runs work on a deep tree with the stack and recursion limit it needs.

    The recursion limit is the interpreter's, shared by every thread: it is raised
    while any deep run is under way and put back when the last one ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved_limit = 0

    def run(self, depth: int, work: Callable[[], T]) -> T:
        if depth <= SHALLOW_DEPTH:
            return work()
        if depth > MAX_TREE_DEPTH:
            raise TreeTooDeep(depth)
        if depth > (limit := deepest_tree()):
            raise TreeTooDeep(depth, limit)
        outcome: dict[str, object] = {}

        def in_thread() -> None:
            try:
                outcome["value"] = work()
            except BaseException as error:  # noqa: BLE001 - handed back to the waiting thread
                outcome["error"] = error

        worker = self._start(depth, in_thread)
        try:
            worker.join()
        except BaseException as stop:
            # a timeout or an interrupt in the waiting thread: stop the work too, then pass the stop on
            _raise_in(worker, type(stop))
            worker.join()
            raise
        finally:
            self._release()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["value"]  # type: ignore[return-value]

    def _start(self, depth: int, target: Callable[[], None]) -> threading.Thread:
        with self._lock:
            if self._running == 0:
                self._saved_limit = sys.getrecursionlimit()
            self._running += 1
            sys.setrecursionlimit(max(sys.getrecursionlimit(), BASE_FRAMES + depth * FRAMES_PER_LEVEL))
            previous = threading.stack_size(BASE_STACK_BYTES + depth * STACK_BYTES_PER_LEVEL)
            try:
                worker = threading.Thread(target=target, name="gradfix-deep-tree", daemon=True)
                worker.start()
            except BaseException:
                self._running -= 1
                if self._running == 0:
                    sys.setrecursionlimit(self._saved_limit)
                raise
            finally:
                threading.stack_size(previous)
        return worker

    def _release(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                sys.setrecursionlimit(self._saved_limit)


def _raise_in(thread: threading.Thread, kind: type[BaseException]) -> None:
    """Raise ``kind`` in ``thread`` at its next bytecode (how a timeout reaches work running off the main thread)."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(kind))


# One per process, as the recursion limit it keeps is.
room = RecursionRoom()
