"""Builds every model of the zoo and prints its size next to the paper's.

The `krc-zoo` command; this file keeps `python tools/zoo.py` working. The code is
keras_resnet_cifar/cli/zoo.py.
"""

from keras_resnet_cifar.cli.zoo import run

if __name__ == "__main__":
    run()
