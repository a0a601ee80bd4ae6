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


def save_model(model, path):
    """Saves a Keras model to ``path`` (.keras) through a temporary file.

    A crash or a full disk leaves the previous file (or none), never half a model.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        os.makedirs(directory, exist_ok=True)
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None


def write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")
