"""The regions prepass: a module is analysed in independent parts, with the findings of the whole."""

from __future__ import annotations

import textwrap

import pytest
from fixture_cases import all_cases

from gradfix import engine
from gradfix.edits import apply_edits
from gradfix.source import SourceError, SourceFile
from gradfix.static import regions as regions_module
from gradfix.static.regions import regions, split_module

HEAD = textwrap.dedent('''\
    """A module of independent training steps."""
    import numpy as np
    import tensorflow as tf

    ''')

CLEAN_STEP = textwrap.dedent('''\


    def train_step_{i}(model, optimizer, loss_fn, x_batch, y_batch):
        with tf.GradientTape() as tape:
            logits = model(x_batch, training=True)
            loss = loss_fn(y_batch, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    ''')

# the forward pass runs before the tape: GF001 on the loss line
BUGGY_STEP = textwrap.dedent('''\


    def buggy_step(model, optimizer, loss_fn, x_batch, y_batch):
        logits = model(x_batch, training=True)
        with tf.GradientTape() as tape:
            loss = loss_fn(y_batch, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    ''')

# a constant tensor the tape never watches: GF007, whose message names the line that made it
UNWATCHED_STEP = textwrap.dedent('''\


    def fgsm(model, loss_fn, labels):
        image = tf.constant(np.zeros((1, 4), "float32"))
        with tf.GradientTape() as tape:
            prediction = model(image)
            loss = loss_fn(labels, prediction)
        return tape.gradient(loss, image)
    ''')


def source(text: str, path: str = "train.py") -> SourceFile:
    return SourceFile(path=path, text=text, encoding="utf-8")


def module_of(*parts: str) -> str:
    return HEAD + "".join(parts)


def comparable(findings):
    return [(f.rule, f.span, f.message, f.fix) for f in findings]


def fixed_text(text: str, findings) -> str:
    edits = [edit for finding in findings if finding.fix for edit in finding.fix.edits]
    return apply_edits(text, edits)


# --- splitting -------------------------------------------------------------------------------


def test_each_top_level_statement_is_a_piece_with_its_decorators_and_else():
    text = textwrap.dedent('''\
        import tensorflow as tf
        @tf.function
        @staticmethod
        def step():
            return 1
        if tf:
            x = 1
        else:
            x = 2
        # a comment stays with the statement above
        y = (
        1)
        ''')
    pieces = split_module("m.py", text)
    assert [(p.first_line, p.line_count) for p in pieces] == [(1, 1), (2, 4), (6, 5), (11, 2)]
    assert "".join(p.text for p in pieces) == text


def test_code_in_column_0_inside_a_string_stays_in_its_statement():
    text = 'import tensorflow as tf\nTEMPLATE = """\ndef fake():\n    pass\n"""\nx = 1\n'
    pieces = split_module("m.py", text)
    assert [(p.first_line, p.line_count) for p in pieces] == [(1, 1), (2, 4), (6, 1)]


def test_a_class_is_split_into_its_statements_under_its_header():
    text = textwrap.dedent('''\
        import tensorflow as tf


        class Tests(tf.test.TestCase):
            """Two tests that share nothing but the class."""

            def test_a(self):
                return tf.constant(1.0)

            def test_b(self):
                return tf.constant(2.0)
        ''')
    found = regions("m.py", text)
    assert found is not None and len(found) == 2
    for region in found:
        assert region.text.startswith("import tensorflow as tf\n")
        assert "class Tests(tf.test.TestCase):" in region.text
    assert "test_a" in found[0].text and "test_b" not in found[0].text
    assert found[1].module_line(found[1].text.count("\n")) == text.count("\n")


def test_methods_that_share_an_attribute_are_one_region():
    text = textwrap.dedent('''\
        import tensorflow as tf


        class Model(tf.keras.Model):
            def __init__(self):
                super().__init__()
                self.dense = tf.keras.layers.Dense(1)

            def call(self, x):
                return self.dense(x)

            def describe(self):
                return "a model"


        def unrelated():
            return 2
        ''')
    found = regions("m.py", text)
    assert found is not None
    texts = [r.text for r in found]
    holding_init = [t for t in texts if "__init__" in t]
    assert len(holding_init) == 1 and "def call" in holding_init[0]
    assert any("def unrelated" in t and "class Model" not in t for t in texts)


