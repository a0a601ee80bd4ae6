"""CIFAR's python batches, unpickled with only the types the format has: nothing in a file is run.

The official files are Python pickles of dicts of bytes, str, ints, lists
and numpy arrays. A pickle can name any callable, and ``pickle.load`` calls
it, so a crafted ``batches.meta`` in a downloaded folder would run code.
``load`` admits numpy's array, dtype and scalar rebuilders (under numpy 1's
and numpy 2's module names) and Python 3's protocol-2 ``bytes`` rebuilder,
each mapped to the object itself, and refuses every other name.
"""

import pickle

import numpy as np

from keras_resnet_cifar.data.arrays import DataError


def _latin1_encode(text, encoding="latin1"):
    """``_codecs.encode`` as Python 3 pickles ``bytes`` under protocol 2, and nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode of {type(text).__name__} with {encoding!r}")
    return text.encode("latin1")


def _allowed():
    try:
        from numpy._core import multiarray, numeric  # numpy 2
    except ImportError:  # pragma: no cover - numpy 1
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):  # the official files name numpy 1's
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _Refused(pickle.UnpicklingError):
    """A name the CIFAR format never holds."""


class _Unpickler(pickle.Unpickler):
    allowed = None

    def find_class(self, module, name):
        if _Unpickler.allowed is None:
            _Unpickler.allowed = _allowed()
        found = _Unpickler.allowed.get((module, name))
        if found is None:
            raise _Refused(f"{module}.{name}")
        return found

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {str(pid)[:40]!r}")


def load(path):
    """One CIFAR batch (or meta) file as Python objects; nothing in it is run.

    Raises:
        DataError: a missing, truncated or foreign file, or one that names
            anything but the format's types (refused before it is called).
    """
    try:
        with open(path, "rb") as f:
            return _Unpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"missing CIFAR batch file {path}") from None
    except _Refused as e:
        raise DataError(
            f"{path} is not a CIFAR batch file: its pickle names {e}, which the CIFAR format never holds "
            "(refused without running it)"
        ) from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign pickle raises many kinds
        text = str(e).splitlines()[0][:200] if str(e) else ""
        raise DataError(f"cannot read CIFAR batch file {path}: {type(e).__name__}: {text}") from None
