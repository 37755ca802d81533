"""Keras's hooks: where layers are built and called, the optimizer's updates, ``compile`` and ``fit``."""

from .frames import first_user_site
from .state import STATE, GradfixStop, fit_goes_on, write_facts
from .tf_hooks import in_other_replica
from .values import describe_source, shape_of


def wrap_layer_classes(module_layer_classes):
    for cls in module_layer_classes:
        if cls is None or getattr(cls.__init__, "_gradfix", False):
            continue
        original_init = cls.__init__

        def make(original_init):
            def __init__(self, *args, **kwargs):
                if id(self) not in STATE.variables.layers:
                    try:
                        STATE.variables.layers[id(self)] = (self, type(self).__name__, first_user_site(2))
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
        STATE.variables.layer_stack.append(self)
        try:
            return original_call(self, *args, **kwargs)
        finally:
            STATE.variables.layer_stack.pop()
    __call__._gradfix = True
    return __call__


KERAS_OPTIMIZER = "keras-optimizer"
COMPAT_V1_OPTIMIZER = "compat-v1-optimizer"


def wrap_optimizer_classes(classes, kind=KERAS_OPTIMIZER):
    """Record each ``apply_gradients``/``apply`` of these optimizer classes as an update of ``kind``."""
    for cls in classes:
        if cls is None:
            continue
        for method in ("apply_gradients", "apply"):
            original = cls.__dict__.get(method)
            if original is None or getattr(original, "_gradfix", False):
                continue

            def make(original, method):
                def wrapper(self, *args, **kwargs):
                    if not STATE.updates.in_apply and not in_other_replica():
                        STATE.updates.in_apply = True
                        entry = None
                        try:
                            args, kwargs = _record_apply(self, method, args, kwargs, kind)
                            entry = STATE.run.applies[-1]
                        except Exception as problem:
                            STATE.run.notes.append({"kind": "internal-error", "message": "apply: %s" % problem})
                        try:
                            result = original(self, *args, **kwargs)
                        except Exception as problem:
                            if entry is not None:
                                entry["error"] = {"type": type(problem).__name__, "message": str(problem)[:2000]}
                                write_facts()
                            raise
                        finally:
                            STATE.updates.in_apply = False
                        if entry is not None:
                            entry["completed"] = True
                            write_facts()
                        return result
                    return original(self, *args, **kwargs)
                wrapper._gradfix = True
                wrapper.__name__ = method
                return wrapper

            setattr(cls, method, make(original, method))


def wrap_compat_v1_optimizers(tf):
    """``tf.compat.v1.train`` optimizers: their ``apply_gradients`` (which ``minimize`` calls), in the base
    class and the subclasses that define their own, and ``minimize``."""
    try:
        base = tf.compat.v1.train.Optimizer
    except Exception:
        return
    found, todo = [], [base]
    while todo:
        cls = todo.pop()
        if cls not in found:
            found.append(cls)
            todo.extend(cls.__subclasses__())
    wrap_optimizer_classes([cls for cls in found if "apply_gradients" in cls.__dict__], COMPAT_V1_OPTIMIZER)
    _wrap_minimize(base, COMPAT_V1_OPTIMIZER)


def _wrap_minimize(cls, kind):
    """``minimize`` raises "No gradients provided" before it calls ``apply_gradients``: record the update it
    was to make, with what it raised, so that the facts say which update the step uses."""
    original = cls.__dict__.get("minimize")
    if original is None or getattr(original, "_gradfix", False):
        return

    def minimize(self, *args, **kwargs):
        before = len(STATE.run.applies)
        try:
            return original(self, *args, **kwargs)
        except Exception as problem:
            if len(STATE.run.applies) == before and not STATE.updates.in_apply and not in_other_replica():
                STATE.run.applies.append({
                    "index": len(STATE.run.applies), "kind": kind, "method": "minimize", "optimizer": type(self).__name__,
                    "site": first_user_site(2), "after_gradient_call": len(STATE.run.gradient_calls) - 1,
                    "variables": [], "mismatches": [], "completed": False,
                    "error": {"type": type(problem).__name__, "message": str(problem)[:2000]}})
                write_facts()
            raise
    minimize._gradfix = True
    cls.minimize = minimize


def _record_apply(optimizer, method, args, kwargs, kind=KERAS_OPTIMIZER):
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
        owner = STATE.updates.grad_owner.get(id(grad))
        grad_shape = None if hasattr(grad, "dense_shape") else shape_of(grad)  # IndexedSlices: the pairing check suffices
        if owner is not None and info.get("key") is not None and owner != info["key"]:
            mismatches.append("the gradient computed for %s is applied to %s" % (owner, info["key"]))
        elif grad_shape is not None and info["shape"] is not None and list(grad_shape) != list(info["shape"]):
            mismatches.append("a gradient of shape %s is applied to %s of shape %s" % (grad_shape, info["key"] or info["path"], info["shape"]))
    STATE.run.applies.append({
        "index": len(STATE.run.applies),
        "kind": kind,
        "method": method,
        "optimizer": type(optimizer).__name__,
        "site": first_user_site(3),
        "after_gradient_call": len(STATE.run.gradient_calls) - 1,
        "variables": entries,
        "mismatches": mismatches,
        "completed": False,
    })
    write_facts()
    return args, kwargs


def module_available(name):
    try:
        import importlib.util
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def force_keras_eager(keras):
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
    wrap_fit(getattr(keras, "Model", None))


def wrap_fit(model_cls):
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
        STATE.run.fit_keys.append(key)
        STATE.run.fit_sites.add(key)
        try:
            return original_fit(self, *args, **kwargs)
        except GradfixStop:
            if len(STATE.run.fit_keys) > 1 or not fit_goes_on():
                raise
            STATE.run.fits_cut.add(key)
            STATE.run.notes.append({"kind": "fit-cut", "site": where,
                                    "message": "model.fit was stopped after %d step(s); the program went on" % STATE.run.steps})
            # the next gradient call (of this program) counts its steps afresh
            STATE.run.first_site = None
            STATE.run.first_site_hits = 0
            STATE.run.stopped_after_steps = None
            return getattr(self, "history", None)
        finally:
            STATE.run.fit_keys.pop()

    fit._gradfix = True
    fit.__name__ = "fit"
    try:
        model_cls.fit = fit
    except Exception:
        pass
