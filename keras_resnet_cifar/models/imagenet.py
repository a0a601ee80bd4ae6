"""ImageNet ResNets of He et al. 2015 (section 3.4, Table 1), as functional Keras models.

A 7x7/2 convolution with 64 filters, BatchNorm, ReLU and a 3x3/2 max pool,
then four stages of basic blocks (ResNet-18/34) or bottleneck blocks
(ResNet-50/101/152) with 64, 128, 256 and 512 filters (times 4 at a
bottleneck's output) on 56, 28, 14 and 7 pixel maps, global average pooling
and a 1000-way dense layer.

ResNet-18 and 34 (basic blocks; 2, 2, 2, 2 and 3, 4, 6, 3 a stage), 50, 101
and 152 (bottlenecks; 3, 4, 6, 3, then 3, 4, 23, 3 and 3, 8, 36, 3). Their
sizes, torchvision's (no convolution carries a bias, unlike
``keras.applications.ResNet50``), are pinned in ``presets``.

Shortcuts (the paper's Table 3): "A" zero-pads channels (and subsamples) where
the shape changes; "B" (default) projects with a 1x1 convolution there; "C"
projects on every block. ``residual=False`` gives the plain nets of Table 2.

Stride placement: the paper (and Caffe's ResNet-50 "v1") strides the first
1x1 convolution of a downsampling bottleneck; torchvision and most later
code ("v1.5", the default here, ``stride_on="3x3"``) stride its 3x3
convolution, which is about 0.5 points more accurate and costs a little more
compute. Basic blocks have only 3x3 convolutions and are the same either way.

Layer names follow ``keras.applications`` (``conv1_conv``, ``pool1_pool``,
``conv2_block1_1_conv`` ... ``conv5_block3_out``, ``avg_pool``,
``predictions``), so feature-extraction code written for it works here.
"""

from keras import layers

from keras_resnet_cifar import errors
from keras_resnet_cifar.models import arguments, blocks, presets

# torchvision's per-channel ImageNet statistics on the 0..255 scale.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# name: (blocks per stage, bottleneck?)
# Views of the one registry (``presets.MODELS``): the stage tables, and option B's sizes.
ARCHITECTURES = presets.IMAGENET_STAGES
PARAMS = {arch: presets.MODELS[arch].trainable_params for arch in ARCHITECTURES}
_FILTERS = (64, 128, 256, 512)
_STRIDE_ON = ("3x3", "1x1")
_MIN_SIZE = 32  # five stride-2 steps


