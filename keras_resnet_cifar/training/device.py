"""The TensorFlow-side settings chosen for the machine: precision, XLA, strategy, input threads."""

import tensorflow as tf

from keras_resnet_cifar.training import machine

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "mirrored", "one_device")


def resolve_precision(precision):
    """ "auto": mixed_float16 with a GPU; on CPU mixed_bfloat16 where AMX runs it, else float32.

    Without AMX-BF16 (for example AVX2-only CPUs) bfloat16 is emulated and
    several times slower than float32.
    """
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if machine.cpu_has_amx() else "float32"


def resolve_xla(xla, precision, deterministic, replicas, backend="tensorflow"):
    """``jit_compile`` for the train step: the caller's choice, else the faster setting.

    Measured with tools/benchmark.py on a 2-core AVX2 CPU (README,
    Performance): for float32, XLA gains 2-6% on ResNet20 and loses 10% on
    ResNet56, so it stays off, as Keras's "auto" has it on CPUs. For
    mixed_bfloat16 on a CPU without AMX, TensorFlow's own kernels emulate
    bfloat16 (about 22 images/s for ResNet20, against 133-217 with XLA), so
    XLA goes on. With AMX, oneDNN's bfloat16 kernels run without XLA.
    Deterministic and multi-replica runs never get XLA by default. Under
    JAX the step is always compiled (uncompiled JAX is many times slower);
    under torch, ``jit_compile`` means torch.compile, which stays off.
    """
    if xla is not None:
        return xla
    if backend != "tensorflow":
        return backend == "jax"
    if tf.config.list_physical_devices("GPU"):
        return "auto"
    if deterministic or replicas != 1:
        return False
    return precision == "mixed_bfloat16" and not machine.cpu_has_amx()


def make_strategy(name):
    """A tf.distribute strategy; "mirrored" without GPUs mirrors over logical CPUs."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def input_threads(dataset):
    """``dataset`` with the input threads suited to this machine.

    Without a GPU the model's step uses every core, and tf.data's shared
    thread pool competing with it cost 4% of the training rate under
    TensorFlow and 10% under torch (ResNet20 on 2 cores; README, Performance),
    while one thread feeds 69,000 CIFAR images a second: so a CPU run gets one
    private input thread. With a GPU, tf.data keeps its own choice.
    """
    if machine.has_gpu():
        return dataset
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)
