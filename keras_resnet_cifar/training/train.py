"""CIFAR training with the paper's recipe: the task the runner trains.

``train_and_evaluate(config)`` is the whole job; ``tools/train.py`` only turns
flags into a ``TrainConfig``. What a run writes, and how it resumes, is the
runner's (``runner.py``).
"""

import dataclasses
import math
import os

import keras

from keras_resnet_cifar.data import arrays, sources
from keras_resnet_cifar.models import pretrained, resnet
from keras_resnet_cifar.training import config as config_lib
from keras_resnet_cifar.training import runner, schedules
from keras_resnet_cifar.training.config import TrainingError  # noqa: F401 (the error callers catch)


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on. Defaults are the paper's CIFAR-10 recipe.

    Attributes:
        n: blocks per stage (depth 6n+2).
        residual: False for a plain net.
        shortcut: "A" or "B".
        dataset: "cifar10" or "cifar100".
        data_dir: an image folder, CIFAR batches or a prepared tfds directory.
        model_dir: where the run writes everything (see ``runner.py``).
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
        weight_decay: coupled (PyTorch-style) decay, applied in the update.
        validation_split: share of the training set held out, stratified.
        precision: "auto" (mixed_float16 on GPU, float32 on CPU), "float32",
            "mixed_float16" or "mixed_bfloat16".
        xla: jit-compile the train step; None picks the faster setting
            (see ``machine.resolve_xla``).
        seed: seeds weights, split, shuffling and augmentation.
        deterministic: also make TensorFlow's ops deterministic (slower).
        strategy: "auto" (MirroredStrategy over several GPUs), "mirrored" or
            "one_device".
        steps_per_execution: train steps per call into the graph.
        overwrite: replace a finished run in ``model_dir``.
        verbose: 1 progress bar; 0 or 2 one line per epoch and a progress
            line every ``progress_seconds``; None: 1 on a terminal, else 0.
        export: also write a TF Serving SavedModel to ``model_dir/export``.
        init_weights: start from "cifar10" (the shipped weights, with their
            input normalisation; a new classifier where the dataset has
            other than 10 classes) or a ``.weights.h5`` file of the same
            network; None: random initialisation.
        allow_lr_change: resume an unfinished run with another learning rate.
        progress_seconds: interval of the progress lines off a terminal.
        input: "auto", "tfdata" or "arrays" (``config.INPUTS``).
        coordinator_address: process 0's ``HOST:PORT`` when several
            processes train together (``distributed.py``).
        num_processes: processes training together (None: from
            ``KERAS_DISTRIBUTION_NUM_PROCESSES``, else 1).
        process_id: this process's index (None: from
            ``KERAS_DISTRIBUTION_PROCESS_ID``, else 0).
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
    allow_lr_change: bool = False
    progress_seconds: float = 30.0
    input: str = "auto"
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


