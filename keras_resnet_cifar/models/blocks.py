"""The block library and builder core shared by the CIFAR and ImageNet ResNets.

Blocks are plain functions on Keras tensors, as in keras.applications; a
network is a stem, a table of stages and a head (``build``). Only built-in
Keras layers are used, so a saved model loads with Keras alone.

Layer names follow ``keras.applications``: ``conv{stage}_block{i}_{1,2,3}_
{conv,bn,relu}``, the shortcut as ``_0_conv`` and ``_0_bn`` (a projection)
or ``_0_subsample`` and ``_0_pad`` (option A), ``_add``, ``_out``.
"""

import contextlib
import functools
import sys

import keras
from keras import layers

from keras_resnet_cifar import errors
from keras_resnet_cifar.models import arguments

# PyTorch's BatchNorm2d defaults (momentum 0.1 there is 0.9 here), which the
# reference implementations use; Keras's own defaults are 0.99 and 1e-3.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
SHORTCUTS = ("A", "B", "C")


def layer_factories(weight_decay, data_format="channels_last", dtype=None):
    """``(conv, batch_norm, regularizer)`` with the settings every layer shares.

    ``weight_decay`` is PyTorch-style coupled decay, applied as L2
    regularisers of ``weight_decay / 2`` (the gradient of ``c * w**2`` is
    ``2 * c * w``) on every trainable weight; 0 gives none.
    ``data_format`` is the layers' layout, ``dtype`` their policy (None: global).
    """
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    conv = functools.partial(
        layers.Conv2D,
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        data_format=data_format,
        dtype=dtype,
    )
    batch_norm = functools.partial(
        layers.BatchNormalization,
        axis=channel_axis(data_format),
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_regularizer=regularizer,
        beta_regularizer=regularizer,
        dtype=dtype,
    )
    return conv, batch_norm, regularizer


def channel_axis(data_format):
    return 1 if data_format == "channels_first" else -1


def preprocessing(mean, std):
    """Maps raw 0..255 pixels to ``(x - mean) / std`` per channel."""
    mean = arguments.check_stats("preprocessing_mean", mean, positive=False)
    std = arguments.check_stats("preprocessing_std", std, positive=True)
    return layers.Normalization(
        mean=list(mean),
        variance=[s * s for s in std],
        # float32 under mixed precision too: it is cheap and keeps 0..255
        # inputs exact before the first convolution casts them down.
        dtype="float32",
        name="preprocessing",
    )


def conv3x3(x, filters, stride, *, conv, name, data_format="channels_last", dtype=None):
    """A 3x3 convolution padded by one pixel on every side.

    "same" padding with stride 2 pads 0 before and 1 after on even sizes, so
    output pixel i would be centred on input 2i+1 while the option-A shortcut
    keeps pixel 2i. Explicit symmetric padding (as in the paper's Caffe models
    and the PyTorch reference) centres both on 2i.
    """
    if stride == 1:
        return conv(filters, 3, padding="same", name=name + "_conv")(x)
    x = layers.ZeroPadding2D(1, data_format=data_format, dtype=dtype, name=name + "_pad")(x)
    return conv(filters, 3, strides=stride, padding="valid", name=name + "_conv")(x)


