"""The run directory: creating it, reading its state, clearing it for a fresh start, checking a resume."""

import contextlib
import json
import os
import shutil

from keras_resnet_cifar import files
from keras_resnet_cifar.training import callbacks
from keras_resnet_cifar.training.config import TrainingError


def make(model_dir):
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise TrainingError(f"--model_dir {model_dir} is a file, not a folder")
    try:
        files.make_directory(model_dir)  # names a file in the way above it
    except OSError as e:
        raise files.WriteError(f"cannot create --model_dir {model_dir}: {e.strerror or e}") from None


# What a run writes before its first epoch is backed up, besides its lock and temporaries.
_FIRST_WRITES = ("config.json", "labels.txt", "metrics.csv", "logs", "backup")


@contextlib.contextmanager
def held(model_dir):
    """Makes ``model_dir`` and holds it for this process while the block runs.

    A run that made the folder and stops before any epoch is backed up (bad
    data, a NaN loss, Ctrl-C or SIGTERM in epoch 1, a bug) removes it again:
    it holds nothing to resume, and a re-run starts over anyway. Folders
    made above it stay.

    Raises:
        TrainingError: ``model_dir`` is a file.
        files.WriteError: it cannot be made or locked.
        files.DirectoryInUse: another process holds it.
    """
    made = not os.path.lexists(model_dir)
    make(model_dir)
    with files.hold_directory(model_dir, "--model_dir"):
        try:
            yield
        except BaseException:
            if made:
                _remove_unstarted(model_dir)
            raise


def _remove_unstarted(model_dir):
    try:
        if callbacks.backup_epoch(os.path.join(model_dir, "backup")) or os.path.exists(
            os.path.join(model_dir, "model.keras")
        ):
            return
    except TrainingError:  # a backup that cannot be read is never deleted unasked
        return
    files.remove_stale_temporaries(model_dir, this_process=True)
    # The lock goes last: whoever takes the folder next finds it empty or gone.
    for name in (*_FIRST_WRITES, ".lock"):
        path = os.path.join(model_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            with contextlib.suppress(OSError):
                os.remove(path)
    with contextlib.suppress(OSError):  # a folder with anything else in it stays
        os.rmdir(model_dir)


def observe(model_dir):
    """What this process sees of the run directory (after process 0 prepared it)."""
    sees = os.path.isdir(model_dir)
    epoch = callbacks.backup_epoch(os.path.join(model_dir, "backup")) if sees else 0
    trained = os.path.exists(os.path.join(model_dir, "model.keras"))
    state = "unfinished" if epoch else "trained" if trained else "new"
    return {"sees_run_dir": sees, "backup_epoch": epoch, "state": state}


def prepare(options):
    """Checks ``model_dir`` and clears what a fresh start must not take for its own (process 0 only)."""
    model_dir = options.model_dir
    backup_dir = os.path.join(model_dir, "backup")
    model_path = os.path.join(model_dir, "model.keras")
    metrics_path = os.path.join(model_dir, "metrics.json")
    try:
        if callbacks.backup_epoch(backup_dir):
            return  # an unfinished run, resumed
    except TrainingError:
        if not options.overwrite:  # a backup we cannot read is never deleted unasked
            raise
    if os.path.exists(model_path) and not options.overwrite:
        if os.path.exists(metrics_path):
            raise TrainingError(
                f"{model_dir} already holds a finished run (model.keras, metrics.json); "
                "pass --overwrite or choose another --model_dir"
            )
        return  # trained, not yet evaluated: finished from model.keras
    # A fresh start: nothing of an earlier run may be taken for this one's.
    for name in ("model.keras", "metrics.json", "metrics.csv"):
        if os.path.exists(os.path.join(model_dir, name)):
            os.remove(os.path.join(model_dir, name))
    shutil.rmtree(backup_dir, ignore_errors=True)


def check_resume(options, resolved, keys):
    path = os.path.join(options.model_dir, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        previous = json.load(f)
    changes = list(previous.get("lr_changes", []))
    for key in keys:
        if previous.get(key) == resolved.get(key):
            continue
        if key == "learning_rate" and options.allow_lr_change:
            changes.append(
                {
                    "after_epoch": callbacks.backup_epoch(os.path.join(options.model_dir, "backup")),
                    "from": previous.get(key),
                    "to": resolved.get(key),
                }
            )
            continue
        hint = " (pass --allow_lr_change to resume with the new rate)" if key == "learning_rate" else ""
        raise TrainingError(
            f"{options.model_dir} holds an unfinished run with {key}={previous.get(key)!r}, not "
            f"{resolved.get(key)!r}; re-run it with the same flags{hint} or choose another --model_dir"
        )
    if changes:
        resolved["lr_changes"] = changes
