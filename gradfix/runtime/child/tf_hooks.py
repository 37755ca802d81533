"""TensorFlow's hooks: GradientTape, variable creation and reads; each gradient call is recorded here."""

import linecache
import sys
import traceback
from functools import partial

from . import compat, graph_mode, state
from .frames import caller_site, first_user_site, full_path, is_child_file, is_user_file, user_callers
from .frontier import feeds_target, frontier, gradient_of, target_origin
from .ops import set_op_callback
from .state import STATE, GradfixStop, end_run, fit_goes_on, write_facts
from .updates import follow_gradients
from .values import describe_source, dtype_of, reads_of, shape_of, tf_var


class _TapeMethod(object):
    """A method of the tape class that runs one of ``TapeWrappers``'s with the tape: ``tape.gradient(...)`` calls
    ``wrappers.gradient(tape, ...)`` through a C-level partial, so no frame of gradfix's comes between the caller
    and the wrapper (the wrappers read their caller's site a fixed number of frames up)."""

    __slots__ = ("method",)

    def __init__(self, method):
        self.method = method

    def __get__(self, tape, owner=None):
        return self.method if tape is None else partial(self.method, tape)


class TapeWrappers(object):
    """gradfix's GradientTape methods: every tape made persistent (gradfix asks it its own questions), each push
    opening a window of op records, each watched tensor kept, each gradient call recorded. Holds the methods it
    replaced, which it calls and puts back."""

    METHODS = {"__init__": "init", "_push_tape": "push_tape", "_pop_tape": "pop_tape", "watch": "watch",
               "gradient": "gradient"}  # the tape class's method -> the wrapper that replaces it

    def __init__(self, tape_cls):
        self.tape_cls = tape_cls
        self.original_init = tape_cls.__init__
        self.original_gradient = tape_cls.gradient
        self.original_push = tape_cls._push_tape
        self.original_pop = tape_cls._pop_tape
        self.original_watch = tape_cls.watch
        self.replaced = {}  # method name -> what the class itself held (None: inherited)

    def install(self):
        for name, wrapper in self.METHODS.items():
            self.replaced[name] = self.tape_cls.__dict__.get(name)
            setattr(self.tape_cls, name, _TapeMethod(getattr(self, wrapper)))
        return self

    def uninstall(self):
        for name, original in self.replaced.items():
            if original is None:
                delattr(self.tape_cls, name)
            else:
                setattr(self.tape_cls, name, original)
        self.replaced = {}

    def init(self, tape, persistent=False, watch_accessed_variables=True):
        self.original_init(tape, persistent=True, watch_accessed_variables=watch_accessed_variables)
        tape._gradfix_user_persistent = persistent

    def push_tape(self, tape):
        self.original_push(tape)
        STATE.tapes.active_tapes.append(tape)
        if id(tape) not in STATE.tapes.live_tapes:
            if not STATE.tapes.live_tapes:
                # a new window: what earlier windows ran is no longer needed
                del STATE.records.ops[:], STATE.records.conversions[:], STATE.records.constants[:]
                try:
                    set_op_callback(True)
                except Exception as problem:
                    STATE.run.notes.append({"kind": "internal-error", "message": "op callback: %s" % problem})
            STATE.tapes.tape_serials.setdefault(id(tape), STATE.trace.line_serial)
            STATE.tapes.live_tapes[id(tape)] = STATE.trace.seq
            STATE.tapes.tape_windows.setdefault(id(tape), STATE.trace.seq)
            STATE.tapes.tape_objects[id(tape)] = tape

    def pop_tape(self, tape):
        self.original_pop(tape)
        try:
            STATE.tapes.active_tapes.remove(tape)
        except ValueError:
            pass

    def watch(self, tape, tensor):
        self.original_watch(tape, tensor)
        watched = STATE.tapes.tape_watched_tensors.setdefault(id(tape), {})
        for item in state.tf.nest.flatten(tensor):
            watched[id(item)] = item

    def gradient(self, tape, target, sources, output_gradients=None, unconnected_gradients=None):
        if STATE.in_gradfix:
            return self.original_gradient(tape, target, sources, output_gradients=output_gradients,
                                          unconnected_gradients=unconnected_gradients or state.tf.UnconnectedGradients.NONE)
        if getattr(tape, "_recording", False) and not getattr(tape, "_gradfix_user_persistent", True):
            # TensorFlow stops recording a tape that is not persistent when its gradient is asked inside its
            # context; a persistent one (gradfix's doing) would record on, and log that this is inefficient
            tape._pop_tape()
        if in_other_replica():
            STATE.tapes.live_tapes.pop(id(tape), None)
            if not STATE.tapes.live_tapes:
                set_op_callback(False)
            return self.original_gradient(tape, target, sources, output_gradients=output_gradients,
                                          unconnected_gradients=unconnected_gradients or state.tf.UnconnectedGradients.NONE)
        here = caller_site(2)
        site_key = (here["file"], here["line"]) if here else None
        flat_sources = state.tf.nest.flatten(sources)
        kinds = ["variable" if tf_var(s) is not None else "tensor" for s in flat_sources]
        if STATE.run.first_site is None:
            STATE.run.first_site = site_key
        if site_key == STATE.run.first_site:
            STATE.run.first_site_hits += 1
            if STATE.run.first_site_hits > STATE.run.steps:
                previous = STATE.run.previous_sources.get(site_key)
                if previous is not None and len(previous) == len(kinds):
                    rebound = [i for i, (a, b) in enumerate(zip(previous, kinds)) if a == "variable" and b == "tensor"]
                    if rebound:
                        STATE.run.notes.append({"kind": "rebound", "site": here, "positions": rebound,
                                                "message": "sources that were variables at the previous step are plain tensors now"})
                        last_call = None
                        for call in reversed(STATE.run.gradient_calls):
                            if call["site_key"] == list(site_key):
                                last_call = call
                                break
                        if last_call is not None:
                            for position in rebound:
                                if position < len(last_call["sources"]):
                                    last_call["sources"][position]["rebound_next_step"] = True
                STATE.run.stopped_after_steps = STATE.run.steps
                if fit_goes_on():
                    raise GradfixStop()
                end_run()
        STATE.run.previous_sources[site_key] = kinds
        calls_before = STATE.tapes.gradient_counts.get(id(tape), 0)
        STATE.tapes.gradient_counts[id(tape)] = calls_before + 1
        if calls_before and not getattr(tape, "_gradfix_user_persistent", True):
            STATE.run.notes.append({"kind": "instrumentation", "site": here, "message": (
                "a second gradient call on a tape that is not persistent: without gradfix, TensorFlow raises "
                "RuntimeError here (gradfix makes every tape persistent to ask its own questions); "
                "open the tape with GradientTape(persistent=True)")})
        kwargs = {}
        if output_gradients is not None:
            kwargs["output_gradients"] = output_gradients
        if unconnected_gradients is not None:
            kwargs["unconnected_gradients"] = unconnected_gradients
        try:
            result = self.original_gradient(tape, target, sources, **kwargs)
        except Exception:
            # A target that is not a tensor (np.mean(...) of the prediction, a Python float) makes
            # TensorFlow raise: it is the missing gradient itself, so record it, then let the error go on.
            if not _non_tensor_targets(target):
                raise
            STATE.in_gradfix = True
            try:
                _record_gradient_call(tape, self.original_gradient, target, flat_sources, [None] * len(flat_sources),
                                      here, site_key, unconnected_gradients)
            except Exception as problem:
                STATE.run.notes.append({"kind": "internal-error", "message": "%s: %s" % (type(problem).__name__, problem),
                                        "traceback": traceback.format_exc()[-3000:]})
            finally:
                STATE.in_gradfix = False
                STATE.tapes.live_tapes.pop(id(tape), None)
            write_facts()
            raise
        STATE.in_gradfix = True
        try:
            _record_gradient_call(tape, self.original_gradient, target, flat_sources, state.tf.nest.flatten(result),
                                  here, site_key, unconnected_gradients)
        except Exception as problem:  # never break the user's program for a bookkeeping error
            STATE.run.notes.append({"kind": "internal-error", "message": "%s: %s" % (type(problem).__name__, problem),
                                    "traceback": traceback.format_exc()[-3000:]})
        finally:
            STATE.in_gradfix = False
            STATE.tapes.live_tapes.pop(id(tape), None)
            if not STATE.tapes.live_tapes:
                set_op_callback(False)
        write_facts()
        return result



