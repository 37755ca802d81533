"""Whole, runnable TensorFlow training programs, with zero or one known bug shape in them.

A :class:`Program` is every choice a program is made of; :func:`render` turns it into source
text, and :func:`programs` is the Hypothesis strategy that draws them. The surface features
(where the step lives, how TensorFlow is imported, keyword or positional arguments, a helper
for the loss, ``tf.function``, harmless look-alikes of the bugs) are independent of the bug, so
that a finding can be pinned on one feature: :data:`SURFACES` lists programs that differ from a
plain baseline by one feature each.

Every program is small enough to run its first step in seconds: a Keras ``Sequential`` of one to
three ``Dense`` layers, or the same network written with raw ``tf.Variable``\\ s, trained on
random tensors with a custom ``tf.GradientTape`` step.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import keyword
from dataclasses import dataclass, field

from hypothesis import strategies as st

KERAS, RAW = "keras", "raw"
REGRESSION, CLASSIFICATION = "regression", "classification"
INLINE, FUNCTION, METHOD = "inline", "function", "method"

# The bug shapes, and the rules whose findings name each one as the cause.
OUTSIDE_TAPE = "forward-pass-outside-tape"
STOP_GRADIENT = "stop-gradient-on-prediction"
NON_DIFFERENTIABLE = "argmax-round-or-int-cast"
NUMPY = "numpy-round-trip"
LOSS_IGNORES = "loss-ignores-prediction"
WRONG_VARIABLES = "wrong-variable-list"
MISSING_WATCH = "missing-watch"
REBOUND = "variable-rebound-to-tensor"

BUGS = (OUTSIDE_TAPE, STOP_GRADIENT, NON_DIFFERENTIABLE, NUMPY, LOSS_IGNORES, WRONG_VARIABLES, MISSING_WATCH, REBOUND)

MATCHING_RULES: dict[str, frozenset[str]] = {
    OUTSIDE_TAPE: frozenset({"GF001"}),
    STOP_GRADIENT: frozenset({"GF002"}),
    # argmax/round/cast into a cross-entropy is GF008's, anywhere else GF009's
    NON_DIFFERENTIABLE: frozenset({"GF008", "GF009"}),
    NUMPY: frozenset({"GF004"}),
    # an intermediate output instead of the prediction is GF003's; a loss made of no variable at all, GF014's
    LOSS_IGNORES: frozenset({"GF003", "GF014"}),
    # `.variables` with non-trainable state is GF006's; a `trainable=False` or integer variable, GF010's
    WRONG_VARIABLES: frozenset({"GF006", "GF010"}),
    MISSING_WATCH: frozenset({"GF007"}),
    REBOUND: frozenset({"GF005"}),
}

# Sub-shapes of each bug: where the cut is made and with what.
VARIANTS: dict[str, tuple[str, ...]] = {
    OUTSIDE_TAPE: ("prediction-before-tape", "loss-after-tape"),
    STOP_GRADIENT: ("on-model-call", "on-loss-argument", "in-loss-helper"),
    NON_DIFFERENTIABLE: ("argmax", "round", "int-cast"),
    NUMPY: ("numpy-in-loss", "np-mean", "tf-constant-of-numpy"),
    LOSS_IGNORES: ("intermediate-output", "intermediate-output-named", "no-prediction"),
    WRONG_VARIABLES: ("all-variables", "non-trainable-variable", "integer-variable"),
    MISSING_WATCH: ("watch-accessed-variables-false", "plain-tensor-parameters"),
    REBOUND: ("subtract", "augmented-assign"),
}

# Bugs that need a network of one kind: a Keras model has no variable to rebind by name, and
# `.variables` holds non-trainable state only in a model that has some.
BUGS_FOR_KIND = {
    KERAS: tuple(b for b in BUGS if b != REBOUND),
    RAW: BUGS,
}

# Harmless look-alikes of the bugs, in places where they cut no gradient.
DECOYS = (
    None,
    "argmax-accuracy",  # argmax of the prediction, for an accuracy computed beside the loss
    "numpy-logging",  # the loss's value read with .numpy() after the gradient
    "stop-gradient-on-labels",  # the labels, which carry no gradient anyway, wrapped in stop_gradient
)

RESERVED = frozenset(
    set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
    | {"tf", "T", "np", "tensorflow", "numpy", "keras", "self", "cls"}
)


@dataclass(frozen=True)
class Names:
    data_x: str = "features"
    data_y: str = "labels"
    model: str = "model"
    optimizer: str = "optimizer"
    loss_object: str = "loss_fn"
    lr: str = "learning_rate"
    step: str = "train_step"
    helper: str = "compute_loss"
    helper_true: str = "y_true"
    helper_pred: str = "y_pred"
    tape: str = "tape"
    pred: str = "predictions"
    loss: str = "loss"
    grads: str = "grads"
    loop: str = "epoch"
    trainer_class: str = "Trainer"
    trainer: str = "trainer"
    x: str = "x"
    y: str = "y"
    hidden: str = "hidden"
    weight: str = "w"  # raw weights are weight1, weight2, ...; biases bias1, ...
    bias: str = "b"
    grad: str = "g"
    var: str = "v"
    scale: str = "scale"
    accuracy: str = "accuracy"
    value: str = "value"


ROLES = tuple(f.name for f in dataclasses.fields(Names))


@dataclass(frozen=True)
class Program:
    kind: str = KERAS
    task: str = REGRESSION
    layers: int = 2
    units: int = 8
    container: str = FUNCTION
    helper_loss: bool = False
    alias: str = "tf"  # "tf", "T", or "tensorflow" for a plain `import tensorflow`
    keywords: bool = False
    tf_function: bool = False
    unpacked_update: bool = False  # raw: `gw1, gb1 = tape.gradient(...)` and one update per variable
    nn_cross_entropy: bool = False  # classification: tf.nn.sparse_softmax_cross_entropy_with_logits, not a Keras loss
    decoy: str | None = None
    bug: str | None = None
    variant: str = ""
    names: Names = field(default_factory=Names)
    batch: int = 8
    inputs: int = 4

    @property
    def label(self) -> str:
        return f"{self.bug}/{self.variant}" if self.bug else "clean"


CLASSES = 3


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, *lines: str) -> None:
        for line in lines:
            self.lines.append("    " * self.depth + line if line else "")

    @contextlib.contextmanager
    def indent(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(p: Program) -> str:
    """The program's source text."""
    return _Renderer(p).render()


