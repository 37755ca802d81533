"""The TensorFlow, Keras and NumPy APIs gradfix knows, grouped by what they do to gradients."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from gradfix.static.names import dotted

if TYPE_CHECKING:
    from gradfix.static.analysis import ModuleAnalysis

# Names are canonical (see gradfix.static.names.canonical), as analysis.qualname gives them, unless a
# table says it holds bare attribute, method or class names.

LIBRARY_PREFIXES = ("tensorflow.", "numpy.", "keras.")

GRADIENT_TAPE = "tensorflow.GradientTape"


def short_name(name: str) -> str:
    """A canonical name as a message writes it: ``tf.math.round`` for ``tensorflow.math.round``."""
    return "tf." + name.split(".", 1)[1] if name.startswith("tensorflow.") else name


# --- what cuts the gradient ----------------------------------------------------------------------

STOP_GRADIENT = frozenset({"tensorflow.stop_gradient", "keras.ops.stop_gradient", "keras.backend.stop_gradient"})
# The function states its own gradient, whatever its body computes.
CUSTOM_GRADIENT = frozenset({"tensorflow.custom_gradient", "keras.ops.custom_gradient"})


def _op_names(*names: str) -> frozenset[str]:
    prefixes = ("tensorflow.", "tensorflow.math.", "keras.ops.", "keras.backend.")
    return frozenset(prefix + name for prefix in prefixes for name in names)


# Piecewise-constant operations: TensorFlow registers no gradient for them (tf.sign's is zeros).
ARGMAX = _op_names("argmax", "argmin")
ROUNDING = _op_names("round", "rint", "floor", "ceil")
SIGN = _op_names("sign")
# The positions that sort the values: integers, with no gradient to the values they rank.
ARGSORT = _op_names("argsort")
COMPARISON_CALLS = _op_names("equal", "not_equal", "greater", "greater_equal", "less", "less_equal")
# Without a gradient only when the dtype is an integer one (see integer_dtype).
CASTS = frozenset({"tensorflow.cast", "tensorflow.dtypes.cast", "keras.ops.cast", "keras.backend.cast"})
# One-hot rows of class ids: after an argmax, a hard choice in the prediction's own shape.
ONE_HOT = frozenset({"tensorflow.one_hot", "keras.ops.one_hot", "keras.backend.one_hot", "keras.utils.to_categorical"})
# Run Python (NumPy) code that the tape cannot see into.
NUMPY_FUNCTIONS = frozenset({"tensorflow.numpy_function", "tensorflow.compat.v1.py_func", "tensorflow.py_func"})
# Differentiable as long as the function it runs uses TensorFlow ops.
PY_FUNCTIONS = frozenset({"tensorflow.py_function"})

# How the source spells the op, conversion or update a run reports: the names of the functions or methods
# that make it (under any module: ``tf.``, ``tf.math.``, ``K.``, ``keras.ops.``, a method, a builtin) and
# the operators that do. It finds a cut's expression on its line when the run gives no columns (Python 3.10).
OP_SPELLINGS = {
    "ArgMax": ({"argmax"}, ()), "ArgMin": ({"argmin"}, ()),
    "Round": ({"round", "rint"}, ()), "Rint": ({"rint", "round"}, ()), "Floor": ({"floor"}, ()),
    "Ceil": ({"ceil"}, ()), "Sign": ({"sign"}, ()), "Cast": ({"cast", "astype"}, ()),
    "OneHot": ({"one_hot", "to_categorical"}, ()), "StopGradient": ({"stop_gradient"}, ()),
    "PreventGradient": ({"prevent_gradient"}, ()), "EagerPyFunc": ({"numpy_function", "py_function", "py_func"}, ()),
    "TopKV2": ({"top_k", "argsort"}, ()), "Unique": ({"unique"}, ()), "Bincount": ({"bincount"}, ()),
    "HistogramFixedWidth": ({"histogram_fixed_width"}, ()), "SearchSorted": ({"searchsorted"}, ()),
    "Greater": ({"greater"}, (cst.GreaterThan,)), "GreaterEqual": ({"greater_equal"}, (cst.GreaterThanEqual,)),
    "Less": ({"less"}, (cst.LessThan,)), "LessEqual": ({"less_equal"}, (cst.LessThanEqual,)),
    "Equal": ({"equal"}, (cst.Equal,)), "NotEqual": ({"not_equal"}, (cst.NotEqual,)),
    "FloorDiv": ({"floordiv", "floor_divide"}, (cst.FloorDivide,)), "FloorMod": ({"floormod", "mod"}, (cst.Modulo,)),
    "LogicalAnd": ({"logical_and"}, (cst.BitAnd,)), "LogicalOr": ({"logical_or"}, (cst.BitOr,)),
    "LogicalNot": ({"logical_not"}, (cst.BitInvert,)),
    "AssignVariableOp": ({"assign"}, ()), "AssignAddVariableOp": ({"assign_add"}, ()),
    "AssignSubVariableOp": ({"assign_sub"}, ()),
    # what a target computed while no tape was recording ends with
    "Neg": ({"negative", "neg"}, (cst.Minus,)), "Pow": ({"pow", "power"}, (cst.Power,)),
    "Mul": ({"multiply"}, (cst.Multiply,)), "AddV2": ({"add"}, (cst.Add,)), "Sub": ({"subtract"}, (cst.Subtract,)),
    "RealDiv": ({"divide"}, (cst.Divide,)), "Mean": ({"reduce_mean", "mean"}, ()), "Sum": ({"reduce_sum", "sum"}, ()),
}
# Keras methods that hand back NumPy: a conversion inside them is spelled by their call.
NUMPY_RESULT_METHODS = frozenset({"predict", "predict_on_batch", "evaluate"})
# The same for a tensor leaving TensorFlow, by how the child words it (the start of its "how").
CONVERSION_SPELLINGS = {
    ".numpy()": {"numpy"}, "float()": {"float"}, "int()": {"int"}, "a NumPy conversion": {"asarray", "array"},
    "tf.numpy_function": {"numpy_function"}, "tf.data": set(NUMPY_RESULT_METHODS),
    "a NumPy value": {"constant", "convert_to_tensor"},
}

# --- dtypes --------------------------------------------------------------------------------------

# The integer dtypes by name; a repair turns them into float32 (a boolean it leaves alone).
INTEGER_DTYPES = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})


def dtype_name(analysis: ModuleAnalysis, node: cst.BaseExpression | None) -> str | None:
    """The name of the dtype a dtype argument gives, without its module: ``"int32"`` for ``tf.int32``,
    ``np.int32`` or ``"int32"``; None when it is neither a name nor a string."""
    if node is None:
        return None
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    resolved = analysis.qualname(node)
    if resolved is not None:
        return resolved.rsplit(".", 1)[-1]
    name = dotted(node)
    # not imported: a bare name is a builtin (``int``, ``bool``); an attribute is one of the program's own objects
    return name if name is not None and "." not in name else None


def integer_dtype(analysis: ModuleAnalysis, node: cst.BaseExpression | None) -> bool:
    """Whether a dtype argument names an integer or boolean dtype: no gradient flows through either."""
    name = dtype_name(analysis, node)
    return name is not None and (name.startswith(("int", "uint")) or name == "bool")


# --- NumPy ---------------------------------------------------------------------------------------

# NumPy functions with a TensorFlow twin that takes the same positional arguments and computes the same values.
ELEMENTWISE = {
    "square": "square", "sqrt": "sqrt", "exp": "exp", "log": "math.log", "log1p": "math.log1p",
    "expm1": "math.expm1", "abs": "abs", "absolute": "abs", "tanh": "tanh", "sin": "sin", "cos": "cos",
    "negative": "negative", "reciprocal": "math.reciprocal", "maximum": "maximum", "minimum": "minimum",
    "power": "pow", "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide",
    "matmul": "matmul", "clip": "clip_by_value", "where": "where", "reshape": "reshape",
    "transpose": "transpose", "squeeze": "squeeze", "expand_dims": "expand_dims", "stack": "stack",
}
# Reductions: NumPy's (a, axis, ..., keepdims=) against TensorFlow's (input, axis, keepdims).
REDUCTIONS = {
    "mean": "reduce_mean", "sum": "reduce_sum", "max": "reduce_max", "amax": "reduce_max",
    "min": "reduce_min", "amin": "reduce_min", "prod": "reduce_prod", "std": "math.reduce_std",
    "var": "math.reduce_variance",
}
# Array methods that follow ``.numpy()``: ``t.numpy().mean(axis=1)``.
ARRAY_METHODS = {"mean", "sum", "max", "min", "prod", "std", "var"}
# Turning a tensor into an array (and nothing else).
CONVERSIONS = {"array", "asarray", "float32", "float64"}
# NumPy functions that have no gradient in TensorFlow either: GF008 and GF009 explain them.
NUMPY_NON_DIFFERENTIABLE = {
    "argmax", "argmin", "round", "around", "rint", "sign", "floor", "ceil", "equal", "not_equal",
    "greater", "greater_equal", "less", "less_equal", "isnan", "isfinite", "argsort", "unique",
    "count_nonzero", "any", "all", "shape", "size", "ndim", "zeros_like", "ones_like", "random",
}
# What a tensor offers as an array would: `loss.numpy()` after the gradient reads a tensor as readily as a copy.
TENSOR_ATTRIBUTES = {"shape", "dtype", "ndim", "numpy"}
# Make a tensor of an array again (with no history: the tape's record ends at the array).
ARRAY_TO_TENSOR = ("tensorflow.constant", "tensorflow.convert_to_tensor")
# Calls that only show a value.
DISPLAY_CALLS = {"print", "tensorflow.print", "str", "repr", "format"}

# --- tensors -------------------------------------------------------------------------------------

# Tensors made from literal values and shapes alone.
CONSTANT_MAKERS = frozenset({"tensorflow.constant", "tensorflow.zeros", "tensorflow.ones", "tensorflow.fill"})
RANGE = "tensorflow.range"
# Calls that make a fresh tensor with no recorded history, wherever they run.
FRESH_TENSOR_MAKERS = CONSTANT_MAKERS | {
    "tensorflow.eye", "tensorflow.linspace", "tensorflow.random.normal", "tensorflow.random.uniform",
    "tensorflow.random.truncated_normal", "tensorflow.random.stateless_normal",
    "tensorflow.random.stateless_uniform", "keras.random.normal", "keras.random.uniform",
    "keras.ops.zeros", "keras.ops.ones", "numpy.random.normal",
}
# Those whose dtype is a float one unless one is given (tf.constant and tf.fill take their value's).
FLOAT_BY_DEFAULT = FRESH_TENSOR_MAKERS - {"tensorflow.constant", "tensorflow.fill", "numpy.random.normal"}
# Calls whose result is a plain tensor when made before the tape opens, and whatever
# their argument is when made inside it.
TENSOR_CONVERTERS = frozenset({
    "tensorflow.convert_to_tensor", "keras.ops.convert_to_tensor", "tensorflow.cast", "tensorflow.reshape",
    "tensorflow.expand_dims", "tensorflow.identity", "tensorflow.stack", "tensorflow.concat",
    "tensorflow.transpose", "tensorflow.squeeze", "tensorflow.image.resize",
})

# --- variables -----------------------------------------------------------------------------------

VARIABLE_MAKERS = ("tensorflow.Variable", "keras.Variable", "keras.backend.Variable")

# Where constructors and ops take these parameters when they are passed by position.
PARAMETER_POSITIONS = {
    "dtype": {
        "tensorflow.Variable": 6, "keras.Variable": 2, "keras.backend.Variable": 2,
        "tensorflow.constant": 1, "tensorflow.zeros": 1, "tensorflow.ones": 1, "tensorflow.range": 3,
        "tensorflow.cast": 1, "tensorflow.dtypes.cast": 1, "tensorflow.convert_to_tensor": 1,
        "numpy.array": 1, "numpy.asarray": 1, "numpy.zeros": 1, "numpy.ones": 1, "numpy.full": 2,
    },
    "trainable": {"tensorflow.Variable": 1, "keras.Variable": 3, "keras.backend.Variable": 3},
}

# Attributes of a model or layer that hand out its variables (bare attribute names).
TRAINABLE_VARIABLE_LISTS = frozenset({"trainable_variables", "trainable_weights"})
# The lists of every variable, trainable or not, and the list of the trainable ones among them.
TRAINABLE_OF = {"variables": "trainable_variables", "weights": "trainable_weights"}
NON_TRAINABLE_VARIABLE_LISTS = frozenset({"non_trainable_variables", "non_trainable_weights"})
# The lists that hold the trainable variables (and, for ``variables`` and ``weights``, the others too).
VARIABLE_LISTS = TRAINABLE_VARIABLE_LISTS | frozenset(TRAINABLE_OF)
ALL_VARIABLE_LISTS = VARIABLE_LISTS | NON_TRAINABLE_VARIABLE_LISTS

# Stateful updates of a variable, with the value each stores (a template over the old and new values).
ASSIGN_METHODS = {"assign": "{new}", "assign_add": "{old} + ({new})", "assign_sub": "{old} - ({new})"}

# --- Keras models, layers, losses and metrics ----------------------------------------------------

SEQUENTIAL = frozenset({"keras.Sequential", "keras.models.Sequential"})
# Calls that make a model.
KERAS_MODELS = SEQUENTIAL | {"keras.Model", "keras.models.Model"}
# Base classes of a subclassed model or layer.
LAYER_BASES = frozenset({
    "keras.Model", "keras.models.Model", "keras.Layer", "keras.layers.Layer", "keras.engine.base_layer.Layer",
    "keras.layers.layer.Layer", "keras.models.model.Model", "keras.engine.training.Model", "tensorflow.Module",
})
MODEL_LOADERS = ("keras.models.load_model", "keras.saving.load_model", "tensorflow.saved_model.load")
# Layers without variables (bare class names): leaving one uncalled costs no gradient.
WEIGHTLESS_LAYERS = frozenset({
    "Activation", "ActivityRegularization", "Add", "AlphaDropout", "Average", "Concatenate", "Dot", "Dropout", "ELU",
    "Flatten", "GaussianDropout", "GaussianNoise", "Identity", "InputLayer", "Lambda", "LeakyReLU", "Masking",
    "Maximum", "Minimum", "Multiply", "Permute", "ReLU", "RepeatVector", "Reshape", "Rescaling", "Resizing",
    "Softmax", "Subtract", "CenterCrop", "Normalization", "StringLookup", "IntegerLookup", "TextVectorization",
    "Discretization", "HashedCrossing", "Hashing", "CategoryEncoding",
})
# Classes of the ``keras.layers`` namespace that are not layers at all.
NOT_LAYERS = frozenset({"InputSpec"})
WEIGHTLESS_LAYER_PREFIXES = ("Dropout", "SpatialDropout", "Cropping", "ZeroPadding", "UpSampling", "Random")
WEIGHTLESS_LAYER_SUFFIXES = ("Pooling1D", "Pooling2D", "Pooling3D", "Dropout")
# Layers with non-trainable weights, in ``.weights`` and ``.variables`` alike.
WEIGHTED_STATE_LAYERS = frozenset({"BatchNormalization", "SyncBatchNormalization", "Normalization"})
# Layers with a random seed state (Keras 3), which is in ``.variables`` but not in ``.weights``.
SEEDED_STATE_LAYERS = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop", "RandomContrast",
})
LAYER_WEIGHTS = frozenset({"kernel", "bias"})
# Touching a layer through these does not run it.
NOT_A_LAYER_CALL = ALL_VARIABLE_LISTS | LAYER_WEIGHTS | {
    "build", "built", "name", "summary", "count_params", "get_weights", "set_weights",
}
# Methods of a model that do not run its forward pass (or do so outside any tape).
NOT_FORWARD = frozenset({
    "predict", "predict_on_batch", "fit", "evaluate", "compile", "summary", "save", "save_weights",
    "load_weights", "get_weights", "set_weights", "get_config", "to_json", "count_params", "build",
    "reset_metrics", "train_step", "test_step", "apply_gradients", "minimize", "update_state", "result",
})
# Words in the name of a model's attribute that is not a layer.
NOT_FORWARD_WORDS = ("loss", "metric", "optimizer", "tracker")
# What is made from these modules is no layer.
NOT_LAYER_MODULES = ("keras.losses.", "keras.metrics.", "keras.optimizers.", "tensorflow.losses.", "tensorflow.metrics.")
# Ways code reaches an object's attributes (a model's layers) without naming them.
DYNAMIC_ATTRIBUTES = frozenset({"__dict__", "layers", "_layers", "submodules", "_flatten_layers", "_self_tracked_trackables", "modules"})
DYNAMIC_ATTRIBUTE_CALLS = frozenset({"getattr", "setattr", "vars", "hasattr"})
DYNAMIC_ATTRIBUTE_METHODS = frozenset({"__getattr__", "__getattribute__"})

SPARSE, CATEGORICAL, BINARY, METRIC = "sparse", "categorical", "binary", "metric"
# Cross-entropies, by what their prediction must be: Keras functions and classes (bare names), tf.nn ops.
KERAS_LOSS_FUNCTIONS = {
    "sparse_categorical_crossentropy": SPARSE,
    "categorical_crossentropy": CATEGORICAL,
    "categorical_focal_crossentropy": CATEGORICAL,
    "binary_crossentropy": BINARY,
    "binary_focal_crossentropy": BINARY,
}
KERAS_LOSS_CLASSES = {
    "SparseCategoricalCrossentropy": SPARSE,
    "CategoricalCrossentropy": CATEGORICAL,
    "CategoricalFocalCrossentropy": CATEGORICAL,
    "BinaryCrossentropy": BINARY,
    "BinaryFocalCrossentropy": BINARY,
}
TF_NN_LOSSES = {
    "tensorflow.nn.sparse_softmax_cross_entropy_with_logits": SPARSE,
    "tensorflow.nn.softmax_cross_entropy_with_logits": CATEGORICAL,
    "tensorflow.nn.softmax_cross_entropy_with_logits_v2": CATEGORICAL,
    "tensorflow.nn.sigmoid_cross_entropy_with_logits": BINARY,
}
# Keras metric functions whose value has no gradient (they threshold or take an argmax inside).
ACCURACY_FUNCTIONS = frozenset({
    "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
})
# Keras metric classes with a loss class of the same meaning (the metric averages it over batches; the loss is the batch's).
METRIC_LOSS = {
    "MeanSquaredError": "MeanSquaredError", "MeanAbsoluteError": "MeanAbsoluteError",
    "MeanAbsolutePercentageError": "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError": "MeanSquaredLogarithmicError", "BinaryCrossentropy": "BinaryCrossentropy",
    "CategoricalCrossentropy": "CategoricalCrossentropy", "SparseCategoricalCrossentropy": "SparseCategoricalCrossentropy",
    "KLDivergence": "KLDivergence", "Poisson": "Poisson", "Hinge": "Hinge", "SquaredHinge": "SquaredHinge",
    "CategoricalHinge": "CategoricalHinge", "LogCoshError": "LogCosh", "CosineSimilarity": "CosineSimilarity",
}
# Arguments of a Keras loss class's constructor.
LOSS_ARGUMENTS = {"from_logits", "label_smoothing", "axis", "ignore_class"}
