"""CIFAR training with the paper's recipe: the task the runner trains.

``train_and_evaluate(config)`` is the whole job; ``tools/train.py`` only turns
flags into a ``TrainConfig``. What a run writes, and how it resumes, is the
runner's (``runner.py``).
"""

import dataclasses
import math
import os

import keras

from keras_resnet_cifar import errors
from keras_resnet_cifar.data import arrays, sources
from keras_resnet_cifar.models import pretrained, resnet
from keras_resnet_cifar.training import config as config_lib
from keras_resnet_cifar.training import options, runner, schedules
from keras_resnet_cifar.training.config import TrainingError  # noqa: F401 (the error callers catch)

# The CIFAR task's options (``options.CIFAR``: n, residual, shortcut, dataset,
# data_dir, schedule, steps_per_epoch, warmup_steps, validation_split,
# init_weights) and ``run``: the run options (``options.RunOptions``).
# Defaults are the paper's CIFAR-10 recipe. ``TrainConfig.of(n=3,
# batch_size=64, ...)`` sorts flat keywords into the two.
TrainConfig = options.TrainConfig


def check_config(config):
    """Raises ``ConfigError`` (a ``TrainingError``) naming the first bad setting."""
    options.check(config)
    if config.init_weights is not None:
        try:
            pretrained.check(
                config.init_weights,
                model_name=resnet.model_name(config.n, config.residual, config.shortcut),
                residual=config.residual,
                shortcut=config.shortcut,
                include_top=False,
                num_classes=None,
            )
        except ValueError as e:
            raise errors.ConfigError(f"--init_weights: {e}") from None
        if not pretrained.is_named(config.init_weights) and not os.path.isfile(config.init_weights):
            raise errors.ConfigError(f"--init_weights {config.init_weights} does not exist")


def train_and_evaluate(config, log=print):
    """Trains, evaluates and saves one CIFAR model as ``config`` says.

    Re-running with the same config and ``model_dir`` after an interruption
    resumes from the last completed epoch, optimizer state included, or
    completes the evaluation and export of a trained model.

    Returns and raises as ``runner.run``: the final metrics, or
    ``TrainingError``, ``files.WriteError``, ``arrays.DataError``.
    """
    check_config(config)
    run = config.run
    if run.model_dir is None:
        run = dataclasses.replace(
            run, model_dir=os.path.join("runs", resnet.model_name(config.n, config.residual, config.shortcut))
        )
    return runner.run(run, lambda: make_task(config, log), log)


