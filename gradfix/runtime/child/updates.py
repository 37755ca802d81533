"""Updates a step makes without an optimizer: ``v.assign_sub(lr * g)``, ``v.assign(v - lr * g)``.

After each gradient call the gradients it returned are followed through the ops that run on them (an op
callback, on for a bounded number of ops): a value assigned to a variable that was a source of the call
is recorded as a ``manual-assign`` update, with the variables whose gradients it was computed from, so
that the verdict can say each variable got its own gradient (and not a neighbour's of the same shape).

Optimizer updates are recorded by ``keras_hooks.wrap_optimizer_classes``; assigns made inside them
(and a layer's own bookkeeping, whose variables are no gradient's sources) are not manual updates.
"""

from . import compat, state
from .frames import first_user_site
from .state import STATE
from .values import describe_source, shape_of, tf_var

UPDATES = STATE.updates  # bound once (never replaced): the callback that follows gradients reads it at every op

MANUAL = "manual-assign"
FOLLOWED_OPS = 5000  # ops seen after a gradient call before following its gradients stops
MAX_DERIVED = 20000  # tensors followed at once (the oldest are dropped first)
ASSIGN_METHODS = ("assign", "assign_add", "assign_sub")


def follow_gradients(flat_sources, flat_grads, sources):
    """Start following the gradients one call returned (``sources``: the call's recorded source entries)."""
    for value, grad, info in zip(flat_sources, flat_grads, sources):
        key = info.get("key")
        var = tf_var(value)
        if var is not None and key is not None:
            UPDATES.gradient_sources[id(var)] = (var, key)
        if grad is not None and key is not None and not hasattr(grad, "dense_shape"):
            UPDATES.derived[id(grad)] = (grad, frozenset((key,)))
    if len(UPDATES.derived) > MAX_DERIVED:
        for ident in list(UPDATES.derived)[: len(UPDATES.derived) - MAX_DERIVED // 2]:
            del UPDATES.derived[ident]
    UPDATES.followed_ops = 0
    _set_callback(bool(UPDATES.derived))


def _set_callback(on):
    parts = compat.PARTS
    if not parts.active("op-callbacks"):
        return
    if on and not UPDATES.following:
        parts.add_op_callback(_on_op)
        UPDATES.following = True
    elif not on and UPDATES.following:
        try:
            parts.remove_op_callback(_on_op)
        except Exception:
            pass
        UPDATES.following = False


def _on_op(op_type, inputs, attrs, outputs, op_name=None, graph=None):
    """An op's outputs are computed from the gradients its inputs were computed from."""
    if graph is not None or STATE.in_gradfix:
        return None
    UPDATES.followed_ops += 1
    if UPDATES.followed_ops > FOLLOWED_OPS:
        # spent; removed at the next assign or gradient call (removing it here, while TensorFlow walks its
        # list of callbacks, would skip the callback after it for this op)
        return None
    keys = frozenset()
    for item in inputs or ():
        entry = UPDATES.derived.get(id(item))
        if entry is not None and entry[0] is item:
            keys |= entry[1]
    if keys:
        for output in outputs or ():
            UPDATES.derived[id(output)] = (output, keys)
    return None


def wrap_assigns(base):
    """Record the assigns to a gradient's source made outside an optimizer's update (``base`` and the
    subclasses that define their own: ``tf.Variable`` is a ``ResourceVariable``)."""
    classes, todo = [], [base] if base is not None else []
    while todo:
        cls = todo.pop()
        if cls not in classes:
            classes.append(cls)
            todo.extend(cls.__subclasses__())
    for cls in classes:
        if cls is base or any(method in cls.__dict__ for method in ASSIGN_METHODS):
            _wrap_class(cls)


def _wrap_class(cls):
    for method in ASSIGN_METHODS:
        original = getattr(cls, method, None)
        if original is None or getattr(original, "_gradfix", False):
            continue

        def make(original, method):
            def wrapper(self, value, *args, **kwargs):
                if UPDATES.following and UPDATES.followed_ops > FOLLOWED_OPS:
                    _set_callback(False)
                entry = None
                if not (STATE.in_gradfix or UPDATES.in_apply or UPDATES.in_manual_update or STATE.variables.creating):
                    try:
                        entry = _record(self, method, value)
                    except Exception as problem:
                        STATE.run.notes.append({"kind": "internal-error", "message": "%s: %s" % (method, problem)})
                if entry is None:
                    return original(self, value, *args, **kwargs)
                UPDATES.in_manual_update = True
                try:
                    result = original(self, value, *args, **kwargs)
                except Exception as problem:
                    entry["error"] = {"type": type(problem).__name__, "message": str(problem)[:2000]}
                    raise
                finally:
                    UPDATES.in_manual_update = False
                entry["completed"] = True
                return result
            wrapper._gradfix = True
            wrapper.__name__ = method
            return wrapper

        setattr(cls, method, make(original, method))


def _record(variable, method, value):
    var = tf_var(variable)
    known = UPDATES.gradient_sources.get(id(var)) if var is not None else None
    if known is None or known[0] is not var:
        return None
    key = known[1]
    derived = UPDATES.derived.get(id(value))
    from_gradients = sorted(derived[1]) if derived is not None and derived[0] is value else []
    info = describe_source(0, variable, value)
    mismatches = []
    if from_gradients and key not in from_gradients:
        mismatches.append("the gradient computed for %s is applied to %s" % (", ".join(from_gradients), key))
    value_shape = shape_of(value) if isinstance(value, state.TENSOR_TYPES) else None
    if value_shape is not None and info["shape"] is not None and value_shape != info["shape"] and value_shape != []:
        mismatches.append("a value of shape %s is assigned to %s of shape %s" % (value_shape, key, info["shape"]))
    entry = {
        "index": len(STATE.run.applies),
        "kind": MANUAL,
        "method": method,
        "optimizer": "",
        "site": first_user_site(3),
        "after_gradient_call": len(STATE.run.gradient_calls) - 1,
        "variables": [info],
        "from_gradients": from_gradients,
        "mismatches": mismatches,
        "completed": False,
    }
    STATE.run.applies.append(entry)
    return entry
