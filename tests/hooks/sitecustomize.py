"""Fault injection and recording for the tests' child processes, from outside the package.

A test puts this folder first on a child's ``PYTHONPATH`` (``helpers.hook_env``),
so Python imports this module at start-up; it patches the package's modules
as they are imported, as each variable below asks. Nothing here is in the
package: a user's process never runs it.

    KRC_TEST_PAUSE_AT   "step<N>" (after the N-th update), "before_save"
                        (before model.keras is written), "export" (before
                        the SavedModel's temporary is renamed into place) or
                        "after_export" (right after that rename):
                        print "paused at <point>" and wait to be killed.
    KRC_TEST_RAISE_AT   "step<N>:<message>": raise RuntimeError(<message>)
                        after the N-th update.
    KRC_TEST_COPY_AT    "step<N>:<path>": after the N-th update, copy the run
                        directory to <path> (what a kill there leaves:
                        nothing is being written at that point) and go on.
    KRC_TEST_RECORD     a path: each process appends "<step> <indices>" of
                        its share of every arrays-input batch to
                        "<path>.<process>", and saves its final weights to
                        "<path>.<process>.npz".
    KRC_TEST_QUICK_YARDSTICKS  any value: the benchmark's float32 peak on a
                        512x512 product and its pipeline rate over 10
                        batches (the figures the rows are shares of, made
                        cheap; their arithmetic is what the tests check).
    KRC_TEST_HEARTBEAT  seconds: the JAX coordination service's heartbeat
                        timeout (``distributed.HEARTBEAT_SECONDS``).
    KRC_TEST_HIDE_MODULES  comma-separated module names that the process
                        sees as not installed (an extra left out).
    WATCH_DIR, WATCH_LOG  log every write under WATCH_DIR to WATCH_LOG.
"""

import importlib.abc
import importlib.machinery
import os
import sys
import time

PAUSE = os.environ.get("KRC_TEST_PAUSE_AT")
RAISE = os.environ.get("KRC_TEST_RAISE_AT")
COPY = os.environ.get("KRC_TEST_COPY_AT")
RECORD = os.environ.get("KRC_TEST_RECORD")
HEARTBEAT = os.environ.get("KRC_TEST_HEARTBEAT")
QUICK_YARDSTICKS = os.environ.get("KRC_TEST_QUICK_YARDSTICKS")
HIDE_MODULES = os.environ.get("KRC_TEST_HIDE_MODULES")
WATCH_DIR = os.environ.get("WATCH_DIR")
WATCH_LOG = os.environ.get("WATCH_LOG")


def _pause(point):
    print(f"paused at {point}", flush=True)
    sys.stderr.flush()
    while True:
        time.sleep(60)


def _patch_callbacks(module):
    original = module.StopAtStep.on_train_batch_end
    backup_init = module.Backup.__init__
    run = {}

    def init(self, backup_dir, *args, **kwargs):
        run["dir"] = os.path.dirname(backup_dir)
        backup_init(self, backup_dir, *args, **kwargs)

    module.Backup.__init__ = init

    def on_train_batch_end(self, batch, logs=None):
        step = module.iterations(self.model)
        if PAUSE == f"step{step}":
            _pause(PAUSE)
        if COPY and COPY.split(":", 1)[0] == f"step{step}":
            import shutil

            shutil.copytree(run["dir"], COPY.split(":", 1)[1])
        if RAISE and RAISE.split(":", 1)[0] == f"step{step}":
            raise RuntimeError(RAISE.split(":", 1)[1])
        return original(self, batch, logs)

    module.StopAtStep.on_train_batch_end = on_train_batch_end


def _patch_files(module):
    if PAUSE == "before_save":
        original = module.save_model

        def save_model(model, path, *args, **kwargs):
            if os.path.basename(path) == "model.keras":
                _pause(PAUSE)
            return original(model, path, *args, **kwargs)

        module.save_model = save_model


