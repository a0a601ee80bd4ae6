"""Prints the stage-by-stage breakdown of a CIFAR ResNet, read off the built model.

The `krc-describe` command; this file keeps `python tools/describe.py` working. The code is
keras_resnet_cifar/cli/describe.py.
"""

from keras_resnet_cifar.cli.describe import run

if __name__ == "__main__":
    run()
