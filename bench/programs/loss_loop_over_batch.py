"""A custom loop whose loss loops over the batch in Python (512 iterations a step), with a bug: the learnt
temperature goes through NumPy (``np.exp(temperature.numpy())``) in the loop, so it gets no gradient (the model's variables do;
Keras warns and trains on). The shape of the public report behind issue 17: a custom loss looping in Python
over the batch, whose plain run took 5 s and ``gradfix diagnose`` 110 s."""
import numpy as np
import tensorflow as tf

BATCH = 512
STEPS = 3
tf.random.set_seed(0)
np.random.seed(0)
model = tf.keras.Sequential([tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(16, activation="relu"),
                             tf.keras.layers.Dense(1)])
temperature = tf.Variable(1.0, name="temperature")
optimizer = tf.keras.optimizers.SGD(1e-2)
x = np.random.rand(BATCH, 8).astype("float32")
y = np.random.rand(BATCH, 1).astype("float32")


def weighted_loss(y_true, y_pred):
    total = 0.0
    for i in range(BATCH):
        error = y_true[i] - y_pred[i]
        weight = 1.0 + 0.5 * tf.cast(y_true[i] > 0.5, tf.float32)
        scale = np.exp(temperature.numpy())
        total = total + weight * tf.square(error) / scale
    return tf.reduce_sum(total) / BATCH


variables = model.trainable_variables + [temperature]
for step in range(STEPS):
    with tf.GradientTape() as tape:
        prediction = model(x, training=True)
        loss = weighted_loss(y, prediction)
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    print(step, float(loss))