def test_functions_that_use_a_module_name_join_the_statement_that_binds_it():
    text = module_of("model = tf.keras.Sequential()\n", CLEAN_STEP.format(i=0),
                     "\n\ndef uses_global():\n    return model(1)\n")
    found = regions("m.py", text)
    assert found is not None and len(found) == 2
    together = [r.text for r in found if "uses_global" in r.text][0]
    assert "model = tf.keras.Sequential()" in together and "train_step_0" not in together


def _group_of(found, name):
    [text] = [r.text for r in found if f"def {name}(" in r.text]
    return text


JOINS = textwrap.dedent('''\
    import os
    from typing import Callable, TypeVar

    import tensorflow as tf

    _F = TypeVar("_F", bound=Callable)


    class Worker:
        def join(self):
            self.done = True


    def step(model, x) -> _F:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(x))
        print(", ".join(["a", "b"]), os.path.join("a", "b"))
        return tape.gradient(loss, model.trainable_variables)


    def other_step(model, x: _F):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x))
        return tape.gradient(loss, model.trainable_variables)
    ''')


def test_a_method_named_as_a_string_or_module_function_ties_nothing_to_it():
    # `", ".join` and `os.path.join` read no class's attribute: the class that defines `join` stays apart
    found = regions("m.py", JOINS)
    assert found is not None
    assert "class Worker" not in _group_of(found, "step")


def test_a_type_read_only_in_annotations_ties_nothing_to_it():
    found = regions("m.py", JOINS)
    assert "def other_step(" not in _group_of(found, "step")
    assert "_F = TypeVar" not in _group_of(found, "other_step")


def test_an_attribute_read_through_a_local_of_a_modules_name_still_ties():
    # `os` here is the function's own parameter, not the module: its `join` may be Worker's
    text = JOINS.replace('os.path.join("a", "b")', "").replace("def step(model, x)", "def step(model, x, os=None)")
    text = text.replace('print(", ".join(["a", "b"]), )', "os.join()")
    found = regions("m.py", text)
    assert found is None or "class Worker" in _group_of(found, "step")


def test_an_attribute_a_module_is_given_is_read_through_it_as_any_other():
    text = JOINS + "\n\ndef patch():\n    os.path.join = Worker().join\n"
    found = regions("m.py", text)
    assert found is None or "class Worker" in _group_of(found, "step")


def test_one_region_is_the_module_itself():
    assert regions("m.py", module_of(BUGGY_STEP)) is None


# --- syntax ----------------------------------------------------------------------------------


def test_a_syntax_error_in_a_later_statement_has_the_modules_line_and_pythons_message():
    text = module_of(CLEAN_STEP.format(i=0), "\n\ndef broken(:\n    pass\n")
    line = text.splitlines().index("def broken(:") + 1
    with pytest.raises(SourceError) as error:
        engine.analyze(source(text))
    assert f"line {line}" in str(error.value) and "invalid syntax" in str(error.value)


def test_a_future_import_after_code_is_rejected_as_python_rejects_it():
    text = module_of(CLEAN_STEP.format(i=0), "from __future__ import annotations\n")
    with pytest.raises(SourceError) as error:
        engine.analyze(source(text))
    assert "from __future__ imports must occur at the beginning of the file" in str(error.value)


# --- findings placed in the module ------------------------------------------------------------


def test_a_finding_in_a_later_region_has_the_modules_lines_and_its_fix_applies_there():
    text = module_of(*(CLEAN_STEP.format(i=i) for i in range(30)), BUGGY_STEP, CLEAN_STEP.format(i=99))
    by_region = engine.analyze(source(text))
    whole = engine.analyze(source(text), by_region=False)
    assert comparable(by_region) == comparable(whole)
    [finding] = by_region
    assert finding.rule == "GF001"
    assert text.splitlines()[finding.span.start_line - 1].strip() == "logits = model(x_batch, training=True)"
    assert fixed_text(text, by_region) == fixed_text(text, whole) != text


