"""The ``krc-zoo`` command as ``python tools/zoo.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/zoo.py.
"""

from keras_resnet_cifar.cli.zoo import run

if __name__ == "__main__":
    run()
