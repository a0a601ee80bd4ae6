"""Training ImageNet ResNets: the CIFAR run's machinery with ImageNet's recipe.

SGD with momentum 0.9, coupled weight decay 1e-4, learning rate 0.1 per 256
images; "step" divides it by 10 at 1/3, 2/3 and 8/9 of the run (epochs 30,
60 and 80 of 90) after an optional warm-up at a tenth of the rate,
"cosine" decays it to 0 after an optional linear warm-up (both
``schedules.make_schedule``). Optional label smoothing. Top-1 and top-5
accuracy. The runner (``runner.py``) does the rest, as for CIFAR: resume,
NaN stop, mixed precision, MirroredStrategy, save and export.
"""

import dataclasses
import math
import os

import keras
import tensorflow as tf

from keras_resnet_cifar import errors
from keras_resnet_cifar.data import imagenet_data
from keras_resnet_cifar.models import imagenet
from keras_resnet_cifar.training import config as config_lib
from keras_resnet_cifar.training import options, runner, schedules
from keras_resnet_cifar.training.config import TrainingError

BASE_BATCH = 256
BASE_LR = 0.1


# The paper's length, in epochs, when neither steps nor epochs are given.
DEFAULT_EPOCHS = 90
# The ImageNet task's options (``options.IMAGENET``) and ``run``: the run
# options, batch 256 by default. Defaults are the paper's (with
# torchvision's v1.5 blocks).
ImageNetConfig = options.ImageNetConfig


def check_config(config):
    """Raises ``ConfigError`` (a ``TrainingError``) naming the first bad setting."""
    options.check(config)


def build(config, num_classes, data_format="channels_last", weight_decay=None, dtype=None):
    """The model an ``ImageNetConfig`` trains (arguments as ``Task.build_model``)."""
    return imagenet.resnet_imagenet(
        config.arch,
        residual=config.residual,
        shortcut=config.shortcut,
        stride_on=config.stride_on,
        num_classes=num_classes,
        input_shape=(config.image_size, config.image_size, 3),
        weight_decay=config.run.weight_decay if weight_decay is None else weight_decay,
        data_format=data_format,
        dtype=dtype,
    )


def train_imagenet(config, log=print):
    """Trains, evaluates (top-1, top-5), saves and exports one ImageNet model.

    Returns:
        The final metrics (also in ``model_dir/metrics.json``).
    """
    check_config(config)
    run = config.run
    if run.model_dir is None:
        run = dataclasses.replace(run, model_dir=os.path.join("runs", config.arch))
    return runner.run(run, lambda: make_task(config, log), log)


def make_task(config, log=print):
    """Opens the data and describes the ImageNet run for the runner."""
    source = imagenet_data.load(config.data_dir, config.manual_dir)
    log(source.describe())
    steps_per_epoch = source.train_size // config.run.batch_size
    if steps_per_epoch < 1:
        raise TrainingError(f"{source.train_size} training images are fewer than one batch of {config.run.batch_size}")
    total_steps = config.run.steps or (config.run.epochs or DEFAULT_EPOCHS) * steps_per_epoch
    steps_per_epoch = min(steps_per_epoch, total_steps)
    learning_rate = config.run.learning_rate or BASE_LR * config.run.batch_size / BASE_BATCH
    warmup = round(config.warmup_epochs * steps_per_epoch)
    try:
        schedule = schedules.make_schedule(config.schedule, learning_rate, total_steps, warmup)
    except ValueError as e:
        raise errors.ConfigError(str(e)) from None
    num_classes = len(source.class_names)

    def one_hot(images, labels):
        return images, tf.one_hot(labels, num_classes)

    val_ds = imagenet_data.eval_dataset(source, config.run.batch_size, config.image_size)
    settings = {
        key: getattr(config, key)
        for key in (
            "arch",
            "residual",
            "shortcut",
            "stride_on",
            "data_dir",
            "manual_dir",
            "image_size",
            "scale_augmentation",
            "label_smoothing",
            "schedule",
        )
    }
    settings.update(
        steps=config.run.steps,
        weight_decay=config.run.weight_decay,
        learning_rate=learning_rate,
        warmup_steps=warmup,
        data_source=source.description,
    )
    size = config.image_size
    return config_lib.Task(
        dataset="imagenet2012",
        class_names=source.class_names,
        settings=settings,
        resume_keys=(
            "arch",
            "residual",
            "shortcut",
            "stride_on",
            "image_size",
            "scale_augmentation",
            "warmup_steps",
            "label_smoothing",
        ),
        build_model=lambda **layout: build(config, num_classes, **layout),
        train_dataset=lambda first_step: imagenet_data.train_dataset(
            source, config.run.batch_size, size, config.scale_augmentation, config.run.seed, first_step=first_step
        ).map(one_hot),
        val_dataset=None if val_ds is None else lambda: val_ds.map(one_hot),
        test_dataset=None,
        loss=lambda training: keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing if training else 0.0
        ),
        metrics=lambda: [
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy"),
        ],
        schedule=schedule,
        weight_decay=config.run.weight_decay,
        steps_per_epoch=steps_per_epoch,
        epochs=math.ceil(total_steps / steps_per_epoch),
        total_steps=total_steps,
        export_options={"image_size": size, "preprocess_bytes": lambda data: imagenet_data.eval_image(data, size)},
        summary=f"{config.arch} ({'shortcut ' + config.shortcut if config.residual else 'plain'}, "
        f"stride on {config.stride_on}), {size}px",
    )
