"""keras-resnet-cifar: the CIFAR (and ImageNet) ResNets of He et al. 2015 in Keras 3.

Names load on first use, so that importing a light submodule (the variant
table, the depth rule) does not import Keras and TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "CIFAR100_MEAN": "keras_resnet_cifar.models.resnet",
    "CIFAR100_STD": "keras_resnet_cifar.models.resnet",
    "CIFAR10_CLASSES": "keras_resnet_cifar.models.presets",
    "CIFAR10_MEAN": "keras_resnet_cifar.models.resnet",
    "CIFAR10_STD": "keras_resnet_cifar.models.resnet",
    "from_preset": "keras_resnet_cifar.models.resnet",
    "Plain110": "keras_resnet_cifar.models.resnet",
    "Plain18": "keras_resnet_cifar.models.imagenet",
    "Plain20": "keras_resnet_cifar.models.resnet",
    "Plain32": "keras_resnet_cifar.models.resnet",
    "Plain34": "keras_resnet_cifar.models.imagenet",
    "Plain44": "keras_resnet_cifar.models.resnet",
    "Plain56": "keras_resnet_cifar.models.resnet",
    "ResNet101": "keras_resnet_cifar.models.imagenet",
    "ResNet110": "keras_resnet_cifar.models.resnet",
    "ResNet1202": "keras_resnet_cifar.models.resnet",
    "ResNet152": "keras_resnet_cifar.models.imagenet",
    "ResNet18": "keras_resnet_cifar.models.imagenet",
    "ResNet20": "keras_resnet_cifar.models.resnet",
    "ResNet32": "keras_resnet_cifar.models.resnet",
    "ResNet34": "keras_resnet_cifar.models.imagenet",
    "ResNet44": "keras_resnet_cifar.models.resnet",
    "ResNet50": "keras_resnet_cifar.models.imagenet",
    "ResNet56": "keras_resnet_cifar.models.resnet",
    "resnet_cifar": "keras_resnet_cifar.models.resnet",
    "resnet_imagenet": "keras_resnet_cifar.models.imagenet",
    "Variant": "keras_resnet_cifar.models.presets",
    "VARIANTS": "keras_resnet_cifar.models.presets",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
