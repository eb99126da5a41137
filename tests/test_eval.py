"""`mnistgan eval`'s classifier is a SavedModel TensorFlow serves, and its figures
agree with an independent computation in NumPy and SciPy (the usual FID recipe,
scipy.linalg.sqrtm of the covariance product)."""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf


def read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


@pytest.fixture(scope="module")
def test_set(data_dir):
    images = read_idx(data_dir / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    labels = read_idx(data_dir / "t10k-labels-idx1-ubyte.gz", 8)
    return images.astype(np.float32) / 255, labels


@pytest.fixture(scope="module")
def classifier(mnistgan, data_dir, tmp_path_factory) -> Path:
    """A short-trained classifier: these tests check agreement, not accuracy."""
    path = tmp_path_factory.mktemp("classifier") / "classifier"
    mnistgan("eval", "--train-classifier", "--classifier-steps", 200, "--classifier", path, "--data", data_dir)
    return path


def classify(model, images: np.ndarray):
    fn = model.signatures["classify"]
    probs, feats = [], []
    for start in range(0, len(images), 1000):
        out = fn(images=tf.constant(images[start:start + 1000]))
        probs.append(out["probabilities"].numpy())
        feats.append(out["features"].numpy())
    return np.concatenate(probs).astype(np.float64), np.concatenate(feats).astype(np.float64)


def test_tensorflow_loads_the_classifier_and_it_is_as_accurate_as_recorded(classifier, test_set):
    model = tf.saved_model.load(str(classifier))
    assert set(model.signatures) == {"classify"}
    _, inputs = model.signatures["classify"].structured_input_signature
    assert inputs["images"].shape.as_list() == [None, 28, 28, 1]
    images, labels = test_set
    probs, feats = classify(model, images)
    assert probs.shape == (10000, 10) and feats.shape == (10000, 128)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    info = json.loads((classifier / "classifier.json").read_text())
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    assert abs(accuracy - info["test_accuracy"]) < 1e-4, (accuracy, info["test_accuracy"])


def inception_score(p: np.ndarray) -> float:
    marginal = p.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0).sum(axis=1)
    return float(np.exp(kl.mean()))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root.real))


def test_eval_figures_match_numpy_and_scipy(mnistgan, tiny_run, classifier, data_dir, test_set, tmp_path):
    report = tmp_path / "eval.json"
    mnistgan("eval", "--run", tiny_run, "--n", 600, "--seed", 9, "--classifier", classifier,
             "--data", data_dir, "--json", report)
    result = json.loads(report.read_text())
    # The same seed gives the same digits in generate and eval.
    digits = tmp_path / "digits.npy"
    mnistgan("generate", "--run", tiny_run, "--n", 600, "--seed", 9, "--npy", digits)

    model = tf.saved_model.load(str(classifier))
    probs, feats = classify(model, np.load(digits))
    _, test_feats = classify(model, test_set[0])
    generated = result["generated"]
    assert generated["images"] == 600
    assert generated["inception_score"] == pytest.approx(inception_score(probs), rel=1e-4)
    assert generated["frechet_distance"] == pytest.approx(frechet_distance(feats, test_feats), rel=1e-3)
    shares = np.bincount(probs.argmax(axis=1), minlength=10) / 600
    np.testing.assert_allclose(generated["class_shares"], shares, atol=1e-6)
    assert generated["mean_top_confidence"] == pytest.approx(probs.max(axis=1).mean(), rel=1e-5)
    # The ceiling: the last 10,000 training digits, which the classifier never saw.
    assert result["real_held_out"]["images"] == 10000
    assert result["real_held_out"]["inception_score"] > generated["inception_score"]
