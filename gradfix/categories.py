"""Why a variable got no gradient: the categories the detector assigns and the rules explain."""

from __future__ import annotations

LOSS_IGNORES_PREDICTION = "loss-ignores-prediction"
OUTSIDE_TAPE = "computed-outside-tape"
STOP_GRADIENT = "stop-gradient"
NON_DIFFERENTIABLE = "non-differentiable-op"
NUMPY_CONVERSION = "numpy-conversion"
STATE_UPDATE = "state-update"
VARIABLE_REBOUND = "variable-rebound"
MISSING_WATCH = "missing-watch"
NOT_TRAINABLE = "integer-or-non-trainable"
NEVER_USED = "never-used"
WRONG_TAPE = "wrong-tape-or-model"
TARGET_INDEPENDENT = "target-independent"
UNKNOWN = "unknown"

DESCRIPTIONS = {
    LOSS_IGNORES_PREDICTION: "the loss does not use the model's final prediction",
    OUTSIDE_TAPE: "computed outside the GradientTape",
    STOP_GRADIENT: "cut by tf.stop_gradient",
    NON_DIFFERENTIABLE: "passes through an operation that has no gradient",
    NUMPY_CONVERSION: "leaves TensorFlow through NumPy",
    STATE_UPDATE: "stored into a variable with assign and read back: a state update has no gradient",
    VARIABLE_REBOUND: "the variable was replaced by a plain tensor",
    MISSING_WATCH: "a plain tensor the tape was not told to watch",
    NOT_TRAINABLE: "an integer or non-trainable variable",
    NEVER_USED: "never read on the way to the loss",
    WRONG_TAPE: "the gradient is asked of the wrong tape or the wrong model",
    TARGET_INDEPENDENT: "the target does not depend on anything the tape watched",
    UNKNOWN: "the path to the loss breaks for a reason gradfix could not name",
}

ALL = tuple(DESCRIPTIONS)
