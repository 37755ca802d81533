"""The frontier of a variable without a gradient: the last tensor still connected to it, the first statement
whose result is not, and what TensorFlow did there (the op that cut the path)."""

import ast
import linecache
import sys

from . import compat, state
from .frames import full_path, instruction_span, is_user_file
from .state import ASSIGN_OPS, MAX_OPS_PROBED, MAX_TENSORS_QUERIED, SHAPE_OPS, STATE
from .values import dtype_of, is_float_dtype, layer_info, shape_of, tf_var, var_name

# the parts the searches loop over, bound once (they are never replaced)
TRACE, TAPES, RECORDS = STATE.trace, STATE.tapes, STATE.records


def gradient_of(tape, original_gradient, target, sources):
    try:
        if getattr(tape, "_recording", False):
            with tape.stop_recording():
                return original_gradient(tape, target, sources)
        return original_gradient(tape, target, sources)
    except Exception:
        return [None] * len(sources)


GROUP_LEAF = 4  # a group this small that depends on a source is asked about value by value


def dependence(tape, original_gradient, values, sources):
    """For each value (a float tensor), for each source: does the value depend on it (is its gradient not None)?

    The tape is asked about groups of values: the gradient of a group is None for a source exactly when no value
    of the group depends on it, and one such call costs about what the call for its latest value costs (a
    backward pass over the step so far). Most values depend on no lost variable (the path was cut before them),
    so a step of a few hundred values is answered in a few calls where one call per value made the search grow
    with the square of the step. A group that depends on a source is halved; a small one is asked value by value."""
    rows = [[False] * len(sources) for _ in values]
    todo = [(0, len(values), list(range(len(sources))))] if values and sources else []
    while todo:
        low, high, wanted = todo.pop()
        if high - low <= GROUP_LEAF:
            for position in range(low, high):
                grads = gradient_of(tape, original_gradient, values[position], [sources[k] for k in wanted])
                for k, grad in zip(wanted, grads):
                    rows[position][k] = grad is not None
            continue
        grads = _group_gradient(tape, original_gradient, values[low:high], [sources[k] for k in wanted])
        # a group TensorFlow refused to differentiate as a whole is halved as one that depends on every source
        hit = wanted if grads is None else [k for k, grad in zip(wanted, grads) if grad is not None]
        if hit:
            middle = (low + high) // 2
            todo += [(middle, high, hit), (low, middle, hit)]
    return rows


def _group_gradient(tape, original_gradient, targets, sources):
    """The gradient of the targets' sum for each source, or None when TensorFlow raised."""
    try:
        if getattr(tape, "_recording", False):
            with tape.stop_recording():
                return original_gradient(tape, targets, sources)
        return original_gradient(tape, targets, sources)
    except Exception:
        return None


def connected_any(tape, original_gradient, values, source):
    """Does any of the values (float tensors only count) depend on ``source``? One gradient call for all."""
    floats = [v for v in values if isinstance(v, state.TENSOR_TYPES) and is_float_dtype(v)]
    if not floats:
        return False
    grads = _group_gradient(tape, original_gradient, floats, [source])
    if grads is None:  # asked one by one, as a group TensorFlow refused may have parts it takes
        return any(_connected_many(tape, original_gradient, floats, source))
    return grads[0] is not None


def _connected_groups(tape, original_gradient, groups, source):
    """The positions of the groups (lists of float tensors) of which some tensor depends on ``source``, in order,
    found by halving: a run of groups none of which depends on it costs one gradient call."""
    todo = [(0, len(groups))] if groups else []
    while todo:
        low, high = todo.pop()
        if not connected_any(tape, original_gradient, [value for group in groups[low:high] for value in group], source):
            continue
        if high - low == 1:
            yield low
            continue
        middle = (low + high) // 2
        todo += [(middle, high), (low, middle)]  # the earlier half first


def _event_site(event):
    return {"file": full_path(event["file"]), "line": event["line"], "end_line": event["end_line"],
            "function": event["function"], "code": event["code"], "recording": event["recording"]}


def _value_summary(index):
    value = TRACE.objects[index]
    return {"type": type(value).__name__, "shape": shape_of(value), "dtype": dtype_of(value)}


