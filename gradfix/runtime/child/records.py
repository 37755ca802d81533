"""The records of what ran while a tape was alive, one typed tuple per kind.

Each starts with the stamp of the user statement running then (``serial``, ``file``, ``line``: see ``tracer``;
file "" and line 0 in library code) and whether a tape was recording, and ends with ``where``: (code,
instruction offset) of the user frame running then, or None; ``frontier.span_of`` turns it into a source
range for the one record a cut is named from (never for the others: most records are never looked at).
"""

from typing import Any, NamedTuple, Optional


class OpRecord(NamedTuple):
    """An op TensorFlow ran."""

    serial: int
    file: str
    line: int
    recording: bool
    op_type: str
    inputs: tuple
    outputs: tuple
    attrs: Any
    layer: Any  # the Keras layer being called (innermost), or None
    metric: Optional[str]  # an assign's: the class name of the Keras metric it updates, or None
    where: Any  # (code, offset), and for an assign the user's frames that called it


class Conversion(NamedTuple):
    """A tensor leaving TensorFlow: ``.numpy()``, ``np.asarray(t)``, ``float(t)``, ``int(t)``."""

    serial: int
    file: str
    line: int
    recording: bool
    tensor: Any
    how: str
    in_tf_function: bool
    where: Any


class Constant(NamedTuple):
    """A tensor made from a NumPy value."""

    serial: int
    file: str
    line: int
    recording: bool
    tensor: Any
    made_from: str  # the NumPy value's type name
    in_numpy_function: bool  # made by tf.numpy_function's wrapper
    where: Any
