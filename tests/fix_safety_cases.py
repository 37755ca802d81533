"""Look-alikes of the rules' safe fixes where what a fix assumes does not hold (or holds): each says how its
rule's fixes must be labelled. Those marked ``program`` are whole programs; their safe fixes are run under
TensorFlow with the rules' examples (``tests/safe_fix_programs.py``).

The first cases are the harmful "safe" fixes seen on real code (issue 18): GF005's `x.assign(layer(x))` on a
name an earlier notebook cell bound to a `tf.Variable` and a later statement rebound to a tensor; GF006
rewriting a moving average's `zip(network.weights, ema_network.weights)`, and changing only the sources
when a two-argument step is given the variables apart.
"""

from __future__ import annotations

from dataclasses import dataclass

SAFE, UNSAFE, DISPLAY_ONLY = "safe", "unsafe", "display-only"
NO_FIX = "no fix"  # the rule reports it, with no fix (or none that could be applied)
CLEAN = "clean"  # the rule does not report it


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    code: str
    expect: str  # how every finding of ``rule`` is fixed: SAFE, UNSAFE, DISPLAY_ONLY, NO_FIX or CLEAN
    program: bool = False  # a whole program: its safe fixes are run under TensorFlow


CASES = [
    # --- GF005: the name holds a tf.Variable where it is rebound ---------------------------------------
    Case("GF005-notebook-name-rebound-to-a-tensor", "GF005", """
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
""", CLEAN, program=True),
    Case("GF005-later-cell-rebinds-the-variable", "GF005", """
import tensorflow as tf

# In[1]:
x = tf.Variable(tf.zeros([4, 1]))

# In[2]:
for step in range(3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(x - 1.0))
    g = tape.gradient(loss, x)
    x = x - 0.1 * g

# In[3]:
x = tf.random.normal([4, 1])
""", UNSAFE),
    Case("GF005-rebound-in-a-branch", "GF005", """
import tensorflow as tf

def fit(x, y, warm=None):
    w = tf.Variable(tf.zeros([3, 1]))
    if warm is not None:
        w = warm * 1.0
    for _ in range(5):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = tf.reduce_mean(tf.square(x @ w - y))
        w = w - 0.1 * tape.gradient(loss, w)
""", UNSAFE),
    # --- GF005: the new value has the variable's shape and dtype --------------------------------------
    Case("GF005-scalar-step-is-assigned-whole", "GF005", """
import numpy as np
import tensorflow as tf

x = np.random.rand(8, 3).astype("float32")
y = np.random.rand(8, 1).astype("float32")
w = tf.Variable(tf.zeros([3, 1]))
b = tf.Variable(tf.zeros([1]))
for step in range(3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w + b - y))
    dw, db = tape.gradient(loss, [w, b])
    w = w - 0.1 * dw
    b -= 0.1 * tf.reduce_mean(db)
""", SAFE, program=True),
    Case("GF005-learning-rate-a-constant", "GF005", """
import numpy as np
import tensorflow as tf

learning_rate = 0.05
x = np.random.rand(8, 3).astype("float32")
y = np.random.rand(8, 1).astype("float32")
w = tf.Variable(tf.zeros([3, 1]))
velocity = tf.zeros_like(w)
for step in range(3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(x @ w - y))
    grads = tape.gradient(loss, [w])
    velocity = 0.9 * velocity + grads[0]
    w = tf.clip_by_value(w - learning_rate * velocity, -1.0, 1.0)
""", SAFE, program=True),
    Case("GF005-learning-rate-of-unknown-shape", "GF005", """
import tensorflow as tf

w = tf.Variable(tf.zeros([3, 1]))

def fit(x, y, lr):
    global w
    for _ in range(5):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(x @ w - y))
        w = w - lr * tape.gradient(loss, w)
""", UNSAFE),
    Case("GF005-value-of-another-shape", "GF005", """
import tensorflow as tf

w = tf.Variable(tf.zeros([3, 1]))
for step in range(3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(w)
    g = tape.gradient(loss, w)
    w = tf.concat([w - 0.1 * g, tf.zeros([1, 1])], 0)
""", UNSAFE),
    # --- GF006: the list changed is the one the optimizer pairs with these gradients -------------------
    Case("GF006-moving-average-copy-of-the-weights", "GF006", """
import numpy as np
import tensorflow as tf
from tensorflow import keras

network = keras.Sequential([keras.layers.Input(shape=(4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                            keras.layers.Dense(1)])
ema_network = keras.models.clone_model(network)
optimizer = keras.optimizers.Adam()
x = np.random.rand(8, 4).astype("float32")
y = np.random.rand(8, 1).astype("float32")
for step in range(2):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(network(x, training=True) - y))
    gradients = tape.gradient(loss, network.weights)
    optimizer.apply_gradients(zip(gradients, network.weights))
    for weight, ema_weight in zip(network.weights, ema_network.weights):
        ema_weight.assign(0.99 * ema_weight + 0.01 * weight)
""", SAFE, program=True),
    Case("GF006-two-argument-step-of-its-own", "GF006", """
import tensorflow as tf
import keras

def sgd_step(grads, variables, lr=0.01):
    for grad, variable in zip(grads, variables):
        variable.assign_sub(lr * grad)

model = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization(), keras.layers.Dense(8),
                          keras.layers.BatchNormalization(), keras.layers.Dense(1)])
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.variables)
    sgd_step(grads, model.variables)
""", UNSAFE),
    # tensorflow/docs site/en/guide/core/mlp_core.ipynb writes its own Adam, whose `apply_gradients` takes
    # the gradients and the variables as two lists: changing the sources alone would misalign them.
    Case("GF006-optimizer-of-its-own-given-two-lists", "GF006", """
import tensorflow as tf

class Adam:
    def __init__(self, learning_rate=1e-3):
        self.learning_rate = learning_rate

    def apply_gradients(self, grads, vars):
        for d_var, var in zip(grads, vars):
            var.assign_sub(self.learning_rate * d_var)

model = tf.keras.Sequential([tf.keras.layers.Dense(8), tf.keras.layers.BatchNormalization(), tf.keras.layers.Dense(1)])
optimizer = Adam()
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.variables)
    optimizer.apply_gradients(grads, model.variables)
""", UNSAFE),
    Case("GF006-variables-given-apart", "GF006", """
import tensorflow as tf
import keras

model = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization(), keras.layers.Dense(8),
                          keras.layers.BatchNormalization(), keras.layers.Dense(1)])
optimizer = keras.optimizers.Adam()
update_variables = model.variables
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.variables)
    optimizer.apply(grads, update_variables)
""", DISPLAY_ONLY),
]
CASES += [
    Case("GF006-gradients-returned-to-the-caller", "GF006", """
import tensorflow as tf
from tensorflow import keras

def compute_gradients(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    return tape.gradient(loss, model.variables)

net = keras.Sequential([keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.Dense(1)])
optimizer = keras.optimizers.Adam()
for x, y in dataset:
    grads = compute_gradients(net, x, y)
    optimizer.apply_gradients(zip(grads, net.variables))
""", UNSAFE),
    Case("GF006-gradients-kept-on-the-trainer", "GF006", """
import tensorflow as tf
from tensorflow import keras

class Trainer:
    def __init__(self):
        self.model = keras.Sequential([keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.Dense(1)])
        self.optimizer = keras.optimizers.Adam()

    def compute(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(x, training=True) - y))
        self.grads = tape.gradient(loss, self.model.variables)

    def apply(self):
        self.optimizer.apply_gradients(zip(self.grads, self.model.variables))
""", NO_FIX),
    Case("GF006-gradients-kept-and-paired-with-another-spelling", "GF006", """
import tensorflow as tf
from tensorflow import keras

class Trainer:
    def __init__(self, net):
        self.model = net
        self.net = net
        self.optimizer = keras.optimizers.Adam()

    def compute(self, x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.model(x, training=True) - y))
        self.grads = tape.gradient(loss, self.model.variables)

    def apply(self):
        self.optimizer.apply_gradients(zip(self.grads, self.net.variables))

trainer = Trainer(keras.Sequential([keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.Dense(1)]))
""", UNSAFE),
    Case("GF006-module-list-read-by-a-helper", "GF006", """
import tensorflow as tf
from tensorflow import keras

model = keras.Sequential([keras.layers.Dense(8), keras.layers.BatchNormalization(), keras.layers.Dense(1)])
ema_model = keras.models.clone_model(model)
params = model.weights

def update_ema():
    for w, ema_w in zip(params, ema_model.weights):
        ema_w.assign(0.99 * ema_w + 0.01 * w)

for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, params)
    optimizer.apply_gradients(zip(grads, params))
    update_ema()
""", NO_FIX),
    Case("GF006-clipped-gradients-paired-in-sight", "GF006", """
import numpy as np
import tensorflow as tf
from tensorflow import keras

model = keras.Sequential([keras.layers.Input(shape=(4,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                          keras.layers.Dense(1)])
optimizer = keras.optimizers.Adam()
x = np.random.rand(8, 4).astype("float32")
y = np.random.rand(8, 1).astype("float32")
for step in range(2):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.variables)
    grads, norm = tf.clip_by_global_norm(grads, 1.0)
    print("step", step, "norm", float(norm))
    optimizer.apply_gradients(zip(grads, model.variables))
""", SAFE, program=True),
]