def test_a_line_named_in_a_message_is_the_modules_line():
    text = module_of(*(CLEAN_STEP.format(i=i) for i in range(5)), UNWATCHED_STEP)
    constant_line = next(n for n, line in enumerate(text.splitlines(), 1) if "tf.constant(np.zeros" in line)
    findings = [f for f in engine.analyze(source(text)) if f.rule == "GF007"]
    assert findings and f"line {constant_line}" in findings[0].detail
    assert "\ue000" not in findings[0].message + findings[0].detail
    assert comparable(findings) == comparable([f for f in engine.analyze(source(text), by_region=False) if f.rule == "GF007"])


@pytest.mark.parametrize("case", [c for c in all_cases() if not c.is_valid_program], ids=lambda c: c.id)
def test_fixture_findings_are_the_same_by_region_and_whole(case):
    text = case.buggy.read_text()
    assert comparable(engine.analyze(source(text, str(case.buggy)))) == comparable(
        engine.analyze(source(text, str(case.buggy)), by_region=False))


def test_fixtures_joined_into_one_module_keep_each_ones_findings():
    """Programs that share no names, one after another, each analysed apart, as the whole would be."""
    cases = [c for c in all_cases() if not c.is_valid_program and "GradientTape" in c.buggy.read_text()][:6]
    bodies = []
    for index, case in enumerate(cases):
        body = case.buggy.read_text()
        # each program's statements go in a function of their own, so that their names stay apart
        bodies.append(f"\n\ndef program_{index}():\n" + textwrap.indent(body, "    ").replace("    from __future__", "    # from __future__"))
    text = "import tensorflow as tf\nimport numpy as np\n" + "".join(bodies)
    by_region = engine.analyze(source(text))
    assert comparable(by_region) == comparable(engine.analyze(source(text), by_region=False))
    assert len({f.span.start_line for f in by_region}) >= len(cases) - 1


# --- an editor's changes ----------------------------------------------------------------------


def test_a_change_to_one_function_reanalyses_only_its_region(monkeypatch):
    made = []
    real = engine.ModuleAnalysis

    def counting(path, text, module, *lines):
        made.append(text)
        return real(path, text, module, *lines)

    monkeypatch.setattr(engine, "ModuleAnalysis", counting)
    steps = [CLEAN_STEP.format(i=i) for i in range(10)]
    text = module_of(*steps, BUGGY_STEP)
    first = engine.analyze(source(text, "changes.py"))
    assert len(made) == 11
    # one more line in step 3 moves the buggy step down without changing its text
    steps[3] = steps[3].replace("    return loss", "\n    # scaled\n    return loss * 1.0")
    changed = module_of(*steps, BUGGY_STEP)
    second = engine.analyze(source(changed, "changes.py"))
    assert len(made) == 12 and "loss * 1.0" in made[-1]
    assert second[0].span.start_line == first[0].span.start_line + 2


def test_the_statement_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(regions_module, "CACHE_SIZE", 5)
    for i in range(20):
        split_module("m.py", f"x_{i} = 1\ny_{i} = 2\n")
    assert len(regions_module._cache) <= 5


def test_a_module_object_changed_in_one_statement_joins_the_statements_that_use_it():
    text = textwrap.dedent('''\
        import tensorflow as tf
        for layer in encoder.layers:
            layer.trainable = False
        with tf.GradientTape() as tape:
            loss = loss_fn(y, encoder(x))
        grads = tape.gradient(loss, encoder.trainable_variables)
        ''')
    assert regions("m.py", text) is None  # one region: `encoder` is named by both statements


def test_dynamic_attribute_access_joins_every_statement_that_stores_an_attribute():
    text = textwrap.dedent('''\
        from tensorflow import keras
        class Net(keras.Model):
            def __init__(self):
                super().__init__()
                self.spare = keras.layers.Dense(8)

            def summary_of(self):
                return [l.name for l in self.layers]

            def other(self):
                return 1
        ''')
    found = regions("m.py", text)
    assert found is not None and len(found) == 2
    # `self.layers` may reach the layer `spare`; no rule can follow it to a method, so `other` stays apart
    assert "self.spare" in found[0].text and "def summary_of" in found[0].text and "def other" not in found[0].text
    assert "def other" in found[1].text and "def __init__" not in found[1].text


