"""What the machine offers and every setting chosen for it.

Backend, layout, precision, XLA, strategy and input threads are decided
here, once. Importing this module imports neither TensorFlow nor Keras: the
backend must be chosen before Keras is imported (importing TensorFlow
imports Keras), and training under JAX runs where TensorFlow is absent. The
few decisions that are TensorFlow's own import it when they are asked.
"""

import contextlib
import ctypes
import importlib.util
import os
import sys
import tempfile

from keras_resnet_cifar import errors
from keras_resnet_cifar.training import options

BACKENDS, PRECISIONS, STRATEGIES = options.BACKENDS, options.PRECISIONS, options.STRATEGIES
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


def cpu_class(flags=None):
    """The CPU class this machine's defaults are chosen for, from its flags.

    Args:
        flags: CPU flags; default this machine's (``cpu_info``).

    Returns:
        "amx" (AMX-BF16: Sapphire Rapids and later), "avx512_bf16"
        (AVX-512 with bfloat16 dot products, no AMX: AMD Zen 4, Cooper Lake),
        "avx512" (AVX-512F: Skylake-SP to Ice Lake), "avx2" (AVX2 and FMA:
        AMD Zen 2 and 3, Haswell and later clients) or "other".
    """
    flags = cpu_info()["cpu_flags"] if flags is None else set(flags)
    if "amx_bf16" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512_bf16" if "avx512_bf16" in flags else "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "other"


# Every CPU default, by class, from tools/benchmark.py runs on that class
# (same-run ratios, medians of interleaved rounds; docs/performance.md,
# "Defaults chosen", has the runs). Under torch the step is the compiled one
# (``graph_step``) wherever a run is long enough (compile_min_steps).
# - backend: torch trained ResNet20 at 1.78x TensorFlow's rate on AVX2
#   (Zen 3, 440 against 247 images/s), 1.18x in float32 and 1.38x in mixed_bfloat16 on Zen 4, eagerly.
#   With AMX (Sapphire Rapids), TensorFlow's oneDNN bfloat16 kernels beat
#   Keras's eager torch step, but the compiled torch step trained at 2.48x
#   TensorFlow's rate in mixed_bfloat16 (1,584 against 639 images/s,
#   2026-12-03; 2.45x, 1,346 against 550, in a later run) and the eager
#   graph step at 1.92x in that run (1,058 against 550).
# - bfloat16: the backends whose bfloat16 kernels run in hardware here, which
#   "auto" trains in mixed_bfloat16. On Zen 4 (AVX512-BF16) the torch backend
#   trained at 1.59x its float32 rate (680 against 429 images/s) and
#   TensorFlow at 1.35x (493 against 364), and the same-seed 10-epoch
#   ResNet20 run reached 82.34% against 82.06% in float32. With AMX the
#   compiled torch step ran at 2.0x float32 (1,548 against 771, one round). Without
#   bfloat16 instructions it is emulated (0.07-0.08x float32 on Zen 3).
# - torch_layout: channels_first. channels_last (NHWC memory, which oneDNN's
#   AVX-512 kernels take) trained at 0.93x of it on Zen 4 eagerly, and on the
#   compiled step at 0.48x on Zen 3 (240 against 497) and 0.26x with AMX
#   (435 against 1,691, mixed_bfloat16, 2 rounds, 2026-12-03). NCHW is
#   PyTorch's own layout.
# - compile_min_steps: from this many steps a run compiles its torch step;
#   shorter runs (the quick start, tests) run the same graph eagerly. A
#   ResNet20 run wins the compile time back after its compile seconds over
#   the step time saved: with AMX, 42.0 s / 0.0246 s = 1,707 steps (the
#   eager graph at 1,073 images/s, compiled 1,352, the quick start with an
#   empty Inductor cache, 2026-12-03). The other classes take that figure
#   until measured (against Keras's slower eager step it was 340 steps on
#   Zen 3; the peer's eager and compiled rates there give about 1,060).
CPU_DEFAULTS = {
    "amx": {
        "backend": "torch",
        "bfloat16": ("tensorflow", "torch", "jax"),
        "torch_layout": "channels_first",
        "compile_min_steps": 1_700,
    },
    "avx512_bf16": {
        "backend": "torch",
        "bfloat16": ("tensorflow", "torch"),
        "torch_layout": "channels_first",
        "compile_min_steps": 1_700,
    },
    "avx512": {"backend": "torch", "bfloat16": (), "torch_layout": "channels_first", "compile_min_steps": 1_700},
    "avx2": {"backend": "torch", "bfloat16": (), "torch_layout": "channels_first", "compile_min_steps": 1_700},
    "other": {"backend": "torch", "bfloat16": (), "torch_layout": "channels_first", "compile_min_steps": 1_700},
}


