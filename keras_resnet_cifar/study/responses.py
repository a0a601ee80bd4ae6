"""Layer responses of a trained net, as in the paper's Fig. 7.

The paper plots the standard deviation of each 3x3 layer's response: the
output of the layer after BN, before the addition and the ReLU. Residual
nets show smaller responses than plain ones, and deeper ResNets smaller ones
still: residual functions stay close to zero. Backend-neutral (``keras.ops``).
"""

import keras
import numpy as np
from keras import layers

from keras_resnet_cifar import errors


def response_layers(model):
    """Names of the BatchNorm layers right after a 3x3 convolution, in model order.

    In this package's CIFAR nets these are ``conv1_bn`` and every block's
    ``_1_bn`` and ``_2_bn``; the option-B projection's ``_0_bn`` follows a 1x1
    convolution and is left out.
    """
    by_name = {layer.name: layer for layer in model.layers}
    names = []
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization) or not layer.name.endswith("_bn"):
            continue
        conv = by_name.get(layer.name[: -len("bn")] + "conv")
        if isinstance(conv, layers.Conv2D) and tuple(conv.kernel_size) == (3, 3):
            names.append(layer.name)
    return names


def response_std(model, images, batch_size=250):
    """Standard deviation of each 3x3 layer's response over ``images``.

    The std runs over all images, positions and channels of the layer's
    output, computed in inference mode (BatchNorm with its moving statistics)
    and accumulated in float64.

    Args:
        model: a trained CIFAR ResNet or plain net of this package.
        images: a uint8 or float array ``[N, H, W, 3]`` the model takes.
        batch_size: images per forward pass.

    Returns:
        A list of ``(layer name, std)`` in layer order.

    Raises:
        ValueError: if the model has no 3x3 convolution followed by BatchNorm,
            or ``images`` is empty.
    """
    names = response_layers(model)
    if not names:
        raise errors.ArgumentError(f"{model.name} has no 3x3 convolution followed by BatchNormalization.")
    if len(images) == 0:
        raise errors.ArgumentError("response_std needs at least one image.")
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    count = np.zeros(len(names))
    total = np.zeros(len(names))
    squares = np.zeros(len(names))
    for start in range(0, len(images), batch_size):
        outputs = probe(images[start : start + batch_size], training=False)
        if not isinstance(outputs, (list, tuple)):  # a one-output model returns the tensor itself
            outputs = [outputs]
        for i, out in enumerate(outputs):
            out = keras.ops.convert_to_numpy(out).astype(np.float64)
            count[i] += out.size
            total[i] += out.sum()
            squares[i] += np.square(out).sum()
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return list(zip(names, std.tolist()))
