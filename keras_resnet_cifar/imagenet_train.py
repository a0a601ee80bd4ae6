"""Training ImageNet ResNets: the CIFAR run's machinery with ImageNet's recipe.

SGD with momentum 0.9, coupled weight decay 1e-4, learning rate 0.1 per 256
images; "step" divides it by 10 at 1/3, 2/3 and 8/9 of the run (epochs 30,
60 and 80 of 90), "cosine" decays it to 0; both after an optional linear
warm-up. Optional label smoothing. Top-1 and top-5 accuracy. Resumable
(BackupAndRestore), NaN-safe, mixed precision and MirroredStrategy as in
``train.train_and_evaluate``.
"""

import dataclasses
import math
import os
import sys
import time

import keras
import tensorflow as tf
from keras import ops

from keras_resnet_cifar import files, imagenet, imagenet_data, train

SCHEDULES = ("step", "cosine")
BASE_BATCH = 256
BASE_LR = 0.1


@dataclasses.dataclass
class ImageNetConfig:
    """One ImageNet run; defaults are the paper's (with torchvision's v1.5 blocks)."""

    arch: str = "resnet50"
    residual: bool = True
    shortcut: str = "B"
    stride_on: str = "3x3"
    data_dir: str | None = None
    manual_dir: str | None = None
    model_dir: str = "runs/imagenet"
    image_size: int = 224
    scale_augmentation: bool = False
    batch_size: int = 256
    learning_rate: float | None = None
    schedule: str = "step"
    epochs: int | None = 90
    steps: int | None = None
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    precision: str = "auto"
    xla: bool | None = None
    strategy: str = "auto"
    seed: int = 0
    verbose: int | None = None
    export: bool = True
    overwrite: bool = False


