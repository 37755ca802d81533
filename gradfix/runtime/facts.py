"""The facts a diagnosis run sends back, as plain dataclasses (the parent side of the child's JSON).

The fields, the statuses and ``FACTS_VERSION`` are those of ``gradfix.runtime.child.schema``, the module
the child writes them by: a child of another version is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradfix.runtime.child.schema import FACTS_VERSION, STATUSES  # noqa: F401 (the parent reads them from here)


@dataclass(frozen=True)
class Site:
    file: str
    line: int | None
    function: str = ""
    code: str = ""
    column: int | None = None
    end_line: int | None = None
    end_column: int | None = None
    text: str = ""  # the exact expression (a caller's call of the next frame in), when the run had columns
    # the user's frames that called this one, innermost first, each at the call it was suspended in
    callers: tuple["Site", ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Site | None":
        if not data:
            return None
        return cls(
            file=data.get("file", ""),
            line=data.get("line"),
            function=data.get("function", "") or "",
            code=data.get("code", "") or "",
            column=data.get("column"),
            end_line=data.get("end_line"),
            end_column=data.get("end_column"),
            text=data.get("text", "") or "",
            callers=tuple(s for s in (Site.from_dict(c) for c in data.get("callers") or ()) if s is not None),
        )

    def where(self) -> str:
        import os

        path = os.path.relpath(self.file) if self.file and os.path.isabs(self.file) else self.file
        if self.line is None:
            return path
        # Python 3.10 records lines only: a made-up column would point at the wrong expression
        return f"{path}:{self.line}:{self.column}" if self.column else f"{path}:{self.line}"


@dataclass(frozen=True)
class Expression:
    """The user's expression that cut the path (the call or operator TensorFlow ran the op for): its
    source text and range, from the ``span`` the child gives a cut (see the child's schema).

    Columns count characters from 1; ``end_column`` is the one just after the last character. A
    range that is not ``exact`` (Python 3.10 has no column table) is the whole line: no columns."""

    file: str
    line: int
    end_line: int
    text: str
    column: int | None = None
    end_column: int | None = None
    exact: bool = False

    @classmethod
    def from_cut(cls, cut: dict[str, Any] | None) -> "Expression | None":
        span = (cut or {}).get("span")
        if cut is None or not span or not span.get("line") or not cut.get("file"):
            return None
        exact = bool(span.get("exact")) and span.get("column") is not None and span.get("end_column") is not None
        return cls(file=cut["file"], line=span["line"], end_line=span.get("end_line") or span["line"],
                   text=span.get("text") or "", column=span.get("column") if exact else None,
                   end_column=span.get("end_column") if exact else None, exact=exact)

    def where(self) -> str:
        """``train.py:14:12-14:25``; ``train.py:14`` when only the line is known."""
        import os

        path = os.path.relpath(self.file) if os.path.isabs(self.file) else self.file
        if not self.exact:
            return f"{path}:{self.line}"
        return f"{path}:{self.line}:{self.column}-{self.end_line}:{self.end_column}"


@dataclass(frozen=True)
class LayerInfo:
    cls: str
    name: str | None
    built_at: Site | None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "LayerInfo | None":
        if not data:
            return None
        return cls(cls=data.get("class", ""), name=data.get("name"), built_at=Site.from_dict(data.get("built_at")))


@dataclass(frozen=True)
class Frontier:
    """Where the path from one variable to the gradient's target breaks."""

    last_connected: dict[str, Any] | None  # name, line, code, shape, dtype of the last tensor still connected
    last_connected_read: bool | None
    break_site: Site | None  # the first statement whose result is no longer connected
    break_code: str = ""
    break_outputs: tuple[dict[str, Any], ...] = ()
    reads_connected: tuple[str, ...] = ()
    break_recording: bool | None = None  # was a tape recording when the break ran
    outputs_reach_target: bool = False
    output_is_target: bool = False
    connected_tensors: int = 0
    # What TensorFlow did there, as the run saw it (see the child's frontier.cut_at / cut_on_path):
    # {"kind": "op" | "stop-gradient" | "numpy-conversion" | "state-update", "op", "line", "file", ...}
    cut: dict[str, Any] | None = None
    # a value that depends on the variable stored with assign/assign_add during the tape's window
    assign: dict[str, Any] | None = None
    # a tensor that depends on the variable turned into NumPy by a statement the target is computed from
    conversion: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Frontier | None":
        if not data:
            return None
        brk = data.get("break") or {}
        return cls(
            last_connected=data.get("last_connected"),
            last_connected_read=data.get("last_connected_read"),
            break_site=Site.from_dict(brk) if brk else None,
            break_code=brk.get("code", ""),
            break_outputs=tuple(brk.get("outputs", ())),
            reads_connected=tuple(brk.get("reads_connected", ())),
            break_recording=brk.get("recording"),
            outputs_reach_target=bool(brk.get("outputs_reach_target")),
            output_is_target=bool(brk.get("output_is_target")),
            connected_tensors=int(data.get("connected_tensors", 0) or 0),
            cut=data.get("cut") or data.get("path_cut"),
            assign=data.get("assign"),
            conversion=data.get("conversion"),
        )


@dataclass(frozen=True)
class SourceFact:
    """One source of a gradient call (normally a variable) and what the run learnt about it."""

    index: int
    kind: str  # "variable", "tensor" or "other"
    path: str  # the variable's name as shown (Keras path, or tf.Variable name)
    name: str
    shape: tuple[int | None, ...] | None
    dtype: str
    trainable: bool | None
    gradient_is_none: bool
    created_at: Site | None = None
    layer: LayerInfo | None = None
    watched: bool | None = None  # did the tape see it read while recording
    read: str | None = None  # "in-tape", "outside-tape" or "never" (variables only)
    read_outside_at: Site | None = None
    read_by_other_tape: bool = False
    read_by_this_tape: bool | None = None  # None: not known (no read seen, or an older child)
    other_tape_has_gradient: bool = False
    rebound_next_step: bool = False
    frontier: Frontier | None = None
    key: str = ""  # the path, made unique by creation order when two variables share a name
    feeds_target: bool | None = None  # an unwatched tensor: is it an input of what the target was computed from?

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SourceFact":
        shape = data.get("shape")
        return cls(
            index=int(data.get("index", 0)),
            kind=data.get("kind", "variable"),
            path=data.get("path") or "",
            name=data.get("name") or "",
            shape=tuple(shape) if shape is not None else None,
            dtype=data.get("dtype") or "",
            trainable=data.get("trainable"),
            gradient_is_none=bool(data.get("gradient_is_none")),
            created_at=Site.from_dict(data.get("created_at")),
            layer=LayerInfo.from_dict(data.get("layer")),
            watched=data.get("watched"),
            read=data.get("read"),
            read_outside_at=Site.from_dict(data.get("read_outside_at")),
            read_by_other_tape=bool(data.get("read_by_other_tape")),
            read_by_this_tape=data.get("read_by_this_tape"),
            other_tape_has_gradient=bool(data.get("other_tape_has_gradient")),
            rebound_next_step=bool(data.get("rebound_next_step")),
            frontier=Frontier.from_dict(data.get("frontier")),
            key=data.get("key") or data.get("path") or "",
            feeds_target=data.get("feeds_target"),
        )

    @property
    def lost(self) -> bool:
        """No gradient now, or a variable that the step turns into a plain tensor (None from the next step on)."""
        return self.gradient_is_none or self.rebound_next_step

    @property
    def is_variable(self) -> bool:
        return self.kind == "variable"

    def shape_text(self) -> str:
        if self.shape is None:
            return "?"
        return "(" + ", ".join("None" if d is None else str(d) for d in self.shape) + ("," if len(self.shape) == 1 else "") + ")"


@dataclass(frozen=True)
class GradientCall:
    index: int
    step: int
    site: Site | None  # the frame that called tape.gradient (Keras's own train_step for model.fit)
    user_site: Site | None  # the first frame in the user's code
    target: dict[str, Any]
    sources: tuple[SourceFact, ...]
    kind: str = "tape"  # "tape" or "apply" (an optimizer apply seen without a tape call)
    watch_accessed_variables: bool = True  # False: GradientTape(watch_accessed_variables=False)
    # where the target was computed and whether a tape was recording then: {"op", "file", "line", "recording", "code"}
    target_origin: dict[str, Any] | None = None
    target_depends_on_watched: bool | None = None  # does the target depend on anything the tape watched?

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GradientCall":
        return cls(
            index=int(data.get("index", 0)),
            step=int(data.get("step", 1)),
            site=Site.from_dict(data.get("site")),
            user_site=Site.from_dict(data.get("user_site")),
            target=dict(data.get("target") or {}),
            sources=tuple(SourceFact.from_dict(s) for s in data.get("sources", ())),
            kind=data.get("kind", "tape"),
            watch_accessed_variables=bool(data.get("watch_accessed_variables", True)),
            target_origin=data.get("target_origin"),
            target_depends_on_watched=data.get("target_depends_on_watched"),
        )

    @property
    def target_not_tensor(self) -> tuple[str, ...]:
        """Type names of the parts of the target that are not tensors (a NumPy value: no gradient at all)."""
        return tuple(self.target.get("not_tensor") or ())

    @property
    def where(self) -> Site | None:
        return self.user_site or self.site

    def without_gradient(self) -> list[SourceFact]:
        return [s for s in self.sources if s.lost]


# The notes a report shows (the others are the child's own bookkeeping: "fit-cut", "rebound", "internal-error"):
# "instrumentation", something the program would do differently without gradfix; "degraded", a hook this
# TensorFlow lacks and what the diagnosis cannot see without it; "graph-mode", a construct that runs differently
# in a tf.function's graph than in the eager run gradfix makes of it.
SHOWN_NOTES = ("instrumentation", "degraded", "graph-mode")


# How a step updates its variables (``ApplyCall.kind``), and the step that only computes gradients.
KERAS_OPTIMIZER = "keras-optimizer"  # a Keras optimizer's apply/apply_gradients (fit, train_on_batch, train_step too)
COMPAT_V1_OPTIMIZER = "compat-v1-optimizer"  # a tf.compat.v1.train optimizer's minimize/apply_gradients
MANUAL_ASSIGN = "manual-assign"  # v.assign_sub(lr * g), v.assign(v - lr * g) on a gradient's source
NO_OPTIMIZER = "no-optimizer"  # no update seen: the gradients themselves are the step's result
UPDATE_KINDS = (KERAS_OPTIMIZER, COMPAT_V1_OPTIMIZER, MANUAL_ASSIGN, NO_OPTIMIZER)


@dataclass(frozen=True)
class ApplyCall:
    """One update of the step: an optimizer's apply (or minimize), or a manual assign to a gradient's source."""

    index: int
    method: str
    optimizer: str  # the optimizer's class name; "" for a manual assign
    site: Site | None
    after_gradient_call: int
    variables: tuple[SourceFact, ...]
    completed: bool = False  # the update returned
    mismatches: tuple[str, ...] = ()  # gradients applied to a variable they were not computed for
    error: dict[str, Any] | None = None  # what the update raised
    kind: str = KERAS_OPTIMIZER  # one of UPDATE_KINDS (facts from before the field: Keras optimizers only)
    from_gradients: tuple[str, ...] | None = None  # a manual assign: the variables whose gradients its value is computed from

    @property
    def call(self) -> str:
        """How the update was made, as the program spells it: ``SGD.apply_gradients``, ``assign_sub``."""
        return f"{self.optimizer}.{self.method}" if self.optimizer else self.method

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ApplyCall":
        return cls(
            index=int(data.get("index", 0)),
            method=data.get("method", ""),
            optimizer=data.get("optimizer", ""),
            site=Site.from_dict(data.get("site")),
            after_gradient_call=int(data.get("after_gradient_call", -1)),
            variables=tuple(SourceFact.from_dict(v) for v in data.get("variables", ())),
            completed=bool(data.get("completed")),
            mismatches=tuple(data.get("mismatches") or ()),
            error=data.get("error"),
            kind=data.get("kind") or KERAS_OPTIMIZER,
            from_gradients=tuple(data["from_gradients"]) if data.get("from_gradients") is not None else None,
        )


@dataclass(frozen=True)
class ErrorInfo:
    type: str
    message: str
    traceback: str
    frames: tuple[Site, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ErrorInfo | None":
        if not data:
            return None
        return cls(
            type=data.get("type", ""),
            message=data.get("message", ""),
            traceback=data.get("traceback", ""),
            frames=tuple(s for s in (Site.from_dict(f) for f in data.get("frames", ())) if s is not None),
        )


@dataclass
class RunFacts:
    status: str
    target: str = ""
    args: tuple[str, ...] = ()
    python: str = ""
    tensorflow_version: str | None = None
    keras_version: str | None = None
    error: ErrorInfo | None = None
    exit_code: int | None = None
    returncode: int | None = None
    steps: int = 1
    stopped_after_steps: int | None = None
    gradient_calls: list[GradientCall] = field(default_factory=list)
    applies: list[ApplyCall] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    # hook name -> {"active", "required", "found_as", "missing", "lost"}: which parts of TensorFlow the child hooked
    capabilities: dict[str, dict[str, Any]] = field(default_factory=dict)
    elapsed: float = 0.0
    output_tail: str = ""  # the end of the child's output when it was captured (quiet runs)
    start: str = "cold"  # "warm": forked from a server that had imported TensorFlow; "cold": a fresh interpreter
    start_reason: str = ""  # why a run that could have started warm started cold
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **extra: Any) -> "RunFacts":
        facts = cls(
            status=data.get("status", "crashed"),
            tensorflow_version=data.get("tensorflow_version"),
            keras_version=data.get("keras_version"),
            error=ErrorInfo.from_dict(data.get("error")),
            exit_code=data.get("exit_code"),
            steps=int(data.get("steps", 1) or 1),
            stopped_after_steps=data.get("stopped_after_steps"),
            gradient_calls=[GradientCall.from_dict(c) for c in data.get("gradient_calls", ())],
            applies=[ApplyCall.from_dict(a) for a in data.get("applies", ())],
            notes=list(data.get("notes", ())),
            capabilities=dict(data.get("capabilities") or {}),
            raw=data,
        )
        for key, value in extra.items():
            setattr(facts, key, value)
        return facts

    @property
    def diagnosed(self) -> bool:
        return self.status == "ok"

    def inactive_hooks(self) -> list[str]:
        """The hooks this TensorFlow did not let the child install (each also a "degraded" note)."""
        return [name for name, capability in self.capabilities.items() if not capability.get("active", True)]

    def shown_notes(self) -> list[dict[str, Any]]:
        """The notes a report shows: what the instrumentation changed, what it could not see, what graph mode does."""
        return [note for note in self.notes if note.get("kind") in SHOWN_NOTES]

    def all_sources(self) -> list[SourceFact]:
        """Every variable the run asked a gradient for, once each (by path), last sighting first-wins order."""
        seen: dict[str, SourceFact] = {}
        for call in self.gradient_calls:
            for source in call.sources:
                seen.setdefault(source.key, source)
        for apply in self.applies:
            for source in apply.variables:
                seen.setdefault(source.key, source)
        return list(seen.values())

    def variables_without_gradient(self) -> list[tuple[GradientCall | ApplyCall, SourceFact]]:
        """Each source that got None, with the call where that happened (first occurrence per path).

        A variable that got None at one gradient call but a gradient at another
        call of the same step (two models, two losses) is still listed: that call
        meant to train it."""
        found: dict[str, tuple[GradientCall | ApplyCall, SourceFact]] = {}
        for call in self.gradient_calls:
            for source in call.sources:
                if source.lost and source.key not in found:
                    found[source.key] = (call, source)
        for apply in self.applies:
            for source in apply.variables:
                if source.gradient_is_none and source.key not in found:
                    found[source.key] = (apply, source)
        return list(found.values())

    def all_variables_get_gradients(self) -> bool:
        return self.diagnosed and bool(self.gradient_calls or self.applies) and not self.variables_without_gradient()

    def gradient_status(self) -> dict[str, bool]:
        """variable key -> got a gradient (True) or None somewhere (False)."""
        result: dict[str, bool] = {}
        for call in self.gradient_calls:
            for source in call.sources:
                result[source.key] = result.get(source.key, True) and not source.lost
        for apply in self.applies:
            for source in apply.variables:
                result[source.key] = result.get(source.key, True) and not source.gradient_is_none
        return result

    def update_problems(self) -> list[str]:
        """Why the optimizer's update did not go through: what it raised, gradients paired with the wrong variable."""
        problems: list[str] = []
        for apply in self.applies:
            problems.extend(apply.mismatches)
            if apply.error:
                problems.append(f"{apply.optimizer}.{apply.method} raised {apply.error.get('type')}: {apply.error.get('message')}")
        return problems

    def update_completed(self) -> bool:
        """At least one update ran to its end."""
        return any(apply.completed for apply in self.applies)

    def update_kind(self) -> str:
        """How the step updates its variables: the kind of its first completed update, else of the first it
        tried, else ``no-optimizer`` (a step that only computes gradients)."""
        tried = [apply for apply in self.applies if apply.completed] or self.applies
        return tried[0].kind if tried else NO_OPTIMIZER

    def update_calls(self) -> list[str]:
        """The calls that made the step's updates (completed ones first), once each: ``SGD.apply_gradients``."""
        ordered = [a for a in self.applies if a.completed] + [a for a in self.applies if not a.completed]
        return list(dict.fromkeys(apply.call for apply in ordered))

    def update_ran(self) -> bool:
        """The step ran through its update; a step without one, through its gradient call."""
        return self.update_completed() if self.applies else self.diagnosed and bool(self.gradient_calls)

    def update_summary(self) -> dict[str, Any]:
        """The step's update as the report shows it: kind, whether it ran, its calls, the variables it updated."""
        return {"kind": self.update_kind(), "ran": self.update_ran(), "calls": self.update_calls(),
                "variables": self.updated_variables()}

    def updated_variables(self) -> list[str]:
        """The variables a completed update gave a gradient of their own (no gradient of another variable, no
        other shape); a manual assign counts when its value is computed from the variable's own gradient."""
        found: dict[str, None] = {}
        for apply in self.applies:
            if not apply.completed or apply.mismatches:
                continue
            for source in apply.variables:
                if source.gradient_is_none:
                    continue
                if apply.kind == MANUAL_ASSIGN and source.key not in (apply.from_gradients or ()):
                    continue
                found.setdefault(source.key)
        return list(found)