def frontier(tape, original_gradient, target, lost):
    """For the variables in ``lost`` (watched by ``tape``, gradient None): where does the path break?"""
    start = TAPES.tape_windows.get(id(tape), 0)
    start_serial = TAPES.tape_serials.get(id(tape), 0)
    events = [e for e in TRACE.events if e["seq"] > start]
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
    lost_tf = [tf_var(v) for v in lost_vars]
    # A: which tracked values depend on which lost variable
    depends = {}
    asked = []  # the computed float tensors: whether each depends on a lost variable is the tape's to say
    for index in order:
        value = TRACE.objects[index]
        row = []
        var = tf_var(value)
        if var is not None:
            row = [lv is not None and var is lv for lv in lost_tf]
        elif any(value is lv for lv in lost_vars):  # a watched tensor source itself
            row = [value is lv for lv in lost_vars]
        elif isinstance(value, state.TENSOR_TYPES) and is_float_dtype(value):
            asked.append(index)
        else:
            row = [False] * len(lost_vars)
        depends[index] = row
    rows = dependence(tape, original_gradient, [TRACE.objects[i] for i in asked], lost_vars)
    depends.update(zip(asked, rows))
    # B: which tracked values the target depends on (gradient-wise), then backwards along the data flow
    targets = [t for t in state.tf.nest.flatten(target)]
    target_ids = set(id(t) for t in targets)
    reach = set(i for i in order if id(TRACE.objects[i]) in target_ids)
    floats = [i for i in order if isinstance(TRACE.objects[i], state.TENSOR_TYPES) and is_float_dtype(TRACE.objects[i])
              and tf_var(TRACE.objects[i]) is None]
    if floats:
        grads = gradient_of(tape, original_gradient, target, [TRACE.objects[i] for i in floats])
        for index, grad in zip(floats, grads):
            if grad is not None:
                reach.add(index)
    for event in reversed(events):
        if any(index in reach for index in event["outputs"].values()):
            reach.update(event["reads"].values())
    results = []
    for position, variable in enumerate(lost_vars):
        connected = [i for i in order if depends.get(i) and depends[i][position] and tf_var(TRACE.objects[i]) is None
                     and TRACE.objects[i] is not variable]
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
            last = max(connected, key=lambda i: TRACE.object_seq.get(i, 0))
            event, name, initial = binding.get(last, (None, None, None))
            entry = _value_summary(last)
            entry["name"] = name
            if event is not None:
                entry.update({"file": full_path(event["file"]), "function": event["function"]})
                if initial:
                    entry["line"] = None
                    entry["bound"] = "on entry to %s" % event["function"]
                else:
                    entry["line"] = event["line"]
                    entry["code"] = event["code"]
            info["last_connected"] = entry
            # was it read afterwards at all? (a statement that only stored it into a variable, as a metric's
            # update_state does, read it for bookkeeping: had the loss read that variable, it would be the cut)
            info["last_connected_read"] = any(last in e["reads"].values() and not _only_stored(e) for e in events)
        chosen = breaking or fallback
        if chosen is not None:
            event, read_connected = chosen
            site = _event_site(event)
            site["reads_connected"] = read_connected
            site["outputs"] = [dict(name=n, **_value_summary(i)) for n, i in event["outputs"].items()]
            site["outputs_reach_target"] = breaking is not None
            site["output_is_target"] = any(id(TRACE.objects[i]) in target_ids for i in event["outputs"].values())
            info["break"] = site
            info["cut"] = (cut_at(tape, original_gradient, event, variable, target, start_serial)
                           or constant_in(event, target, start_serial))
        if info.get("cut") is None:
            info["path_cut"] = cut_on_path(tape, original_gradient, target, variable, start_serial)
        info["assign"] = connected_assign(tape, original_gradient, variable, start_serial, target)
        info["conversion"] = _connected_conversion(tape, original_gradient, variable, start_serial, events, reach)
        results.append(info)
    return results


def span_of(record):
    """The source range of the user's expression that made a record (an op, a conversion, a constant):
    computed here, for the one record a cut is named from. None in library code (no user frame ran it)."""
    where = record.where
    if where is None or not record.file:
        return None
    span = instruction_span(where[0], where[1])
    # a line that calls fit made nothing itself: the op ran in a Keras layer, and `model.fit(...)` is no cut
    if span is not None and (full_path(where[0].co_filename), span["line"]) in STATE.run.fit_sites:
        return None
    return span


def _only_stored(event):
    """Did the statement bind nothing, and store into a variable (``metric.update_state(y, pred)``)?"""
    return not event["outputs"] and any(r.op_type in ASSIGN_OPS and _in_statement(r, event) for r in RECORDS.ops)


