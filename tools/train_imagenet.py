"""The ``krc-train-imagenet`` command as ``python tools/train_imagenet.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/train_imagenet.py.
"""

from keras_resnet_cifar.cli.train_imagenet import run

if __name__ == "__main__":
    run()
