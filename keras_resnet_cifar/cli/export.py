"""Exports a .keras model (or a training run) as a TF Serving SavedModel.

Examples:
    python tools/export.py --model_dir=runs/resnet20 --export_base=/srv/models
    python tools/export.py --model=model.keras --export_base=/srv/models --model_name=cifar --version=3

Writes <export_base>/<model_name>/<version>/ (next free version by default);
never overwrites an existing version.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_string(
    "model",
    None,
    "A .keras model file, or a pretrained model by name: resnet20:cifar10, "
    "resnet32:cifar10, resnet44:cifar10, resnet56:cifar10.",
)
flags.DEFINE_string(
    "model_dir", None, "Alternatively a training run directory (model.keras, labels.txt, metrics.json)."
)
flags.DEFINE_string("export_base", None, "The base directory TF Serving watches.")
flags.DEFINE_string("model_name", None, "Served model name (sub-directory). Default: the Keras model's name.")
flags.DEFINE_integer("version", None, "Integer version. Default: the next free one.", lower_bound=1)
flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.")
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    if bool(FLAGS.model) == bool(FLAGS.model_dir):
        raise app.UsageError("give exactly one of --model or --model_dir")
    if not FLAGS.export_base:
        raise app.UsageError("--export_base is required")
    path = FLAGS.model or os.path.join(FLAGS.model_dir, "model.keras")
    from keras_resnet_cifar.serving import loading

    if loading.parse_spec(path) is None and not os.path.isfile(path):  # before TensorFlow loads
        raise app.UsageError(f"{path} does not exist")
    from keras_resnet_cifar.serving import export
    from keras_resnet_cifar.training import run_log

    loaded = loading.load(path)
    card = loaded.card
    metrics, config = loaded.run_record("metrics.json"), loaded.run_record("config.json")
    if metrics and config:
        card = run_log.export_card(config.get("dataset"), metrics)
    out = export.export_saved_model(
        loaded.model,
        FLAGS.export_base,
        FLAGS.model_name,
        FLAGS.version,
        class_names=loaded.class_names,
        card=card,
        warmup=FLAGS.warmup,
        log=print,
    )
    print(f"exported {path} to {out}")
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
