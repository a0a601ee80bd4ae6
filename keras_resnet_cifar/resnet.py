"""CIFAR ResNets of He et al. 2015 (section 4.2), as functional Keras models.

The network: a 3x3 convolution with 16 filters, then three stages of ``n``
basic blocks with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, then
global average pooling and a dense classifier: ``6n + 2`` weighted layers.

| name       | n   | layers | params (A, plain) | params (B)  |
|------------|-----|--------|-------------------|-------------|
| resnet20   | 3   | 20     | 269,722           | 272,474     |
| resnet32   | 5   | 32     | 464,154           | 466,906     |
| resnet44   | 7   | 44     | 658,586           | 661,338     |
| resnet56   | 9   | 56     | 853,018           | 855,770     |
| resnet110  | 18  | 110    | 1,727,962         | 1,730,714   |
| resnet1202 | 200 | 1202   | 19,421,274        | 19,424,026  |

Trainable parameters with a 10-class head; ``presets.VARIANTS`` holds the
same numbers and the tests check every model against it.

Layer names follow ``keras.applications``: ``conv1_conv``, then
``conv{2,3,4}_block{i}_{1,2}_{conv,bn,relu}``, the shortcut as ``_0_conv`` and
``_0_bn`` (option B) or ``_0_subsample`` and ``_0_pad`` (option A),
``_add``, ``_out``, and ``avg_pool``, ``predictions``. Plain nets have the same
names minus the shortcut and ``_add`` layers, so the two line up layer by layer.

Only built-in Keras layers are used, so a saved ``.keras`` file loads with
``keras.models.load_model`` in a process that never imports this package.

Reference:
    He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition",
    CVPR 2016 (arXiv 1512.03385).
"""

import contextlib
import functools
import sys

import keras
from keras import layers

from keras_resnet_cifar import pretrained
from keras_resnet_cifar.presets import VARIANTS

# Per-channel statistics of the CIFAR training sets on the 0..255 scale (the
# widely used values 0.4914, 0.4822, 0.4465 / 0.2470, 0.2435, 0.2616 times 255).
CIFAR10_MEAN = (125.31, 122.96, 113.86)
CIFAR10_STD = (62.99, 62.09, 66.70)
CIFAR100_MEAN = (129.30, 124.07, 112.43)
CIFAR100_STD = (68.17, 65.39, 70.42)

# PyTorch's BatchNorm2d defaults (momentum 0.1 there is 0.9 here), which the
# reference implementations use; Keras's own defaults are 0.99 and 1e-3.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

_STAGE_FILTERS = (16, 32, 64)
_MIN_SIZE = 8  # Three stages of stride 1, 2, 2 leave a 2x2 map.


