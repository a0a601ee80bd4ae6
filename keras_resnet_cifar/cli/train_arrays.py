"""Trains a CIFAR ResNet from a .npz file without TensorFlow (the accelerator path).

Run with the JAX backend on a machine that has JAX (and no TensorFlow):
    KERAS_BACKEND=jax python tools/train_arrays.py --data=cifar10.npz --n=3 --model_dir=runs/r20-jax

Make the .npz once where TensorFlow is installed:
    python tools/to_npz.py --data_dir=../shared/cifar10-jpeg --out=cifar10.npz

Augmentation runs on the device inside the compiled train step; the model,
schedules and split are the same as tools/train.py's.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_string(
    "data",
    None,
    "A .npz file with train_images, train_labels, class_names "
    "(and optionally test_images, test_labels), as tools/to_npz.py writes.",
)
flags.DEFINE_integer("n", None, "Blocks per stage (depth 6n+2). Default 3.", lower_bound=1)
flags.DEFINE_integer("depth", None, "Alternatively the depth 6n+2.", lower_bound=8)
flags.DEFINE_enum("shortcut", "A", ["A", "B"], "Shortcut option.")
flags.DEFINE_bool("plain", False, "The plain net (no shortcuts).")
flags.DEFINE_string("model_dir", None, "Where model.keras and metrics.json go.")
flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
flags.DEFINE_enum("schedule", "paper", ["paper", "cosine", "onecycle"], "Learning-rate schedule.")
flags.DEFINE_float("lr", None, "Peak learning rate (default as tools/train.py).")
flags.register_validator("lr", lambda v: v is None or v > 0, message="--lr must be > 0")
flags.DEFINE_integer("steps", None, "Total iterations (default the paper's 64k at batch 128).", lower_bound=1)
flags.DEFINE_integer("epochs", None, "Total epochs instead of --steps.", lower_bound=1)
flags.DEFINE_float("validation_split", 0.1, "Held-out share of the training set.", lower_bound=0)
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"], "Compute precision.")
flags.register_validator("validation_split", lambda v: v < 1, message="--validation_split must be below 1")
flags.DEFINE_integer("seed", 0, "Seed for weights, split, shuffling and augmentation.", lower_bound=0)
flags.DEFINE_integer("verbose", 2, "1: progress bar; 2: one line per epoch.", lower_bound=0, upper_bound=2)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    n = app.resolve_n(FLAGS.n, FLAGS.depth, default=3)
    if not FLAGS.data:
        raise app.UsageError("--data is required (a .npz file; tools/to_npz.py makes one)")
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required")
    if FLAGS.steps is not None and FLAGS.epochs is not None:
        raise app.UsageError("give --steps or --epochs, not both")

    from keras_resnet_cifar import files
    from keras_resnet_cifar.data import arrays
    from keras_resnet_cifar.training import device_train

    data = arrays.load_npz(FLAGS.data)
    print(data.describe(), flush=True)
    model, metrics = device_train.train_arrays(
        data,
        n=n,
        shortcut=FLAGS.shortcut,
        residual=not FLAGS.plain,
        batch_size=FLAGS.batch_size,
        epochs=FLAGS.epochs,
        steps=FLAGS.steps,
        schedule=FLAGS.schedule,
        learning_rate=FLAGS.lr,
        validation_split=FLAGS.validation_split,
        precision=FLAGS.precision,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
        log=lambda line: print(line, flush=True),
    )
    files.save_model(model, os.path.join(FLAGS.model_dir, "model.keras"))
    files.write_text(os.path.join(FLAGS.model_dir, "labels.txt"), "\n".join(data.class_names) + "\n")
    files.write_json(os.path.join(FLAGS.model_dir, "metrics.json"), metrics)
    print("Final: " + ", ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)
    print(f"Saved {os.path.join(FLAGS.model_dir, 'model.keras')}")
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
