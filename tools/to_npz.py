"""The ``krc-to-npz`` command as ``python tools/to_npz.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/to_npz.py.
"""

from keras_resnet_cifar.cli.to_npz import run

if __name__ == "__main__":
    run()