def make_task(config, log=print):
    """Loads the data and describes the CIFAR run for the runner."""
    data = sources.load_dataset(config.dataset, config.data_dir)
    log(data.describe())
    train_x, train_y, val_x, val_y = arrays.split_train_validation(
        data.train_images, data.train_labels, config.validation_split, config.run.seed
    )
    log(
        f"Split: {len(train_x):,} train, {0 if val_x is None else len(val_x):,} validation "
        f"(validation_split={config.validation_split}, seed {config.run.seed})"
    )
    if len(train_x) < config.run.batch_size:
        raise TrainingError(f"{len(train_x)} training images are fewer than one batch of {config.run.batch_size}")

    steps_per_epoch = math.ceil(len(train_x) / config.run.batch_size)
    if config.run.epochs:
        total_steps = config.run.epochs * steps_per_epoch
    else:
        total_steps = config.run.steps or schedules.paper_steps(config.run.batch_size)
    if config.steps_per_epoch and config.steps_per_epoch > total_steps:
        # Said, not silent: the whole run is shorter than the epoch asked for.
        length = f"{config.run.epochs} epoch(s) of {steps_per_epoch} steps" if config.run.epochs else "--steps"
        log(
            f"--steps_per_epoch={config.steps_per_epoch} is more than the run's {total_steps} steps ({length}): "
            f"one epoch of {total_steps} steps"
        )
    steps_per_epoch = min(config.steps_per_epoch or steps_per_epoch, total_steps)
    learning_rate = config.run.learning_rate or schedules.default_learning_rate(config.schedule, config.run.batch_size)
    warmup = config.warmup_steps
    if warmup is None:
        warmup = schedules.PAPER_WARMUP_STEPS if config.n >= 18 and config.schedule == "paper" else 0
    try:
        schedule = schedules.make_schedule(config.schedule, learning_rate, total_steps, warmup)
    except ValueError as e:
        raise errors.ConfigError(str(e)) from None

    settings = {
        key: getattr(config, key)
        for key in (
            "n",
            "residual",
            "shortcut",
            "dataset",
            "data_dir",
            "validation_split",
            "schedule",
            "init_weights",
        )
    }
    settings.update(
        steps=config.run.steps,
        weight_decay=config.run.weight_decay,
        learning_rate=learning_rate,
        warmup_steps=warmup,
        data_source=data.source,
        train_size=len(train_x),
        val_size=0 if val_x is None else len(val_x),
    )
    init = None
    if config.init_weights:

        def init(model):
            resnet.load_weights(
                model, config.init_weights, n=config.n, residual=config.residual, shortcut=config.shortcut
            )
            log(f"Initialised from {config.init_weights}")

    return config_lib.Task(
        dataset=config.dataset,
        class_names=data.class_names,
        settings=settings,
        resume_keys=("n", "residual", "shortcut", "dataset", "validation_split", "init_weights"),
        build_model=lambda **layout: build_model(config, data.num_classes, **layout),
        train_dataset=lambda first_step: _pipeline().train_dataset(
            train_x, train_y, config.run.batch_size, config.run.seed, first_step=first_step
        ),
        val_dataset=None if val_x is None else lambda: _pipeline().eval_dataset(val_x, val_y, config.run.batch_size),
        test_dataset=None
        if data.test_images is None
        else lambda: _pipeline().eval_dataset(data.test_images, data.test_labels, config.run.batch_size),
        arrays={
            "train": (train_x, train_y),
            "val": None if val_x is None else (val_x, val_y),
            "test": None if data.test_images is None else (data.test_images, data.test_labels),
            "batch_size": config.run.batch_size,
            "seed": config.run.seed,
        },
        loss=lambda training: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=lambda: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        schedule=schedule,
        weight_decay=config.run.weight_decay,
        steps_per_epoch=steps_per_epoch,
        epochs=math.ceil(total_steps / steps_per_epoch),
        total_steps=total_steps,
        init_weights=init,
        summary=f"Model resnet n={config.n} ({6 * config.n + 2} layers, "
        f"{'shortcut ' + config.shortcut if config.residual else 'plain'})",
    )


def _pipeline():
    """The tf.data input, imported when a run uses it: training under JAX needs no TensorFlow."""
    from keras_resnet_cifar.data import input_pipeline

    return input_pipeline


def build_model(config, num_classes, data_format="channels_last", weight_decay=None, dtype=None):
    """The model a ``TrainConfig`` trains.

    ``weight_decay`` None: the config's, as regularisers; ``dtype`` the
    layers' dtype policy, None: Keras's global one (see ``Task.build_model``).
    """
    if pretrained.is_named(config.init_weights):
        # Pretrained weights keep working only on the inputs they were trained on.
        mean, std = pretrained.REFERENCE_MEAN, pretrained.REFERENCE_STD
    elif config.dataset == "cifar100":
        mean, std = resnet.CIFAR100_MEAN, resnet.CIFAR100_STD
    else:
        mean, std = resnet.CIFAR10_MEAN, resnet.CIFAR10_STD
    return resnet.resnet_cifar(
        n=config.n,
        residual=config.residual,
        shortcut=config.shortcut,
        num_classes=num_classes,
        weight_decay=config.run.weight_decay if weight_decay is None else weight_decay,
        preprocessing_mean=mean,
        preprocessing_std=std,
        data_format=data_format,
        dtype=dtype,
    )
