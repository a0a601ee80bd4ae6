"""What the machine offers and the settings chosen for it: precision, XLA, strategy."""

import tensorflow as tf

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "mirrored", "one_device")
# The CPU features that decide speed here.
SPEED_FLAGS = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"}


def cpu_info():
    """The CPU model and its flags, from /proc/cpuinfo (empty where there is none)."""
    info = {"cpu_model": None, "cpu_flags": set()}
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return info
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and info["cpu_model"] is None:
            info["cpu_model"] = value.strip()
        if key.strip() == "flags" and not info["cpu_flags"]:
            info["cpu_flags"] = set(value.split())
    return info


def cpu_has_amx():
    """True when the CPU advertises AMX-BF16 (Sapphire Rapids and later)."""
    return "amx_bf16" in cpu_info()["cpu_flags"]


def resolve_precision(precision):
    """ "auto": mixed_float16 with a GPU; on CPU mixed_bfloat16 where AMX runs it, else float32.

    Without AMX-BF16 (for example AVX2-only CPUs) bfloat16 is emulated and
    several times slower than float32.
    """
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_amx() else "float32"


def resolve_xla(xla, precision, deterministic, replicas):
    """``jit_compile`` for the train step: the caller's choice, else the faster setting.

    Measured with tools/benchmark.py on a 2-core AVX2 CPU (README,
    Performance): for float32, XLA gains 2-6% on ResNet20 and loses 10% on
    ResNet56, so it stays off, as Keras's "auto" has it on CPUs. For
    mixed_bfloat16 on a CPU without AMX, TensorFlow's own kernels emulate
    bfloat16 (about 22 images/s for ResNet20, against 133-217 with XLA), so
    XLA goes on. With AMX, oneDNN's bfloat16 kernels run without XLA.
    Deterministic and multi-replica runs never get XLA by default.
    """
    if xla is not None:
        return xla
    if tf.config.list_physical_devices("GPU"):
        return "auto"
    if deterministic or replicas != 1:
        return False
    return precision == "mixed_bfloat16" and not cpu_has_amx()


def make_strategy(name):
    """A tf.distribute strategy; "mirrored" without GPUs mirrors over logical CPUs."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)
