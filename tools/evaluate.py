"""The ``krc-evaluate`` command as ``python tools/evaluate.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/evaluate.py.
"""

from keras_resnet_cifar.cli.evaluate import run

if __name__ == "__main__":
    run()
