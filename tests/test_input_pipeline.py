"""Tests of the data sources, the split and the augmentation."""

import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_resnet_cifar.data import arrays, sources
from keras_resnet_cifar.data import input_pipeline as ip
from tests import datagen

CIFAR10 = list(sources.CIFAR10_CLASSES)


def test_image_folder_sorted_classes_and_exact_pixels(tmp_path):
    x, y = datagen.image_folder(tmp_path, ["zebra", "apple", "mango"], per_class=3)
    data = sources.load_dataset("cifar10", str(tmp_path))
    assert data.class_names == ["apple", "mango", "zebra"]
    assert data.train_images.dtype == np.uint8 and data.train_images.shape == (9, 32, 32, 3)
    assert data.test_images is None
    # Files of class "zebra" (label 0 when written) now carry label 2.
    remap = {0: 2, 1: 0, 2: 1}
    order = np.argsort([remap[v] for v in y], kind="stable")
    np.testing.assert_array_equal(data.train_images, x[order])
    np.testing.assert_array_equal(data.train_labels, np.sort([remap[v] for v in y]))
    assert "image folder" in data.describe() and "train 9" in data.describe()


def test_image_folder_cifar10_names_keep_cifar_order(tmp_path):
    datagen.image_folder(tmp_path, CIFAR10[::-1], per_class=1, ext="jpg")
    datagen.image_folder(tmp_path, CIFAR10, per_class=1, split="test")
    data = sources.load_image_folder(str(tmp_path))
    assert data.class_names == CIFAR10
    assert len(data.test_images) == 10


def test_image_folder_errors(tmp_path):
    datagen.image_folder(tmp_path, ["a", "b"], per_class=2)
    bad = tmp_path / "train" / "b" / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(sources.DataError, match="cannot decode image .*broken.png") as error:
        sources.load_dataset("cifar10", str(tmp_path))
    # The file and the reason, without TensorFlow's graph internals.
    assert "{{" not in str(error.value) and "[Op:" not in str(error.value)
    assert str(error.value).startswith(f"cannot decode image {bad}: Unknown image file format. One of JPEG")
    assert str(error.value).endswith("required.")
    bad.unlink()
    tf.io.write_file(str(tmp_path / "train" / "a" / "big.png"), tf.io.encode_png(np.zeros((28, 28, 3), np.uint8)))
    with pytest.raises(sources.DataError, match="big.png is 28x28, expected 32x32"):
        sources.load_dataset("cifar10", str(tmp_path))
    (tmp_path / "train" / "a" / "big.png").unlink()
    os.makedirs(tmp_path / "train" / "empty")
    with pytest.raises(sources.DataError, match="class folder .*empty holds no"):
        sources.load_dataset("cifar10", str(tmp_path))
    os.rmdir(tmp_path / "train" / "empty")
    datagen.image_folder(tmp_path, ["a", "c"], per_class=1, split="test")
    with pytest.raises(sources.DataError, match=r"only in train \['b'\], only in test \['c'\]"):
        sources.load_dataset("cifar10", str(tmp_path))


def test_unknown_layout_and_missing_dir(tmp_path):
    with pytest.raises(sources.DataError, match="does not exist"):
        sources.load_dataset("cifar10", str(tmp_path / "nope"))
    with pytest.raises(sources.DataError, match="holds no known layout"):
        sources.load_dataset("cifar10", str(tmp_path))


def test_cifar10_batches(tmp_path):
    path, (train_x, train_y, test_x, test_y) = datagen.cifar10_batches(tmp_path)
    for data_dir in (path, str(tmp_path)):  # the directory itself or its parent
        data = sources.load_dataset("cifar10", data_dir)
        np.testing.assert_array_equal(data.train_images, train_x)
        np.testing.assert_array_equal(data.train_labels, train_y)
        np.testing.assert_array_equal(data.test_images, test_x)
        np.testing.assert_array_equal(data.test_labels, test_y)
        assert data.class_names == CIFAR10


