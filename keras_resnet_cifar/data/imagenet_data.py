"""ImageNet input: an image folder or tfds ``imagenet2012``, decoded on the fly.

Nothing holds the dataset in memory: file names (or tfds records) stream
through parallel decoding and augmentation in tf.data.

* Training: random-resized crop (area 8%-100%, aspect 3/4-4/3) to the
  image size and a random horizontal flip (the torchvision recipe); or,
  with ``scale_augmentation``, the paper's: the shorter side resized to a
  random length in [256, 480], a random crop and a flip.
* Evaluation: the shorter side resized to 256 and the central 224x224 crop
  (both scaled with the image size: 256/224 of it).

Images come out as uint8 ``[size, size, 3]`` 0..255 pixels; the model
normalises them.
"""

import dataclasses
import os

import tensorflow as tf

from keras_resnet_cifar.data.arrays import DataError
from keras_resnet_cifar.data.sources import list_images

RESIZE_RATIO = 256 / 224
SCALE_RANGE = (256, 480)  # the paper's scale augmentation, at 224


@dataclasses.dataclass
class Source:
    """Where the images are: encoded bytes and labels for each split."""

    train: tf.data.Dataset  # (image bytes, label) pairs, in file order
    val: tf.data.Dataset | None
    train_size: int
    val_size: int
    class_names: list[str]
    description: str

    def describe(self):
        return (
            f"Loaded {self.description}: train {self.train_size:,}, val {self.val_size:,}; "
            f"{len(self.class_names)} classes"
        )


def load(data_dir, manual_dir=None):
    """An image folder (``<data_dir>/train/<wnid>/*.JPEG``) or tfds ``imagenet2012``.

    Raises:
        DataError: no data at ``data_dir``, empty classes, or val classes
            that training does not have.
    """
    if not data_dir:
        raise DataError(
            "ImageNet needs --data_dir: an image folder with train/<class>/ "
            "or a tensorflow-datasets directory (with --manual_dir holding the archives)"
        )
    if os.path.isdir(os.path.join(data_dir, "train")):
        return load_folder(data_dir)
    return load_tfds(data_dir, manual_dir)


def load_folder(root):
    """``<root>/train/<class>/*`` and optionally ``<root>/val/<class>/*``; classes sorted by name."""
    classes = sorted(
        d for d in os.listdir(os.path.join(root, "train")) if os.path.isdir(os.path.join(root, "train", d))
    )
    if not classes:
        raise DataError(f"{root}/train has no class folders")
    splits = {}
    for split in ("train", "val"):
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            continue
        present = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
        unknown = sorted(set(present) - set(classes))
        if unknown:
            raise DataError(f"{split_dir} has classes that train/ lacks: {', '.join(unknown[:5])}")
        paths, labels = [], []
        for label, name in enumerate(classes):
            if name not in present:
                continue
            files = list_images(os.path.join(split_dir, name))
            if not files and split == "train":
                raise DataError(f"{os.path.join(split_dir, name)} holds no .jpg/.jpeg/.png images")
            paths += files
            labels += [label] * len(files)
        splits[split] = (paths, labels)

    def dataset(split):
        if split not in splits or not splits[split][0]:
            return None, 0
        paths, labels = splits[split]
        ds = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int64)))
        return ds.map(lambda p, y: (tf.io.read_file(p), y), num_parallel_calls=tf.data.AUTOTUNE), len(paths)

    (train, train_size), (val, val_size) = dataset("train"), dataset("val")
    return Source(train, val, train_size, val_size, classes, f"image folder {root}")


def load_tfds(data_dir, manual_dir=None):
    """tfds ``imagenet2012``: prepared in ``data_dir``, or prepared there from ``manual_dir``."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if manual_dir and not builder.is_prepared():
        try:
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
        except Exception as e:  # tfds raises many types; say what failed in one line
            raise DataError(f"cannot prepare imagenet2012 from {manual_dir}: {str(e).splitlines()[0]}") from None
    # Undecoded: our own decode, crop and resize run in parallel later.
    decoders = {"image": tfds.decode.SkipDecoding()}

    def split(name):
        ds = builder.as_dataset(split=name, decoders=decoders, as_supervised=True, shuffle_files=True)
        size = builder.info.splits[name].num_examples if name in builder.info.splits else int(ds.cardinality())
        return ds.map(lambda x, y: (x, tf.cast(y, tf.int64))), size

    try:
        train, train_size = split("train")
    except Exception:  # not prepared: tfds raises AssertionError, or a file error
        raise DataError(
            f"{data_dir} holds no prepared imagenet2012 and no train/ folder; pass "
            "--manual_dir with ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar"
        ) from None
    try:
        val, val_size = split("validation")
    except Exception:
        val, val_size = None, 0
    names = list(builder.info.features["label"].names)
    return Source(train, val, train_size, val_size, names, f"tfds imagenet2012 {data_dir}")


def _decode(data):
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def _to_uint8(image):
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _resize_shorter(image, length):
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(length, tf.float32) / tf.reduce_min(shape)
    new = tf.cast(tf.round(shape * scale), tf.int32)
    return tf.image.resize(image, new, method="bilinear", antialias=True)


def random_resized_crop(image, size, seed, area=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """A random crop of ``area`` and aspect ``ratio`` resized to ``size`` x ``size``.

    ``seed`` is a stateless-RNG seed (shape [2] int): same seed, same crop.
    """
    begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=ratio,
        area_range=area,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop)
    return tf.image.resize(image, [size, size], method="bilinear", antialias=True)


def train_image(data, seed, size=224, scale_augmentation=False):
    """Encoded image -> augmented uint8 ``[size, size, 3]``.

    Stateless random ops keyed by ``seed`` (shape [2] int), so runs repeat
    and deterministic TensorFlow (``enable_op_determinism``) accepts them.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    image = _decode(data)
    if scale_augmentation:
        low, high = (round(s * size / 224) for s in SCALE_RANGE)
        image = _resize_shorter(image, tf.random.stateless_uniform([], seeds[0], low, high + 1, tf.int32))
        image = tf.image.stateless_random_crop(image, [size, size, 3], seeds[1])
    else:
        image = random_resized_crop(image, size, seeds[0])
    return _to_uint8(tf.image.stateless_random_flip_left_right(image, seeds[2]))


def eval_image(data, size=224):
    """Encoded image -> uint8 ``[size, size, 3]``: shorter side to 256/224 of size, central crop."""
    return center_crop(_resize_shorter(_decode(data), round(size * RESIZE_RATIO)), size)


def center_crop(image, size):
    """The central ``size`` x ``size`` window of ``image`` (at least that large), as uint8."""
    shape = tf.shape(image)
    top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
    return _to_uint8(tf.ensure_shape(image[top : top + size, left : left + size], [size, size, 3]))


def train_dataset(source, batch_size, size=224, scale_augmentation=False, seed=0, first_step=0):
    """Endless shuffled, augmented ``(uint8 images, labels)`` batches; same seed, same stream.

    A run resumed at ``first_step`` gets the stream from that batch on: the
    images before it are skipped before they are decoded.
    """
    return (
        source.train.shuffle(min(source.train_size, 10_000), seed=seed)
        .repeat()
        .enumerate()
        .skip(first_step * batch_size)
        .map(
            lambda i, xy: (train_image(xy[0], tf.stack([tf.cast(seed, tf.int64), i]), size, scale_augmentation), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(source, batch_size, size=224):
    """The validation split, center-cropped, in order."""
    if source.val is None:
        return None
    return (
        source.val.map(lambda x, y: (eval_image(x, size), y), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
