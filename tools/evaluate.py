"""Accuracy, per-class accuracy and confusion matrix of a .keras model.

The `krc-evaluate` command; this file keeps `python tools/evaluate.py` working. The code is
keras_resnet_cifar/cli/evaluate.py.
"""

from keras_resnet_cifar.cli.evaluate import run

if __name__ == "__main__":
    run()
