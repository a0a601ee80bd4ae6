"""Counts read off a built model: parameters, weighted layers, multiply-adds.

Every number comes from the model's layers and shapes, never from a formula
about the architecture, so the tests can hold the builder to the paper.
"""

import math

from keras import layers


def trainable_params(model):
    """Number of trainable scalars (Keras's count_params() adds BN statistics)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def non_trainable_params(model):
    """Number of non-trainable scalars: the BatchNorm moving statistics."""
    return sum(math.prod(w.shape) for w in model.non_trainable_weights)


def is_projection(layer):
    """True for a shortcut's projection (``*_0_conv``), which the paper's depth leaves out.

    The name tells, not the 1x1 kernel: a bottleneck's own 1x1 convolutions
    are layers of the depth.
    """
    return isinstance(layer, layers.Conv2D) and layer.name.endswith("_0_conv")


def weighted_layers(model):
    """Convolutions and dense layers, the paper's layer count (no shortcut projections)."""
    return sum(
        1 for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Dense)) and not is_projection(layer)
    )


def shortcut_kind(model):
    """The paper's shortcut option read off the layers: "A", "B", "C" or "none (plain)".

    A: additions with no projection; B: projections on some blocks (where
    the shape changes); C: a projection on every block.
    """
    blocks = sum(1 for layer in model.layers if layer.name.endswith("_add"))
    projections = sum(1 for layer in model.layers if is_projection(layer))
    if not blocks:
        return "none (plain)"
    if not projections:
        return "A"
    return "C" if projections == blocks else "B"


def multiply_adds(model):
    """Multiply-adds of one forward pass of one image (convolutions and dense)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, height, width, out_channels = layer.output.shape
            kh, kw = layer.kernel_size
            in_channels = layer.input.shape[-1]
            total += height * width * out_channels * kh * kw * in_channels
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total