# --- GF004: the TensorFlow twin computes the same values, of the same shape, and its uses take a tensor --
_NUMPY_STEP = """
import numpy as np
import tensorflow as tf

x = np.random.rand(8, 4).astype("float32")
y = np.random.rand(8, 1)  # float64, as NumPy makes it
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)
for step in range(2):
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        LOSS
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    AFTER
"""


def _numpy_step(loss: str, after: str = "pass") -> str:
    return _NUMPY_STEP.replace("LOSS", loss).replace("AFTER", after)


CASES += [
    Case("GF004-tensor-first-float64-labels", "GF004",
         _numpy_step("loss = np.mean(np.square(np.subtract(pred.numpy(), y)), axis=0)"), SAFE, program=True),
    Case("GF004-float64-array-first", "GF004", _numpy_step("loss = tf.reduce_mean(np.add(y, pred) ** 2)"), UNSAFE),
    Case("GF004-matmul-of-a-vector", "GF004", _numpy_step("loss = tf.reduce_sum(np.matmul(pred, np.ones([1])))"), UNSAFE),
    Case("GF004-numpy-out-argument", "GF004", _numpy_step("loss = tf.reduce_mean(np.log(pred, buffer))"), NO_FIX),
    Case("GF004-masked-copy", "GF004",
         _numpy_step("err = pred.numpy() - y\n        loss = tf.reduce_mean(err[err > 0] ** 2)"), NO_FIX),
    Case("GF004-item-store-in-the-copy", "GF004",
         _numpy_step("err = pred.numpy() - y\n        err[0] = 0.0\n        loss = tf.reduce_mean(err ** 2)"), NO_FIX),
    Case("GF004-loss-rounded-for-the-log", "GF004",
         _numpy_step("loss = np.mean(np.square(pred.numpy() - y))", "print(round(loss, 4))"), NO_FIX),
    Case("GF004-sliced-copy", "GF004",
         _numpy_step("err = pred.numpy() - y\n        loss = tf.reduce_mean(err[:, 0] ** 2)", "print(f\"{float(loss):.4f}\")"),
         SAFE, program=True),
    # `predict` -> the model's call: training mode, the whole input at once, tensors where the code had arrays
    Case("GF004-predict-in-the-tape", "GF004",
         _numpy_step("loss = tf.reduce_mean(np.square(model.predict(x, verbose=0) - y))"), UNSAFE),
]

