"""Each rule's bug one step away from the surface form of its examples, and clean code that looks like it.

A row is (rule code, variant name, source, expected): FOUND when the rule must report the source,
CLEAN when it must not (a look-alike). The variants are those the project's issues name: the bug
moved into a helper function or a method, behind ``self``, into a closure, a loss factory, a
``keras.losses.Loss`` subclass or a lambda given to ``compile``, behind an import alias, under
``tape.stop_recording()``, through a rebuilt list of parameters or a helper that takes the tape,
a positional ``dtype``, an operator instead of a function. A variant a rule still misses is marked
``xfail(strict=True)`` with what the rule does not follow, so that catching it is noticed.
"""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from gradfix.engine import analyze
from gradfix.registry import rule_by_code
from gradfix.source import SourceFile

FOUND, CLEAN = True, False


def _missed(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


ROWS = [
    # --- GF001 --------------------------------------------------------------------------------
    pytest.param("GF001", "helper-forward", """
import tensorflow as tf

def forward(model, x):
    return model(x, training=True)

def train_step(model, optimizer, loss_fn, x, y):
    predictions = forward(model, x)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF001-helper-forward"),
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
    pytest.param("GF001", "stop-recording", """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        with tape.stop_recording():
            predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF001-stop-recording"),
    pytest.param("GF001", "rebuilt-params", """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    params = [v for v in model.trainable_variables]
    predictions = model(x, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, params)
    optimizer.apply_gradients(zip(grads, params))
""", FOUND, id="GF001-rebuilt-params"),
    pytest.param("GF001", "gradient-helper", """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(model, optimizer, loss_fn, x, y):
    predictions = model(x, training=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, predictions)
    grads = grads_of(tape, loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF001-gradient-helper"),
    pytest.param("GF001", "loop-over-layers", """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    h = x
    for layer in model.layers:
        h = layer(h)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, h)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", FOUND, id="GF001-loop-over-layers"),
    pytest.param("GF001", "lookalike-forward-helper-inside-tape", """
import tensorflow as tf

def forward(model, x):
    return model(x, training=True)

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = forward(model, x)
        loss = loss_fn(y, predictions)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", CLEAN, id="GF001-lookalike-forward-helper-inside-tape"),
    pytest.param("GF001", "lookalike-metric-under-stop-recording", """
import tensorflow as tf

def train_step(model, optimizer, loss_fn, x, y):
    with tf.GradientTape() as tape:
        predictions = model(x, training=True)
        loss = loss_fn(y, predictions)
        with tape.stop_recording():
            accuracy = tf.reduce_mean(tf.cast(tf.equal(y, tf.argmax(predictions, -1)), tf.float32))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
""", CLEAN, id="GF001-lookalike-metric-under-stop-recording"),
    pytest.param("GF001", "lookalike-target-network-outside", """
import tensorflow as tf

class Agent:
    def train_step(self, s, a, r, s2):
        target = r + 0.99 * tf.reduce_max(self.target_model(s2), axis=1)
        with tf.GradientTape() as tape:
            q = tf.reduce_sum(self.model(s) * tf.one_hot(a, 4), axis=1)
            loss = tf.reduce_mean(tf.square(target - q))
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", CLEAN, id="GF001-lookalike-target-network-outside"),
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
    pytest.param("GF002", "helper-method", """
import tensorflow as tf

class Trainer:
    def frozen(self, t):
        return tf.stop_gradient(t)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            logits = self.frozen(self.model(x, training=True))
            loss = self.loss_fn(y, logits)
        grads = tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF002-helper-method"),
    pytest.param("GF002", "loss-factory", """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - tf.stop_gradient(y_pred)))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""", FOUND, id="GF002-loss-factory"),
    pytest.param("GF002", "loss-subclass", """
import tensorflow as tf

class Frozen(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.square(y_true - tf.stop_gradient(y_pred)))

model.compile(optimizer="adam", loss=Frozen())
""", FOUND, id="GF002-loss-subclass"),
    pytest.param("GF002", "compile-lambda", """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.reduce_mean(tf.square(y - tf.stop_gradient(p))))
""", FOUND, id="GF002-compile-lambda"),
    pytest.param("GF002", "rebuilt-params", """
import tensorflow as tf

params = [v for v in model.trainable_variables]
with tf.GradientTape() as tape:
    logits = tf.stop_gradient(model(x, training=True))
    loss = loss_fn(y, logits)
grads = tape.gradient(loss, params)
""", FOUND, id="GF002-rebuilt-params"),
    pytest.param("GF002", "gradient-helper", """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

with tf.GradientTape() as tape:
    logits = tf.stop_gradient(model(x, training=True))
    loss = loss_fn(y, logits)
grads = grads_of(tape, loss, model.trainable_variables)
""", FOUND, id="GF002-gradient-helper"),
    pytest.param("GF002", "closure", """
import tensorflow as tf

def train_step(x, y):
    def forward():
        return tf.stop_gradient(model(x, training=True))
    with tf.GradientTape() as tape:
        logits = forward()
        loss = loss_fn(y, logits)
    grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF002-closure"),
    pytest.param("GF002", "loop-over-layers", """
import tensorflow as tf

with tf.GradientTape() as tape:
    h = x
    for layer in model.layers:
        h = tf.stop_gradient(layer(h))
    loss = loss_fn(y, h)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF002-loop-over-layers"),
    pytest.param("GF002", "lookalike-ste-helper", """
import tensorflow as tf

def straight_through(x):
    return x + tf.stop_gradient(tf.round(x) - x)

with tf.GradientTape() as tape:
    z = straight_through(encoder(images))
    loss = tf.reduce_mean(tf.square(decoder(z) - images))
grads = tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
""", CLEAN, id="GF002-lookalike-ste-helper"),
    pytest.param("GF002", "lookalike-loss-factory-stops-labels", """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.stop_gradient(y_true) - y_pred))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""", CLEAN, id="GF002-lookalike-loss-factory-stops-labels"),
    # --- GF003 --------------------------------------------------------------------------------
    pytest.param("GF003", "loss-factory", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

def make_loss():
    def loss(y_true, y_pred):
        hidden = model.layers[0](y_true)
        return tf.reduce_mean(tf.abs(hidden))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""", FOUND, id="GF003-loss-factory"),
    pytest.param("GF003", "loss-subclass", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

class HiddenLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        hidden = model.layers[0](y_true)
        return tf.reduce_mean(tf.abs(hidden))

model.compile(optimizer="adam", loss=HiddenLoss())
""", FOUND, id="GF003-loss-subclass"),
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
    pytest.param("GF003", "compile-lambda", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])
model.compile(optimizer="adam", loss=lambda y_true, y_pred: tf.reduce_mean(tf.abs(model.layers[0](y_true))))
""", FOUND, id="GF003-compile-lambda"),
    pytest.param("GF003", "lookalike-loss-subclass-uses-prediction", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)])

