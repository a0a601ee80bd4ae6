"""The tf.data input: CIFAR arrays (``sources.py``) as training and evaluation streams.

Images stay uint8 in memory; the model normalises them itself. Training
batches get the paper's augmentation, vectorised over the batch: pad 4
pixels, random 32x32 crop, random horizontal flip, independently per image
(``augment.py`` is the same transform inside the compiled step). Evaluation
sees the original image.
"""

import tensorflow as tf

from keras_resnet_cifar.data.augment import PAD


def augment_batch(images, seed):
    """The paper's augmentation for a uint8 batch, independently per image.

    Pads 4 zero pixels on each side, takes a random 32x32 crop and flips it
    horizontally with probability 1/2, all with gathers over the whole batch.

    Args:
        images: uint8 tensor ``[batch, height, width, channels]``.
        seed: a stateless-RNG seed, shape [2] int; same seed, same result.

    Returns:
        The augmented batch, same shape and dtype.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    seeds = tf.random.experimental.stateless_split(seed, 3)
    dy = tf.random.stateless_uniform([batch], seeds[0], 0, 2 * PAD + 1, tf.int32)
    dx = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * PAD + 1, tf.int32)
    flip = tf.random.stateless_uniform([batch], seeds[2]) < 0.5
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = dx[:, None] + tf.range(width)[None, :]
    # A flip is a crop read right to left: reverse the column indices.
    cols = tf.where(flip[:, None], tf.reverse(cols, axis=[1]), cols)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def train_dataset(images, labels, batch_size, seed, first_step=0):
    """An endless, shuffled, augmented stream of ``(uint8 images, labels)`` batches.

    Epochs follow one another without a partial batch in between; the caller
    sets ``steps_per_epoch``. Batch ``s`` is a function of ``seed`` and ``s``
    alone: pass epoch ``e``'s order is a permutation drawn from ``(seed, e)``
    and each batch's crops and flips from ``(seed, s)``. A run resumed at
    ``first_step`` therefore sees exactly the batches an uninterrupted run
    sees from that step on.
    """
    images = tf.constant(images)
    labels = tf.constant(labels)
    count = int(images.shape[0])
    first_example = first_step * batch_size
    first_pass = first_example // count

    def order(epoch):
        keys = tf.random.stateless_uniform([count], seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

    def gather_and_augment(step, index):
        return augment_batch(tf.gather(images, index), tf.stack([seed, step])), tf.gather(labels, index)

    return (
        tf.data.Dataset.counter(start=first_pass)
        .flat_map(order)
        .skip(first_example - first_pass * count)
        .batch(batch_size, drop_remainder=True)
        .enumerate(start=first_step)
        .map(gather_and_augment, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(images, labels, batch_size):
    """Batches of the original images, in order, for evaluation."""
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
