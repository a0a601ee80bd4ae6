"""What the runner takes: how to run (``RunOptions``) and what to train (``Task``)."""

import dataclasses
from collections.abc import Callable
from typing import Any

from keras_resnet_cifar.training import machine

# How training batches reach the model: "tfdata" (the tf.data pipeline,
# augmentation on the host), "arrays" (``array_input.py``: uint8 arrays,
# augmentation in the compiled step, no TensorFlow), "auto" (arrays under
# JAX or where TensorFlow is not importable, else tfdata).
INPUTS = ("auto", "tfdata", "arrays")


class TrainingError(Exception):
    """A run that cannot start or go on; the message says why and what to do."""


@dataclasses.dataclass
class RunOptions:
    """How to run, whatever the task.

    Attributes:
        model_dir: the run directory (see the module docstring).
        batch_size: global batch size (split across replicas).
        momentum: SGD momentum.
        precision: "auto", "float32", "mixed_float16" or "mixed_bfloat16"
            (see ``machine.resolve_precision``).
        xla: jit-compile the train step; None picks the faster setting.
        strategy: "auto", "mirrored" or "one_device".
        seed: seeds weights and every random choice of the data.
        deterministic: also make TensorFlow's ops deterministic (slower).
        steps_per_execution: train steps per call into the graph.
        overwrite: replace a finished run in ``model_dir``, or an unfinished one whose backup
            cannot be read.
        verbose: 1: Keras's progress bar; 0 or 2: one line per epoch plus a
            progress line every ``progress_seconds``; None: 1 on a terminal,
            else 0.
        export: also write a TF Serving SavedModel to ``model_dir/export``.
        allow_lr_change: resume an unfinished run with another learning
            rate (after a NaN stop, say); the change is kept in config.json.
        progress_seconds: interval of the progress lines off a terminal.
        input: "auto", "tfdata" or "arrays" (see ``INPUTS``).
        coordinator_address: ``HOST:PORT`` of process 0 when several
            processes train together (``distributed.py``).
        num_processes: processes training together; None: the
            ``KERAS_DISTRIBUTION_NUM_PROCESSES`` variable, else 1.
        process_id: this process's index; None: the variable, else 0.
    """

    model_dir: str
    batch_size: int = 128
    momentum: float = 0.9
    precision: str = "auto"
    xla: bool | None = None
    strategy: str = "auto"
    seed: int = 0
    deterministic: bool = False
    steps_per_execution: int = 1
    overwrite: bool = False
    verbose: int | None = None
    export: bool = True
    allow_lr_change: bool = False
    progress_seconds: float = 30.0
    input: str = "auto"
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclasses.dataclass
class Task:
    """What a task hands the runner once its data is loaded.

    Attributes:
        dataset: the dataset's name, for the model card ("cifar10", ...).
        class_names: names in label order.
        settings: the task's resolved settings, written to config.json
            (must hold "learning_rate" and "schedule").
        resume_keys: keys of ``settings`` that must match to resume.
        build_model: ``(data_format="channels_last", weight_decay=None) ->
            model``: a fresh model under the current dtype policy, in that
            layout, with that coupled decay as regularisers (None: the
            task's ``weight_decay``; the runner trains with 0 and decays in
            the optimizer).
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


def check_options(options):
    """Raises TrainingError naming the first bad run setting."""
    checks = [
        (options.batch_size >= 1, f"batch_size must be >= 1, got {options.batch_size}"),
        (0 <= options.momentum < 1, f"momentum must be in [0, 1), got {options.momentum}"),
        (
            options.precision in machine.PRECISIONS,
            f"precision must be one of {', '.join(machine.PRECISIONS)}, got {options.precision!r}",
        ),
        (
            options.strategy in machine.STRATEGIES,
            f"strategy must be one of {', '.join(machine.STRATEGIES)}, got {options.strategy!r}",
        ),
        (options.steps_per_execution >= 1, f"steps_per_execution must be >= 1, got {options.steps_per_execution}"),
        (options.input in INPUTS, f"input must be one of {', '.join(INPUTS)}, got {options.input!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainingError(message)


def run_options(task_config):
    """The ``RunOptions`` share of a task's config dataclass (fields of the same names)."""
    return RunOptions(
        **{f.name: getattr(task_config, f.name) for f in dataclasses.fields(RunOptions) if hasattr(task_config, f.name)}
    )
