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

Under several processes (``distributed.py``) every process trains and only
process 0 writes; ``model_dir`` is then one directory they all see.
TensorFlow is imported only by the tf.data input and the export.
"""

import contextlib
import dataclasses
import os
import shutil
import sys

import keras
import numpy as np

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.data import augment
from keras_resnet_cifar.data.arrays import DataError
from keras_resnet_cifar.serving import loading
from keras_resnet_cifar.training import callbacks, distributed, graph_step, inputs, machine, run_dir, run_log
from keras_resnet_cifar.training import options as schema
from keras_resnet_cifar.training.config import TrainingError

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
    "input",
)
# Settings every process of a job must share, on top of the resume keys;
# the process count may change between a run and its resumption.
SHARED_KEYS = ("total_steps", "epochs", "train_size", "val_size", "momentum", "weight_decay", "xla", "deterministic")


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
    schema.check(options)
    cluster = distributed.cluster_from(options.coordinator_address, options.num_processes, options.process_id)
    distributed.check_backend(cluster, keras.backend.backend())
    inputs.check_processes(options.batch_size, cluster)
    distributed.start(cluster, options.join_timeout)
    if not cluster.is_chief:
        result = _run_held(options, make_task, log, cluster)
    else:
        # One job at a time in a run directory; the kernel drops the lock of a killed one.
        with run_dir.held(options.model_dir):
            result = _run_held(options, make_task, log, cluster)
    distributed.stop(cluster)
    return result


def _run_held(options, make_task, log, cluster):
    refused = None
    if cluster.is_chief:
        try:
            run_dir.prepare(options)
        except TrainingError as e:
            if not cluster.multi_process:
                raise
            refused = str(e)  # the others stop with the same line
    refused = distributed.share(cluster, refused)[0]
    if refused:
        raise TrainingError(refused)
    state = run_dir.observe(options.model_dir)
    keras.utils.set_random_seed(options.seed)
    backend = keras.backend.backend()
    input_kind = inputs.resolve_input(options.input, backend)
    if options.deterministic and (input_kind == "tfdata" or backend == "tensorflow"):
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    task = make_task()
    if backend != "tensorflow" and options.strategy == "mirrored":
        raise TrainingError(
            f"--strategy=mirrored needs the tensorflow backend, not {backend}: pass --backend=tensorflow"
        )
    if backend != "tensorflow" and task.export_options:  # krc-train-imagenet's task, called from Python
        raise TrainingError(
            f"this task exports in the training process, which needs the tensorflow backend, not {backend}: "
            "set KERAS_BACKEND=tensorflow before Keras is imported"
        )
    inputs.check_input(input_kind, task, cluster)
    precision = machine.resolve_precision(options.precision, backend)
    strategy = machine.make_strategy(options.strategy) if backend == "tensorflow" else None
    replicas = (
        strategy.num_replicas_in_sync
        if strategy is not None
        else distributed.data_parallel(backend, auto_shard=input_kind == "tfdata")
    )
    inputs.check_batch(options.batch_size, cluster, replicas, distributed.local_devices(backend))
    xla = machine.resolve_xla(
        options.xla, precision, options.deterministic, replicas, backend, task.total_steps, input_kind
    )
    resolved = dict(
        dataclasses.asdict(options),
        **task.settings,
        total_steps=task.total_steps,
        steps_per_epoch=task.steps_per_epoch,
        epochs=task.epochs,
        backend=backend,
        input=input_kind,
        data_format=machine.resolve_data_format(backend),
        precision=precision,
        xla=xla,
        replicas=replicas,
        num_processes=cluster.num_processes,
        process_id=cluster.process_id,
        class_names=list(task.class_names),
        versions=run_log.versions(),
        command=sys.argv,
    )
    shared = RESUME_KEYS + tuple(task.resume_keys) + SHARED_KEYS
    distributed.agree(cluster, dict({k: resolved.get(k) for k in shared}, **state))
    if state["state"] != "new":  # every process: a refusal stops them all
        run_dir.check_resume(options, resolved, RESUME_KEYS + tuple(task.resume_keys))
    setup = Setup(precision, strategy, xla, input_kind, replicas, cluster)
    if not cluster.is_chief:
        log(
            f"Process {cluster.process_id} of {cluster.num_processes}: {options.batch_size // cluster.num_processes} "
            f"images a step of the global batch {options.batch_size}; process 0 writes the outputs"
        )
        if state["state"] != "trained":
            _train(task, options, setup, log)
        return None
    files.write_json(os.path.join(options.model_dir, "config.json"), resolved)
    files.write_text(os.path.join(options.model_dir, "labels.txt"), "\n".join(task.class_names) + "\n")
    model_path = os.path.join(options.model_dir, "model.keras")
    if state["state"] == "trained":
        log(f"{model_path} is written but not metrics.json: completing the run without training")
        final = loading.load_keras_file(model_path)
    else:
        log(
            f"{task.summary}, {backend} backend ({resolved['data_format']}), precision {precision}, "
            f"{replicas} replica(s) in {cluster.num_processes} process(es), {_step_text(options, backend, xla, task, input_kind)}, "
            f"{input_kind} input, "
            f"{task.settings['schedule']} schedule peak lr {task.settings['learning_rate']:g}, "
            f"{task.total_steps:,} steps = {task.epochs} epochs of {task.steps_per_epoch}"
        )
        final = _train(task, options, setup, log)
    return _finish(final, task, options, input_kind, log)


@dataclasses.dataclass(frozen=True)
class Setup:
    """How this process trains: what ``_run_held`` resolved."""

    precision: str
    strategy: object  # a tf.distribute strategy under TensorFlow, else None
    xla: object
    input: str
    replicas: int
    cluster: distributed.Cluster


def _train(task, options, setup, log):
    """Fits from the backup (if any); process 0 saves ``model.keras`` and returns the float32 model."""
    model_dir = options.model_dir
    backup_dir = os.path.join(model_dir, "backup")
    cluster = setup.cluster
    try:
        with setup.strategy.scope() if setup.strategy is not None else contextlib.nullcontext():
            # The policy goes to the layers, not to Keras's global state: a
            # caller's global policy is left as it was.
            net = training_model(task.build_model, dtype=setup.precision)
            model = net if setup.input == "tfdata" else augment.with_augmentation(net, task.arrays["seed"])
            model = graph_step.compile_for_training(
                model,
                task.loss(True),
                task.schedule,
                options.momentum,
                task.weight_decay,
                setup.precision,
                setup.xla,
                log,
                metrics=task.metrics(),
                steps_per_execution=options.steps_per_execution,
            )
            net = model if isinstance(model, graph_step.GraphStep) else net
            done = callbacks.restore(model, backup_dir)
            if not done and task.init_weights:
                task.init_weights(model)
        if cluster.is_chief and done >= task.epochs:
            log(f"Resuming from {backup_dir}: all {done} epoch(s) done, nothing left to train")
        elif cluster.is_chief and done:
            log(f"Resuming from {backup_dir}: {done} epoch(s) done, going on with epoch {done + 1}")
        verbose = options.verbose if options.verbose is not None else (1 if sys.stdout.isatty() else 0)
        run_callbacks = [
            callbacks.StopOnNaN(),
            callbacks.StopAtStep(task.total_steps),
        ]
        if cluster.is_chief:
            run_log.keep_rows(os.path.join(model_dir, "metrics.csv"), done)
            run_callbacks = _writing_callbacks(task, options, verbose, log) + run_callbacks
        train_data, val_data = inputs.training_inputs(task, setup, done)
        model.fit(
            train_data,
            epochs=task.epochs,
            initial_epoch=done,
            steps_per_epoch=task.steps_per_epoch,
            validation_data=val_data,
            callbacks=run_callbacks,
            verbose=1 if verbose == 1 and cluster.is_chief else 0,
            shuffle=False,
        )
    except errors.NanLossError as e:
        raise nan_stop(e, backup_dir) from None
    except Exception as e:
        lost = distributed.lost_peer(cluster, e)
        if lost:
            raise lost from None
        if inputs.is_input_error(e):
            raise DataError(f"training input failed: {files.error_text(e)}") from None
        raise
    # Every later model lives in this process alone: the weights are each
    # process's own replica, and process 0 saves them without the others.
    distributed.leave_distribution()
    if not cluster.is_chief:
        return None

    # The saved model is float32, channels_last, uncompiled and of built-in
    # layers, whatever the run used: it loads with Keras alone under any
    # backend, carries no optimizer, and serves fast on CPUs.
    final = task.build_model(data_format="channels_last", weight_decay=task.weight_decay, dtype="float32")
    final.set_weights(net.get_weights())
    files.save_model(final, os.path.join(model_dir, "model.keras"))
    shutil.rmtree(backup_dir, ignore_errors=True)
    return final


def _writing_callbacks(task, options, verbose, log):
    """Process 0's callbacks: stats, CSV, TensorBoard (with TensorFlow), backup, progress."""
    model_dir = options.model_dir
    # Stats first: the CSV and TensorBoard see what it adds. The CSV row is
    # written before the backup, so no epoch misses its row.
    found = [
        callbacks.EpochStats(options.batch_size, task.schedule, task.epochs, log, print_line=verbose != 1),
        keras.callbacks.CSVLogger(os.path.join(model_dir, "metrics.csv"), append=True),
    ]
    if inputs.tensorflow_importable():  # Keras writes TensorBoard events with tf.summary
        found.append(keras.callbacks.TensorBoard(os.path.join(model_dir, "logs")))
    found.append(callbacks.Backup(os.path.join(model_dir, "backup"), local=distributed.local_only))
    if verbose != 1:
        found.append(callbacks.Progress(task.total_steps, options.batch_size, log, options.progress_seconds))
    return found


