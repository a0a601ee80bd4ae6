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


def remove_stale_temporaries(directory, name=None, this_process=False):
    """Removes the temporaries (files or folders) in ``directory`` of processes that are gone.

    Args:
        directory: where to look.
        name: only the temporaries of this final name; None: all.
        this_process: also this process's own, once its writes have stopped.

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
        if not match or (name is not None and match.group(2) != name):
            continue
        pid = int(match.group(1))
        if _alive(pid) and not (this_process and pid == os.getpid()):
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
                make_directory(os.path.dirname(os.path.abspath(path)))
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


def blocking_file(path):
    """The file standing where folder ``path`` or a folder above it would be; None if there is none."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    return None if os.path.isdir(existing) else existing


def make_directory(path):
    """``os.makedirs(path, exist_ok=True)``, with a file in the way reported as one.

    Raises:
        NotADirectoryError: ``path`` or a folder above it is a file, named
            (makedirs says "File exists" or "Not a directory" without the name).
    """
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = blocking_file(path)
        if blocking is None:  # gone since: the error as it came
            raise
        raise NotADirectoryError(errno.ENOTDIR, f"{blocking} is a file, not a folder", blocking) from None


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
    """Saves a Keras model's weights (and optimizer state) to ``path`` (.weights.h5) through a temporary file.

    The HDF5 file is built in memory and written with plain writes, its
    space reserved first: h5py never writes to the disk, so a full disk is
    one ``WriteError``. (h5py objects left half-written by a full disk have
    crashed the process when they were freed.) Where Keras does not write
    to memory (``weights_in_memory`` is None), it writes the file itself.
    """
    data = weights_in_memory(model, os.path.basename(path))
    if data is None:
        _atomic(path, model.save_weights)
    else:
        write_bytes(path, data)


class _NamedBuffer(io.BytesIO):
    """An in-memory file whose ``str()`` is a file name (Keras checks the ``.weights.h5`` ending on it)."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    def __str__(self):
        return self.name


def weights_in_memory(model, name):
    """``model.save_weights``'s HDF5 file as bytes, or None where this Keras writes only to paths.

    Keras 3 writes HDF5 weights to an ``io.BytesIO`` (its ``H5IOStore``
    takes one); a release that stops doing so is caught here and the caller
    writes to the disk instead.
    """
    buffer = _NamedBuffer(name)
    try:
        model.save_weights(buffer)
    except (TypeError, ValueError, AttributeError):
        return None
    data = buffer.getvalue()
    return data if data.startswith(b"\x89HDF\r\n\x1a\n") else None


def write_bytes(path, data):
    """Writes ``data`` to ``path`` through a temporary file; its space is reserved before any byte is written."""

    def write(tmp):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if data:
                try:  # a full disk fails here, before any byte is written
                    os.posix_fallocate(fd, 0, len(data))
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        raise
                    # Not supported by this file system: the writes below report a full disk instead.
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    _atomic(path, write)


def sha256(path, chunk=1 << 20):
    """The hex SHA-256 of a file's bytes."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


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
    where in TensorFlow an op error arose, which tells a user nothing. An
    error inside a ``tf.function`` (a tf.data map under ``fit``) starts with
    "Graph execution error:" and the node's stack; its cause is the last
    unindented line.
    """
    lines = (getattr(error, "message", None) or str(error)).strip().splitlines()
    text = lines[0] if lines else ""
    if text.endswith("Graph execution error:"):
        causes = [line for line in lines[1:] if line.strip() and not line[0].isspace() and not line.startswith("<")]
        causes = [line for line in causes if not line.startswith("Detected at node")]
        text = causes[-1] if causes else text
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)
    # A tf.data map's error names the transformation first: the cause follows it.
    text = re.sub(r"^Error in user-defined function passed to .*? with iterator: \S+: ", "", text)
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
    created = not os.path.exists(lock_path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WriteError(f"cannot write {lock_path}: {failure_reason(e)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise DirectoryInUse(
            f"{flag} {path} is in use by {holder}: wait until that run ends, or choose another {flag}"
        ) from None
    try:
        # Written, then cut to its length: an existing file's block is reused, so only a new
        # file can find the disk full, and then it is removed again (this process holds its lock).
        record = f"process {os.getpid()} on {socket.gethostname()}\n".encode()
        os.pwrite(fd, record, 0)
        os.ftruncate(fd, len(record))
    except OSError as e:
        if created:
            _remove(lock_path)
        os.close(fd)
        raise WriteError(f"cannot write {lock_path}: {failure_reason(e)}") from None
    try:
        yield
    finally:
        os.close(fd)  # releases the lock
