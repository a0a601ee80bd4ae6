"""What the machine offers and the Keras backend and layout chosen for it.

Nothing here imports TensorFlow or Keras: the backend must be chosen before
Keras is imported (importing TensorFlow imports Keras).
"""

import importlib.util
import os
import sys

BACKENDS = ("auto", "tensorflow", "torch", "jax")
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


def resolve_backend(backend):
    """The Keras backend to train under: the caller's choice, else the faster one here.

    "auto": TensorFlow with a GPU (its mixed_float16 path) or with AMX-BF16
    (oneDNN's bfloat16 kernels); on other CPUs torch where it is installed:
    on a 2-core AVX2 EPYC, ResNet20 trained at 1.36x TensorFlow's rate under
    it, fed by the same pipeline in the same run (README, Performance).
    Without torch, TensorFlow.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}. Received: backend={backend!r}")
    if backend != "auto":
        return backend
    if has_gpu() or cpu_has_amx():
        return "tensorflow"
    return "torch" if installed("torch") else "tensorflow"


def select_backend(backend):
    """Resolves ``backend`` and sets KERAS_BACKEND for it; call before Keras is imported.

    Returns:
        The backend's name.

    Raises:
        ValueError: an unknown name, a backend that is not installed, or
            Keras already imported under another backend.
    """
    name = resolve_backend(backend)
    if name != "tensorflow" and not installed(name):
        extra = "torch" if name == "torch" else "jax"
        raise ValueError(
            f"--backend={name} needs {name}, which is not installed: pip install -e '.[{extra}]', "
            "or pass --backend=tensorflow"
        )
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise ValueError(f"Keras is already imported with the {keras.backend.backend()} backend, not {name}")
    os.environ["KERAS_BACKEND"] = name
    return name


def resolve_data_format(backend):
    """The layout a model trains in: channels_first where the backend computes in it.

    Keras's torch backend computes convolutions in NCHW and transposes
    around every one of them in channels_last; PyTorch's fused BatchNorm
    (``torch_layers.py``) also wants the channels on axis 1.
    TensorFlow's CPU kernels take NHWC only.
    """
    return "channels_first" if backend == "torch" else "channels_last"


def installed(module):
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def has_gpu():
    """True when an NVIDIA GPU is visible (the driver lists one and CUDA_VISIBLE_DEVICES allows it)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    try:
        return bool(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return False
