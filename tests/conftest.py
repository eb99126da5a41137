"""Shared fixtures for the Python interop tests.

These tests check mnistgan's outputs with TensorFlow's and TensorBoard's own Python
readers. `make test` runs them with the project's virtualenv (third_party/venv) and
sets MNISTGAN_BIN to the freshly built binary and MNISTGAN_DATA to data/mnist.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _binary() -> Path:
    path = Path(os.environ.get("MNISTGAN_BIN", ROOT / "bin" / "mnistgan"))
    if not path.exists():
        pytest.fail(f"{path} does not exist; run `make build` (or `make test`) first")
    return path


@pytest.fixture(scope="session")
def mnistgan():
    """Runs bin/mnistgan with arguments; fails the test on a non-zero exit."""

    def run(*args, check=True):
        proc = subprocess.run([str(_binary()), *map(str, args)], capture_output=True, text=True)
        if check and proc.returncode != 0:
            pytest.fail(f"mnistgan {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("MNISTGAN_DATA", ROOT / "data" / "mnist"))
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"no MNIST in {path}; run `make data`")
    return path


@pytest.fixture(scope="session")
def tiny_run(mnistgan, data_dir, tmp_path_factory) -> Path:
    """A 4-step training run on a 256-image subset, shared by the session's tests."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    mnistgan("train", "--out", out, "--data", data_dir, "--subset", 256, "--batch", 8,
             "--steps", 4, "--sample-every", 2, "--checkpoint-every", 2, "--log-every", 1)
    return out
