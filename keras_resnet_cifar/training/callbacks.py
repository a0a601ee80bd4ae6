"""The callbacks every run uses: backup, exact step count, epoch stats, progress.

``Backup`` replaces Keras's ``BackupAndRestore``: each epoch's weights and
optimizer state go to a new file, and a small ``state.json`` written after
it (atomically) names the file. A kill at any moment leaves ``state.json``
pointing at a complete file, and the epoch it names is the position the run
resumes from, so a resumed run sees the same data stream from there.
"""

import contextlib
import glob
import json
import os
import time

import keras
import numpy as np

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.training.config import TrainingError

STATE = "state.json"


def iterations(model):
    """The optimizer's update count (plain and tf.distribute variables alike)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def backup_epoch(backup_dir):
    """Epochs completed according to ``backup_dir`` (0 when there is no backup).

    Raises:
        TrainingError: a backup is there but cannot be used (see ``read_backup``).
    """
    state = read_backup(backup_dir)
    return state["epoch"] if state else 0


def read_backup(backup_dir):
    """The backup's ``{"epoch": n, "weights": "epoch-<n>.weights.h5"}``, or None when there is none.

    A backup is there when ``state.json`` is, or an epoch file beyond the
    first (a kill between the first epoch's weights and its ``state.json``
    leaves ``epoch-1.weights.h5`` alone: that epoch was never recorded).

    Raises:
        TrainingError: the backup cannot be used. The message names the file
            and what is wrong, says that nothing was deleted, and how to go on.
    """
    state_path = os.path.join(backup_dir, STATE)
    epoch_files = sorted(glob.glob(os.path.join(backup_dir, "epoch-*.weights.h5")), key=_epoch_of)
    if not os.path.exists(state_path):
        if not epoch_files or [os.path.basename(f) for f in epoch_files] == ["epoch-1.weights.h5"]:
            return None
        raise TrainingError(_unusable(backup_dir, f"{state_path} is missing", epoch_files))
    try:
        with open(state_path) as f:
            state = json.load(f)
    except OSError as e:
        raise TrainingError(
            _unusable(backup_dir, f"{state_path} cannot be read ({e.strerror or e})", epoch_files)
        ) from None
    except ValueError as e:
        raise TrainingError(_unusable(backup_dir, f"{state_path} is not valid JSON ({e})", epoch_files)) from None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    weights = state.get("weights") if isinstance(state, dict) else None
    if not (
        isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1 and weights == f"epoch-{epoch}.weights.h5"
    ):
        problem = (
            f'{state_path} holds {json.dumps(state)[:120]}, not {{"epoch": <n >= 1>, '
            '"weights": "epoch-<n>.weights.h5"}'
        )
        raise TrainingError(_unusable(backup_dir, problem, epoch_files))
    path = os.path.join(backup_dir, weights)
    if not os.path.isfile(path):
        problem = f"{path}, which {state_path} names, is missing"
        raise TrainingError(_unusable(backup_dir, problem, epoch_files))
    try:  # a whole HDF5 file: truncation and foreign bytes show on opening
        import h5py

        with h5py.File(path, "r"):
            pass
    except OSError as e:
        raise TrainingError(_unusable(backup_dir, f"{path} cannot be read ({files.error_text(e)})", [])) from None
    return {"epoch": epoch, "weights": weights}


def _epoch_of(path):
    digits = os.path.basename(path)[len("epoch-") : -len(".weights.h5")]
    return int(digits) if digits.isdigit() else -1


def _unusable(backup_dir, problem, epoch_files):
    """The one-line message for a backup that cannot be used."""
    ways = []
    for path in reversed(epoch_files):
        epoch = _epoch_of(path)
        if epoch >= 1:
            record = json.dumps({"epoch": epoch, "weights": os.path.basename(path)})
            ways.append(
                f"to resume from {path} (epoch {epoch}), write {record} to {os.path.join(backup_dir, STATE)} "
                "and re-run the same command"
            )
            break
    ways.append("to start the run over, re-run the same command with --overwrite (this deletes the backup)")
    return f"cannot resume: {problem}. Nothing was deleted; " + "; or ".join(ways)


def restore(model, backup_dir):
    """Loads the last backup (weights and optimizer state) into a compiled model.

    Returns:
        The number of epochs it had completed; 0 when there is none.

    Raises:
        TrainingError: the backup cannot be used; nothing is deleted.
    """
    state = read_backup(backup_dir)
    if not state:
        return 0
    if not model.optimizer.built:  # its variables must exist to be loaded
        model.optimizer.build(model.trainable_variables)
    path = os.path.join(backup_dir, state["weights"])
    try:
        model.load_weights(path)
    except Exception as e:  # noqa: BLE001 - any failure to read the file means a damaged backup
        raise TrainingError(
            f"cannot resume: {path} cannot be read ({files.error_text(e)}). Nothing was deleted; to start the "
            "run over, re-run the same command with --overwrite (this deletes the backup)"
        ) from None
    return int(state["epoch"])


class Backup(keras.callbacks.Callback):
    """Saves weights and optimizer state at each epoch end; see the module docstring."""

    def __init__(self, backup_dir, local=contextlib.nullcontext):
        """``local``: a context the saving runs in (``distributed.local_only`` under several processes)."""
        super().__init__()
        self.backup_dir = backup_dir
        self.local = local

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1}.weights.h5"
        with self.local():
            files.save_weights(self.model, os.path.join(self.backup_dir, name))
        files.write_json(os.path.join(self.backup_dir, STATE), {"epoch": epoch + 1, "weights": name})
        for old in glob.glob(os.path.join(self.backup_dir, "epoch-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)


class StopOnNaN(keras.callbacks.Callback):
    """Raises ``errors.NanLossError`` at the first batch whose loss is NaN or infinite.

    Keras's ``TerminateOnNaN(raise_error=True)`` raises a plain
    ``RuntimeError``, which a caller could tell from other errors only by
    its text; this one raises its own type.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            raise errors.NanLossError(f"the loss is {float(loss)} at step {iterations(self.model)}.")


