"""The ``krc-export`` command as ``python tools/export.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/export.py.
"""

from keras_resnet_cifar.cli.export import run

if __name__ == "__main__":
    run()
