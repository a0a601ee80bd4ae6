"""Accuracy, per-class accuracy and confusion matrix of a .keras model or its SavedModel, LiteRT or ONNX export.

Examples:
    python tools/evaluate.py --model=runs/resnet20/model.keras --data_dir=../shared/cifar10-jpeg --split=val
    python tools/evaluate.py --model=runs/resnet20/export/resnet20/1 --data_dir=../shared/cifar10-jpeg --split=val
    python tools/evaluate.py --model=deploy/resnet20_litert_int8/1 --data_dir=../shared/cifar10-jpeg --split=val
    python tools/evaluate.py --model=model.keras --data_dir=cifar-10-batches-py --split=test --json=out.json
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_string(
    "model",
    None,
    "A .keras model file (labels.txt beside it names the classes), a pretrained model by name: "
    "resnet20:cifar10, resnet32:cifar10, resnet44:cifar10, resnet56:cifar10, or an export: a SavedModel (its "
    "version directory), a LiteRT or ONNX one (its version directory, or the .tflite or .onnx file in it).",
)
flags.DEFINE_string("data_dir", None, "Image folder, CIFAR batches or prepared tfds directory.")
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "cifar100"], "Dataset (tfds and batches layouts).")
flags.DEFINE_enum("split", "test", ["train", "val", "test"], "Which split; val as training held it out.")
flags.DEFINE_float(
    "validation_split",
    None,
    "For --split=val/train: default from config.json beside the model (or an export's model card), else 0.1.",
    lower_bound=0,
)
flags.register_validator("validation_split", lambda v: v is None or v < 1, message="--validation_split must be below 1")
flags.DEFINE_integer(
    "seed",
    None,
    "For --split=val/train: default from config.json beside the model (or an export's model card), else 0.",
    lower_bound=0,
)
flags.DEFINE_integer("batch_size", 256, "Batch size for prediction.", lower_bound=1)
flags.DEFINE_string("json", None, "Also write the result as JSON to this path.")
flags.DEFINE_bool(
    "match_classes_by_index",
    False,
    "Score the data's label i as the model's class i when their class names differ (the counts must agree). "
    "Without it, different names are an error.",
)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    if not FLAGS.model:
        raise app.UsageError("--model is required (a .keras file or a name such as resnet20:cifar10)")
    if FLAGS.json:
        app.check_output("json", FLAGS.json)  # before the evaluation
    from keras_resnet_cifar import files
    from keras_resnet_cifar.data import sources
    from keras_resnet_cifar.serving import evaluate, loading, runtimes

    export_file = runtimes.find(FLAGS.model)
    if export_file is None and loading.parse_spec(FLAGS.model) is None:
        if not os.path.exists(FLAGS.model):
            raise app.UsageError(f"--model {FLAGS.model} does not exist")
    # The model before the data: a bad model file fails fast.
    if export_file:
        model = runtimes.open_export(FLAGS.model)
        # The export's card names the validation split of the run it came from.
        card = model.card
        saved = {"validation_split": card.get("validation_split", 0.1), "seed": card.get("validation_seed", 0)}
        model_names, outputs = model.class_names, model.num_classes
    else:
        loaded = loading.load(FLAGS.model)
        model, model_names, outputs = loaded.model, loaded.class_names, loaded.model.output_shape[-1]
        saved = loaded.run_record("config.json")
    validation_split = (
        FLAGS.validation_split if FLAGS.validation_split is not None else saved.get("validation_split", 0.1)
    )
    seed = FLAGS.seed if FLAGS.seed is not None else saved.get("seed", 0)

    data = sources.load_dataset(FLAGS.dataset, FLAGS.data_dir)
    print(data.describe())
    images, labels = evaluate.split_images(data, FLAGS.split, validation_split, seed)
    names = evaluate.match_classes(model_names, outputs, data.class_names, FLAGS.match_classes_by_index)
    if model_names and model_names != names:
        print(f"note: label i of the data is scored as the model's class i: {', '.join(model_names)}")
    result = evaluate.evaluate(model, images, labels, names, FLAGS.batch_size)
    result.update(model=FLAGS.model, split=FLAGS.split, data=data.source)
    print(f"{FLAGS.model} on {FLAGS.split} split")
    print(evaluate.format_report(result))
    if FLAGS.json:
        files.write_json(FLAGS.json, result)
        print(f"wrote {FLAGS.json}")
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
