"""The respelling generator (tests/respell.py), without TensorFlow: every variant is a program that
differs from its fixture in one surface form, and each form can be undone by its opposite.

Whether a variant still shows the fixture's bug needs a run: tests/runtime/test_respellings.py.
"""

from __future__ import annotations

import ast
import textwrap

import libcst as cst
import pytest
import respell
from fixture_cases import repair_cases
from respell import KINDS, NOT_EQUIVALENT, RESPELLINGS, fixable_cases, variants

VARIANTS = variants(fixable_cases())
BY_KIND = {r.kind: r for r in RESPELLINGS}


def _tree(source: str) -> str:
    """The program's meaning as Python parses it: formatting, comments and parentheses left out."""
    return ast.dump(ast.parse(source))


def _apply(kind: str, source: str, break_line: int | None = None) -> str | None:
    out = BY_KIND[kind].rewrite(cst.parse_module(source), break_line)
    return None if out is None else out.code


def _without_imports(source: str) -> str:
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    return ast.dump(tree)


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_is_a_program_that_differs_from_its_fixture(variant):
    original = variant.case.program.read_text()
    compile(variant.source, variant.id, "exec")
    cst.parse_module(variant.source)
    assert variant.source != original
    assert _tree(variant.source) != _tree(original), "the variant differs only in formatting"
    assert variant.source.splitlines()[0] == original.splitlines()[0], "the fixture's source citation is kept"


def test_every_kind_of_respelling_applies_to_some_fixture_or_to_a_variant():
    """A kind no fixture's spelling calls for (no fixture calls tf.subtract) must apply to another kind's
    variants (operator:calls makes them), so that no respelling is dead code."""
    made = {v.kind for v in VARIANTS}
    unused = [kind for kind in KINDS if kind not in made]
    assert [kind for kind in unused if not any(_apply(kind, v.source, None) for v in VARIANTS
                                               if v.respelling.family == BY_KIND[kind].family)] == []


