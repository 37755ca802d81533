"""gradfix's child side: run a user's training program with TensorFlow instrumented.

This file runs under the user's own interpreter (``gradfix diagnose --python``),
so it uses the standard library and TensorFlow only: no gradfix imports, no
third-party packages. It is run by path:

    python bootstrap.py TARGET [ARGS...]

with the environment variables

    GRADFIX_FACTS   the JSON file to write the facts to (never stdout)
    GRADFIX_STEPS   how many training steps to let run (default 1)

TARGET is ``train.py``, ``train.py:function`` or ``package.module:function``
(or ``package.module`` to run a module as ``__main__``).

What is recorded: where each variable was created and each Keras layer was
constructed, every ``GradientTape.gradient`` call with its sources and which
came back None, the optimizer's ``apply``/``apply_gradients`` calls, and for
each variable without a gradient the *frontier*: the last tensor still
connected to it and the first statement whose result is no longer connected.
"""

import ast
import json
import linecache
import os
import site
import sys
import sysconfig
import time
import traceback

FACTS_VERSION = 2
_THIS_FILE = os.path.abspath(__file__)
_START = time.time()
MAX_EVENTS = 20000
MAX_TENSORS_QUERIED = 400
LIBRARY = ("", 0, "")  # the current line once user code has returned into a library (Keras's train_step)
MAX_OPS = 50000  # op records kept while a tape is alive (oldest dropped first)
MAX_OPS_PROBED = 300  # ops of one statement probed for the cut
# Ops whose output depends on the input's shape only: they never carry the gradient path.
ASSIGN_OPS = frozenset(("AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"))
SHAPE_OPS = frozenset(("Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike", "BroadcastGradientArgs"))


class GradfixStop(BaseException):
    """Raised from inside the user's program once enough steps have run.

    A BaseException, so that a user's ``except Exception`` does not swallow it."""


# --------------------------------------------------------------------------- user frames

def _library_dirs():
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            path = sysconfig.get_paths().get(key)
        except Exception:
            path = None
        if path:
            dirs.add(os.path.realpath(path))
    try:
        for path in site.getsitepackages():
            dirs.add(os.path.realpath(path))
    except Exception:
        pass
    try:
        dirs.add(os.path.realpath(site.getusersitepackages()))
    except Exception:
        pass
    dirs.add(os.path.realpath(os.path.dirname(os.__file__)))
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs if d))


_LIB_DIRS = _library_dirs()
_USER_FILE_CACHE = {}


def is_user_file(filename):
    known = _USER_FILE_CACHE.get(filename)
    if known is not None:
        return known
    result = True
    if not filename or filename.startswith("<"):
        result = False
    else:
        real = os.path.realpath(filename)
        if real == _THIS_FILE or real.startswith(_LIB_DIRS):
            result = False
        elif os.sep + "site-packages" + os.sep in real or os.sep + "dist-packages" + os.sep in real:
            result = False
    _USER_FILE_CACHE[filename] = result
    return result


def _rel(path):
    try:
        path = os.path.abspath(path)
    except Exception:
        pass
    return path


def _column(frame):
    """1-based column of the frame's current instruction (Python 3.11+), else None."""
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None:
        return None
    try:
        index = frame.f_lasti // 2
        for position, entry in enumerate(positions()):
            if position == index:
                column = entry[2]
                return None if column is None else column + 1
    except Exception:
        return None
    return None


def site_of_frame(frame, line=None):
    code = frame.f_code
    lineno = line if line is not None else frame.f_lineno
    return {
        "file": _rel(code.co_filename),
        "line": lineno,
        "column": _column(frame) if line is None else None,
        "function": code.co_name,
        "code": linecache.getline(code.co_filename, lineno).strip(),
    }


def first_user_site(skip=1):
    frame = sys._getframe(skip)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return site_of_frame(frame)
        frame = frame.f_back
    return None


def caller_site(skip=1):
    """The frame that called into TensorFlow, user code or not."""
    frame = sys._getframe(skip)
    return site_of_frame(frame) if frame is not None else None