class StopAtStep(keras.callbacks.Callback):
    """Ends training after exactly ``total_steps`` updates, mid-epoch if need be."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if iterations(self.model) >= self.total_steps:
            self.model.stop_training = True


class EpochStats(keras.callbacks.Callback):
    """Adds error, learning rate, step, images/s and seconds to each epoch's logs.

    It runs before CSVLogger and TensorBoard, which see the added entries.
    """

    def __init__(self, batch_size, schedule, epochs, log, print_line):
        super().__init__()
        self.batch_size = batch_size
        self.schedule = schedule
        self.epochs = epochs
        self.log = log
        self.print_line = print_line
        self._compile_told = False

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()
        self._first_step = iterations(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        step = iterations(self.model)
        logs["step"] = step
        # The compiled torch step's one-off tracing and compiling is the run's
        # wall time, not the epoch's training rate.
        compiled = getattr(self.model, "compile_seconds", None)
        excluded = 0.0
        if compiled is not None and not self._compile_told:
            self._compile_told, excluded = True, compiled
            self.log(f"The training step was traced and compiled in {compiled:.1f} s (not in the epoch's img/s)")
        busy = max(self._last - self._start - excluded, 1e-9)
        logs["images_per_sec"] = (step - self._first_step) * self.batch_size / busy
        logs["epoch_seconds"] = time.perf_counter() - self._start
        logs["learning_rate"] = float(self.schedule(max(step - 1, 0)))
        for key in [k for k in logs if k.endswith("accuracy")]:
            logs[key[: -len("accuracy")] + "error"] = 1.0 - float(logs[key])
        if self.print_line:
            shown = ", ".join(
                f"{k} {float(v):.4f}"
                for k, v in logs.items()
                if k not in ("learning_rate", "images_per_sec", "step", "epoch_seconds")
            )
            self.log(
                f"epoch {epoch + 1}/{self.epochs} step {step}: {shown}, "
                f"lr {logs['learning_rate']:.4g}, {logs['images_per_sec']:.0f} img/s"
            )


class Progress(keras.callbacks.Callback):
    """A short line every ``interval`` seconds, for output that is not a terminal.

    Keras's progress bar needs a terminal; without one an epoch would pass in
    silence (minutes on a CPU).
    """

    def __init__(self, total_steps, batch_size, log, interval=30.0):
        super().__init__()
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.log = log
        self.interval = interval

    def on_train_begin(self, logs=None):
        self._start_time = self._last_time = time.perf_counter()
        self._start_step = iterations(self.model)

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if now - self._last_time < self.interval:
            return
        self._last_time = now
        step = iterations(self.model)
        busy = now - self._start_time - (getattr(self.model, "compile_seconds", None) or 0.0)
        rate = (step - self._start_step) / max(busy, 1e-9)
        eta = (self.total_steps - step) / rate if rate else float("inf")
        shown = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if np.ndim(v) == 0)
        self.log(f"step {step}/{self.total_steps}: {shown}, {rate * self.batch_size:.0f} img/s, ETA {_duration(eta)}")


def _duration(seconds):
    if seconds == float("inf"):
        return "unknown"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