def install_tape_wrappers():
    return TapeWrappers(compat.PARTS.tape_class).install()


def in_other_replica():
    """Is this a replica of a tf.distribute strategy other than the first?

    Every replica runs the same step on its share of the batch: gradfix looks at the first one
    only, so that a step is one gradient call however many devices there are."""
    if not state.DISTRIBUTED_TYPES:
        return False
    was_in_gradfix, STATE.in_gradfix = STATE.in_gradfix, True  # reading the replica id is gradfix's own doing
    try:
        context = state.tf.distribute.get_replica_context()
        if context is None:
            return False
        replica = getattr(context, "_replica_id_in_sync_group", None)
        if replica is None:
            replica = context.replica_id_in_sync_group
        return int(state.tf.get_static_value(replica) if not isinstance(replica, int) else replica) != 0
    except Exception:
        return False
    finally:
        STATE.in_gradfix = was_in_gradfix


def _non_tensor_targets(target):
    """The type names of the target's parts that TensorFlow cannot differentiate (NumPy values, Python numbers)."""
    try:
        parts = state.tf.nest.flatten(target)
    except Exception:
        parts = [target]
    return [type(t).__name__ for t in parts if not isinstance(t, state.TENSOR_TYPES) and tf_var(t) is None]


def _depends_on_watched(tape, original_gradient, target, watched_grads=()):
    """Does the target depend on anything the tape watched (a variable or a watched tensor)?

    A watched source that got a gradient says yes without asking the tape again (a backward pass over the step)."""
    if any(grad is not None for grad in watched_grads):
        return True
    try:
        watched = list(tape.watched_variables())
    except Exception:
        watched = []
    watched += list(STATE.tapes.tape_watched_tensors.get(id(tape), {}).values())[:50]
    if not watched:
        return False
    return any(g is not None for g in gradient_of(tape, original_gradient, target, watched))


