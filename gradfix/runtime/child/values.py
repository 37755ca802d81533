"""Describing the values of a gradient call: variables (Keras, tf.Variable, tf.distribute), shapes, dtypes."""

from . import compat, state
from .state import STATE


def tf_var(value):
    """The tf.Variable under a Keras 3 variable (or the tf.Variable itself), else None."""
    if isinstance(value, state.VARIABLE_TYPES):
        return value
    return compat.keras_tf_variable(value, state.VARIABLE_TYPES)


def _parts(var):
    """The variable, and under a tf.distribute strategy the per-device variables that hold its values:
    those are what the variable creator sees and what a replica reads."""
    if state.DISTRIBUTED_TYPES and isinstance(var, state.DISTRIBUTED_TYPES):
        try:
            return (var,) + tuple(var.values)
        except Exception:
            pass
    return (var,)


def _creation(var):
    """(variable, created_at, layer) as the variable creator recorded it, or None."""
    for part in _parts(var):
        entry = STATE.variables.var_sites.get(id(part))
        if entry is not None:
            return entry
    return None


def reads_of(var):
    """Where the variable was read: {"outside": first site outside a tape, "tapes": ids of the tapes}, or None."""
    found = [STATE.variables.reads[id(part)] for part in _parts(var) if id(part) in STATE.variables.reads]
    if len(found) < 2:
        return found[0] if found else None
    outside = next((entry["outside"] for entry in found if entry["outside"] is not None), None)
    return {"outside": outside, "tapes": set().union(*(entry["tapes"] for entry in found))}


def shape_of(value):
    try:
        shape = value.shape
        return [None if d is None else int(d) for d in shape]
    except Exception:
        return None


def dtype_of(value):
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return type(value).__name__
    name = getattr(dtype, "name", None)
    return str(name if name is not None else dtype)


def var_name(value, var):
    path = getattr(value, "path", None)
    if isinstance(path, str) and path:
        return path
    name = getattr(var if var is not None else value, "name", None) or ""
    if name.endswith(":0"):
        name = name[:-2]
    return name


def is_float_dtype(value):
    dtype = getattr(value, "dtype", None)
    try:
        return bool(state.tf.as_dtype(dtype).is_floating or state.tf.as_dtype(dtype).is_complex)
    except Exception:
        return False


def layer_info(layer):
    if layer is None:
        return None
    entry = STATE.variables.layers.get(id(layer))
    built_at = entry[2] if entry is not None else None
    return {"class": type(layer).__name__, "name": getattr(layer, "name", None), "built_at": built_at}


def _var_key(value, var, path):
    """The variable's name, made unique by its creation order when two variables share it
    (two unnamed tf.Variables are both "Variable"): facts are keyed by identity, not by name."""
    if isinstance(getattr(value, "path", None), str):
        return path
    name = getattr(var, "name", None)
    same = sorted((STATE.variables.var_order.get(id(v), 0), id(v)) for v, _, _ in STATE.variables.var_sites.values()
                  if getattr(v, "name", None) == name)
    if len(same) < 2:
        return path
    own = set(id(part) for part in _parts(var))
    for position, (_, ident) in enumerate(same):
        if ident in own:
            return "%s#%d" % (path, position + 1)
    return path


def describe_source(index, value, grad):
    var = tf_var(value)
    info = {
        "index": index,
        "kind": "variable" if var is not None else ("tensor" if isinstance(value, state.TENSOR_TYPES) else "other"),
        "type": type(value).__name__,
        "path": None,
        "name": None,
        "shape": shape_of(value),
        "dtype": dtype_of(value),
        "trainable": None,
        "gradient_is_none": grad is None,
        "created_at": None,
        "layer": None,
        "read": None,
        "read_outside_at": None,
    }
    if var is not None:
        info["path"] = var_name(value, var)
        info["key"] = _var_key(value, var, info["path"])
        info["name"] = info["path"].split("/")[-1]
        trainable = getattr(value, "trainable", None)
        info["trainable"] = bool(trainable) if trainable is not None else bool(getattr(var, "trainable", True))
        site_entry = _creation(var)
        if site_entry is not None:
            info["created_at"] = site_entry[1]
            info["layer"] = layer_info(site_entry[2])
        reads = reads_of(var)
        if reads is None:
            info["read"] = "never"
        else:
            info["read"] = "in-tape" if reads["tapes"] else "outside-tape"
            info["read_outside_at"] = reads["outside"]
    else:
        info["path"] = info["name"] = "<%s %s %s>" % (info["type"], info["dtype"], info["shape"])
    return info
