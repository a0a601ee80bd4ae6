"""The accelerator path: on-device augmentation and training without TensorFlow."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_resnet_cifar.data import arrays, augment, input_pipeline
from tests import datagen
from tests.helpers import REPO

# Runs a tool with every "import tensorflow" failing, as on the GPU machine.
NO_TF = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ImportError("no tensorflow here")

    sys.meta_path.insert(0, NoTensorFlow())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def _numbered(batch=64):
    # Every pixel of image i holds (i, row, column): a crop's source is readable.
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    x = np.zeros((batch, 32, 32, 3), np.int32)
    x[..., 0] = np.arange(batch)[:, None, None]
    x[..., 1] = rows + 1
    x[..., 2] = cols + 1
    return x


def test_pad_crop_flip_crops_within_the_padding_and_flips_half():
    x = _numbered(400)
    out = keras.ops.convert_to_numpy(augment.pad_crop_flip(x, keras.random.SeedGenerator(3)))
    assert out.shape == x.shape
    assert np.array_equal(out[..., 0][out[..., 1] > 0], x[..., 0][out[..., 1] > 0])  # own image
    flips, offsets = 0, set()
    for img in out:
        rows = img[:, :, 1].max(axis=1)  # 0 only on padded rows
        cols = img[:, :, 2].max(axis=0)
        inside_r, inside_c = rows[rows > 0], cols[cols > 0]
        assert np.all(np.abs(np.diff(inside_r)) == 1) and np.all(np.abs(np.diff(inside_c)) == 1)
        flipped = inside_c[0] > inside_c[-1]
        flips += flipped
        # Output row k reads padded row dy + k, and padded row p is image row p - 4.
        leading_zeros = int(np.argmax(rows > 0))
        dy = int(inside_r[0]) - 1 + 4 - leading_zeros
        assert 0 <= dy <= 8
        offsets.add(dy)
        # At most 4 padded rows/columns: the crop stays within the padded image.
        assert (rows == 0).sum() <= 4 and (cols == 0).sum() <= 4
    assert 150 < flips < 250  # p = 1/2 over 400 images
    assert offsets == set(range(9))  # each image draws its own crop


def test_layer_is_identity_at_inference_and_random_in_training():
    x = _numbered(8).astype("uint8")
    layer = augment.RandomPadCropFlip(seed=1)
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x)), x.astype("float32"))
    a = keras.ops.convert_to_numpy(layer(x, training=True))
    b = keras.ops.convert_to_numpy(layer(x, training=True))
    assert a.dtype == np.float32 and not np.array_equal(a, b)


def test_same_transform_as_the_tf_pipeline():
    # Same family of outputs: every augmented image from either path is one of
    # the 81 x 2 crops and flips of its source.
    x = np.random.default_rng(0).integers(1, 256, (16, 32, 32, 3), dtype=np.uint8)
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)])

    def candidates(i):
        crops = [padded[i, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        return crops + [c[:, ::-1] for c in crops]

    ours = keras.ops.convert_to_numpy(augment.pad_crop_flip(x, keras.random.SeedGenerator(0)))
    theirs = input_pipeline.augment_batch(x, [0, 1]).numpy()
    for i in range(len(x)):
        for out in (ours[i], theirs[i]):
            assert any(np.array_equal(out, c) for c in candidates(i))


def test_npz_round_trip_and_errors(tmp_path):
    images, labels = datagen.images(20)
    data = arrays.Dataset(images, labels, None, None, [f"c{i}" for i in range(10)], "test")
    path = tmp_path / "d.npz"
    arrays.save_npz(data, str(path))
    back = arrays.load_npz(str(path))
    assert np.array_equal(back.train_images, data.train_images) and back.class_names == data.class_names
    assert back.test_images is None
    with pytest.raises(arrays.DataError, match="no such file"):
        arrays.load_npz(str(tmp_path / "missing.npz"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(arrays.DataError, match="not a readable .npz"):
        arrays.load_npz(str(tmp_path / "bad.npz"))
    np.savez(
        tmp_path / "gray.npz",
        train_images=np.zeros((2, 32, 32), np.uint8),
        train_labels=np.zeros(2, int),
        class_names=np.array(["a"]),
    )
    with pytest.raises(arrays.DataError, match=r"uint8 \[N, 32, 32, 3\]"):
        arrays.load_npz(str(tmp_path / "gray.npz"))


def _run_without_tf(*args, backend="jax"):
    env = {"KERAS_BACKEND": backend, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", NO_TF, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_jax_training_without_tensorflow(tmp_path):
    images, labels = datagen.images(96, num_classes=4)
    arrays.save_npz(
        arrays.Dataset(images, labels, images[:32], labels[:32], list("abcd"), "t"), str(tmp_path / "d.npz")
    )
    result = _run_without_tf(
        str(REPO / "tools" / "train_arrays.py"),
        f"--data={tmp_path / 'd.npz'}",
        "--n=1",
        "--epochs=4",
        "--batch_size=16",
        "--schedule=cosine",
        "--lr=0.05",
        "--validation_split=0.25",
        f"--model_dir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "backend jax" in result.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["backend"] == "jax" and metrics["steps"] == 4 * (72 // 16)
    assert {"val_accuracy", "test_accuracy", "train_accuracy"} <= set(metrics)
    assert metrics["test_accuracy"] > 0.25 + 0.2  # better than chance on 4 classes
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 4)


def test_tool_errors_are_one_line_without_tensorflow(tmp_path):
    result = _run_without_tf(
        str(REPO / "tools" / "train_arrays.py"), f"--data={tmp_path / 'no.npz'}", f"--model_dir={tmp_path / 'run'}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {tmp_path / 'no.npz'}: no such file"
    result = _run_without_tf(str(REPO / "tools" / "train_arrays.py"), "--depth=21")
    assert result.returncode == 2 and "--depth must be 6n+2" in result.stderr
