"""CIFAR data from what a directory holds, read without TensorFlow where it can be.

Sources, chosen by ``load_dataset`` from what ``data_dir`` holds:

* an image folder: ``<root>/train/<class>/*.{png,jpg,jpeg}`` and optionally
  ``<root>/test/<class>/...`` (``../shared/cifar10-jpeg`` is one);
* the CIFAR "python version" batches: ``cifar-10-batches-py`` or
  ``cifar-100-python`` (also found in Keras's cache, ``~/.keras/datasets``);
* a ``.npz`` file as ``tools/to_npz.py`` writes it;
* a prepared tensorflow-datasets directory, or tfds's own download.

Images stay uint8 in memory (CIFAR-10 is 150 MB); the model normalises them
itself. TensorFlow decodes image files where it is installed, Pillow where
it is not (a JAX host without TensorFlow); tensorflow-datasets needs
TensorFlow.
"""

import glob
import os
import socket

import numpy as np

from keras_resnet_cifar import files
from keras_resnet_cifar.data import arrays, cifar_pickle
from keras_resnet_cifar.data.arrays import DataError, Dataset
from keras_resnet_cifar.models.presets import CIFAR10_CLASSES

IMAGE_SHAPE = (32, 32, 3)
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_CIFAR_HOST = "www.cs.toronto.edu"  # where tfds downloads CIFAR from
_OFFLINE_HINT = (
    "use --data_dir with an image folder (<root>/train/<class>/*.jpg, e.g. "
    "../shared/cifar10-jpeg), a cifar-10-batches-py / cifar-100-python "
    "directory, or a prepared tensorflow-datasets directory"
)


def load_dataset(dataset="cifar10", data_dir=None):
    """Loads CIFAR-10 or CIFAR-100 from the source ``data_dir`` holds.

    Args:
        dataset: "cifar10" or "cifar100" (names tfds and the batches layout;
            an image folder brings its own classes).
        data_dir: an image folder, a CIFAR batches directory, a ``.npz``
            file, or a prepared tfds directory. None: Keras's cache (``~/.keras/datasets``) when it
            holds the batches, else tensorflow-datasets with download.

    Returns:
        A ``Dataset``.

    Raises:
        DataError: with one line saying what is wrong and where.
    """
    if dataset not in ("cifar10", "cifar100"):
        raise DataError(f"dataset must be cifar10 or cifar100, not {dataset!r}")
    if data_dir is None:
        cached = _keras_cache_dir(dataset)
        if cached:
            return load_cifar_batches(cached)
        return load_tfds(dataset, None, download=True)
    data_dir = os.path.expanduser(data_dir)
    if data_dir.endswith(".npz"):
        return arrays.load_npz(data_dir)
    if not os.path.isdir(data_dir):
        raise DataError(f"--data_dir {data_dir} does not exist or is not a directory")
    for candidate in (data_dir, os.path.join(data_dir, _batches_name(dataset))):
        if _is_batches_dir(candidate):
            return load_cifar_batches(candidate)
    if os.path.isdir(os.path.join(data_dir, "train")):
        return load_image_folder(data_dir)
    if os.path.isdir(os.path.join(data_dir, dataset)):
        return load_tfds(dataset, data_dir, download=False)
    raise DataError(
        f"{data_dir} holds no known layout: expected train/<class>/ image folders, "
        f"{_batches_name(dataset)} batch files, or a tfds '{dataset}' directory"
    )


# --- image folders --------------------------------------------------------


def load_image_folder(root):
    """Reads ``root/train/<class>/*`` and, when present, ``root/test/<class>/*``.

    Class order: the CIFAR-10 label order when the folders are exactly the
    CIFAR-10 class names, else sorted folder names.
    """
    train_dir = os.path.join(root, "train")
    test_dir = os.path.join(root, "test")
    classes = _class_folders(train_dir)
    if set(classes) == set(CIFAR10_CLASSES):
        classes = list(CIFAR10_CLASSES)
    train = _read_split(train_dir, classes)
    test = (None, None)
    if os.path.isdir(test_dir):
        test_classes = _class_folders(test_dir)
        if set(test_classes) != set(classes):
            raise DataError(
                f"class folders differ between {train_dir} and {test_dir}: only in train "
                f"{sorted(set(classes) - set(test_classes))}, only in test "
                f"{sorted(set(test_classes) - set(classes))}"
            )
        test = _read_split(test_dir, classes)
    return Dataset(*train, *test, class_names=classes, source=f"image folder {root}")


def _class_folders(split_dir):
    if not os.path.isdir(split_dir):
        raise DataError(f"{split_dir} is not a directory")
    classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
    if not classes:
        raise DataError(f"{split_dir} has no class folders (expected {split_dir}/<class>/*.png)")
    return classes


def list_images(folder):
    """The .png/.jpg/.jpeg files of ``folder``, sorted by name."""
    return sorted(f for f in glob.glob(os.path.join(glob.escape(folder), "*")) if f.lower().endswith(_IMAGE_EXTENSIONS))


def _read_split(split_dir, classes):
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(split_dir, name)
        found = list_images(folder)
        if not found:
            raise DataError(f"class folder {folder} holds no .png/.jpg/.jpeg images")
        paths += found
        labels += [label] * len(found)
    return decode_files(paths), np.asarray(labels, np.int64)


