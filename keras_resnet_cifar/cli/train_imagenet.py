"""Trains an ImageNet ResNet (section 3.4 of the paper) and exports it for TF Serving.

Examples:
    python tools/train_imagenet.py --arch=resnet50 --data_dir=/data/imagenet --model_dir=runs/r50
    python tools/train_imagenet.py --arch=resnet50 --data_dir=~/tensorflow_datasets \\
        --manual_dir=~/imagenet-tars --schedule=cosine --warmup_epochs=5 --label_smoothing=0.1

--data_dir is an image folder (<dir>/train/<wnid>/*.JPEG, <dir>/val/<wnid>/*.JPEG)
or a tensorflow-datasets directory holding (or, with --manual_dir, preparing)
imagenet2012. Re-running the same command after an interruption resumes.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
flags.DEFINE_enum("arch", "resnet50", ARCHS, "Network (the paper's Table 1).")
flags.DEFINE_bool("plain", False, "The plain net (no shortcuts; the paper's Table 2).")
flags.DEFINE_enum(
    "shortcut",
    "B",
    ["A", "B", "C"],
    "A: zero-padding, B: projection where the shape changes, C: projection everywhere (Table 3).",
)
flags.DEFINE_enum("stride_on", "3x3", ["3x3", "1x1"], "Bottleneck stride on the 3x3 (v1.5) or the first 1x1 (v1).")
flags.DEFINE_string("data_dir", None, "Image folder with train/ (and val/), or a tfds directory.")
flags.DEFINE_string("manual_dir", None, "Where the ILSVRC2012 tar files are, for tfds to prepare imagenet2012.")
flags.DEFINE_integer("image_size", 224, "Training and serving image side.", lower_bound=32)
flags.DEFINE_bool(
    "scale_augmentation",
    False,
    "The paper's scale augmentation (shorter side in [256, 480], random crop) instead of random-resized crops.",
)
app.define_run_flags(batch_size=256, model_dir_default="runs/<arch>")
flags.DEFINE_enum(
    "schedule",
    "step",
    ["step", "cosine"],
    "step: /10 at epochs 30, 60, 80 of 90 (scaled to the "
    "run); cosine: to 0. Default lr: 0.1 x batch_size / 256; default length: 90 epochs.",
)
flags.DEFINE_float("warmup_epochs", 0.0, "Warm-up: at lr/10 (step) or linear from 0 (cosine).", lower_bound=0)
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing (0.1 is common), in [0, 1).", lower_bound=0)
flags.register_validator("label_smoothing", lambda v: v < 1, message="--label_smoothing must be below 1")
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    if FLAGS.steps is not None and FLAGS.epochs is not None:
        raise app.UsageError("give --steps or --epochs, not both")
    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir is required (an image folder with train/, or a tfds directory)")
    from keras_resnet_cifar.training import imagenet_train

    config = imagenet_train.ImageNetConfig(
        arch=FLAGS.arch,
        residual=not FLAGS.plain,
        shortcut=FLAGS.shortcut,
        stride_on=FLAGS.stride_on,
        data_dir=os.path.expanduser(FLAGS.data_dir),
        manual_dir=FLAGS.manual_dir and os.path.expanduser(FLAGS.manual_dir),
        model_dir=FLAGS.model_dir or os.path.join("runs", FLAGS.arch),
        image_size=FLAGS.image_size,
        scale_augmentation=FLAGS.scale_augmentation,
        schedule=FLAGS.schedule,
        epochs=None if FLAGS.steps else (FLAGS.epochs or 90),
        warmup_epochs=FLAGS.warmup_epochs,
        label_smoothing=FLAGS.label_smoothing,
        **app.run_flag_values(FLAGS),
    )
    imagenet_train.train_imagenet(config, log=lambda line: print(line, flush=True))
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
