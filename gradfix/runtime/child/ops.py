"""What ran at each statement: every op while a tape is alive, and tensors leaving TensorFlow or made from NumPy.

Each record is stamped with the serial of the user statement running then (see ``tracer``)."""

import sys
from threading import get_ident

from . import compat, graph_mode, state
from .frames import is_user_file, user_callers
from .records import Constant, Conversion, OpRecord
from .state import ASSIGN_OPS, MAX_OPS, STATE
from .values import is_float_dtype

# the parts the op callback reads at every op, bound once (they are never replaced)
TRACE, TAPES, RECORDS, VARIABLES = STATE.trace, STATE.tapes, STATE.records, STATE.variables


def _here():
    """(file, line, function) of the user statement running now, and its frame. The tracer's are the last line
    event's, of whichever thread ran it; an op of another thread (a program that trains in a thread while the
    main one waits) finds its own user frame on its stack."""
    if TRACE.current_thread == get_ident():
        return TRACE.current_line, TRACE.current_frame
    frame = sys._getframe(1)
    while frame is not None and not is_user_file(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return TRACE.current_line, None
    return (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name), frame


def _where(frame, callers=False):
    """(code, instruction offset) of the user frame running now: read at once, for the offset moves on, and
    turned into a source range only for the record a cut is named from (``frontier.span_of``). A state update
    also keeps the user's frames that called it: a repair of an update made in a helper is made where it is called."""
    if frame is None:
        return None
    if callers:
        return frame.f_code, frame.f_lasti, user_callers(frame)
    return frame.f_code, frame.f_lasti


# An op record per op while a tape is alive: built without the named tuple's own __new__ (a Python function
# taking keywords, twice the cost of the tuple itself), its fields in OpRecord's order
_new_record = tuple.__new__


def _on_op(op_type, inputs, attrs, outputs, op_name=None, graph=None):
    """Every op run while a tape is alive, stamped with the user statement that ran it."""
    if STATE.in_gradfix or graph is not None or not TAPES.live_tapes:
        return None
    current, frame = _here()
    if current is None:
        return None
    try:
        RECORDS.ops.append(_new_record(OpRecord, (
            TRACE.line_serial, current[0], current[1], bool(TAPES.active_tapes), op_type, tuple(inputs or ()),
            tuple(outputs or ()), attrs, VARIABLES.layer_stack[-1] if VARIABLES.layer_stack else None,
            _owning_metric(2) if op_type in ASSIGN_OPS else None, _where(frame, op_type in ASSIGN_OPS))))
        if len(RECORDS.ops) > MAX_OPS:
            del RECORDS.ops[: MAX_OPS // 2]
    except Exception:
        pass
    return None


def set_op_callback(on):
    parts = compat.PARTS
    if not parts.active("op-callbacks"):
        return
    if on and RECORDS.op_callback is None:
        parts.add_op_callback(_on_op)
        RECORDS.op_callback = _on_op
    elif not on and RECORDS.op_callback is not None:
        try:
            parts.remove_op_callback(_on_op)
        except Exception:
            pass
        RECORDS.op_callback = None


def install_conversion_hooks():
    """`.numpy()`, `np.asarray(t)`, `float(t)`, `int(t)`: a tensor leaving TensorFlow, seen with its statement."""
    base = compat.PARTS.eager_tensor_base
    if not compat.PARTS.active("tensor-conversions"):
        return
    for name, how in (("numpy", ".numpy()"), ("__array__", "a NumPy conversion"), ("__float__", "float()"),
                      ("__int__", "int()"), ("__index__", "an integer index")):
        original = base.__dict__.get(name)
        if original is None:
            continue

        def make(original, how):
            def wrapper(self, *args, **kwargs):
                if TAPES.live_tapes and not STATE.in_gradfix:
                    current, frame = _here()
                    if current is not None:
                        try:
                            if is_float_dtype(self):
                                in_function = compat.in_tf_function(sys._getframe(1))
                                RECORDS.conversions.append(Conversion(TRACE.line_serial, current[0], current[1],
                                                                      bool(TAPES.active_tapes), self, how, in_function,
                                                                      _where(frame)))
                                if in_function:
                                    graph_mode.conversion(current[0], current[1], how)
                        except Exception:
                            pass
                return original(self, *args, **kwargs)
            wrapper.__name__ = getattr(original, "__name__", "wrapper")
            return wrapper

        setattr(base, name, make(original, how))


def install_constant_hook():
    """Tensors made from NumPy arrays or Python numbers while a tape is alive: the way back into
    TensorFlow after a NumPy round trip (``tf.convert_to_tensor(np.log(...))``, ``tf.numpy_function``)."""
    constant_op = compat.PARTS.constant_module
    if not compat.PARTS.active("numpy-constants"):
        return
    original = constant_op.convert_to_eager_tensor

    def convert_to_eager_tensor(value, ctx, dtype=None):
        tensor = original(value, ctx, dtype)
        # NumPy values only: Python numbers become constants everywhere (tf.random.normal's mean=0.0)
        if TAPES.live_tapes and not STATE.in_gradfix and isinstance(value, state.NDARRAY):
            current, frame = _here()
            if current is not None:
                try:
                    if is_float_dtype(tensor):
                        caller = sys._getframe(1)
                        in_numpy_function = compat.in_numpy_function(caller)
                        RECORDS.constants.append(Constant(TRACE.line_serial, current[0], current[1],
                                                          bool(TAPES.active_tapes), tensor, type(value).__name__,
                                                          in_numpy_function, _where(frame)))
                        if not in_numpy_function and compat.in_tf_function(caller):
                            graph_mode.constant(current[0], current[1], frame)
                except Exception:
                    pass
        return tensor

    constant_op.convert_to_eager_tensor = convert_to_eager_tensor


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
