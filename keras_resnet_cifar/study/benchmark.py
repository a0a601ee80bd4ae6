"""Speed measurements: training, inference, serving and the input pipeline.

Every rate is a steady-state rate: compilation and the first steps are run
and thrown away before the clock starts; the first step's seconds, which
hold the compile, are reported beside it. Rates on shared machines drift, so
each table row also carries its ratio to a baseline measured in the same run.
Training is timed under any Keras backend (another backend's cases run in a
child process, ``train_timings``); the input pipeline, inference and the
SavedModel are TensorFlow's.
"""

import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_resnet_cifar import errors
from keras_resnet_cifar.data import input_pipeline
from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.study import serving_speed
from keras_resnet_cifar.study.cases import Timing, TrainCase
from keras_resnet_cifar.training import graph_step, machine, run_log, runner


def describe_machine():
    """The CPU, its flags that matter for speed, its class (``machine.CPU_DEFAULTS``), core count and versions."""
    cpu = machine.cpu_info()
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        **run_log.versions(),
        "cpu_model": cpu["cpu_model"],
        "cpu_flags": sorted(cpu["cpu_flags"] & machine.SPEED_FLAGS),
        "cpu_class": machine.cpu_class(cpu["cpu_flags"]),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def train_timing(case, images=None, warmup_steps=5, steps=20):
    """Training rate of ``case`` in images per second, and its first step's seconds (a ``Timing``).

    Args:
        case: a ``TrainCase``.
        images: uint8 ``[N, 32, 32, 3]`` the pipeline draws from; random
            pixels when None.
        warmup_steps: steps run before timing (compilation included).
        steps: timed steps.
    """
    if case.backend != keras.backend.backend():
        raise errors.ArgumentError(f"case for the {case.backend} backend in a {keras.backend.backend()} process")
    # The runner's own training model: layout, BatchNorm, decay and precision as tools/train.py trains.
    model = runner.training_model(
        lambda **layout: resnet.resnet_cifar(depth=case.depth, shortcut=case.shortcut, **layout),
        data_format=None if case.layout == "auto" else case.layout,
        dtype=case.precision,
    )
    rng = np.random.default_rng(0)
    if images is None:
        images = rng.integers(0, 256, (max(4 * case.batch_size, 2048), 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images)).astype(np.int64)
    if case.data == "pipeline":
        ds = input_pipeline.train_dataset(images, labels, case.batch_size, seed=0)
    else:
        batch = (images[: case.batch_size], labels[: case.batch_size])
        ds = tf.data.Dataset.from_tensors(batch).repeat()
    return _fit_timing(model, machine.input_threads(ds), case.batch_size, case.xla, case.precision, warmup_steps, steps)


def train_timings(cases, images=None, warmup_steps=5, steps=20):
    """``train_timing`` (a ``Timing``) of each case, each under its own backend.

    Cases of this process's backend run here; each other backend's run in
    one child process (the backend is fixed when Keras is imported).
    """
    timings = {}
    here = keras.backend.backend()
    for backend in dict.fromkeys(case.backend for case in cases):
        mine = [i for i, case in enumerate(cases) if case.backend == backend]
        if backend == here:
            for i in mine:
                timings[i] = train_timing(cases[i], images, warmup_steps, steps)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            spec = {"cases": [vars(cases[i]) for i in mine], "warmup_steps": warmup_steps, "steps": steps}
            if images is not None:
                spec["images"] = os.path.join(tmp, "images.npy")
                np.save(spec["images"], images)
            result = subprocess.run(
                [sys.executable, "-m", __name__, json.dumps(spec)],
                env=dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3"),
                capture_output=True,
                text=True,
            )
        if result.returncode:
            lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
            raise RuntimeError(f"timing under {backend} failed: {lines[-1]}")
        timings.update(zip(mine, (Timing(*t) for t in json.loads(result.stdout.splitlines()[-1]))))
    return [timings[i] for i in range(len(cases))]


