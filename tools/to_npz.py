"""Decodes a dataset once into a .npz file for tools/train_arrays.py.

Example:
    python tools/to_npz.py --data_dir=../shared/cifar10-jpeg --out=cifar10.npz
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from tools import cli  # noqa: E402

flags.DEFINE_string("data_dir", None, "Image folder, CIFAR batches or prepared tfds directory.")
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "cifar100"], "Dataset (tfds and batches layouts).")
flags.DEFINE_string("out", None, "The .npz file to write.")
FLAGS = flags.FLAGS


def main(argv):
    cli.reject_extra_args(argv)
    if not FLAGS.out:
        raise cli.UsageError("--out is required (a .npz path)")
    from keras_resnet_cifar.data import arrays, input_pipeline

    data = input_pipeline.load_dataset(FLAGS.dataset, FLAGS.data_dir)
    print(data.describe())
    arrays.save_npz(data, FLAGS.out)
    print(f"Wrote {FLAGS.out} ({os.path.getsize(FLAGS.out) / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    cli.run(main)
