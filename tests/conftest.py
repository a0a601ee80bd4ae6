"""Shared test set-up: the TensorFlow backend, quiet logs, a clean dtype policy, the shared data and runs."""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One compute thread per process (TensorFlow, torch, XLA), children included.
# Two workers on two cores, each often with a child or a multi-process job,
# put more threads on the cores than there are cores; a thread pool then
# waits at each op for a thread the kernel has parked, and a 4-second test
# took 101 s. The tests check behaviour, not speed, so they run on one.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
# One XLA compile of each program for the whole suite: every JAX child process
# (training runs, distributed jobs) reads and writes this persistent cache.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "keras-resnet-cifar-tests-jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import filelock  # noqa: E402
import keras  # noqa: E402
import pytest  # noqa: E402

from tests import datagen, trainproc  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends under the default float32 policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


def _run_folder(tmp_path_factory):
    """pytest's folder for this run, which every xdist worker shares."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # above each worker's own
    return pathlib.Path(root)


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_kept_with_the_run(tmp_path_factory):
    """The temporary files of the tests and of their child processes under pytest's folder for the run.

    pytest deletes all but the last three runs' folders. In the system's
    temporary folder a run left some 200 files (what killed processes leave,
    the distributed jobs' lock files), and torch runs compiled into the
    user's cache. Inductor's cache is the run's, shared by its workers: a
    graph that several tests compile is compiled once.
    """
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
    tempfile.tempdir = None  # found again from TMPDIR
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(_run_folder(tmp_path_factory) / "torchinductor")


@contextlib.contextmanager
def _made_once(tmp_path_factory, name):
    """``(path, todo)``: a folder the whole run shares, and whether this process must fill it.

    pytest-xdist runs a session fixture once in each worker; the first to
    get here makes it (``todo`` True) while the others wait, then read it.
    """
    path = _run_folder(tmp_path_factory) / name
    with filelock.FileLock(f"{path}.lock"):
        done = pathlib.Path(f"{path}.done")
        todo = not done.exists()
        if todo:  # a worker that failed here left no mark and maybe half a folder
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        yield path, todo
        done.touch()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """96 images of 4 classes: 72 for training (5 steps an epoch at batch 16), 24 for validation."""
    with _made_once(tmp_path_factory, "data") as (root, todo):
        if todo:
            datagen.image_folder(root, trainproc.CLASSES[:4], per_class=24)
    return root


@pytest.fixture(scope="session")
def killed_run(data_dir, tmp_path_factory):
    """``(whole, killed)``: a deterministic run (``trainproc.KILLED_FLAGS``) and its directory as a kill in epoch 2 leaves it.

    ``killed`` holds the backup of epoch 1 and one CSV row; tests copy it
    before they touch it. ``whole`` is finished (no export).
    """
    with _made_once(tmp_path_factory, "killed-run") as (tmp, todo):
        whole, killed = tmp / "whole", tmp / "killed"
        if todo:
            command = trainproc.cmd(data_dir, whole, *trainproc.KILLED_FLAGS, "--noexport")
            out = trainproc.run_copying_at(command, "step8", killed)  # 3 steps into epoch 2
            assert out.returncode == 0, out.stderr[-3000:]
    state = json.loads((killed / "backup" / "state.json").read_text())
    assert state == {"epoch": 1, "weights": "epoch-1.weights.h5"}
    return whole, killed
