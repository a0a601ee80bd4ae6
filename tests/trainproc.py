"""Training runs in a child process, for the tests of what a process boundary shows: kills, exits, stderr.

One short recipe for all of them: ResNet8 on ``data_dir`` (96 images of 4
classes, ``conftest.data_dir``): 72 for training, 5 steps an epoch at batch
16, 3 epochs.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

from keras_resnet_cifar.models.presets import CIFAR10_CLASSES
from keras_resnet_cifar.training import callbacks, run_log, train
from tests.helpers import REPO, hook_env

CLASSES = list(CIFAR10_CLASSES)
# The flags of the shared killed run (``conftest.killed_run``): a resume of a copy must pass them too.
KILLED_FLAGS = ("--backend=torch", "--precision=float32", "--deterministic", "--seed=5")


def cmd(data_dir, model_dir, *extra):
    """``tools/train.py`` with the short recipe, writing to ``model_dir``."""
    return [
        sys.executable,
        str(REPO / "tools" / "train.py"),
        "--depth=8",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--batch_size=16",
        "--epochs=3",
        "--schedule=cosine",
        "--lr=0.05",
        "--validation_split=0.25",
        *extra,
    ]


def killed_config(data_dir, model_dir, **changes):
    """The killed run's settings (the recipe, ``KILLED_FLAGS``' precision and seed) as the Python API's config.

    For runs in this process (the backend is this process's Keras's): no export unless ``changes`` asks for
    one; ``changes`` override any setting.
    """
    settings = dict(n=1, data_dir=str(data_dir), model_dir=str(model_dir), batch_size=16, epochs=3)
    settings.update(schedule="cosine", learning_rate=0.05, validation_split=0.25, precision="float32", seed=5)
    settings.update(export=False)
    settings.update(changes)
    return train.TrainConfig.of(**settings)


@contextlib.contextmanager
def copying_at(step, model_dir, copy):
    """In this process: copies ``model_dir`` to ``copy`` after update ``step`` (as ``KRC_TEST_COPY_AT`` in a child)."""
    original = callbacks.StopAtStep.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        if callbacks.iterations(self.model) == step:
            shutil.copytree(model_dir, copy)
        return original(self, batch, logs)

    callbacks.StopAtStep.on_train_batch_end = on_train_batch_end
    try:
        yield
    finally:
        callbacks.StopAtStep.on_train_batch_end = original


def run(command, **env):
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ, **env))


def paused(command, point, stderr=subprocess.DEVNULL):
    """Starts ``command`` and returns it once it stands at the pause point ``point`` (``tests/hooks``)."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=hook_env(KRC_TEST_PAUSE_AT=point),
        # As from a terminal: a suite run under nohup would pass SIGHUP on ignored, and a command leaves it so.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    for line in proc.stdout:
        if line.strip() == f"paused at {point}":
            return proc
        assert time.time() < deadline, f"never reached {point}"
    raise AssertionError(f"{command} ended (rc {proc.wait()}) before {point}")


def kill_at(command, point):
    """Starts ``command``, waits until it stops at the named pause point, then kills it with SIGKILL."""
    proc = paused(command, point)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def run_copying_at(command, point, copy):
    """Runs ``command`` to its end, copying its run directory to ``copy`` at ``point`` ("step<N>").

    The copy is the directory a kill at that point leaves (the run writes
    nothing there), so one run gives both an uninterrupted run and a killed one.
    """
    return run(command, **hook_env(KRC_TEST_COPY_AT=f"{point}:{copy}"))


def rows(model_dir):
    return run_log.read_csv(os.path.join(model_dir, "metrics.csv"))