def check_config(config):
    """Raises ``train.TrainingError`` naming the first bad setting."""
    checks = [
        (config.arch in imagenet.ARCHITECTURES, f"arch must be one of {', '.join(imagenet.ARCHITECTURES)}, "
                                                f"got {config.arch!r}"),
        (config.shortcut in ("A", "B", "C"), f"shortcut must be A, B or C, got {config.shortcut!r}"),
        (config.stride_on in ("3x3", "1x1"), f"stride_on must be 3x3 or 1x1, got {config.stride_on!r}"),
        (config.image_size >= 32, f"image_size must be >= 32, got {config.image_size}"),
        (config.batch_size >= 1, f"batch_size must be >= 1, got {config.batch_size}"),
        (config.schedule in SCHEDULES, f"schedule must be step or cosine, got {config.schedule!r}"),
        (config.steps is None or config.steps >= 1, f"steps must be >= 1, got {config.steps}"),
        (config.epochs is None or config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.learning_rate is None or config.learning_rate > 0, f"lr must be > 0, got {config.learning_rate}"),
        (config.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {config.warmup_epochs}"),
        (0 <= config.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {config.label_smoothing}"),
        (config.precision in train.PRECISIONS, f"precision must be one of {', '.join(train.PRECISIONS)}"),
        (config.strategy in train.STRATEGIES, f"strategy must be one of {', '.join(train.STRATEGIES)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise train.TrainingError(message)


def make_schedule(name, learning_rate, total_steps, warmup_steps=0):
    """"step": /10 at 1/3, 2/3 and 8/9 of the run; "cosine": to 0; both after a linear warm-up."""
    if name == "step":
        return StepDecay(learning_rate, [total_steps // 3, total_steps * 2 // 3, total_steps * 8 // 9],
                         warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate, decay_steps=max(1, total_steps - warmup_steps),
        warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)


class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``learning_rate`` divided by 10 from each boundary step on, after a linear warm-up.

    Step ``s < warmup_steps`` uses ``learning_rate * (s + 1) / warmup_steps``.
    """

    def __init__(self, learning_rate, boundaries, warmup_steps=0):
        self.learning_rate = float(learning_rate)
        self.boundaries = [int(b) for b in boundaries]
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        drops = sum(ops.cast(step >= b, "float32") for b in self.boundaries)
        rate = self.learning_rate * ops.power(0.1, drops)
        if self.warmup_steps:
            rate = ops.where(step < self.warmup_steps,
                             self.learning_rate * (step + 1) / self.warmup_steps, rate)
        return rate

    def get_config(self):
        return {"learning_rate": self.learning_rate, "boundaries": self.boundaries,
                "warmup_steps": self.warmup_steps}


def build(config, num_classes):
    return imagenet.resnet_imagenet(
        config.arch, residual=config.residual, shortcut=config.shortcut, stride_on=config.stride_on,
        num_classes=num_classes, input_shape=(config.image_size, config.image_size, 3),
        weight_decay=config.weight_decay)


def train_imagenet(config, log=print):
    """Trains, evaluates (top-1, top-5), saves and exports one ImageNet model.

    Returns:
        The final metrics (also in ``model_dir/metrics.json``).
    """
    check_config(config)
    model_dir = config.model_dir
    backup_dir = os.path.join(model_dir, "backup")
    resuming = os.path.isdir(backup_dir)
    if os.path.exists(os.path.join(model_dir, "model.keras")) and not resuming and not config.overwrite:
        raise train.TrainingError(f"{model_dir} already holds a finished run (model.keras); "
                                  "pass --overwrite or choose another --model_dir")
    keras.utils.set_random_seed(config.seed)
    source = imagenet_data.load(config.data_dir, config.manual_dir)
    log(source.describe())
    steps_per_epoch = source.train_size // config.batch_size
    if steps_per_epoch < 1:
        raise train.TrainingError(f"{source.train_size} training images are fewer than one batch "
                                  f"of {config.batch_size}")
    total_steps = config.steps or config.epochs * steps_per_epoch
    steps_per_epoch = min(steps_per_epoch, total_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)
    learning_rate = config.learning_rate or BASE_LR * config.batch_size / BASE_BATCH
    warmup = round(config.warmup_epochs * steps_per_epoch)
    schedule = make_schedule(config.schedule, learning_rate, total_steps, warmup)
    precision = train.resolve_precision(config.precision)
    strategy = train.make_strategy(config.strategy)
    xla = train.resolve_xla(config.xla, precision, False, strategy.num_replicas_in_sync)
    resolved = dict(dataclasses.asdict(config), learning_rate=learning_rate, total_steps=total_steps,
                    steps_per_epoch=steps_per_epoch, epochs=epochs, warmup_steps=warmup, precision=precision,
                    xla=xla, replicas=strategy.num_replicas_in_sync, class_names=source.class_names,
                    data_source=source.description, versions=train.versions(), command=sys.argv)
    os.makedirs(model_dir, exist_ok=True)
    files.write_json(os.path.join(model_dir, "config.json"), resolved)
    files.write_text(os.path.join(model_dir, "labels.txt"), "\n".join(source.class_names) + "\n")
    num_classes = len(source.class_names)
    if resuming:
        log(f"Resuming from {backup_dir}: {train._backup_epoch(backup_dir)} epoch(s) done")

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes)

    train_ds = imagenet_data.train_dataset(source, config.batch_size, config.image_size,
                                           config.scale_augmentation, config.seed).map(one_hot)
    val_ds = imagenet_data.eval_dataset(source, config.batch_size, config.image_size)
    val_ds = val_ds.map(one_hot) if val_ds is not None else None
    keras.mixed_precision.set_global_policy(precision)
    log(f"{config.arch} ({'shortcut ' + config.shortcut if config.residual else 'plain'}, "
        f"stride on {config.stride_on}), {config.image_size}px, precision {precision}, XLA {xla}, "
        f"{strategy.num_replicas_in_sync} replica(s), {config.schedule} schedule peak lr {learning_rate:g}, "
        f"{total_steps:,} steps = {epochs} epochs of {steps_per_epoch}")
    try:
        with strategy.scope():
            model = build(config, num_classes)
            model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=config.momentum),
                          loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                                    label_smoothing=config.label_smoothing),
                          metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                                   keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")],
                          jit_compile=xla)
        verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 0)
        stats = train._EpochStats(config.batch_size, schedule, epochs, log, print_line=verbose != 1)
        start = time.perf_counter()
        history = model.fit(train_ds, epochs=epochs, steps_per_epoch=steps_per_epoch, validation_data=val_ds,
                            callbacks=train.run_callbacks(model_dir, total_steps, stats), verbose=verbose,
                            shuffle=False)
        wall = time.perf_counter() - start
    except RuntimeError as e:
        raise train.nan_error(e, backup_dir) from None
    except tf.errors.InvalidArgumentError as e:
        raise imagenet_data.DataError(f"an image could not be decoded: {e.message.splitlines()[0]}") from None
    finally:
        keras.mixed_precision.set_global_policy("float32")

    final = build(config, num_classes)
    final.set_weights(model.get_weights())
    files.save_model(final, os.path.join(model_dir, "model.keras"))
    last = {k: float(v[-1]) for k, v in history.history.items() if v}
    metrics = {"train_loss": last.get("loss"), "train_accuracy": last.get("accuracy"),
               "train_top5_accuracy": last.get("top5_accuracy")}
    if val_ds is not None:
        final.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                               keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")])
        result = final.evaluate(val_ds, verbose=0, return_dict=True)
        metrics.update(val_accuracy=float(result["accuracy"]), val_top5_accuracy=float(result["top5_accuracy"]),
                       val_error=1 - float(result["accuracy"]), val_top5_error=1 - float(result["top5_accuracy"]))
    metrics.update(wall_time_s=round(wall, 1), images_per_sec=stats.mean_images_per_sec(),
                   steps=train._iterations(model), epochs=epochs)
    files.write_json(os.path.join(model_dir, "metrics.json"), metrics)
    if config.export:
        from keras_resnet_cifar import export

        size = config.image_size
        path = export.export_saved_model(
            final, os.path.join(model_dir, "export"), class_names=source.class_names,
            card={"dataset": "imagenet2012", **{k: metrics.get(k) for k in ("val_accuracy", "val_top5_accuracy")}},
            image_size=size, preprocess_bytes=lambda data: imagenet_data.eval_image(data, size))
        log(f"Exported SavedModel {path}")
    log("Final: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                              if isinstance(v, float) and "accuracy" in k))
    log(f"Saved {os.path.join(model_dir, 'model.keras')}")
    return metrics
