"""The one training runner: every task trains, resumes, saves and exports here.

A task (``train.py`` for CIFAR, ``imagenet_train.py``) says what to train:
the model, the data, the loss and metrics, the schedule. ``run`` does the
rest. A run directory (``model_dir``) receives:

    config.json      resolved settings plus package, Keras and TF versions
    labels.txt       class names, one per line, in label order
    backup/          the last completed epoch while training (resume point)
    metrics.csv      one row per epoch: loss, accuracy, error, val_*, lr, img/s
    logs/            TensorBoard events
    model.keras      the float32 model (loads with keras.models.load_model)
    export/          the TF Serving SavedModel, unless export is off
    metrics.json     final metrics; written last, it marks the run finished

Re-running the same command continues whatever a kill interrupted: training
from the last completed epoch (``backup/``), or the evaluation, export and
metrics of a run whose ``model.keras`` is written but not its
``metrics.json``. Under ``deterministic`` a resumed run ends with the same
weights, bit for bit, as one that was never interrupted.
"""

import dataclasses
import json
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

import keras_resnet_cifar
from keras_resnet_cifar import files
from keras_resnet_cifar.data.arrays import DataError
from keras_resnet_cifar.serving import loading
from keras_resnet_cifar.training import callbacks, device, fast_path, machine, optimizer, run_log
from keras_resnet_cifar.training.config import TrainingError, check_options

# Run settings that must match to resume a run in the same model_dir, on top
# of each task's own (``Task.resume_keys``).
# The backend too: a backup holds the variables of the backend's own model
# (its layout and BatchNorm), which another backend's model does not load.
RESUME_KEYS = (
    "batch_size",
    "schedule",
    "learning_rate",
    "total_steps",
    "steps_per_epoch",
    "seed",
    "precision",
    "backend",
)


def run(options, make_task, log=print):
    """Trains, evaluates, saves and exports one model.

    Args:
        options: ``RunOptions``.
        make_task: a function of no arguments that loads the data and returns
            a ``Task``; it is called after the run directory is checked, so
            a bad ``model_dir`` fails before any data is read.
        log: where progress lines go.

    Returns:
        The final metrics (also written to ``model_dir/metrics.json``).

    Raises:
        TrainingError: bad settings, a finished or different run in
            ``model_dir``, or a NaN loss.
        files.WriteError: an output could not be written.
        DataError: missing or bad data.
    """
    check_options(options)
    _make_run_dir(options.model_dir)
    # One process at a time in a run directory; the kernel drops the lock of a killed one.
    with files.hold_directory(options.model_dir, "--model_dir"):
        return _run_held(options, make_task, log)


def _make_run_dir(model_dir):
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise TrainingError(f"--model_dir {model_dir} is a file, not a directory")
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise files.WriteError(f"cannot create --model_dir {model_dir}: {e.strerror or e}") from None


def _run_held(options, make_task, log):
    state = _prepare(options)
    keras.utils.set_random_seed(options.seed)
    if options.deterministic:
        tf.config.experimental.enable_op_determinism()
    task = make_task()
    backend = keras.backend.backend()
    if backend != "tensorflow" and (options.strategy == "mirrored" or task.export_options):
        raise TrainingError(
            f"{'--strategy=mirrored' if options.strategy == 'mirrored' else 'this task'} needs the "
            f"tensorflow backend, not {backend}: pass --backend=tensorflow"
        )
    precision = device.resolve_precision(options.precision)
    strategy = device.make_strategy(options.strategy)
    xla = device.resolve_xla(options.xla, precision, options.deterministic, strategy.num_replicas_in_sync, backend)
    resolved = dict(
        dataclasses.asdict(options),
        **task.settings,
        total_steps=task.total_steps,
        steps_per_epoch=task.steps_per_epoch,
        epochs=task.epochs,
        backend=backend,
        data_format=machine.resolve_data_format(backend),
        precision=precision,
        xla=xla,
        replicas=strategy.num_replicas_in_sync,
        class_names=list(task.class_names),
        versions=versions(),
        command=sys.argv,
    )
    if state != "new":
        _check_resume(options, resolved, RESUME_KEYS + tuple(task.resume_keys))
    files.write_json(os.path.join(options.model_dir, "config.json"), resolved)
    files.write_text(os.path.join(options.model_dir, "labels.txt"), "\n".join(task.class_names) + "\n")
    model_path = os.path.join(options.model_dir, "model.keras")
    if state == "trained":
        log(f"{model_path} is written but not metrics.json: completing the run without training")
        final = loading.load_keras_file(model_path)
    else:
        log(
            f"{task.summary}, {backend} backend ({resolved['data_format']}), precision {precision}, "
            f"{strategy.num_replicas_in_sync} replica(s), XLA {xla}, "
            f"{task.settings['schedule']} schedule peak lr {task.settings['learning_rate']:g}, "
            f"{task.total_steps:,} steps = {task.epochs} epochs of {task.steps_per_epoch}"
        )
        final = _train(task, options, precision, strategy, xla, log)
    return _finish(final, task, options, log)


