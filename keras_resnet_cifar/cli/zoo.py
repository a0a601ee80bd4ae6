"""Builds every CIFAR model of the zoo and prints its measured size next to the one the registry pins.

Usage:
    krc-zoo                   # all variants, ResNet1202 included
    krc-zoo --max_depth=56    # skip the deep ones
    krc-zoo --format=markdown
"""

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_integer("max_depth", 1202, "Build only variants up to this depth.", lower_bound=8)
flags.DEFINE_enum("format", "text", ["text", "markdown"], "Table format.")
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    from keras_resnet_cifar.study import zoo

    ok = zoo.print_table(max_depth=FLAGS.max_depth, markdown=FLAGS.format == "markdown")
    return 0 if ok else 1


def run():
    """The console-script entry point."""
    app.run(main)