# --- GF008: the prediction passed instead of its argmax has the shape the loss expects ------------------
_CLASSES_STEP = """
import numpy as np
import tensorflow as tf

NUM_CLASSES = 5
x = np.random.rand(8, 6).astype("float32")
labels = np.random.randint(0, NUM_CLASSES, size=(8,))
model = tf.keras.Sequential([tf.keras.layers.Input(shape=(6,)), tf.keras.layers.Dense(16, activation="relu"),
                             tf.keras.layers.Dense(NUM_CLASSES, activation="softmax")])
optimizer = tf.keras.optimizers.Adam()
for step in range(2):
    with tf.GradientTape() as tape:
        probs = model(x, training=True)
        LOSS
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""

CASES += [
    Case("GF008-one-hot-depth-of-the-last-dense", "GF008", _CLASSES_STEP.replace("LOSS", (
        "loss = tf.keras.losses.categorical_crossentropy(tf.one_hot(labels, NUM_CLASSES), "
        "tf.one_hot(tf.argmax(probs, axis=-1), depth=NUM_CLASSES))")), SAFE, program=True),
    Case("GF008-sparse-argmax-on-the-last-axis", "GF008", _CLASSES_STEP.replace("LOSS", (
        "loss = tf.keras.losses.sparse_categorical_crossentropy(labels, tf.argmax(probs, -1))")), SAFE, program=True),
    Case("GF008-one-hot-depth-unseen", "GF008", _CLASSES_STEP.replace("LOSS", (
        "loss = tf.keras.losses.categorical_crossentropy(tf.one_hot(labels, 10), tf.one_hot(tf.argmax(probs, -1), 10))")),
         UNSAFE),
    Case("GF008-argmax-default-axis", "GF008", _CLASSES_STEP.replace("LOSS", (
        "loss = tf.keras.losses.sparse_categorical_crossentropy(labels, tf.argmax(probs))")), UNSAFE),
    Case("GF008-argmax-axis-one", "GF008", _CLASSES_STEP.replace("LOSS", (
        "loss = tf.keras.losses.sparse_categorical_crossentropy(labels, tf.argmax(probs, axis=1))")), UNSAFE),
]

# --- GF012: the tape asked instead recorded the loss and can still answer --------------------------------
_GAN = """
import numpy as np
import tensorflow as tf

