"""The ``krc-benchmark`` command as ``python tools/benchmark.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/benchmark.py.
"""

from keras_resnet_cifar.cli.benchmark import run

if __name__ == "__main__":
    run()
