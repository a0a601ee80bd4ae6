"""Classifies PNG/JPEG images or a .npy batch with a .keras model or an export (SavedModel, LiteRT, ONNX).

Examples:
    python tools/predict.py --model=runs/resnet20/model.keras cat.png ship.jpg
    python tools/predict.py --model=resnet56:cifar10 ../shared/cifar10-jpeg/train/cat/0001.jpg
    python tools/predict.py --model=runs/resnet20/export/resnet20/1 --npy=batch.npy --top_k=3 --json
    python tools/predict.py --model=deploy/resnet20_litert_int8/1/model.tflite cat.png
"""

import json

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_string(
    "model",
    None,
    "A .keras file, a SavedModel, LiteRT or ONNX version directory (or its .tflite or .onnx file), or a "
    "pretrained model by name: resnet20:cifar10, resnet32:cifar10, resnet44:cifar10, resnet56:cifar10.",
)
flags.DEFINE_string("npy", None, "A .npy batch [N, 32, 32, 3] of 0..255 pixels instead of image files.")
flags.DEFINE_integer("top_k", 5, "How many classes to show per image.", lower_bound=1)
flags.DEFINE_bool("json", False, "Print JSON instead of text.")
flags.DEFINE_bool("resize", False, "Resize images that are not 32x32 (bilinear) instead of refusing them.")
FLAGS = flags.FLAGS


def main(argv):
    paths = argv[1:]
    if not FLAGS.model:
        raise app.UsageError("--model is required")
    if bool(paths) == bool(FLAGS.npy):
        raise app.UsageError("give image files or --npy (not both)")
    from keras_resnet_cifar.serving import loading

    loading.parse_spec(FLAGS.model)  # an unknown name fails before TensorFlow loads
    from keras_resnet_cifar.serving import predict

    images = predict.read_npy(FLAGS.npy) if FLAGS.npy else predict.read_images(paths, FLAGS.resize)
    names = paths or [f"{FLAGS.npy}[{i}]" for i in range(len(images))]
    results = predict.Classifier(FLAGS.model).top_k(images, FLAGS.top_k)
    if FLAGS.json:
        print(
            json.dumps(
                [
                    {"input": name, "top_k": [{"class_id": i, "class": c, "probability": p} for i, c, p in top]}
                    for name, top in zip(names, results)
                ],
                indent=2,
            )
        )
    else:
        for name, top in zip(names, results):
            print(name + ": " + ", ".join(f"{c} {p:.4f}" for _, c, p in top))
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
