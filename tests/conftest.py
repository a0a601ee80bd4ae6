"""Shared test set-up: the TensorFlow backend, quiet logs, a clean dtype policy, the shared data and runs."""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from tests import datagen, trainproc  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends under the default float32 policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """96 images of 4 classes: 72 for training (5 steps an epoch at batch 16), 24 for validation."""
    root = tmp_path_factory.mktemp("data")
    datagen.image_folder(root, trainproc.CLASSES[:4], per_class=24)
    return root


@pytest.fixture(scope="session")
def killed_run(data_dir, tmp_path_factory):
    """``(whole, killed)``: a deterministic run (``trainproc.KILLED_FLAGS``) and the same run killed in epoch 2.

    ``killed`` holds the backup of epoch 1 and one CSV row; tests copy it
    before they touch it. ``whole`` is finished (no export).
    """
    tmp = tmp_path_factory.mktemp("killed-run")
    whole, killed = tmp / "whole", tmp / "killed"
    out = trainproc.run(trainproc.cmd(data_dir, whole, *trainproc.KILLED_FLAGS, "--noexport"))
    assert out.returncode == 0, out.stderr[-3000:]
    trainproc.kill_at(trainproc.cmd(data_dir, killed, *trainproc.KILLED_FLAGS), "step8")  # 3 steps into epoch 2
    state = json.loads((killed / "backup" / "state.json").read_text())
    assert state == {"epoch": 1, "weights": "epoch-1.weights.h5"}
    return whole, killed
