"""TensorFlow's own SavedModel loaders serve what `mnistgan export` writes."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf


def latest_checkpoint(run: Path) -> Path:
    name = (run / "checkpoints" / "latest").read_text().strip()
    return run / "checkpoints" / name


@pytest.fixture(scope="module")
def exported(mnistgan, tiny_run, tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("export") / "model"
    proc = mnistgan("export", "--savedmodel", model, "--run", tiny_run)
    assert "serving_default" in proc.stdout
    return model


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """Fixed noise drawn here, in Python, and saved for the Go side to read."""
    z = np.random.default_rng(2024).uniform(-1, 1, size=(7, 100)).astype(np.float32)
    path = tmp_path_factory.mktemp("noise") / "z.npy"
    np.save(path, z)
    return z, path


def go_images(mnistgan, tmp_path, z_path, *model_args) -> np.ndarray:
    """The images `mnistgan generate` makes from the noise in z_path."""
    out = tmp_path / "go.npy"
    mnistgan("generate", *model_args, "--z", z_path, "--npy", out)
    return np.load(out)


def test_savedmodel_layout(exported):
    assert (exported / "saved_model.pb").is_file()
    assert (exported / "variables" / "variables.index").is_file()
    assert (exported / "variables" / "variables.data-00000-of-00001").is_file()
    # Built beside the target and renamed: nothing hidden is left next to it.
    assert [p.name for p in exported.parent.iterdir()] == ["model"]


def test_tf_saved_model_load_finds_both_signatures(loaded):
    assert set(loaded.signatures) == {"serving_default", "discriminate"}

    gen = loaded.signatures["serving_default"]
    _, inputs = gen.structured_input_signature
    assert list(inputs) == ["z"]
    assert inputs["z"].dtype == tf.float32 and inputs["z"].shape.as_list() == [None, 100]
    assert list(gen.structured_outputs) == ["images"]
    assert gen.structured_outputs["images"].dtype == tf.float32
    assert gen.structured_outputs["images"].shape.as_list() == [None, 28, 28, 1]

    disc = loaded.signatures["discriminate"]
    _, inputs = disc.structured_input_signature
    assert list(inputs) == ["images"]
    assert inputs["images"].dtype == tf.float32 and inputs["images"].shape.as_list() == [None, 28, 28, 1]
    assert list(disc.structured_outputs) == ["probability"]
    assert disc.structured_outputs["probability"].shape.as_list() == [None, 1]


def test_serving_default_matches_mnistgan_generate(loaded, noise, mnistgan, tiny_run, exported, tmp_path):
    z, z_path = noise
    images = loaded.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.float32
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert np.abs(images[0] - images[1]).max() > 0, "different noise, same image"

    # The same noise through the checkpoint, restored into mnistgan's own graph...
    from_checkpoint = go_images(mnistgan, tmp_path, z_path, "--checkpoint", latest_checkpoint(tiny_run))
    np.testing.assert_allclose(images, from_checkpoint, rtol=0, atol=1e-5)
    # ...and through the SavedModel, loaded by TensorFlow's C++ loader from Go.
    from_model = go_images(mnistgan, tmp_path, z_path, "--model", exported)
    np.testing.assert_allclose(images, from_model, rtol=0, atol=1e-5)


def test_discriminate_scores_each_image_on_its_own(loaded, noise):
    z, _ = noise
    images = loaded.signatures["serving_default"](z=tf.constant(z))["images"]
    disc = loaded.signatures["discriminate"]
    p = disc(images=images)["probability"].numpy()
    assert p.shape == (7, 1) and p.dtype == np.float32
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    # Inference mode: no dropout (the same call twice agrees) and no batch
    # statistics (an image's score does not depend on the rest of its batch).
    np.testing.assert_array_equal(p, disc(images=images)["probability"].numpy())
    alone = disc(images=images[2:3])["probability"].numpy()
    np.testing.assert_allclose(alone, p[2:3], rtol=0, atol=1e-6)
    blank = disc(images=tf.zeros([1, 28, 28, 1]))["probability"].numpy()
    assert np.abs(blank - p[:1]).max() > 0, "the probability ignores the image"


def test_variables_are_the_checkpoints(loaded, tiny_run):
    reader = tf.train.load_checkpoint(str(latest_checkpoint(tiny_run) / "variables"))
    names = {v.name[: -len(":0")]: v for v in loaded.variables}
    model_keys = {k for k in reader.get_variable_to_shape_map() if k.startswith(("generator/", "discriminator/"))}
    assert set(names) == model_keys, "the model holds exactly the networks' variables, no optimizer state"
    for name, var in names.items():
        assert isinstance(var, tf.Variable)
        np.testing.assert_array_equal(var.numpy(), reader.get_tensor(name), err_msg=name)
    count = lambda prefix: sum(int(np.prod(v.shape)) for n, v in names.items() if n.startswith(prefix))
    assert count("discriminator/") == 4_311_553
    assert count("generator/") == 2_394_241
    trainable = {v.name[: -len(":0")] for v in loaded.variables if v.trainable}
    assert "generator/deconv1/bn/moving_mean" not in trainable
    assert "generator/deconv1/kernel" in trainable


def saved_model_cli(*args) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).parent / "saved_model_cli"
    proc = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_saved_model_cli_show_all(exported):
    out = saved_model_cli("show", "--all", "--dir", exported).stdout
    assert "MetaGraphDef with tag-set: 'serve'" in out
    assert "signature_def['serving_default']" in out
    assert "signature_def['discriminate']" in out
    for line in ["inputs['z'] tensor_info", "shape: (-1, 100)", "name: z:0",
                 "outputs['images'] tensor_info", "shape: (-1, 28, 28, 1)", "name: generate/images:0",
                 "inputs['images'] tensor_info", "name: images:0",
                 "outputs['probability'] tensor_info", "shape: (-1, 1)", "name: discriminate/probability:0",
                 "dtype: DT_FLOAT"]:
        assert line in out, line


def test_saved_model_cli_run_matches_mnistgan_generate(exported, noise, mnistgan, tiny_run, tmp_path):
    # saved_model_cli run goes through the TF 1 loader (a Session and the
    # SaverDef's restore op): a third loader, the one TF Serving's resembles.
    z, z_path = noise
    outdir = tmp_path / "cli"
    saved_model_cli("run", "--dir", exported, "--tag_set", "serve", "--signature_def", "serving_default",
                    "--inputs", f"z={z_path}", "--outdir", outdir)
    images = np.load(outdir / "images.npy")
    from_checkpoint = go_images(mnistgan, tmp_path, z_path, "--checkpoint", latest_checkpoint(tiny_run))
    np.testing.assert_allclose(images, from_checkpoint, rtol=0, atol=1e-5)


def test_generate_same_seed_same_digits(mnistgan, exported, tmp_path):
    def draw(name, seed):
        out = tmp_path / f"{name}.npy"
        mnistgan("generate", "--model", exported, "--n", 5, "--seed", seed, "--npy", out,
                 "--out", tmp_path / f"{name}.png", "--each", tmp_path / name)
        return np.load(out)

    a, b, c = draw("a", 9), draw("b", 9), draw("c", 10)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"digit-{i:04d}.png" for i in range(5)]
    # The PNG of one digit holds that digit's pixels, rounded to bytes.
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "a" / "digit-0003.png"))).numpy()
    assert png.shape == (28, 28, 1)
    assert np.abs(png.astype(np.float32) - np.round(a[3] * 255)).max() <= 1
