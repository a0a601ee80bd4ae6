"""The ``krc-profile-step`` command as ``python tools/profile_step.py``.

Its code, and the text ``--help`` shows, are in keras_resnet_cifar/cli/profile_step.py.
"""

from keras_resnet_cifar.cli.profile_step import run

if __name__ == "__main__":
    run()
