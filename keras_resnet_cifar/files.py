"""Writes that never leave half a file: a temporary name, then a rename."""

import json
import os


class WriteError(Exception):
    """A file could not be written (full disk, no permission, ...)."""


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _atomic(path, tmp, write):
    """Calls ``write(tmp)``, then renames ``tmp`` to ``path``; cleans up on failure."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None


def save_model(model, path):
    """Saves a Keras model to ``path`` (.keras) through a temporary file.

    A crash or a full disk leaves the previous file (or none), never half a model.
    """
    # Keras insists on the .keras ending, so the temporary name keeps it.
    directory, name = os.path.split(os.path.abspath(path))
    _atomic(path, os.path.join(directory, f".tmp-{os.getpid()}-{name}"), model.save)


def save_weights(model, path):
    """Saves a Keras model's weights to ``path`` (.weights.h5) through a temporary file."""
    directory, name = os.path.split(os.path.abspath(path))
    _atomic(path, os.path.join(directory, f".tmp-{os.getpid()}-{name}"), model.save_weights)


def write_text(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    _atomic(path, f"{path}.tmp-{os.getpid()}", write)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_npz(path, arrays):
    """Writes a dict of numpy arrays to ``path`` as ``.npz``."""
    import numpy as np

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
            np.savez(f, **arrays)

    _atomic(path, f"{path}.tmp-{os.getpid()}", write)


def write_figure(fig, path, dpi=150):
    """Saves a matplotlib figure to ``path``; the extension (.png, .svg) picks the format."""
    directory, name = os.path.split(os.path.abspath(path))
    # savefig reads the format from the name, so the temporary name keeps the extension.
    _atomic(path, os.path.join(directory, f".tmp-{os.getpid()}-{name}"),
            lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))
