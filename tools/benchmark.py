"""Training, inference, serving and input-pipeline speed on this machine.

The `krc-benchmark` command; this file keeps `python tools/benchmark.py` working. The code is
keras_resnet_cifar/cli/benchmark.py.
"""

from keras_resnet_cifar.cli.benchmark import run

if __name__ == "__main__":
    run()