def cpu_default(setting):
    """This machine's CPU class's ``setting`` from ``CPU_DEFAULTS``."""
    return CPU_DEFAULTS[cpu_class()][setting]


def resolve_backend(backend, num_processes=1):
    """The Keras backend to train under: the caller's choice, else the faster one here.

    Several processes train under JAX only (``distributed.py`` says why), so
    "auto" is jax for them. With a GPU, TensorFlow (its mixed_float16 path);
    on a CPU, its class's backend in ``CPU_DEFAULTS``, TensorFlow where that
    is torch and torch is not installed.
    """
    if backend not in BACKENDS:
        raise errors.ArgumentError(f"backend must be one of {', '.join(BACKENDS)}. Received: backend={backend!r}")
    if backend != "auto":
        return backend
    if num_processes > 1:
        return "jax"
    if has_gpu():
        return "tensorflow"
    chosen = cpu_default("backend")
    return chosen if chosen == "tensorflow" or installed(chosen) else "tensorflow"


def select_backend(backend, num_processes=1):
    """Resolves ``backend`` and sets KERAS_BACKEND for it; call before Keras is imported.

    Returns:
        The backend's name.

    Raises:
        ValueError: an unknown name, a backend that is not installed, or
            Keras already imported under another backend.
    """
    name = resolve_backend(backend, num_processes)
    if name != "tensorflow" and not installed(name):
        extra = "torch" if name == "torch" else "jax"
        raise errors.ArgumentError(
            f"--backend={name} needs {name}, which is not installed: pip install -e '.[{extra}]', "
            "or pass --backend=tensorflow"
        )
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise errors.ArgumentError(f"Keras is already imported with the {keras.backend.backend()} backend, not {name}")
    os.environ["KERAS_BACKEND"] = name
    # For torch code in this process and its children, before torch is
    # imported: importing it sets Inductor's own default, a /tmp folder.
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", inductor_cache_dir())
    return name


