"""CIFAR ResNets of He et al. 2015 (section 4.2), as functional Keras models.

The network: a 3x3 convolution with 16 filters, then three stages of ``n``
basic blocks with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps, then
global average pooling and a dense classifier: ``6n + 2`` weighted layers.

Named ``resnet20`` (n=3), ``resnet32``, ``resnet44``, ``resnet56``,
``resnet110`` and ``resnet1202`` (n=200); their sizes are pinned in
``presets.VARIANTS``, which the tests check every model against.

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

from keras import layers

from keras_resnet_cifar import errors
from keras_resnet_cifar.models import arguments, blocks, presets, pretrained
from keras_resnet_cifar.models.presets import VARIANTS, model_name, resolve_n  # noqa: F401 (public here too)

# Per-channel statistics of the CIFAR training sets on the 0..255 scale (the
# widely used values 0.4914, 0.4822, 0.4465 / 0.2470, 0.2435, 0.2616 times 255).
CIFAR10_MEAN = (125.31, 122.96, 113.86)
CIFAR10_STD = (62.99, 62.09, 66.70)
CIFAR100_MEAN = (129.30, 124.07, 112.43)
CIFAR100_STD = (68.17, 65.39, 70.42)

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
    data_format="channels_last",
    dtype=None,
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
        data_format: the layout the layers compute in: "channels_last" (what
            TensorFlow computes in on CPUs) or "channels_first" (faster under
            the torch backend). The input is ``(height, width, channels)``
            either way, and the weights are the same, so a model built in one
            layout takes the other's weights with ``set_weights``. A feature
            map returned with ``include_top=False`` is in this layout.
        dtype: the layers' dtype policy, as keras-hub's models take it
            ("float32", "mixed_bfloat16", "mixed_float16" or a
            ``keras.DTypePolicy``); None: Keras's global policy. The input
            normalisation and the classifier compute in float32 either way.
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
    n = resolve_n(depth, n)
    shortcut = _check_shortcut(shortcut)
    arguments.check_input_shape(input_shape, _MIN_SIZE, rgb=include_preprocessing)
    arguments.check_head(include_top, num_classes, classifier_activation, pooling)
    arguments.check_weight_decay(weight_decay)
    arguments.check_data_format(data_format)
    arguments.check_dtype(dtype)
    default_name = model_name(n, residual, shortcut)
    entry = pretrained.check(
        weights,
        model_name=default_name,
        residual=residual,
        shortcut=shortcut,
        include_top=include_top,
        num_classes=num_classes,
    )
    if entry is not None:
        if preprocessing_mean is not None or preprocessing_std is not None:
            raise errors.ArgumentError(
                f"weights={weights!r} were trained with the reference's input normalisation, "
                "which the model then carries; leave preprocessing_mean and preprocessing_std unset. "
                f"Received: preprocessing_mean={preprocessing_mean!r}, preprocessing_std={preprocessing_std!r}"
            )
        preprocessing_mean, preprocessing_std = pretrained.REFERENCE_MEAN, pretrained.REFERENCE_STD
    model = blocks.build(
        stem=_stem,
        stages=[(n, filters) for filters in _STAGE_FILTERS],
        block=blocks.basic_block,
        residual=residual,
        option=shortcut,
        weight_decay=weight_decay,
        input_shape=input_shape,
        include_preprocessing=include_preprocessing,
        preprocessing_mean=CIFAR10_MEAN if preprocessing_mean is None else preprocessing_mean,
        preprocessing_std=CIFAR10_STD if preprocessing_std is None else preprocessing_std,
        include_top=include_top,
        pooling=pooling,
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        data_format=data_format,
        dtype=dtype,
        name=default_name if name is None else name,
    )
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
    entry = pretrained.check(
        weights,
        model_name=model_name(n, residual, _check_shortcut(shortcut)),
        residual=residual,
        shortcut=_check_shortcut(shortcut),
        include_top=False,
        num_classes=None,
    )
    # The input normalisation holds no weights, so the copy source needs none.
    pretrained.load(
        model,
        weights,
        entry,
        lambda: resnet_cifar(n=n, residual=residual, shortcut=shortcut, include_preprocessing=False, weight_decay=0),
    )


def _stem(x, conv, batch_norm, data_format, dtype):
    # The paper's first layer: a 3x3 convolution with 16 filters (``conv`` carries the layout).
    x = conv(16, 3, padding="same", name="conv1_conv")(x)
    x = batch_norm(name="conv1_bn")(x)
    return layers.Activation("relu", dtype=dtype, name="conv1_relu")(x)


def _check_shortcut(shortcut):
    if not isinstance(shortcut, str) or shortcut.upper() not in ("A", "B"):
        raise errors.ArgumentError(f"shortcut must be 'A' or 'B'. Received: shortcut={shortcut!r}")
    return shortcut.upper()


def from_preset(name, **kwargs):
    """Builds a model by its registry name, CIFAR or ImageNet.

    CIFAR: ``resnet20``, ``resnet56_b``, ``plain32``; ImageNet: ``resnet50``,
    ``resnet34_a``, ``resnet50_c``, ``plain18`` (``presets.MODELS``).

    Args:
        name: a key of ``presets.MODELS``.
        **kwargs: any other argument of the family's builder (``resnet_cifar``:
            num_classes, weights, ...; ``imagenet.resnet_imagenet``:
            num_classes, stride_on, ...).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: for an unknown name, or an argument the builder refuses.
    """
    entry = presets.get(name)
    if entry.family == "cifar":
        return resnet_cifar(**entry.build_kwargs(), **kwargs)
    from keras_resnet_cifar.models import imagenet

    spec = entry.build_kwargs()
    return imagenet.resnet_imagenet(spec.pop("arch"), **spec, **kwargs)


def _named(depth, residual):
    kind = "ResNet" if residual else "Plain"
    return blocks.named_constructor(
        resnet_cifar,
        f"{kind}{depth}",
        f"The paper's {'residual' if residual else 'plain'} {depth}-layer CIFAR net; keyword arguments as in "
        "`resnet_cifar` (shortcut='A' or 'B', weights='cifar10', ...).",
        depth,
        residual=residual,
    )


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
