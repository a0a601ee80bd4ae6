"""Training with ``model.fit``: the paper's recipe, resumable, with logs.

``train_and_evaluate(config)`` is the whole job; ``tools/train.py`` only turns
flags into a ``TrainConfig``. A run directory (``model_dir``) receives:

    config.json      resolved settings plus package, Keras and TF versions
    backup/          BackupAndRestore state while training (resume point)
    metrics.csv      one row per epoch: loss, accuracy, error, val_*, lr, img/s
    logs/            TensorBoard events
    model.keras      the float32 model (loads with keras.models.load_model)
    labels.txt       class names, one per line, in label order
    metrics.json     final train/val/test accuracy and error, time, images/s
"""

import dataclasses
import json
import math
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import keras_resnet_cifar
from keras_resnet_cifar import files, input_pipeline, pretrained, resnet, schedules

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "mirrored", "one_device")
# Settings that must match to resume a run in the same model_dir.
_RESUME_KEYS = ("n", "residual", "shortcut", "dataset", "batch_size", "schedule",
                "learning_rate", "total_steps", "steps_per_epoch", "validation_split", "seed",
                "precision", "init_weights")


class TrainingError(Exception):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on. Defaults are the paper's CIFAR-10 recipe.

    Attributes:
        n: blocks per stage (depth 6n+2).
        residual: False for a plain net.
        shortcut: "A" or "B".
        dataset: "cifar10" or "cifar100".
        data_dir: an image folder, CIFAR batches or a prepared tfds directory.
        model_dir: where the run writes everything (see the module docstring).
        batch_size: global batch size (split across replicas).
        learning_rate: peak rate; None: 0.1 (onecycle 0.2) x batch_size / 128.
        schedule: "paper", "cosine" or "onecycle".
        steps: total iterations; None: the paper's 64k at batch 128.
        epochs: alternatively, total epochs (not with ``steps``).
        steps_per_epoch: steps between two evaluations and log rows (a
            logging epoch); None: one pass over the training split. Short
            runs use it to get a curve (``compare.py``).
        warmup_steps: steps at a tenth of the rate first ("paper" only);
            None: 400 for n >= 18 (ResNet110 and deeper), else 0.
        momentum: SGD momentum.
        weight_decay: coupled (PyTorch-style) decay, applied in the model.
        validation_split: share of the training set held out, stratified.
        precision: "auto" (mixed_float16 on GPU, float32 on CPU), "float32",
            "mixed_float16" or "mixed_bfloat16".
        xla: jit-compile the train step; None picks the faster setting
            (see ``resolve_xla``).
        seed: seeds weights, split, shuffling and augmentation.
        deterministic: also make TensorFlow's ops deterministic (slower).
        strategy: "auto" (MirroredStrategy over several GPUs), "mirrored" or
            "one_device".
        steps_per_execution: train steps per call into the graph.
        overwrite: replace a finished run in ``model_dir``.
        verbose: 1 progress bar, 2 one line per epoch; None: 1 on a terminal.
        export: also write a TF Serving SavedModel to ``model_dir/export``.
        init_weights: start from "cifar10" (the shipped weights, with their
            input normalisation; a new classifier where the dataset has
            other than 10 classes) or a ``.weights.h5`` file of the same
            network; None: random initialisation.
    """

    n: int = 3
    residual: bool = True
    shortcut: str = "A"
    dataset: str = "cifar10"
    data_dir: str | None = None
    model_dir: str = "runs/resnet20"
    batch_size: int = 128
    learning_rate: float | None = None
    schedule: str = "paper"
    steps: int | None = None
    epochs: int | None = None
    steps_per_epoch: int | None = None
    warmup_steps: int | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    validation_split: float = 0.1
    precision: str = "auto"
    xla: bool | None = None
    seed: int = 0
    deterministic: bool = False
    strategy: str = "auto"
    steps_per_execution: int = 1
    overwrite: bool = False
    verbose: int | None = None
    export: bool = True
    init_weights: str | None = None


def check_config(config):
    """Raises TrainingError naming the first bad setting."""
    checks = [
        (isinstance(config.n, int) and config.n >= 1, f"n must be >= 1, got {config.n}"),
        (config.shortcut in ("A", "B"), f"shortcut must be A or B, got {config.shortcut!r}"),
        (config.dataset in ("cifar10", "cifar100"), f"dataset must be cifar10 or cifar100, got {config.dataset!r}"),
        (config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}"),
        (config.learning_rate is None or config.learning_rate > 0, f"lr must be > 0, got {config.learning_rate}"),
        (config.schedule in schedules.SCHEDULES, f"schedule must be one of {', '.join(schedules.SCHEDULES)}, got {config.schedule!r}"),
        (config.steps is None or config.steps >= 1, f"steps must be >= 1, got {config.steps}"),
        (config.epochs is None or config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.steps is None or config.epochs is None, "give --steps or --epochs, not both"),
        (config.steps_per_epoch is None or config.steps_per_epoch >= 1, f"steps_per_epoch must be >= 1, got {config.steps_per_epoch}"),
        (config.warmup_steps is None or config.warmup_steps >= 0, f"warmup_steps must be >= 0, got {config.warmup_steps}"),
        (0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}"),
        (config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}"),
        (0 <= config.validation_split < 1, f"validation_split must be in [0, 1), got {config.validation_split}"),
        (config.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}"),
        (config.strategy in STRATEGIES, f"strategy must be one of {', '.join(STRATEGIES)}, got {config.strategy!r}"),
        (config.steps_per_execution >= 1, f"steps_per_execution must be >= 1, got {config.steps_per_execution}"),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainingError(message)
    if config.init_weights is not None:
        try:
            pretrained.check(config.init_weights, model_name=resnet.model_name(config.n, config.residual, config.shortcut),
                             residual=config.residual, shortcut=config.shortcut, include_top=False, num_classes=None)
        except ValueError as e:
            raise TrainingError(f"--init_weights: {e}") from None
        if not pretrained.is_named(config.init_weights) and not os.path.isfile(config.init_weights):
            raise TrainingError(f"--init_weights {config.init_weights} does not exist")


def resolve_precision(precision):
    """"auto": mixed_float16 with a GPU; on CPU mixed_bfloat16 where AMX runs it, else float32.

    Without AMX-BF16 (for example AVX2-only CPUs) bfloat16 is emulated and
    several times slower than float32.
    """
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_amx() else "float32"


def cpu_has_amx():
    """True when the CPU advertises AMX-BF16 (Sapphire Rapids and later)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in f)
    except OSError:
        return False


