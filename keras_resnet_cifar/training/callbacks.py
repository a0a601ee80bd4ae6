"""The callbacks every run uses: backup, exact step count, epoch stats, progress.

``Backup`` replaces Keras's ``BackupAndRestore``: each epoch's weights and
optimizer state go to a new file, and a small ``state.json`` written after
it (atomically) names the file. A kill at any moment leaves ``state.json``
pointing at a complete file, and the epoch it names is the position the run
resumes from, so a resumed run sees the same data stream from there.
"""

import glob
import json
import os
import time

import keras
import numpy as np

from keras_resnet_cifar import files

STATE = "state.json"


def iterations(model):
    """The optimizer's update count (plain and tf.distribute variables alike)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def backup_epoch(backup_dir):
    """Epochs completed according to ``backup_dir`` (0 when there is no backup)."""
    state = _backup_state(backup_dir)
    return state["epoch"] if state else 0


def _backup_state(backup_dir):
    try:
        with open(os.path.join(backup_dir, STATE)) as f:
            state = json.load(f)
        return state if os.path.isfile(os.path.join(backup_dir, state["weights"])) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def restore(model, backup_dir):
    """Loads the last backup (weights and optimizer state) into a compiled model.

    Returns:
        The number of epochs it had completed; 0 when there is none.
    """
    state = _backup_state(backup_dir)
    if not state:
        return 0
    if not model.optimizer.built:  # its variables must exist to be loaded
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(backup_dir, state["weights"]))
    return int(state["epoch"])


class Backup(keras.callbacks.Callback):
    """Saves weights and optimizer state at each epoch end; see the module docstring."""

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch-{epoch + 1}.weights.h5"
        files.save_weights(self.model, os.path.join(self.backup_dir, name))
        files.write_json(os.path.join(self.backup_dir, STATE), {"epoch": epoch + 1, "weights": name})
        for old in glob.glob(os.path.join(self.backup_dir, "epoch-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)


class StopAtStep(keras.callbacks.Callback):
    """Ends training after exactly ``total_steps`` updates, mid-epoch if need be."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        step = iterations(self.model)
        files.pause_point(f"step{step}")
        if step >= self.total_steps:
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

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()
        self._first_step = iterations(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        step = iterations(self.model)
        logs["step"] = step
        logs["images_per_sec"] = (step - self._first_step) * self.batch_size / max(self._last - self._start, 1e-9)
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
        rate = (step - self._start_step) / max(now - self._start_time, 1e-9)
        eta = (self.total_steps - step) / rate if rate else float("inf")
        shown = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if np.ndim(v) == 0)
        self.log(f"step {step}/{self.total_steps}: {shown}, {rate * self.batch_size:.0f} img/s, ETA {_duration(eta)}")


def _duration(seconds):
    if seconds == float("inf"):
        return "unknown"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
