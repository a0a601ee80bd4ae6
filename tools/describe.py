"""The ``krc-describe`` command as ``python tools/describe.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/describe.py.
"""

from keras_resnet_cifar.cli.describe import run

if __name__ == "__main__":
    run()