def _in_statement(record, event):
    """Did this op or conversion run while the event's statement ran (in functions it called too)?"""
    return event["serial_start"] <= record.serial <= event["serial_end"]


def _no_registered_gradient(op_type):
    lookup = compat.PARTS.gradient_lookup
    if lookup is None:
        return None  # not known: this TensorFlow has no registry gradfix can read
    try:
        return lookup(op_type) is None
    except LookupError:
        return True
    except Exception:
        return False


def _connected_many(tape, original_gradient, values, source):
    """For each value: does it depend on ``source`` (a variable or watched tensor)?"""
    out = []
    for value in values:
        if isinstance(value, state.TENSOR_TYPES) and is_float_dtype(value):
            out.append(gradient_of(tape, original_gradient, value, [source])[0] is not None)
        else:
            out.append(False)
    return out


def _describe_op(record, cut_input=None):
    op_type, outputs, attrs = record.op_type, record.outputs, record.attrs
    info = {"op": op_type, "line": record.line, "file": full_path(record.file), "recording": record.recording,
            "output_dtypes": [dtype_of(o) for o in outputs[:4]], "no_registered_gradient": _no_registered_gradient(op_type),
            "span": span_of(record)}
    if cut_input is not None:
        info["input_shape"] = shape_of(cut_input)
        info["input_dtype"] = dtype_of(cut_input)
    if outputs:
        info["output_shape"] = shape_of(outputs[0])
    try:
        pairs = dict(zip(attrs[::2], attrs[1::2])) if attrs else {}
        if "DstT" in pairs:
            info["dst_dtype"] = getattr(pairs["DstT"], "name", str(pairs["DstT"]))
    except Exception:
        pass
    return info


def cut_at(tape, original_gradient, event, source, target=None, start_serial=0):
    """What, in the statement of ``event``, took the path from ``source`` away: a NumPy conversion,
    a state update read back on the way to ``target``, or the first op whose input depends on the source
    while its output does not."""
    for record in RECORDS.conversions:
        if _in_statement(record, event):
            if _connected_many(tape, original_gradient, [record.tensor], source)[0]:
                return {"kind": "numpy-conversion", "how": record.how, "line": record.line, "file": full_path(record.file),
                        "in_tf_function": record.in_tf_function, "span": span_of(record)}
    for record in RECORDS.ops:
        if record.op_type in ASSIGN_OPS and _in_statement(record, event) and len(record.inputs) > 1:
            if (_connected_many(tape, original_gradient, [record.inputs[1]], source)[0]
                    and (target is None or read_back(record, target, start_serial))):
                return _describe_assign(record)
    probed = 0
    for record in RECORDS.ops:
        if not _in_statement(record, event) or record.op_type in SHAPE_OPS:
            continue
        probed += 1
        if probed > MAX_OPS_PROBED:
            break
        inputs = [i for i in record.inputs if isinstance(i, state.TENSOR_TYPES)]
        if not connected_any(tape, original_gradient, inputs, source):
            continue
        if connected_any(tape, original_gradient, list(record.outputs), source):
            continue
        connected_inputs = [i for i, c in zip(inputs, _connected_many(tape, original_gradient, inputs, source)) if c]
        if connected_inputs:
            return _cut_info(record, connected_inputs[0])
    return None


def cut_on_path(tape, original_gradient, target, source, start_serial):
    """The first op upstream of the target (by the tensors ops passed on) whose input depends on
    ``source`` while its output does not: the op that cut the path, wherever it ran (library code too)."""
    upstream = _upstream_records(target, start_serial)
    # the outputs the target is computed from: argsort's values output stays connected, its indices do not
    consumed = set(id(t) for t in state.tf.nest.flatten(target)) | set(id(i) for record in upstream for i in record.inputs)
    probes = []  # (record, its float inputs)
    for record in upstream:
        if record.op_type in SHAPE_OPS:
            continue
        inputs = [i for i in record.inputs if isinstance(i, state.TENSOR_TYPES) and is_float_dtype(i)]
        if inputs:
            probes.append((record, inputs))
        if len(probes) == MAX_OPS_PROBED:
            break
    for position in _connected_groups(tape, original_gradient, [inputs for _, inputs in probes], source):
        record, inputs = probes[position]
        used = [o for o in record.outputs if id(o) in consumed] or list(record.outputs)
        if connected_any(tape, original_gradient, used, source):
            continue
        connected_inputs = [i for i, c in zip(inputs, _connected_many(tape, original_gradient, inputs, source)) if c]
        if connected_inputs:
            return _cut_info(record, connected_inputs[0])
    return None


