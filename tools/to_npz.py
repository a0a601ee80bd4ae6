"""Decodes a dataset once into a .npz file for tools/train.py --data_dir=x.npz.

The `krc-to-npz` command; this file keeps `python tools/to_npz.py` working. The code is
keras_resnet_cifar/cli/to_npz.py.
"""

from keras_resnet_cifar.cli.to_npz import run

if __name__ == "__main__":
    run()
