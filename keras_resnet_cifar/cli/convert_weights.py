"""Converts a PyTorch checkpoint of akamaster/pytorch_resnet_cifar10 to model.keras.

Examples:
    python tools/convert_weights.py \\
        --checkpoint=../shared/reference-weights/akamaster/resnet20-12fca82f.th \\
        --output=converted/resnet20/model.keras \\
        --verify_dir=../shared/cifar10-jpeg --verify_per_class=500

Needs torch (pip install '.[torch]'). The checkpoint is read with
torch.load(weights_only=True): no code from the file runs.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_string("checkpoint", None, "The PyTorch checkpoint (.th/.pth).")
flags.DEFINE_string("output", None, "Where to write the .keras model (labels.txt goes beside it).")
flags.DEFINE_string(
    "verify_dir",
    None,
    "Optional image folder (<root>/train/<class>/*.jpg): compare our "
    "predictions with the PyTorch forward pass of the same weights.",
)
flags.DEFINE_string(
    "export_base", None, "Also export a TF Serving SavedModel to <export_base>/<model name>/<next version>."
)
flags.DEFINE_integer(
    "verify_per_class", 500, "Images per class for --verify_dir (the first by file name).", lower_bound=1
)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    if not FLAGS.checkpoint or not FLAGS.output:
        raise app.UsageError("--checkpoint and --output are required")
    if not FLAGS.output.endswith(".keras"):
        raise app.UsageError(f"--output must end in .keras, got {FLAGS.output}")
    app.check_output("output", FLAGS.output)
    if FLAGS.export_base:
        app.check_output("export_base", FLAGS.export_base, folder=True)
    from keras_resnet_cifar import files
    from keras_resnet_cifar.data import sources
    from keras_resnet_cifar.models import convert, stats

    state = convert.read_checkpoint(FLAGS.checkpoint)
    model = convert.convert_state_dict(state)
    print(
        f"{FLAGS.checkpoint}: {len(state)} tensors -> {model.name} (n={convert.infer_n(state)}), "
        f"{stats.trainable_params(model):,} trainable parameters, every tensor used once"
    )
    files.save_model(model, FLAGS.output)
    labels = os.path.join(os.path.dirname(os.path.abspath(FLAGS.output)), "labels.txt")
    files.write_text(labels, "\n".join(sources.CIFAR10_CLASSES) + "\n")
    print(f"wrote {FLAGS.output} and {labels}")
    if FLAGS.export_base:
        from keras_resnet_cifar.serving import export

        card = {
            "dataset": "cifar10",
            "source": f"converted from {os.path.basename(FLAGS.checkpoint)} "
            "(akamaster/pytorch_resnet_cifar10, BSD 2-Clause)",
        }
        path = export.export_saved_model(model, FLAGS.export_base, class_names=sources.CIFAR10_CLASSES, card=card)
        print(f"exported {path}")
    if FLAGS.verify_dir:
        parity = convert.verify(model, state, FLAGS.verify_dir, FLAGS.verify_per_class)
        print(
            f"parity on {parity['images']:,} images of {FLAGS.verify_dir} ({parity['seconds']:.0f} s): "
            f"keras accuracy {parity['keras_accuracy']:.4f}, pytorch accuracy {parity['pytorch_accuracy']:.4f}, "
            f"same prediction {parity['agreement']:.4f}, max |logit difference| {parity['max_logit_diff']:.2e}"
        )
        if parity["agreement"] < 1:
            raise convert.ConversionError(f"predictions differ from PyTorch on {parity['disagreements']} images")
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
