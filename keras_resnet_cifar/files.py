"""Writes that never leave half a file (a temporary name, then a rename), and fault hooks."""

import contextlib
import errno
import gc
import io
import json
import os
import re
import shutil
import sys

from keras_resnet_cifar import errors

# Every temporary is ".tmp-<pid>-<final name>" beside its final name, so the
# temporaries of a killed process can be told apart and removed.
_TEMPORARY = re.compile(r"^\.tmp-(\d+)-(.+)$")


WriteError = errors.WriteError


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def temporary_path(path):
    """Where this process writes ``path`` before renaming it there."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".tmp-{os.getpid()}-{name}")


def remove_stale_temporaries(directory, name=None):
    """Removes the temporaries (files or folders) in ``directory`` of processes that are gone.

    Args:
        directory: where to look.
        name: only the temporaries of this final name; None: all.

    Returns:
        The names removed.
    """
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _TEMPORARY.match(entry)
        if not match or (name is not None and match.group(2) != name) or _alive(int(match.group(1))):
            continue
        path = os.path.join(directory, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _remove(path)
        removed.append(entry)
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _atomic(path, write):
    """Calls ``write(tmp)``, then renames ``tmp`` to ``path``; cleans up on failure.

    A killed writer's temporary of the same name is removed first.
    """
    tmp = temporary_path(path)
    reason = None
    # A failed writer's objects are freed when its exception goes; h5py's
    # close then fails again on a full disk and prints tracebacks about the
    # temporary (to sys.stderr and through the unraisable hook). They repeat
    # the failure reported below, so they are kept back; all else passes on.
    printed = io.StringIO()
    original_hook = sys.unraisablehook
    sys.unraisablehook = lambda report: print(f"{report.exc_value}", file=sys.stderr)
    try:
        with contextlib.redirect_stderr(printed):
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                remove_stale_temporaries(os.path.dirname(os.path.abspath(path)), os.path.basename(path))
                write(tmp)
                os.replace(tmp, path)
            except OSError as e:
                reason = failure_reason(e)
            if reason is not None:
                gc.collect()  # what a reference cycle still holds of the failed writer
    finally:
        sys.unraisablehook = original_hook
    text = printed.getvalue()
    if text and not (reason is not None and os.path.basename(tmp) in text):
        sys.stderr.write(text)
    if reason is not None:
        _remove(tmp)
        raise WriteError(f"cannot write {path}: {reason}")


def failure_reason(error):
    """Why a write failed, in one line: "No space left on device" however the library put it."""
    no_space = os.strerror(errno.ENOSPC)
    text = str(error)
    if getattr(error, "errno", None) == errno.ENOSPC or no_space in text or "errno = 28" in text:
        return no_space
    return getattr(error, "strerror", None) or error_text(error)


def save_model(model, path):
    """Saves a Keras model to ``path`` (.keras) through a temporary file.

    A crash or a full disk leaves the previous file (or none), never half a model.
    """
    # Keras insists on the .keras ending, which the temporary name keeps.
    _atomic(path, model.save)


def save_weights(model, path):
    """Saves a Keras model's weights to ``path`` (.weights.h5) through a temporary file."""
    _atomic(path, model.save_weights)


def write_text(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    _atomic(path, write)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_npz(path, arrays):
    """Writes a dict of numpy arrays to ``path`` as ``.npz``."""
    import numpy as np

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to the name
            np.savez(f, **arrays)

    _atomic(path, write)


def error_text(error, limit=200):
    """An exception's message for a one-line error: its first line, without TensorFlow internals.

    ``{{function_node __wrapped__DecodeImage_...}}`` and ``[Op:...]`` say
    where in TensorFlow an op error arose, which tells a user nothing.
    """
    text = (getattr(error, "message", None) or str(error)).strip()
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text.splitlines()[0] if text else "")
    return re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?", "", text).strip()[:limit] or type(error).__name__


def write_figure(fig, path, dpi=150):
    """Saves a matplotlib figure to ``path``; the extension (.png, .svg) picks the format."""
    # savefig reads the format from the name, which the temporary name keeps.
    _atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))


class DirectoryInUse(errors.Error):
    """Another process holds the directory (``hold_directory``)."""


@contextlib.contextmanager
def hold_directory(path, flag):
    """Holds ``path`` for this process while the block runs.

    The lock is ``fcntl.flock`` on ``<path>/.lock``, which the kernel releases
    when its holder exits, is killed or its machine's connection ends, so a
    killed run never leaves it stuck. The file records the holder for the
    message a second process gets.

    Args:
        path: an existing directory.
        flag: the flag that named it, for the message.

    Raises:
        DirectoryInUse: another process holds it.
    """
    import fcntl
    import socket

    lock_path = os.path.join(path, ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WriteError(f"cannot write {lock_path}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise DirectoryInUse(
            f"{flag} {path} is in use by {holder}: wait until that run ends, or choose another {flag}"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