def training_model(build_model, data_format=None, dtype=None):
    """The model as it trains under this backend: its layout, no regularisers.

    Args:
        build_model: ``(data_format, weight_decay, dtype) -> model``, as ``Task.build_model``.
        data_format: the layout; default the machine's (``machine.resolve_data_format``).
        dtype: the layers' dtype policy (the run's precision); None: Keras's global policy.

    Returns:
        A model with the saved model's weights in the same order, so one's
        weights set the other's. Its weight decay belongs in the optimizer
        (``optimizer.sgd``) or the graph step.
    """
    data_format = data_format or machine.resolve_data_format(keras.backend.backend())
    return build_model(data_format=data_format, weight_decay=0, dtype=dtype)


def _step_text(options, backend, xla, task, input_kind):
    """How the train step runs, for the run's summary line."""
    if backend != "torch":
        return f"XLA {xla}"
    if options.xla is not None:
        return f"{machine.step_label(backend, xla)} (--xla={str(xla).lower()})"
    why = machine.compile_torch_step(task.total_steps, options.deterministic, input_kind)[1]
    return f"{machine.step_label(backend, xla)} ({why})"


def _finish(final, task, options, input_kind, log):
    """Evaluates, exports and writes metrics.json (last: it marks the run finished)."""
    model_dir = options.model_dir
    rows = run_log.read_csv(os.path.join(model_dir, "metrics.csv"))
    metrics = run_log.train_metrics(rows[-1] if rows else {})
    # Evaluated without the saved model's L2 regularisers (kept for those who
    # fine-tune it), so the loss is the cross-entropy the epochs log.
    evaluated = task.build_model(data_format="channels_last", weight_decay=0, dtype="float32")
    evaluated.set_weights(final.get_weights())
    evaluated.compile(loss=task.loss(False), metrics=task.metrics())
    for split in ("val", "test"):
        data = inputs.eval_input(task, input_kind, split)
        if data is None:
            metrics.update({f"{split}_accuracy": None, f"{split}_error": None})
            continue
        # The test split is evaluated here, once, after training: never for selection.
        result = evaluated.evaluate(data, verbose=0, return_dict=True)
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
    if options.export and not inputs.tensorflow_importable():
        metrics["export"] = None
        log(
            "TensorFlow is not importable here, so no SavedModel was exported: on a machine with TensorFlow, "
            f"run python tools/export.py --model_dir={model_dir} --export_base={os.path.join(model_dir, 'export')}"
        )
    elif options.export:
        from keras_resnet_cifar.serving import export_job

        model_path, export_base = os.path.join(model_dir, "model.keras"), os.path.join(model_dir, "export")
        digest = files.sha256(model_path)
        path = export_job.existing_export(export_base, digest)
        if path:  # a stop after the export's rename and before metrics.json
            log(f"{path} is the export of this {model_path} already: not exporting it again")
        else:
            path = export_job.export(
                final,
                model_path,
                export_base,
                class_names=task.class_names,
                card=dict(run_log.export_card(task.dataset, metrics), model_sha256=digest),
                log=log,
                **task.export_options,
            )
            log(f"Exported SavedModel {path}")
        metrics["export"] = path
    files.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    log(
        "Final: "
        + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float) and k.endswith(("accuracy", "error"))
        )
    )
    log(f"Saved {os.path.join(model_dir, 'model.keras')}")
    return metrics


def nan_stop(error, backup_dir):
    """A ``NanLossError`` for ``callbacks.StopOnNaN``'s, with what to do next (resume from the backup, if any)."""
    done = callbacks.backup_epoch(backup_dir)
    if done:
        return errors.NanLossError(
            f"training stopped: {error} Epoch {done} completed and is kept in {backup_dir}: re-run the same "
            "command with a lower --lr and --allow_lr_change to resume from it"
        )
    return errors.NanLossError(
        f"training stopped: {error} No epoch completed, so there is nothing to resume: "
        "re-run the same command with a lower --lr to start again"
    )
