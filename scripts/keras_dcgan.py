#!/usr/bin/env python3
"""The seed DCGAN in Keras 3 on TensorFlow 2.18: the reference mnistgan is measured against.

Same networks (layers, sizes, Keras-default initialisers), same losses, same optimizers
(RMSprop with time-based decay, or Adam), same batch and the same alternating step as
`mnistgan train`: one discriminator update on B real and B generated images, then one
generator update through the frozen discriminator. The step is one compiled tf.function,
the idiomatic fast path in Keras (as in Keras' own DCGAN example); batches are drawn with
NumPy, as the seed did.

    keras_dcgan.py --data data/mnist --batch 64 --steps 20 --warmup 3 --threads 2

prints one JSON line: {"impl": "keras", "batch": ..., "steps_per_sec": ..., ...}.
"""
import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_images(data_dir: Path):
    import numpy as np

    path = data_dir / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        raw = f.read()
    count = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, 28, 28, 1)


def build(keras, layers):
    discriminator = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 5, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(0.4),
            layers.Conv2D(128, 5, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(0.4),
            layers.Conv2D(256, 5, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(0.4),
            layers.Conv2D(512, 5, strides=1, padding="same"),
            layers.LeakyReLU(0.2),
            layers.Dropout(0.4),
            layers.Flatten(),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.Input((100,)),
            layers.Dense(7 * 7 * 256),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.Reshape((7, 7, 256)),
            layers.Dropout(0.4),
            layers.UpSampling2D(),
            layers.Conv2DTranspose(128, 5, padding="same"),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.UpSampling2D(),
            layers.Conv2DTranspose(64, 5, padding="same"),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.Conv2DTranspose(32, 5, padding="same"),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(),
            layers.Conv2DTranspose(1, 5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    return discriminator, generator


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="directory with train-images-idx3-ubyte.gz")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20, help="timed steps, after the warm-up")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing, allocation)")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads, as mnistgan's --threads (0: one per core)")
    ap.add_argument("--optimizer", choices=["rmsprop", "adam"], default="rmsprop")
    ap.add_argument("--lr-d", type=float, default=2e-4)
    ap.add_argument("--lr-g", type=float, default=1e-4)
    ap.add_argument("--decay-d", type=float, default=6e-8)
    ap.add_argument("--decay-g", type=float, default=3e-8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    import keras
    from keras import layers

    keras.utils.set_random_seed(args.seed)
    images = load_images(args.data)
    discriminator, generator = build(keras, layers)

    def optimizer(lr, decay):
        schedule = keras.optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, decay_rate=decay)
        if args.optimizer == "adam":
            return keras.optimizers.Adam(schedule, epsilon=1e-7)
        return keras.optimizers.RMSprop(schedule, rho=0.9, epsilon=1e-7)

    d_opt, g_opt = optimizer(args.lr_d, args.decay_d), optimizer(args.lr_g, args.decay_g)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    batch = args.batch
    labels_d = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
    labels_g = tf.ones((batch, 1))
    noise_seed = keras.random.SeedGenerator(args.seed)

    def accuracy(logits, labels):
        return tf.reduce_mean(tf.cast(tf.equal(logits > 0, labels > 0.5), tf.float32))

    @tf.function
    def train_step(real_u8):
        real = tf.cast(real_u8, tf.float32) / 255.0
        # Update D on B real and B generated images.
        z = keras.random.uniform((batch, 100), -1.0, 1.0, seed=noise_seed)
        fake = generator(z, training=True)
        with tf.GradientTape() as tape:
            logits = discriminator(tf.concat([real, fake], axis=0), training=True)
            d_loss = bce(labels_d, logits)
        grads = tape.gradient(d_loss, discriminator.trainable_variables)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables))
        d_acc = accuracy(logits, labels_d)
        # Update G through the frozen D on fresh noise labelled real.
        z = keras.random.uniform((batch, 100), -1.0, 1.0, seed=noise_seed)
        with tf.GradientTape() as tape:
            logits = discriminator(generator(z, training=True), training=True)
            g_loss = bce(labels_g, logits)
        grads = tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables))
        return d_loss, d_acc, g_loss, accuracy(logits, labels_g)

    rng = np.random.default_rng(args.seed)

    def step():
        idx = rng.integers(0, len(images), size=batch)
        return [float(v) for v in train_step(images[idx])]

    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        metrics = step()
    elapsed = time.perf_counter() - start
    print(json.dumps({
        "impl": "keras",
        "batch": batch,
        "steps": args.steps,
        "seconds": elapsed,
        "steps_per_sec": args.steps / elapsed,
        "last": dict(zip(["d_loss", "d_acc", "g_loss", "g_acc"], metrics)),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
