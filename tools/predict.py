"""Classifies PNG/JPEG images or a .npy batch with a .keras model or a SavedModel.

The `krc-predict` command; this file keeps `python tools/predict.py` working. The code is
keras_resnet_cifar/cli/predict.py.
"""

from keras_resnet_cifar.cli.predict import run

if __name__ == "__main__":
    run()
