"""What the runner takes: how to run (``RunOptions``) and what to train (``Task``)."""

import dataclasses
from collections.abc import Callable
from typing import Any

from keras_resnet_cifar import errors
from keras_resnet_cifar.training import options

# How to run, whatever the task: one field per run option of the one schema
# (``options.RUN`` and ``options.RUNNER``); a task's config holds one as ``run``.
RunOptions = options.RunOptions
INPUTS = options.INPUTS
TrainingError = errors.TrainingError


@dataclasses.dataclass
class Task:
    """What a task hands the runner once its data is loaded.

    Attributes:
        dataset: the dataset's name, for the model card ("cifar10", ...).
        class_names: names in label order.
        settings: the task's resolved settings, written to config.json
            (must hold "learning_rate" and "schedule").
        resume_keys: keys of ``settings`` that must match to resume.
        build_model: ``(data_format="channels_last", weight_decay=None,
            dtype=None) -> model``: a fresh model in that layout, with that
            coupled decay as regularisers (None: the task's
            ``weight_decay``; the runner trains with 0 and decays in the
            optimizer) and that dtype policy on its layers (None: Keras's
            global policy; the runner always passes one).
        train_dataset: ``first_step -> dataset``: the endless tf.data
            training stream from that step on, the same batches an
            uninterrupted run sees there.
        val_dataset: ``() -> dataset`` evaluated after each epoch and at the
            end, or None.
        test_dataset: ``() -> dataset`` evaluated once at the end, or None.
        loss: ``training -> keras loss`` (training may smooth labels).
        metrics: a function returning fresh metric objects.
        schedule: the learning-rate schedule.
        weight_decay: PyTorch-style coupled weight decay on every trainable
            weight.
        steps_per_epoch: steps between two evaluations and log rows.
        epochs: logging epochs of the run.
        total_steps: optimizer updates of the run.
        init_weights: ``model -> None`` to start from pretrained weights, or None.
        export_options: extra arguments of ``export.export_saved_model``.
        summary: the line logged before training starts.
        arrays: for the arrays input, ``{"train": (x, y), "val": (x, y) or
            None, "test": (x, y) or None}`` of uint8 images and labels, and
            ``"seed"``; None: the task has only the tf.data input.
    """

    dataset: str
    class_names: list
    settings: dict
    resume_keys: tuple
    build_model: Callable[[], Any]
    train_dataset: Callable[[int], Any]
    val_dataset: Any
    test_dataset: Any
    loss: Callable[[bool], Any]
    metrics: Callable[[], list]
    schedule: Any
    weight_decay: float
    steps_per_epoch: int
    epochs: int
    total_steps: int
    init_weights: Callable[[Any], None] | None = None
    export_options: dict = dataclasses.field(default_factory=dict)
    summary: str = ""
    arrays: dict | None = None
