"""Trains an ImageNet ResNet (section 3.4 of the paper) and exports it for TF Serving.

Examples:
    python tools/train_imagenet.py --arch=resnet50 --data_dir=/data/imagenet --model_dir=runs/r50
    python tools/train_imagenet.py --arch=resnet50 --data_dir=~/tensorflow_datasets \\
        --manual_dir=~/imagenet-tars --schedule=cosine --warmup_epochs=5 --label_smoothing=0.1

--data_dir is an image folder (<dir>/train/<wnid>/*.JPEG, <dir>/val/<wnid>/*.JPEG)
or a tensorflow-datasets directory holding (or, with --manual_dir, preparing)
imagenet2012. Re-running the same command after an interruption resumes. It
trains under the TensorFlow backend, which its export needs.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app
from keras_resnet_cifar.training import machine, options

# Every flag from the one option schema (``training/options.py``, pure Python).
app.define_run_flags(options.IMAGENET_RUN_DEFAULTS)
options.define_flags(options.IMAGENET, module_name=__name__)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    values = options.flag_values(FLAGS, options.RUN + options.IMAGENET)
    for key in ("data_dir", "manual_dir"):
        values[key] = values[key] and os.path.expanduser(values[key])
    config = options.ImageNetConfig.of(**values)
    options.check(config)  # before TensorFlow and Keras load: a usage error is quick
    # Its export (the JPEG decoding signature) runs in this process: TensorFlow, whatever
    # KERAS_BACKEND a shell set for krc-train.
    machine.select_backend("tensorflow")
    from keras_resnet_cifar.training import imagenet_train

    imagenet_train.train_imagenet(config, log=lambda line: print(line, flush=True))
    return 0


def run():
    """The console-script entry point."""
    app.run(main, resumes=True)
