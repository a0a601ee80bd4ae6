"""Trains a CIFAR ResNet with the paper's recipe (or a shorter one).

Examples:
    python tools/train.py --n=3 --shortcut=A
    python tools/train.py --depth=20 --data_dir=../shared/cifar10-jpeg \\
        --schedule=onecycle --epochs=10 --model_dir=runs/resnet20-onecycle
    python tools/train.py --depth=56 --plain --steps=2000

Several processes (one a host, or one a GPU), under JAX, on keras.distribution:
    python tools/train.py --n=3 --backend=jax --coordinator_address=HOST0:1234 \
        --num_processes=2 --process_id=0 --model_dir=/shared/runs/r20 --data_dir=/shared/cifar10-jpeg

Re-running the same command after an interruption resumes from the last
completed epoch. Every flag: python tools/train.py --helpfull
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_integer("n", None, "Blocks per stage (depth 6n+2): 3, 5, 7, 9, 18, 200. Default 3.", lower_bound=1)
flags.DEFINE_integer("depth", None, "Alternatively the depth 6n+2: 20, 32, 44, 56, 110, 1202.", lower_bound=8)
flags.DEFINE_enum("shortcut", "A", ["A", "B"], "A: subsample + zero channels; B: 1x1 projection.")
flags.DEFINE_bool("plain", False, "Train the paper's plain net (no shortcuts).")
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "cifar100"], "Dataset.")
flags.DEFINE_string(
    "data_dir",
    None,
    "Image folder (<root>/train/<class>/*.jpg), cifar-10-batches-py / "
    "cifar-100-python directory, .npz file (tools/to_npz.py), or prepared tfds directory. Default: Keras's cache "
    "(~/.keras/datasets) when it holds the batches, else a tfds download.",
)
app.define_run_flags(batch_size=128, model_dir_default="runs/<model name>")
flags.DEFINE_enum(
    "schedule",
    "paper",
    ["paper", "cosine", "onecycle"],
    "paper: lr/10 at 50% and 75% of the steps (32k, 48k of 64k); cosine; onecycle. Default lr: "
    "0.1 (onecycle 0.2) x batch_size / 128 (the linear scaling rule). Default steps: the paper's "
    "64k x 128 / batch_size.",
)
flags.DEFINE_integer(
    "steps_per_epoch",
    None,
    "Steps between evaluations and log rows. Default: one pass over the training split.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "warmup_steps", None, "Steps at lr/10 first (paper schedule). Default 400 for n >= 18.", lower_bound=0
)
flags.DEFINE_float(
    "validation_split",
    0.1,
    "Held-out share of the training set (0.1 = the paper's 45k/5k); 0 trains on all.",
    lower_bound=0,
)
flags.register_validator("validation_split", lambda v: v < 1, message="--validation_split must be below 1")
flags.DEFINE_enum(
    "backend",
    "auto",
    ["auto", "tensorflow", "torch", "jax"],
    "Keras backend to train under. auto: jax for several processes; tensorflow with a GPU or AMX; "
    "else torch where it is installed (the faster one on such CPUs), else tensorflow. Export and "
    "serving are TensorFlow either way.",
)
flags.DEFINE_enum(
    "input",
    "auto",
    ["auto", "tfdata", "arrays"],
    "tfdata: the tf.data pipeline (augmentation on the host); arrays: uint8 arrays, augmentation in "
    "the compiled step, no TensorFlow needed. auto: arrays under jax or without TensorFlow, else tfdata.",
)
flags.DEFINE_string(
    "coordinator_address",
    None,
    "Several processes: HOST:PORT of process 0, the same on every process. "
    "Default: $KERAS_DISTRIBUTION_JOB_ADDRESSES (its first address).",
)
flags.DEFINE_integer(
    "num_processes",
    None,
    "Processes training together (jax backend). Default: $KERAS_DISTRIBUTION_NUM_PROCESSES, else 1.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "process_id",
    None,
    "This process's index, 0 to num_processes-1; 0 writes the outputs. "
    "Default: $KERAS_DISTRIBUTION_PROCESS_ID, else 0.",
    lower_bound=0,
)
flags.DEFINE_integer("steps_per_execution", 1, "Train steps per graph call.", lower_bound=1)
flags.DEFINE_string(
    "init_weights",
    None,
    "Start from pretrained weights: cifar10 (ResNet20/32/44/56 option A; "
    "with --dataset=cifar100 the classifier is new) or a .weights.h5 file of the same network.",
)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    n = app.resolve_n(FLAGS.n, FLAGS.depth, default=3)
    from keras_resnet_cifar.cli import supervise
    from keras_resnet_cifar.training import distributed, machine

    cluster = distributed.cluster_from(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    try:
        distributed.check_backend(cluster, machine.resolve_backend(FLAGS.backend, cluster.num_processes))
        machine.select_backend(FLAGS.backend, cluster.num_processes)  # before Keras is imported
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if cluster.multi_process and not supervise.is_child():
        return supervise.run_child("keras_resnet_cifar.cli.train", cluster)
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import train

    name = resnet.model_name(n, not FLAGS.plain, FLAGS.shortcut)
    config = train.TrainConfig(
        n=n,
        residual=not FLAGS.plain,
        shortcut=FLAGS.shortcut,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        model_dir=FLAGS.model_dir or os.path.join("runs", name),
        schedule=FLAGS.schedule,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        warmup_steps=FLAGS.warmup_steps,
        validation_split=FLAGS.validation_split,
        steps_per_execution=FLAGS.steps_per_execution,
        init_weights=FLAGS.init_weights,
        input=FLAGS.input,
        coordinator_address=cluster.coordinator_address,
        num_processes=cluster.num_processes,
        process_id=cluster.process_id,
        **app.run_flag_values(FLAGS),
    )
    train.train_and_evaluate(config)
    return 0


def run():
    """The console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
