"""Prints the stage-by-stage breakdown of a CIFAR ResNet, read off the built model.

Examples:
    python tools/describe.py                         # ResNet20, option A
    python tools/describe.py --depth=56 --shortcut=B
    python tools/describe.py --n=3 --plain --format=markdown
"""

import sys

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_integer("n", None, "Blocks per stage (depth 6n+2). Default 3.", lower_bound=1)
flags.DEFINE_integer("depth", None, "Alternatively the depth 6n+2: 20, 32, 44, 56, 110, 1202.", lower_bound=8)
flags.DEFINE_enum("shortcut", "A", ["A", "B"], "A: subsample + zero channels; B: 1x1 projection.")
flags.DEFINE_bool("plain", False, "The plain net (no shortcuts).")
flags.DEFINE_integer("num_classes", 10, "Classifier size.", lower_bound=1)
flags.DEFINE_enum("format", "text", ["text", "markdown"], "Output format.")
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    n = app.resolve_n(FLAGS.n, FLAGS.depth, default=3)
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.study import describe

    model = resnet.resnet_cifar(n=n, residual=not FLAGS.plain, shortcut=FLAGS.shortcut, num_classes=FLAGS.num_classes)
    sys.stdout.write(describe.render(model, FLAGS.format))
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
