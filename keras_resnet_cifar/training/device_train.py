"""Training from in-memory arrays with augmentation on the device; no TensorFlow.

The accelerator path: with ``KERAS_BACKEND=jax`` it runs where TensorFlow is
not installed. uint8 batches go to the device and the paper's augmentation
runs inside the compiled train step (``augment.RandomPadCropFlip``). The
model, schedules and split are the ones the tf.data path
(``train.train_and_evaluate``) uses.
"""

import math
import time

import keras
import numpy as np

from keras_resnet_cifar.data import arrays, augment
from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.training import schedules


def train_arrays(
    data,
    *,
    n=3,
    shortcut="A",
    residual=True,
    batch_size=128,
    epochs=None,
    steps=None,
    schedule="paper",
    learning_rate=None,
    warmup_steps=None,
    momentum=0.9,
    weight_decay=1e-4,
    validation_split=0.1,
    precision="float32",
    seed=0,
    verbose=1,
    log=print,
):
    """Trains a CIFAR ResNet on ``data`` (an ``arrays.Dataset``).

    Each epoch is a fresh seeded shuffle of the training split cut to whole
    batches (at most ``batch_size - 1`` images sit out each epoch), so every
    step has one shape and compiles once.

    Returns:
        ``(model, metrics)``: the trained float32 model (preprocessing
        included, no augmentation) and a dict of accuracies, wall time and
        steady-state images per second.
    """
    keras.utils.set_random_seed(seed)
    train_x, train_y, val_x, val_y = arrays.split_train_validation(
        data.train_images, data.train_labels, validation_split, seed
    )
    steps_per_epoch = len(train_x) // batch_size
    if steps_per_epoch < 1:
        raise arrays.DataError(f"{len(train_x)} training images are fewer than one batch of {batch_size}")
    total_steps = epochs * steps_per_epoch if epochs else steps or schedules.paper_steps(batch_size)
    epochs = math.ceil(total_steps / steps_per_epoch)
    learning_rate = learning_rate or schedules.default_learning_rate(schedule, batch_size)
    if warmup_steps is None:
        warmup_steps = schedules.PAPER_WARMUP_STEPS if n >= 18 and schedule == "paper" else 0
    lr = schedules.make_schedule(schedule, learning_rate, total_steps, warmup_steps)

    build = dict(n=n, shortcut=shortcut, residual=residual, num_classes=data.num_classes, weight_decay=weight_decay)
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = resnet.resnet_cifar(**build)
        inputs = keras.Input((32, 32, 3), dtype="uint8", name="image")
        trainer = keras.Model(inputs, model(augment.RandomPadCropFlip(seed=seed, name="augment")(inputs)))
        trainer.compile(
            optimizer=keras.optimizers.SGD(lr, momentum=momentum),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            jit_compile=True,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    log(
        f"ResNet{6 * n + 2} ({'shortcut ' + shortcut if residual else 'plain'}), {precision}, "
        f"{schedule} peak lr {learning_rate:g}, {total_steps:,} steps = {epochs} epochs of {steps_per_epoch}; "
        f"backend {keras.backend.backend()}"
    )

    rng = np.random.default_rng(seed)
    timer = _Throughput(batch_size)
    start = time.perf_counter()
    history = {}
    done = 0
    for epoch in range(epochs):
        take = min(steps_per_epoch, total_steps - done)
        order = rng.permutation(len(train_x))[: take * batch_size]
        h = trainer.fit(
            train_x[order],
            train_y[order],
            batch_size=batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=verbose,
            callbacks=[timer],
            validation_data=None if val_x is None else (val_x, val_y),
        )
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)
        done += take
        if verbose != 1:
            log(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items()))
    wall = time.perf_counter() - start

    final = resnet.resnet_cifar(**build)
    final.set_weights(model.get_weights())
    final.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    metrics = {
        "train_accuracy": float(history["accuracy"][-1]),
        "steps": done,
        "wall_time_s": round(wall, 1),
        "images_per_sec": timer.rate(),
        "backend": keras.backend.backend(),
        "precision": precision,
    }
    for split, x, y in (("val", val_x, val_y), ("test", data.test_images, data.test_labels)):
        if x is not None:
            metrics[f"{split}_accuracy"] = float(final.evaluate(x, y, batch_size=500, verbose=0)[1])
            metrics[f"{split}_error"] = 1 - metrics[f"{split}_accuracy"]
    return final, metrics


class _Throughput(keras.callbacks.Callback):
    """Images per second over all epochs, each epoch's first 10 steps left out (compilation)."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.seconds = 0.0
        self.steps = 0
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if batch >= 10 and self._last is not None:
            self.seconds += now - self._last
            self.steps += 1
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        self._last = None

    def rate(self):
        return round(self.steps * self.batch_size / self.seconds, 1) if self.seconds else None
