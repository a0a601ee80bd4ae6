"""Small, learnable CIFAR-like data in every layout the loaders read."""

import os
import pickle

import numpy as np
import tensorflow as tf


def images(num, num_classes=10, seed=0, size=32):
    """uint8 images whose class shows in their colour, plus labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % num_classes
    colours = rng.integers(0, 256, (num_classes, 3))
    noise = rng.normal(0, 25, (num, size, size, 3))
    pixels = np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return pixels, labels.astype(np.int64)


def image_folder(root, classes, per_class, split="train", ext="png", seed=0, size=32):
    """Writes ``root/split/<class>/<i>.<ext>``; returns the images in file order."""
    x, y = images(per_class * len(classes), len(classes), seed, size)
    for name in classes:
        os.makedirs(os.path.join(root, split, name), exist_ok=True)
    for i, (img, label) in enumerate(zip(x, y)):
        encoded = tf.io.encode_png(img) if ext == "png" else tf.io.encode_jpeg(img, quality=100)
        tf.io.write_file(os.path.join(root, split, classes[label], f"{i:05d}.{ext}"), encoded)
    return x, y


def cifar10_batches(root, per_batch=20, seed=0):
    """Writes a cifar-10-batches-py directory; returns (train x, y, test x, y)."""
    path = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(path, exist_ok=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump(os.path.join(path, "batches.meta"), {b"label_names": names})
    train_x, train_y = images(per_batch * 5, 10, seed)
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        _dump(os.path.join(path, f"data_batch_{i + 1}"), _batch(train_x[part], train_y[part], b"labels"))
    test_x, test_y = images(per_batch, 10, seed + 1)
    _dump(os.path.join(path, "test_batch"), _batch(test_x, test_y, b"labels"))
    return path, (train_x, train_y, test_x, test_y)


def cifar100_batches(root, num=200, seed=0):
    """Writes a cifar-100-python directory; returns (train x, y, test x, y)."""
    path = os.path.join(root, "cifar-100-python")
    os.makedirs(path, exist_ok=True)
    _dump(os.path.join(path, "meta"), {b"fine_label_names": [f"c{i}".encode() for i in range(100)]})
    train_x, train_y = images(num, 100, seed)
    test_x, test_y = images(num // 2, 100, seed + 1)
    _dump(os.path.join(path, "train"), _batch(train_x, train_y, b"fine_labels"))
    _dump(os.path.join(path, "test"), _batch(test_x, test_y, b"fine_labels"))
    return path, (train_x, train_y, test_x, test_y)


def _batch(x, y, key):
    # The official layout: rows of 3072 bytes, all red, then green, then blue.
    return {b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), key: [int(v) for v in y]}


def _dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
