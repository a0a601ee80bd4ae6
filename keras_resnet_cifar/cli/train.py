"""Trains a CIFAR ResNet with the paper's recipe (or a shorter one).

Examples:
    python tools/train.py --n=3 --shortcut=A
    python tools/train.py --depth=20 --data_dir=../shared/cifar10-jpeg \\
        --schedule=onecycle --epochs=10 --model_dir=runs/resnet20-onecycle
    python tools/train.py --depth=56 --plain --steps=2000

Several processes (one a host, or one a GPU), under JAX, on keras.distribution:
    python tools/train.py --n=3 --backend=jax --coordinator_address=HOST0:1234 \\
        --num_processes=2 --process_id=0 --model_dir=/shared/runs/r20 --data_dir=/shared/cifar10-jpeg

Re-running the same command after an interruption resumes from the last
completed epoch. Every flag: python tools/train.py --helpfull
"""

from absl import flags

from keras_resnet_cifar.cli import app
from keras_resnet_cifar.training import options

# Every flag from the one option schema (``training/options.py``, pure Python).
app.define_run_flags(options.CIFAR_RUN_DEFAULTS)
options.define_flags(options.CIFAR + options.RUNNER, module_name=__name__)
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
    values = options.flag_values(FLAGS, options.RUN + options.RUNNER + options.CIFAR)
    values.update(
        n=n,
        coordinator_address=cluster.coordinator_address,
        num_processes=cluster.num_processes,
        process_id=cluster.process_id,
    )
    config = options.TrainConfig.of(**values)
    options.check(config)  # before Keras loads: a usage error is quick
    if cluster.multi_process and not supervise.is_child():
        return supervise.run_child("keras_resnet_cifar.cli.train", cluster)
    from keras_resnet_cifar.training import train

    train.train_and_evaluate(config)
    return 0


def run():
    """The console-script entry point."""
    app.run(main, resumes=True)


if __name__ == "__main__":
    run()
