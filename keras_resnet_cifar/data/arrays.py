"""In-memory datasets as numpy arrays: the split, and ``.npz`` files.

Nothing here imports TensorFlow, so the JAX training path
(``device_train``) can use it on machines without TensorFlow.
"""

import dataclasses
import os
import zipfile

import numpy as np

from keras_resnet_cifar import errors

DataError = errors.DataError


@dataclasses.dataclass
class Dataset:
    """Decoded images (uint8, NHWC) and integer labels, with where they came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    class_names: list[str]
    source: str

    @property
    def num_classes(self):
        return len(self.class_names)

    def describe(self):
        """One line: source, split sizes, classes."""
        test = "no test split" if self.test_images is None else f"test {len(self.test_images):,}"
        names = ", ".join(self.class_names[:10]) + (", ..." if self.num_classes > 10 else "")
        return f"Loaded {self.source}: train {len(self.train_images):,}, {test}; {self.num_classes} classes ({names})"


def split_train_validation(images, labels, validation_split, seed):
    """A seeded split stratified by class (the paper's 45k/5k for 0.1).

    Returns:
        ``(train_images, train_labels, val_images, val_labels)``; the
        validation arrays are None when ``validation_split`` is 0.
    """
    if not 0 <= validation_split < 1:
        raise DataError(f"validation_split must be in [0, 1), not {validation_split}")
    if validation_split == 0:
        return images, labels, None, None
    rng = np.random.default_rng(seed)
    val_index = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = int(round(len(members) * validation_split))
        val_index.append(rng.permutation(members)[:take])
    val_index = np.sort(np.concatenate(val_index))
    train_mask = np.ones(len(labels), bool)
    train_mask[val_index] = False
    if not val_index.size or not train_mask.any():
        raise DataError(f"validation_split={validation_split} leaves an empty split")
    return images[train_mask], labels[train_mask], images[val_index], labels[val_index]


def save_npz(data, path):
    """Writes ``data`` (a ``Dataset``) to ``path`` as one ``.npz`` file, atomically."""
    from keras_resnet_cifar import files

    arrays = {
        "train_images": data.train_images,
        "train_labels": data.train_labels,
        "class_names": np.array(data.class_names),
    }
    if data.test_images is not None:
        arrays.update(test_images=data.test_images, test_labels=data.test_labels)
    files.write_npz(path, arrays)


def load_npz(path):
    """Reads a ``.npz`` written by ``save_npz`` (or by hand with the same keys).

    Raises:
        DataError: a missing or unreadable file, missing keys, or arrays of
            the wrong shape, type or label range.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:
        # numpy reads anything that is neither .npy nor .npz as a pickle, which
        # allow_pickle=False refuses; its advice to allow pickles is not ours to give.
        raise DataError(f"{path}: not a .npz file (nor .npy); pickled data is not read") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:  # EOFError: an empty file
        raise DataError(
            f"{path}: not a readable .npz file ({str(e).splitlines()[0][:200] if str(e) else type(e).__name__})"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not a .npz file of named arrays")
    with archive as f:
        content = {k: f[k] for k in f.files}
    missing = {"train_images", "train_labels", "class_names"} - set(content)
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(sorted(missing))}")
    names = [str(n) for n in content["class_names"]]
    splits = [("train", content["train_images"], content["train_labels"])]
    if "test_images" in content:
        splits.append(("test", content["test_images"], content.get("test_labels")))
    for split, images, labels in splits:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise DataError(
                f"{path}: {split}_images must be uint8 [N, 32, 32, 3], got {images.dtype} {list(images.shape)}"
            )
        if not len(images):
            raise DataError(f"{path}: {split}_images holds no images")
        if labels is None or labels.shape != (len(images),):
            raise DataError(f"{path}: {split}_labels must hold one label per image")
        if labels.dtype.kind not in "iu":
            # 0.5 would be truncated to class 0 and trained on: refused, not guessed.
            raise DataError(f"{path}: {split}_labels must be integer class numbers, got {labels.dtype}")
        if labels.min() < 0 or labels.max() >= len(names):
            raise DataError(f"{path}: {split} labels outside 0..{len(names) - 1}")
    test = splits[1][1:] if len(splits) > 1 else (None, None)
    return Dataset(
        content["train_images"],
        content["train_labels"].astype(np.int64),
        test[0],
        None if test[1] is None else test[1].astype(np.int64),
        class_names=names,
        source=f"arrays {path}",
    )