def trimmed_traceback(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    kept = []
    for index, entry in enumerate(frames):
        if is_user_file(entry.filename) or index == len(frames) - 1:
            kept.append({
                "file": _rel(entry.filename),
                "line": entry.lineno,
                "function": entry.name,
                "code": (entry.line or "").strip(),
                "user": is_user_file(entry.filename),
            })
    lines = ["Traceback (most recent call last, user frames only):"]
    for entry in kept:
        lines.append('  File "%s", line %s, in %s' % (entry["file"], entry["line"], entry["function"]))
        if entry["code"]:
            lines.append("    " + entry["code"])
    message = str(exc)
    if len(message) > 4000:
        message = message[:4000] + " ..."
    lines.append("%s: %s" % (type(exc).__name__, message))
    return {"type": type(exc).__name__, "message": message, "frames": kept, "traceback": "\n".join(lines)}


# --------------------------------------------------------------------------- state

class State(object):
    def __init__(self):
        self.facts_path = os.environ.get("GRADFIX_FACTS")
        self.steps = max(1, int(os.environ.get("GRADFIX_STEPS", "1") or 1))
        self.status = "exited-before-gradient"
        self.error = None
        self.exit_code = None
        self.stopped_after_steps = None
        self.gradient_calls = []
        self.applies = []
        self.notes = []
        self.tf_version = None
        self.keras_version = None
        self.first_site = None  # (file, line) of the first gradient call site: one hit per step
        self.first_site_hits = 0
        self.fit_depth = 0  # inside how many model.fit calls
        self.fits_cut = set()  # user call sites of the fit calls cut short after their first step(s)
        self.var_sites = {}  # id(tf variable) -> (variable, created_at, layer object or None)
        self.layers = {}  # id(layer) -> (layer, class name, built_at)
        self.reads = {}  # id(tf variable) -> {"outside": site, "tapes": set(tape ids)}
        self.active_tapes = []  # tapes currently recording
        self.live_tapes = {}  # id(tape) -> first event seq while alive (pushed, no gradient asked yet)
        self.tape_windows = {}  # id(tape) -> first seq
        self.tape_watched_tensors = {}  # id(tape) -> set(id(tensor))
        self.tape_objects = {}  # id(tape) -> tape (all tapes of the current step)
        self.current_line = None  # (file, line, function) of the user statement running now, or LIBRARY
        self.last_user_line = None  # (file, line, function) of the latest user line event
        self.events = []
        self.seq = 0
        self.objects = []  # tracked values, by index
        self.object_index = {}  # id -> index
        self.object_seq = {}  # index -> seq of the first binding seen
        self.pending = {}  # id(frame) -> [stmt key, before snapshot, file, func, line]
        self.previous_sources = {}  # gradient site -> [kind of each source]
        self.in_gradfix = False
        self.line_serial = 0  # counts user line events: ops, conversions and assigns are stamped with it
        self.ops = []  # [serial, file, line, recording, op type, inputs, outputs, attrs] while a tape is alive
        self.conversions = []  # [serial, file, line, recording, tensor, how, in tf.function]
        self.constants = []  # [serial, file, line, recording, tensor, made from, in tf.numpy_function]
        self.op_callback = None
        self.var_order = {}  # id(tf variable) -> creation number
        self.grad_owner = {}  # id(gradient) -> key of the variable it was computed for
        self.gradient_counts = {}  # id(tape) -> gradient calls so far
        self.tape_serials = {}  # id(tape) -> line serial when it was first pushed
        self.layer_stack = []  # the Keras layers being called now, innermost last
        self.graph_mode_noted = set()  # (file, line) of conversions inside tf.functions already noted


STATE = State()
tf = None
_TENSOR_TYPES = ()
_VARIABLE_TYPES = ()
_NDARRAY = ()


def write_facts():
    if not STATE.facts_path:
        return
    data = {
        "version": FACTS_VERSION,
        "status": STATE.status,
        "tensorflow_version": STATE.tf_version,
        "keras_version": STATE.keras_version,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "error": STATE.error,
        "exit_code": STATE.exit_code,
        "steps": STATE.steps,
        "stopped_after_steps": STATE.stopped_after_steps,
        "gradient_calls": STATE.gradient_calls,
        "applies": STATE.applies,
        "notes": STATE.notes,
        "elapsed": round(time.time() - _START, 3),
    }
    temporary = STATE.facts_path + ".tmp"
    try:
        with open(temporary, "w") as out:
            json.dump(data, out, default=str)
        os.replace(temporary, STATE.facts_path)
    except Exception:
        pass


# --------------------------------------------------------------------------- describing values

def _tf_var(value):
    """The tf.Variable under a Keras 3 variable (or the tf.Variable itself), else None."""
    if isinstance(value, _VARIABLE_TYPES):
        return value
    inner = getattr(value, "_value", None)
    if inner is not None and isinstance(inner, _VARIABLE_TYPES):
        return inner
    return None


def _shape(value):
    try:
        shape = value.shape
        return [None if d is None else int(d) for d in shape]
    except Exception:
        return None


def _dtype(value):
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return type(value).__name__
    name = getattr(dtype, "name", None)
    return str(name if name is not None else dtype)


def _var_name(value, var):
    path = getattr(value, "path", None)
    if isinstance(path, str) and path:
        return path
    name = getattr(var if var is not None else value, "name", None) or ""
    if name.endswith(":0"):
        name = name[:-2]
    return name


def _is_float_dtype(value):
    dtype = getattr(value, "dtype", None)
    try:
        return bool(tf.as_dtype(dtype).is_floating or tf.as_dtype(dtype).is_complex)
    except Exception:
        return False


def layer_info(layer):
    if layer is None:
        return None
    entry = STATE.layers.get(id(layer))
    built_at = entry[2] if entry is not None else None
    return {"class": type(layer).__name__, "name": getattr(layer, "name", None), "built_at": built_at}


def _var_key(value, var, path):
    """The variable's name, made unique by its creation order when two variables share it
    (two unnamed tf.Variables are both "Variable"): facts are keyed by identity, not by name."""
    if isinstance(getattr(value, "path", None), str):
        return path
    name = getattr(var, "name", None)
    same = sorted((STATE.var_order.get(id(v), 0), id(v)) for v, _, _ in STATE.var_sites.values()
                  if getattr(v, "name", None) == name)
    if len(same) < 2:
        return path
    for position, (_, ident) in enumerate(same):
        if ident == id(var):
            return "%s#%d" % (path, position + 1)
    return path


def describe_source(index, value, grad):
    var = _tf_var(value)
    info = {
        "index": index,
        "kind": "variable" if var is not None else ("tensor" if isinstance(value, _TENSOR_TYPES) else "other"),
        "type": type(value).__name__,
        "path": None,
        "name": None,
        "shape": _shape(value),
        "dtype": _dtype(value),
        "trainable": None,
        "gradient_is_none": grad is None,
        "created_at": None,
        "layer": None,
        "read": None,
        "read_outside_at": None,
    }
    if var is not None:
        info["path"] = _var_name(value, var)
        info["key"] = _var_key(value, var, info["path"])
        info["name"] = info["path"].split("/")[-1]
        trainable = getattr(value, "trainable", None)
        info["trainable"] = bool(trainable) if trainable is not None else bool(getattr(var, "trainable", True))
        site_entry = STATE.var_sites.get(id(var))
        if site_entry is not None:
            info["created_at"] = site_entry[1]
            info["layer"] = layer_info(site_entry[2])
        reads = STATE.reads.get(id(var))
        if reads is None:
            info["read"] = "never"
        else:
            info["read"] = "in-tape" if reads["tapes"] else "outside-tape"
            info["read_outside_at"] = reads["outside"]
    else:
        info["path"] = info["name"] = "<%s %s %s>" % (info["type"], info["dtype"], info["shape"])
    return info


# --------------------------------------------------------------------------- tracing user frames

def _is_tracked(value):
    return isinstance(value, _TENSOR_TYPES) or isinstance(value, _NDARRAY) or type(value) is float


def _register(value):
    key = id(value)
    index = STATE.object_index.get(key)
    if index is not None and STATE.objects[index] is value:
        return index
    index = len(STATE.objects)
    STATE.objects.append(value)
    STATE.object_index[key] = index
    STATE.object_seq[index] = STATE.seq
    return index


def _snapshot(frame):
    out = {}
    try:
        items = list(frame.f_locals.items())
    except Exception:
        return out
    for name, value in items:
        if _is_tracked(value):
            out[name] = _register(value)
        elif type(value) in (tuple, list) and 0 < len(value) <= 8:
            for position, item in enumerate(value):
                if _is_tracked(item):
                    out["%s[%d]" % (name, position)] = _register(item)
    return out


_STMT_CACHE = {}


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
    pending = STATE.pending.pop(key, None)
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
    for name, index in before.items():
        base = name.split("[", 1)[0]
        if base in stmt[2]:
            reads[name] = index
    STATE.seq += 1
    STATE.events.append({
        "seq": STATE.seq,
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
        "serial_end": STATE.line_serial if returning else STATE.line_serial - 1,
    })
    if len(STATE.events) > MAX_EVENTS:
        del STATE.events[: MAX_EVENTS // 2]


def _local_trace(frame, event, arg):
    if STATE.in_gradfix:
        return _local_trace
    try:
        if event == "line":
            code = frame.f_code
            STATE.current_line = STATE.last_user_line = (code.co_filename, frame.f_lineno, code.co_name)
            STATE.line_serial += 1
            if STATE.live_tapes:
                table = _statement_map(code.co_filename)
                stmt = table.get(frame.f_lineno)
                pending = STATE.pending.get(id(frame))
                if pending is not None and stmt is not None and pending[0][0] == stmt[0] and pending[0] is stmt:
                    return _local_trace  # still the same statement
                if pending is not None:
                    _close_pending(frame)
                    before = STATE.events[-1]["initial"].copy()
                    before.update(STATE.events[-1]["outputs"])
                    before.pop("<return>", None)
                else:
                    before = _snapshot(frame)
                if stmt is not None:
                    STATE.pending[id(frame)] = [stmt, before, code.co_filename, code.co_name, bool(STATE.active_tapes),
                                                STATE.line_serial]
            else:
                STATE.pending.pop(id(frame), None)
        elif event == "return":
            if STATE.live_tapes and id(frame) in STATE.pending:
                _close_pending(frame, arg, returning=True)
            else:
                STATE.pending.pop(id(frame), None)
            caller = frame.f_back
            # what runs next belongs to the caller's statement, not to this function's last line
            if caller is not None and _CODE_IS_USER.get(caller.f_code):
                STATE.current_line = (caller.f_code.co_filename, caller.f_lineno, caller.f_code.co_name)
            else:
                STATE.current_line = LIBRARY
            STATE.line_serial += 1
    except Exception:
        pass
    return _local_trace


_CODE_IS_USER = {}


def _global_trace(frame, event, arg):
    code = frame.f_code
    user = _CODE_IS_USER.get(code)
    if user is None:
        user = is_user_file(code.co_filename)
        _CODE_IS_USER[code] = user
    if not user:
        return None
    return _local_trace


# --------------------------------------------------------------------------- the frontier

def _gradient_of(tape, original_gradient, target, sources):
    try:
        if getattr(tape, "_recording", False):
            with tape.stop_recording():
                return original_gradient(tape, target, sources)
        return original_gradient(tape, target, sources)
    except Exception:
        return [None] * len(sources)


def _event_site(event):
    return {"file": _rel(event["file"]), "line": event["line"], "end_line": event["end_line"],
            "function": event["function"], "code": event["code"], "recording": event["recording"]}


def _value_summary(index):
    value = STATE.objects[index]
    return {"type": type(value).__name__, "shape": _shape(value), "dtype": _dtype(value)}


def frontier(tape, original_gradient, target, lost):
    """For the variables in ``lost`` (watched by ``tape``, gradient None): where does the path break?"""
    start = STATE.tape_windows.get(id(tape), 0)
    start_serial = STATE.tape_serials.get(id(tape), 0)
    events = [e for e in STATE.events if e["seq"] > start]
    # every tracked value seen in the window, in order of appearance
    order = []
    seen = set()
    binding = {}  # index -> (event, name) that bound it first in the window
    for event in events:
        for name, index in event["initial"].items():
            if index not in seen:
                seen.add(index)
                order.append(index)
                binding.setdefault(index, (event, name, True))
        for name, index in event["outputs"].items():
            if index not in seen:
                seen.add(index)
                order.append(index)
            known = binding.get(index)
            if known is None or (known[1] == "<return>" and name != "<return>"):
                binding[index] = (event, name, False)
    order = order[-MAX_TENSORS_QUERIED:]
    lost_vars = [value for value in lost]
    lost_tf = [_tf_var(v) for v in lost_vars]
    # A: which tracked values depend on which lost variable
    depends = {}
    for index in order:
        value = STATE.objects[index]
        row = []
        var = _tf_var(value)
        if var is not None:
            row = [lv is not None and var is lv for lv in lost_tf]
        elif any(value is lv for lv in lost_vars):  # a watched tensor source itself
            row = [value is lv for lv in lost_vars]
        elif isinstance(value, _TENSOR_TYPES) and _is_float_dtype(value):
            grads = _gradient_of(tape, original_gradient, value, lost_vars)
            row = [g is not None for g in grads]
        else:
            row = [False] * len(lost_vars)
        depends[index] = row
    # B: which tracked values the target depends on (gradient-wise), then backwards along the data flow
    targets = [t for t in tf.nest.flatten(target)]
    target_ids = set(id(t) for t in targets)
    reach = set(i for i in order if id(STATE.objects[i]) in target_ids)
    floats = [i for i in order if isinstance(STATE.objects[i], _TENSOR_TYPES) and _is_float_dtype(STATE.objects[i])
              and _tf_var(STATE.objects[i]) is None]
    if floats:
        grads = _gradient_of(tape, original_gradient, target, [STATE.objects[i] for i in floats])
        for index, grad in zip(floats, grads):
            if grad is not None:
                reach.add(index)
    for event in reversed(events):
        if any(index in reach for index in event["outputs"].values()):
            reach.update(event["reads"].values())
    results = []
    for position, variable in enumerate(lost_vars):
        connected = [i for i in order if depends.get(i) and depends[i][position] and _tf_var(STATE.objects[i]) is None
                     and STATE.objects[i] is not variable]
        connected_set = set(connected)
        var_itself = set(i for i in order if depends.get(i) and depends[i][position])
        breaking = None
        fallback = None
        for event in events:
            read_connected = [n for n, i in event["reads"].items() if i in var_itself]
            if not read_connected or not event["outputs"]:
                continue
            outs = list(event["outputs"].values())
            if any(i in connected_set for i in outs):
                continue
            if any(i in reach for i in outs):
                breaking = (event, read_connected)
                break
            if fallback is None:
                fallback = (event, read_connected)
        info = {"connected_tensors": len(connected), "last_connected": None, "break": None,
                "break_reaches_target": breaking is not None}
        if connected:
            last = max(connected, key=lambda i: STATE.object_seq.get(i, 0))
            event, name, initial = binding.get(last, (None, None, None))
            entry = _value_summary(last)
            entry["name"] = name
            if event is not None:
                entry.update({"file": _rel(event["file"]), "function": event["function"]})
                if initial:
                    entry["line"] = None
                    entry["bound"] = "on entry to %s" % event["function"]
                else:
                    entry["line"] = event["line"]
                    entry["code"] = event["code"]
            info["last_connected"] = entry
            # was it read afterwards at all?
            info["last_connected_read"] = any(last in e["reads"].values() for e in events)
        chosen = breaking or fallback
        if chosen is not None:
            event, read_connected = chosen
            site = _event_site(event)
            site["reads_connected"] = read_connected
            site["outputs"] = [dict(name=n, **_value_summary(i)) for n, i in event["outputs"].items()]
            site["outputs_reach_target"] = breaking is not None
            site["output_is_target"] = any(id(STATE.objects[i]) in target_ids for i in event["outputs"].values())
            info["break"] = site
            info["cut"] = (cut_at(tape, original_gradient, event, variable)
                           or constant_in(event, target, start_serial))
        if info.get("cut") is None:
            info["path_cut"] = cut_on_path(tape, original_gradient, target, variable, start_serial)
        info["assign"] = connected_assign(tape, original_gradient, variable, start_serial)
        info["conversion"] = _connected_conversion(tape, original_gradient, variable, start_serial, events, reach)
        results.append(info)
    return results


# --------------------------------------------------------------------------- what ran at each statement

def _stamp():
    """(serial, file, line, recording) of the user statement running now (file "" and line 0 in library code)."""
    current = STATE.current_line
    if current is None:
        return None
    return [STATE.line_serial, current[0], current[1], bool(STATE.active_tapes)]


def _on_op(op_type, inputs, attrs, outputs, op_name=None, graph=None):
    """Every op run while a tape is alive, stamped with the user statement that ran it."""
    if STATE.in_gradfix or graph is not None or not STATE.live_tapes:
        return None
    stamp = _stamp()
    if stamp is None:
        return None
    try:
        stamp.extend([op_type, tuple(inputs or ()), tuple(outputs or ()), attrs,
                      STATE.layer_stack[-1] if STATE.layer_stack else None,
                      _owning_metric(2) if op_type in ASSIGN_OPS else None])
        STATE.ops.append(stamp)
        if len(STATE.ops) > MAX_OPS:
            del STATE.ops[: MAX_OPS // 2]
    except Exception:
        pass
    return None


def _set_op_callback(on):
    from tensorflow.python.framework import op_callbacks
    if on and STATE.op_callback is None:
        op_callbacks.add_op_callback(_on_op)
        STATE.op_callback = _on_op
    elif not on and STATE.op_callback is not None:
        try:
            op_callbacks.remove_op_callback(_on_op)
        except Exception:
            pass
        STATE.op_callback = None


def _inside_tf_function():
    frame = sys._getframe(2)
    depth = 0
    while frame is not None and depth < 80:
        if frame.f_code.co_filename.endswith("polymorphic_function.py") and frame.f_code.co_name == "__call__":
            return True
        frame = frame.f_back
        depth += 1
    return False


def _install_conversion_hooks():
    """`.numpy()`, `np.asarray(t)`, `float(t)`, `int(t)`: a tensor leaving TensorFlow, seen with its statement."""
    from tensorflow.python.framework import ops as tf_ops
    base = tf_ops._EagerTensorBase
    for name, how in (("numpy", ".numpy()"), ("__array__", "a NumPy conversion"), ("__float__", "float()"),
                      ("__int__", "int()"), ("__index__", "an integer index")):
        original = base.__dict__.get(name)
        if original is None:
            continue

        def make(original, how):
            def wrapper(self, *args, **kwargs):
                if STATE.live_tapes and not STATE.in_gradfix:
                    stamp = _stamp()
                    if stamp is not None:
                        try:
                            if _is_float_dtype(self):
                                in_function = _inside_tf_function()
                                stamp.extend([self, how, in_function])
                                STATE.conversions.append(stamp)
                                if in_function:
                                    _note_graph_mode(stamp, how)
                        except Exception:
                            pass
                return original(self, *args, **kwargs)
            wrapper.__name__ = getattr(original, "__name__", "wrapper")
            return wrapper

        setattr(base, name, make(original, how))


def _install_constant_hook():
    """Tensors made from NumPy arrays or Python numbers while a tape is alive: the way back into
    TensorFlow after a NumPy round trip (``tf.convert_to_tensor(np.log(...))``, ``tf.numpy_function``)."""
    from tensorflow.python.framework import constant_op
    original = constant_op.convert_to_eager_tensor

    def convert_to_eager_tensor(value, ctx, dtype=None):
        tensor = original(value, ctx, dtype)
        # NumPy values only: Python numbers become constants everywhere (tf.random.normal's mean=0.0)
        if STATE.live_tapes and not STATE.in_gradfix and isinstance(value, _NDARRAY):
            stamp = _stamp()
            if stamp is not None:
                try:
                    if _is_float_dtype(tensor):
                        stamp.extend([tensor, type(value).__name__, _called_from("script_ops.py")])
                        STATE.constants.append(stamp)
                except Exception:
                    pass
        return tensor

    constant_op.convert_to_eager_tensor = convert_to_eager_tensor


def _called_from(filename_end, depth=12):
    frame = sys._getframe(2)
    while frame is not None and depth:
        if frame.f_code.co_filename.endswith(filename_end):
            return True
        frame = frame.f_back
        depth -= 1
    return False


def _note_graph_mode(stamp, how):
    """A conversion inside a tf.function works only because gradfix runs functions eagerly: say so, once per line."""
    key = (stamp[1], stamp[2])
    if key in STATE.graph_mode_noted or not stamp[2]:
        return
    STATE.graph_mode_noted.add(key)
    STATE.notes.append({"kind": "instrumentation", "site": {"file": _rel(stamp[1]), "line": stamp[2]}, "message": (
        "%s runs inside a tf.function here: gradfix runs functions eagerly, where it works, but in graph mode "
        "(without gradfix) it raises, or sees a symbolic tensor" % how)})


def _owning_metric(skip=2):
    frame = sys._getframe(skip)
    depth = 0
    while frame is not None and depth < 30:
        candidate = frame.f_locals.get("self") if "self" in frame.f_code.co_varnames else None
        if candidate is not None:
            for cls in type(candidate).__mro__:
                if cls.__name__ == "Metric" and cls.__module__.startswith(("keras", "tf_keras")):
                    return type(candidate).__name__
        frame = frame.f_back
        depth += 1
    return None


def _in_statement(record, event):
    """Did this op or conversion run while the event's statement ran (in functions it called too)?"""
    return event["serial_start"] <= record[0] <= event["serial_end"]


def _no_registered_gradient(op_type):
    from tensorflow.python.framework import ops as tf_ops
    try:
        return tf_ops._gradient_registry.lookup(op_type) is None
    except LookupError:
        return True
    except Exception:
        return False


def _connected_many(tape, original_gradient, values, source):
    """For each value: does it depend on ``source`` (a variable or watched tensor)?"""
    out = []
    for value in values:
        if isinstance(value, _TENSOR_TYPES) and _is_float_dtype(value):
            out.append(_gradient_of(tape, original_gradient, value, [source])[0] is not None)
        else:
            out.append(False)
    return out


def _describe_op(record, cut_input=None):
    op_type, outputs, attrs = record[4], record[6], record[7]
    info = {"op": op_type, "line": record[2], "file": _rel(record[1]), "recording": record[3],
            "output_dtypes": [_dtype(o) for o in outputs[:4]], "no_registered_gradient": _no_registered_gradient(op_type)}
    if cut_input is not None:
        info["input_shape"] = _shape(cut_input)
        info["input_dtype"] = _dtype(cut_input)
    if outputs:
        info["output_shape"] = _shape(outputs[0])
    try:
        pairs = dict(zip(attrs[::2], attrs[1::2])) if attrs else {}
        if "DstT" in pairs:
            info["dst_dtype"] = getattr(pairs["DstT"], "name", str(pairs["DstT"]))
    except Exception:
        pass
    return info


def cut_at(tape, original_gradient, event, source):
    """What, in the statement of ``event``, took the path from ``source`` away: a NumPy conversion,
    a state update, or the first op whose input depends on the source while its output does not."""
    for record in STATE.conversions:
        if _in_statement(record, event):
            if _connected_many(tape, original_gradient, [record[4]], source)[0]:
                return {"kind": "numpy-conversion", "how": record[5], "line": record[2], "file": _rel(record[1]),
                        "in_tf_function": record[6]}
    for record in STATE.ops:
        if record[4] in ASSIGN_OPS and _in_statement(record, event) and len(record[5]) > 1:
            if _connected_many(tape, original_gradient, [record[5][1]], source)[0]:
                return _describe_assign(record)
    probed = 0
    for record in STATE.ops:
        if not _in_statement(record, event) or record[4] in SHAPE_OPS:
            continue
        probed += 1
        if probed > MAX_OPS_PROBED:
            break
        inputs = [i for i in record[5] if isinstance(i, _TENSOR_TYPES)]
        connected_inputs = [i for i, c in zip(inputs, _connected_many(tape, original_gradient, inputs, source)) if c]
        if not connected_inputs:
            continue
        if any(_connected_many(tape, original_gradient, list(record[6]), source)):
            continue
        return _cut_info(record, connected_inputs[0])
    return None


def cut_on_path(tape, original_gradient, target, source, start_serial):
    """The first op upstream of the target (by the tensors ops passed on) whose input depends on
    ``source`` while its output does not: the op that cut the path, wherever it ran (library code too)."""
    probed = 0
    upstream = _upstream_records(target, start_serial)
    # the outputs the target is computed from: argsort's values output stays connected, its indices do not
    consumed = set(id(t) for t in tf.nest.flatten(target)) | set(id(i) for record in upstream for i in record[5])
    for record in upstream:
        if record[4] in SHAPE_OPS:
            continue
        inputs = [i for i in record[5] if isinstance(i, _TENSOR_TYPES) and _is_float_dtype(i)]
        if not inputs:
            continue
        probed += 1
        if probed > MAX_OPS_PROBED:
            break
        connected_inputs = [i for i, c in zip(inputs, _connected_many(tape, original_gradient, inputs, source)) if c]
        used = [o for o in record[6] if id(o) in consumed] or list(record[6])
        if not connected_inputs or any(_connected_many(tape, original_gradient, used, source)):
            continue
        return _cut_info(record, connected_inputs[0])
    return None


def _connected_conversion(tape, original_gradient, source, start_serial, events, reach):
    """A tensor that depends on ``source`` turned into NumPy or a Python number by a statement whose
    result the target is computed from (``pred = model.predict(x)`` inside the tape)."""
    feeding = [e for e in events if any(i in reach for i in e["outputs"].values())]
    for record in STATE.conversions:
        if record[0] < start_serial:
            continue
        if not any(_in_statement(record, event) for event in feeding):
            continue
        if _connected_many(tape, original_gradient, [record[4]], source)[0]:
            return {"kind": "numpy-conversion", "how": record[5], "line": record[2], "file": _rel(record[1]),
                    "code": linecache.getline(record[1], record[2]).strip(), "in_tf_function": record[6]}
    return None


def _upstream_records(target, start_serial):
    records = [r for r in STATE.ops if r[0] >= start_serial]
    producer = {}
    for position, record in enumerate(records):
        for output in record[6]:
            producer[id(output)] = position
    upstream = set()
    todo = [producer[id(t)] for t in tf.nest.flatten(target) if id(t) in producer]
    while todo:
        position = todo.pop()
        if position in upstream:
            continue
        upstream.add(position)
        for value in records[position][5]:
            earlier = producer.get(id(value))
            if earlier is not None and earlier < position and earlier not in upstream:
                todo.append(earlier)
    return [records[p] for p in sorted(upstream)]


def feeds_target(target, value, start_serial):
    """Is ``value`` an input of an op the target was computed from (would watching it give a gradient)?"""
    if any(value is t for t in tf.nest.flatten(target)):
        return True
    return any(any(i is value for i in record[5]) for record in _upstream_records(target, start_serial))


def _cut_info(record, connected_input):
    info = _describe_op(record, connected_input)
    info["code"] = linecache.getline(record[1], record[2]).strip()
    if record[4] in ("StopGradient", "PreventGradient"):
        info["kind"] = "stop-gradient"
    elif any(d == "variant" for d in info["output_dtypes"]):
        # a tf.data dataset made from the tensor: model.predict/evaluate, or a Dataset in the step
        info["kind"] = "numpy-conversion"
        info["how"] = "tf.data (model.predict feeds its input through a dataset and returns NumPy)"
    else:
        info["kind"] = "op"
    if len(record) > 8 and record[8] is not None:
        info["layer"] = layer_info(record[8])
    return info


def constant_in(event, target, start_serial):
    """A tensor made from NumPy or a Python number by the event's statement, that the target is computed from:
    a statement that read a connected tensor and handed on a constant has taken a round trip through NumPy."""
    for record in STATE.constants:
        if not _in_statement(record, event):
            continue
        if not feeds_target(target, record[4], start_serial) and not any(
                record[4] is STATE.objects[i] for i in event["outputs"].values()):
            continue
        info = {"line": record[2], "file": _rel(record[1]), "recording": record[3],
                "code": linecache.getline(record[1], record[2]).strip()}
        if record[6]:
            info.update({"kind": "op", "op": "EagerPyFunc", "output_dtypes": [_dtype(record[4])],
                         "no_registered_gradient": False, "how": "tf.numpy_function"})
        else:
            info.update({"kind": "numpy-conversion", "how": "a NumPy value (%s) made into a tensor again" % record[5]})
        return info
    return None


def _describe_assign(record):
    method = {"AssignVariableOp": "assign", "AssignAddVariableOp": "assign_add", "AssignSubVariableOp": "assign_sub"}[record[4]]
    return {"kind": "state-update", "method": method, "line": record[2], "file": _rel(record[1]),
            "code": linecache.getline(record[1], record[2]).strip(), "variable": _variable_of_handle(record[5][0]),
            "metric": record[9] if len(record) > 9 else None}


def _variable_of_handle(handle):
    for var, _, _ in STATE.var_sites.values():
        try:
            if getattr(var, "handle", None) is handle:
                return _var_name(var, var)
        except Exception:
            pass
    return None


def connected_assign(tape, original_gradient, source, start_serial):
    """A value that depends on ``source`` stored into a variable during the tape's window."""
    for record in STATE.ops:
        if record[0] < start_serial or record[4] not in ASSIGN_OPS or len(record[5]) < 2:
            continue
        if _connected_many(tape, original_gradient, [record[5][1]], source)[0]:
            return _describe_assign(record)
    return None


def target_origin(target, tape=None):
    """Where each part of the target was computed, and whether a tape was recording then."""
    wanted = {id(t): t for t in tf.nest.flatten(target)}
    found = None
    for record in reversed(STATE.ops):
        if any(id(o) in wanted for o in record[6]):
            found = {"op": record[4], "file": _rel(record[1]), "line": record[2], "recording": record[3],
                     "code": linecache.getline(record[1], record[2]).strip(), "function": ""}
            break
    if found is None and len(wanted) == 1:
        start = STATE.tape_windows.get(id(tape), 0)
        in_window = set((e["file"], e["line"], name) for e in STATE.events if e["seq"] > start for name in e["outputs"])
        found = _bound_before_window(next(iter(wanted.values())), in_window)
    return found


def _bound_before_window(value, in_window):
    """A target no op of the tape's window produced: find the user's name for it and where it was assigned."""
    if not isinstance(value, _TENSOR_TYPES):
        return None
    frame = sys._getframe(2)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            for scope in (frame.f_locals, frame.f_globals):
                for name, bound in list(scope.items()):
                    if bound is value:
                        line = _assignment_line(frame.f_code.co_filename, name, frame.f_lineno,
                                                frame.f_code.co_name if scope is frame.f_locals else "<module>")
                        if line is not None and (frame.f_code.co_filename, line, name) not in in_window:
                            return {"op": None, "file": _rel(frame.f_code.co_filename), "line": line, "recording": False,
                                    "before_window": True, "name": name,
                                    "code": linecache.getline(frame.f_code.co_filename, line).strip(), "function": ""}
        frame = frame.f_back
    return None


def _assignment_line(filename, name, before, function):
    """The line of the last plain assignment to ``name`` in ``function`` (or at module level) before ``before``."""
    try:
        tree = ast.parse("".join(linecache.getlines(filename)))
    except Exception:
        return None
    scopes = [tree] if function == "<module>" else [n for n in ast.walk(tree)
                                                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function]
    best = None
    for scope in scopes:
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                if function == "<module>" and node not in tree.body:
                    continue
                if node.lineno <= before and (best is None or node.lineno > best):
                    best = node.lineno
    return best


# --------------------------------------------------------------------------- wrappers

def _install_tape_wrappers():
    tape_cls = tf.GradientTape
    original_init = tape_cls.__init__
    original_gradient = tape_cls.gradient
    original_push = tape_cls._push_tape
    original_pop = tape_cls._pop_tape
    original_watch = tape_cls.watch

    def __init__(self, persistent=False, watch_accessed_variables=True):
        original_init(self, persistent=True, watch_accessed_variables=watch_accessed_variables)
        self._gradfix_user_persistent = persistent

    def _push_tape(self):
        original_push(self)
        STATE.active_tapes.append(self)
        if id(self) not in STATE.live_tapes:
            if not STATE.live_tapes:
                # a new window: what earlier windows ran is no longer needed
                del STATE.ops[:], STATE.conversions[:], STATE.constants[:]
                try:
                    _set_op_callback(True)
                except Exception as problem:
                    STATE.notes.append({"kind": "internal-error", "message": "op callback: %s" % problem})
            STATE.tape_serials.setdefault(id(self), STATE.line_serial)
            STATE.live_tapes[id(self)] = STATE.seq
            STATE.tape_windows.setdefault(id(self), STATE.seq)
            STATE.tape_objects[id(self)] = self

    def _pop_tape(self):
        original_pop(self)
        try:
            STATE.active_tapes.remove(self)
        except ValueError:
            pass

    def watch(self, tensor):
        original_watch(self, tensor)
        watched = STATE.tape_watched_tensors.setdefault(id(self), {})
        for item in tf.nest.flatten(tensor):
            watched[id(item)] = item

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients=None):
        if STATE.in_gradfix:
            return original_gradient(self, target, sources, output_gradients=output_gradients,
                                     unconnected_gradients=unconnected_gradients or tf.UnconnectedGradients.NONE)
        here = caller_site(2)
        site_key = (here["file"], here["line"]) if here else None
        flat_sources = tf.nest.flatten(sources)
        kinds = ["variable" if _tf_var(s) is not None else "tensor" for s in flat_sources]
        if STATE.first_site is None:
            STATE.first_site = site_key
        if site_key == STATE.first_site:
            STATE.first_site_hits += 1
            if STATE.first_site_hits > STATE.steps:
                previous = STATE.previous_sources.get(site_key)
                if previous is not None and len(previous) == len(kinds):
                    rebound = [i for i, (a, b) in enumerate(zip(previous, kinds)) if a == "variable" and b == "tensor"]
                    if rebound:
                        STATE.notes.append({"kind": "rebound", "site": here, "positions": rebound,
                                            "message": "sources that were variables at the previous step are plain tensors now"})
                        last_call = None
                        for call in reversed(STATE.gradient_calls):
                            if call["site_key"] == list(site_key):
                                last_call = call
                                break
                        if last_call is not None:
                            for position in rebound:
                                if position < len(last_call["sources"]):
                                    last_call["sources"][position]["rebound_next_step"] = True
                STATE.stopped_after_steps = STATE.steps
                raise GradfixStop()
        STATE.previous_sources[site_key] = kinds
        calls_before = STATE.gradient_counts.get(id(self), 0)
        STATE.gradient_counts[id(self)] = calls_before + 1
        if calls_before and not getattr(self, "_gradfix_user_persistent", True):
            STATE.notes.append({"kind": "instrumentation", "site": here, "message": (
                "a second gradient call on a tape that is not persistent: without gradfix, TensorFlow raises "
                "RuntimeError here (gradfix makes every tape persistent to ask its own questions); "
                "open the tape with GradientTape(persistent=True)")})
        kwargs = {}
        if output_gradients is not None:
            kwargs["output_gradients"] = output_gradients
        if unconnected_gradients is not None:
            kwargs["unconnected_gradients"] = unconnected_gradients
        try:
            result = original_gradient(self, target, sources, **kwargs)
        except Exception:
            # A target that is not a tensor (np.mean(...) of the prediction, a Python float) makes
            # TensorFlow raise: it is the missing gradient itself, so record it, then let the error go on.
            if not _non_tensor_targets(target):
                raise
            STATE.in_gradfix = True
            try:
                _record_gradient_call(self, original_gradient, target, flat_sources, [None] * len(flat_sources),
                                      here, site_key, unconnected_gradients)
            except Exception as problem:
                STATE.notes.append({"kind": "internal-error", "message": "%s: %s" % (type(problem).__name__, problem),
                                    "traceback": traceback.format_exc()[-3000:]})
            finally:
                STATE.in_gradfix = False
                STATE.live_tapes.pop(id(self), None)
            write_facts()
            raise
        STATE.in_gradfix = True
        try:
            _record_gradient_call(self, original_gradient, target, flat_sources, tf.nest.flatten(result),
                                  here, site_key, unconnected_gradients)
        except Exception as problem:  # never break the user's program for a bookkeeping error
            STATE.notes.append({"kind": "internal-error", "message": "%s: %s" % (type(problem).__name__, problem),
                                "traceback": traceback.format_exc()[-3000:]})
        finally:
            STATE.in_gradfix = False
            STATE.live_tapes.pop(id(self), None)
            if not STATE.live_tapes:
                _set_op_callback(False)
        write_facts()
        return result

    tape_cls.__init__ = __init__
    tape_cls._push_tape = _push_tape
    tape_cls._pop_tape = _pop_tape
    tape_cls.watch = watch
    tape_cls.gradient = gradient


def _non_tensor_targets(target):
    """The type names of the target's parts that TensorFlow cannot differentiate (NumPy values, Python numbers)."""
    try:
        parts = tf.nest.flatten(target)
    except Exception:
        parts = [target]
    return [type(t).__name__ for t in parts if not isinstance(t, _TENSOR_TYPES) and _tf_var(t) is None]


def _depends_on_watched(tape, original_gradient, target):
    """Does the target depend on anything the tape watched (a variable or a watched tensor)?"""
    try:
        watched = list(tape.watched_variables())
    except Exception:
        watched = []
    watched += list(STATE.tape_watched_tensors.get(id(tape), {}).values())[:50]
    if not watched:
        return False
    return any(g is not None for g in _gradient_of(tape, original_gradient, target, watched))


def _record_gradient_call(tape, original_gradient, target, flat_sources, flat_grads, here, site_key, unconnected):
    zero_is_none = False
    if unconnected is not None and str(unconnected).lower().endswith("zero"):
        # The user asked for zeros instead of None: ask again to tell them apart.
        zero_is_none = True
        flat_grads = tf.nest.flatten(_gradient_of(tape, original_gradient, target, flat_sources))
    watched = set()
    try:
        for v in tape.watched_variables():
            inner = _tf_var(v)
            watched.add(id(inner if inner is not None else v))
    except Exception:
        pass
    watched_tensors = STATE.tape_watched_tensors.get(id(tape), {})
    sources = []
    lost = []
    lost_positions = []
    for index, (value, grad) in enumerate(zip(flat_sources, flat_grads)):
        info = describe_source(index, value, grad)
        var = _tf_var(value)
        if var is not None:
            info["watched"] = id(var) in watched
            reads = STATE.reads.get(id(var))
            if reads is not None:
                others = [t for t in reads["tapes"] if t != id(tape)]
                info["read_by_other_tape"] = bool(others)
                info["read_by_this_tape"] = id(tape) in reads["tapes"]
                if others and grad is None:
                    # would another tape have given a gradient?
                    for other_id in others:
                        other = STATE.tape_objects.get(other_id)
                        if other is None:
                            continue
                        got = _gradient_of(other, original_gradient, target, [value])[0]
                        if got is not None:
                            info["other_tape_has_gradient"] = True
                            break
        else:
            info["watched"] = id(value) in watched_tensors
            if not info["watched"] and isinstance(value, _TENSOR_TYPES):
                info["feeds_target"] = feeds_target(target, value, STATE.tape_serials.get(id(tape), 0))
        sources.append(info)
        if grad is not None:
            STATE.grad_owner[id(grad)] = info.get("key")
        if grad is None and info["watched"] and (var is not None or isinstance(value, _TENSOR_TYPES)):
            lost.append(value)
            lost_positions.append(index)
    if lost:
        for position, result in zip(lost_positions, frontier(tape, original_gradient, target, lost)):
            sources[position]["frontier"] = result
    targets = tf.nest.flatten(target)
    STATE.gradient_calls.append({
        "index": len(STATE.gradient_calls),
        "step": max(1, STATE.first_site_hits),
        "site": here,
        "site_key": list(site_key) if site_key else None,
        "user_site": first_user_site(3),
        "kind": "tape",
        "tape_persistent_in_program": bool(getattr(tape, "_gradfix_user_persistent", False)),
        "watch_accessed_variables": bool(getattr(tape, "_watch_accessed_variables", True)),
        "target": {
            "types": [type(t).__name__ for t in targets[:4]],
            "not_tensor": _non_tensor_targets(target),
            "description": ", ".join("%s %s %s" % (type(t).__name__, _dtype(t), _shape(t)) for t in targets[:4]),
            "shape": _shape(targets[0]) if len(targets) == 1 else None,
            "dtype": _dtype(targets[0]) if len(targets) == 1 else None,
        },
        "unconnected_zero": zero_is_none,
        "target_origin": target_origin(target, tape),
        "target_depends_on_watched": _depends_on_watched(tape, original_gradient, target),
        "sources": sources,
    })
    STATE.status = "ok"


def _install_variable_hooks():
    from tensorflow.python.ops import resource_variable_ops as rvo

    base = rvo.BaseResourceVariable

    def on_read(self):
        if STATE.in_gradfix:
            return
        entry = STATE.reads.get(id(self))
        if entry is None:
            entry = STATE.reads[id(self)] = {"outside": None, "tapes": set()}
        if STATE.active_tapes:
            for tape in STATE.active_tapes:
                entry["tapes"].add(id(tape))
        elif entry["outside"] is None and STATE.last_user_line is not None:
            filename, line, function = STATE.last_user_line
            entry["outside"] = {"file": _rel(filename), "line": line, "function": function,
                                "code": linecache.getline(filename, line).strip()}

    for name in ("_read_variable_op", "sparse_read", "gather_nd"):
        original = base.__dict__.get(name)
        if original is None:
            continue

        def make(original):
            def wrapper(self, *args, **kwargs):
                try:
                    on_read(self)
                except Exception:
                    pass
                return original(self, *args, **kwargs)
            wrapper.__name__ = getattr(original, "__name__", "wrapper")
            return wrapper

        setattr(base, name, make(original))

    def creator(next_creator, **kwargs):
        variable = next_creator(**kwargs)
        try:
            layer = None
            frame = sys._getframe(1)
            depth = 0
            while frame is not None and depth < 60:
                candidate = frame.f_locals.get("self") if "self" in frame.f_code.co_varnames else None
                if candidate is not None and id(candidate) in STATE.layers:
                    layer = candidate
                    break
                frame = frame.f_back
                depth += 1
            var = _tf_var(variable)
            if var is None:
                var = variable
            STATE.var_sites[id(var)] = (var, first_user_site(2), layer)
            STATE.var_order[id(var)] = len(STATE.var_order)
        except Exception:
            pass
        return variable

    scope = tf.variable_creator_scope(creator)
    scope.__enter__()
    return scope


def _wrap_layer_classes(module_layer_classes):
    for cls in module_layer_classes:
        if cls is None or getattr(cls.__init__, "_gradfix", False):
            continue
        original_init = cls.__init__

        def make(original_init):
            def __init__(self, *args, **kwargs):
                if id(self) not in STATE.layers:
                    try:
                        STATE.layers[id(self)] = (self, type(self).__name__, first_user_site(2))
                    except Exception:
                        pass
                return original_init(self, *args, **kwargs)
            __init__._gradfix = True
            return __init__

        cls.__init__ = make(original_init)
        original_call = cls.__dict__.get("__call__")
        if original_call is not None and not getattr(original_call, "_gradfix", False):
            cls.__call__ = _layer_call(original_call)


def _layer_call(original_call):
    """Keep the stack of layers being called, so that an op can name the layer it ran in."""
    def __call__(self, *args, **kwargs):
        STATE.layer_stack.append(self)
        try:
            return original_call(self, *args, **kwargs)
        finally:
            STATE.layer_stack.pop()
    __call__._gradfix = True
    return __call__


def _wrap_optimizer_classes(classes):
    for cls in classes:
        if cls is None:
            continue
        for method in ("apply_gradients", "apply"):
            original = cls.__dict__.get(method)
            if original is None or getattr(original, "_gradfix", False):
                continue

            def make(original, method):
                def wrapper(self, *args, **kwargs):
                    if not getattr(STATE, "in_apply", False):
                        STATE.in_apply = True
                        entry = None
                        try:
                            args, kwargs = _record_apply(self, method, args, kwargs)
                            entry = STATE.applies[-1]
                        except Exception as problem:
                            STATE.notes.append({"kind": "internal-error", "message": "apply: %s" % problem})
                        try:
                            result = original(self, *args, **kwargs)
                        except Exception as problem:
                            if entry is not None:
                                entry["error"] = {"type": type(problem).__name__, "message": str(problem)[:2000]}
                                write_facts()
                            raise
                        finally:
                            STATE.in_apply = False
                        if entry is not None:
                            entry["completed"] = True
                            write_facts()
                        return result
                    return original(self, *args, **kwargs)
                wrapper._gradfix = True
                wrapper.__name__ = method
                return wrapper

            setattr(cls, method, make(original, method))


def _record_apply(optimizer, method, args, kwargs):
    if method == "apply_gradients":
        pairs = args[0] if args else kwargs.get("grads_and_vars")
        pairs = list(pairs)
        grads = [p[0] for p in pairs]
        variables = [p[1] for p in pairs]
        # the zip was consumed: hand the list back to the real method
        if args:
            args = (pairs,) + tuple(args[1:])
        else:
            kwargs["grads_and_vars"] = pairs
    else:
        grads = list(args[0]) if args else list(kwargs.get("grads", []))
        variables = args[1] if len(args) > 1 else kwargs.get("trainable_variables")
        if variables is None:
            variables = getattr(optimizer, "_trainable_variables", []) or []
        variables = list(variables)
    entries = []
    mismatches = []
    for index, (grad, value) in enumerate(zip(grads, variables)):
        info = describe_source(index, value, grad)
        entries.append(info)
        if grad is None:
            continue
        owner = STATE.grad_owner.get(id(grad))
        grad_shape = None if hasattr(grad, "dense_shape") else _shape(grad)  # IndexedSlices: the pairing check suffices
        if owner is not None and info.get("key") is not None and owner != info["key"]:
            mismatches.append("the gradient computed for %s is applied to %s" % (owner, info["key"]))
        elif grad_shape is not None and info["shape"] is not None and list(grad_shape) != list(info["shape"]):
            mismatches.append("a gradient of shape %s is applied to %s of shape %s" % (grad_shape, info["key"] or info["path"], info["shape"]))
    STATE.applies.append({
        "index": len(STATE.applies),
        "method": method,
        "optimizer": type(optimizer).__name__,
        "site": first_user_site(3),
        "after_gradient_call": len(STATE.gradient_calls) - 1,
        "variables": entries,
        "mismatches": mismatches,
        "completed": False,
    })
    write_facts()
    return args, kwargs


def instrument():
    global tf, _TENSOR_TYPES, _VARIABLE_TYPES, _NDARRAY
    import tensorflow as tf_module
    tf = tf_module
    STATE.tf_version = getattr(tf, "__version__", None)
    from tensorflow.python.types import core as tf_core
    _TENSOR_TYPES = (tf_core.Tensor,)
    _VARIABLE_TYPES = (tf.Variable,)
    try:
        import numpy
        _NDARRAY = (numpy.ndarray, numpy.generic)
    except Exception:
        _NDARRAY = ()
    try:
        tf.config.run_functions_eagerly(True)
    except Exception:
        pass
    import warnings
    # gradfix's own doing, not the program's: tf.data functions stay in graph mode, which is fine here
    warnings.filterwarnings("ignore", message="Even though the `tf.config.experimental_run_functions_eagerly`")
    _install_tape_wrappers()
    for install in (_install_conversion_hooks, _install_constant_hook):
        try:
            install()
        except Exception as problem:
            STATE.notes.append({"kind": "internal-error", "message": "%s: %s" % (install.__name__, problem)})
    STATE.creator_scope = _install_variable_hooks()  # keep it: a collected scope exits
    layer_classes = []
    optimizer_classes = []
    try:
        import keras
        STATE.keras_version = getattr(keras, "__version__", None)
        layer_classes.append(keras.layers.Layer)
        try:
            from keras.src.optimizers import base_optimizer
            optimizer_classes.append(base_optimizer.BaseOptimizer)
        except Exception:
            pass
        for cls in type.mro(keras.optimizers.Optimizer):
            if cls.__module__.startswith("keras"):
                optimizer_classes.append(cls)
        _force_keras_eager(keras)
    except Exception:
        pass
    if "tf_keras" in sys.modules or _module_available("tf_keras"):
        try:
            import tf_keras
            layer_classes.append(tf_keras.layers.Layer)
            _wrap_fit(getattr(tf_keras, "Model", None))
            for cls in type.mro(tf_keras.optimizers.Optimizer):
                if cls.__module__.startswith("tf_keras"):
                    optimizer_classes.append(cls)
            try:
                for cls in type.mro(tf_keras.optimizers.legacy.Optimizer):
                    if cls.__module__.startswith("tf_keras"):
                        optimizer_classes.append(cls)
            except Exception:
                pass
        except Exception:
            pass
    _wrap_layer_classes(layer_classes)
    _wrap_optimizer_classes(list(dict.fromkeys(optimizer_classes)))


def _module_available(name):
    try:
        import importlib.util
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def _force_keras_eager(keras):
    """model.fit and friends: run the step's Python eagerly so the user's loss is traced."""
    try:
        model_cls = keras.Model
        original_compile = model_cls.compile
        if getattr(original_compile, "_gradfix", False):
            return

        def compile(self, *args, **kwargs):
            kwargs["run_eagerly"] = True
            kwargs["jit_compile"] = False
            return original_compile(self, *args, **kwargs)
        compile._gradfix = True
        model_cls.compile = compile
    except Exception:
        pass
    _wrap_fit(getattr(keras, "Model", None))


def _wrap_fit(model_cls):
    """Stop model.fit after its first step(s) and let the program go on.

    A program often trains with fit and then asks for another gradient (adversarial
    examples, a fine-tuning loop): that later gradient is the one to diagnose. Each
    fit call site is cut once; a fit called again from the same line (a loop over
    epochs) stops the whole program, so the run stays one step long."""
    if model_cls is None:
        return
    original_fit = model_cls.__dict__.get("fit") or getattr(model_cls, "fit", None)
    if original_fit is None or getattr(original_fit, "_gradfix", False):
        return

    def fit(self, *args, **kwargs):
        where = first_user_site(2)
        key = (where["file"], where["line"]) if where else None
        STATE.fit_depth += 1
        try:
            return original_fit(self, *args, **kwargs)
        except GradfixStop:
            if key is None or key in STATE.fits_cut or STATE.fit_depth > 1:
                raise
            STATE.fits_cut.add(key)
            STATE.notes.append({"kind": "fit-cut", "site": where,
                                "message": "model.fit was stopped after %d step(s); the program went on" % STATE.steps})
            # the next gradient call (of this program) counts its steps afresh
            STATE.first_site = None
            STATE.first_site_hits = 0
            STATE.stopped_after_steps = None
            return getattr(self, "history", None)
        finally:
            STATE.fit_depth -= 1

    fit._gradfix = True
    fit.__name__ = "fit"
    try:
        model_cls.fit = fit
    except Exception:
        pass


# --------------------------------------------------------------------------- running the target

def resolve_target(target):
    """('file', path, function or None) or ('module', name, function or None)."""
    function = None
    spec = target
    if ":" in target:
        head, _, tail = target.rpartition(":")
        if head and tail and tail.replace("_", "a").replace(".", "a").isalnum() and not os.path.exists(target):
            spec, function = head, tail
    if spec.endswith(".py") or os.path.exists(spec):
        return "file", os.path.abspath(spec), function
    return "module", spec, function


def run_target(target, args):
    import runpy
    kind, spec, function = resolve_target(target)
    if kind == "file":
        sys.argv = [spec] + list(args)
        sys.path.insert(0, os.path.dirname(spec))
        if function is None:
            runpy.run_path(spec, run_name="__main__")
        else:
            namespace = runpy.run_path(spec, run_name="__gradfix_target__")
            fn = namespace.get(function)
            if fn is None:
                raise LookupError("%s defines no %s" % (spec, function))
            fn()
    else:
        sys.argv = [spec] + list(args)
        sys.path.insert(0, os.getcwd())
        if function is None:
            runpy.run_module(spec, run_name="__main__", alter_sys=True)
        else:
            import importlib
            module = importlib.import_module(spec)
            fn = getattr(module, function, None)
            if fn is None:
                raise LookupError("module %s defines no %s" % (spec, function))
            fn()


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: bootstrap.py TARGET [ARGS...]\n")
        return 2
    target, args = argv[1], argv[2:]
    kind, spec, _ = resolve_target(target)
    if kind == "file" and not os.path.exists(spec):
        STATE.status = "crashed"
        STATE.error = {"type": "FileNotFoundError", "message": "no such file: %s" % spec, "frames": [],
                       "traceback": "FileNotFoundError: no such file: %s" % spec}
        write_facts()
        return 0
    try:
        instrument()
    except ImportError as problem:
        STATE.status = "no-tensorflow"
        STATE.error = {"type": type(problem).__name__, "message": str(problem), "frames": [],
                       "traceback": "%s: %s" % (type(problem).__name__, problem)}
        write_facts()
        return 0
    write_facts()
    # the user's stdout is untouched; gradfix's own output goes to the facts file only
    sys.settrace(_global_trace)
    try:
        run_target(target, args)
        if not STATE.gradient_calls:
            STATE.status = "no-gradient-call"
    except GradfixStop:
        STATE.status = "ok"
    except SystemExit as stop:
        code = stop.code
        STATE.exit_code = code if isinstance(code, int) or code is None else 1
        if not STATE.gradient_calls:
            STATE.status = "exited-before-gradient"
    except KeyboardInterrupt:
        raise
    except BaseException as problem:
        STATE.error = trimmed_traceback(problem)
        STATE.status = "ok" if STATE.gradient_calls else "crashed"
    finally:
        sys.settrace(None)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    write_facts()
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    # Skip interpreter teardown (TensorFlow's can be slow or hang): the facts are written.
    os._exit(code)
