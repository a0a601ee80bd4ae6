"""Builds the shipped CIFAR-10 weights from the reference's PyTorch checkpoints.

Examples:
    python tools/build_weights.py                       # into keras_resnet_cifar/models/weights/
    python tools/build_weights.py --output_dir=/tmp/w   # elsewhere, to compare

Converts each checkpoint of ``pretrained.PRETRAINED`` with ``convert.py``,
writes ``<model>_cifar10.weights.h5`` and the reference's LICENSE, and prints
each file's size and SHA-256 beside the digest pinned in pretrained.py (the
files are byte-reproducible). Exits 1 if a digest differs. Needs torch
(pip install '.[torch]').
"""

import hashlib
import os
import sys

from absl import flags

from keras_resnet_cifar.cli import app

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string(
    "reference_dir",
    os.path.join(REPO, "..", "shared", "reference-weights", "akamaster"),
    "Folder with the reference's checkpoints and LICENSE.",
)
flags.DEFINE_string(
    "output_dir",
    os.path.join(REPO, "keras_resnet_cifar", "models", "weights"),
    "Where to write the .weights.h5 files and LICENSE.",
)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    license_path = os.path.join(FLAGS.reference_dir, "LICENSE")
    if not os.path.isfile(license_path):
        raise app.UsageError(f"--reference_dir {FLAGS.reference_dir} holds no LICENSE file")
    from keras_resnet_cifar import files
    from keras_resnet_cifar.models import convert, pretrained

    mismatched = []
    for entry in pretrained.PRETRAINED.values():
        model = convert.convert_state_dict(convert.read_checkpoint(os.path.join(FLAGS.reference_dir, entry.checkpoint)))
        path = os.path.join(FLAGS.output_dir, entry.filename)
        files.save_weights(model, path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        same = digest == entry.sha256
        mismatched += [] if same else [entry.filename]
        print(
            f"{entry.filename}: {os.path.getsize(path):,} bytes, sha256 {digest} "
            f"({'as pinned' if same else 'pinned ' + entry.sha256})"
        )
    files.write_text(os.path.join(FLAGS.output_dir, "LICENSE"), open(license_path).read())
    print(f"wrote {len(pretrained.PRETRAINED)} files and LICENSE to {FLAGS.output_dir}")
    if mismatched:
        print(
            f"error: {len(mismatched)} digest(s) differ from pretrained.PRETRAINED: {', '.join(mismatched)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
