"""TensorFlow's and Keras's parts the child hooks into, each resolved once here, with its fallbacks.

Most of what the child needs is private (``tensorflow.python.*`` modules, ``GradientTape._push_tape``,
``_EagerTensorBase``, the gradient registry, ``keras.src``): it moves between releases. ``resolve`` looks
each part up where TensorFlow 2.16 to 2.21 keeps it, and records a ``Capability`` for it: active or not,
what it was found as, and what the diagnosis loses without it. A missing *required* part makes the run
``unsupported-tensorflow`` (``Unsupported``); a missing optional one turns its hook off, and the facts say
what is lost. The hooks read the parts from ``PARTS``, never from TensorFlow's modules themselves.

Tests take a part away before the child imports it (a ``sitecustomize`` that deletes an attribute): the child
sees exactly what a TensorFlow without it would give.
"""

import inspect
import os
import sys
from typing import NamedTuple

SUPPORTED = "TensorFlow 2.16 to 2.21, with Keras 3 (or tf_keras)"
TESTED_MINORS = ((2, 16), (2, 21))  # the oldest and newest releases the runtime tests run on


class Unsupported(Exception):
    """This TensorFlow lacks what gradfix needs: the message is ``unsupported TensorFlow X.Y: <what is missing>``."""


class Capability(NamedTuple):
    name: str
    active: bool
    required: bool
    found_as: str  # where the part was found ("" when missing)
    missing: str  # what was looked for and not found ("" when active)
    lost: str  # what the diagnosis cannot say without it

    def as_fact(self):
        return {"active": self.active, "required": self.required, "found_as": self.found_as,
                "missing": self.missing, "lost": self.lost}


# name -> (required, what the diagnosis loses without it)
HOOKS = {
    "gradient-tape": (True, "every gradient call (GradientTape._push_tape, _pop_tape, watch, gradient)"),
    "tensor-type": (True, "telling tensors from other values"),
    "variable-type": (True, "telling variables from tensors"),
    "nest": (True, "the sources and targets of a gradient call (tf.nest)"),
    "variable-creation": (False, "where each variable was created"),
    "variable-reads": (False, "where each variable was read (a variable read before the tape started)"),
    "variable-assigns": (False, "updates made by assign/assign_sub without an optimizer"),
    "op-callbacks": (False, ("the op that cut each path (the statement, the op and the expression), and the "
                             "gradients followed into manual updates")),
    "tensor-conversions": (False, "tensors turned into NumPy values (.numpy(), np.asarray, float())"),
    "numpy-constants": (False, "tensors made again from NumPy values"),
    "gradient-registry": (False, "whether an op has a registered gradient"),
    "functions-eagerly": (False, "the statements inside tf.functions (they run as graphs)"),
    "tf-function-frames": (False, "which conversions run inside a tf.function"),
    "numpy-function-frames": (False, "which constants are made by tf.numpy_function"),
    "distribute": (False, "telling the replicas of a tf.distribute strategy apart"),
    "keras-variables": (False, "the tf.Variable under each Keras 3 variable"),
    "keras-optimizer-base": (False, "the updates of Keras optimizers"),
}

class Parts(object):
    """What ``resolve`` found: TensorFlow's classes, modules and functions the hooks use, and the table."""

    def __init__(self, tf):
        self.tf = tf
        self.version = str(getattr(tf, "__version__", "") or "")
        self.capabilities = {}
        self.tape_class = None
        self.tensor_types = ()
        self.variable_types = ()
        self.distributed_types = ()
        self.base_resource_variable = None
        self.variable_creator_scope = None
        self.add_op_callback = None
        self.remove_op_callback = None
        self.eager_tensor_base = None
        self.constant_module = None  # the module whose convert_to_eager_tensor makes tensors from NumPy values
        self.gradient_lookup = None
        self.run_functions_eagerly = None
        self.tf_function_class = None  # tf.function's class (its __call__ runs every call of one)
        self.tf_function_codes = frozenset()  # code objects of tf.function's __call__
        self.tf_function_files = ()  # file names ending the path of the module that defines it (the fallback)
        self.numpy_function_files = ()
        self.keras_optimizer_base = None

    def active(self, name):
        capability = self.capabilities.get(name)
        return capability is not None and capability.active

    def table(self):
        return {name: capability.as_fact() for name, capability in sorted(self.capabilities.items())}

    def missing_required(self):
        return [c for c in self.capabilities.values() if c.required and not c.active]

    def missing_optional(self):
        return [c for c in self.capabilities.values() if not c.required and not c.active]

    def _set(self, name, found_as, missing=""):
        required, lost = HOOKS[name]
        active = bool(found_as)
        self.capabilities[name] = Capability(name, active, required, found_as if active else "",
                                             "" if active else (missing or "not found"), lost)
        return active


def _module(name):
    """The module ``name``, or None when this TensorFlow has no such module (or importing it fails)."""
    try:
        __import__(name)
        return sys.modules[name]
    except Exception:
        return None