def _connected_conversion(tape, original_gradient, source, start_serial, events, reach):
    """A tensor that depends on ``source`` turned into NumPy or a Python number by a statement whose
    result the target is computed from (``pred = model.predict(x)`` inside the tape)."""
    feeding = [e for e in events if any(i in reach for i in e["outputs"].values())]
    for record in RECORDS.conversions:
        if record.serial < start_serial:
            continue
        if not any(_in_statement(record, event) for event in feeding):
            continue
        if _connected_many(tape, original_gradient, [record.tensor], source)[0]:
            return {"kind": "numpy-conversion", "how": record.how, "line": record.line, "file": full_path(record.file),
                    "code": linecache.getline(record.file, record.line).strip(), "in_tf_function": record.in_tf_function,
                    "span": span_of(record)}
    return None


def _upstream_records(target, start_serial):
    records = [r for r in RECORDS.ops if r.serial >= start_serial]
    producer = {}
    for position, record in enumerate(records):
        for output in record.outputs:
            producer[id(output)] = position
    upstream = set()
    todo = [producer[id(t)] for t in state.tf.nest.flatten(target) if id(t) in producer]
    while todo:
        position = todo.pop()
        if position in upstream:
            continue
        upstream.add(position)
        for value in records[position].inputs:
            earlier = producer.get(id(value))
            if earlier is not None and earlier < position and earlier not in upstream:
                todo.append(earlier)
    return [records[p] for p in sorted(upstream)]


def feeds_target(target, value, start_serial):
    """Is ``value`` an input of an op the target was computed from (would watching it give a gradient)?"""
    if any(value is t for t in state.tf.nest.flatten(target)):
        return True
    if is_symbolic(value):
        return _in_graph_of(target, value)
    return any(any(i is value for i in record.inputs) for record in _upstream_records(target, start_serial))


def is_symbolic(value):
    """A graph tensor (TensorFlow 1 graph mode: no op of it runs while the program builds it, none is recorded)."""
    return getattr(value, "graph", None) is not None and getattr(value, "op", None) is not None and not hasattr(
        value, "numpy")


MAX_GRAPH_OPS = 100000  # ops walked back from a target in a graph


def _in_graph_of(target, value):
    """Graph mode: is ``value`` among the tensors the ops of the target read, walking the graph back from it?"""
    wanted = (value.graph, value.name)
    todo = [t.op for t in state.tf.nest.flatten(target) if is_symbolic(t) and t.graph is value.graph]
    seen = set()
    while todo and len(seen) < MAX_GRAPH_OPS:
        op = todo.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        for tensor in op.inputs:
            if (tensor.graph, tensor.name) == wanted:
                return True
            todo.append(tensor.op)
    return False


def _cut_info(record, connected_input):
    info = _describe_op(record, connected_input)
    info["code"] = linecache.getline(record.file, record.line).strip()
    if record.op_type in ("StopGradient", "PreventGradient"):
        info["kind"] = "stop-gradient"
    elif any(d == "variant" for d in info["output_dtypes"]):
        # a tf.data dataset made from the tensor: model.predict/evaluate, or a Dataset in the step
        info["kind"] = "numpy-conversion"
        info["how"] = "tf.data (model.predict feeds its input through a dataset and returns NumPy)"
    else:
        info["kind"] = "op"
    if record.layer is not None:
        info["layer"] = layer_info(record.layer)
    return info


def constant_in(event, target, start_serial):
    """A tensor made from NumPy or a Python number by the event's statement, that the target is computed from:
    a statement that read a connected tensor and handed on a constant has taken a round trip through NumPy."""
    for record in RECORDS.constants:
        if not _in_statement(record, event):
            continue
        if not feeds_target(target, record.tensor, start_serial) and not any(
                record.tensor is TRACE.objects[i] for i in event["outputs"].values()):
            continue
        info = {"line": record.line, "file": full_path(record.file), "recording": record.recording,
                "code": linecache.getline(record.file, record.line).strip(), "span": span_of(record)}
        if record.in_numpy_function:
            info.update({"kind": "op", "op": "EagerPyFunc", "output_dtypes": [dtype_of(record.tensor)],
                         "no_registered_gradient": False, "how": "tf.numpy_function"})
        else:
            info.update({"kind": "numpy-conversion", "how": "a NumPy value (%s) made into a tensor again" % record.made_from})
        return info
    return None