def _patch_export(module):
    rename = os.rename

    def paused_rename(src, dst, *args, **kwargs):
        # The export's last step: its temporary folder becomes the numbered version.
        last = os.path.basename(os.fspath(src)).startswith(".tmp-") and os.path.basename(os.fspath(dst)).isdigit()
        if last and PAUSE == "export":
            _pause(PAUSE)
        result = rename(src, dst, *args, **kwargs)
        if last and PAUSE == "after_export":
            _pause(PAUSE)
        return result

    os.rename = paused_rename


def _patch_array_input(module):
    original = module.batch_indices

    def batch_indices(count, batch_size, seed, step, process_id=0, num_processes=1):
        mine = original(count, batch_size, seed, step, process_id, num_processes)
        with open(f"{RECORD}.{process_id}", "a") as f:
            f.write(f"{step} {' '.join(map(str, mine))}\n")
        return mine

    module.batch_indices = batch_indices


def _patch_runner(module):
    import numpy as np

    training_model, train, leave = module.training_model, module._train, module.distributed.leave_distribution
    seen = {}

    def recording_train(task, options, setup, log):
        seen["process"] = setup.cluster.process_id
        return train(task, options, setup, log)

    def recording_training_model(*args, **kwargs):
        seen["model"] = training_model(*args, **kwargs)
        return seen["model"]

    def recording_leave():
        if "model" in seen:  # the weights as training left them, this process's replica
            np.savez(f"{RECORD}.{seen['process']}.npz", *seen["model"].get_weights())
        return leave()

    module._train, module.training_model = recording_train, recording_training_model
    module.distributed.leave_distribution = recording_leave


def _patch_distributed(module):
    module.HEARTBEAT_SECONDS = int(HEARTBEAT)


def _patch_benchmark(module):
    import functools

    module.matmul_gflops = functools.partial(module.matmul_gflops, size=512)
    module.pipeline_images_per_sec = functools.partial(module.pipeline_images_per_sec, batches=10)


_PATCHES = {}
if HIDE_MODULES:
    for _name in HIDE_MODULES.split(","):
        sys.modules[_name] = None  # import raises ImportError; importlib.util.find_spec answers None
if QUICK_YARDSTICKS:
    _PATCHES["keras_resnet_cifar.study.benchmark"] = _patch_benchmark
if HEARTBEAT:
    _PATCHES["keras_resnet_cifar.training.distributed"] = _patch_distributed
if PAUSE or RAISE or COPY:
    _PATCHES["keras_resnet_cifar.training.callbacks"] = _patch_callbacks
if PAUSE == "before_save":
    _PATCHES["keras_resnet_cifar.files"] = _patch_files
if PAUSE in ("export", "after_export"):
    _PATCHES["keras_resnet_cifar.serving.export"] = _patch_export
if RECORD:
    _PATCHES["keras_resnet_cifar.data.array_input"] = _patch_array_input
    _PATCHES["keras_resnet_cifar.training.runner"] = _patch_runner


class _Patched(importlib.abc.Loader):
    """A module's own loader, then the patch."""

    def __init__(self, loader, patch):
        self.loader, self.patch = loader, patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.patch(module)

    def __getattr__(self, name):  # the rest (get_code for ``python -m``, ...) is the module's own loader's
        return getattr(self.loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = _PATCHES.pop(name, None)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Patched(spec.loader, patch)
        return spec


if _PATCHES:
    sys.meta_path.insert(0, _AfterImport())


def _watch(event, args):
    if event not in ("open", "os.mkdir", "os.rename", "os.remove", "shutil.rmtree"):
        return
    path = args[0]
    if event == "open":
        mode, flags = args[1], args[2]
        writes = isinstance(mode, str) and set(mode) & set("wax+")
        if not writes and not (flags and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            return
    if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(WATCH_DIR):
        with open(WATCH_LOG, "a") as f:  # outside the watched directory
            f.write(f"{event} {os.fsdecode(path)}\n")


if WATCH_DIR:
    sys.addaudithook(_watch)