def _prepare(options):
    """Checks ``model_dir`` and tells the run's state: new, unfinished, trained or finished."""
    model_dir = options.model_dir
    backup_dir = os.path.join(model_dir, "backup")
    model_path = os.path.join(model_dir, "model.keras")
    metrics_path = os.path.join(model_dir, "metrics.json")
    try:
        if callbacks.backup_epoch(backup_dir):
            return "unfinished"
    except TrainingError:
        if not options.overwrite:  # a backup we cannot read is never deleted unasked
            raise
    if os.path.exists(model_path) and not options.overwrite:
        if os.path.exists(metrics_path):
            raise TrainingError(
                f"{model_dir} already holds a finished run (model.keras, metrics.json); "
                "pass --overwrite or choose another --model_dir"
            )
        return "trained"
    # A fresh start: nothing of an earlier run may be taken for this one's.
    for name in ("model.keras", "metrics.json", "metrics.csv"):
        if os.path.exists(os.path.join(model_dir, name)):
            os.remove(os.path.join(model_dir, name))
    shutil.rmtree(backup_dir, ignore_errors=True)
    return "new"


def _check_resume(options, resolved, keys):
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


def _train(task, options, precision, strategy, xla, log):
    """Fits from the backup (if any) and saves ``model.keras``; returns the float32 model."""
    model_dir = options.model_dir
    backup_dir = os.path.join(model_dir, "backup")
    keras.mixed_precision.set_global_policy(precision)
    try:
        with strategy.scope():
            model = training_model(task.build_model, log)
            model.compile(
                # The weight decay is applied in the update, not as the model's regularisers.
                optimizer=optimizer.sgd(task.schedule, options.momentum, task.weight_decay),
                loss=task.loss(True),
                metrics=task.metrics(),
                jit_compile=xla,
                steps_per_execution=options.steps_per_execution,
            )
            done = callbacks.restore(model, backup_dir)
            if not done and task.init_weights:
                task.init_weights(model)
        if done >= task.epochs:
            log(f"Resuming from {backup_dir}: all {done} epoch(s) done, nothing left to train")
        elif done:
            log(f"Resuming from {backup_dir}: {done} epoch(s) done, going on with epoch {done + 1}")
        run_log.keep_rows(os.path.join(model_dir, "metrics.csv"), done)
        verbose = options.verbose if options.verbose is not None else (1 if sys.stdout.isatty() else 0)
        run_callbacks = [
            # Stats first: the CSV and TensorBoard see what it adds. The CSV
            # row is written before the backup, so no epoch misses its row.
            callbacks.EpochStats(options.batch_size, task.schedule, task.epochs, log, print_line=verbose != 1),
            keras.callbacks.CSVLogger(os.path.join(model_dir, "metrics.csv"), append=True),
            keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")),
            callbacks.Backup(backup_dir),
            keras.callbacks.TerminateOnNaN(raise_error=True),
            callbacks.StopAtStep(task.total_steps),
        ]
        if verbose != 1:
            run_callbacks.append(
                callbacks.Progress(task.total_steps, options.batch_size, log, options.progress_seconds)
            )
        model.fit(
            device.input_threads(task.train_dataset(done * task.steps_per_epoch)),
            epochs=task.epochs,
            initial_epoch=done,
            steps_per_epoch=task.steps_per_epoch,
            validation_data=None if task.val_dataset is None else device.input_threads(task.val_dataset),
            callbacks=run_callbacks,
            verbose=1 if verbose == 1 else 0,
            shuffle=False,
        )
    except RuntimeError as e:
        raise nan_error(e, backup_dir) from None
    except tf.errors.InvalidArgumentError as e:
        raise DataError(f"training input failed: {files.error_text(e)}") from None
    finally:
        keras.mixed_precision.set_global_policy("float32")

    # The saved model is float32, channels_last, uncompiled and of built-in
    # layers, whatever the run used: it loads with Keras alone under any
    # backend, carries no optimizer, and serves fast on CPUs.
    final = task.build_model(data_format="channels_last", weight_decay=task.weight_decay)
    final.set_weights(model.get_weights())
    files.pause_point("before_save")
    files.save_model(final, os.path.join(model_dir, "model.keras"))
    shutil.rmtree(backup_dir, ignore_errors=True)
    return final