def resolve_xla(xla, precision, deterministic, replicas):
    """``jit_compile`` for the train step: the caller's choice, else the faster setting.

    Measured with tools/benchmark.py on a 2-core AVX2 CPU (README,
    Performance): for float32, XLA gains 2-6% on ResNet20 and loses 10% on
    ResNet56, so it stays off, as Keras's "auto" has it on CPUs. For
    mixed_bfloat16 on a CPU without AMX, TensorFlow's own kernels emulate
    bfloat16 (about 22 images/s for ResNet20, against 133-217 with XLA), so
    XLA goes on. With AMX, oneDNN's bfloat16 kernels run without XLA.
    Deterministic and multi-replica runs never get XLA by default.
    """
    if xla is not None:
        return xla
    if tf.config.list_physical_devices("GPU"):
        return "auto"
    if deterministic or replicas != 1:
        return False
    return precision == "mixed_bfloat16" and not cpu_has_amx()


def make_strategy(name):
    """A tf.distribute strategy; "mirrored" without GPUs mirrors over logical CPUs."""
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def versions():
    return {
        "keras_resnet_cifar": keras_resnet_cifar.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def train_and_evaluate(config, log=print):
    """Trains, evaluates and saves one model as ``config`` says.

    Re-running with the same config and ``model_dir`` after an interruption
    resumes from the last completed epoch, optimizer state included.

    Args:
        config: a ``TrainConfig``.
        log: where progress lines go.

    Returns:
        The final metrics (also written to ``model_dir/metrics.json``).

    Raises:
        TrainingError: bad settings, a finished or different run in
            ``model_dir``, or a NaN loss.
        files.WriteError: an output could not be written.
        input_pipeline.DataError: missing or bad data.
    """
    check_config(config)
    model_dir = config.model_dir
    backup_dir = os.path.join(model_dir, "backup")
    resuming = os.path.isdir(backup_dir)
    if os.path.exists(os.path.join(model_dir, "model.keras")) and not resuming and not config.overwrite:
        raise TrainingError(
            f"{model_dir} already holds a finished run (model.keras); "
            "pass --overwrite or choose another --model_dir"
        )

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    data = input_pipeline.load_dataset(config.dataset, config.data_dir)
    log(data.describe())
    train_x, train_y, val_x, val_y = input_pipeline.split_train_validation(
        data.train_images, data.train_labels, config.validation_split, config.seed)
    log(f"Split: {len(train_x):,} train, {0 if val_x is None else len(val_x):,} validation "
        f"(validation_split={config.validation_split}, seed {config.seed})")
    if len(train_x) < config.batch_size:
        raise TrainingError(f"{len(train_x)} training images are fewer than one batch of {config.batch_size}")

    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    if config.epochs:
        total_steps = config.epochs * steps_per_epoch
    else:
        total_steps = config.steps or schedules.paper_steps(config.batch_size)
    steps_per_epoch = min(config.steps_per_epoch or steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    learning_rate = config.learning_rate or schedules.default_learning_rate(config.schedule, config.batch_size)
    warmup = config.warmup_steps
    if warmup is None:
        warmup = schedules.PAPER_WARMUP_STEPS if config.n >= 18 and config.schedule == "paper" else 0
    try:
        schedule = schedules.make_schedule(config.schedule, learning_rate, total_steps, warmup)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    precision = resolve_precision(config.precision)
    strategy = make_strategy(config.strategy)
    xla = resolve_xla(config.xla, precision, config.deterministic, strategy.num_replicas_in_sync)

    resolved = dict(dataclasses.asdict(config), learning_rate=learning_rate, total_steps=total_steps,
                    steps_per_epoch=steps_per_epoch, epochs=epochs, warmup_steps=warmup,
                    precision=precision, xla=xla, replicas=strategy.num_replicas_in_sync, class_names=data.class_names, data_source=data.source,
                    train_size=len(train_x), val_size=0 if val_x is None else len(val_x),
                    versions=versions(), command=sys.argv)
    _check_resume(model_dir, resolved, resuming)
    os.makedirs(model_dir, exist_ok=True)
    files.write_json(os.path.join(model_dir, "config.json"), resolved)
    files.write_text(os.path.join(model_dir, "labels.txt"), "\n".join(data.class_names) + "\n")

    done_epochs = _backup_epoch(backup_dir) if resuming else 0
    if resuming:
        log(f"Resuming from {backup_dir}: {done_epochs} epoch(s) done, going on with epoch {done_epochs + 1}")
    keras.mixed_precision.set_global_policy(precision)
    log(f"Model resnet n={config.n} ({6 * config.n + 2} layers, "
        f"{'shortcut ' + config.shortcut if config.residual else 'plain'}), precision {precision}, "
        f"{strategy.num_replicas_in_sync} replica(s), XLA {xla}, {config.schedule} schedule peak lr {learning_rate:g}, "
        f"{total_steps:,} steps = {epochs} epochs of {steps_per_epoch}")
    try:
        with strategy.scope():
            model = _build(config, data.num_classes)
            if config.init_weights and not resuming:
                resnet.load_weights(model, config.init_weights, n=config.n, residual=config.residual,
                                    shortcut=config.shortcut)
                log(f"Initialised from {config.init_weights}")
            model.compile(
                optimizer=keras.optimizers.SGD(schedule, momentum=config.momentum),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                jit_compile=xla,
                steps_per_execution=config.steps_per_execution,
            )
        train_ds = input_pipeline.train_dataset(train_x, train_y, config.batch_size, config.seed,
                                                first_step=done_epochs * steps_per_epoch)
        val_ds = None if val_x is None else input_pipeline.eval_dataset(val_x, val_y, config.batch_size)
        verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 0)
        epoch_stats = _EpochStats(config.batch_size, schedule, epochs, log, print_line=verbose != 1)
        start = time.perf_counter()
        history = model.fit(train_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                            validation_data=val_ds, callbacks=run_callbacks(model_dir, total_steps, epoch_stats),
                            verbose=verbose, shuffle=False)
        wall = time.perf_counter() - start
    except RuntimeError as e:
        raise nan_error(e, backup_dir) from None
    finally:
        keras.mixed_precision.set_global_policy("float32")

    # The saved model is float32 and uncompiled, whatever the run used: it
    # loads with Keras alone, carries no optimizer, and serves fast on CPUs.
    final = _build(config, data.num_classes)
    final.set_weights(model.get_weights())
    files.save_model(final, os.path.join(model_dir, "model.keras"))
    final.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    metrics = _final_metrics(final, history, data, val_x, val_y, config.batch_size)
    metrics.update(wall_time_s=round(wall, 1), images_per_sec=epoch_stats.mean_images_per_sec(),
                   steps=_iterations(model), epochs=epochs, class_names=data.class_names)
    files.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if config.export:
        from keras_resnet_cifar import export

        path = export.export_saved_model(
            final, os.path.join(model_dir, "export"), class_names=data.class_names,
            card=export_card(config.dataset, metrics))
        log(f"Exported SavedModel {path}")
    log("Final: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                              if isinstance(v, float) and k.endswith(("accuracy", "error"))))
    log(f"Saved {os.path.join(model_dir, 'model.keras')}")
    return metrics


def run_callbacks(model_dir, total_steps, epoch_stats):
    """What every run uses: resumable backup, NaN stop, exact step count, per-epoch stats and logs."""
    return [
        # double_checkpoint: a kill while writing falls back to the previous epoch.
        keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup"), double_checkpoint=True),
        keras.callbacks.TerminateOnNaN(raise_error=True),
        _StopAtStep(total_steps),
        epoch_stats,
        keras.callbacks.CSVLogger(os.path.join(model_dir, "metrics.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
    ]


def nan_error(error, backup_dir):
    """A ``TrainingError`` for TerminateOnNaN's RuntimeError; any other error unchanged."""
    if "nan" in str(error).lower() or "inf" in str(error).lower():
        return TrainingError(
            f"training stopped: {error} The last completed epoch is kept in {backup_dir}; "
            "lower --lr and re-run the same command to resume"
        )
    return error


def export_card(dataset, metrics):
    """Model-card entries of a finished run."""
    return {"dataset": dataset, **{k: metrics.get(k) for k in (
        "val_accuracy", "test_accuracy", "train_accuracy", "steps")}}


def _build(config, num_classes):
    if pretrained.is_named(config.init_weights):
        # Pretrained weights keep working only on the inputs they were trained on.
        mean, std = pretrained.REFERENCE_MEAN, pretrained.REFERENCE_STD
    elif config.dataset == "cifar100":
        mean, std = resnet.CIFAR100_MEAN, resnet.CIFAR100_STD
    else:
        mean, std = resnet.CIFAR10_MEAN, resnet.CIFAR10_STD
    return resnet.resnet_cifar(
        n=config.n, residual=config.residual, shortcut=config.shortcut,
        num_classes=num_classes, weight_decay=config.weight_decay,
        preprocessing_mean=mean, preprocessing_std=std,
    )


def _final_metrics(model, history, data, val_x, val_y, batch_size):
    last = {k: float(v[-1]) for k, v in history.history.items() if v}
    metrics = {"train_loss": last.get("loss"), "train_accuracy": last.get("accuracy")}
    metrics["train_error"] = None if metrics["train_accuracy"] is None else 1 - metrics["train_accuracy"]
    splits = {"val": (val_x, val_y), "test": (data.test_images, data.test_labels)}
    for split, (x, y) in splits.items():
        if x is None:
            metrics.update({f"{split}_accuracy": None, f"{split}_error": None})
            continue
        # The test split is evaluated here, once, after training: never for selection.
        result = model.evaluate(input_pipeline.eval_dataset(x, y, batch_size), verbose=0, return_dict=True)
        metrics[f"{split}_loss"] = float(result["loss"])
        metrics[f"{split}_accuracy"] = float(result["accuracy"])
        metrics[f"{split}_error"] = 1 - float(result["accuracy"])
    return metrics


def _check_resume(model_dir, resolved, resuming):
    path = os.path.join(model_dir, "config.json")
    if not resuming or not os.path.exists(path):
        return
    with open(path) as f:
        previous = json.load(f)
    for key in _RESUME_KEYS:
        if previous.get(key) != resolved.get(key):
            raise TrainingError(
                f"{model_dir} holds an unfinished run with {key}={previous.get(key)!r}, not "
                f"{resolved.get(key)!r}; re-run it with the same flags or choose another --model_dir"
            )


def _iterations(model):
    # keras.ops reads plain and tf.distribute (mirrored) variables alike.
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _backup_epoch(backup_dir):
    """Epochs completed according to BackupAndRestore's metadata (0 if none)."""
    try:
        with open(os.path.join(backup_dir, "training_metadata.json")) as f:
            return int(json.load(f)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


class _StopAtStep(keras.callbacks.Callback):
    """Ends training after exactly ``total_steps`` updates, mid-epoch if need be."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if _iterations(self.model) >= self.total_steps:
            self.model.stop_training = True


class _EpochStats(keras.callbacks.Callback):
    """Adds error, learning rate, optimizer step and images/s to each epoch's logs.

    It runs before CSVLogger and TensorBoard, which see the added entries.
    """

    def __init__(self, batch_size, schedule, epochs, log, print_line):
        super().__init__()
        self.batch_size = batch_size
        self.schedule = schedule
        self.epochs = epochs
        self.log = log
        self.print_line = print_line
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()
        self._first_step = _iterations(self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        step = _iterations(self.model)
        seconds = max(self._last - self._start, 1e-9)
        logs["step"] = step
        logs["images_per_sec"] = (step - self._first_step) * self.batch_size / seconds
        self.rates.append(logs["images_per_sec"])
        logs["learning_rate"] = float(self.schedule(max(step - 1, 0)))
        for prefix in ("", "val_"):
            if prefix + "accuracy" in logs:
                logs[prefix + "error"] = 1.0 - float(logs[prefix + "accuracy"])
        if self.print_line:
            shown = ", ".join(f"{k} {float(v):.4f}" for k, v in logs.items()
                              if k not in ("learning_rate", "images_per_sec", "step"))
            self.log(f"epoch {epoch + 1}/{self.epochs} step {step}: {shown}, "
                     f"lr {logs['learning_rate']:.4g}, {logs['images_per_sec']:.0f} img/s")

    def mean_images_per_sec(self):
        # The first epoch includes tracing and compilation.
        rates = self.rates[1:] or self.rates
        return round(float(np.mean(rates)), 1) if rates else None