def _describe_assign(record):
    method = {"AssignVariableOp": "assign", "AssignAddVariableOp": "assign_add", "AssignSubVariableOp": "assign_sub"}[record.op_type]
    return {"kind": "state-update", "method": method, "line": record.line, "file": full_path(record.file),
            "code": linecache.getline(record.file, record.line).strip(), "variable": _variable_of_handle(record.inputs[0]),
            "metric": record.metric, "span": span_of(record), "callers": _callers_of(record)}


def _callers_of(record):
    where = record.where
    return where[2] if where is not None and len(where) > 2 else []


def _variable_of_handle(handle):
    for var, _, _ in STATE.variables.var_sites.values():
        try:
            if getattr(var, "handle", None) is handle:
                return var_name(var, var)
        except Exception:
            pass
    return None


def connected_assign(tape, original_gradient, source, start_serial, target=None):
    """A value that depends on ``source`` stored into a variable during the tape's window, and read back
    on the way to ``target``."""
    for record in RECORDS.ops:
        if record.serial < start_serial or record.op_type not in ASSIGN_OPS or len(record.inputs) < 2:
            continue
        if (_connected_many(tape, original_gradient, [record.inputs[1]], source)[0]
                and (target is None or read_back(record, target, start_serial))):
            return _describe_assign(record)
    return None


def read_back(assign, target, start_serial):
    """Is the variable ``assign`` stored into read again, after it, by an op the target is computed from?

    A state update cuts the path only when the loss reads what was stored. A layer's own bookkeeping stores
    a connected value that the loss never reads: BatchNormalization's moving statistics in training (the
    batch's own are used), a metric updated beside the loss; naming it would hide the real break."""
    handle = assign.inputs[0]
    for part in state.tf.nest.flatten(target):
        var = tf_var(part)
        if var is not None and getattr(var, "handle", None) is handle:
            return True  # the target is the variable itself (``return self.ema``): read by the gradient call
    position = {id(record): index for index, record in enumerate(RECORDS.ops)}
    after = position.get(id(assign), -1)
    upstream = _upstream_records(target, start_serial)
    for record in upstream:
        if record.op_type in ASSIGN_OPS or not record.inputs or record.inputs[0] is not handle:
            continue
        if position.get(id(record), -1) > after:
            return True
    return _read_unseen(assign, upstream, position, after)


def _read_unseen(assign, upstream, position, after):
    """A read no op callback saw: TensorFlow reads a variable given as the second operand of an operator
    (``F - B``) in C++, without calling back. Such a read is an input that no recorded op made, holding
    exactly the tensor an ``assign`` stored: for a computed tensor of several distinct values, no chance."""
    if assign.op_type != "AssignVariableOp" or len(assign.inputs) < 2:
        return False
    stored = assign.inputs[1]
    made = {id(output) for record in RECORDS.ops for output in record.outputs}
    try:
        wanted = stored.numpy()
    except Exception:
        return False
    if wanted.size < 2 or (wanted == wanted.flat[0]).all():
        return False
    for record in upstream:
        if position.get(id(record), -1) <= after:
            continue
        for value in record.inputs:
            if id(value) in made or value is stored:
                continue
            try:
                if value.dtype == stored.dtype and tuple(value.shape) == tuple(stored.shape) and (value.numpy() == wanted).all():
                    return True
            except Exception:
                continue
    return False


def target_origin(target, tape=None):
    """Where each part of the target was computed, and whether a tape was recording then."""
    wanted = {id(t): t for t in state.tf.nest.flatten(target)}
    found = None
    for record in reversed(RECORDS.ops):
        if any(id(o) in wanted for o in record.outputs):
            found = {"op": record.op_type, "file": full_path(record.file), "line": record.line, "recording": record.recording,
                     "code": linecache.getline(record.file, record.line).strip(), "function": "", "span": span_of(record)}
            break
    if found is None and len(wanted) == 1:
        start = TAPES.tape_windows.get(id(tape), 0)
        in_window = set((e["file"], e["line"], name) for e in TRACE.events if e["seq"] > start for name in e["outputs"])
        found = _bound_before_window(next(iter(wanted.values())), in_window)
    return found


def _bound_before_window(value, in_window):
    """A target no op of the tape's window produced: find the user's name for it and where it was assigned."""
    if not isinstance(value, state.TENSOR_TYPES):
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
                            return {"op": None, "file": full_path(frame.f_code.co_filename), "line": line, "recording": False,
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