def _first(candidates):
    """The first (value, description) of ``candidates`` (callables returning a value) that gives one."""
    for describe, find in candidates:
        try:
            value = find()
        except Exception:
            value = None
        if value is not None:
            return value, describe
    return None, ""


def _attr(module_name, *names):
    module = _module(module_name)
    for name in names:
        module = getattr(module, name, None) if module is not None else None
    return module


def version_text(version):
    """``2.21`` of ``2.21.0``: what the messages name."""
    parts = str(version or "?").split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else str(version or "?")


def resolve(tf):
    """Look every part up; raise ``Unsupported`` when a required one is missing."""
    parts = Parts(tf)
    _resolve_tape(parts, tf)
    _resolve_types(parts, tf)
    _resolve_variables(parts, tf)
    _resolve_ops(parts, tf)
    _resolve_frames(parts)
    missing = parts.missing_required()
    if missing:
        raise Unsupported("unsupported TensorFlow %s: %s (gradfix supports %s)" % (
            version_text(parts.version), "; ".join(c.missing for c in missing), SUPPORTED))
    return parts


def _resolve_tape(parts, tf):
    tape = getattr(tf, "GradientTape", None)
    if tape is None:
        parts._set("gradient-tape", "", "no tf.GradientTape")
        return
    absent = [name for name in ("gradient", "watch", "_push_tape", "_pop_tape", "watched_variables")
              if not callable(getattr(tape, name, None))]
    if absent:
        parts._set("gradient-tape", "", "no GradientTape.%s" % ", GradientTape.".join(absent))
        return
    parts.tape_class = tape
    parts._set("gradient-tape", "tf.GradientTape")


def _resolve_types(parts, tf):
    tensor, found_as = _first((
        ("tensorflow.python.types.core.Tensor", lambda: _attr("tensorflow.python.types.core", "Tensor")),
        ("tf.Tensor", lambda: getattr(tf, "Tensor", None)),
    ))
    if tensor is not None:
        parts.tensor_types = (tensor,)
    parts._set("tensor-type", found_as, "no tf.Tensor")
    variable = getattr(tf, "Variable", None)
    if variable is not None:
        parts.variable_types = (variable,)
    parts._set("variable-type", "tf.Variable" if variable is not None else "", "no tf.Variable")
    nest = getattr(tf, "nest", None)
    parts._set("nest", "tf.nest" if nest is not None and callable(getattr(nest, "flatten", None)) else "",
               "no tf.nest.flatten")
    distributed, found_as = _first((
        ("tensorflow.python.distribute.values.DistributedVariable",
         lambda: _attr("tensorflow.python.distribute.values", "DistributedVariable")),
    ))
    if distributed is not None:
        parts.distributed_types = (distributed,)
    parts._set("distribute", found_as, "no tensorflow.python.distribute.values.DistributedVariable")


def _resolve_variables(parts, tf):
    base, found_as = _first((
        ("tensorflow.python.ops.resource_variable_ops.BaseResourceVariable",
         lambda: _attr("tensorflow.python.ops.resource_variable_ops", "BaseResourceVariable")),
    ))
    parts.base_resource_variable = base
    reads = base is not None and "_read_variable_op" in base.__dict__
    parts._set("variable-reads", found_as + "._read_variable_op" if reads else "",
               "no BaseResourceVariable._read_variable_op")
    assigns = base is not None and all(callable(getattr(base, m, None)) for m in ("assign", "assign_add", "assign_sub"))
    parts._set("variable-assigns", found_as + ".assign" if assigns else "", "no BaseResourceVariable.assign")
    scope = getattr(tf, "variable_creator_scope", None)
    parts.variable_creator_scope = scope
    parts._set("variable-creation", "tf.variable_creator_scope" if scope is not None else "",
               "no tf.variable_creator_scope")
    run_eagerly = getattr(getattr(tf, "config", None), "run_functions_eagerly", None)
    parts.run_functions_eagerly = run_eagerly
    parts._set("functions-eagerly", "tf.config.run_functions_eagerly" if run_eagerly is not None else "",
               "no tf.config.run_functions_eagerly")


