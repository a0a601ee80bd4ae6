"""The paper's augmentation as a Keras layer, inside the compiled train step.

Backend-neutral (``keras.ops`` and ``keras.random``): the arrays input
(``array_input.py``) sends uint8 batches to the device and the step
augments them, so nothing is augmented on the host. Same transform as the tf.data
pipeline's ``input_pipeline.augment_batch``: pad 4, random 32x32 crop, random
horizontal flip, independently per image.
"""

import keras
from keras import ops

PAD = 4


def pad_crop_flip(images, seed, pad=PAD):
    """Pads, randomly crops back to size and randomly flips each image.

    Args:
        images: ``[batch, height, width, channels]``, any dtype.
        seed: a ``keras.random.SeedGenerator`` (or an int).
        pad: zero pixels added on each side before cropping.

    Returns:
        The augmented batch, same shape and dtype.
    """
    batch, height, width, channels = ops.shape(images)
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    dy = keras.random.randint((batch,), 0, 2 * pad + 1, seed=seed)
    dx = keras.random.randint((batch,), 0, 2 * pad + 1, seed=seed)
    flip = keras.random.uniform((batch,), seed=seed) < 0.5
    rows = dy[:, None] + ops.arange(height)[None, :]
    cols = dx[:, None] + ops.arange(width)[None, :]
    # A flip is a crop read right to left: reverse the column indices.
    cols = ops.where(flip[:, None], ops.flip(cols, axis=1), cols)
    rows = ops.broadcast_to(rows[:, :, None, None], (batch, height, width + 2 * pad, channels))
    out = ops.take_along_axis(padded, rows, axis=1)
    cols = ops.broadcast_to(cols[:, None, :, None], (batch, height, width, channels))
    return ops.take_along_axis(out, cols, axis=2)


class RandomPadCropFlip(keras.layers.Layer):
    """``pad_crop_flip`` while training, the identity otherwise; outputs float32."""

    def __init__(self, pad=PAD, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.pad = pad
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, images, training=None):
        if training:
            images = pad_crop_flip(images, self.generator, self.pad)
        return ops.cast(images, "float32")

    def compute_output_shape(self, input_shape):
        return input_shape

    # The generator's state is saved with the weights, so that a run resumed
    # from a backup draws the crops and flips an uninterrupted run draws.
    def save_own_variables(self, store):
        store["0"] = keras.ops.convert_to_numpy(self.generator.state)

    def load_own_variables(self, store):
        if "0" in store:
            self.generator.state.assign(store["0"])

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "seed": self.seed}


def with_augmentation(model, seed):
    """``model`` behind a ``RandomPadCropFlip``: a model that takes uint8 images and augments them while training.

    Its weights are the augmentation's generator state and then ``model``'s;
    ``model`` itself keeps its own.
    """
    inputs = keras.Input(model.input_shape[1:], dtype="uint8", name="image")
    return keras.Model(
        inputs, model(RandomPadCropFlip(seed=seed, name="augment")(inputs)), name=f"{model.name}_augmented"
    )