def test_cifar100_batches(tmp_path):
    path, (train_x, train_y, _, test_y) = datagen.cifar100_batches(tmp_path)
    data = sources.load_dataset("cifar100", str(tmp_path))
    assert data.num_classes == 100 and data.class_names[7] == "c7"
    np.testing.assert_array_equal(data.train_images, train_x)
    np.testing.assert_array_equal(data.test_labels, test_y)


def test_truncated_batch_file(tmp_path):
    path, _ = datagen.cifar10_batches(tmp_path)
    target = os.path.join(path, "data_batch_3")
    with open(target, "rb") as f:
        head = f.read(100)
    with open(target, "wb") as f:
        f.write(head)
    with pytest.raises(sources.DataError, match="cannot read CIFAR batch file .*data_batch_3"):
        sources.load_dataset("cifar10", path)
    os.remove(target)
    with pytest.raises(sources.DataError, match="missing CIFAR batch file .*data_batch_3"):
        sources.load_dataset("cifar10", path)


def test_tfds_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        data = sources.load_tfds("cifar10", None, download=False)
    assert data.train_images.shape == (12, 32, 32, 3) and data.train_images.dtype == np.uint8
    assert data.num_classes == 10 and len(data.test_labels) == 12


def test_tfds_directory_without_data_names_offline_sources(tmp_path):
    os.makedirs(tmp_path / "cifar10")
    with pytest.raises(
        sources.DataError, match="could not load cifar10 .*Offline, use --data_dir with an image folder"
    ):
        sources.load_dataset("cifar10", str(tmp_path))


def test_no_network_fails_at_once_naming_offline_sources(monkeypatch):
    monkeypatch.setattr(sources, "_reachable", lambda *a, **k: False)
    monkeypatch.setattr(sources, "_keras_cache_dir", lambda dataset: None)
    with pytest.raises(sources.DataError, match="cannot download cifar100: .* unreachable .*Offline, use --data_dir"):
        sources.load_dataset("cifar100", None)


def test_keras_cache_is_used_when_present(tmp_path, monkeypatch):
    path, (train_x, _, _, _) = datagen.cifar10_batches(tmp_path)
    monkeypatch.setattr(os.path, "expanduser", lambda p: p.replace("~", str(tmp_path / "home")))
    os.makedirs(tmp_path / "home" / ".keras" / "datasets")
    os.rename(path, tmp_path / "home" / ".keras" / "datasets" / "cifar-10-batches-py")
    data = sources.load_dataset("cifar10", None)
    assert "CIFAR batches" in data.source and ".keras/datasets" in data.source
    np.testing.assert_array_equal(data.train_images, train_x)


def test_stratified_seeded_split():
    x, y = datagen.images(1000)
    tx, ty, vx, vy = arrays.split_train_validation(x, y, 0.1, seed=3)
    assert len(vx) == 100 and len(tx) == 900
    assert np.bincount(vy).tolist() == [10] * 10
    again = arrays.split_train_validation(x, y, 0.1, seed=3)
    np.testing.assert_array_equal(again[2], vx)
    other = arrays.split_train_validation(x, y, 0.1, seed=4)
    assert not np.array_equal(other[2], vx)

    # Disjoint and complete: every image is in exactly one split.
    def flat(a):
        return {bytes(r) for r in a.reshape(len(a), -1)}

    assert flat(tx).isdisjoint(flat(vx)) and len(flat(tx) | flat(vx)) == 1000
    assert arrays.split_train_validation(x, y, 0, seed=0)[2] is None


def _locate(crop, image):
    """(dy, dx, flipped) of the window of the padded image that equals crop."""
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    found = [
        (dy, dx, flip)
        for dy in range(9)
        for dx in range(9)
        for flip in (False, True)
        if np.array_equal(crop, (lambda w: w[:, ::-1] if flip else w)(padded[dy : dy + 32, dx : dx + 32]))
    ]
    assert len(found) == 1, found
    return found[0]