class _Renderer:
    def __init__(self, p: Program) -> None:
        self.p = p
        self.n = p.names
        self.tf = p.alias
        self.out = _Writer()

    # -- pieces ---------------------------------------------------------------------------------

    @property
    def in_object(self) -> bool:
        return self.p.container == METHOD

    def ref(self, name: str) -> str:
        """A model-level name as the step sees it: an attribute of the trainer in the method form."""
        return f"self.{name}" if self.in_object else name

    def bug(self, shape: str, variant: str | None = None) -> bool:
        return self.p.bug == shape and (variant is None or self.p.variant == variant)

    @property
    def n_out(self) -> int:
        return CLASSES if self.p.task == CLASSIFICATION else 1

    @property
    def tensor_parameters(self) -> bool:
        return self.p.kind == RAW and self.bug(MISSING_WATCH, "plain-tensor-parameters")

    @property
    def rebinds(self) -> bool:
        """Raw parameters updated by rebinding their names (the bug, or plain tensors, which have no assign)."""
        return self.p.kind == RAW and (self.bug(REBOUND) or self.tensor_parameters)

    @property
    def unpacked(self) -> bool:
        return self.p.kind == RAW and (self.p.unpacked_update or self.rebinds)

    def kw(self, name: str, value: str) -> str:
        return f"{name}={value}" if self.p.keywords else value

    def mean(self, inner: str) -> str:
        return f"{self.tf}.reduce_mean({self.kw('input_tensor', inner)})"

    def loss_of(self, y: str, pred: str) -> str:
        """The loss expression of the task, on labels ``y`` and prediction ``pred``."""
        tf = self.tf
        if self.p.task == REGRESSION:
            return self.mean(f"{tf}.square({y} - {pred})")
        if self.p.nn_cross_entropy:
            return self.mean(f"{tf}.nn.sparse_softmax_cross_entropy_with_logits(labels={y}, logits={pred})")
        obj = self.n.loss_object
        return f"{obj}(y_true={y}, y_pred={pred})" if self.p.keywords else f"{obj}({y}, {pred})"

    def cut(self, pred: str) -> str:
        """``pred`` through the non-differentiable operation of the bug."""
        tf = self.tf
        variant = self.p.variant
        if variant == "argmax":
            picked = f"{tf}.argmax({pred}, {self.kw('axis', '-1')})"
            if self.p.task == CLASSIFICATION and not self.p.nn_cross_entropy:
                return picked
            return f"{tf}.cast({picked}, {tf}.float32)"
        if variant == "round":
            return f"{tf}.round({pred})"
        return f"{tf}.cast({tf}.cast({pred}, {tf}.int32), {tf}.float32)"

    def parameters(self) -> list[tuple[str, str]]:
        """Raw network: (weight, bias) names per layer."""
        return [(f"{self.n.weight}{i}", f"{self.n.bias}{i}") for i in range(1, self.p.layers + 1)]

    def flat_parameters(self) -> list[str]:
        names = [name for pair in self.parameters() for name in pair]
        if self.bug(WRONG_VARIABLES, "integer-variable"):
            names.append(self.n.scale)
        return names

    def sources(self) -> str:
        """What the gradient is asked for."""
        if self.p.kind == KERAS:
            attribute = "variables" if self.bug(WRONG_VARIABLES, "all-variables") else "trainable_variables"
            return f"{self.ref(self.n.model)}.{attribute}"
        return "[" + ", ".join(self.ref(name) for name in self.flat_parameters()) + "]"

    def model_call(self, x: str) -> str:
        model = self.ref(self.n.model)
        if self.p.keywords:
            return f"{model}(inputs={x}, training=True)"
        return f"{model}({x}, training=True)"

    def matmul(self, a: str, b: str) -> str:
        if self.p.keywords:
            return f"{self.tf}.matmul(a={a}, b={b})"
        return f"{a} @ {b}"

    def forward_lines(self, x: str) -> tuple[list[str], str | None]:
        """Statements computing the prediction into ``self.n.pred``; the name of the first hidden output, if any."""
        tf, n = self.tf, self.n
        if self.p.kind == KERAS:
            call = self.model_call(x)
            if self.bug(STOP_GRADIENT, "on-model-call"):
                call = f"{tf}.stop_gradient({call})"
            lines = [f"{n.pred} = {call}"]
            if self.bug(LOSS_IGNORES, "intermediate-output-named"):
                lines.append(f"{n.hidden}1 = {self.ref(n.model)}.layers[0]({x})")
            return lines, None
        lines = []
        current = x
        first_hidden = None
        pairs = self.parameters()
        for index, (w, b) in enumerate(pairs):
            value = f"{self.matmul(current, self.ref(w))} + {self.ref(b)}"
            if index < len(pairs) - 1:
                name = f"{n.hidden}{index + 1}"
                lines.append(f"{name} = {tf}.nn.relu({value})")
                first_hidden = first_hidden or name
                current = name
            else:
                if self.bug(WRONG_VARIABLES, "integer-variable"):
                    value = f"({value}) * {tf}.cast({self.ref(n.scale)}, {tf}.float32)"
                if self.bug(STOP_GRADIENT, "on-model-call"):
                    value = f"{tf}.stop_gradient({value})"
                lines.append(f"{n.pred} = {value}")
        return lines, first_hidden

    def loss_line(self, y: str, x: str, first_hidden: str | None) -> str:
        """``loss = ...``, with the bug of the loss path in it."""
        tf, n = self.tf, self.n
        pred = n.pred
        if self.bug(LOSS_IGNORES, "intermediate-output") or self.bug(LOSS_IGNORES, "intermediate-output-named"):
            if self.p.kind == KERAS and self.p.variant == "intermediate-output":
                pred = f"{self.ref(n.model)}.layers[0]({x})"
            elif self.p.kind == KERAS:
                pred = f"{n.hidden}1"
            else:
                pred = first_hidden
        elif self.bug(LOSS_IGNORES, "no-prediction"):
            pred = x if self.p.task == REGRESSION else f"{tf}.zeros(({self.p.batch}, {CLASSES}))"
        if self.bug(STOP_GRADIENT, "on-loss-argument"):
            pred = f"{tf}.stop_gradient({pred})"
        if self.bug(NON_DIFFERENTIABLE) and not self.p.helper_loss:
            pred = self.cut(pred)
        if self.bug(NUMPY, "numpy-in-loss"):
            pred = f"{pred}.numpy()"
        if self.bug(NUMPY, "tf-constant-of-numpy"):
            pred = f"{tf}.constant({pred}.numpy())"
        if self.p.decoy == "stop-gradient-on-labels":
            y = f"{tf}.stop_gradient({y})"
        if self.bug(NUMPY, "np-mean"):
            if self.p.task == REGRESSION:
                return f"{n.loss} = np.mean(np.square({y} - {pred}.numpy()))"
            return f"{n.loss} = np.mean({self.loss_of(y, pred)}.numpy())"
        if self.p.helper_loss:
            helper = n.helper
            if self.p.keywords:
                return f"{n.loss} = {helper}({n.helper_true}={y}, {n.helper_pred}={pred})"
            return f"{n.loss} = {helper}({y}, {pred})"
        return f"{n.loss} = {self.loss_of(y, pred)}"

    def helper_lines(self) -> list[str]:
        n = self.n
        pred = n.helper_pred
        if self.bug(NON_DIFFERENTIABLE):
            pred = self.cut(pred)
        if self.bug(STOP_GRADIENT, "in-loss-helper"):
            pred = f"{self.tf}.stop_gradient({pred})"
        body = self.loss_of(n.helper_true, pred)
        return [f"def {n.helper}({n.helper_true}, {n.helper_pred}):", f"    return {body}", ""]

    # -- the program ----------------------------------------------------------------------------

    def render(self) -> str:
        p, n, out, tf = self.p, self.n, self.out, self.tf
        out("import numpy as np")
        out(f"import tensorflow as {tf}" if tf != "tensorflow" else "import tensorflow")
        out("")
        out(f"{n.data_x} = {tf}.random.normal(({p.batch}, {p.inputs}))")
        if p.task == REGRESSION:
            out(f"{n.data_y} = {tf}.random.normal(({p.batch}, 1))")
        else:
            out(f"{n.data_y} = {tf}.random.uniform(({p.batch},), maxval={CLASSES}, dtype={tf}.int32)")
        if p.task == CLASSIFICATION and not p.nn_cross_entropy:
            # at module level in every form, so that a loss helper outside the trainer can read it too
            out(f"{n.loss_object} = {tf}.keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
        if not self.in_object:
            self.model_lines(module_level=True)
        out("")
        if p.helper_loss or self.bug(STOP_GRADIENT, "in-loss-helper"):
            out(*self.helper_lines())
        if p.container == INLINE:
            self.inline_loop()
        elif p.container == FUNCTION:
            self.step_function()
        else:
            self.trainer_class()
        return out.text()

    def model_lines(self, module_level: bool) -> None:
        """The network, the optimizer and the loss object, at module level or in ``__init__``."""
        p, n, out, tf = self.p, self.n, self.out, self.tf
        target = (lambda name: name) if module_level else (lambda name: f"self.{name}")
        if p.kind == KERAS:
            layers = [f"{tf}.keras.Input(shape=({p.inputs},))"]
            for _ in range(p.layers - 1):
                layers.append(f'{tf}.keras.layers.Dense({p.units}, activation="relu")')
            if self.bug(WRONG_VARIABLES, "all-variables"):
                layers.append(f"{tf}.keras.layers.BatchNormalization()")
            layers.append(f"{tf}.keras.layers.Dense({self.n_out})")
            out(f"{target(n.model)} = {tf}.keras.Sequential([")
            out(*(f"    {layer}," for layer in layers))
            out("])")
            rate = "learning_rate=0.01" if p.keywords else "0.01"
            out(f"{target(n.optimizer)} = {tf}.keras.optimizers.SGD({rate})")
        else:
            sizes = [p.inputs] + [p.units] * (p.layers - 1) + [self.n_out]
            for index, (w, b) in enumerate(self.parameters()):
                shape_w, shape_b = f"({sizes[index]}, {sizes[index + 1]})", f"({sizes[index + 1]},)"
                init_w, init_b = f"{tf}.random.normal({shape_w}) * 0.1", f"{tf}.zeros({shape_b})"
                if self.tensor_parameters:
                    out(f"{target(w)} = {init_w}", f"{target(b)} = {init_b}")
                    continue
                out(f"{target(w)} = {tf}.Variable({init_w})")
                last = index == len(sizes) - 2
                if last and self.bug(WRONG_VARIABLES, "non-trainable-variable"):
                    out(f"{target(b)} = {tf}.Variable({init_b}, trainable=False)")
                else:
                    out(f"{target(b)} = {tf}.Variable({init_b})")
            if self.bug(WRONG_VARIABLES, "integer-variable"):
                out(f"{target(n.scale)} = {tf}.Variable(1)")
            out(f"{target(n.lr)} = 0.01")

    def tape_open(self) -> str:
        tf, n = self.tf, self.n
        if self.bug(MISSING_WATCH, "watch-accessed-variables-false"):
            return f"with {tf}.GradientTape(watch_accessed_variables=False) as {n.tape}:"
        return f"with {tf}.GradientTape() as {n.tape}:"

    def step_body(self, x: str, y: str, returns: bool) -> None:
        """The tape, the gradient and the update, written at the writer's current depth."""
        p, n, out = self.p, self.n, self.out
        forward, first_hidden = self.forward_lines(x)
        loss = self.loss_line(y, x, first_hidden)
        before = self.bug(OUTSIDE_TAPE, "prediction-before-tape")
        after = self.bug(OUTSIDE_TAPE, "loss-after-tape")
        if before:
            out(*forward)
        out(self.tape_open())
        with out.indent():
            if not before:
                out(*forward)
            if not after:
                out(loss)
        if after:
            out(loss)
        sources = self.sources()
        if self.unpacked:
            grads = ", ".join(f"{n.grad}_{name}" for name in self.flat_parameters())
            target = grads + ("," if len(self.flat_parameters()) == 1 else "")
        else:
            target = n.grads
        if p.keywords:
            out(f"{target} = {n.tape}.gradient(target={n.loss}, sources={sources})")
        else:
            out(f"{target} = {n.tape}.gradient({n.loss}, {sources})")
        self.update_lines(sources)
        if p.decoy == "argmax-accuracy":
            out(f"{n.accuracy} = {self.accuracy(y)}")
        if p.decoy == "numpy-logging" and not p.tf_function:
            out(f"print({n.loss}.numpy())")
        if returns:
            out(f"return {n.loss}")

    def accuracy(self, y: str) -> str:
        tf, n = self.tf, self.n
        if self.p.task == CLASSIFICATION:
            picked = f"{tf}.argmax({n.pred}, {self.kw('axis', '-1')}, output_type={tf}.int32)"
            return self.mean(f"{tf}.cast({tf}.equal({picked}, {y}), {tf}.float32)")
        return self.mean(f"{tf}.cast({tf}.abs({n.pred} - {y}) < 0.5, {tf}.float32)")

    def update_lines(self, sources: str) -> None:
        p, n, out = self.p, self.n, self.out
        if p.kind == KERAS:
            pairs = f"zip({n.grads}, {sources})"
            if p.keywords:
                out(f"{self.ref(n.optimizer)}.apply_gradients(grads_and_vars={pairs})")
            else:
                out(f"{self.ref(n.optimizer)}.apply_gradients({pairs})")
            return
        lr = self.ref(n.lr)
        if not self.unpacked:
            out(f"for {n.grad}, {n.var} in zip({n.grads}, {sources}):")
            out(f"    {n.var}.assign_sub({lr} * {n.grad})")
            return
        for name in self.flat_parameters():
            grad, target = f"{n.grad}_{name}", self.ref(name)
            if self.rebinds and self.bug(REBOUND, "augmented-assign"):
                out(f"{target} -= {lr} * {grad}")
            elif self.rebinds:
                out(f"{target} = {target} - {lr} * {grad}")
            else:
                out(f"{target}.assign_sub({lr} * {grad})")

    def rebinding_globals(self) -> list[str]:
        """``global`` for parameters a step function rebinds (without it they would be its locals)."""
        if self.p.container == FUNCTION and self.rebinds:
            return ["global " + ", ".join(self.flat_parameters())]
        return []

    def decorator(self) -> list[str]:
        return [f"@{self.tf}.function"] if self.p.tf_function else []

    def loop_tail(self, value: str) -> None:
        self.out(f"    print(float({value}))")

    def inline_loop(self) -> None:
        n, out = self.n, self.out
        out(f"for {n.loop} in range(2):")
        with out.indent():
            self.step_body(n.data_x, n.data_y, returns=False)
            out(f"print(float({n.loss}))")

    def step_function(self) -> None:
        n, out = self.n, self.out
        out(*self.decorator())
        out(f"def {n.step}({n.x}, {n.y}):")
        with out.indent():
            out(*self.rebinding_globals())
            self.step_body(n.x, n.y, returns=True)
        out("")
        out("")
        out(f"for {n.loop} in range(2):")
        if self.p.keywords:
            out(f"    {n.value} = {n.step}({n.x}={n.data_x}, {n.y}={n.data_y})")
        else:
            out(f"    {n.value} = {n.step}({n.data_x}, {n.data_y})")
        self.loop_tail(n.value)

    def trainer_class(self) -> None:
        p, n, out = self.p, self.n, self.out
        out(f"class {n.trainer_class}:")
        with out.indent():
            out("def __init__(self):")
            with out.indent():
                self.model_lines(module_level=False)
            out("")
            out(*self.decorator())
            out(f"def {n.step}(self, {n.x}, {n.y}):")
            with out.indent():
                self.step_body(n.x, n.y, returns=True)
        out("")
        out("")
        out(f"{n.trainer} = {n.trainer_class}()")
        out(f"for {n.loop} in range(2):")
        if p.keywords:
            out(f"    {n.value} = {n.trainer}.{n.step}({n.x}={n.data_x}, {n.y}={n.data_y})")
        else:
            out(f"    {n.value} = {n.trainer}.{n.step}({n.data_x}, {n.data_y})")
        self.loop_tail(n.value)


# -- Hypothesis strategies ----------------------------------------------------------------------

_identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True).filter(
    lambda s: s not in RESERVED and not s.startswith("__")
)