class L1Loss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.abs(y_true - y_pred))

model.compile(optimizer="adam", loss=L1Loss())
""", CLEAN, id="GF003-lookalike-loss-subclass-uses-prediction"),
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
    pytest.param("GF004", "loss-subclass", """
import numpy as np
import tensorflow as tf

class NumpyLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return np.mean(np.square(y_pred.numpy() - y_true))

model.compile(optimizer="adam", loss=NumpyLoss())
""", FOUND, id="GF004-loss-subclass"),
    pytest.param("GF004", "compile-lambda", """
import numpy as np
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: np.mean(np.square(p.numpy() - y)))
""", FOUND, id="GF004-compile-lambda"),
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
    pytest.param("GF004", "lookalike-numpy-augmentation-in-method", """
import numpy as np
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        x = np.flip(x, axis=1) + np.random.normal(0.0, 0.1, x.shape)
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_fn(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", CLEAN, id="GF004-lookalike-numpy-augmentation-in-method"),
    pytest.param("GF004", "lookalike-numpy-augmentation-helper", """
import numpy as np
import tensorflow as tf

def augment(images):
    return np.clip(images + np.random.normal(0.0, 0.1, images.shape), 0.0, 1.0)

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(augment(x), training=True)
            loss = self.loss_fn(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
""", CLEAN, id="GF004-lookalike-numpy-augmentation-helper"),
    pytest.param("GF004", "lookalike-numpy-logging-after-loss", """
import numpy as np
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_fn(y, pred)
        self.history.append(np.mean(pred.numpy()))
        grads = tape.gradient(loss, self.model.trainable_variables)
""", CLEAN, id="GF004-lookalike-numpy-logging-after-loss"),
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
    pytest.param("GF005", "lookalike-assign-sub", """
import tensorflow as tf

w = tf.Variable(tf.zeros([3, 1]))
for step in range(10):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w - y))
    dw = tape.gradient(loss, w)
    w.assign_sub(0.1 * dw)
""", CLEAN, id="GF005-lookalike-assign-sub"),
    pytest.param("GF005", "lookalike-rewrapped-variable", """
import tensorflow as tf

w = tf.Variable(tf.zeros([3, 1]))
for step in range(10):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w - y))
    dw = tape.gradient(loss, w)
    w = tf.Variable(w - 0.1 * dw)
""", CLEAN, id="GF005-lookalike-rewrapped-variable"),
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
    pytest.param("GF006", "rebuilt-params", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
params = [v for v in model.variables]
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = tape.gradient(loss, params)
optimizer.apply_gradients(zip(grads, params))
""", FOUND, id="GF006-rebuilt-params"),
    pytest.param("GF006", "gradient-helper", """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = grads_of(tape, loss, model.variables)
optimizer.apply_gradients(zip(grads, model.variables))
""", FOUND, id="GF006-gradient-helper"),
    pytest.param("GF006", "lookalike-tf-module-variables", """
import tensorflow as tf

class Linear(tf.Module):
    def __init__(self):
        self.w = tf.Variable(tf.random.normal([3, 1]))
        self.b = tf.Variable(tf.zeros([1]))

    def __call__(self, x):
        return x @ self.w + self.b

linear = Linear()
classifier = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization()])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(linear(x) - y))
grads = tape.gradient(loss, linear.variables)
optimizer.apply_gradients(zip(grads, linear.variables))
""", CLEAN, id="GF006-lookalike-tf-module-variables"),
    pytest.param("GF006", "lookalike-zeros-for-unconnected", """