generator = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(6)])
discriminator = tf.keras.Sequential([tf.keras.layers.Input(shape=(6,)), tf.keras.layers.Dense(1)])
g_opt, d_opt = tf.keras.optimizers.Adam(), tf.keras.optimizers.Adam()
images = np.random.rand(8, 6).astype("float32")
noise = np.random.rand(8, 4).astype("float32")
BODY
"""

CASES += [
    Case("GF012-other-tape-once-per-block", "GF012", _GAN.replace("BODY", """
for step in range(2):
    with tf.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
    with tf.GradientTape() as disc_tape:
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
    disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
    g_opt.apply_gradients(zip(gen_grads, generator.trainable_variables))
    d_opt.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
"""), SAFE, program=True),
    Case("GF012-two-calls-asking-the-other-tape", "GF012", _GAN.replace("BODY", """
for step in range(2):
    with tf.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
    with tf.GradientTape() as disc_tape:
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    gen_grads = disc_tape.gradient(gen_loss, generator.trainable_variables)
    disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
    g_opt.apply_gradients(zip(gen_grads, generator.trainable_variables))
    d_opt.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
"""), SAFE, program=True),
    Case("GF012-other-tape-outside-the-loop", "GF012", _GAN.replace("BODY", """
with tf.GradientTape() as gen_tape:
    fake = generator(noise, training=True)
    gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
with tf.GradientTape() as disc_tape:
    disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
for _ in range(3):
    disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
"""), UNSAFE),
    Case("GF012-other-tape-already-asked", "GF012", _GAN.replace("BODY", """