NUMBERED_ROLES = ("weight", "bias", "hidden")  # raw parameters and hidden outputs get a layer number appended


def _spellings(role: str, name: str) -> set[str]:
    return {f"{name}{i}" for i in range(1, 4)} if role in NUMBERED_ROLES else {name}


def _gradient_spellings(chosen: dict[str, str]) -> set[str]:
    """The names of the unpacked gradients, ``<grad>_<parameter>``."""
    parameters = _spellings("weight", chosen["weight"]) | _spellings("bias", chosen["bias"]) | {chosen["scale"]}
    return {f"{chosen['grad']}_{parameter}" for parameter in parameters}


@st.composite
def names(draw) -> Names:
    """Every role gets either its usual name or a random identifier; no two identifiers in a program are the same."""
    usual = Names()
    chosen: dict[str, str] = {}
    spelled: set[str] = set()
    for role in ROLES:
        name = getattr(usual, role)
        if draw(st.booleans()):
            name = draw(_identifiers)
            if role == "trainer_class":
                name = name.capitalize()
        while _spellings(role, name) & spelled:
            name = f"{name}_{role}"
        chosen[role] = name
        spelled |= _spellings(role, name)
    while _gradient_spellings(chosen) & spelled:
        chosen["grad"] += "_grad"
    return Names(**chosen)


