"""Exports a .keras model (or a training run) as a TF Serving SavedModel, a LiteRT or an ONNX file.

Examples:
    python tools/export.py --model_dir=runs/resnet20 --export_base=/srv/models
    python tools/export.py --model=model.keras --export_base=/srv/models --model_name=cifar --version=3
    python tools/export.py --model=resnet20:cifar10 --export_base=deploy --format=litert --quantize=int8 \\
        --data_dir=../shared/cifar10-jpeg
    python tools/export.py --model=resnet20:cifar10 --export_base=deploy --format=onnx
    python tools/export.py --model=resnet20:cifar10 --export_base=/srv/models --precision=bfloat16

Writes <export_base>/<model_name>/<version>/ (next free version by default);
never overwrites an existing version. LiteRT and ONNX versions hold
model.tflite or model.onnx, labels.txt and model_card.json.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app
from keras_resnet_cifar.serving import runtimes

flags.DEFINE_string(
    "model",
    None,
    "A .keras model file, or a pretrained model by name: resnet20:cifar10, "
    "resnet32:cifar10, resnet44:cifar10, resnet56:cifar10.",
)
flags.DEFINE_string(
    "model_dir", None, "Alternatively a training run directory (model.keras, labels.txt, metrics.json)."
)
flags.DEFINE_string("export_base", None, "The base directory (for a SavedModel, the one TF Serving watches).")
flags.DEFINE_string(
    "model_name",
    None,
    "The model's sub-directory (TF Serving's model name). Default: the Keras model's name (resnet20), with "
    "the format and quantization for the other formats (resnet20_litert_int8, resnet20_onnx), and the precision "
    "for a bfloat16 SavedModel (resnet20_bfloat16).",
)
flags.DEFINE_integer("version", None, "Integer version. Default: the next free one.", lower_bound=1)
flags.DEFINE_bool("warmup", True, "SavedModel: write assets.extra/tf_serving_warmup_requests.")
flags.DEFINE_enum(
    "format",
    "saved_model",
    ["saved_model", *runtimes.FILES],
    "saved_model: TF Serving; litert: model.tflite (needs the litert extra); onnx: model.onnx (the onnx extra).",
)
flags.DEFINE_enum(
    "quantize",
    "none",
    list(runtimes.QUANTIZE),
    "LiteRT only: none (float32), float16 (weights), int8 (weights and activations, uint8 pixels in; "
    "calibrated on --calibration_images training images of --data_dir).",
)
flags.DEFINE_enum(
    "precision",
    "float32",
    list(runtimes.PRECISIONS),
    "SavedModel only: what the served graph computes in (its inputs and outputs are the same). bfloat16 "
    "serves batches faster where the CPU runs bfloat16 in hardware (AMX; docs/performance.md).",
)
flags.DEFINE_string(
    "data_dir", None, "For --quantize=int8: the training images to calibrate on (any layout train.py reads)."
)
flags.DEFINE_integer("calibration_images", 500, "For --quantize=int8: how many training images.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "For --quantize=int8: the seed that draws the calibration images.", lower_bound=0)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    if bool(FLAGS.model) == bool(FLAGS.model_dir):
        raise app.UsageError("give exactly one of --model or --model_dir")
    if not FLAGS.export_base:
        raise app.UsageError("--export_base is required")
    app.check_output("export_base", FLAGS.export_base, folder=True)
    refusal = runtimes.quantize_refusal(FLAGS.format, FLAGS.quantize)
    if refusal:
        raise app.UsageError(f"--quantize={FLAGS.quantize}: {refusal}")
    calibration_flags = [f"--{n}" for n in ("data_dir", "calibration_images", "seed") if FLAGS[n].present]
    if FLAGS.quantize != "int8" and calibration_flags:
        raise app.UsageError(f"{', '.join(calibration_flags)}: only --quantize=int8 calibrates on training images")
    for name, why in (("warmup", "TF Serving's warm-up requests"), ("precision", "float32 or bfloat16 graph")):
        if FLAGS.format != "saved_model" and FLAGS[name].present:
            raise app.UsageError(f"--{name} is for --format=saved_model (the {why})")
    if FLAGS.quantize == "int8" and not FLAGS.data_dir:
        raise app.UsageError(
            "--quantize=int8 calibrates on training images: give --data_dir (for example ../shared/cifar10-jpeg)"
        )
    if FLAGS.format != "saved_model":
        runtimes.require(FLAGS.format)  # before anything loads: a missing extra is quick
    path = FLAGS.model or os.path.join(FLAGS.model_dir, "model.keras")
    from keras_resnet_cifar.serving import loading
    from keras_resnet_cifar.training import machine

    if loading.parse_spec(path) is None and not os.path.exists(path):  # before TensorFlow loads
        raise app.UsageError(f"{path} does not exist")
    # Every format is traced from TensorFlow functions, whatever KERAS_BACKEND says.
    machine.select_backend("tensorflow")
    from keras_resnet_cifar.serving import export
    from keras_resnet_cifar.training import run_log

    loaded = loading.load(path)
    card = dict(loaded.card)
    metrics, config = loaded.run_record("metrics.json"), loaded.run_record("config.json")
    if metrics and config:
        card = run_log.export_card(config.get("dataset"), metrics)
    # The validation split the run held out, for krc-evaluate --split=val on the export.
    card.update(validation_split=config.get("validation_split", 0.1), validation_seed=config.get("seed", 0))
    named = {"class_names": loaded.class_names, "card": card, "log": print}
    if FLAGS.format == "saved_model":
        out = export.export_saved_model(
            loaded.model,
            FLAGS.export_base,
            FLAGS.model_name,
            FLAGS.version,
            warmup=FLAGS.warmup,
            precision=FLAGS.precision,
            **named,
        )
    else:
        from keras_resnet_cifar.serving import portable

        out = portable.export_file(
            loaded.model,
            FLAGS.format,
            FLAGS.export_base,
            FLAGS.model_name,
            FLAGS.version,
            quantize=FLAGS.quantize,
            calibration=_calibration_images(config, card) if FLAGS.quantize == "int8" else None,
            **named,
        )
    print(f"exported {path} to {out}")
    return 0


def _calibration_images(saved, card):
    """``--calibration_images`` images drawn by ``--seed`` from the training split (the validation split left out).

    Args:
        saved: the run's config.json ({} for a pretrained name).
        card: the model card, which gains the calibration's description.
    """
    import numpy as np

    from keras_resnet_cifar.data import sources
    from keras_resnet_cifar.serving import evaluate

    data = sources.load_dataset(saved.get("dataset", "cifar10"), FLAGS.data_dir)
    images, _ = evaluate.split_images(data, "train", card["validation_split"], card["validation_seed"])
    count = min(FLAGS.calibration_images, len(images))
    chosen = np.sort(np.random.default_rng(FLAGS.seed).choice(len(images), count, replace=False))
    card["calibration"] = {"images": count, "seed": FLAGS.seed, "data": data.source, "split": "train"}
    return images[chosen]


def run():
    """The console-script entry point."""
    app.run(main)
