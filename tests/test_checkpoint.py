"""TensorFlow's own checkpoint reader opens what mnistgan writes."""
from pathlib import Path

import numpy as np
import tensorflow as tf


def latest_checkpoint(run: Path) -> Path:
    name = (run / "checkpoints" / "latest").read_text().strip()
    return run / "checkpoints" / name


def test_checkpoint_opens_with_tf_train_load_checkpoint(tiny_run):
    ckpt = latest_checkpoint(tiny_run)
    assert ckpt.name == "ckpt-00000004"
    reader = tf.train.load_checkpoint(str(ckpt / "variables"))
    shapes = reader.get_variable_to_shape_map()

    # The seed's layers, under Keras-like names.
    assert shapes["generator/dense/kernel"] == [100, 12544]
    assert shapes["generator/deconv1/kernel"] == [5, 5, 128, 256]
    assert shapes["discriminator/conv4/kernel"] == [5, 5, 256, 512]
    assert shapes["discriminator/dense/kernel"] == [8192, 1]

    model = {n: s for n, s in shapes.items() if n.startswith(("generator/", "discriminator/"))}
    count = lambda prefix: sum(int(np.prod(s)) for n, s in model.items() if n.startswith(prefix))
    assert count("discriminator/") == 4_311_553
    assert count("generator/") == 2_394_241

    # Optimizer state travels with the weights: one RMSprop slot per trainable variable.
    assert "optimizer/discriminator/discriminator/conv1/kernel/rms" in shapes
    assert reader.get_tensor("optimizer/adversarial/iterations") == 4
    assert reader.get_tensor("optimizer/discriminator/iterations") == 4

    # Trained, finite weights; moving statistics have moved off their initial values.
    kernel = reader.get_tensor("generator/deconv1/kernel")
    assert np.isfinite(kernel).all() and kernel.std() > 0
    assert not np.allclose(reader.get_tensor("generator/deconv1/bn/moving_mean"), 0)
