"""Exports a .keras model (or a training run) as a TF Serving SavedModel.

The `krc-export` command; this file keeps `python tools/export.py` working. The code is
keras_resnet_cifar/cli/export.py.
"""

from keras_resnet_cifar.cli.export import run

if __name__ == "__main__":
    run()