def _record_gradient_call(tape, original_gradient, target, flat_sources, flat_grads, here, site_key, unconnected):
    zero_is_none = False
    if unconnected is not None and str(unconnected).lower().endswith("zero"):
        # The user asked for zeros instead of None: ask again to tell them apart.
        zero_is_none = True
        flat_grads = state.tf.nest.flatten(gradient_of(tape, original_gradient, target, flat_sources))
    watched = set()
    try:
        for v in tape.watched_variables():
            inner = tf_var(v)
            watched.add(id(inner if inner is not None else v))
    except Exception:
        pass
    watched_tensors = STATE.tapes.tape_watched_tensors.get(id(tape), {})
    sources = []
    lost = []
    lost_positions = []
    for index, (value, grad) in enumerate(zip(flat_sources, flat_grads)):
        info = describe_source(index, value, grad)
        var = tf_var(value)
        if var is not None:
            info["watched"] = id(var) in watched
            reads = reads_of(var)
            if reads is not None:
                others = [t for t in reads["tapes"] if t != id(tape)]
                info["read_by_other_tape"] = bool(others)
                info["read_by_this_tape"] = id(tape) in reads["tapes"]
                if others and grad is None:
                    # would another tape have given a gradient?
                    for other_id in others:
                        other = STATE.tapes.tape_objects.get(other_id)
                        if other is None:
                            continue
                        got = gradient_of(other, original_gradient, target, [value])[0]
                        if got is not None:
                            info["other_tape_has_gradient"] = True
                            break
        else:
            info["watched"] = id(value) in watched_tensors
            if not info["watched"] and isinstance(value, state.TENSOR_TYPES):
                info["feeds_target"] = feeds_target(target, value, STATE.tapes.tape_serials.get(id(tape), 0))
        sources.append(info)
        if grad is not None:
            STATE.updates.grad_owner[id(grad)] = info.get("key")
        if grad is None and info["watched"] and (var is not None or isinstance(value, state.TENSOR_TYPES)):
            lost.append(value)
            lost_positions.append(index)
    if lost:
        for position, result in zip(lost_positions, frontier(tape, original_gradient, target, lost)):
            sources[position]["frontier"] = result
    targets = state.tf.nest.flatten(target)
    _note_tf1_graph_mode(here)
    STATE.run.gradient_calls.append({
        "index": len(STATE.run.gradient_calls),
        "step": max(1, STATE.run.first_site_hits),
        "site": here,
        "site_key": list(site_key) if site_key else None,
        "user_site": first_user_site(3, callers=True),
        "kind": "tape",
        "tape_persistent_in_program": bool(getattr(tape, "_gradfix_user_persistent", False)),
        "watch_accessed_variables": bool(getattr(tape, "_watch_accessed_variables", True)),
        "target": {
            "types": [type(t).__name__ for t in targets[:4]],
            "not_tensor": _non_tensor_targets(target),
            "description": ", ".join("%s %s %s" % (type(t).__name__, dtype_of(t), shape_of(t)) for t in targets[:4]),
            "shape": shape_of(targets[0]) if len(targets) == 1 else None,
            "dtype": dtype_of(targets[0]) if len(targets) == 1 else None,
        },
        "unconnected_zero": zero_is_none,
        "target_origin": target_origin(target, tape),
        "target_depends_on_watched": _depends_on_watched(
            tape, original_gradient, target, [g for g, info in zip(flat_grads, sources) if info.get("watched")]),
        "sources": sources,
    })
    STATE.run.status = "ok"
    follow_gradients(flat_sources, flat_grads, sources)


