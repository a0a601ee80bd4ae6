"""The ``krc-predict`` command as ``python tools/predict.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/predict.py.
"""

from keras_resnet_cifar.cli.predict import run

if __name__ == "__main__":
    run()
