"""Where a ResNet training step's time goes: ours (torch backend) beside the PyTorch peer.

The `krc-profile-step` command; this file keeps `python tools/profile_step.py` working. The code is
keras_resnet_cifar/cli/profile_step.py.
"""

from keras_resnet_cifar.cli.profile_step import run

if __name__ == "__main__":
    run()
