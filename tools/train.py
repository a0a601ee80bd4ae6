"""The ``krc-train`` command as ``python tools/train.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/train.py.
"""

from keras_resnet_cifar.cli.train import run

if __name__ == "__main__":
    run()
