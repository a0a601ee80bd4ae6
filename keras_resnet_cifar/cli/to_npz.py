"""Decodes a dataset once into a .npz file, for a machine without TensorFlow (tools/train.py --data_dir=x.npz).

Example:
    python tools/to_npz.py --data_dir=../shared/cifar10-jpeg --out=cifar10.npz
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_string("data_dir", None, "Image folder, CIFAR batches or prepared tfds directory.")
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "cifar100"], "Dataset (tfds and batches layouts).")
flags.DEFINE_string("out", None, "The .npz file to write.")
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    if not FLAGS.out:
        raise app.UsageError("--out is required (a .npz path)")
    if not FLAGS.out.endswith(".npz"):
        # tools/train.py tells a .npz from a data folder by its name.
        raise app.UsageError(f"--out {FLAGS.out} must end in .npz, as tools/train.py --data_dir reads it")
    app.check_output("out", FLAGS.out)  # before the decoding
    from keras_resnet_cifar.data import arrays, sources

    data = sources.load_dataset(FLAGS.dataset, FLAGS.data_dir)
    print(data.describe())
    arrays.save_npz(data, FLAGS.out)
    print(f"Wrote {FLAGS.out} ({os.path.getsize(FLAGS.out) / 2**20:.0f} MiB)")
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