def decode_files(paths):
    """Decodes image files (TensorFlow in parallel, else Pillow); on any failure, names the first bad file."""
    if not tensorflow_importable():
        return _decode_with_pillow(paths)
    import tensorflow as tf

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.ensure_shape(image, IMAGE_SHAPE)

    dataset = tf.data.Dataset.from_tensor_slices(paths).map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
    try:
        return np.concatenate(list(dataset.as_numpy_iterator()))
    except (tf.errors.OpError, ValueError):
        pass
    # The parallel decoder does not say which file failed: find it.
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError as e:
            raise DataError(f"cannot decode image {path}: {files.error_text(e)}") from None
        _check_shape(path, tuple(image.shape))
    raise DataError(f"decoding {len(paths)} images failed")  # pragma: no cover


def tensorflow_importable():
    """Whether ``import tensorflow`` works here (it is imported to find out)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _decode_with_pillow(paths):
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "decoding image files needs TensorFlow or Pillow, and neither is installed: pip install pillow"
        ) from None
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                decoded = np.asarray(image.convert("RGB"), np.uint8)
        except OSError as e:
            raise DataError(f"cannot decode image {path}: {e}") from None
        _check_shape(path, decoded.shape)
        images.append(decoded)
    return np.stack(images)


def _check_shape(path, shape):
    if tuple(shape) != IMAGE_SHAPE:
        raise DataError(f"image {path} is {shape[0]}x{shape[1]}, expected 32x32")


# --- CIFAR python batches -------------------------------------------------


def _batches_name(dataset):
    return "cifar-10-batches-py" if dataset == "cifar10" else "cifar-100-python"


def _is_batches_dir(path):
    return os.path.isfile(os.path.join(path, "batches.meta")) or (
        os.path.isfile(os.path.join(path, "meta")) and os.path.isfile(os.path.join(path, "train"))
    )


def _keras_cache_dir(dataset):
    path = os.path.join(os.path.expanduser("~/.keras/datasets"), _batches_name(dataset))
    return path if _is_batches_dir(path) else None


def _unpickle(path):
    return cifar_pickle.load(path)


def _batch_arrays(path, label_key):
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[label_key], np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"CIFAR batch file {path} has an unexpected layout: {e}") from None
    if len(images) != len(labels):
        raise DataError(f"CIFAR batch file {path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def load_cifar_batches(path):
    """Reads a ``cifar-10-batches-py`` or ``cifar-100-python`` directory."""
    if os.path.isfile(os.path.join(path, "batches.meta")):
        meta = _unpickle(os.path.join(path, "batches.meta"))
        names = [n.decode() for n in meta.get(b"label_names", [])]
        parts = [_batch_arrays(os.path.join(path, f"data_batch_{i}"), b"labels") for i in range(1, 6)]
        train = tuple(np.concatenate(a) for a in zip(*parts))
        test = _batch_arrays(os.path.join(path, "test_batch"), b"labels")
    else:
        meta = _unpickle(os.path.join(path, "meta"))
        names = [n.decode() for n in meta.get(b"fine_label_names", [])]
        train = _batch_arrays(os.path.join(path, "train"), b"fine_labels")
        test = _batch_arrays(os.path.join(path, "test"), b"fine_labels")
    if not names:
        raise DataError(f"{path}: the meta file lists no class names")
    for split, labels in (("train", train[1]), ("test", test[1])):
        if labels.min() < 0 or labels.max() >= len(names):
            raise DataError(f"{path}: {split} labels outside 0..{len(names) - 1}")
    return Dataset(*train, *test, class_names=names, source=f"CIFAR batches {path}")


# --- tensorflow-datasets --------------------------------------------------


def load_tfds(dataset, data_dir, download):
    """Reads ``dataset`` through tensorflow-datasets (train and test splits)."""
    import tensorflow_datasets as tfds

    if download and not _reachable(_CIFAR_HOST):
        # tfds would retry for minutes before failing the same way.
        raise DataError(
            f"tensorflow-datasets cannot download {dataset}: {_CIFAR_HOST} is unreachable "
            f"(no network?). Offline, {_OFFLINE_HINT}"
        )
    try:
        splits, info = tfds.load(
            dataset,
            split=["train", "test"],
            data_dir=data_dir,
            download=download,
            as_supervised=True,
            with_info=True,
        )
        (train_x, train_y), (test_x, test_y) = (_to_arrays(split) for split in splits)
    except Exception as e:  # tfds raises many kinds (network, missing files, ...)
        where = f"from {data_dir}" if data_dir else "(download)"
        raise DataError(
            f"tensorflow-datasets could not load {dataset} {where}: {files.error_text(e)}. Offline, {_OFFLINE_HINT}"
        ) from None
    names = list(info.features["label"].names)
    return Dataset(
        np.asarray(train_x, np.uint8),
        np.asarray(train_y, np.int64),
        np.asarray(test_x, np.uint8),
        np.asarray(test_y, np.int64),
        class_names=names,
        source=f"tensorflow-datasets {dataset}" + (f" in {data_dir}" if data_dir else ""),
    )


def _reachable(host, port=443, timeout=5.0):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _to_arrays(split):
    images, labels = [], []
    for x, y in split.batch(10_000).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)
