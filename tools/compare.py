"""The ``krc-compare`` command as ``python tools/compare.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/compare.py.
"""

from keras_resnet_cifar.cli.compare import run

if __name__ == "__main__":
    run()