@st.composite
def programs(draw, bug: str | None | object = ..., surface: Program | None = None) -> Program:
    """A program; ``bug`` fixes the bug shape (None: a clean program; ``...``: any, or none).

    With ``surface``, every surface feature is taken from it and only the names, the sizes and
    (for a bug) the bug's variant are drawn.
    """
    if surface is not None:
        kind = surface.kind
    else:
        kind = draw(st.sampled_from((KERAS, RAW)))
    if bug is ...:
        bug = draw(st.one_of(st.none(), st.sampled_from(BUGS_FOR_KIND[kind])))
    elif bug is not None and bug not in BUGS_FOR_KIND[kind]:
        kind = RAW
    variant = draw(st.sampled_from(VARIANTS[bug])) if bug else ""
    if surface is not None:
        program = dataclasses.replace(surface, kind=kind)
    else:
        container = draw(st.sampled_from((INLINE, FUNCTION, METHOD)))
        program = Program(
            kind=kind,
            task=draw(st.sampled_from((REGRESSION, CLASSIFICATION))),
            layers=draw(st.integers(1, 3)),
            container=container,
            helper_loss=draw(st.booleans()),
            alias=draw(st.sampled_from(("tf", "T", "tensorflow"))),
            keywords=draw(st.booleans()),
            tf_function=container != INLINE and draw(st.booleans()),
            unpacked_update=draw(st.booleans()),
            nn_cross_entropy=draw(st.booleans()),
            decoy=draw(st.sampled_from(DECOYS)),
        )
    program = dataclasses.replace(
        program,
        bug=bug,
        variant=variant,
        units=draw(st.sampled_from((4, 8))),
        batch=draw(st.integers(2, 8)),
        inputs=draw(st.integers(1, 5)),
        names=draw(names()),
    )
    return _consistent(program)