import tensorflow as tf

model = tf.keras.Sequential([tf.keras.layers.Dense(16), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
grads = tape.gradient(loss, model.variables, unconnected_gradients="zero")
optimizer.apply_gradients(zip(grads, model.variables))
""", CLEAN, id="GF006-lookalike-zeros-for-unconnected"),
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
    pytest.param("GF007", "gradient-helper", """
import tensorflow as tf

def grads_of(tape, target, sources):
    return tape.gradient(target, sources)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    y = x * x
dy_dx = grads_of(tape, y, x)
""", FOUND, id="GF007-gradient-helper"),
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
    pytest.param("GF007", "lookalike-watch-in-helper", """
import tensorflow as tf

def watch_all(tape, tensors):
    for t in tensors:
        tape.watch(t)

x = tf.constant(3.0)
with tf.GradientTape() as tape:
    watch_all(tape, [x])
    y = x * x
dy_dx = tape.gradient(y, x)
""", CLEAN, id="GF007-lookalike-watch-in-helper"),
    pytest.param("GF007", "lookalike-alias-variable", """
import tensorflow as T
x = T.Variable(3.0)
with T.GradientTape() as tape:
    y = x * x
dy_dx = tape.gradient(y, x)
""", CLEAN, id="GF007-lookalike-alias-variable"),
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
    pytest.param("GF008", "helper-function", """
import tensorflow as tf

def hard_labels(p):
    return tf.one_hot(tf.argmax(p, axis=-1), depth=10)

loss_fn = tf.keras.losses.CategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y_onehot, hard_labels(probs))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF008-helper-function"),
    pytest.param("GF008", "compile-lambda", """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.keras.losses.binary_crossentropy(y, tf.round(p)))
""", FOUND, id="GF008-compile-lambda"),
    pytest.param("GF008", "loss-factory", """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.keras.losses.binary_crossentropy(y_true, tf.round(y_pred))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""", FOUND, id="GF008-loss-factory"),
    pytest.param("GF008", "lookalike-accuracy-beside-loss", """
import tensorflow as tf

loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
with tf.GradientTape() as tape:
    probs = model(x, training=True)
    loss = loss_fn(y, probs)
    correct = tf.reduce_mean(tf.cast(tf.equal(y, tf.argmax(probs, axis=-1)), tf.float32))
grads = tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF008-lookalike-accuracy-beside-loss"),
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
    pytest.param("GF009", "helper-method", """
import tensorflow as tf

class Trainer:
    def binarize(self, t):
        return tf.cast(t > 0.0, tf.float32)

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = tf.reduce_mean(tf.square(self.binarize(scores) - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF009-helper-method"),
    pytest.param("GF009", "method-self", """
import tensorflow as tf

class Trainer:
    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            scores = self.model(x, training=True)
            loss = tf.reduce_mean(tf.square(tf.round(scores) - y))
        grads = tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF009-method-self"),
    pytest.param("GF009", "loss-factory", """
import tensorflow as tf

def make_loss():
    def loss(y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.round(y_pred) - y_true))
    return loss

model.compile(optimizer="adam", loss=make_loss())
""", FOUND, id="GF009-loss-factory"),
    pytest.param("GF009", "loss-subclass", """
import tensorflow as tf

class RoundedLoss(tf.keras.losses.Loss):
    def call(self, y_true, y_pred):
        return tf.reduce_mean(tf.square(tf.round(y_pred) - y_true))

model.compile(optimizer="adam", loss=RoundedLoss())
""", FOUND, id="GF009-loss-subclass"),
    pytest.param("GF009", "compile-lambda", """
import tensorflow as tf

model.compile(optimizer="adam", loss=lambda y, p: tf.reduce_mean(tf.square(tf.round(p) - y)))
""", FOUND, id="GF009-compile-lambda"),
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
""", FOUND, id="GF009-lambda-helper", marks=_missed('GF009 does not follow a call into a lambda bound to a name')),
    pytest.param("GF009", "loop-over-layers", """
import tensorflow as tf

with tf.GradientTape() as tape:
    h = x
    for layer in model.layers:
        h = tf.round(layer(h))
    loss = tf.reduce_mean(tf.square(h - y))
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF009-loop-over-layers"),
    pytest.param("GF009", "lookalike-custom-gradient-ste", """
import tensorflow as tf

@tf.custom_gradient
def round_ste(t):
    def grad(dy):
        return dy
    return tf.round(t), grad

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(round_ste(scores) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF009-lookalike-custom-gradient-ste"),
    pytest.param("GF009", "lookalike-mask-from-labels", """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    mask = tf.cast(y > 0.5, tf.float32)
    loss = tf.reduce_mean(mask * tf.square(scores - y))
grads = tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF009-lookalike-mask-from-labels"),
    pytest.param("GF009", "lookalike-float-cast-positional", """
import tensorflow as tf

with tf.GradientTape() as tape:
    scores = model(x, training=True)
    loss = tf.reduce_mean(tf.square(tf.cast(scores, tf.float64) - y))
grads = tape.gradient(loss, model.trainable_variables)
""", CLEAN, id="GF009-lookalike-float-cast-positional"),
    # --- GF010 --------------------------------------------------------------------------------
    pytest.param("GF010", "import-alias", """
import tensorflow as T
slope = T.Variable(2)
with T.GradientTape() as tape:
    y_pred = T.cast(slope, T.float32) * x
    loss = T.reduce_mean(T.square(y - y_pred))
grads = tape.gradient(loss, [slope])
""", FOUND, id="GF010-import-alias"),
    pytest.param("GF010", "positional-dtype-initializer", """
import tensorflow as tf
counts = tf.Variable(tf.zeros([3], tf.int32))
with tf.GradientTape() as tape:
    y_pred = tf.reduce_sum(tf.cast(counts, tf.float32)) * x
    loss = tf.reduce_mean(tf.square(y - y_pred))
grads = tape.gradient(loss, [counts])
""", FOUND, id="GF010-positional-dtype-initializer"),
    pytest.param("GF010", "positional-trainable-false", """
import tensorflow as tf
scale = tf.Variable(2.0, False)
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - scale * x))
grads = tape.gradient(loss, [scale])
""", FOUND, id="GF010-positional-trainable-false"),
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
    pytest.param("GF010", "positional-string-dtype", """
import tensorflow as tf
counts = tf.Variable(tf.zeros([3], "int32"))
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - tf.reduce_sum(tf.cast(counts, tf.float32)) * x))
grads = tape.gradient(loss, [counts])
""", FOUND, id="GF010-positional-string-dtype"),
    pytest.param("GF010", "lookalike-float-positional", """
import tensorflow as tf
weights = tf.Variable(tf.zeros([3], tf.float32))
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - tf.reduce_sum(weights) * x))
grads = tape.gradient(loss, [weights])
""", CLEAN, id="GF010-lookalike-float-positional"),
    pytest.param("GF010", "lookalike-counter-not-a-source", """
