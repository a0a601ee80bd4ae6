"""Trains a CIFAR ResNet with the paper's recipe (or a shorter one).

The `krc-train` command; this file keeps `python tools/train.py` working. The code is
keras_resnet_cifar/cli/train.py.
"""

from keras_resnet_cifar.cli.train import run

if __name__ == "__main__":
    run()