def test_statements_that_call_one_function_stay_apart_each_with_the_function():
    text = module_of(
        "\n\ndef scaled(x):\n    return 2.0 * x\n",
        "\n\ndef first():\n    return scaled(tf.constant(1.0))\n",
        "\n\ndef second():\n    return scaled(tf.constant(2.0))\n",
    )
    # each region worth analysing holds what it calls; two that overlap would be analysed as one
    found = regions("m.py", text, lambda region: "def first" in region)
    assert found is not None and len(found) == 1
    assert "def scaled" in found[0].text and "def first" in found[0].text and "def second" not in found[0].text
    assert regions("m.py", text) is None  # both worth it: they share `scaled`, so they are analysed together


def test_a_constant_table_does_not_tie_its_readers_but_a_list_to_fill_and_a_built_object_do():
    def tied(binding: str) -> bool:
        text = module_of(binding, "\n\ndef first():\n    return TABLE[0]\n", "\n\ndef second():\n    return TABLE[1]\n")
        found = regions("m.py", text, lambda region: "def first" in region)
        return found is None or any("def second" in region.text for region in found)

    assert not tied('TABLE = ("int32", "int64")\n')
    assert not tied('TABLE = [x for x in ("int32", "int64", "float32") if x != "float32"]\n')
    assert tied("TABLE = []\n")  # filled elsewhere, perhaps with layers
    assert tied("TABLE = make_table()\n")  # a call may return a model that both use
    assert tied("TABLE = OTHER\nOTHER = make_table()\n")  # a constant made from an unsettled name


def test_a_class_variable_read_by_its_methods_decorators_does_not_tie_them():
    text = textwrap.dedent('''\
        import tensorflow as tf
        from absl.testing import parameterized


        class Tests(parameterized.TestCase):
            DTYPES = ["float32", "float64"]

            @parameterized.parameters(DTYPES)
            def test_a(self, dtype):
                return tf.constant(1.0, dtype)

            @parameterized.parameters(DTYPES)
            def test_b(self, dtype):
                return tf.constant(2.0, dtype)
        ''')
    found = regions("m.py", text, lambda region: "def test_a" in region)
    assert found is not None and len(found) == 1
    assert "def test_b" not in found[0].text and "DTYPES = " in found[0].text


def test_only_regions_worth_analysing_are_given_and_a_caller_comes_with_the_function_it_calls():
    text = module_of(
        "\n\ndef step(x):\n    with tf.GradientTape() as tape:\n        tape.watch(x)\n        y = x * x\n"
        "    return tape.gradient(y, x)\n",
        "\n\ndef caller():\n    return step(tf.constant(1.0))\n",
        "\n\ndef unrelated():\n    return 3\n",
    )
    found = regions("m.py", text, lambda region: "GradientTape" in region)
    assert found is not None and len(found) == 1
    assert "def step" in found[0].text and "def caller" in found[0].text and "def unrelated" not in found[0].text


def test_naming_a_split_class_joins_all_its_statements():
    text = textwrap.dedent('''\
        import tensorflow as tf
        class Steps:
            def a(self):
                return tf.constant(1.0)

            def b(self):
                return tf.constant(2.0)

        steps = Steps()
        ''')
    assert regions("m.py", text) is None


def test_fast_children_are_libcsts_children_in_the_same_order_less_layout():
    import libcst as cst

    from gradfix.static.tree import LAYOUT, node_children

    checked = 0
    for case in all_cases():
        stack = [cst.parse_module(case.buggy.read_text())]
        while stack:
            node = stack.pop()
            expected = [child for child in node.children if not isinstance(child, LAYOUT)]
            assert [id(child) for child in node_children(node)] == [id(child) for child in expected], type(node).__name__
            stack.extend(node.children)
            checked += 1
    assert checked > 10_000


