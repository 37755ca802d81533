"""``fit`` with a custom ``train_step`` whose loss loops in Python over the batch, with a bug: each example's
prediction is rounded (``tf.round`` has no gradient), so the model's variables get none."""
import numpy as np
import tensorflow as tf

BATCH = 256
tf.random.set_seed(0)
np.random.seed(0)


class Scorer(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = tf.keras.layers.Dense(16, activation="relu")
        self.out = tf.keras.layers.Dense(1)

    def call(self, x):
        return self.out(self.hidden(x))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            pred = self(x, training=True)
            loss = 0.0
            for i in range(BATCH):
                score = tf.round(pred[i])
                loss = loss + tf.reduce_sum(tf.abs(score - y[i]))
            loss = loss / BATCH
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return {"loss": loss}


model = Scorer()
model.compile(optimizer="adam")
x = np.random.rand(BATCH * 2, 8).astype("float32")
y = np.random.rand(BATCH * 2, 1).astype("float32")
model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
print("done")
