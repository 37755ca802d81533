"""Issue 20, item 2: `diagnose --apply` refuses a file saved while the fix was being verified, as `fix --apply` does.

The edits were taken from the text read before the re-runs; applied by line number to what the
user saved in the meantime, they overwrote the user's lines.
"""

from __future__ import annotations

import textwrap

import pytest

from gradfix import repair
from tests.safety.conftest import run

PROGRAM = textwrap.dedent("""\
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.layers.Dense(2)])
    model.build((None, 3))
    opt = tf.keras.optimizers.SGD(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.stop_gradient(model(tf.ones((4, 3)))) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    """)
SAVED = "# a line the user saved while gradfix verified its fix\n" + PROGRAM


@pytest.mark.tensorflow
def test_diagnose_apply_refuses_a_file_saved_during_verification(tmp_path, monkeypatch):
    train = tmp_path / "train.py"
    train.write_text(PROGRAM)
    verify = repair.verify_texts

    def verify_while_the_user_saves(*args, **kwargs):
        verdict = verify(*args, **kwargs)
        train.write_text(SAVED)
        return verdict

    monkeypatch.setattr(repair, "verify_texts", verify_while_the_user_saves)
    monkeypatch.chdir(tmp_path)
    result = run("diagnose", "train.py", "--apply", "--unsafe-fixes", "-q")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("gradfix: error:")]
    assert len(errors) == 1 and errors[0].endswith(
        "train.py: not written: the file changed since gradfix read it; run gradfix again"), result.stderr
    assert "gradfix: wrote" not in result.output
    assert train.read_text() == SAVED


@pytest.mark.tensorflow
def test_diagnose_apply_writes_the_verified_fix_when_nothing_changed(tmp_path, monkeypatch):
    train = tmp_path / "train.py"
    train.write_text(PROGRAM)
    monkeypatch.chdir(tmp_path)
    result = run("diagnose", "train.py", "--apply", "--unsafe-fixes", "-q")
    assert result.exit_code == 0, result.output
    assert train.read_text() == PROGRAM.replace("tf.stop_gradient(model(tf.ones((4, 3))))", "model(tf.ones((4, 3)))")
