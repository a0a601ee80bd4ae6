"""Trains a CIFAR ResNet from a .npz file without TensorFlow (the accelerator path).

The `krc-train-arrays` command; this file keeps `python tools/train_arrays.py` working. The code is
keras_resnet_cifar/cli/train_arrays.py.
"""

from keras_resnet_cifar.cli.train_arrays import run

if __name__ == "__main__":
    run()
