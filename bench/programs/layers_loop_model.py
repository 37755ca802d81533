"""A custom loop over a model whose call loops in Python over many small layers (a residual stack of 64).
Clean: every variable gets a gradient."""
import numpy as np
import tensorflow as tf

DEPTH = 64
STEPS = 2
tf.random.set_seed(0)
np.random.seed(0)


class ResidualStack(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.blocks = [tf.keras.layers.Dense(8, activation="tanh") for _ in range(DEPTH)]
        self.head = tf.keras.layers.Dense(1)

    def call(self, inputs):
        h = inputs
        for block in self.blocks:
            update = block(h)
            h = h + 0.1 * update
        return self.head(h)


model = ResidualStack()
optimizer = tf.keras.optimizers.Adam(1e-3)
x = np.random.rand(32, 8).astype("float32")
y = np.random.rand(32, 1).astype("float32")
for step in range(STEPS):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    print(step, float(loss))