def test_the_generator_is_deterministic():
    """The TensorFlow lane's sample is named by (fixture, kind): the same pair must be the same program."""
    cases = fixable_cases()[:: max(1, len(fixable_cases()) // 4)]
    again = variants(cases)
    assert [(v.id, v.source) for v in again] == [(v.id, v.source) for v in VARIANTS if v.case in cases]


def test_not_equivalent_pairs_name_a_respelling_that_exists_and_say_why():
    named = [case for case in repair_cases() if case.id in {fixture for fixture, _ in NOT_EQUIVALENT}]
    made = {(v.case.id, v.kind) for v in variants(named, include_not_equivalent=True)}
    for pair, reason in NOT_EQUIVALENT.items():
        assert pair in made, f"{pair} is not a respelling the generator makes"
        assert len(reason) > 20, f"{pair} needs the reason it is left out"
    kept = {(v.case.id, v.kind) for v in VARIANTS}
    assert not kept & set(NOT_EQUIVALENT), "a pair listed as not equivalent is still generated"


# -- each form undone by its opposite gives the fixture back -------------------------------------------

SPELLINGS = [v for v in VARIANTS if v.kind in ("spelling:tf.math", "spelling:K", "spelling:keras.ops",
                                               "import:from-math")]


@pytest.mark.parametrize("variant", SPELLINGS, ids=[v.id for v in SPELLINGS])
def test_a_respelled_api_call_spelled_back_is_the_fixture(variant):
    """tf.x -> K.x (or keras.ops.x, tf.math.x) and back -> tf.x: only the spelling of calls changed."""
    back = _apply("spelling:tf", variant.source) or variant.source
    original = variant.case.program.read_text()
    original_back = _apply("spelling:tf", original) or original
    if variant.kind == "import:from-math":
        back = back.replace("math.", "tf.math.")
        original_back = original_back.replace("tf.math.", "tf.math.")
        back = _apply("spelling:tf", back) or back
    assert _without_imports(back) == _without_imports(original_back)


ALIASES = [v for v in VARIANTS if v.kind in ("import:as-T", "import:plain")]


@pytest.mark.parametrize("variant", ALIASES, ids=[v.id for v in ALIASES])
def test_an_import_alias_renamed_back_is_the_fixture(variant):
    back = respell._tf_import_as("tf")(cst.parse_module(variant.source), None).code
    assert _tree(back) == _tree(variant.case.program.read_text())


CALLS = [v for v in VARIANTS if v.kind == "operator:calls"]


@pytest.mark.parametrize("variant", CALLS, ids=[v.id for v in CALLS])
def test_operators_written_as_calls_and_back_are_the_fixture(variant):
    back = _apply("operator:infix", variant.source)
    assert back is not None
    assert _tree(back) == _tree(variant.case.program.read_text())


EXTRACTED = [v for v in VARIANTS if v.kind == "placement:function"]


@pytest.mark.parametrize("variant", EXTRACTED, ids=[v.id for v in EXTRACTED])
def test_an_extracted_helper_inlined_again_is_the_fixture(variant):
    """The helper holds exactly the break statement's expression, and its parameters are what it reads."""
    original = variant.case.program.read_text()
    back = _apply("placement:inline", variant.source)
    assert back is not None
    # inlining also inlines the fixture's own one-line helpers: compare with the fixture inlined likewise
    assert _tree(back) == _tree(_apply("placement:inline", original) or original)


STEPS = [v for v in VARIANTS if v.kind == "placement:step-tf.function"]


@pytest.mark.parametrize("variant", STEPS, ids=[v.id for v in STEPS])
def test_a_step_compiled_and_run_eagerly_again_is_the_fixture(variant):
    back = _apply("placement:step-eager", variant.source)
    assert _tree(back) == _tree(variant.case.program.read_text())


MAINS = [v for v in VARIANTS if v.kind == "placement:main"]


@pytest.mark.parametrize("variant", MAINS, ids=[v.id for v in MAINS])
def test_a_loop_moved_into_main_keeps_every_name_global(variant):
    tree = ast.parse(variant.source)
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    declared = set(main.body[0].names) if isinstance(main.body[0], ast.Global) else set()
    loop = main.body[-1]
    stored = {n.id for n in ast.walk(loop) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    nested = {n.id for f in ast.walk(loop) if isinstance(f, (ast.FunctionDef, ast.Lambda, ast.comprehension))
              for n in ast.walk(f) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert stored - nested <= declared
    original = ast.parse(variant.case.program.read_text())
    assert ast.dump(loop) in {ast.dump(node) for node in original.body}


# -- the forms, on small examples -------------------------------------------------------------------


def _source(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def test_argmax_without_an_axis_keeps_its_spelling():
    """tf.argmax defaults to axis 0, K.argmax to -1 and keras.ops.argmax to the flat tensor."""
    source = _source("""
        import tensorflow as tf
        a = tf.argmax(x)
        b = tf.argmax(x, axis=1)
    """)
    out = _apply("spelling:keras.ops", source)
    assert "a = tf.argmax(x)" in out
    assert "b = keras.ops.argmax(x, axis=1)" in out
    assert "import keras" in out


def test_backend_spelling_renames_keywords_and_imports_the_legacy_backend():
    source = _source("""
        import tensorflow as tf
        y = tf.one_hot(tf.argmax(p, axis=-1), depth=4)
        m = tf.reduce_mean(tf.square(y - t), axis=0, keepdims=True)
        s = tf.ones((2, 2))
    """)
    out = _apply("spelling:K", source)
    assert "y = K.one_hot(K.argmax(p, axis=-1), num_classes=4)" in out
    assert "m = K.mean(K.square(y - t), axis=0, keepdims=True)" in out
    assert "s = tf.ones((2, 2))" in out, "K.ones makes a variable: no backend spelling"
    assert "from tensorflow.keras import backend as K" in out


def test_a_call_with_an_argument_the_other_api_lacks_keeps_its_spelling():
    source = _source("""
        import tensorflow as tf
        y = tf.one_hot(i, depth=4, on_value=2.0)
    """)
    assert _apply("spelling:keras.ops", source) is None


def test_operators_and_calls():
    source = _source("""
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(a - b) * 2.0
        keep = [1] + [2]
    """)
    out = _apply("operator:calls", source)
    assert "loss = tf.multiply(tf.negative(tf.reduce_mean(tf.subtract(a, b))), 2.0)" in out
    assert "keep = [1] + [2]" in out
    assert _tree(_apply("operator:infix", out)) == _tree(source)


def test_the_break_expression_moves_into_a_method_of_its_own_class():
    source = _source("""
        import tensorflow as tf


        class Squash(tf.keras.layers.Layer):
            def call(self, inputs):
                out = tf.round(self.scale * inputs)
                return out
    """)
    out = _apply("placement:method", source, break_line=6)
    assert "out = self.compute_out(inputs)" in out
    assert "def compute_out(self, inputs):\n        return tf.round(self.scale * inputs)" in out


def test_the_break_expression_in_a_lambda_moves_with_the_lambda_parameter():
    source = _source("""
        import tensorflow as tf
        layer = tf.keras.layers.Lambda(lambda q: tf.cast(tf.argmax(q, 2), tf.float32))
    """)
    out = _apply("placement:tf.function", source, break_line=2)
    assert "@tf.function\ndef compute_layer(q):\n    return tf.cast(tf.argmax(q, 2), tf.float32)" in out
    assert "tf.keras.layers.Lambda(lambda q: compute_layer(q))" in out


def test_a_lambda_layer_becomes_a_layer_subclass():
    source = _source("""
        import tensorflow as tf
        from tensorflow.keras.layers import Lambda
        y = Lambda(lambda t: tf.stop_gradient(t), name="stop")(x)
    """)
    out = _apply("placement:Layer.call", source)
    assert "class LambdaLayer(tf.keras.layers.Layer):\n    def call(self, t):\n        return tf.stop_gradient(t)" in out
    assert 'y = LambdaLayer(name="stop")(x)' in out


def test_names_already_taken_stop_a_respelling():
    source = _source("""
        import tensorflow as tf
        T = 3
        y = tf.round(x) * T
    """)
    assert _apply("import:as-T", source) is None
    assert _apply("import:from-math", source.replace("T = 3", "import math")) is None


def test_a_fitted_model_is_made_from_a_subclass_that_writes_out_train_step():
    source = _source("""
        import tensorflow as tf
        import keras
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
        other = keras.Model(inputs, inputs)
        model.compile(loss="mse")
        model.fit(x, y)
    """)
    out = _apply("placement:train_step", source)
    tree = ast.parse(out)
    subclass = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    assert ast.unparse(subclass.bases[0]) == "keras.Model"
    assert [f.name for f in subclass.body] == ["train_step"]
    assert "model = TrainStepModel(inputs, keras.layers.Dense(1)(inputs))" in out
    assert "other = keras.Model(inputs, inputs)" in out, "a model never fitted keeps its class"


def test_a_loss_function_given_to_compile_becomes_a_loss_subclass_and_back():
    source = _source("""
        import tensorflow as tf
        def my_loss(y_true, y_pred):
            return tf.reduce_mean(tf.abs(y_true - y_pred))
        model.compile(optimizer="adam", loss=my_loss)
    """)
    out = _apply("placement:compiled-loss-class", source)
    assert "class MyLossLoss(tf.keras.losses.Loss):\n    def call(self, y_true, y_pred):\n        return my_loss(y_true, y_pred)" in out
    assert 'model.compile(optimizer="adam", loss=MyLossLoss())' in out


def test_a_stateless_layer_becomes_a_lambda_and_back():
    source = _source("""
        import tensorflow as tf


        class Squash(tf.keras.layers.Layer):
            def call(self, inputs):
                return tf.tanh(inputs)


        model = tf.keras.Sequential([Squash()])
    """)
    out = _apply("placement:Lambda", source)
    assert "def squash(inputs):\n    return tf.tanh(inputs)" in out
    assert "tf.keras.Sequential([tf.keras.layers.Lambda(squash)])" in out
    back = _apply("placement:Layer.call", out)
    assert "class SquashLayer(tf.keras.layers.Layer):\n    def call(self, inputs):\n        return squash(inputs)" in back
    stateful = source.replace("return tf.tanh(inputs)", "return tf.tanh(inputs) * self.scale")
    assert _apply("placement:Lambda", stateful) is None, "a layer that reads its own state is not a Lambda"