import tensorflow as tf
step = tf.Variable(0, trainable=False)
w = tf.Variable(1.0)
with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(y - w * x))
grads = tape.gradient(loss, [w])
step.assign_add(1)
""", CLEAN, id="GF010-lookalike-counter-not-a-source"),
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
    pytest.param("GF011", "lookalike-kernel-read-directly", """
import tensorflow as tf
from tensorflow import keras

class Tied(keras.Model):
    def __init__(self):
        super().__init__()
        self.encoder = keras.layers.Dense(32)
        self.decoder_bias = tf.Variable(tf.zeros([784]))

    def call(self, x):
        h = self.encoder(x)
        return tf.matmul(h, self.encoder.kernel, transpose_b=True) + self.decoder_bias
""", CLEAN, id="GF011-lookalike-kernel-read-directly"),
    pytest.param("GF011", "lookalike-kernel-only", """
import tensorflow as tf
from tensorflow import keras

class Projector(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(16)
        self.dense.build((None, 8))

    def call(self, x):
        return tf.matmul(x, self.dense.kernel) + self.dense.bias
""", CLEAN, id="GF011-lookalike-kernel-only"),
    pytest.param("GF011", "lookalike-loop-over-layers", """
from tensorflow import keras

class Stack(keras.Model):
    def __init__(self):
        super().__init__()
        self.blocks = [keras.layers.Dense(32, activation="relu") for _ in range(3)]
        self.out = keras.layers.Dense(1)

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.out(x)
""", CLEAN, id="GF011-lookalike-loop-over-layers"),
    pytest.param("GF011", "lookalike-kernel-read-in-script", """
import tensorflow as tf

dense = tf.keras.layers.Dense(16)
dense.build((None, 8))
with tf.GradientTape() as tape:
    y = tf.matmul(x, dense.kernel) + dense.bias
    loss = tf.reduce_mean(tf.square(y))
grads = tape.gradient(loss, dense.trainable_variables)
""", CLEAN, id="GF011-lookalike-kernel-read-in-script"),
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
    pytest.param("GF012", "gradient-helper", """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(generator, discriminator, images, noise):
    with tf.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
    with tf.GradientTape() as disc_tape:
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    disc_grads = grads_of(gen_tape, disc_loss, discriminator.trainable_variables)
    gen_grads = grads_of(gen_tape, gen_loss, generator.trainable_variables)
""", FOUND, id="GF012-gradient-helper"),
    pytest.param("GF012", "lookalike-gradient-helper-right-tapes", """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(generator, discriminator, images, noise):
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    disc_grads = grads_of(disc_tape, disc_loss, discriminator.trainable_variables)
    gen_grads = grads_of(gen_tape, gen_loss, generator.trainable_variables)
""", CLEAN, id="GF012-lookalike-gradient-helper-right-tapes"),
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
    pytest.param("GF013", "metric-as-loss-method", """
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model
        self.mse = tf.keras.metrics.MeanSquaredError()

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.mse(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
""", FOUND, id="GF013-metric-as-loss-method"),
    pytest.param("GF013", "from-import-alias", """
import tensorflow as tf
from tensorflow.keras.metrics import MeanSquaredError as MSE

mse = MSE()
with tf.GradientTape() as tape:
    pred = model(x, training=True)
    loss = mse(y, pred)
grads = tape.gradient(loss, model.trainable_variables)
""", FOUND, id="GF013-from-import-alias"),
    pytest.param("GF013", "lookalike-counter-not-read", """
import tensorflow as tf
class Counting(tf.keras.layers.Layer):
    def call(self, inputs):
        self.calls.assign_add(1)
        return self.dense(inputs)
""", CLEAN, id="GF013-lookalike-counter-not-read"),
    pytest.param("GF013", "lookalike-metric-beside-loss", """
import tensorflow as tf

class Trainer:
    def __init__(self, model):
        self.model = model
        self.mse = tf.keras.metrics.MeanSquaredError()
        self.loss_fn = tf.keras.losses.MeanSquaredError()

    def train_step(self, x, y):
        with tf.GradientTape() as tape:
            pred = self.model(x, training=True)
            loss = self.loss_fn(y, pred)
        self.mse.update_state(y, pred)
        grads = tape.gradient(loss, self.model.trainable_variables)
""", CLEAN, id="GF013-lookalike-metric-beside-loss"),
    # --- GF014 --------------------------------------------------------------------------------
    pytest.param("GF014", "import-alias", """
import tensorflow as T
x = T.constant(2.0)
with T.GradientTape() as tape:
    tape.watch(x)
    y = T.constant(3.0)
dy_dx = tape.gradient(y, x)
""", FOUND, id="GF014-import-alias"),
    pytest.param("GF014", "method-self", """
import tensorflow as tf

class Probe:
    def grad(self, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.constant(3.0)
        return tape.gradient(y, x)
""", FOUND, id="GF014-method-self"),
    pytest.param("GF014", "lookalike-helper-of-watched", """
import tensorflow as tf

def square(t):
    return t * t

x = tf.constant(2.0)
with tf.GradientTape() as tape:
    tape.watch(x)
    y = square(x)
dy_dx = tape.gradient(y, x)
""", CLEAN, id="GF014-lookalike-helper-of-watched"),
    pytest.param("GF014", "lookalike-zeros-for-unconnected", """
import tensorflow as tf

x = tf.linspace(0.0, 1.0, 32)
with tf.GradientTape() as tape:
    tape.watch(x)
    forcing = tf.constant(1.0)
d_forcing = tape.gradient(forcing, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
""", CLEAN, id="GF014-lookalike-zeros-for-unconnected"),
]


@pytest.mark.parametrize("code, variant, source, expected", ROWS)
def test_variant(code, variant, source, expected):
    rule = rule_by_code(code)
    findings = analyze(SourceFile(path="example.py", text=textwrap.dedent(source), encoding="utf-8"), [rule()])
    found = any(f.rule == code for f in findings)
    assert found == expected, f"{code} {'missed' if expected else 'reported'} the {variant} {'variant' if expected else 'look-alike'}"


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


def test_every_rule_has_variants_and_look_alikes():
    codes = {row.values[0] for row in ROWS}
    for code in codes:
        rows = [row.values for row in ROWS if row.values[0] == code]
        assert any(expected for *_, expected in rows), f"{code} has no variant"
        assert any(not expected for *_, expected in rows), f"{code} has no look-alike"


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
