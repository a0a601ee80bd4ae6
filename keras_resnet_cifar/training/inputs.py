"""The two inputs of the runner: the tf.data pipeline and the arrays input.

"tfdata" is ``input_pipeline.py`` (TensorFlow; augmentation on the host);
"arrays" is ``array_input.py`` (no TensorFlow; uint8 batches, augmentation
in the compiled step, each process its own share of every global batch).
"""

from keras_resnet_cifar.data import array_input
from keras_resnet_cifar.data.sources import tensorflow_importable
from keras_resnet_cifar.training import machine
from keras_resnet_cifar.training.config import TrainingError


def resolve_input(name, backend):
    """The input a run uses: "auto" is arrays under JAX or without TensorFlow, else tf.data."""
    if name != "auto":
        return name
    if backend == "jax" or not tensorflow_importable():
        return "arrays"
    return "tfdata"


def check_input(input_kind, task, cluster):
    """Refuses an input the task, the machine or the job cannot use."""
    if input_kind == "arrays" and task.arrays is None:
        raise TrainingError("this task has no arrays input: pass --input=tfdata")
    if input_kind == "tfdata" and not tensorflow_importable():
        raise TrainingError("--input=tfdata needs TensorFlow, which is not importable here: pass --input=arrays")
    if input_kind == "tfdata" and cluster.multi_process:
        raise TrainingError(
            "several processes need --input=arrays (the default under jax): the tf.data input's last, "
            "partial evaluation batch would split unevenly over the processes"
        )


def check_processes(batch_size, cluster):
    """Refuses a global batch that does not split evenly over the processes (before they join)."""
    if batch_size % cluster.num_processes:
        raise TrainingError(
            f"--batch_size={batch_size} does not divide over {cluster.num_processes} processes: "
            f"pass a multiple of {cluster.num_processes}"
        )


def check_batch(batch_size, cluster, replicas, local_devices):
    """Refuses a global batch that does not split evenly over the devices."""
    if replicas > 1 and (batch_size // cluster.num_processes) % local_devices:
        raise TrainingError(
            f"--batch_size={batch_size} does not divide over {replicas} devices "
            f"({local_devices} a process): pass a multiple of {replicas}"
        )


def training_inputs(task, setup, done):
    """The training stream from the backup's step on, and the validation data, for ``setup.input``."""
    first_step = done * task.steps_per_epoch
    if setup.input == "tfdata":
        val = None if task.val_dataset is None else machine.input_threads(task.val_dataset())
        return machine.input_threads(task.train_dataset(first_step)), val
    arrays, cluster = task.arrays, setup.cluster
    where = (cluster.process_id, cluster.num_processes)
    train = array_input.train_batches(*arrays["train"], arrays["batch_size"], arrays["seed"], first_step, *where)
    val = arrays.get("val")
    if val is not None:
        val = array_input.EvalBatches(*val, arrays["batch_size"], *where, setup.replicas)
    return train, val


def eval_input(task, input_kind, split):
    """One split's evaluation data, in this process alone, or None."""
    if input_kind == "arrays":
        data = task.arrays.get(split)
        return None if data is None else array_input.EvalBatches(*data, task.arrays["batch_size"])
    make = task.val_dataset if split == "val" else task.test_dataset
    return None if make is None else machine.input_threads(make())


def is_input_error(error):
    """Whether ``error`` is TensorFlow's ``InvalidArgumentError`` (a tf.data input that failed on bad data).

    Checked by type, on the class of a TensorFlow already imported: a run
    without TensorFlow has no such errors.
    """
    import sys

    tf_errors = sys.modules.get("tensorflow.python.framework.errors_impl")
    return tf_errors is not None and isinstance(error, tf_errors.InvalidArgumentError)
