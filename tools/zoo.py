"""Builds every model of the zoo and prints its size next to the paper's.

Usage:
    python tools/zoo.py                 # all variants, ResNet1202 included
    python tools/zoo.py --max_depth=56  # skip the deep ones
    python tools/zoo.py --format=markdown
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags

flags.DEFINE_integer("max_depth", 1202, "Build only variants up to this depth.", lower_bound=8)
flags.DEFINE_enum("format", "text", ["text", "markdown"], "Table format.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from keras_resnet_cifar.study import zoo

    ok = zoo.print_table(max_depth=FLAGS.max_depth, markdown=FLAGS.format == "markdown")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    app.run(main)