def test_augmentation_crops_flips_per_image():
    rng = np.random.default_rng(0)
    batch = rng.integers(1, 256, (64, 32, 32, 3), dtype=np.uint8)
    out = ip.augment_batch(tf.constant(batch), tf.constant([7, 1], tf.int64)).numpy()
    assert out.shape == batch.shape and out.dtype == np.uint8
    where = [_locate(o, b) for o, b in zip(out, batch)]  # each a window of its own padded image
    assert len(set(where)) > 30  # independent per image
    flips = [flip for _, _, flip in where]
    assert 15 < sum(flips) < 49
    again = ip.augment_batch(tf.constant(batch), tf.constant([7, 1], tf.int64)).numpy()
    np.testing.assert_array_equal(out, again)


def test_flip_rate_is_one_half():
    images = np.zeros((2048, 32, 32, 3), np.uint8)
    images[:, :, :16] = 255  # left half white: a flip moves it right
    out = ip.augment_batch(tf.constant(images), tf.constant([1, 2], tf.int64)).numpy()
    flipped = out[:, 16, 20, 0] > out[:, 16, 11, 0]
    assert 0.45 < flipped.mean() < 0.55


def test_train_dataset_keeps_labels_and_is_seeded():
    x, y = datagen.images(200)
    x = np.repeat((y * 20 + 10).astype(np.uint8)[:, None, None, None], 32 * 32 * 3).reshape(200, 32, 32, 3)
    first = list(ip.train_dataset(x, y, 32, seed=5).take(8).as_numpy_iterator())
    for images, labels in first:
        for image, label in zip(images, labels):
            values = set(np.unique(image)) - {0}  # zero padding shows at the edges
            assert values == {label * 20 + 10}
    second = list(ip.train_dataset(x, y, 32, seed=5).take(8).as_numpy_iterator())
    for (a, b), (c, d) in zip(first, second):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    # 8 batches of 32 cover 200 images once and go on into the next epoch.
    seen = np.concatenate([labels for _, labels in first])
    assert np.bincount(seen[:200] % 10).tolist() == [20] * 10


def test_eval_dataset_is_unaugmented_and_ordered():
    x, y = datagen.images(50)
    batches = list(ip.eval_dataset(x, y, 16).as_numpy_iterator())
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


class _Payload:
    """A pickle that, loaded with ``pickle.load``, opens (creates) a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_crafted_cifar_pickle_runs_nothing_and_is_one_line(tmp_path, protocol):
    import pickle

    path, _ = datagen.cifar10_batches(tmp_path)
    path = pathlib.Path(path)
    marker = tmp_path / "ran"
    with open(path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"cat"], b"hook": _Payload(str(marker))}, f, protocol=protocol)
    with pytest.raises(
        sources.DataError,
        match=r"batches.meta is not a CIFAR batch file: its pickle names io.open, which the CIFAR format never holds",
    ):
        sources.load_dataset("cifar10", str(path))
    assert not marker.exists()
    # The official format's own types load, at the protocol Python 2 wrote (numpy 1's module names too).
    with open(path / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in sources.CIFAR10_CLASSES], b"num_vis": 3072}, f, protocol=2)
    assert sources.load_dataset("cifar10", str(path)).class_names == list(sources.CIFAR10_CLASSES)


def test_cpu_input_threads_one_private_thread_no_autotune_same_batches(monkeypatch):
    from keras_resnet_cifar.training import machine

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(16) % 10
    stock = ip.train_dataset(images, labels, batch_size=4, seed=3).take(6)
    monkeypatch.setattr(machine, "has_gpu", lambda: False)
    tuned = machine.input_threads(stock)
    options = tuned.options()
    assert options.threading.private_threadpool_size == 1
    assert options.threading.max_intra_op_parallelism == 1
    assert options.autotune.enabled is False
    for (x, y), (tx, ty) in zip(stock, tuned, strict=True):
        np.testing.assert_array_equal(x.numpy(), tx.numpy())
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
    monkeypatch.setattr(machine, "has_gpu", lambda: True)
    assert machine.input_threads(stock) is stock
