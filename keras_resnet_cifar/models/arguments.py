"""The builders' argument checks: where arguments enter, each saying what it received.

Each raises ``errors.ArgumentError`` (a ``ValueError``), as keras-hub's
builders raise ``ValueError(... Received: ...)``.
"""

import keras

from keras_resnet_cifar import errors

DATA_FORMATS = ("channels_last", "channels_first")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_head(include_top, num_classes, classifier_activation, pooling):
    """Checks the classifier arguments, or the pooling without a classifier."""
    if include_top:
        if not is_int(num_classes) or num_classes < 1:
            raise errors.ArgumentError(f"num_classes must be an integer >= 1. Received: num_classes={num_classes!r}")
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError) as e:
            raise errors.ArgumentError(
                "classifier_activation must be None, 'softmax' or another Keras "
                f"activation. Received: classifier_activation={classifier_activation!r}"
            ) from e
    elif pooling not in (None, "avg", "max"):
        raise errors.ArgumentError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")


def check_weight_decay(weight_decay):
    if isinstance(weight_decay, bool) or not weight_decay >= 0:
        raise errors.ArgumentError(f"weight_decay must be a number >= 0. Received: weight_decay={weight_decay!r}")


def check_dtype(dtype):
    try:
        keras.dtype_policies.get(dtype) if dtype is not None else None
    except (ValueError, TypeError):
        message = (
            "dtype must be None, a dtype policy name such as 'float32' or 'mixed_bfloat16', or a keras.DTypePolicy"
        )
        raise errors.ArgumentError(f"{message}. Received: dtype={dtype!r}") from None


def check_data_format(data_format):
    if data_format not in DATA_FORMATS:
        raise errors.ArgumentError(
            f"data_format must be 'channels_last' or 'channels_first'. Received: data_format={data_format!r}"
        )


def check_input_shape(input_shape, min_size, rgb):
    """Checks ``(height, width, channels)``: sides >= ``min_size`` or None; 3 channels where ``rgb``."""
    try:
        height, width, channels = input_shape
    except (TypeError, ValueError):
        raise errors.ArgumentError(
            f"input_shape must be (height, width, channels). Received: input_shape={input_shape!r}"
        ) from None
    for size in (height, width):
        if size is not None and (not is_int(size) or size < min_size):
            raise errors.ArgumentError(
                f"input_shape must be at least {min_size}x{min_size}. Received: input_shape={tuple(input_shape)}"
            )
    if not is_int(channels) or channels < 1:
        raise errors.ArgumentError(
            f"input_shape needs a channel count >= 1. Received: input_shape={tuple(input_shape)}"
        )
    if rgb and channels != 3:
        raise errors.ArgumentError(
            "With include_preprocessing=True the input must have 3 (RGB) "
            f"channels. Received: input_shape={tuple(input_shape)}"
        )


def check_stats(arg, values, *, positive):
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise errors.ArgumentError(f"{arg} must be 3 numbers, one per channel. Received: {arg}={values!r}") from None
    if len(values) != 3 or (positive and min(values) <= 0):
        raise errors.ArgumentError(
            f"{arg} must be 3 {'positive ' if positive else ''}numbers, one per channel. Received: {arg}={values!r}"
        )
    return values
