"""Trains an ImageNet ResNet (section 3.4 of the paper) and exports it for TF Serving.

The `krc-train-imagenet` command; this file keeps `python tools/train_imagenet.py` working. The code is
keras_resnet_cifar/cli/train_imagenet.py.
"""

from keras_resnet_cifar.cli.train_imagenet import run

if __name__ == "__main__":
    run()
