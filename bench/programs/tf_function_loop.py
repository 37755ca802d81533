"""A ``tf.function`` step with a Python loop (an unrolled recurrence over 128 time steps: traced once in a plain
run, run eagerly under ``gradfix diagnose``). Clean: every variable gets a gradient."""
import numpy as np
import tensorflow as tf

TIME = 128
STEPS = 2
tf.random.set_seed(0)
np.random.seed(0)
cell = tf.keras.layers.Dense(16, activation="tanh")
readout = tf.keras.layers.Dense(1)
optimizer = tf.keras.optimizers.Adam(1e-3)
x = np.random.rand(TIME, 16, 4).astype("float32")
y = np.random.rand(16, 1).astype("float32")


@tf.function
def train_step(sequence, target):
    with tf.GradientTape() as tape:
        state = tf.zeros((16, 16))
        for t in range(TIME):
            state = cell(tf.concat([sequence[t], state], axis=1))
        loss = tf.reduce_mean(tf.square(readout(state) - target))
    variables = cell.trainable_variables + readout.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return loss


for step in range(STEPS):
    print(step, float(train_step(x, y)))