def _fit_timing(model, ds, batch_size, xla, precision, warmup_steps, steps):
    """Compiles ``model`` as the runner does; its steady-state training rate on ``ds`` and first step (a ``Timing``)."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = graph_step.compile_for_training(model, loss, 0.01, 0.9, 1e-4, precision, xla, print)
    timer = _StepTimer(warmup_steps)
    model.fit(ds, epochs=1, steps_per_epoch=warmup_steps + steps, verbose=0, callbacks=[timer], shuffle=False)
    return Timing(steps * batch_size / (timer.end - timer.start), timer.first_step)


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, warmup_steps):
        super().__init__()
        self.warmup_steps = warmup_steps
        self.start = self.end = self.first_step = None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.first_step = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.first_step = time.perf_counter() - self.first_step
        if batch == self.warmup_steps - 1:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def pipeline_images_per_sec(images=None, batch_size=128, batches=200):
    """Rate of the training tf.data pipeline alone (shuffle, gather, augment), on the training run's threads."""
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros(len(images), np.int64)
    it = iter(machine.input_threads(input_pipeline.train_dataset(images, labels, batch_size, seed=0)))
    for _ in range(20):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def inference(depth=20, shortcut="A", batch_size=128, serving_settings=None, log=None):
    """Keras model and its exports: batch throughput and batch-1 latency.

    The Keras figures call a compiled ``model(x, training=False)`` in this
    process; the SavedModel ones the ``serving_default`` signature TF
    Serving runs (uint8 in, probabilities, class ids and logits out), and
    the LiteRT (float32 and int8) and ONNX ones their runtimes, each in a
    process of its own (``serving_speed``). A format whose extra is not
    installed is left out, and ``log`` says so.

    Args:
        depth, shortcut: the CIFAR ResNet.
        batch_size: the throughput batch.
        serving_settings: ``{name: {"intra_op": .., "inter_op": .., "env": {..}}}``,
            the serving-process settings to time the SavedModel with; default TensorFlow's own.
        log: where a left-out format is said; None: silently.

    Returns:
        ``{"keras": figures, "saved_model": figures, "saved_model <name>": ...,
        "saved_model bfloat16": ... (where the CPU has bfloat16 instructions), "litert": ...,
        "litert int8": ..., "onnx": ...}``, and
        ``forward_mflop`` (one image's forward arithmetic).
    """
    from keras_resnet_cifar.serving import export, portable, runtimes

    model = resnet.resnet_cifar(depth=depth, shortcut=shortcut)
    keras_fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
    batch = np.random.default_rng(0).integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8)
    results = {"forward_mflop": forward_mflop(depth, shortcut)}
    results["keras"] = serving_speed.figures(lambda x: keras_fn(tf.cast(x, tf.float32)), batch)
    with tempfile.TemporaryDirectory() as base:
        path = export.export_saved_model(model, base, model_name="bench", version=1, warmup=False)
        for name, setting in (serving_settings or {"": {}}).items():
            key = f"saved_model {name}".strip()
            results[key] = serving_speed.measure(path, batch_size=batch_size, **setting)
        if "tensorflow" in machine.cpu_default("bfloat16"):
            path = export.export_saved_model(
                model, base, model_name="bench", version=2, warmup=False, precision="bfloat16"
            )
            results["saved_model bfloat16"] = serving_speed.measure(path, batch_size=batch_size)
        elif log:
            log("saved_model bfloat16 not timed: this CPU has no bfloat16 instructions (TensorFlow would emulate them)")
        for fmt, quantize in FILE_FORMATS:
            key = fmt + (f" {quantize}" if quantize != "none" else "")
            try:
                runtimes.require(fmt)
            except runtimes.MissingExtraError as e:
                if log:
                    log(f"{key} not timed: {e}")
                continue
            # Calibrated on random pixels: the int8 model's speed does not depend on its ranges.
            path = portable.export_file(model, fmt, base, version=1, quantize=quantize, calibration=batch)
            results[key] = serving_speed.measure(path, fmt, batch_size=batch_size)
    return results


# The LiteRT and ONNX exports the benchmark times beside the SavedModel.
FILE_FORMATS = (("litert", "none"), ("litert", "int8"), ("onnx", "none"))


def matmul_gflops(size=4096, repeats=10):
    """The machine's float32 rate on a large matrix product (best of ``repeats``), GFLOP/s.

    The yardstick for "share of peak": a 4096x4096 product is the most
    efficient float32 work a CPU's vector units do, run by numpy's BLAS on
    every core this process may use.
    """
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


@functools.cache
def forward_mflop(depth, shortcut="A"):
    """One image's forward arithmetic in MFLOP: two per multiply-add.

    Cached: the benchmark asks it for every row, and each answer builds the network.
    """
    from keras_resnet_cifar.models import stats

    return 2 * stats.multiply_adds(resnet.resnet_cifar(depth=depth, shortcut=shortcut)) / 1e6


def train_mflop(depth, shortcut="A"):
    """One image's training arithmetic: three forward passes' worth (forward, data and filter gradients)."""
    return 3 * forward_mflop(depth, shortcut)


def imagenet_train_timing(arch="resnet50", batch_size=32, xla=False, image_size=224, warmup_steps=2, steps=5):
    """Training rate of an ImageNet ResNet on one in-memory batch, in images per second (a ``Timing``)."""
    from keras_resnet_cifar.models import imagenet

    model = runner.training_model(
        lambda **layout: imagenet.resnet_imagenet(arch, input_shape=(image_size, image_size, 3), **layout)
    )
    rng = np.random.default_rng(0)
    batch = (
        rng.integers(0, 256, (batch_size, image_size, image_size, 3), dtype=np.uint8),
        rng.integers(0, 1000, batch_size),
    )
    data = tf.data.Dataset.from_tensors(batch).repeat()
    return _fit_timing(model, data, batch_size, xla, "float32", warmup_steps, steps)


def main(argv):
    """Child process of ``train_timings``: times the cases in argv[1] (JSON), prints their ``Timing``s."""
    spec = json.loads(argv[1])
    images = np.load(spec["images"]) if "images" in spec else None
    cases = [TrainCase(**case) for case in spec["cases"]]
    timings = [train_timing(case, images, spec["warmup_steps"], spec["steps"]) for case in cases]
    print(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
