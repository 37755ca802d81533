"""Single-line bugs put into the real programs of the corpus (tests/corpus): `gradfix check` must report each
by the rule named, at the line named, and nothing else it reports on that file may change.

A row names a corpus file, one line of it as written there and the same line with the bug, the rule that must
find it and the line it reports (the line changed, or the first line holding the text given: the gradient call
for a source never watched, the start of a loss written over several lines). The files are not kept in this repository (tests/corpus/README.md says how to copy them in); without
them the test is skipped, as tests/test_corpus.py is.
"""

from __future__ import annotations

import pathlib

import pytest

from gradfix.engine import analyze
from gradfix.source import SourceFile

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"

BUGS = [
    # the forward pass run with `predict`, which returns NumPy: the loss has no gradient
    pytest.param("keras-io/guides/custom_train_step_in_tensorflow.py",
                 "y_pred = self(x, training=True)  # Forward pass", "y_pred = self.predict(x)  # Forward pass",
                 "GF004", None, id="keras-train-step-predict"),
    pytest.param("keras-io/guides/writing_a_custom_training_loop_in_tensorflow.py",
                 "logits = model(x_batch_train, training=True)  # Logits for this minibatch",
                 "logits = model.predict(x_batch_train)  # Logits for this minibatch",
                 "GF004", None, id="training-loop-predict"),
    # the gradient penalty's interpolated images no longer watched
    pytest.param("keras-io/examples/generative/wgan_gp.py", "gp_tape.watch(interpolated)", "pass",
                 "GF007", "grads = gp_tape.gradient(pred, [interpolated])[0]", id="wgan-gp-watch-removed"),
    # the loss computed from the encoder's outputs, not the predictor's: the predictor gets no gradient
    pytest.param("keras-io/examples/vision/simsiam.py",
                 "loss = compute_loss(p1, z2) / 2 + compute_loss(p2, z1) / 2",
                 "loss = compute_loss(z1, z2) / 2 + compute_loss(z2, z1) / 2",
                 "GF003", None, id="simsiam-predictor-unused"),
    # the reconstruction loss reads the decoder's input, one of the encoder's outputs bound together
    pytest.param("keras-io/examples/generative/vae.py",
                 "keras.losses.binary_crossentropy(data, reconstruction),",
                 "keras.losses.binary_crossentropy(data, z),",
                 "GF003", "reconstruction_loss = tf.reduce_mean(", id="vae-decoder-input-in-loss"),
    # the total left as the KL term alone, the reconstruction loss only logged: the decoder gets no gradient
    pytest.param("keras-io/examples/generative/vae.py",
                 "total_loss = reconstruction_loss + kl_loss", "total_loss = kl_loss",
                 "GF003", "reconstruction_loss = tf.reduce_mean(", id="vae-reconstruction-only-logged"),
    # the discriminator's loss computed from the labels twice, through the loss `compile` was given
    pytest.param("keras-io/examples/generative/dcgan_overriding_train_step.py",
                 "d_loss = self.loss_fn(labels, predictions)", "d_loss = self.loss_fn(labels, labels)",
                 "GF014", "grads = tape.gradient(d_loss, self.discriminator.trainable_weights)", id="dcgan-constant-loss"),
]


def _findings(text: str) -> set[tuple[str, int]]:
    return {(f.rule, f.span.start_line) for f in analyze(SourceFile(path="example.py", text=text, encoding="utf-8"))}


@pytest.mark.parametrize("relative, line, bug, rule, at", BUGS)
@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::SyntaxWarning")
def test_a_bug_put_into_real_code_is_found(relative, line, bug, rule, at):
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not copied in: run tests/corpus/populate.py (tests/corpus/README.md)")
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    where = [index for index, written in enumerate(lines) if written.strip() == line]
    assert len(where) >= 1, f"{relative} no longer holds `{line}`"
    index = where[0]
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    buggy = "".join(lines[:index] + [indent + bug + "\n"] + lines[index + 1:])
    reported = index + 1 if at is None else next(number for number, written in enumerate(lines, 1) if written.strip() == at)
    before, after = _findings(text), _findings(buggy)
    assert after - before == {(rule, reported)}, f"new findings {sorted(after - before)}, expected {rule} at line {reported}"
    assert before - after == set(), f"findings gone: {sorted(before - after)}"