def _resolve_ops(parts, tf):
    callbacks = _module("tensorflow.python.framework.op_callbacks")
    add = getattr(callbacks, "add_op_callback", None)
    remove = getattr(callbacks, "remove_op_callback", None)
    if add is not None and remove is not None:
        parts.add_op_callback, parts.remove_op_callback = add, remove
    parts._set("op-callbacks", "tensorflow.python.framework.op_callbacks" if add and remove else "",
               "no tensorflow.python.framework.op_callbacks.add_op_callback")
    base, found_as = _first((
        ("tensorflow.python.framework.ops._EagerTensorBase",
         lambda: _attr("tensorflow.python.framework.ops", "_EagerTensorBase")),
        # whichever class of an eager tensor's own defines numpy()
        ("the class of an eager tensor that defines numpy()",
         lambda: next((c for c in type(tf.constant(0.0)).__mro__ if "numpy" in c.__dict__), None)),
    ))
    parts.eager_tensor_base = base
    parts._set("tensor-conversions", found_as, "no _EagerTensorBase")
    constant = _module("tensorflow.python.framework.constant_op")
    if constant is not None and callable(getattr(constant, "convert_to_eager_tensor", None)):
        parts.constant_module = constant
    parts._set("numpy-constants", "tensorflow.python.framework.constant_op.convert_to_eager_tensor"
               if parts.constant_module is not None else "", "no constant_op.convert_to_eager_tensor")
    registry, found_as = _first((
        ("tensorflow.python.framework.ops.gradient_registry",
         lambda: _attr("tensorflow.python.framework.ops", "gradient_registry")),
        ("tensorflow.python.framework.ops._gradient_registry",
         lambda: _attr("tensorflow.python.framework.ops", "_gradient_registry")),
    ))
    if registry is not None and callable(getattr(registry, "lookup", None)):
        parts.gradient_lookup = registry.lookup
    parts._set("gradient-registry", found_as if parts.gradient_lookup else "", "no ops.gradient_registry")


def _resolve_frames(parts):
    """tf.function's ``__call__`` and tf.numpy_function's module, as the frames of the stack show them."""
    function, found_as = _first((
        ("tensorflow.python.eager.polymorphic_function.polymorphic_function.Function",
         lambda: _attr("tensorflow.python.eager.polymorphic_function.polymorphic_function", "Function")),
        ("tensorflow.python.eager.def_function.Function",
         lambda: _attr("tensorflow.python.eager.def_function", "Function")),
    ))
    if function is not None:
        parts.tf_function_class = function
        codes = set()
        call = function.__dict__.get("__call__")
        try:
            codes.add(inspect.unwrap(call).__code__)
        except Exception:
            pass
        parts.tf_function_codes = frozenset(codes)
        module = sys.modules.get(function.__module__)
        parts.tf_function_files = (os.path.basename(getattr(module, "__file__", "") or "polymorphic_function.py"),)
    parts._set("tf-function-frames", found_as, "no tf.function class (polymorphic_function.Function)")
    script_ops = _module("tensorflow.python.ops.script_ops")
    if script_ops is not None and getattr(script_ops, "__file__", None):
        parts.numpy_function_files = (os.path.basename(script_ops.__file__),)
    parts._set("numpy-function-frames", "tensorflow.python.ops.script_ops" if parts.numpy_function_files else "",
               "no tensorflow.python.ops.script_ops")


def resolve_keras(parts, keras):
    """Keras 3's private parts: the base of its optimizers, the tf.Variable under a ``keras.Variable``."""
    base, found_as = _first((
        ("keras.src.optimizers.base_optimizer.BaseOptimizer",
         lambda: _attr("keras.src.optimizers.base_optimizer", "BaseOptimizer")),
        ("the first Keras class in keras.optimizers.Optimizer's bases",
         lambda: next((c for c in reversed(type.mro(keras.optimizers.Optimizer)) if c.__module__.startswith("keras")),
                      None)),
    ))
    parts.keras_optimizer_base = base
    parts._set("keras-optimizer-base", found_as, "no keras.src.optimizers.base_optimizer.BaseOptimizer")
    variable = getattr(keras, "Variable", None)
    parts._set("keras-variables", "keras.Variable._value" if variable is not None else "", "no keras.Variable")


def in_tf_function(frame, depth=80):
    """Does ``frame`` (or one of its callers) run inside a tf.function's ``__call__``?"""
    codes, files = PARTS.tf_function_codes, PARTS.tf_function_files
    while frame is not None and depth:
        code = frame.f_code
        if code in codes or (code.co_name == "__call__" and code.co_filename.endswith(files or ("\0",))):
            return True
        frame = frame.f_back
        depth -= 1
    return False


def in_tensorflow(filename):
    """Is this file one of TensorFlow's own modules?"""
    return (os.sep + "tensorflow" + os.sep) in filename


def in_numpy_function(frame, depth=12):
    """Does ``frame`` (or one of its callers) run inside tf.numpy_function's Python wrapper?"""
    files = PARTS.numpy_function_files
    if not files:
        return False
    while frame is not None and depth:
        if frame.f_code.co_filename.endswith(files):
            return True
        frame = frame.f_back
        depth -= 1
    return False


def keras_tf_variable(value, variable_types):
    """The tf.Variable a Keras 3 variable holds (``_value``; its ``value`` property when that is gone), or None."""
    inner = getattr(value, "_value", None)
    if inner is None and type(value).__module__.startswith("keras"):
        inner = getattr(value, "value", None)
    if inner is not None and isinstance(inner, variable_types):
        return inner
    return None


PARTS = Parts(None)  # replaced by ``entry.instrument`` once TensorFlow is imported
