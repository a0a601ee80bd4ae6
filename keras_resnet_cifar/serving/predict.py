"""Classifying image files or arrays with a .keras model or an export (SavedModel, LiteRT, ONNX)."""

import numpy as np
import tensorflow as tf

from keras_resnet_cifar import files
from keras_resnet_cifar.data.arrays import DataError
from keras_resnet_cifar.serving import loading, runtimes
from keras_resnet_cifar.serving.runtimes import IMAGE_SHAPE


def read_images(paths, resize=False):
    """Decodes PNG/JPEG files into a uint8 RGB batch, checking the size.

    Grayscale and RGBA images become RGB, as in training (``input_pipeline``).

    Raises:
        DataError: naming the file that is unreadable or not 32x32 (unless
            ``resize``: then it is resized, bilinear, to 32x32).
    """
    images = []
    for path in paths:
        try:
            image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.NotFoundError:
            raise DataError(f"image {path} does not exist") from None
        except tf.errors.OpError as e:
            raise DataError(f"cannot decode image {path}: {files.error_text(e)}") from None
        if tuple(image.shape) != IMAGE_SHAPE:
            if not resize:
                raise DataError(
                    f"image {path} is {image.shape[0]}x{image.shape[1]}, expected 32x32 (pass --resize to resize it)"
                )
            image = tf.cast(tf.round(tf.clip_by_value(tf.image.resize(image, IMAGE_SHAPE[:2]), 0, 255)), tf.uint8)
        images.append(image.numpy())
    return np.stack(images)


def read_npy(path):
    """A ``[N, 32, 32, 3]`` batch of 0..255 pixels from a .npy file."""
    try:
        batch = np.load(path, allow_pickle=False)
    except ValueError:
        # numpy reads anything that is not .npy or .npz as a pickle, which allow_pickle=False refuses.
        raise DataError(f"cannot read {path}: not a .npy array file; pickled data is not read") from None
    except (OSError, EOFError) as e:  # EOFError: an empty file
        raise DataError(f"cannot read {path}: {files.error_text(e)}") from None
    if not isinstance(batch, np.ndarray):  # a .npz archive
        batch.close()
        raise DataError(f"{path} is a .npz archive; --npy takes one [N, 32, 32, 3] array saved with np.save")
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[1:] != IMAGE_SHAPE or not len(batch):
        raise DataError(f"{path} holds shape {batch.shape}, expected [N, 32, 32, 3] with N >= 1")
    if batch.dtype == np.uint8:
        return batch
    if batch.dtype.kind not in "iuf" or not np.isfinite(batch).all():
        raise DataError(f"{path} holds {batch.dtype} values that are not all finite numbers; expected pixels 0..255")
    low, high = batch.min(), batch.max()
    if low < 0 or high > 255:
        raise DataError(f"{path} values span {low}..{high}, expected raw pixels 0..255")
    if batch.dtype.kind == "f" and 0 < high <= 1.0:
        # Such a batch would be read as nearly black images: refused, not guessed.
        raise DataError(
            f"{path} holds floats in {low:g}..{high:g}, pixels scaled to 0..1; the models take raw 0..255 pixels: "
            "save np.round(batch * 255).astype(np.uint8) instead"
        )
    return batch


class Classifier:
    """Probabilities from an export (SavedModel, LiteRT, ONNX) or a ``loading`` spec (.keras file, ``resnet20:cifar10``)."""

    def __init__(self, path):
        if runtimes.find(path):
            runtime = runtimes.open_export(path)
            self._fn = lambda x: _softmax(runtime.logits(x))
            self.class_names = runtime.class_names
        else:
            import keras

            loaded = loading.load(path)
            model = loaded.model
            if tuple(model.input_shape[1:]) not in (IMAGE_SHAPE, (None, None, 3)) or len(model.output_shape) != 2:
                raise loading.ModelFileError(
                    f"{path} takes {model.input_shape} and returns {model.output_shape}; predict needs a classifier "
                    "of [N, 32, 32, 3] images of 0..255 pixels to [N, classes], as the zoo's models are"
                )
            softmax = getattr(model.layers[-1], "activation", None) is keras.activations.softmax

            def fn(x):
                out = model.predict(np.asarray(x, np.float32), verbose=0)
                return out if softmax else keras.ops.convert_to_numpy(keras.ops.softmax(out))

            self._fn = fn
            self.class_names = loaded.class_names

    def top_k(self, images, k):
        """For each image: a list of (class id, class name, probability), best first."""
        probs = self._fn(images)
        names = self.class_names or [str(i) for i in range(probs.shape[-1])]
        results = []
        for row in probs:
            best = np.argsort(-row)[:k]
            results.append([(int(i), names[i], float(row[i])) for i in best])
        return results


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
