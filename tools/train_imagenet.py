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
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from tools import cli  # noqa: E402

ARCHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
flags.DEFINE_enum("arch", "resnet50", ARCHS, "Network (the paper's Table 1).")
flags.DEFINE_bool("plain", False, "The plain net (no shortcuts; the paper's Table 2).")
flags.DEFINE_enum("shortcut", "B", ["A", "B", "C"], "A: zero-padding, B: projection where the shape changes, "
                  "C: projection everywhere (Table 3).")
flags.DEFINE_enum("stride_on", "3x3", ["3x3", "1x1"], "Bottleneck stride on the 3x3 (v1.5) or the first 1x1 (v1).")
flags.DEFINE_string("data_dir", None, "Image folder with train/ (and val/), or a tfds directory.")
flags.DEFINE_string("manual_dir", None, "Where the ILSVRC2012 tar files are, for tfds to prepare imagenet2012.")
flags.DEFINE_string("model_dir", None, "Run directory. Default: runs/<arch>.")
flags.DEFINE_integer("image_size", 224, "Training and serving image side.")
flags.DEFINE_bool("scale_augmentation", False, "The paper's scale augmentation (shorter side in [256, 480], "
                  "random crop) instead of random-resized crops.")
flags.DEFINE_integer("batch_size", 256, "Global batch size.")
flags.DEFINE_float("lr", None, "Peak learning rate. Default 0.1 x batch_size / 256.")
flags.DEFINE_enum("schedule", "step", ["step", "cosine"], "step: /10 at epochs 30, 60, 80 of 90 (scaled to the "
                  "run); cosine: to 0.")
flags.DEFINE_integer("epochs", None, "Total epochs (default 90).")
flags.DEFINE_integer("steps", None, "Total iterations instead of --epochs.")
flags.DEFINE_float("warmup_epochs", 0.0, "Linear learning-rate warm-up.")
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing (0.1 is common).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "Coupled (PyTorch-style) weight decay.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "auto: mixed_float16 on GPU; on CPU mixed_bfloat16 with AMX, else float32.")
flags.DEFINE_bool("xla", None, "Jit-compile the train step. Default: on for mixed_bfloat16 on a CPU without AMX, Keras decides otherwise.")
flags.DEFINE_enum("strategy", "auto", ["auto", "mirrored", "one_device"], "auto: MirroredStrategy over all GPUs.")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and augmentation.")
flags.DEFINE_integer("verbose", None, "1: progress bar; 2: one line per epoch. Default: 1 on a terminal.")
flags.DEFINE_bool("export", True, "Also export a TF Serving SavedModel to <model_dir>/export/<name>/<version>.")
flags.DEFINE_bool("overwrite", False, "Replace a finished run in --model_dir.")
FLAGS = flags.FLAGS


def main(argv):
    cli.reject_extra_args(argv)
    if FLAGS.steps is not None and FLAGS.epochs is not None:
        raise cli.UsageError("give --steps or --epochs, not both")
    if not FLAGS.data_dir:
        raise cli.UsageError("--data_dir is required (an image folder with train/, or a tfds directory)")
    from keras_resnet_cifar import imagenet_train

    config = imagenet_train.ImageNetConfig(
        arch=FLAGS.arch, residual=not FLAGS.plain, shortcut=FLAGS.shortcut, stride_on=FLAGS.stride_on,
        data_dir=os.path.expanduser(FLAGS.data_dir),
        manual_dir=FLAGS.manual_dir and os.path.expanduser(FLAGS.manual_dir),
        model_dir=FLAGS.model_dir or os.path.join("runs", FLAGS.arch), image_size=FLAGS.image_size,
        scale_augmentation=FLAGS.scale_augmentation, batch_size=FLAGS.batch_size, learning_rate=FLAGS.lr,
        schedule=FLAGS.schedule, epochs=None if FLAGS.steps else (FLAGS.epochs or 90), steps=FLAGS.steps,
        warmup_epochs=FLAGS.warmup_epochs, label_smoothing=FLAGS.label_smoothing, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, precision=FLAGS.precision, xla=FLAGS.xla, strategy=FLAGS.strategy,
        seed=FLAGS.seed, verbose=FLAGS.verbose, export=FLAGS.export, overwrite=FLAGS.overwrite)
    imagenet_train.train_imagenet(config, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    cli.run(main)