def test_a_walk_by_kind_over_the_index_yields_what_a_walk_of_the_tree_does():
    import libcst as cst

    from gradfix.static import tree

    kinds = [cst.Call, cst.Name, (cst.FunctionDef, cst.ClassDef), cst.BaseSmallStatement, (cst.Return, cst.Lambda)]
    compared = 0
    for case in all_cases()[:30]:
        module = cst.parse_module(case.buggy.read_text())
        _, order, _, _ = tree.index_tree(module)
        nodes = list(tree.walk(module))
        roots = [module, *nodes[:: max(1, len(order) // 25)]]
        for root in roots:
            for kind in kinds:
                by_index = [id(node) for node in tree.walk(root, kind)]
                by_tree = [id(node) for node in tree.walk(root, kind, skip=(cst.Ellipsis,))]  # a skip walks the tree
                assert by_index == by_tree, (case.id, type(root).__name__, kind)
                compared += len(by_index)
    assert compared > 10_000


def test_spans_from_one_statement_are_the_spans_of_the_whole_module():
    import libcst as cst

    from gradfix.static.analysis import ModuleAnalysis

    for case in all_cases()[:40]:
        text = "# a header comment\n\n" + case.buggy.read_text()
        local = ModuleAnalysis("m.py", text, cst.parse_module(text))
        whole = ModuleAnalysis("m.py", text, cst.parse_module(text))
        whole.positions  # computed for the whole module: the reference
        by_number = {whole.order_of(node): node for node in whole.walk(None)}
        for node in local.walk(None, (cst.Call, cst.Name, cst.SimpleStatementLine, cst.FunctionDef)):
            twin = by_number[local.order_of(node)]
            assert local.span(node) == whole.span(twin), (case.id, local.code(node))


def test_a_fix_that_adds_an_import_places_it_among_the_modules_imports():
    text = textwrap.dedent('''\
        import numpy as np
        from tensorflow import GradientTape


        def unrelated():
            return np.zeros(3)


        def step(model, x, y):
            with GradientTape() as tape:
                loss = np.sum(np.square(model(x) - y))
            return tape.gradient(loss, model.trainable_variables)
        ''')
    by_region = engine.analyze(source(text))
    assert comparable(by_region) == comparable(engine.analyze(source(text), by_region=False))
    fixed = engine.fix_source(source(text)).new_text
    assert fixed.startswith("import numpy as np\nfrom tensorflow import GradientTape\nimport tensorflow as tf\n\n")
    assert "loss = tf.reduce_sum(tf.square(model(x) - y))" in fixed


def test_each_thread_walks_the_tree_it_indexed():
    import threading

    import libcst as cst

    from gradfix.static import tree

    first = cst.parse_module("a = f(x)\n")
    second = cst.parse_module("b = g(y)\nc = h(z)\n")
    tree.index_tree(first)
    other_ready, mine_checked = threading.Event(), threading.Event()
    seen = {}

    def other_analysis():
        tree.index_tree(second)
        other_ready.set()
        mine_checked.wait(10)
        seen["other"] = [n.func.value for n in tree.walk(second, cst.Call)]
        seen["other_indexed"] = tree._indexed.tree is not None and id(second) in tree._indexed.tree.order

    worker = threading.Thread(target=other_analysis)
    worker.start()
    other_ready.wait(10)
    # the other thread's index did not replace this thread's: its walks still read the index of `first`
    assert id(first) in tree._indexed.tree.order and id(second) not in tree._indexed.tree.order
    assert [n.func.value for n in tree.walk(first, cst.Call)] == ["f"]
    mine_checked.set()
    worker.join(10)
    assert seen == {"other": ["g", "h"], "other_indexed": True}


def test_a_class_split_by_a_scan_of_its_lines_is_split_as_its_syntax_tree_splits_it():
    import ast
    import pathlib

    from gradfix.static.regions import _class_body, _class_by_scan

    tricky = textwrap.dedent('''\
        @decorated(
            "x",
        )
        class Tricky(Base):
            """A docstring whose lines sit at the body's indentation.

            looks_like = a_statement
            """

            limits = (1,
            2)
            text = """
            def not_a_method(self):
            """

            @property
            # a comment between a decorator and its function
            def value(self):
                if self.limits:
                    return 1
                else:
                    return 2
        ''')
    trainer = (pathlib.Path(__file__).parent / "incremental" / "keras_tensorflow_trainer.py.txt").read_text(encoding="utf-8")
    classes = [tricky, trainer[trainer.index("class TensorFlowTrainer"):trainer.index("class TFEpochIterator")]]
    for text in classes:
        name, starts = _class_body(ast.parse(text).body)
        scanned = _class_by_scan("m.py", text)
        assert scanned is not None and starts and (scanned.class_name, scanned.class_body) == (name, starts)