def resnet_imagenet(
    arch="resnet50",
    *,
    residual=True,
    shortcut="B",
    stride_on="3x3",
    num_classes=1000,
    input_shape=(224, 224, 3),
    include_top=True,
    include_preprocessing=True,
    preprocessing_mean=IMAGENET_MEAN,
    preprocessing_std=IMAGENET_STD,
    pooling=None,
    classifier_activation=None,
    weight_decay=1e-4,
    data_format="channels_last",
    dtype=None,
    name=None,
):
    """Builds an ImageNet ResNet (or plain net) of the paper.

    Args:
        arch: "resnet18", "resnet34", "resnet50", "resnet101" or "resnet152"
            (also 18, 34, ...).
        residual: False builds the plain net (same layers, no shortcuts).
        shortcut: "A", "B" (default) or "C"; see the module docstring.
        stride_on: "3x3" (v1.5, default) or "1x1" (the paper's v1), where a
            downsampling bottleneck strides.
        num_classes: classes of the top layer.
        input_shape: ``(height, width, 3)``; each side at least 32 or None.
        include_top: end with global average pooling and the dense layer.
        include_preprocessing: take raw 0..255 pixels and normalise inside.
        preprocessing_mean: per-channel mean on the 0..255 scale.
        preprocessing_std: per-channel standard deviation on the 0..255 scale.
        pooling: without the top: None (4D features), "avg" or "max".
        classifier_activation: None (logits, default) or "softmax".
        weight_decay: PyTorch-style coupled decay, as L2 of ``wd / 2`` on
            every trainable weight; 0 disables it.
        data_format: the layout the layers compute in, as in
            ``resnet.resnet_cifar``; the input is ``(height, width, 3)``
            either way.
        dtype: the layers' dtype policy, as in ``resnet.resnet_cifar``.
        name: model name; default ``arch`` (``plain34``, ``resnet50_c`` ...).

    Returns:
        A ``keras.Model``.

    Raises:
        ValueError: on an unknown architecture, shortcut or stride placement,
            or a bad input shape, class count or pooling.
    """
    arch = _check_arch(arch)
    if shortcut not in blocks.SHORTCUTS:
        raise errors.ArgumentError(f"shortcut must be 'A', 'B' or 'C'. Received: shortcut={shortcut!r}")
    if stride_on not in _STRIDE_ON:
        raise errors.ArgumentError(f"stride_on must be '3x3' (v1.5) or '1x1' (v1). Received: stride_on={stride_on!r}")
    arguments.check_input_shape(input_shape, _MIN_SIZE, rgb=True)
    arguments.check_head(include_top, num_classes, classifier_activation, pooling)
    arguments.check_weight_decay(weight_decay)
    arguments.check_data_format(data_format)
    arguments.check_dtype(dtype)
    counts, bottleneck = ARCHITECTURES[arch]
    if name is None:
        depth = arch[len("resnet") :]
        name = (
            (f"resnet{depth}" if residual else f"plain{depth}")
            + (f"_{shortcut.lower()}" if residual and shortcut != "B" else "")
            + ("_v1" if bottleneck and stride_on == "1x1" else "")
        )
    return blocks.build(
        stem=_stem,
        stages=list(zip(counts, _FILTERS)),
        block=blocks.bottleneck_block if bottleneck else blocks.basic_block,
        residual=residual,
        option=shortcut,
        stride_on=stride_on,
        weight_decay=weight_decay,
        input_shape=input_shape,
        include_preprocessing=include_preprocessing,
        preprocessing_mean=preprocessing_mean,
        preprocessing_std=preprocessing_std,
        include_top=include_top,
        pooling=pooling,
        num_classes=num_classes,
        classifier_activation=classifier_activation,
        data_format=data_format,
        dtype=dtype,
        name=name,
    )


def _stem(x, conv, batch_norm, data_format, dtype):
    # Explicit symmetric padding, as torchvision and keras.applications.
    x = layers.ZeroPadding2D(3, data_format=data_format, dtype=dtype, name="conv1_pad")(x)
    x = conv(64, 7, strides=2, name="conv1_conv")(x)
    x = batch_norm(name="conv1_bn")(x)
    x = layers.Activation("relu", dtype=dtype, name="conv1_relu")(x)
    # Zero padding equals -inf padding here: the inputs are >= 0 after ReLU.
    x = layers.ZeroPadding2D(1, data_format=data_format, dtype=dtype, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, data_format=data_format, dtype=dtype, name="pool1_pool")(x)


def _check_arch(arch):
    if isinstance(arch, int) and not isinstance(arch, bool):
        arch = f"resnet{arch}"
    if arch not in ARCHITECTURES:
        raise errors.ArgumentError(
            f"arch must be one of {', '.join(ARCHITECTURES)} (or 18, 34, 50, 101, 152). Received: arch={arch!r}"
        )
    return arch


def _named(arch, residual=True):
    kind = "ResNet" if residual else "Plain"
    depth = arch[len("resnet") :]
    return blocks.named_constructor(
        resnet_imagenet,
        f"{kind}{depth}",
        f"{kind}-{depth} for ImageNet; keyword arguments as ``resnet_imagenet``.",
        arch,
        residual=residual,
    )


ResNet18 = _named("resnet18")
ResNet34 = _named("resnet34")
ResNet50 = _named("resnet50")
ResNet101 = _named("resnet101")
ResNet152 = _named("resnet152")
Plain18 = _named("resnet18", residual=False)
Plain34 = _named("resnet34", residual=False)
