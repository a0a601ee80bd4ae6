"""Converts a PyTorch checkpoint of akamaster/pytorch_resnet_cifar10 to model.keras.

The `krc-convert-weights` command; this file keeps `python tools/convert_weights.py` working. The code is
keras_resnet_cifar/cli/convert_weights.py.
"""

from keras_resnet_cifar.cli.convert_weights import run

if __name__ == "__main__":
    run()
