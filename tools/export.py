"""Exports a .keras model (or a training run) as a TF Serving SavedModel.

Examples:
    python tools/export.py --model_dir=runs/resnet20 --export_base=/srv/models
    python tools/export.py --model=model.keras --export_base=/srv/models --model_name=cifar --version=3

Writes <export_base>/<model_name>/<version>/ (next free version by default);
never overwrites an existing version.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from tools import cli  # noqa: E402

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
    cli.reject_extra_args(argv)
    if bool(FLAGS.model) == bool(FLAGS.model_dir):
        raise cli.UsageError("give exactly one of --model or --model_dir")
    if not FLAGS.export_base:
        raise cli.UsageError("--export_base is required")
    path = FLAGS.model or os.path.join(FLAGS.model_dir, "model.keras")
    from keras_resnet_cifar.serving import export, loading
    from keras_resnet_cifar.training import runner

    if loading.parse_spec(path) is None and not os.path.isfile(path):
        raise cli.UsageError(f"{path} does not exist")
    loaded = loading.load(path)
    card = loaded.card
    if loaded.run_dir:
        metrics_path = os.path.join(loaded.run_dir, "metrics.json")
        config_path = os.path.join(loaded.run_dir, "config.json")
        if os.path.exists(metrics_path) and os.path.exists(config_path):
            with open(metrics_path) as f, open(config_path) as g:
                card = runner.export_card(json.load(g).get("dataset"), json.load(f))
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


if __name__ == "__main__":
    cli.run(main)