with tf.GradientTape() as gen_tape:
    fake = generator(noise, training=True)
    gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
with tf.GradientTape() as disc_tape:
    disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
penalty = disc_tape.gradient(disc_loss, images)
disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
"""), NO_FIX),
]

# --- GF001: the moved statements compute the same values, in the same order with all they share names with --
CASES += [
    Case("GF001-watch-of-what-the-forward-pass-computes", "GF001", """
import numpy as np
import tensorflow as tf

encoder = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(8, activation="relu")])
head = tf.keras.Sequential([tf.keras.layers.Input(shape=(8,)), tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(0.01)


def step(x, y):
    h = encoder(x)
    with tf.GradientTape() as tape:
        tape.watch(h)
        loss = tf.reduce_mean(tf.square(head(h) - y))
    variables = encoder.trainable_variables + head.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))


for _ in range(2):
    step(np.random.rand(8, 4).astype("float32"), np.random.rand(8, 1).astype("float32"))
""", SAFE, program=True),
]

# --- GF002: the stop_gradient is on no other gradient's path that still trains --------------------------
CASES += [
    Case("GF002-freeze-kept-for-another-gradient", "GF002", """
import numpy as np
import tensorflow as tf

encoder = tf.keras.Sequential([tf.keras.layers.Input(shape=(4,)), tf.keras.layers.Dense(8)])
probe = tf.keras.Sequential([tf.keras.layers.Input(shape=(8,)), tf.keras.layers.Dense(1)])
decoder = tf.keras.Sequential([tf.keras.layers.Input(shape=(8,)), tf.keras.layers.Dense(4)])
x = np.random.rand(8, 4).astype("float32")
y = np.random.rand(8, 1).astype("float32")
with tf.GradientTape(persistent=True) as tape:
    features = encoder(x)
    frozen = tf.stop_gradient(features)
    probe_loss = tf.reduce_mean(tf.square(probe(frozen) - y))
    total_loss = probe_loss + tf.reduce_mean(tf.square(decoder(features) - x))
encoder_grads = tape.gradient(total_loss, encoder.trainable_variables)
probe_check = tape.gradient(probe_loss, encoder.trainable_variables)
""", UNSAFE),
]

# --- GF007: the name watched holds a tensor on every path -----------------------------------------------
CASES += [
    Case("GF007-array-on-one-path", "GF007", """
import numpy as np
import tensorflow as tf

x = tf.constant([1.0, 2.0, 3.0])
if np.random.rand() > 0.5:
    x = np.array([1.0, 2.0, 3.0])
with tf.GradientTape() as tape:
    y = tf.reduce_sum(x * x)
g = tape.gradient(y, x)
""", CLEAN),
    Case("GF007-tensor-on-every-path", "GF007", """
import numpy as np
import tensorflow as tf

x = tf.constant([1.0, 2.0, 3.0])
if np.random.rand() > 0.5:
    x = tf.random.normal([3])
with tf.GradientTape() as tape:
    y = tf.reduce_sum(x * x)
g = tape.gradient(y, x)
print(g.numpy())
""", SAFE, program=True),
    # WGAN-GP's interpolated images (keras-io examples/generative/wgan_gp.py) made from NumPy images and a
    # `tf.random` tensor: a tensor, which the watch takes
    Case("GF007-interpolated-from-numpy-images", "GF007", """
import numpy as np
import tensorflow as tf

critic = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])

def gradient_penalty(real, fake):
    alpha = tf.random.uniform([real.shape[0], 1], 0.0, 1.0)
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        pred = critic(interpolated, training=True)
    grads = tape.gradient(pred, [interpolated])[0]
    return tf.reduce_mean((tf.norm(grads, axis=1) - 1.0) ** 2)

print(float(gradient_penalty(np.random.rand(8, 4).astype("float32"), np.random.rand(8, 4).astype("float32"))))
""", SAFE, program=True),
]
