"""GAIN training speed: the zoo's `model.fit` next to a bare Keras loop, in one run on one machine.

    python -m training.speed [--features 57] [--batch-size 128] [--steps 3000] [--repeats 3]

The bare loop is the textbook way to train GAIN with Keras: two `keras.Sequential` MLPs and a
`tf.function` train step (D step, then G step, same losses as `keraszoo.models.gain`) called from a
Python loop on batches of an in-memory `tf.data` pipeline. The zoo's number is `GAIN.fit_arrays` (that is,
`model.fit` with the default compile). Both run the same number of steps after a warm-up; the
two are timed in turns (bare, zoo, bare, zoo, ...) so that a slow spell of the machine hits both, every
timing is printed, and the best of `--repeats` is the headline (the least disturbed by other processes).
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def bare_keras_gain_steps_per_second(x, mask, batch_size, steps):
    import keras
    import tensorflow as tf

    from keraszoo.models.base import make_dataset

    d = x.shape[1]

    def mlp(activation):
        return keras.Sequential(
            [
                keras.Input((2 * d,)),
                keras.layers.Dense(d, "relu", kernel_initializer="glorot_normal"),
                keras.layers.Dense(d, "relu", kernel_initializer="glorot_normal"),
                keras.layers.Dense(d, activation, kernel_initializer="glorot_normal"),
            ]
        )

    generator, discriminator = mlp("sigmoid"), mlp(None)
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)

    @tf.function
    def step(xb, mb):
        z = tf.random.uniform(tf.shape(xb), 0.0, 0.01)
        hint = tf.cast(tf.random.uniform(tf.shape(mb)) < 0.9, tf.float32) * mb
        with tf.GradientTape() as g_tape:
            g = generator(tf.concat([mb * xb + (1 - mb) * z, mb], 1), training=True)
            x_hat = mb * xb + (1 - mb) * g
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                logits = discriminator(tf.concat([tf.stop_gradient(x_hat), hint], 1), training=True)
                d_loss = tf.reduce_mean(mb * tf.nn.softplus(-logits) + (1 - mb) * tf.nn.softplus(logits))
            d_opt.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables), discriminator.trainable_variables))
            logits = discriminator(tf.concat([x_hat, hint], 1), training=True)
            mse = tf.reduce_sum(tf.square(mb * (xb - g))) / tf.reduce_sum(mb)
            g_loss = tf.reduce_mean((1 - mb) * tf.nn.softplus(-logits)) + 100.0 * mse
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables), generator.trainable_variables))
        return d_loss, g_loss

    batches = iter(make_dataset(x, mask, batch_size))
    for _ in range(200):  # warm-up: tracing and the first optimizer steps
        step(*next(batches))
    start = time.perf_counter()
    for _ in range(steps):
        d_loss, g_loss = step(*next(batches))
    float(g_loss)  # wait for the last step
    return steps / (time.perf_counter() - start)


def zoo_gain_steps_per_second(x, mask, batch_size, steps):
    from keraszoo.models.gain import GAIN

    model = GAIN()
    model.fit_arrays(x, mask, iterations=200, batch_size=batch_size)  # warm-up: tracing
    start = time.perf_counter()
    model.fit_arrays(x, mask, iterations=steps, batch_size=batch_size)
    return steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m training.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=57, help="columns (57 = Spambase)")
    parser.add_argument("--rows", type=int, default=4601)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    if args.repeats < 1 or args.steps < 1:
        parser.error("--repeats and --steps must be positive")
    rng = np.random.default_rng(0)
    x = rng.random((args.rows, args.features)).astype(np.float32)
    mask = (rng.random(x.shape) >= 0.2).astype(np.float32)
    bare_runs, zoo_runs = [], []
    for _ in range(args.repeats):  # in turns, so a slow spell of the machine does not favour one side
        bare_runs.append(bare_keras_gain_steps_per_second(x, mask, args.batch_size, args.steps))
        zoo_runs.append(zoo_gain_steps_per_second(x, mask, args.batch_size, args.steps))
    bare, zoo = max(bare_runs), max(zoo_runs)
    print(f"GAIN, {args.features} features, batch {args.batch_size}, {args.steps} steps, best of {args.repeats}, {os.cpu_count()} cores")
    print(f"bare Keras loop      : {bare:8.1f} steps/s   (every run: {_runs(bare_runs)})")
    print(f"keraszoo model.fit   : {zoo:8.1f} steps/s   (every run: {_runs(zoo_runs)})")
    print(f"zoo / bare           : {zoo / bare:8.2f}")
    return bare, zoo


def _runs(values):
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    main()