def _made_by_user(frame):
    """Was the variable made by the program's own ``tf.Variable(...)`` (only TensorFlow's frames between), not by a
    library (a Keras layer's build, an optimizer's slots)?"""
    while frame is not None:
        filename = frame.f_code.co_filename
        if is_user_file(filename):
            return True
        if not (compat.in_tensorflow(filename) or is_child_file(filename)):
            return False
        frame = frame.f_back
    return False


def _note_tf1_graph_mode(here):
    """A program in TensorFlow 1 graph mode builds a graph and runs no op while it does: say, once, what that hides."""
    if STATE.run.tf1_graph_mode_noted or _executing_eagerly():
        return
    STATE.run.tf1_graph_mode_noted = True
    STATE.run.notes.append({"kind": "graph-mode", "site": here, "message": (
        "the program runs in TensorFlow 1 graph mode (tf.compat.v1.disable_v2_behavior or disable_eager_execution): "
        "gradfix sees the graph it builds, not each op as it runs, so a path cut by an op or a NumPy conversion is "
        "named by its gradient call only, and the diagnosis is limited to what the graph shows")})


def _executing_eagerly():
    try:
        return bool(state.tf.executing_eagerly())
    except Exception:
        return True


def install_variable_hooks():
    parts = compat.PARTS
    base = parts.base_resource_variable

    # the parts every read of a variable looks at, bound once (they are never replaced)
    variables, tapes, trace = STATE.variables, STATE.tapes, STATE.trace

    def on_read(self):
        # a distribution strategy reads the first device's copy to initialise the others: not the program's read
        if STATE.in_gradfix or variables.creating:
            return
        entry = variables.reads.get(id(self))
        if entry is None:
            entry = variables.reads[id(self)] = {"outside": None, "tapes": set()}
        if tapes.active_tapes:
            for tape in tapes.active_tapes:
                entry["tapes"].add(id(tape))
        elif entry["outside"] is None and trace.last_user_line is not None:
            filename, line, function = trace.last_user_line
            entry["outside"] = {"file": full_path(filename), "line": line, "function": function,
                                "code": linecache.getline(filename, line).strip()}
            frame = trace.current_frame
            if frame is not None and frame.f_code.co_filename == filename and frame.f_code.co_name == function:
                entry["outside"]["callers"] = user_callers(frame)

    for name in ("_read_variable_op", "sparse_read", "gather_nd") if parts.active("variable-reads") else ():
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
        STATE.variables.creating += 1
        try:
            variable = next_creator(**kwargs)
        finally:
            STATE.variables.creating -= 1
        try:
            layer = None
            frame = sys._getframe(1)
            depth = 0
            while frame is not None and depth < 60:
                candidate = frame.f_locals.get("self") if "self" in frame.f_code.co_varnames else None
                if candidate is not None and id(candidate) in STATE.variables.layers:
                    layer = candidate
                    break
                frame = frame.f_back
                depth += 1
            var = tf_var(variable)
            if var is None:
                var = variable
            created_at = first_user_site(2)
            STATE.variables.var_sites[id(var)] = (var, created_at, layer)
            if layer is None and created_at is not None and not STATE.updates.in_apply and _made_by_user(sys._getframe(1)):
                if compat.in_tf_function(sys._getframe(1)):
                    graph_mode.variable(created_at["file"], created_at["line"])
            STATE.variables.var_order[id(var)] = len(STATE.variables.var_order)
        except Exception:
            pass
        return variable

    if not parts.active("variable-creation"):
        return None
    scope = parts.variable_creator_scope(creator)
    scope.__enter__()
    return scope
