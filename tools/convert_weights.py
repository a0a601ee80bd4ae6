"""The ``krc-convert-weights`` command as ``python tools/convert_weights.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/convert_weights.py.
"""

from keras_resnet_cifar.cli.convert_weights import run

if __name__ == "__main__":
    run()