def inductor_cache_dir():
    """Where the compiled torch step's graphs are kept for later processes (resumes, repeated runs).

    ``$XDG_CACHE_HOME/keras-resnet-cifar/torchinductor`` (``~/.cache`` without
    XDG_CACHE_HOME); ``select_backend`` sets it as ``$TORCHINDUCTOR_CACHE_DIR``
    unless that is set already.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras-resnet-cifar", "torchinductor")


@contextlib.contextmanager
def benchmark_inductor_cache():
    """Inductor's cache for a benchmark: an empty temporary folder, unless ``$TORCHINDUCTOR_CACHE_DIR`` names one.

    Enter it before torch is imported (this process's torch and its
    children read the variable); the folder and the variable go at the end.

    Yields:
        True for the empty folder (round 1's first compiled steps compile);
        False for the named cache, which may hold the graphs already.
    """
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        yield False
        return
    with tempfile.TemporaryDirectory(prefix="krc-benchmark-inductor-", ignore_cleanup_errors=True) as folder:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        try:
            yield True
        finally:
            del os.environ["TORCHINDUCTOR_CACHE_DIR"]


def resolve_data_format(backend):
    """The layout a model trains in.

    Under torch, the CPU class's ``torch_layout``: Keras's channels_last
    there is NCHW convolutions on NHWC memory (PyTorch's channels_last
    memory format), channels_first plain NCHW. TensorFlow's CPU kernels
    take NHWC only, and JAX trains in the saved model's layout.
    """
    if backend != "torch":
        return "channels_last"
    return "channels_first" if has_gpu() else cpu_default("torch_layout")


def installed(module):
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def has_gpu():
    """True when an NVIDIA GPU is visible (the driver lists one and CUDA_VISIBLE_DEVICES allows it).

    The one GPU probe of the package: it asks the driver, not a framework, so
    it answers the same under every backend and without TensorFlow.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    try:
        return bool(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return False


def resolve_precision(precision, backend="tensorflow"):
    """ "auto": mixed_float16 with a GPU; on a CPU mixed_bfloat16 where ``backend``'s
    bfloat16 kernels run in hardware (``CPU_DEFAULTS``), else float32.
    """
    if precision != "auto":
        return precision
    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if backend in cpu_default("bfloat16") else "float32"


def resolve_xla(xla, precision, deterministic, replicas, backend="tensorflow", total_steps=None, input_kind="tfdata"):
    """Whether the train step is compiled: the caller's choice, else the faster setting.

    Measured with tools/benchmark.py on a 2-core AVX2 CPU (docs/performance.md):
    for float32, XLA gains 2-6% on ResNet20 and loses 10% on ResNet56, so it
    stays off, as Keras's "auto" has it on CPUs. For mixed_bfloat16 where
    ``CPU_DEFAULTS`` does not list TensorFlow's bfloat16 kernels as running in
    hardware, they emulate it (about 22 images/s for ResNet20 on AVX2,
    against 133-217 with XLA), so XLA goes on. With AMX or AVX512-BF16,
    oneDNN's bfloat16 kernels run without XLA. Deterministic and
    multi-replica runs never get XLA by default. Under JAX the step is always
    compiled (uncompiled JAX is many times slower). Under torch the step is
    ``graph_step``'s torch.compile graph where ``compile_torch_step`` says
    it pays (Keras's own ``jit_compile`` is never used there).
    """
    if xla is not None:
        return xla
    if backend == "torch":
        return compile_torch_step(total_steps or 0, deterministic, input_kind)[0]
    if backend != "tensorflow":
        return backend == "jax"
    if has_gpu():
        return "auto"
    if deterministic or replicas != 1:
        return False
    return precision == "mixed_bfloat16" and backend not in cpu_default("bfloat16")


def compile_torch_step(total_steps, deterministic=False, input_kind="tfdata"):
    """``(compile, why)``: whether a torch run of ``total_steps`` trains on the compiled step, and why.

    ``input_kind`` is the runner's input: "arrays" augments inside the model,
    in a layer the compiled step does not run.
    """
    if input_kind != "tfdata":
        return False, "the arrays input augments inside the model, which the graph step does not run"
    if deterministic:
        return False, "--deterministic trains eagerly: the compiled kernels are not checked to be run-to-run exact"
    if has_gpu():
        return False, "the compiled step is measured on CPUs only"
    least = cpu_default("compile_min_steps")
    if total_steps < least:
        return False, f"{total_steps:,} steps, fewer than the {least:,} that win back its compile time on this CPU"
    return True, f"{total_steps:,} steps, at least the {least:,} that win back its compile time on this CPU"


def step_label(backend, xla):
    """How a training step runs: XLA or not, and under torch the graph step compiled or eager."""
    if backend == "torch":
        return "compiled step" if xla else "eager step"
    return "XLA" if xla else "no XLA"


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def hold_freed_memory():
    """Has glibc's malloc keep freed blocks for reuse instead of giving them back to the OS.

    The torch graph step allocates and frees its activations every step;
    blocks above malloc's mmap threshold (128 KiB at first) go back to the
    OS on every free and fault in again, page by page, on the next step.
    With the threshold at glibc's largest (32 MiB on 64-bit) and the heap
    trimmed only above 1 GiB, the compiled ResNet20 step trained at 1.23x
    (1,560 against 1,268 images/s on the pipeline, AMX; docs/performance.md,
    "Defaults chosen"). The process keeps the memory for its next step.
    Returns False where the C library is not glibc (nothing is set).
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20) and mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def make_strategy(name):
    """A tf.distribute strategy (TensorFlow backend); "mirrored" without GPUs mirrors over logical CPUs."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def input_threads(dataset):
    """A tf.data ``dataset`` with the input threads suited to this machine.

    Without a GPU the model's step uses every core, and tf.data's shared
    thread pool competing with it cost 4% of the training rate under
    TensorFlow and 10% under torch (ResNet20 on 2 cores; docs/performance.md),
    while one thread feeds 69,000 CIFAR images a second: so a CPU run gets one
    private input thread. With one thread autotuning has nothing to choose,
    and its model thread held up each iterator's deletion under torch (over
    a second after a validation), so it is off.
    With a GPU, tf.data keeps its own choice. Any other input is returned as
    it is.
    """
    if has_gpu() or not hasattr(dataset, "with_options"):
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return dataset.with_options(options)
