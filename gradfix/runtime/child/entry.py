"""Installing the hooks and running the target under them: ``main`` is what ``__main__`` calls."""

import os
import sys
import threading

from . import compat, state
from .frames import trimmed_traceback
from .graph_mode import install_function_hook
from .keras_hooks import (
    force_keras_eager,
    module_available,
    wrap_compat_v1_optimizers,
    wrap_fit,
    wrap_layer_classes,
    wrap_optimizer_classes,
)
from .ops import install_constant_hook, install_conversion_hooks
from .plain_output import install as install_plain_warnings
from .state import STATE, GradfixStop, flush_output, write_facts
from .target import resolve_target, run_target
from .tf_hooks import install_tape_wrappers, install_variable_hooks
from .tracer import global_trace
from .updates import wrap_assigns
from .write_guard import install as install_write_guard


def instrument():
    """Import TensorFlow, resolve the parts the hooks need (``compat``) and install the hooks.

    ImportError: TensorFlow itself cannot be imported; ``compat.Unsupported``: it lacks a part gradfix needs."""
    import tensorflow as tf
    state.tf = tf
    STATE.run.tf_version = getattr(tf, "__version__", None)
    parts = compat.PARTS = compat.resolve(tf)
    state.TENSOR_TYPES = parts.tensor_types
    state.VARIABLE_TYPES = parts.variable_types
    state.DISTRIBUTED_TYPES = parts.distributed_types
    try:
        import numpy
        state.NDARRAY = (numpy.ndarray, numpy.generic)
    except Exception:
        state.NDARRAY = ()
    if parts.run_functions_eagerly is not None:
        try:
            parts.run_functions_eagerly(True)
        except Exception:
            pass
    import warnings
    # gradfix's own doing, not the program's: tf.data functions stay in graph mode, which is fine here
    warnings.filterwarnings("ignore", message="Even though the `tf.config.experimental_run_functions_eagerly`")
    install_tape_wrappers()
    if parts.tf_function_class is not None:
        install_function_hook()
    for install in (install_conversion_hooks, install_constant_hook):
        try:
            install()
        except Exception as problem:
            STATE.run.notes.append({"kind": "internal-error", "message": "%s: %s" % (install.__name__, problem)})
    STATE.variables.creator_scope = install_variable_hooks()  # keep it: a collected scope exits
    if parts.active("variable-assigns"):
        wrap_assigns(parts.base_resource_variable)
    wrap_compat_v1_optimizers(tf)
    layer_classes = []
    optimizer_classes = []
    try:
        import keras
        STATE.run.keras_version = getattr(keras, "__version__", None)
        layer_classes.append(keras.layers.Layer)
        compat.resolve_keras(parts, keras)
        wrap_assigns(getattr(keras, "Variable", None))  # its assign_sub is an assign of the difference below
        if parts.keras_optimizer_base is not None:
            optimizer_classes.append(parts.keras_optimizer_base)
        for cls in type.mro(keras.optimizers.Optimizer):
            if cls.__module__.startswith("keras"):
                optimizer_classes.append(cls)
        force_keras_eager(keras)
    except Exception:
        pass
    if "tf_keras" in sys.modules or module_available("tf_keras"):
        try:
            import tf_keras
            layer_classes.append(tf_keras.layers.Layer)
            wrap_fit(getattr(tf_keras, "Model", None))
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
    wrap_layer_classes(layer_classes)
    wrap_optimizer_classes(list(dict.fromkeys(optimizer_classes)))


def note_capabilities():
    """The facts' capability table, a note for each optional hook that is off, one for a version outside the range."""
    parts = compat.PARTS
    STATE.run.capabilities = parts.table()
    version = compat.version_text(parts.version)
    for capability in parts.missing_optional():
        STATE.run.notes.append({"kind": "degraded", "hook": capability.name, "message": (
            "TensorFlow %s has %s: the diagnosis cannot see %s" % (version, capability.missing, capability.lost))})
    try:
        minor = tuple(int(n) for n in parts.version.split(".")[:2])
    except ValueError:
        minor = None
    if minor is not None and not compat.TESTED_MINORS[0] <= minor <= compat.TESTED_MINORS[1]:
        STATE.run.notes.append({"kind": "degraded", "hook": "version", "message": (
            "TensorFlow %s is outside the range gradfix is tested on (%s)" % (version, compat.SUPPORTED))})


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: %s TARGET [ARGS...]\n" % (argv[0] if argv else "child"))
        return 2
    target, args = argv[1], argv[2:]
    install_write_guard()  # before anything of the program's runs
    install_plain_warnings()
    kind, spec, _ = resolve_target(target)
    if kind == "file" and not os.path.exists(spec):
        STATE.run.status = "crashed"
        STATE.run.error = {"type": "FileNotFoundError", "message": "no such file: %s" % spec, "frames": [],
                           "traceback": "FileNotFoundError: no such file: %s" % spec}
        write_facts()
        return 0
    try:
        instrument()
    except compat.Unsupported as problem:
        STATE.run.capabilities = compat.PARTS.table() if compat.PARTS.tf is not None else {}
        STATE.run.status = "unsupported-tensorflow"
        STATE.run.error = {"type": "UnsupportedTensorFlow", "message": str(problem), "frames": [], "traceback": ""}
        write_facts()
        return 0
    except ImportError as problem:
        STATE.run.status = "no-tensorflow"
        STATE.run.error = {"type": type(problem).__name__, "message": str(problem), "frames": [],
                           "traceback": "%s: %s" % (type(problem).__name__, problem)}
        write_facts()
        return 0
    note_capabilities()
    write_facts()
    # the user's stdout is untouched; gradfix's own output goes to the facts file only
    sys.settrace(global_trace)
    # a program that trains in a thread of its own: its statements are the ones to see
    threading.settrace(global_trace)
    try:
        run_target(target, args)
        if not STATE.run.gradient_calls:
            STATE.run.status = "no-gradient-call"
    except GradfixStop:
        STATE.run.status = "ok"
    except SystemExit as stop:
        code = stop.code
        STATE.run.exit_code = code if isinstance(code, int) or code is None else 1
        if not STATE.run.gradient_calls:
            STATE.run.status = "exited-before-gradient"
    except KeyboardInterrupt:
        raise
    except BaseException as problem:
        STATE.run.error = trimmed_traceback(problem)
        STATE.run.status = "ok" if STATE.run.gradient_calls else "crashed"
    finally:
        sys.settrace(None)
        threading.settrace(None)
    flush_output()
    write_facts()
    return 0
