"""Plain versus residual nets: trains them and draws the paper's Fig. 6 and Fig. 7.

The `krc-compare` command; this file keeps `python tools/compare.py` working. The code is
keras_resnet_cifar/cli/compare.py.
"""

from keras_resnet_cifar.cli.compare import run

if __name__ == "__main__":
    run()
