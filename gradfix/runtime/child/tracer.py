"""The line tracer: for each statement of the user's code run while a tape is alive, the values it read and bound."""

import ast
import dis
import linecache
from threading import get_ident

from . import state
from .frames import is_user_file
from .state import LIBRARY, MAX_EVENTS, STATE

# the parts this module reads at every line event, bound once (they are never replaced)
TRACE = STATE.trace
TAPES = STATE.tapes


def _is_tracked(value):
    return isinstance(value, state.TENSOR_TYPES) or isinstance(value, state.NDARRAY) or type(value) is float


def _register(value):
    key = id(value)
    index = TRACE.object_index.get(key)
    if index is not None and TRACE.objects[index] is value:
        return index
    index = len(TRACE.objects)
    TRACE.objects.append(value)
    TRACE.object_index[key] = index
    TRACE.object_seq[index] = TRACE.seq
    return index


_GLOBAL_STORES: dict[object, tuple] = {}  # code object -> names


def _stored_globals(code):
    """The names a function binds in the module through ``global`` (STORE_GLOBAL): its statements' values too."""
    names = _GLOBAL_STORES.get(code)
    if names is None:
        try:
            names = tuple(sorted({i.argval for i in dis.get_instructions(code) if i.opname == "STORE_GLOBAL"}))
        except Exception:
            names = ()
        _GLOBAL_STORES[code] = names
    return names


def _snapshot(frame):
    """The tracked values the frame's locals hold (and the module names its function binds), by name."""
    out = {}
    try:
        items = list(frame.f_locals.items())
        stored = _stored_globals(frame.f_code)
        if stored and frame.f_code.co_name != "<module>":
            module = frame.f_globals
            items += [(name, module[name]) for name in stored if name in module]
    except Exception:
        return out
    # _is_tracked and _register inlined: this runs at every statement of the user's code while a tape is alive
    tracked = state.TENSOR_TYPES + state.NDARRAY
    index_of = TRACE.object_index
    objects = TRACE.objects
    for name, value in items:
        kind = type(value)
        if kind is float or isinstance(value, tracked):
            index = index_of.get(id(value))
            out[name] = index if index is not None and objects[index] is value else _register(value)
        elif (kind is tuple or kind is list) and 0 < len(value) <= 8:
            for position, item in enumerate(value):
                if _is_tracked(item):
                    out["%s[%d]" % (name, position)] = _register(item)
    return out


_BASE_NAMES: dict[str, str] = {}  # a snapshot's name ("pair[1]") -> the variable it is read through ("pair")


_STMT_CACHE: dict[str, dict] = {}


def _statement_map(filename):
    """line -> (statement start line, end line, names read, code) for one file."""
    cached = _STMT_CACHE.get(filename)
    if cached is not None:
        return cached
    table = {}
    try:
        lines = linecache.getlines(filename)
        tree = ast.parse("".join(lines))
    except Exception:
        _STMT_CACHE[filename] = table
        return table

    def names_in(nodes):
        found = set()
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name):
                    found.add(sub.id)
        return found

    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.AST):
            end = max(node.lineno, body[0].lineno - 1)
            header = []
            for field in ("test", "iter", "target", "items"):
                part = getattr(node, field, None)
                if isinstance(part, list):
                    for item in part:
                        header.append(getattr(item, "context_expr", item))
                elif isinstance(part, ast.AST):
                    header.append(part)
            reads = names_in(header)
        else:
            end = getattr(node, "end_lineno", node.lineno) or node.lineno
            if isinstance(node, ast.Assign):
                reads = names_in([node.value]) | names_in([t for t in node.targets if not isinstance(t, ast.Name)])
            elif isinstance(node, ast.AugAssign):
                reads = names_in([node.value, node.target])
            elif isinstance(node, ast.AnnAssign):
                reads = names_in([node.value] if node.value is not None else [])
            else:
                reads = names_in([node])
        code = "".join(lines[node.lineno - 1:end]).strip()
        entry = (node.lineno, end, frozenset(reads), code, type(node).__name__)
        for line in range(node.lineno, end + 1):
            previous = table.get(line)
            # keep the innermost statement for a line
            if previous is None or previous[0] <= node.lineno:
                table[line] = entry
    _STMT_CACHE[filename] = table
    return table


