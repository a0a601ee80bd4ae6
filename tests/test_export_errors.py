"""Exports and predictions fail in one line and leave nothing behind: full disks, foreign models, empty batches."""

import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet_cifar as krc
from keras_resnet_cifar import files
from keras_resnet_cifar.serving import export
from tests import fullfs, trainproc
from tests.helpers import REPO, run_tool


@pytest.fixture(scope="module")
def zoo_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "model.keras"
    files.save_model(krc.resnet_cifar(n=1), str(path))
    return path


@pytest.fixture(scope="module")
def sequential_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("foreign") / "model.keras"
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ],
        name="foreign",  # Keras numbers default names per process: "sequential_1" after another test's
    )
    files.save_model(model, str(path))
    return path


def test_an_empty_batch_gets_empty_outputs(tmp_path):
    path = export.export_saved_model(krc.resnet_cifar(n=1), str(tmp_path), warmup=False)
    signatures = tf.saved_model.load(path).signatures
    for name, inputs in (
        ("serving_default", {"image": tf.zeros([0, 32, 32, 3], tf.uint8)}),
        ("serving_bytes", {"image_bytes": tf.constant([], tf.string)}),
    ):
        out = signatures[name](**inputs)
        assert out["probabilities"].shape == (0, 10) and out["logits"].shape == (0, 10), name
        assert out["class_ids"].shape == (0,) and out["class_ids"].dtype == tf.int64, name
    # A batch of one still classifies as before.
    one = signatures["serving_default"](image=tf.zeros([1, 32, 32, 3], tf.uint8))
    assert one["probabilities"].shape == (1, 10)


def test_a_model_the_export_cannot_read_is_refused_before_anything_is_written(sequential_model, tmp_path):
    out = run_tool("export.py", f"--model={sequential_model}", f"--export_base={tmp_path / 'base'}")
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "error: 'foreign' is a Sequential; the export takes a functional keras.Model with one image input and "
        "one logits output, as the zoo builds (keras_resnet_cifar.resnet_cifar, resnet_imagenet): rebuild it as one"
    ]
    assert not (tmp_path / "base").exists() or os.listdir(tmp_path / "base") == []


def test_predict_says_what_model_it_needs(tmp_path):
    path = tmp_path / "model.keras"
    files.save_model(keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)]), str(path))
    np.save(tmp_path / "batch.npy", np.zeros((1, 32, 32, 3), np.uint8))
    out = run_tool("predict.py", f"--model={path}", f"--npy={tmp_path / 'batch.npy'}")
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: {path} takes (None, 8) and returns (None, 3); predict needs a classifier of [N, 32, 32, 3] images "
        "of 0..255 pixels to [N, classes], as the zoo's models are"
    ]


def test_export_on_a_full_disk_is_one_line_and_leaves_nothing(zoo_model, tmp_path):
    base = tmp_path / "base"
    cmd = [sys.executable, str(REPO / "tools" / "export.py"), f"--model={zoo_model}", f"--export_base={base}"]
    out, left = fullfs.run(cmd, base, "200k")
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"error: cannot write {base}/resnet8/1: ") and "No space left on device" in line
    assert left == []


@pytest.fixture(scope="module")
def two_class_data(tmp_path_factory):
    from tests import datagen

    root = tmp_path_factory.mktemp("data")
    datagen.image_folder(root, ["a", "b"], per_class=16)
    return root


def _train_cmd(data_dir, run, *extra):
    """``trainproc``'s run on 32 images of 2 classes: batch 8, 2 epochs, no export (later flags win)."""
    return trainproc.cmd(data_dir, run, "--batch_size=8", "--epochs=2", "--noexport", *extra)


@pytest.mark.parametrize(
    "size, backend",
    # 64k fills during the first epoch backup (h5py crashed the process there); 300k later.
    [("64k", "tensorflow"), ("64k", "torch"), ("64k", "jax"), ("96k", "torch"), ("300k", "tensorflow")],
)
def test_training_on_a_full_disk_is_one_line_and_keeps_the_run_directory_readable(
    two_class_data, tmp_path, size, backend
):
    run = tmp_path / "run"
    out, left = fullfs.run(_train_cmd(two_class_data, run, f"--backend={backend}"), run, size)
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.splitlines()  # no "Exception ignored" tracebacks from h5py, no crash
    assert line.startswith(f"error: cannot write {run}/") and "No space left on device" in line
    assert not [name for name in left if os.path.basename(name).startswith(".tmp-")]  # no half-written file


def test_a_disk_already_full_is_one_line_naming_the_path_and_leaves_no_lock(two_class_data, tmp_path):
    run = tmp_path / "run"
    filler = "dd if=/dev/zero of={run}/filler bs=4k 2>/dev/null; "
    script = f"mkdir -p {run}/run && {filler.format(run=run)}"
    cmd = ["sh", "-c", script + " ".join(map(str, _train_cmd(two_class_data, run / "run")))]
    out, left = fullfs.run(cmd, run, "64k")
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.splitlines()
    assert line == f"error: cannot write {run / 'run' / '.lock'}: No space left on device"
    assert "run/.lock" not in left