def resnet_cifar(
    depth=None,
    *,
    n=None,
    residual=True,
    shortcut="A",
    num_classes=10,
    input_shape=(32, 32, 3),
    include_top=True,
    include_preprocessing=True,
    preprocessing_mean=None,
    preprocessing_std=None,
    pooling=None,
    classifier_activation=None,
    weight_decay=1e-4,
    weights=None,
    name=None,
):
    """Builds a CIFAR ResNet (or its plain counterpart) of depth ``6n + 2``.

    Args:
        depth: number of weighted layers, ``6n + 2`` (20, 32, 44, 56, 110,
            1202, ...). Give either ``depth`` or ``n``.
        n: blocks per stage, an integer >= 1.
        residual: False builds the paper's plain net: the same layers with no
            shortcuts and no additions.
        shortcut: "A" (parameter-free: stride-2 subsample plus zero channels)
            or "B" (1x1 projection where the shape changes, identity elsewhere).
            Plain nets ignore it.
        num_classes: size of the classifier (10 for CIFAR-10, 100 for
            CIFAR-100).
        input_shape: ``(height, width, channels)``; at least 8x8. Height and
            width may be None for any size.
        include_top: whether to end with pooling and the dense classifier.
        include_preprocessing: whether the model takes raw pixels in [0, 255]
            and normalises them itself with ``preprocessing_mean`` and
            ``preprocessing_std``, so that no caller can forget to. When False
            the model expects normalised input.
        preprocessing_mean: per-channel mean on the 0..255 scale; None: the
            CIFAR-10 mean (``CIFAR10_MEAN``), or the reference's with
            ``weights="cifar10"``.
        preprocessing_std: per-channel standard deviation on the 0..255
            scale; None: ``CIFAR10_STD``, or the reference's with
            ``weights="cifar10"``.
        pooling: with ``include_top=False``: None for the last feature map,
            "avg" or "max" for a pooled vector.
        classifier_activation: None returns logits, "softmax" probabilities.
            The classifier always computes in float32, so a mixed-precision
            model still returns float32.
        weight_decay: coefficient of PyTorch-style coupled weight decay, the
            paper's 1e-4: each step adds ``weight_decay * w`` to the gradient of
            every trainable weight (kernels, BatchNorm gamma and beta, dense
            bias), as ``torch.optim.SGD(weight_decay=1e-4)`` does. It is applied
            here, as Keras L2 regularisers of ``weight_decay / 2`` (the gradient
            of ``c * w**2`` is ``2 * c * w``), and nowhere else: train with a
            plain SGD optimizer without its own ``weight_decay``. 0 disables it.
        weights: None (random initialisation), "cifar10" (the shipped
            CIFAR-10 weights of ResNet20/32/44/56, option A; see
            ``pretrained.py``) or the path to a ``.weights.h5`` file of the
            same network. With "cifar10" and ``include_top=False`` every
            weight but the classifier is loaded.
        name: model name; defaults to ``resnet20``, ``resnet56_b``,
            ``plain32`` and so on.

    Returns:
        A ``keras.Model``, input named "image".

    Raises:
        ValueError: on a depth not of the form 6n+2, n < 1, a shortcut other
            than A or B, num_classes < 1, an input smaller than 8x8, or not 3
            channels while preprocessing is on, weights that do not exist for
            the network, and other bad arguments.
        pretrained.WeightsError: a shipped weights file is missing or corrupt.

    Example:

    >>> model = resnet_cifar(20, shortcut="A")
    >>> model.name
    'resnet20'
    >>> model.output_shape
    (None, 10)
    >>> pretrained = resnet_cifar(20, weights="cifar10")  # raw 0..255 pixels in

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", section 4.2.
    """
    n = _resolve_n(depth, n)
    shortcut = _check_shortcut(shortcut)
    _check_input_shape(input_shape, include_preprocessing)
    if include_top:
        _check_num_classes(num_classes)
        _check_activation(classifier_activation)
    elif pooling not in (None, "avg", "max"):
        raise ValueError(
            f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if isinstance(weight_decay, bool) or not weight_decay >= 0:
        raise ValueError(
            "weight_decay must be a number >= 0. "
            f"Received: weight_decay={weight_decay!r}"
        )
    default_name = model_name(n, residual, shortcut)
    entry = pretrained.check(weights, model_name=default_name, residual=residual, shortcut=shortcut,
                             include_top=include_top, num_classes=num_classes)
    if entry is not None:
        if preprocessing_mean is not None or preprocessing_std is not None:
            raise ValueError(
                f"weights={weights!r} were trained with the reference's input normalisation, "
                "which the model then carries; leave preprocessing_mean and preprocessing_std unset. "
                f"Received: preprocessing_mean={preprocessing_mean!r}, preprocessing_std={preprocessing_std!r}"
            )
        preprocessing_mean, preprocessing_std = pretrained.REFERENCE_MEAN, pretrained.REFERENCE_STD
    if preprocessing_mean is None:
        preprocessing_mean = CIFAR10_MEAN
    if preprocessing_std is None:
        preprocessing_std = CIFAR10_STD
    if name is None:
        name = default_name

    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    conv = functools.partial(
        layers.Conv2D,
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
    )
    batch_norm = functools.partial(
        layers.BatchNormalization,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_regularizer=regularizer,
        beta_regularizer=regularizer,
    )

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    if include_preprocessing:
        x = _preprocessing(preprocessing_mean, preprocessing_std)(x)
    x = conv(16, 3, padding="same", name="conv1_conv")(x)
    x = batch_norm(name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for stage, filters in enumerate(_STAGE_FILTERS):
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(
                x,
                filters,
                stride,
                residual=residual,
                shortcut=shortcut,
                conv=conv,
                batch_norm=batch_norm,
                name=f"conv{stage + 2}_block{block + 1}",
            )

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
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
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    # Keras walks the functional graph recursively, a few frames per layer:
    # ResNet1202 (about 6,000 layers) needs far more than Python's default 1,000.
    with _recursion_limit(1_000 + 250 * n):
        model = keras.Model(inputs, x, name=name)
    if weights is not None:
        load_weights(model, weights, n=n, residual=residual, shortcut=shortcut)
    return model


def load_weights(model, weights, *, n, residual=True, shortcut="A"):
    """Loads shipped weights ("cifar10") or a ``.weights.h5`` file into a built model.

    A shipped file fits the full 10-class network: that network is built once
    more, loaded, and copied layer by layer, so a model without the top or
    with a new classifier (fine-tuning on CIFAR-100) gets every other weight.

    Args:
        model: a ``resnet_cifar`` model of the same ``n``, ``residual`` and
            ``shortcut``.
        weights: "cifar10" or a path, as ``resnet_cifar`` takes them.
        n: blocks per stage of ``model``.
        residual: False for a plain net.
        shortcut: "A" or "B".

    Raises:
        ValueError: no shipped weights for this network, or a file that does
            not fit ``model``.
        pretrained.WeightsError: a shipped file is missing or corrupt.
    """
    entry = pretrained.check(weights, model_name=model_name(n, residual, _check_shortcut(shortcut)),
                             residual=residual, shortcut=_check_shortcut(shortcut), include_top=False,
                             num_classes=None)
    # The input normalisation holds no weights, so the copy source needs none.
    pretrained.load(model, weights, entry, lambda: resnet_cifar(
        n=n, residual=residual, shortcut=shortcut, include_preprocessing=False, weight_decay=0))


@contextlib.contextmanager
def _recursion_limit(limit):
    """Raises Python's recursion limit to at least ``limit`` for a while."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _basic_block(x, filters, stride, *, residual, shortcut, conv, batch_norm, name):
    """Two 3x3 convolutions with BatchNorm, plus the shortcut when residual."""
    if residual:
        if stride == 1 and x.shape[-1] == filters:
            skip = x
        elif shortcut == "A":
            skip = _option_a_shortcut(x, filters, stride, name=name + "_0")
        else:
            skip = conv(filters, 1, strides=stride, name=name + "_0_conv")(x)
            skip = batch_norm(name=name + "_0_bn")(skip)

    y = _conv3x3(x, filters, stride, conv=conv, name=name + "_1")
    y = batch_norm(name=name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = _conv3x3(y, filters, 1, conv=conv, name=name + "_2")
    y = batch_norm(name=name + "_2_bn")(y)
    if residual:
        y = layers.Add(name=name + "_add")([skip, y])
    return layers.Activation("relu", name=name + "_out")(y)


def _conv3x3(x, filters, stride, *, conv, name):
    """A 3x3 convolution padded by one pixel on every side.

    "same" padding with stride 2 pads 0 before and 1 after on even sizes, so
    output pixel i would be centred on input 2i+1 while the option-A shortcut
    keeps pixel 2i. Explicit symmetric padding (as in the paper's Caffe models
    and the PyTorch reference) centres both on 2i.
    """
    if stride == 1:
        return conv(filters, 3, padding="same", name=name + "_conv")(x)
    x = layers.ZeroPadding2D(1, name=name + "_pad")(x)
    return conv(filters, 3, strides=stride, padding="valid", name=name + "_conv")(x)


def _option_a_shortcut(x, filters, stride, *, name):
    """The paper's option A: ``x[:, ::s, ::s, :]`` with zero channels added.

    ``pad = filters - channels`` zero channels go ``pad // 2`` before and
    ``pad - pad // 2`` after the kept ones, so odd differences work too.
    """
    if stride != 1:
        # A 1x1 window with stride s keeps exactly every s-th pixel.
        x = layers.MaxPooling2D(
            pool_size=1, strides=stride, padding="valid", name=name + "_subsample"
        )(x)
    pad = filters - x.shape[-1]
    if pad < 0:
        raise ValueError(
            f"Option A cannot reduce channels: {x.shape[-1]} -> {filters}."
        )
    if pad:
        # With data_format="channels_first", ZeroPadding2D reads an NHWC tensor
        # as N, C=H, W, C and pads its last two axes, here only the channels:
        # one built-in layer, no Lambda, any spatial size.
        x = layers.ZeroPadding2D(
            padding=((0, 0), (pad // 2, pad - pad // 2)),
            data_format="channels_first",
            name=name + "_pad",
        )(x)
    return x


def _preprocessing(mean, std):
    """Maps raw 0..255 pixels to ``(x - mean) / std`` per channel."""
    mean = _check_stats("preprocessing_mean", mean, positive=False)
    std = _check_stats("preprocessing_std", std, positive=True)
    return layers.Normalization(
        mean=list(mean),
        variance=[s * s for s in std],
        # float32 under mixed precision too: it is cheap and keeps 0..255
        # inputs exact before the first convolution casts them down.
        dtype="float32",
        name="preprocessing",
    )


def model_name(n, residual=True, shortcut="A"):
    """The variant name: ``resnet20``, ``resnet56_b``, ``plain32``."""
    depth = 6 * n + 2
    if not residual:
        return f"plain{depth}"
    return f"resnet{depth}" + ("_b" if shortcut == "B" else "")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _resolve_n(depth, n):
    if depth is None and n is None:
        raise ValueError("Give depth (6n+2: 20, 32, 44, 56, 110, 1202) or n >= 1.")
    if n is not None and (not _is_int(n) or n < 1):
        raise ValueError(f"n must be an integer >= 1. Received: n={n!r}")
    if depth is not None:
        if not _is_int(depth) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                "depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, "
                f"1202, ...). Received: depth={depth!r}"
            )
        if n is not None and n != (depth - 2) // 6:
            raise ValueError(
                f"depth and n disagree: depth={depth} means n={(depth - 2) // 6}. "
                f"Received: n={n}"
            )
        n = (depth - 2) // 6
    return n


def _check_shortcut(shortcut):
    if not isinstance(shortcut, str) or shortcut.upper() not in ("A", "B"):
        raise ValueError(
            f"shortcut must be 'A' or 'B'. Received: shortcut={shortcut!r}"
        )
    return shortcut.upper()


def _check_num_classes(num_classes):
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(
            f"num_classes must be an integer >= 1. Received: num_classes={num_classes!r}"
        )


def _check_activation(activation):
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError) as e:
        raise ValueError(
            "classifier_activation must be None, 'softmax' or another Keras "
            f"activation. Received: classifier_activation={activation!r}"
        ) from e


def _check_input_shape(input_shape, include_preprocessing):
    try:
        height, width, channels = input_shape
    except (TypeError, ValueError):
        raise ValueError(
            "input_shape must be (height, width, channels). "
            f"Received: input_shape={input_shape!r}"
        ) from None
    for size in (height, width):
        if size is not None and (not _is_int(size) or size < _MIN_SIZE):
            raise ValueError(
                f"input_shape must be at least {_MIN_SIZE}x{_MIN_SIZE}. "
                f"Received: input_shape={tuple(input_shape)}"
            )
    if not _is_int(channels) or channels < 1:
        raise ValueError(
            f"input_shape needs a channel count >= 1. Received: input_shape={tuple(input_shape)}"
        )
    if include_preprocessing and channels != 3:
        raise ValueError(
            "With include_preprocessing=True the input must have 3 (RGB) "
            f"channels. Received: input_shape={tuple(input_shape)}"
        )


def _check_stats(arg, values, *, positive):
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(
            f"{arg} must be 3 numbers, one per channel. Received: {arg}={values!r}"
        ) from None
    if len(values) != 3 or (positive and min(values) <= 0):
        raise ValueError(
            f"{arg} must be 3 {'positive ' if positive else ''}numbers, one per "
            f"channel. Received: {arg}={values!r}"
        )
    return values


def from_preset(name, **kwargs):
    """Builds a model by its table name (``resnet20``, ``resnet56_b``, ``plain32``).

    Args:
        name: a key of ``presets.VARIANTS``.
        **kwargs: any other ``resnet_cifar`` argument (num_classes, ...).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in VARIANTS:
        raise ValueError(
            f"Unknown model name. Received: name={name!r}; "
            f"allowed: {', '.join(VARIANTS)}"
        )
    v = VARIANTS[name]
    return resnet_cifar(n=v.n, residual=v.residual, shortcut=v.shortcut, **kwargs)


def _named(depth, residual):
    def build(**kwargs):
        return resnet_cifar(depth, residual=residual, **kwargs)

    kind = "ResNet" if residual else "Plain"
    build.__name__ = build.__qualname__ = f"{kind}{depth}"
    build.__doc__ = (
        f"The paper's {'residual' if residual else 'plain'} {depth}-layer CIFAR "
        f"net; keyword arguments as in `resnet_cifar` (shortcut='A' or 'B', ...)."
    )
    return build


ResNet20 = _named(20, True)
ResNet32 = _named(32, True)
ResNet44 = _named(44, True)
ResNet56 = _named(56, True)
ResNet110 = _named(110, True)
ResNet1202 = _named(1202, True)
Plain20 = _named(20, False)
Plain32 = _named(32, False)
Plain44 = _named(44, False)
Plain56 = _named(56, False)
Plain110 = _named(110, False)