def _close_pending(frame, return_value=None, returning=False):
    key = id(frame)
    pending = TRACE.pending.pop(key, None)
    if pending is None:
        return
    stmt, before, filename, function, recording, serial_start = pending
    after = _snapshot(frame)
    outputs = {}
    for name, index in after.items():
        if before.get(name) != index:
            outputs[name] = index
    if returning and _is_tracked(return_value):
        outputs["<return>"] = _register(return_value)
    reads = {}
    names_read = stmt[2]
    for name, index in before.items():
        base = _BASE_NAMES.get(name)
        if base is None:
            base = _BASE_NAMES[name] = name.split("[", 1)[0]
        if base in names_read:
            reads[name] = index
    TRACE.seq += 1
    TRACE.events.append({
        "seq": TRACE.seq,
        "frame": key,
        "file": filename,
        "line": stmt[0],
        "end_line": stmt[1],
        "code": stmt[3],
        "kind": stmt[4],
        "function": function,
        "reads": reads,
        "outputs": outputs,
        "recording": recording,
        "initial": before,
        "serial_start": serial_start,
        # a line event has already counted the next line; a return has not
        "serial_end": TRACE.line_serial if returning else TRACE.line_serial - 1,
    })
    if len(TRACE.events) > MAX_EVENTS:
        del TRACE.events[: MAX_EVENTS // 2]


def _local_trace(frame, event, arg):
    if STATE.in_gradfix:
        return _local_trace
    try:
        if event == "line":
            code = frame.f_code
            TRACE.current_line = TRACE.last_user_line = (code.co_filename, frame.f_lineno, code.co_name)
            TRACE.current_frame = frame
            TRACE.current_thread = get_ident()
            TRACE.line_serial += 1
            if TAPES.live_tapes:
                table = _statement_map(code.co_filename)
                stmt = table.get(frame.f_lineno)
                pending = TRACE.pending.get(id(frame))
                if pending is not None and stmt is not None and pending[0][0] == stmt[0] and pending[0] is stmt:
                    return _local_trace  # still the same statement
                if pending is not None:
                    _close_pending(frame)
                    before = TRACE.events[-1]["initial"].copy()
                    before.update(TRACE.events[-1]["outputs"])
                    before.pop("<return>", None)
                else:
                    before = _snapshot(frame)
                if stmt is not None:
                    TRACE.pending[id(frame)] = [stmt, before, code.co_filename, code.co_name, bool(TAPES.active_tapes),
                                                TRACE.line_serial]
            else:
                TRACE.pending.pop(id(frame), None)
        elif event == "return":
            if TAPES.live_tapes and id(frame) in TRACE.pending:
                _close_pending(frame, arg, returning=True)
            else:
                TRACE.pending.pop(id(frame), None)
            caller = frame.f_back
            # what runs next belongs to the caller's statement, not to this function's last line
            if caller is not None and _CODE_IS_USER.get(caller.f_code):
                TRACE.current_line = (caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
                TRACE.current_frame = caller
            else:
                TRACE.current_line = LIBRARY
                TRACE.current_frame = None
            TRACE.current_thread = get_ident()
            TRACE.line_serial += 1
    except Exception:
        pass
    return _local_trace


_CODE_IS_USER: dict[object, bool] = {}  # code object -> is the user's


def global_trace(frame, event, arg):
    code = frame.f_code
    user = _CODE_IS_USER.get(code)
    if user is None:
        user = is_user_file(code.co_filename)
        _CODE_IS_USER[code] = user
    if not user:
        return None
    return _local_trace
