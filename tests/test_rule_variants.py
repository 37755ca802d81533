"""Each rule's bug one step away from the surface form of its examples, and clean code that looks like it.

A row is (rule code, variant name, source, expected): FOUND when the rule must report the source,
CLEAN when it must not (a look-alike). The variants are those the project's issues name: the bug
moved into a helper function or a method, behind ``self``, into a closure, a loss factory, a
``keras.losses.Loss`` subclass or a lambda given to ``compile``, behind an import alias, under
``tape.stop_recording()``, through a rebuilt list of parameters or a helper that takes the tape,
a positional ``dtype``, an operator instead of a function. A variant a rule still misses is marked
``xfail(strict=True)`` with what the rule does not follow, so that catching it is noticed.

The rules' own ``VALID`` and ``INVALID`` examples are not repeated here (tests/test_rule_examples.py runs them):
every row is a program of its own, and every rule code has at least one variant and one look-alike.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap

import pytest

from gradfix.engine import analyze
from gradfix.registry import all_rules, rule_by_code
from gradfix.source import SourceFile

FOUND, CLEAN = True, False


def _missed(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


ROWS = [
    # --- GF001 --------------------------------------------------------------------------------
    pytest.param("GF001", "method-self", """
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        predictions = self.model(x, training=True)
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, predictions)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", FOUND, id="GF001-method-self"),
    pytest.param("GF001", "import-alias", """
import tensorflow as T

def train_step(model, optimizer, loss_fn, x, y):
    predictions = model(x, training=True)
    with T.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF001-import-alias"),
    pytest.param("GF001", "lookalike-teacher-outside-tape", """
import tensorflow as tf

class Distiller(tf.keras.Model):
    def __init__(self, student, teacher, temperature=3.0):
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.temperature = temperature
        self.distillation_loss_fn = tf.keras.losses.KLDivergence()

    def train_step(self, data):
        x, y = data
        teacher_predictions = self.teacher(x, training=False)
        with tf.GradientTape() as tape:
            student_predictions = self.student(x, training=True)
            loss = self.distillation_loss_fn(
                tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
                tf.nn.softmax(student_predictions / self.temperature, axis=1),
            )
        gradients = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
        return {"loss": loss}
""", CLEAN, id="GF001-lookalike-teacher-outside-tape"),
    pytest.param("GF001", "keras-train-step", """
import tensorflow as tf
from tensorflow import keras

class Regressor(keras.Model):
    def train_step(self, data):
        x, y = data
        y_pred = self(x, training=True)
        with tf.GradientTape() as tape:
            loss = keras.losses.mean_squared_error(y, y_pred)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", FOUND, id="GF001-keras-train-step"),
    # --- GF002 --------------------------------------------------------------------------------
    pytest.param("GF002", "from-import-alias", """
import tensorflow as tf
from tensorflow import stop_gradient as sg

with tf.GradientTape() as tape:
    logits = sg(model(x, training=True))
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF002-from-import-alias"),
    pytest.param("GF002", "module-alias", """
import tensorflow as T

with T.GradientTape() as tape:
    logits = T.stop_gradient(model(x, training=True))
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF002-module-alias"),
    pytest.param("GF002", "helper-function", """
import tensorflow as tf

def frozen(t):
    return tf.stop_gradient(t)

with tf.GradientTape() as tape:
    logits = frozen(model(x, training=True))
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF002-helper-function"),
    pytest.param("GF002", "method-self", """
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            logits = tf.stop_gradient(self.model(x, training=True))
            loss = self.loss_fn(y, logits)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", FOUND, id="GF002-method-self"),
    pytest.param("GF002", "loss-subclass", """
import tensorflow as tf

class Frozen(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - tf.stop_gradient(y_pred)))

model.compile(optimizer="adam", loss=Frozen())
""", FOUND, id="GF002-loss-subclass"),
    pytest.param("GF002", "loop-over-layers", """
import tensorflow as tf

with tf.GradientTape() as tape:
    h = x
    for layer in model.layers:
        h = tf.stop_gradient(layer(h))
    loss = loss_fn(y, h)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF002-loop-over-layers"),
    pytest.param("GF002", "lookalike-stop-gradient-on-target-branch", """
import tensorflow as tf

def negative_cosine(p, z):
    z = tf.stop_gradient(z)
    p = tf.math.l2_normalize(p, axis=1)
    z = tf.math.l2_normalize(z, axis=1)
    return -tf.reduce_mean(tf.reduce_sum(p * z, axis=1))

class SimSiam(tf.keras.Model):
    def __init__(self, encoder, predictor):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def train_step(self, data):
        ds_one, ds_two = data
        with tf.GradientTape() as tape:
            z1 = self.encoder(ds_one)
            z2 = self.encoder(ds_two)
            p1 = self.predictor(z1)
            p2 = self.predictor(z2)
            loss = negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2
        params = self.encoder.trainable_variables + self.predictor.trainable_variables
        gradients = tape.gradient(loss, params)
        self.optimizer.apply_gradients(zip(gradients, params))
        return {"loss": loss}
""", CLEAN, id="GF002-lookalike-stop-gradient-on-target-branch"),
    # --- GF003 --------------------------------------------------------------------------------
    pytest.param("GF003", "method-self", """
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            predictions = self.model(x, training=True)
            hidden = self.model.layers[0](x)
            loss = tf.reduce_mean(tf.square(hidden - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", FOUND, id="GF003-method-self"),
    pytest.param("GF003", "lookalike-vae-reconstruction-and-kl", """
import tensorflow as tf
from tensorflow import keras

class VAE(keras.Model):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = tf.reduce_mean(
                tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            kl_loss = tf.reduce_mean(tf.reduce_sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss}
""", CLEAN, id="GF003-lookalike-vae-reconstruction-and-kl"),
    pytest.param("GF003", "vae-reconstruction-logged-keras-ops-dict", """
import keras
from keras import ops
import tensorflow as tf

class VAE(keras.Model):
    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            recon_loss = ops.mean(keras.losses.mean_squared_error(data, reconstruction))
            kl_loss = ops.mean(-0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var)))
            total_loss = kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss, "reconstruction": recon_loss}
""", FOUND, id="GF003-vae-reconstruction-logged-keras-ops-dict"),
    pytest.param("GF003", "script-term-printed", """
import tensorflow as tf

for x in dataset:
    with tf.GradientTape() as tape:
        code = encoder(x)
        aux_loss = tf.reduce_mean(tf.square(x - decoder(code)))
        main_loss = tf.reduce_mean(tf.square(code))
        loss = main_loss
    tf.print("aux", aux_loss)
    grads = tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
    optimizer.apply_gradients(zip(grads, encoder.trainable_variables + decoder.trainable_variables))
""", FOUND, id="GF003-script-term-printed"),
    pytest.param("GF003", "lookalike-term-logged-same-model", """
import tensorflow as tf

def train_step(model, x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        l2_loss = tf.reduce_mean(tf.square(tf.nn.softmax(logits) - y))
        ce_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y, logits))
        loss = ce_loss
    l2_tracker.update_state(l2_loss)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return {"loss": loss, "l2": l2_loss}
""", CLEAN, id="GF003-lookalike-term-logged-same-model"),
    pytest.param("GF003", "lookalike-term-in-a-list-summed", """
import tensorflow as tf

def train_step(x):
    with tf.GradientTape() as tape:
        terms = []
        reconstruction_loss = tf.reduce_mean(tf.square(x - decoder(encoder(x))))
        terms.append(reconstruction_loss)
        kl_loss = tf.reduce_mean(encoder.losses)
        total_loss = kl_loss + tf.add_n(terms)
    tracker.update_state(reconstruction_loss)
    return tape.gradient(total_loss, model.trainable_weights)
""", CLEAN, id="GF003-lookalike-term-in-a-list-summed"),
    pytest.param("GF003", "lookalike-term-differentiated-after", """
import tensorflow as tf

def train_step(x):
    with tf.GradientTape(persistent=True) as tape:
        reconstruction_loss = tf.reduce_mean(tf.square(x - decoder(encoder(x))))
        kl_loss = tf.reduce_mean(encoder.losses)
    print(float(reconstruction_loss))
    enc = tape.gradient(kl_loss, encoder.trainable_weights)
    dec = tape.gradient(reconstruction_loss, decoder.trainable_weights)
    return enc, dec
""", CLEAN, id="GF003-lookalike-term-differentiated-after"),
    pytest.param("GF003", "module-method-hidden", """
import tensorflow as tf

class TwoLayerNet(tf.Module):
    def __init__(self):
        self.w1 = tf.Variable(tf.random.normal((4, 16)))
        self.w2 = tf.Variable(tf.random.normal((16, 1)))

    def train_step(self, x, y, learning_rate=0.01):
        with tf.GradientTape() as tape:
            hidden = tf.nn.relu(tf.matmul(x, self.w1))
            output = tf.matmul(hidden, self.w2)
            loss = tf.reduce_mean(tf.square(y - hidden))
        grads = tape.gradient(loss, [self.w1, self.w2])
        for grad, variable in zip(grads, [self.w1, self.w2]):
            variable.assign_sub(learning_rate * grad)
        return loss
""", FOUND, id="GF003-module-method-hidden"),
    pytest.param("GF003", "import-alias-features", """
import tensorflow as T

def train_step(backbone, head, optimizer, images, labels):
    with T.GradientTape() as tape:
        embeddings = backbone(images, training=True)
        logits = head(embeddings, training=True)
        loss = T.reduce_mean(T.keras.losses.sparse_categorical_crossentropy(labels, embeddings, from_logits=True))
    params = backbone.trainable_variables + head.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, params), params))
""", FOUND, id="GF003-import-alias-features"),
    pytest.param("GF003", "keras-train-step-self-variables", """
import tensorflow as tf
from tensorflow import keras

class Classifier(keras.Model):
    def __init__(self, encoder, head):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            features = self.encoder(x, training=True)
            logits = self.head(features, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, features, from_logits=True))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", FOUND, id="GF003-keras-train-step-self-variables"),
    pytest.param("GF003", "loss-helper-makes-prediction", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.Adam()

def compute_loss(x, y):
    predictions = model(x, training=True)
    hidden = model.layers[0](x)
    return tf.reduce_mean(tf.square(y - hidden))

def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = compute_loss(x, y)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF003-loss-helper-makes-prediction"),
    pytest.param("GF003", "loss-method-makes-prediction-keras-ops", """
import keras
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model

    def loss_of(self, x, y):
        logits = self.model(x, training=True)
        hidden = self.model.layers[0](x)
        return keras.ops.mean(keras.losses.mean_squared_error(y, hidden))

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            loss = self.loss_of(x, y)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return loss
""", FOUND, id="GF003-loss-method-makes-prediction-keras-ops"),
    pytest.param("GF003", "lookalike-loss-helper-reads-its-prediction", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(32, activation="relu"), tf.keras.layers.Dense(1)])

def compute_loss(x, y):
    predictions = model(x, training=True)
    hidden = model.layers[0](x)
    return tf.reduce_mean(tf.square(y - predictions)) + 0.01 * tf.reduce_mean(tf.square(hidden))

def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = compute_loss(x, y)
    return tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF003-lookalike-loss-helper-reads-its-prediction"),
    # keras-io examples/vision/simsiam.py with the loss computed from the encoder's outputs `z1`, `z2` instead of
    # the predictor's `p1`, `p2`: each pair is bound by one tuple assignment, and the predictor gets no gradient
    pytest.param("GF003", "simsiam-tuple-assignments", """
import tensorflow as tf
from tensorflow import keras

def compute_loss(p, z):
    z = tf.stop_gradient(z)
    p = tf.math.l2_normalize(p, axis=1)
    z = tf.math.l2_normalize(z, axis=1)
    return -tf.reduce_mean(tf.reduce_sum((p * z), axis=1))

class SimSiam(keras.Model):
    def __init__(self, encoder, predictor):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def train_step(self, data):
        ds_one, ds_two = data
        with tf.GradientTape() as tape:
            z1, z2 = self.encoder(ds_one), self.encoder(ds_two)
            p1, p2 = self.predictor(z1), self.predictor(z2)
            loss = compute_loss(z1, z2) / 2 + compute_loss(z2, z1) / 2
        learnable_params = self.encoder.trainable_variables + self.predictor.trainable_variables
        gradients = tape.gradient(loss, learnable_params)
        self.optimizer.apply_gradients(zip(gradients, learnable_params))
        return {"loss": loss}
""", FOUND, id="GF003-simsiam-tuple-assignments"),
    pytest.param("GF003", "tuple-assignments-step-function-keras-ops", """
import keras
import tensorflow as tf

def negative_cosine(p, z):
    return -keras.ops.mean(keras.ops.sum(keras.ops.normalize(p) * keras.ops.normalize(keras.ops.stop_gradient(z)), axis=1))

def train_step(encoder, predictor, optimizer, view_one, view_two):
    with tf.GradientTape() as tape:
        z1, z2 = encoder(view_one, training=True), encoder(view_two, training=True)
        p1, p2 = predictor(z1, training=True), predictor(z2, training=True)
        loss = (negative_cosine(z1, z2) + negative_cosine(z2, z1)) / 2
    params = encoder.trainable_variables + predictor.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(loss, params), params))
    return loss
""", FOUND, id="GF003-tuple-assignments-step-function-keras-ops"),
    # keras-io examples/generative/vae.py with the reconstruction loss reading the decoder's input `z`, one of the
    # encoder's three outputs bound together, instead of the reconstruction
    pytest.param("GF003", "vae-decoder-input-in-loss", """
import tensorflow as tf
from tensorflow import keras

class VAE(keras.Model):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = tf.reduce_mean(tf.reduce_sum(tf.square(data[:, :2] - z), axis=1))
            kl_loss = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            total_loss = reconstruction_loss + tf.reduce_mean(tf.reduce_sum(kl_loss, axis=1))
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss}
""", FOUND, id="GF003-vae-decoder-input-in-loss"),
    pytest.param("GF003", "lookalike-simsiam-tuple-assignments", """
import tensorflow as tf
from tensorflow import keras

def compute_loss(p, z):
    z = tf.stop_gradient(z)
    return -tf.reduce_mean(tf.reduce_sum(tf.math.l2_normalize(p, axis=1) * tf.math.l2_normalize(z, axis=1), axis=1))

class SimSiam(keras.Model):
    def __init__(self, encoder, predictor):
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def train_step(self, data):
        ds_one, ds_two = data
        with tf.GradientTape() as tape:
            z1, z2 = self.encoder(ds_one), self.encoder(ds_two)
            p1, p2 = self.predictor(z1), self.predictor(z2)
            loss = compute_loss(p1, z2) / 2 + compute_loss(p2, z1) / 2
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", CLEAN, id="GF003-lookalike-simsiam-tuple-assignments"),
    pytest.param("GF003", "lookalike-encoder-outputs-partly-read", """
import tensorflow as tf
from tensorflow import keras

class VAE(keras.Model):
    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = tf.reduce_mean(keras.losses.mean_squared_error(data, reconstruction))
            kl_loss = -0.5 * tf.reduce_mean(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            loss = reconstruction_loss + kl_loss
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": loss}
""", CLEAN, id="GF003-lookalike-encoder-outputs-partly-read"),
    # --- GF004 --------------------------------------------------------------------------------
    pytest.param("GF004", "helper-function", """
import numpy as np
import tensorflow as tf

def to_numpy(t):
    return t.numpy()

with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = np.mean(np.square(to_numpy(pred) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF004-helper-function"),
    pytest.param("GF004", "method-self", """
import numpy as np
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = np.mean(np.square(pred.numpy() - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", FOUND, id="GF004-method-self"),
    pytest.param("GF004", "from-import-alias", """
import tensorflow as tf
from numpy import mean as np_mean

with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = np_mean((pred - y) ** 2)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF004-from-import-alias"),
    pytest.param("GF004", "closure", """
import numpy as np
import tensorflow as tf

def train_step(x, y):
    def numpy_loss(pred):
        return np.mean(np.square(pred.numpy() - y))
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        loss = numpy_loss(pred)
    grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF004-closure"),
    pytest.param("GF004", "lookalike-numpy-class-weights-from-labels", """
import numpy as np
import tensorflow as tf

def train_step(model, optimizer, x, y, num_classes=10):
    counts = np.bincount(y.numpy(), minlength=num_classes)
    weights = tf.constant(counts.sum() / (num_classes * np.maximum(counts, 1)), dtype=tf.float32)
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        per_example = tf.keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        loss = tf.reduce_mean(per_example * tf.gather(weights, y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return float(loss.numpy())
""", CLEAN, id="GF004-lookalike-numpy-class-weights-from-labels"),
    pytest.param("GF004", "lookalike-numpy-preprocessing-before-tape", """
import numpy as np
import tensorflow as tf

def train_step(model, optimizer, loss_fn, images, labels):
    images = np.asarray(images, dtype=np.float32) / 255.0
    images = (images - images.mean(axis=(1, 2), keepdims=True)) / (images.std(axis=(1, 2), keepdims=True) + 1e-6)
    with tf.GradientTape() as tape:
        predictions = model(images, training=True)
        loss = loss_fn(labels, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", CLEAN, id="GF004-lookalike-numpy-preprocessing-before-tape"),
    # keras-io guides/custom_train_step_in_tensorflow.py with `self(x, training=True)` spelled `self.predict(x)`
    pytest.param("GF004", "predict-in-keras-train-step", """
import tensorflow as tf
from tensorflow import keras

class CustomModel(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self.predict(x, verbose=0)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))
        return {"loss": loss}
""", FOUND, id="GF004-predict-in-keras-train-step"),
    # keras-io guides/writing_a_training_loop_from_scratch.py with `model(x, training=True)` spelled `model.predict(x)`
    pytest.param("GF004", "predict-in-step-function", """
import keras
import tensorflow as tf

loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

def train_step(model, optimizer, x_batch_train, y_batch_train):
    with tf.GradientTape() as tape:
        logits = model.predict(x_batch_train)
        loss_value = loss_fn(y_batch_train, logits)
    grads = tape.gradient(loss_value, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    return loss_value
""", FOUND, id="GF004-predict-in-step-function"),
    pytest.param("GF004", "predict-on-batch-backend-alias", """
import tensorflow as tf
from tensorflow.keras import backend as K

class Trainer:
    def step(self, x, y):
        with tf.GradientTape() as tape:
            loss = K.mean(K.square(self.model.predict_on_batch(x) - y))
        return tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF004-predict-on-batch-backend-alias"),
    pytest.param("GF004", "predict-in-helper", """
import keras
import tensorflow as tf

def scores_of(net, images):
    return net.predict(images, verbose=0)

def train_step(model, optimizer, images, labels):
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.binary_crossentropy(labels, scores_of(model, images)))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF004-predict-in-helper"),
    pytest.param("GF004", "lookalike-predict-of-target-network", """
import tensorflow as tf

def train_step(model, model_target, optimizer, states, actions, rewards, next_states, gamma=0.99):
    with tf.GradientTape() as tape:
        future_rewards = model_target.predict(next_states, verbose=0)
        updated_q_values = rewards + gamma * tf.reduce_max(future_rewards, axis=1)
        q_values = model(states, training=True)
        q_action = tf.reduce_sum(tf.multiply(q_values, tf.one_hot(actions, 4)), axis=1)
        loss = tf.reduce_mean(tf.square(updated_q_values - q_action))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", CLEAN, id="GF004-lookalike-predict-of-target-network"),
    pytest.param("GF004", "lookalike-predict-for-logging-in-keras-train-step", """
import tensorflow as tf
from tensorflow import keras

class CustomModel(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            preview = self.predict(x[:4], verbose=0)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss, "preview": preview}
""", CLEAN, id="GF004-lookalike-predict-for-logging-in-keras-train-step"),
    # reduced from https://github.com/PAIR-code/saliency/issues/88 (fixtures/repair/saliency_watched_input_predict.py),
    # in a method: the watched input reaches the score only through `predict`
    pytest.param("GF004", "predict-of-watched-input", """
import tensorflow as tf

class Explainer:
    def saliency(self, images, target_class_idx):
        images = tf.convert_to_tensor(images)
        with tf.GradientTape() as tape:
            tape.watch(images)
            probabilities = self.model.predict(images, verbose=0)
            score = tf.gather(probabilities, target_class_idx, axis=1)
        return tape.gradient(score, images)
""", FOUND, id="GF004-predict-of-watched-input"),
    pytest.param("GF004", "lookalike-predict-beside-call-on-watched-input", """
import tensorflow as tf

def saliency(model, images, target_class_idx):
    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        predicted = tf.argmax(model.predict(images, verbose=0), axis=1)
        score = tf.gather(model(images), target_class_idx, axis=1)
    return tape.gradient(score, images), predicted
""", CLEAN, id="GF004-lookalike-predict-beside-call-on-watched-input"),
    # the shape of tensorflow/docs site/en/guide/tf_numpy.ipynb: a class of the program's own whose `predict` is
    # written with TensorFlow NumPy ops, run in the tape on a watched input
    pytest.param("GF004", "lookalike-own-predict-method", """
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

class Regressor:
    def __init__(self, w):
        self.w = w

    def predict(self, inputs):
        return tnp.matmul(tnp.maximum(inputs, 0), self.w)

model = Regressor(tnp.ones([8, 2], tnp.float32))

def input_jacobian(inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        prediction = model.predict(inputs)
    return tape.batch_jacobian(prediction, inputs)
""", CLEAN, id="GF004-lookalike-own-predict-method"),
    # --- GF005 --------------------------------------------------------------------------------
    pytest.param("GF005", "import-alias", """
import tensorflow as T

w = T.Variable(T.zeros([3, 1]))
for step in range(10):
    with T.GradientTape() as tape:
        loss = T.reduce_mean(T.square(x @ w - y))
    dw = tape.gradient(loss, w)
    w = w - 0.1 * dw
""", FOUND, id="GF005-import-alias"),
    pytest.param("GF005", "method-self", """
import tensorflow as tf

class Linear:
    def __init__(self):
        self.w = tf.Variable(tf.zeros([3, 1]))

    def step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(x @ self.w - y))
        dw = tape.gradient(loss, self.w)
        self.w = self.w - 0.1 * dw
""", FOUND, id="GF005-method-self"),
    pytest.param("GF005", "helper-update", """
import tensorflow as tf

def sgd(value, grad):
    return value - 0.1 * grad

w = tf.Variable(tf.zeros([3, 1]))
for step in range(10):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w - y))
    dw = tape.gradient(loss, w)
    w = sgd(w, dw)
""", FOUND, id="GF005-helper-update"),
    pytest.param("GF005", "lookalike-notebook-name-rebound-to-a-tensor", """
import tensorflow as tf
from tensorflow import keras

# In[1]:
x = tf.Variable(3.0)
with tf.GradientTape() as tape:
    y = x * x
print(tape.gradient(y, x))

# In[2]:
x = tf.random.normal([8, 16])
layer = keras.layers.Dense(16)
for step in range(3):
    with tf.GradientTape() as tape:
        x = layer(x)
        loss = tf.reduce_mean(x ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
""", CLEAN, id="GF005-lookalike-notebook-name-rebound-to-a-tensor"),
    # --- GF006 --------------------------------------------------------------------------------
    pytest.param("GF006", "method-self", """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(x, training=True) - y))
        grads = tape.gradient(loss, self.model.variables)
        self.optimizer.apply_gradients(zip(grads, self.model.variables))
""", FOUND, id="GF006-method-self"),
    pytest.param("GF006", "import-alias", """
import tensorflow as T

model = T.keras.Sequential([T.keras.layers.Dense(16), T.keras.layers.BatchNormalization(), T.keras.layers.Dense(1)])
with T.GradientTape() as tape:
    loss = T.reduce_mean(T.square(model(x, training=True) - y))
grads = tape.gradient(loss, model.variables)
optimizer.apply_gradients(zip(grads, model.variables))
""", FOUND, id="GF006-import-alias"),
    pytest.param("GF006", "lookalike-zeros-for-unconnected", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = tape.gradient(loss, model.variables, unconnected_gradients="zero")
optimizer.apply_gradients(zip(grads, model.variables))
""", CLEAN, id="GF006-lookalike-zeros-for-unconnected"),
    pytest.param("GF006", "tf-function-functional-model", """
import tensorflow as tf
from tensorflow.keras import layers

def build_model():
    inputs = tf.keras.Input(shape=(32,))
    x = layers.Dense(64)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    return tf.keras.Model(inputs, layers.Dense(1)(x))

model = build_model()
optimizer = tf.keras.optimizers.Adam()

@tf.function
def train_step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.weights)
    optimizer.apply_gradients(zip(grads, model.weights))
    return loss
""", FOUND, id="GF006-tf-function-functional-model"),
    # --- GF007 --------------------------------------------------------------------------------
    pytest.param("GF007", "import-alias", """
import tensorflow as T
x = T.constant(3.0)
with T.GradientTape() as tape:
    y = x * x
dy_dx = tape.gradient(y, x)
""", FOUND, id="GF007-import-alias"),
    pytest.param("GF007", "helper-function", """
import tensorflow as tf

def square(t):
    return t * t

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    y = square(x)
dy_dx = tape.gradient(y, x)
""", FOUND, id="GF007-helper-function"),
    pytest.param("GF007", "method-self", """
import tensorflow as tf

class Saliency:
    def __init__(self, model):
        self.model = model

    def explain(self, image):
        image = tf.convert_to_tensor(image)
        with tf.GradientTape() as tape:
            score = self.model(image)[:, 0]
        return tape.gradient(score, image)
""", FOUND, id="GF007-method-self"),
    pytest.param("GF007", "lookalike-gradient-penalty-watched", """
import tensorflow as tf

class WGAN(tf.keras.Model):
    def gradient_penalty(self, batch_size, real_images, fake_images):
        alpha = tf.random.normal([batch_size, 1, 1, 1], 0.0, 1.0)
        diff = fake_images - real_images
        interpolated = real_images + alpha * diff
        with tf.GradientTape() as gp_tape:
            gp_tape.watch(interpolated)
            pred = self.discriminator(interpolated, training=True)
        grads = gp_tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
        return tf.reduce_mean((norm - 1.0) ** 2)
""", CLEAN, id="GF007-lookalike-gradient-penalty-watched"),
    pytest.param("GF007", "adversarial-method-converted-input", """
import tensorflow as tf
from tensorflow import keras

class AdversarialModel(keras.Model):
    def adversarial_examples(self, x, y, epsilon=0.01):
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(y, self(x, training=False))
        gradient = tape.gradient(loss, x)
        return x + epsilon * tf.sign(gradient)
""", FOUND, id="GF007-adversarial-method-converted-input"),
    # keras-io examples/generative/wgan_gp.py with `gp_tape.watch(interpolated)` removed: the interpolated
    # images are arithmetic with a `tf.random` tensor, so a tensor whatever the images are
    pytest.param("GF007", "gradient-penalty-unwatched", """
import tensorflow as tf
from tensorflow import keras

class WGAN(keras.Model):
    def gradient_penalty(self, batch_size, real_images, fake_images):
        alpha = tf.random.uniform([batch_size, 1, 1, 1], 0.0, 1.0)
        diff = fake_images - real_images
        interpolated = real_images + alpha * diff
        with tf.GradientTape() as gp_tape:
            pred = self.discriminator(interpolated, training=True)
        grads = gp_tape.gradient(pred, [interpolated])[0]
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
        return tf.reduce_mean((norm - 1.0) ** 2)
""", FOUND, id="GF007-gradient-penalty-unwatched"),
    pytest.param("GF007", "gradient-penalty-function-keras-random", """
import keras
import tensorflow as tf

def gradient_penalty(critic, real, fake):
    alpha = keras.random.uniform((tf.shape(real)[0], 1, 1, 1))
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        scores = critic(interpolated, training=True)
    grads = tape.gradient(scores, interpolated)
    return keras.ops.mean((keras.ops.norm(keras.ops.reshape(grads, (tf.shape(real)[0], -1)), axis=1) - 1.0) ** 2)
""", FOUND, id="GF007-gradient-penalty-function-keras-random"),
    pytest.param("GF007", "gradient-penalty-alias-mixed", """
import tensorflow as T
from keras import ops

class Critic:
    def penalty(self, real, fake):
        alpha = T.random.uniform([T.shape(real)[0], 1])
        mixed = alpha * real + (1 - alpha) * fake
        with T.GradientTape() as tape:
            score = self.critic(mixed, training=True)
        (grads,) = tape.gradient(score, [mixed])
        return ops.mean(ops.square(ops.sqrt(ops.sum(ops.square(grads), axis=1)) - 1.0))
""", FOUND, id="GF007-gradient-penalty-alias-mixed"),
    pytest.param("GF007", "lookalike-interpolated-with-numpy-weights", """
import numpy as np
import tensorflow as tf

def gradient_penalty(critic, real, fake):
    alpha = np.random.normal(size=(real.shape[0], 1))
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        scores = critic(interpolated, training=True)
    return tape.gradient(scores, interpolated)
""", CLEAN, id="GF007-lookalike-interpolated-with-numpy-weights"),
    pytest.param("GF007", "lookalike-intermediate-of-watched-input", """
import tensorflow as tf

x = tf.constant([1.0, 2.0])
with tf.GradientTape() as tape:
    tape.watch(x)
    h = x * 2.0
    y = tf.reduce_sum(h * h)
g = tape.gradient(y, h)
""", CLEAN, id="GF007-lookalike-intermediate-of-watched-input"),
    # --- GF008 --------------------------------------------------------------------------------
    pytest.param("GF008", "from-import-alias", """
import tensorflow as tf
from tensorflow import argmax as hard_argmax

loss_fn = tf.keras.losses.CategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y_onehot, tf.one_hot(hard_argmax(probs, axis=-1), depth=10))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF008-from-import-alias"),
    pytest.param("GF008", "method-self", """
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model
        self.loss_fn = tf.keras.losses.BinaryCrossentropy()

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            probs = self.model(x, training=True)
            loss = self.loss_fn(y, tf.cast(probs > 0.5, tf.float32))
        grads = tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF008-method-self"),
    pytest.param("GF008", "lookalike-argmax-of-one-hot-labels", """
import tensorflow as tf

def train_step(model, optimizer, x, y_one_hot):
    labels = tf.argmax(y_one_hot, axis=-1)
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=-1), labels), tf.float32))
    return loss, accuracy
""", CLEAN, id="GF008-lookalike-argmax-of-one-hot-labels"),
    pytest.param("GF008", "keras-train-step-helper", """
import tensorflow as tf
from tensorflow import keras

def hard_labels(probabilities):
    return tf.one_hot(tf.argmax(probabilities, axis=-1), depth=probabilities.shape[-1])

class Classifier(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            probabilities = self(x, training=True)
            loss = keras.losses.categorical_crossentropy(y, hard_labels(probabilities))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", FOUND, id="GF008-keras-train-step-helper"),
    # --- GF009 --------------------------------------------------------------------------------
    pytest.param("GF009", "function-instead-of-operator", """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    hits = tf.cast(tf.greater(scores, 0.0), tf.float32)
    loss = tf.reduce_mean(tf.square(hits - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-function-instead-of-operator"),
    pytest.param("GF009", "positional-int-cast", """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    bins = tf.cast(scores * 10.0, tf.int32)
    loss = tf.reduce_mean(tf.square(tf.cast(bins, tf.float32) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-positional-int-cast"),
    pytest.param("GF009", "string-int-cast", """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    bins = tf.cast(scores * 10.0, "int32")
    loss = tf.reduce_mean(tf.square(tf.cast(bins, "float32") - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-string-int-cast"),
    pytest.param("GF009", "module-alias", """
import tensorflow as T

with T.GradientTape() as tape:
    scores = model(x, training=True)
    loss = T.reduce_mean(T.square(T.round(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-module-alias"),
    pytest.param("GF009", "from-import-alias", """
import tensorflow as tf
from tensorflow.math import round as hard_round

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(hard_round(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-from-import-alias"),
    pytest.param("GF009", "helper-function", """
import tensorflow as tf

def binarize(t):
    return tf.cast(t > 0.0, tf.float32)

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(binarize(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-helper-function"),
    pytest.param("GF009", "method-self", """
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = tf.reduce_mean(tf.square(tf.round(scores) - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF009-method-self"),
    pytest.param("GF009", "loss-subclass", """
import tensorflow as tf

class RoundedLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.round(y_pred) - y_true))

model.compile(optimizer="adam", loss=RoundedLoss())
""", FOUND, id="GF009-loss-subclass"),
    pytest.param("GF009", "closure", """
import tensorflow as tf

def train_step(x, y):
    def hard(t):
        return tf.round(t)
    with tf.GradientTape() as tape:
        scores = model(x, training=True)
        loss = tf.reduce_mean(tf.square(hard(scores) - y))
    grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-closure"),
    pytest.param("GF009", "lambda-helper", """
import tensorflow as tf

hard = lambda t: tf.round(t)
with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(hard(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-lambda-helper"),
    pytest.param("GF009", "lambda-helper-in-method-keras-ops", """
import keras
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        binarize = lambda scores, threshold: keras.ops.cast(scores > threshold, "float32")
        with tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = keras.ops.mean(keras.ops.square(binarize(scores, 0.5) - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", FOUND, id="GF009-lambda-helper-in-method-keras-ops"),
    pytest.param("GF009", "lookalike-lambda-straight-through", """
import tensorflow as tf

straight_through = lambda t: t + tf.stop_gradient(tf.round(t) - t)
with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(straight_through(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF009-lookalike-lambda-straight-through"),
    pytest.param("GF009", "lookalike-lambda-on-the-labels", """
import tensorflow as tf

hard = lambda t: tf.round(t)
with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(scores - hard(y)))
grads = tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF009-lookalike-lambda-on-the-labels"),
    pytest.param("GF009", "loop-over-layers", """
import tensorflow as tf

with tf.GradientTape() as tape:
    h = x
    for layer in model.layers:
        h = tf.round(layer(h))
    loss = tf.reduce_mean(tf.square(h - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-loop-over-layers"),
    pytest.param("GF009", "lookalike-argmax-beside-policy-loss", """
import tensorflow as tf

def policy_gradient_step(policy, optimizer, states, taken_actions, returns, num_actions):
    with tf.GradientTape() as tape:
        logits = policy(states, training=True)
        greedy = tf.argmax(logits, axis=-1)
        log_probs = tf.nn.log_softmax(logits)
        chosen = tf.reduce_sum(log_probs * tf.one_hot(taken_actions, num_actions), axis=-1)
        loss = -tf.reduce_mean(chosen * returns)
    grads = tape.gradient(loss, policy.trainable_variables)
    optimizer.apply_gradients(zip(grads, policy.trainable_variables))
    agreement = tf.reduce_mean(tf.cast(tf.equal(greedy, tf.cast(taken_actions, greedy.dtype)), tf.float32))
    return loss, agreement
""", CLEAN, id="GF009-lookalike-argmax-beside-policy-loss"),
    pytest.param("GF009", "keras-argsort-in-loss", """
import tensorflow as tf

def rank_loss(y_true, y_pred):
    ranks = tf.cast(tf.argsort(y_pred, axis=-1), tf.float32)
    return tf.reduce_mean(tf.square(ranks - y_true))

model.compile(optimizer="adam", loss=rank_loss)
""", FOUND, id="GF009-keras-argsort-in-loss"),
    pytest.param("GF009", "comparison-chosen-by-name", """
import tensorflow as tf

def within(y_true, y_pred, strict=True):
    compare = tf.math.less if strict else tf.math.less_equal
    return 1.0 - tf.reduce_mean(tf.cast(compare(tf.abs(y_true - y_pred), 0.5), tf.float32))

model.compile(optimizer="adam", loss=within)
""", FOUND, id="GF009-comparison-chosen-by-name"),
    pytest.param("GF009", "backend-op-as-lambda-layer", """
from tensorflow import keras
from tensorflow.keras import backend as K

model = keras.Sequential()
model.add(keras.Input(shape=(8,)))
model.add(keras.layers.Dense(5, activation="softmax"))
model.add(keras.layers.Lambda(K.argmax, arguments={"axis": -1}))
model.compile(optimizer="adam", loss="mse")
model.fit(x, y)
""", FOUND, id="GF009-backend-op-as-lambda-layer"),
    pytest.param("GF009", "model-built-and-returned-by-function", """
import tensorflow as tf
from tensorflow import keras

def build(encoder, head):
    inputs = keras.Input(shape=(8,))
    codes = keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1))(encoder(inputs))
    return keras.Model(inputs, head(codes))

combined = build(encoder, head)
combined.compile(optimizer="adam", loss="binary_crossentropy")
combined.train_on_batch(x, y)
""", FOUND, id="GF009-model-built-and-returned-by-function"),
    pytest.param("GF009", "custom-layer-trained-by-tape", """
import tensorflow as tf

class Snap(tf.keras.layers.Layer):
    def call(self, inputs):
        return tf.math.floor(inputs)

model = tf.keras.Sequential([tf.keras.layers.Dense(4), Snap(), tf.keras.layers.Dense(1)])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-custom-layer-trained-by-tape"),
    pytest.param("GF009", "star-imported-layers", """
import tensorflow as tf
from tensorflow.keras.layers import *
from tensorflow.keras.models import Model

inputs = Input(shape=(8,))
hidden = Dense(4)(inputs)
outputs = Lambda(lambda t: tf.round(t))(hidden)
model = Model(inputs, outputs)
model.compile(optimizer="adam", loss="mse")
model.fit(x, y)
""", FOUND, id="GF009-star-imported-layers"),
    pytest.param("GF009", "lookalike-lambda-mask-beside-its-input", """
import tensorflow as tf
from tensorflow import keras

inputs = keras.Input(shape=(8,))
hidden = keras.layers.Dense(4)(inputs)
gate = keras.layers.Lambda(lambda t: tf.cast(t > 0.0, tf.float32))(hidden)
gated = keras.layers.Multiply()([hidden, gate])
outputs = keras.layers.Dense(1)(gated)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""", CLEAN, id="GF009-lookalike-lambda-mask-beside-its-input"),
    pytest.param("GF009", "lookalike-argmax-in-metric-function", """
import tensorflow as tf
from tensorflow import keras

def hit_rate(y_true, y_pred):
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(y_pred, -1), tf.argmax(y_true, -1)), tf.float32))

model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=[hit_rate])
model.fit(x, y, epochs=1)
""", CLEAN, id="GF009-lookalike-argmax-in-metric-function"),
    pytest.param("GF009", "lookalike-custom-gradient-lambda-layer", """
import tensorflow as tf
from tensorflow import keras

@tf.custom_gradient
def round_through(t):
    def grad(dy):
        return dy
    return tf.round(t), grad

model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(4), keras.layers.Lambda(round_through), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""", CLEAN, id="GF009-lookalike-custom-gradient-lambda-layer"),
    pytest.param("GF009", "lookalike-layer-rounds-only-in-inference", """
import tensorflow as tf
from tensorflow import keras

class HardInference(keras.layers.Layer):
    def call(self, inputs, training=None):
        if training:
            return tf.sigmoid(inputs)
        return tf.round(tf.sigmoid(inputs))

model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(4), HardInference()])
model.compile(optimizer="adam", loss="binary_crossentropy")
model.fit(x, y, epochs=1)
""", CLEAN, id="GF009-lookalike-layer-rounds-only-in-inference"),
    pytest.param("GF009", "lookalike-argmax-layer-in-untrained-model", """
import tensorflow as tf
from tensorflow import keras

model = keras.Sequential([keras.Input(shape=(8,)), keras.layers.Dense(10), keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1))])
model.load_weights("weights.h5")
labels = model.predict(x)
""", CLEAN, id="GF009-lookalike-argmax-layer-in-untrained-model"),
    pytest.param("GF009", "lookalike-minimize-straight-through", """
import tensorflow as tf

w = tf.Variable(tf.zeros([4, 1]))

def loss_fn():
    p = tf.sigmoid(tf.matmul(x, w))
    hard = p + tf.stop_gradient(tf.round(p) - p)
    return tf.reduce_mean(tf.square(hard - y))

tf.keras.optimizers.SGD(0.1).minimize(loss_fn, var_list=[w])
""", CLEAN, id="GF009-lookalike-minimize-straight-through"),
    pytest.param("GF009", "lookalike-padding-mask-layer-on-ids", """
import tensorflow as tf
from tensorflow import keras

class PaddingMask(keras.layers.Layer):
    def call(self, ids):
        return tf.cast(tf.not_equal(ids, 0), tf.float32)

ids = keras.Input(shape=(20,), dtype="int32")
mask = PaddingMask()(ids)
embedded = keras.layers.Embedding(100, 8)(ids)
pooled = keras.layers.GlobalAveragePooling1D()(embedded * keras.layers.Reshape((20, 1))(mask))
outputs = keras.layers.Dense(1)(pooled)
model = keras.Model(ids, outputs)
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1)
""", CLEAN, id="GF009-lookalike-padding-mask-layer-on-ids"),
    pytest.param("GF009", "lookalike-float-cast-lambda-layer", """
from tensorflow import keras
from tensorflow.keras import backend as K

model = keras.Sequential()
model.add(keras.Input(shape=(8,)))
model.add(keras.layers.Dense(5))
model.add(keras.layers.Lambda(K.cast, arguments={"dtype": "float16"}))
model.compile(optimizer="adam", loss="mse")
model.fit(x, y)
""", CLEAN, id="GF009-lookalike-float-cast-lambda-layer"),
    pytest.param("GF009", "lookalike-argmax-output-beside-probabilities", """
import tensorflow as tf
from tensorflow import keras

inputs = keras.Input(shape=(8,))
probs = keras.layers.Dense(5, activation="softmax")(inputs)
labels = keras.layers.Lambda(lambda t: tf.argmax(t, axis=-1))(probs)
model = keras.Model(inputs, [probs, labels])
model.compile(optimizer="adam", loss=["categorical_crossentropy", None])
model.fit(x, y, epochs=1)
""", CLEAN, id="GF009-lookalike-argmax-output-beside-probabilities"),
    # --- GF010 --------------------------------------------------------------------------------
    pytest.param("GF010", "import-alias", """
import tensorflow as T
slope = T.Variable(2)
with T.GradientTape() as tape:
    y_pred = T.cast(slope, T.float32) * x
    loss = T.reduce_mean(T.square(y - y_pred))
grads = tape.gradient(loss, [slope])
""", FOUND, id="GF010-import-alias"),
    pytest.param("GF010", "method-self", """
import tensorflow as tf

class Scaler:
    def __init__(self):
        self.scale = tf.Variable(1.0, trainable=False)

    def step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(y - self.scale * x))
        return tape.gradient(loss, [self.scale])
""", FOUND, id="GF010-method-self"),
    pytest.param("GF010", "lookalike-frozen-base-trainable-sources", """
import tensorflow as tf
from tensorflow import keras

base_model = keras.applications.MobileNetV2(input_shape=(160, 160, 3), include_top=False, weights="imagenet")
base_model.trainable = False
inputs = keras.Input(shape=(160, 160, 3))
features = base_model(inputs, training=False)
features = keras.layers.GlobalAveragePooling2D()(features)
outputs = keras.layers.Dense(1)(features)
model = keras.Model(inputs, outputs)
optimizer = keras.optimizers.Adam(1e-4)
loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

def train_step(images, labels):
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(images, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
""", CLEAN, id="GF010-lookalike-frozen-base-trainable-sources"),
    pytest.param("GF010", "integer-variable-in-module", """
import tensorflow as tf

class Counter(tf.Module):
    def __init__(self):
        self.scale = tf.Variable(3, dtype=tf.int32)
        self.bias = tf.Variable(0.5)

    def train_step(self, x, y, optimizer):
        with tf.GradientTape() as tape:
            prediction = tf.cast(self.scale, tf.float32) * x + self.bias
            loss = tf.reduce_mean(tf.square(prediction - y))
        grads = tape.gradient(loss, [self.scale, self.bias])
        optimizer.apply_gradients(zip(grads, [self.scale, self.bias]))
""", FOUND, id="GF010-integer-variable-in-module"),
    # --- GF011 --------------------------------------------------------------------------------
    pytest.param("GF011", "import-alias", """
import tensorflow as T

class Classifier(T.keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = T.keras.layers.Dense(32, activation="relu")
        self.extra = T.keras.layers.Dense(32, activation="relu")
        self.out = T.keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))
""", FOUND, id="GF011-import-alias"),
    pytest.param("GF011", "from-import-alias", """
from tensorflow import keras
from tensorflow.keras.layers import Dense as FC

class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = FC(32, activation="relu")
        self.extra = FC(32, activation="relu")
        self.out = FC(1)

    def call(self, x):
        return self.out(self.hidden(x))
""", FOUND, id="GF011-from-import-alias"),
    pytest.param("GF011", "helper-method", """
from tensorflow import keras

class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(32, activation="relu")
        self.extra = keras.layers.Dense(32, activation="relu")
        self.out = keras.layers.Dense(1)

    def features(self, x):
        return self.hidden(x)

    def call(self, x):
        return self.out(self.features(x))
""", FOUND, id="GF011-helper-method"),
    pytest.param("GF011", "script-layer-kernel-only-as-source", """
import tensorflow as tf

dense = tf.keras.layers.Dense(16)
dense.build((None, 8))
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x) - y))
grads = tape.gradient(loss, [dense.kernel, dense.bias])
""", FOUND, id="GF011-script-layer-kernel-only-as-source"),
    pytest.param("GF011", "lookalike-input-spec", """
from tensorflow import keras

class ScaledDense(keras.layers.Layer):
    def __init__(self, units):
        super().__init__()
        self.input_spec = keras.layers.InputSpec(ndim=2)
        self.dense = keras.layers.Dense(units)

    def call(self, inputs):
        return self.dense(inputs) * 0.5
""", CLEAN, id="GF011-lookalike-input-spec"),
    # --- GF012 --------------------------------------------------------------------------------
    pytest.param("GF012", "method-self", """
import tensorflow as tf

class GAN:
    def train_step(self, images, noise):
        with tf.GradientTape() as gen_tape:
            fake = self.generator(noise, training=True)
            gen_loss = -tf.reduce_mean(self.discriminator(fake, training=True))
        with tf.GradientTape() as disc_tape:
            disc_loss = tf.reduce_mean(self.discriminator(fake, training=True)) - tf.reduce_mean(self.discriminator(images, training=True))
        disc_grads = gen_tape.gradient(disc_loss, self.discriminator.trainable_variables)
        gen_grads = gen_tape.gradient(gen_loss, self.generator.trainable_variables)
""", FOUND, id="GF012-method-self"),
    pytest.param("GF012", "import-alias", """
import tensorflow as T

def train_step(generator, discriminator, images, noise):
    with T.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = -T.reduce_mean(discriminator(fake, training=True))
    with T.GradientTape() as disc_tape:
        disc_loss = T.reduce_mean(discriminator(fake, training=True)) - T.reduce_mean(discriminator(images, training=True))
    disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
    gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
""", FOUND, id="GF012-import-alias"),
    pytest.param("GF012", "lookalike-two-tapes-in-turn", """
import tensorflow as tf

class GAN(tf.keras.Model):
    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        noise = tf.random.normal((batch_size, self.latent_dim))
        with tf.GradientTape() as d_tape:
            fake_images = self.generator(noise, training=False)
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            d_loss = self.d_loss_fn(real_logits, fake_logits)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))

        noise = tf.random.normal((batch_size, self.latent_dim))
        with tf.GradientTape() as g_tape:
            generated = self.generator(noise, training=True)
            g_loss = self.g_loss_fn(self.discriminator(generated, training=False))
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss}
""", CLEAN, id="GF012-lookalike-two-tapes-in-turn"),
    pytest.param("GF012", "ddpg-swapped-tapes", """
import tensorflow as tf

class Agent:
    def learn(self, states, actions, rewards, next_states):
        with tf.GradientTape() as critic_tape:
            target_actions = self.target_actor(next_states, training=True)
            y = rewards + self.gamma * self.target_critic([next_states, target_actions], training=True)
            critic_value = self.critic([states, actions], training=True)
            critic_loss = tf.reduce_mean(tf.square(y - critic_value))
        with tf.GradientTape() as actor_tape:
            new_actions = self.actor(states, training=True)
            actor_loss = -tf.reduce_mean(self.critic([states, new_actions], training=True))
        critic_grads = actor_tape.gradient(critic_loss, self.critic.trainable_variables)
        actor_grads = actor_tape.gradient(actor_loss, self.actor.trainable_variables)
        self.critic_optimizer.apply_gradients(zip(critic_grads, self.critic.trainable_variables))
        self.actor_optimizer.apply_gradients(zip(actor_grads, self.actor.trainable_variables))
""", FOUND, id="GF012-ddpg-swapped-tapes"),
    # --- GF013 --------------------------------------------------------------------------------
    pytest.param("GF013", "assign-add", """
import tensorflow as tf
class Accumulator(tf.keras.layers.Layer):
    def call(self, inputs):
        self.total.assign_add(tf.reduce_sum(inputs, axis=0, keepdims=True))
        return inputs * self.total
""", FOUND, id="GF013-assign-add"),
    pytest.param("GF013", "import-alias", """
import tensorflow as T
class Memory(T.keras.layers.Layer):
    def call(self, inputs):
        write = T.reduce_mean(inputs, axis=0, keepdims=True)
        self.memory.assign(0.9 * self.memory + 0.1 * write)
        return inputs * self.memory
""", FOUND, id="GF013-import-alias"),
    pytest.param("GF013", "lookalike-loss-tracker-after-step", """
import tensorflow as tf
from tensorflow import keras

class CustomModel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = keras.losses.mean_squared_error(y, y_pred)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}
""", CLEAN, id="GF013-lookalike-loss-tracker-after-step"),
    # keras-io's custom train_step with its `loss_tracker`, the tracker's value read back as the loss
    pytest.param("GF013", "loss-tracker-result-as-loss", """
import tensorflow as tf
from tensorflow import keras

class CustomModel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            self.loss_tracker.update_state(keras.losses.mean_squared_error(y, y_pred))
            loss = self.loss_tracker.result()
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", FOUND, id="GF013-loss-tracker-result-as-loss"),
    pytest.param("GF013", "lookalike-ema-weights-after-step", """
import tensorflow as tf

class EMATrainer:
    def __init__(self, network, ema_network, optimizer, ema=0.999):
        self.network = network
        self.ema_network = ema_network
        self.optimizer = optimizer
        self.ema = ema

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.network(x, training=True) - y))
        grads = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.network.trainable_weights))
        for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
            ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)
        return loss
""", CLEAN, id="GF013-lookalike-ema-weights-after-step"),
    pytest.param("GF013", "metric-result-as-loss", """
import tensorflow as tf
from tensorflow import keras

class Regressor(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mse = keras.metrics.MeanSquaredError()

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            self.mse.update_state(y, y_pred)
            loss = self.mse.result()
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", FOUND, id="GF013-metric-result-as-loss"),
    pytest.param("GF013", "lookalike-metric-result-reported-beside-the-loss", """
import tensorflow as tf
from tensorflow import keras

class Regressor(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mse = keras.metrics.MeanSquaredError()
        self.loss_fn = keras.losses.MeanSquaredError()

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.mse.update_state(y, y_pred)
        return {"loss": loss, "mse": self.mse.result()}
""", CLEAN, id="GF013-lookalike-metric-result-reported-beside-the-loss"),
    # --- GF014 --------------------------------------------------------------------------------
    pytest.param("GF014", "method-self", """
import tensorflow as tf

class Probe:
    def grad(self, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.constant(3.0)
        return tape.gradient(y, x)
""", FOUND, id="GF014-method-self"),
    pytest.param("GF014", "lookalike-zeros-for-unconnected", """
import tensorflow as tf

x = tf.linspace(0.0, 1.0, 32)
with tf.GradientTape() as tape:
    tape.watch(x)
    forcing = tf.constant(1.0)
d_forcing = tape.gradient(forcing, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
""", CLEAN, id="GF014-lookalike-zeros-for-unconnected"),
    pytest.param("GF014", "loss-of-labels-only", """
import tensorflow as tf

def train_step(model, optimizer, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.keras.losses.mean_squared_error(y, tf.ones_like(y)))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF014-loss-of-labels-only"),
    pytest.param("GF014", "keras-train-step-constant", """
import tensorflow as tf
from tensorflow import keras

class Model(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.zeros([1]))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return {"loss": loss}
""", FOUND, id="GF014-keras-train-step-constant"),
    # keras-io examples/generative/dcgan_overriding_train_step.py with the discriminator's loss computed from the
    # labels twice: `self.loss_fn` is what `compile` was given, a Keras loss, so the loss is a constant
    pytest.param("GF014", "loss-fn-from-compile-of-labels-only", """
import tensorflow as tf
from tensorflow import keras

class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real_images):
        batch_size = tf.shape(real_images)[0]
        generated_images = self.generator(tf.random.normal(shape=(batch_size, self.latent_dim)))
        combined_images = tf.concat([generated_images, real_images], axis=0)
        labels = tf.concat([tf.ones((batch_size, 1)), tf.zeros((batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, labels)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        return {"d_loss": d_loss}

gan = GAN(discriminator=discriminator, generator=generator, latent_dim=128)
gan.compile(
    d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
    g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
    loss_fn=keras.losses.BinaryCrossentropy(),
)
""", FOUND, id="GF014-loss-fn-from-compile-of-labels-only"),
    pytest.param("GF014", "loss-fn-from-compile-positional-keras-ops", """
import keras
import tensorflow as tf

class Distiller(keras.Model):
    def compile(self, optimizer, student_loss_fn):
        super().compile(optimizer=optimizer)
        self.student_loss_fn = student_loss_fn

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            student_predictions = self.student(x, training=True)
            loss = self.student_loss_fn(y, keras.ops.ones_like(y))
        gradients = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.student.trainable_variables))
        return {"loss": loss}

distiller = Distiller(student=student, teacher=teacher)
distiller.compile(keras.optimizers.Adam(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
""", FOUND, id="GF014-loss-fn-from-compile-positional-keras-ops"),
    pytest.param("GF014", "loss-object-on-self-from-init", """
import tensorflow as T

class Trainer:
    def __init__(self, model):
        self.model = model
        self.loss_object = T.keras.losses.MeanSquaredError()

    def train_step(self, x, y):
        with T.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_object(y, T.zeros_like(y))
        return tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF014-loss-object-on-self-from-init"),
    pytest.param("GF014", "lookalike-loss-fn-from-compile-reads-prediction", """
import tensorflow as tf
from tensorflow import keras

class GAN(keras.Model):
    def compile(self, d_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.loss_fn = loss_fn

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            predictions = self.discriminator(images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        return {"d_loss": d_loss}

gan = GAN()
gan.compile(d_optimizer=keras.optimizers.Adam(), loss_fn=keras.losses.BinaryCrossentropy())
""", CLEAN, id="GF014-lookalike-loss-fn-from-compile-reads-prediction"),
    pytest.param("GF014", "lookalike-loss-fn-from-compile-runs-the-model", """
import tensorflow as tf
from tensorflow import keras

class Trainer(keras.Model):
    def compile(self, optimizer, loss_fn):
        super().compile(optimizer=optimizer)
        self.loss_fn = loss_fn

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = self.loss_fn(x, y)
        gradients = tape.gradient(loss, self.net.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.net.trainable_variables))
        return {"loss": loss}

def loss_of_the_net(x, y):
    return tf.reduce_mean(tf.square(trainer.net(x) - y))

trainer = Trainer()
trainer.compile(optimizer=keras.optimizers.Adam(), loss_fn=loss_of_the_net)
""", CLEAN, id="GF014-lookalike-loss-fn-from-compile-runs-the-model"),
    # tensorflow/docs site/en/tutorials/reinforcement_learning/actor_critic.ipynb: the environment step is
    # NumPy code wrapped by `@tf.numpy_function`; the rewards it returns never carry a gradient.
    pytest.param("GF004", "lookalike-numpy-function-environment-step", """
import numpy as np
import tensorflow as tf

@tf.numpy_function(Tout=[tf.float32, tf.int32, tf.int32])
def env_step(action):
    state, reward, done, truncated, info = env.step(action)
    return (state.astype(np.float32), np.array(reward, np.int32), np.array(done, np.int32))

def run_episode(initial_state, model, max_steps):
    action_probs = tf.TensorArray(dtype=tf.float32, size=0, dynamic_size=True)
    rewards = tf.TensorArray(dtype=tf.int32, size=0, dynamic_size=True)
    state = initial_state
    for t in tf.range(max_steps):
        action_logits_t, value = model(tf.expand_dims(state, 0))
        action = tf.random.categorical(action_logits_t, 1)[0, 0]
        action_probs = action_probs.write(t, tf.nn.softmax(action_logits_t)[0, action])
        state, reward, done = env_step(action)
        rewards = rewards.write(t, reward)
    return action_probs.stack(), rewards.stack()

def train_step(initial_state, model, optimizer, max_steps):
    with tf.GradientTape() as tape:
        action_probs, rewards = run_episode(initial_state, model, max_steps)
        returns = tf.cast(tf.math.cumsum(rewards, reverse=True), tf.float32)
        loss = -tf.math.reduce_sum(tf.math.log(action_probs) * returns)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", CLEAN, id="GF004-lookalike-numpy-function-environment-step"),
    # A threshold on a NumPy copy of the prediction that only feeds the sample weights; the prediction
    # itself reaches the loss directly.
    pytest.param("GF004", "lookalike-numpy-threshold-for-sample-weights", """
import numpy as np
import tensorflow as tf

def train_step(model, optimizer, x, y, threshold=0.5):
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        hard = np.asarray(pred) > threshold
        sample_weight = np.where(hard, 2.0, 1.0)
        loss = tf.reduce_mean(sample_weight * tf.square(pred - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", CLEAN, id="GF004-lookalike-numpy-threshold-for-sample-weights"),
    # The same copy read by the threshold and by the loss: the loss loses its gradient.
    pytest.param("GF004", "numpy-copy-thresholded-and-in-the-loss", """
import numpy as np
import tensorflow as tf

def train_step(model, optimizer, x, y, threshold=0.5):
    with tf.GradientTape() as tape:
        pred = np.asarray(model(x, training=True))
        sample_weight = np.where(pred > threshold, 2.0, 1.0)
        loss = tf.reduce_mean(sample_weight * tf.square(pred - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF004-numpy-copy-thresholded-and-in-the-loss"),
    # tensorflow/docs site/en/guide/advanced_autodiff.ipynb: an early cell's `y = tf.Variable(3.0)`, then a
    # later cell that binds `y` to a layer's output (a call gradfix cannot type) before `y = layer2(y)`.
    pytest.param("GF005", "lookalike-notebook-name-rebound-by-a-call", """
import tensorflow as tf

# In[1]:
y = tf.Variable(3.0)
with tf.GradientTape() as tape:
    z = y * y
print(tape.gradient(z, y))

# In[2]:
x = tf.random.normal([7, 5])
layer1 = tf.keras.layers.Dense(8, activation=tf.nn.elu)
layer2 = tf.keras.layers.Dense(6, activation=tf.nn.elu)
with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
    tape.watch(x)
    y = layer1(x)
    y = layer2(y)
j = tape.batch_jacobian(y, x)

# In[3]:
bn = tf.keras.layers.BatchNormalization()
with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
    tape.watch(x)
    y = layer1(x)
    y = bn(y, training=True)
j = tape.jacobian(y, x)
""", CLEAN, id="GF005-lookalike-notebook-name-rebound-by-a-call"),
    # tensorflow/docs site/en/guide/core/mlp_core.ipynb: a step given a model of `tf.Variable`s through its
    # callers; the only non-trainable sign in the notebook is a later cell's reload of the exported model.
    pytest.param("GF006", "lookalike-another-model-loaded-later", """
import tensorflow as tf

# In[1]:
class DenseLayer(tf.Module):
    def __init__(self, out_dim):
        self.out_dim = out_dim
        self.built = False

    def __call__(self, x):
        if not self.built:
            self.w = tf.Variable(tf.random.normal((x.shape[1], self.out_dim)))
            self.b = tf.Variable(tf.zeros((self.out_dim,)))
            self.built = True
        return tf.matmul(x, self.w) + self.b

class MLP(tf.Module):
    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

mlp_model = MLP([DenseLayer(700), DenseLayer(10)])

# In[2]:
def train_step(x_batch, y_batch, loss, model, optimizer):
    with tf.GradientTape() as tape:
        batch_loss = loss(model(x_batch), y_batch)
    grads = tape.gradient(batch_loss, model.variables)
    optimizer.apply_gradients(grads, model.variables)
    return batch_loss

def train_model(mlp, train_data, loss, optimizer, epochs):
    for epoch in range(epochs):
        for x_batch, y_batch in train_data:
            train_step(x_batch, y_batch, loss, mlp, optimizer)

train_model(mlp_model, train_data, cross_entropy_loss, Adam(), epochs=10)

# In[3]:
save_path = os.path.join(tempfile.mkdtemp(), "mlp_model_export")
tf.saved_model.save(mlp_model, save_path)

# In[4]:
mlp_loaded = tf.saved_model.load(save_path)
test_classes = mlp_loaded(x_test)
""", CLEAN, id="GF006-lookalike-another-model-loaded-later"),
    # The same steps given a model with BatchNormalization through the same two calls: found.
    pytest.param("GF006", "model-through-callers", """
import tensorflow as tf

def train_step(x_batch, y_batch, loss, model, optimizer):
    with tf.GradientTape() as tape:
        batch_loss = loss(model(x_batch, training=True), y_batch)
    grads = tape.gradient(batch_loss, model.variables)
    optimizer.apply_gradients(zip(grads, model.variables))
    return batch_loss

def train_model(net, train_data, loss, optimizer, epochs):
    for epoch in range(epochs):
        for x_batch, y_batch in train_data:
            train_step(x_batch, y_batch, loss, net, optimizer)

network = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
train_model(network, train_data, tf.keras.losses.MeanSquaredError(), tf.keras.optimizers.Adam(), epochs=10)
""", FOUND, id="GF006-model-through-callers"),
    # The trainer is made: the model is followed through `self.model`'s assignment, the `self` it reads too.
    pytest.param("GF006", "method-self-trainer-made", """
import tensorflow as tf

class Trainer:
    def __init__(self):
        self.model = tf.keras.Sequential([tf.keras.Input(shape=(1,)), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
        self.optimizer = tf.keras.optimizers.SGD(0.01)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(y - self.model(x, training=True)))
        grads = tape.gradient(loss, self.model.variables)
        self.optimizer.apply_gradients(zip(grads, self.model.variables))
        return loss

trainer = Trainer()
for epoch in range(2):
    trainer.train_step(features, labels)
""", FOUND, id="GF006-method-self-trainer-made"),
    # A frozen variable the tape is told to watch: it gets its gradient.
    pytest.param("GF010", "lookalike-frozen-but-watched", """
import tensorflow as tf

x0 = tf.Variable(3.0, name="x0")
x1 = tf.Variable(3.0, name="x1", trainable=False)
with tf.GradientTape() as tape:
    tape.watch(x1)
    y = x0 ** 2 + x1 ** 2
grad = tape.gradient(y, [x0, x1])
""", CLEAN, id="GF010-lookalike-frozen-but-watched"),
    # Zeros asked for the unconnected sources: the frozen variable gets zeros, as asked, not None.
    pytest.param("GF010", "lookalike-zeros-for-unconnected", """
import tensorflow as tf

x0 = tf.Variable(3.0, name="x0")
x1 = tf.Variable(3.0, name="x1", trainable=False)
with tf.GradientTape() as tape:
    y = x0 ** 2 + x1 ** 2
grad = tape.gradient(y, [x0, x1], unconnected_gradients=tf.UnconnectedGradients.ZERO)
""", CLEAN, id="GF010-lookalike-zeros-for-unconnected"),
    # tensorflow/docs site/en/guide/autodiff.ipynb: a later cell watches another `x1` with another tape
    # named `tape`; this tape never watches the frozen variable.
    pytest.param("GF010", "frozen-watched-only-by-another-cells-tape", """
import tensorflow as tf

# In[1]:
x0 = tf.Variable(3.0, name="x0")
x1 = tf.Variable(3.0, name="x1", trainable=False)
with tf.GradientTape() as tape:
    y = x0 ** 2 + x1 ** 2
grad = tape.gradient(y, [x0, x1])

# In[2]:
x1 = tf.constant(2.0)
with tf.GradientTape() as tape:
    tape.watch(x1)
    z = x1 * x1
dz = tape.gradient(z, x1)
""", FOUND, id="GF010-frozen-watched-only-by-another-cells-tape"),
]


@pytest.mark.parametrize("code, variant, source, expected", ROWS)
def test_variant(code, variant, source, expected):
    rule = rule_by_code(code)
    findings = analyze(SourceFile(path="example.py", text=textwrap.dedent(source), encoding="utf-8"), [rule()])
    found = any(f.rule == code for f in findings)
    assert found == expected, f"{code} {'missed' if expected else 'reported'} the {variant} {'variant' if expected else 'look-alike'}"


def _normal_form(source: str) -> str:
    """The program's syntax tree, so that a copy differing only in layout or comments is still the same program."""
    return ast.dump(ast.parse(textwrap.dedent(source)))


def _examples() -> dict[str, str]:
    """Every rule's own VALID and INVALID example (tests/test_rule_examples.py runs them), by normal form."""
    found = {}
    for rule in all_rules():
        for index, code in enumerate(rule.VALID):
            found[_normal_form(code)] = f"{rule.code} VALID[{index}]"
        for index, example in enumerate(rule.INVALID):
            found[_normal_form(example.code)] = f"{rule.code} INVALID[{index}]"
    return found


def repeats(rows, examples: dict[str, str]) -> list[str]:
    """The rows whose program is a rule's own example or an earlier row's, however it is laid out."""
    seen = dict(examples)
    found = []
    for row in rows:
        form = _normal_form(row.values[2])
        if form in seen:
            found.append(f"{row.id} repeats {seen[form]}")
        seen.setdefault(form, row.id)
    return found


def test_no_row_repeats_a_rule_example_or_another_row():
    assert repeats(ROWS, _examples()) == []


def test_a_repeat_is_caught_however_it_is_laid_out():
    example = textwrap.dedent(rule_by_code("GF007").INVALID[0].code)
    # the same program indented, with a comment and spaces at the ends of its lines
    relaid = textwrap.indent(("# the rule's own example\n" + example).replace("\n", "  \n"), "    ")
    row = pytest.param("GF007", "relaid", relaid, FOUND, id="GF007-relaid")
    assert repeats([row], _examples()) == ["GF007-relaid repeats GF007 INVALID[0]"]
    assert repeats([ROWS[0], ROWS[0]], {}) == [f"{ROWS[0].id} repeats {ROWS[0].id}"]


def test_every_rule_has_variants_and_look_alikes():
    """Each rule code has a respelling of its bug that it finds and a clean program that it leaves alone, counting
    only the rows that pass (a variant marked as missed does not count)."""
    passing = [row.values for row in ROWS if not row.marks]
    for rule in all_rules():
        expectations = [expected for code, _, _, expected in passing if code == rule.code]
        assert FOUND in expectations, f"{rule.code} has no variant in the table"
        assert CLEAN in expectations, f"{rule.code} has no look-alike in the table"


@pytest.mark.parametrize("code, variant, source, expected", [row for row in ROWS if "# In[" in row.values[2]])
def test_variant_read_as_a_notebook(code, variant, source, expected, tmp_path):
    """A row written as ``# In[n]:`` cells is labelled alike when its cells are a notebook's, analysed as
    Jupyter runs them: one module, each cell after the ones before it."""
    from gradfix.notebook import read_notebook

    cells = [part.strip("\n") + "\n" for part in re.split(r"^# In\[\d*\]:\n", textwrap.dedent(source).lstrip("\n"), flags=re.M)]
    path = tmp_path / "example.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                            "source": cell.splitlines(keepends=True)} for cell in cells if cell.strip()],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    findings = analyze(read_notebook(str(path)).source(), [rule_by_code(code)()])
    found = any(f.rule == code for f in findings)
    assert found == expected, f"{code} {'missed' if expected else 'reported'} the {variant} notebook"


def _every_example():
    from gradfix.registry import all_rules

    for rule in all_rules():
        for index, invalid in enumerate(rule.INVALID):
            yield f"{rule.code}-invalid-{index}", textwrap.dedent(invalid.code)
    for row in ROWS:
        yield row.id, textwrap.dedent(row.values[2])


def test_one_cause_is_one_finding():
    """No span is reported by two rules: a stateful metric used as the loss is GF013's alone, not GF008's too."""
    doubled = []
    for name, source in _every_example():
        spans: dict[tuple, set[str]] = {}
        for finding in analyze(SourceFile(path="example.py", text=source, encoding="utf-8")):
            span = finding.span
            spans.setdefault((span.start_line, span.start_column, span.end_line, span.end_column), set()).add(finding.rule)
        doubled += [f"{name}: {sorted(rules)} at line {where[0]}" for where, rules in spans.items() if len(rules) > 1]
    assert not doubled, doubled
