"""keras-resnet-cifar: the CIFAR (and ImageNet) ResNets of He et al. 2015 in Keras 3."""

from keras_resnet_cifar.imagenet import (
    Plain18,
    Plain34,
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
    ResNet152,
    resnet_imagenet,
)

from keras_resnet_cifar.presets import CIFAR10_CLASSES, VARIANTS, Variant
from keras_resnet_cifar.resnet import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    Plain20,
    Plain32,
    Plain44,
    Plain56,
    Plain110,
    ResNet20,
    ResNet32,
    ResNet44,
    ResNet56,
    ResNet110,
    ResNet1202,
    from_preset,
    resnet_cifar,
)

__version__ = "0.1.0"
