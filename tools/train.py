"""Trains a CIFAR ResNet with the paper's recipe (or a shorter one).

Examples:
    python tools/train.py --n=3 --shortcut=A
    python tools/train.py --depth=20 --data_dir=../shared/cifar10-jpeg \\
        --schedule=onecycle --epochs=10 --model_dir=runs/resnet20-onecycle
    python tools/train.py --depth=56 --plain --steps=2000

Re-running the same command after an interruption resumes from the last
completed epoch. Every flag: python tools/train.py --helpfull
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from tools import cli  # noqa: E402

flags.DEFINE_integer("n", None, "Blocks per stage (depth 6n+2): 3, 5, 7, 9, 18, 200. Default 3.")
flags.DEFINE_integer("depth", None, "Alternatively the depth 6n+2: 20, 32, 44, 56, 110, 1202.")
flags.DEFINE_enum("shortcut", "A", ["A", "B"], "A: subsample + zero channels; B: 1x1 projection.")
flags.DEFINE_bool("plain", False, "Train the paper's plain net (no shortcuts).")
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "cifar100"], "Dataset.")
flags.DEFINE_string("data_dir", None, "Image folder (<root>/train/<class>/*.jpg), cifar-10-batches-py / "
                    "cifar-100-python directory, or prepared tfds directory. Default: Keras's cache "
                    "(~/.keras/datasets) when it holds the batches, else a tfds download.")
flags.DEFINE_string("model_dir", None, "Run directory. Default: runs/<model name>.")
flags.DEFINE_integer("batch_size", 128, "Global batch size.")
flags.DEFINE_float("lr", None, "Peak learning rate. Default 0.1 (onecycle 0.2) x batch_size / 128 "
                   "(the linear scaling rule).")
flags.DEFINE_enum("schedule", "paper", ["paper", "cosine", "onecycle"],
                  "paper: lr/10 at 50% and 75% of the steps (32k, 48k of 64k); cosine; onecycle.")
flags.DEFINE_integer("steps", None, "Total iterations. Default: the paper's 64k x 128 / batch_size.")
flags.DEFINE_integer("epochs", None, "Total epochs instead of --steps.")
flags.DEFINE_integer("steps_per_epoch", None, "Steps between evaluations and log rows. Default: one pass "
                     "over the training split.")
flags.DEFINE_integer("warmup_steps", None, "Steps at lr/10 first (paper schedule). Default 400 for n >= 18.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "Coupled (PyTorch-style) weight decay.")
flags.DEFINE_float("validation_split", 0.1, "Held-out share of the training set (0.1 = the paper's 45k/5k); 0 trains on all.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                  "auto: mixed_float16 on a GPU, float32 on CPU.")
flags.DEFINE_bool("xla", None, "Jit-compile the train step. Default: on for mixed_bfloat16 on a CPU without AMX (emulated bf16 is 6x slower without it), Keras decides otherwise.")
flags.DEFINE_integer("seed", 0, "Seed for weights, split, shuffling and augmentation.")
flags.DEFINE_bool("deterministic", False, "Deterministic TensorFlow ops: bit-identical runs (slower).")
flags.DEFINE_enum("strategy", "auto", ["auto", "mirrored", "one_device"],
                  "auto: MirroredStrategy over all GPUs when there are several.")
flags.DEFINE_integer("steps_per_execution", 1, "Train steps per graph call.")
flags.DEFINE_bool("overwrite", False, "Replace a finished run in --model_dir.")
flags.DEFINE_bool("export", True, "Also export a TF Serving SavedModel to <model_dir>/export/<name>/<version>.")
flags.DEFINE_string("init_weights", None, "Start from pretrained weights: cifar10 (ResNet20/32/44/56 option A; "
                    "with --dataset=cifar100 the classifier is new) or a .weights.h5 file of the same network.")
flags.DEFINE_integer("verbose", None, "1: progress bar; 2: one line per epoch. Default: 1 on a terminal.")
FLAGS = flags.FLAGS


def main(argv):
    cli.reject_extra_args(argv)
    n = cli.resolve_n(FLAGS.n, FLAGS.depth, default=3)
    from keras_resnet_cifar import train  # after the flag checks: TensorFlow takes seconds to import

    from keras_resnet_cifar import resnet

    name = resnet.model_name(n, not FLAGS.plain, FLAGS.shortcut)
    config = train.TrainConfig(
        n=n, residual=not FLAGS.plain, shortcut=FLAGS.shortcut, dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir, model_dir=FLAGS.model_dir or os.path.join("runs", name),
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.lr, schedule=FLAGS.schedule,
        steps=FLAGS.steps, epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch, warmup_steps=FLAGS.warmup_steps,
        momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay,
        validation_split=FLAGS.validation_split, precision=FLAGS.precision, xla=FLAGS.xla,
        seed=FLAGS.seed, deterministic=FLAGS.deterministic, strategy=FLAGS.strategy,
        steps_per_execution=FLAGS.steps_per_execution, overwrite=FLAGS.overwrite,
        verbose=FLAGS.verbose, export=FLAGS.export, init_weights=FLAGS.init_weights,
    )
    train.train_and_evaluate(config)
    return 0


if __name__ == "__main__":
    cli.run(main)