def training_model(build_model, log=None):
    """The model as it trains under this backend: its layout, no regularisers; under torch, fused and lean.

    Args:
        build_model: ``(data_format, weight_decay) -> model``, as ``Task.build_model``.
        log: where ``fast_path`` says that it falls back to the stock path.

    Returns:
        A model with the saved model's weights in the same order, so one's
        weights set the other's. Its weight decay belongs in the optimizer
        (``optimizer.sgd``).
    """
    model = build_model(data_format=machine.resolve_data_format(keras.backend.backend()), weight_decay=0)
    return fast_path.accelerate(model, log)


def _finish(final, task, options, log):
    """Evaluates, exports and writes metrics.json (last: it marks the run finished)."""
    model_dir = options.model_dir
    rows = run_log.read_csv(os.path.join(model_dir, "metrics.csv"))
    metrics = _train_metrics(rows[-1] if rows else {})
    # Evaluated without the saved model's L2 regularisers (kept for those who
    # fine-tune it), so the loss is the cross-entropy the epochs log.
    evaluated = task.build_model(data_format="channels_last", weight_decay=0)
    evaluated.set_weights(final.get_weights())
    evaluated.compile(loss=task.loss(False), metrics=task.metrics())
    for split, data in (("val", task.val_dataset), ("test", task.test_dataset)):
        if data is None:
            metrics.update({f"{split}_accuracy": None, f"{split}_error": None})
            continue
        # The test split is evaluated here, once, after training: never for selection.
        result = evaluated.evaluate(device.input_threads(data), verbose=0, return_dict=True)
        for key, value in result.items():
            metrics[f"{split}_{key}"] = float(value)
            if key.endswith("accuracy"):
                metrics[f"{split}_{key[: -len('accuracy')]}error"] = 1 - float(value)
    rates = [float(r["images_per_sec"]) for r in rows if r.get("images_per_sec")]
    metrics.update(
        wall_time_s=round(sum(float(r.get("epoch_seconds") or 0) for r in rows), 1),
        # Each process's first epoch includes tracing and compilation.
        images_per_sec=round(float(np.mean(rates[1:] or rates)), 1) if rates else None,
        steps=int(float(rows[-1]["step"])) if rows else 0,
        epochs=task.epochs,
        class_names=list(task.class_names),
    )
    if options.export:
        from keras_resnet_cifar.serving import export_job

        path = export_job.export(
            final,
            os.path.join(model_dir, "model.keras"),
            os.path.join(model_dir, "export"),
            class_names=task.class_names,
            card=export_card(task.dataset, metrics),
            log=log,
            **task.export_options,
        )
        metrics["export"] = path
        log(f"Exported SavedModel {path}")
    files.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    log(
        "Final: "
        + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float) and k.endswith(("accuracy", "error"))
        )
    )
    log(f"Saved {os.path.join(model_dir, 'model.keras')}")
    return metrics


def _train_metrics(last):
    metrics = {"train_loss": float(last["loss"]) if last.get("loss") else None}
    for key in [k for k in last if k.endswith("accuracy") and not k.startswith("val_")]:
        metrics[f"train_{key}"] = float(last[key])
        metrics[f"train_{key[: -len('accuracy')]}error"] = 1 - float(last[key])
    metrics.setdefault("train_accuracy", None)
    metrics.setdefault("train_error", None)
    return metrics


def nan_error(error, backup_dir):
    """A ``TrainingError`` for TerminateOnNaN's RuntimeError; any other error unchanged."""
    if "nan" not in str(error).lower() and "inf" not in str(error).lower():
        return error
    done = callbacks.backup_epoch(backup_dir)
    if done:
        return TrainingError(
            f"training stopped: {error} Epoch {done} completed and is kept in {backup_dir}: re-run the same "
            "command with a lower --lr and --allow_lr_change to resume from it"
        )
    return TrainingError(
        f"training stopped: {error} No epoch completed, so there is nothing to resume: "
        "re-run the same command with a lower --lr to start again"
    )


def export_card(dataset, metrics):
    """Model-card entries of a finished run."""
    return {
        "dataset": dataset,
        "steps": metrics.get("steps"),
        **{k: v for k, v in metrics.items() if k.endswith("accuracy")},
    }


def versions():
    found = {
        "keras_resnet_cifar": keras_resnet_cifar.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    backend = keras.backend.backend()
    if backend != "tensorflow":
        found[backend] = sys.modules[backend].__version__
    return found