def _consistent(p: Program) -> Program:
    """Settle choices a bug's variant cannot go with."""
    if p.bug == LOSS_IGNORES and p.variant.startswith("intermediate-output") and p.layers < 2:
        p = dataclasses.replace(p, layers=2)
    if p.bug == STOP_GRADIENT and p.variant == "in-loss-helper":
        p = dataclasses.replace(p, helper_loss=True)
    if p.bug == WRONG_VARIABLES and p.kind == KERAS:
        p = dataclasses.replace(p, variant="all-variables")
    if p.bug == WRONG_VARIABLES and p.kind == RAW and p.variant == "all-variables":
        p = dataclasses.replace(p, variant="non-trainable-variable")
    if p.bug == MISSING_WATCH and p.kind == KERAS:
        p = dataclasses.replace(p, variant="watch-accessed-variables-false")
    if p.container == INLINE:
        p = dataclasses.replace(p, tf_function=False)
    return p


# The surface features, one at a time: each entry differs from its kind's baseline in one feature.
BASELINES = {
    KERAS: Program(kind=KERAS),
    RAW: Program(kind=RAW),
}


def _surfaces() -> dict[str, Program]:
    variations = {
        "baseline": {},
        "inline-loop": {"container": INLINE},
        "method": {"container": METHOD},
        "helper-loss": {"helper_loss": True},
        "alias-T": {"alias": "T"},
        "plain-import": {"alias": "tensorflow"},
        "keywords": {"keywords": True},
        "tf-function": {"tf_function": True},
        "one-layer": {"layers": 1},
        "three-layers": {"layers": 3},
        "classification": {"task": CLASSIFICATION},
        "classification-nn": {"task": CLASSIFICATION, "nn_cross_entropy": True},
        "decoy-argmax-accuracy": {"decoy": "argmax-accuracy"},
        "decoy-numpy-logging": {"decoy": "numpy-logging"},
        "decoy-stop-gradient-on-labels": {"decoy": "stop-gradient-on-labels"},
    }
    surfaces = {}
    for kind, baseline in BASELINES.items():
        for name, change in variations.items():
            surfaces[f"{kind}-{name}"] = dataclasses.replace(baseline, **change)
        if kind == RAW:
            surfaces[f"{kind}-unpacked-update"] = dataclasses.replace(baseline, unpacked_update=True)
    return surfaces


SURFACES: dict[str, Program] = _surfaces()