def option_a_shortcut(x, filters, stride, *, name, data_format="channels_last", dtype=None):
    """The paper's option A: ``x[:, ::s, ::s, :]`` with zero channels added.

    ``pad = filters - channels`` zero channels go ``pad // 2`` before and
    ``pad - pad // 2`` after the kept ones, so odd differences work too.
    """
    if stride != 1:
        # A 1x1 window with stride s keeps exactly every s-th pixel.
        x = layers.MaxPooling2D(
            pool_size=1, strides=stride, padding="valid", data_format=data_format, dtype=dtype, name=name + "_subsample"
        )(x)
    channels = x.shape[channel_axis(data_format)]
    pad = filters - channels
    if pad < 0:
        raise errors.ArgumentError(f"Option A cannot reduce channels: {channels} -> {filters}.")
    if pad:
        # ZeroPadding2D told the other layout pads the channel axis: an NHWC
        # tensor read as channels_first pads its last two axes (W, C), an NCHW
        # one read as channels_last its axes 1 and 2 (C, H); the padding puts
        # zeros on C only. One built-in layer, no Lambda, any spatial size.
        channels_only = (pad // 2, pad - pad // 2)
        if data_format == "channels_first":
            padding, read_as = (channels_only, (0, 0)), "channels_last"
        else:
            padding, read_as = ((0, 0), channels_only), "channels_first"
        x = layers.ZeroPadding2D(padding=padding, data_format=read_as, dtype=dtype, name=name + "_pad")(x)
    return x


def shortcut(x, filters, stride, *, option, conv, batch_norm, name, data_format="channels_last", dtype=None):
    """The skip branch: identity where the shape holds, else option A or a projection.

    Option "C" projects on every block (the paper's Table 3).
    """
    if option != "C" and stride == 1 and x.shape[channel_axis(data_format)] == filters:
        return x
    if option == "A":
        return option_a_shortcut(x, filters, stride, name=name + "_0", data_format=data_format, dtype=dtype)
    x = conv(filters, 1, strides=stride, name=name + "_0_conv")(x)
    return batch_norm(name=name + "_0_bn")(x)


def basic_block(
    x,
    filters,
    stride,
    *,
    residual,
    option,
    conv,
    batch_norm,
    name,
    stride_on=None,
    data_format="channels_last",
    dtype=None,
):
    """Two 3x3 convolutions with BatchNorm, plus the shortcut when residual.

    ``stride_on`` is a bottleneck's setting; a basic block has only 3x3
    convolutions and ignores it.
    """
    layout = {"data_format": data_format, "dtype": dtype}
    skip = (
        shortcut(x, filters, stride, option=option, conv=conv, batch_norm=batch_norm, name=name, **layout)
        if residual
        else None
    )
    y = conv3x3(x, filters, stride, conv=conv, name=name + "_1", **layout)
    y = batch_norm(name=name + "_1_bn")(y)
    y = layers.Activation("relu", dtype=dtype, name=name + "_1_relu")(y)
    y = conv3x3(y, filters, 1, conv=conv, name=name + "_2", **layout)
    y = batch_norm(name=name + "_2_bn")(y)
    return _merge(y, skip, name, dtype)


def bottleneck_block(
    x,
    filters,
    stride,
    *,
    residual,
    option,
    conv,
    batch_norm,
    name,
    stride_on="3x3",
    data_format="channels_last",
    dtype=None,
):
    """1x1 reduce, 3x3, 1x1 expand to ``4 * filters`` (ResNet-50/101/152).

    ``stride_on``: "3x3" strides the 3x3 convolution (v1.5), "1x1" the first
    1x1 (the paper's v1).
    """
    layout = {"data_format": data_format, "dtype": dtype}
    skip = (
        shortcut(x, 4 * filters, stride, option=option, conv=conv, batch_norm=batch_norm, name=name, **layout)
        if residual
        else None
    )
    first, middle = (1, stride) if stride_on == "3x3" else (stride, 1)
    y = conv(filters, 1, strides=first, name=name + "_1_conv")(x)
    y = batch_norm(name=name + "_1_bn")(y)
    y = layers.Activation("relu", dtype=dtype, name=name + "_1_relu")(y)
    y = conv3x3(y, filters, middle, conv=conv, name=name + "_2", **layout)
    y = batch_norm(name=name + "_2_bn")(y)
    y = layers.Activation("relu", dtype=dtype, name=name + "_2_relu")(y)
    y = conv(4 * filters, 1, name=name + "_3_conv")(y)
    y = batch_norm(name=name + "_3_bn")(y)
    return _merge(y, skip, name, dtype)


def _merge(y, skip, name, dtype):
    # v1 blocks: the addition, then the ReLU; no BatchNorm after the sum.
    if skip is not None:
        y = layers.Add(dtype=dtype, name=name + "_add")([skip, y])
    return layers.Activation("relu", dtype=dtype, name=name + "_out")(y)


def build(
    *,
    stem,
    stages,
    block,
    residual,
    option,
    weight_decay,
    input_shape,
    include_preprocessing,
    preprocessing_mean,
    preprocessing_std,
    include_top,
    pooling,
    num_classes,
    classifier_activation,
    name,
    stride_on=None,
    data_format="channels_last",
    dtype=None,
):
    """One ResNet from a stem, a table of stages and a block: the core of every builder.

    Args:
        stem: ``(x, conv, batch_norm, data_format, dtype) -> x``: the layers
            before the stages.
        stages: ``[(blocks, filters), ...]``; stage ``i`` is named
            ``conv{i + 2}`` and its first block strides 2 from the second
            stage on.
        block: ``basic_block`` or ``bottleneck_block``.
        residual: False for a plain net (no shortcuts).
        option: the shortcut option, "A", "B" or "C".
        weight_decay, input_shape, include_preprocessing, preprocessing_mean,
        preprocessing_std, include_top, pooling, num_classes,
        classifier_activation, name: as the public builders take them,
            already checked.
        stride_on: a bottleneck's stride placement.
        data_format: the layout the layers compute in. The input is
            ``(height, width, channels)`` either way; "channels_first"
            transposes once, after the normalisation. The weights are the
            same in both layouts (Keras keeps kernels as ``(h, w, in, out)``),
            so one model's weights set the other's.
        dtype: the dtype policy of every layer (a name such as
            "mixed_bfloat16" or a ``keras.DTypePolicy``); None: Keras's
            global policy. The input normalisation and the classifier compute
            in float32 whatever it is.

    Returns:
        A functional ``keras.Model``, input named "image".
    """
    conv, batch_norm, regularizer = layer_factories(weight_decay, data_format, dtype)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if include_preprocessing:
        x = preprocessing(preprocessing_mean, preprocessing_std)(x)
    if data_format == "channels_first":
        x = layers.Permute((3, 1, 2), dtype=dtype, name="to_channels_first")(x)
    x = stem(x, conv, batch_norm, data_format, dtype)
    for stage, (count, filters) in enumerate(stages):
        for index in range(count):
            x = block(
                x,
                filters,
                2 if stage > 0 and index == 0 else 1,
                residual=residual,
                option=option,
                conv=conv,
                batch_norm=batch_norm,
                stride_on=stride_on,
                data_format=data_format,
                dtype=dtype,
                name=f"conv{stage + 2}_block{index + 1}",
            )
    if include_top:
        x = layers.GlobalAveragePooling2D(data_format=data_format, dtype=dtype, name="avg_pool")(x)
        x = layers.Dense(
            num_classes,
            activation=classifier_activation,
            kernel_initializer="he_normal",
            kernel_regularizer=regularizer,
            bias_regularizer=regularizer,
            # float32 whatever the global policy: logits and probabilities
            # must not come back in float16.
            dtype="float32",
            name="predictions",
        )(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(data_format=data_format, dtype=dtype, name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(data_format=data_format, dtype=dtype, name="max_pool")(x)
    # Keras walks the functional graph recursively, a few frames per layer:
    # ResNet1202 (about 6,000 layers) needs far more than Python's default 1,000.
    with _recursion_limit(1_000 + 100 * sum(count for count, _ in stages)):
        return keras.Model(inputs, x, name=name)


@contextlib.contextmanager
def _recursion_limit(limit):
    """Raises Python's recursion limit to at least ``limit`` for a while."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def named_constructor(builder, name, doc, *args, **fixed):
    """A thin named constructor (``ResNet20``, ``ResNet50``) over ``builder``."""

    def construct(**kwargs):
        return builder(*args, **fixed, **kwargs)

    construct.__name__ = construct.__qualname__ = name
    construct.__doc__ = doc
    return construct