def check_config(config):
    """Raises TrainingError naming the first bad setting."""
    checks = [
        (isinstance(config.n, int) and config.n >= 1, f"n must be >= 1, got {config.n}"),
        (config.shortcut in ("A", "B"), f"shortcut must be A or B, got {config.shortcut!r}"),
        (config.dataset in ("cifar10", "cifar100"), f"dataset must be cifar10 or cifar100, got {config.dataset!r}"),
        (config.learning_rate is None or config.learning_rate > 0, f"lr must be > 0, got {config.learning_rate}"),
        (
            config.schedule in schedules.SCHEDULES,
            f"schedule must be one of {', '.join(schedules.SCHEDULES)}, got {config.schedule!r}",
        ),
        (config.steps is None or config.steps >= 1, f"steps must be >= 1, got {config.steps}"),
        (config.epochs is None or config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.steps is None or config.epochs is None, "give --steps or --epochs, not both"),
        (
            config.steps_per_epoch is None or config.steps_per_epoch >= 1,
            f"steps_per_epoch must be >= 1, got {config.steps_per_epoch}",
        ),
        (
            config.warmup_steps is None or config.warmup_steps >= 0,
            f"warmup_steps must be >= 0, got {config.warmup_steps}",
        ),
        (config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}"),
        (0 <= config.validation_split < 1, f"validation_split must be in [0, 1), got {config.validation_split}"),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainingError(message)
    config_lib.check_options(config_lib.run_options(config))
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
            raise TrainingError(f"--init_weights: {e}") from None
        if not pretrained.is_named(config.init_weights) and not os.path.isfile(config.init_weights):
            raise TrainingError(f"--init_weights {config.init_weights} does not exist")


def train_and_evaluate(config, log=print):
    """Trains, evaluates and saves one CIFAR model as ``config`` says.

    Re-running with the same config and ``model_dir`` after an interruption
    resumes from the last completed epoch, optimizer state included, or
    completes the evaluation and export of a trained model.

    Returns and raises as ``runner.run``: the final metrics, or
    ``TrainingError``, ``files.WriteError``, ``arrays.DataError``.
    """
    check_config(config)
    return runner.run(config_lib.run_options(config), lambda: make_task(config, log), log)


def make_task(config, log=print):
    """Loads the data and describes the CIFAR run for the runner."""
    data = sources.load_dataset(config.dataset, config.data_dir)
    log(data.describe())
    train_x, train_y, val_x, val_y = arrays.split_train_validation(
        data.train_images, data.train_labels, config.validation_split, config.seed
    )
    log(
        f"Split: {len(train_x):,} train, {0 if val_x is None else len(val_x):,} validation "
        f"(validation_split={config.validation_split}, seed {config.seed})"
    )
    if len(train_x) < config.batch_size:
        raise TrainingError(f"{len(train_x)} training images are fewer than one batch of {config.batch_size}")

    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    if config.epochs:
        total_steps = config.epochs * steps_per_epoch
    else:
        total_steps = config.steps or schedules.paper_steps(config.batch_size)
    steps_per_epoch = min(config.steps_per_epoch or steps_per_epoch, total_steps)
    learning_rate = config.learning_rate or schedules.default_learning_rate(config.schedule, config.batch_size)
    warmup = config.warmup_steps
    if warmup is None:
        warmup = schedules.PAPER_WARMUP_STEPS if config.n >= 18 and config.schedule == "paper" else 0
    try:
        schedule = schedules.make_schedule(config.schedule, learning_rate, total_steps, warmup)
    except ValueError as e:
        raise TrainingError(str(e)) from None

    settings = {
        key: getattr(config, key)
        for key in (
            "n",
            "residual",
            "shortcut",
            "dataset",
            "data_dir",
            "steps",
            "weight_decay",
            "validation_split",
            "schedule",
            "init_weights",
        )
    }
    settings.update(
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
            train_x, train_y, config.batch_size, config.seed, first_step=first_step
        ),
        val_dataset=None if val_x is None else lambda: _pipeline().eval_dataset(val_x, val_y, config.batch_size),
        test_dataset=None
        if data.test_images is None
        else lambda: _pipeline().eval_dataset(data.test_images, data.test_labels, config.batch_size),
        arrays={
            "train": (train_x, train_y),
            "val": None if val_x is None else (val_x, val_y),
            "test": None if data.test_images is None else (data.test_images, data.test_labels),
            "batch_size": config.batch_size,
            "seed": config.seed,
        },
        loss=lambda training: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=lambda: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        schedule=schedule,
        weight_decay=config.weight_decay,
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


def build_model(config, num_classes, data_format="channels_last", weight_decay=None):
    """The model a ``TrainConfig`` trains, under the current dtype policy.

    ``weight_decay`` None: the config's, as regularisers (see ``Task.build_model``).
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
        weight_decay=config.weight_decay if weight_decay is None else weight_decay,
        preprocessing_mean=mean,
        preprocessing_std=std,
        data_format=data_format,
    )
