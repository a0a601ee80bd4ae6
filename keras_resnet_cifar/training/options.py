"""Every option of a training run, declared once: type, default, choices, bounds, help.

Pure Python (absl is imported by ``define_flags`` only), so a tool defines
its flags and checks them before the backend is chosen and Keras imported.
What an option is and how it becomes a field, a check and a flag is
``option_schema.py``.

From this one table come:

* ``RunOptions``: how to run, whatever the task (the runner's argument);
* ``TrainConfig`` / ``ImageNetConfig`` (``task_config``): a task's own
  fields plus ``run: RunOptions``;
* the absl flags of ``krc-train`` and ``krc-train-imagenet``
  (``define_flags``), with the same names, defaults, bounds, messages and
  help text as before, attributed to the same modules;
* ``check``: the one place every bound and every cross-field rule is
  checked, raising ``errors.ConfigError``.

Flags are defined only by the tools' entry modules, at their import
(absl raises ``DuplicateFlagError`` when a second module defines a name
already defined by another module, so no library module may call
``define_flags``, and one process never imports two training tools).
"""

import dataclasses

from keras_resnet_cifar import errors
from keras_resnet_cifar.models import presets
from keras_resnet_cifar.training.option_schema import Option, Rule, define_flags, fields, flag_values  # noqa: F401 (the tools' door)

# ---------------------------------------------------------------- choice lists, once
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "mirrored", "one_device")
BACKENDS = ("auto", "tensorflow", "torch", "jax")
# How training batches reach the model: "tfdata" (the tf.data pipeline,
# augmentation on the host), "arrays" (uint8 arrays, augmentation in the
# compiled step, no TensorFlow), "auto" (arrays under JAX or where
# TensorFlow is not importable, else tfdata).
INPUTS = ("auto", "tfdata", "arrays")
CIFAR_SCHEDULES = ("paper", "cosine", "onecycle")
IMAGENET_SCHEDULES = ("step", "cosine")
DATASETS = ("cifar10", "cifar100")
STRIDE_ON = ("3x3", "1x1")
LAYOUTS = ("auto", "channels_first", "channels_last")
IMAGENET_ARCHS = presets.IMAGENET_ARCHS
CIFAR_SHORTCUTS = presets.CIFAR_SHORTCUTS
IMAGENET_SHORTCUTS = presets.IMAGENET_SHORTCUTS


# ---------------------------------------------------------------- the run options (both tools)
RUN = (
    Option("model_dir", str, None, "Run directory. Default: {model_dir_default}.", nonempty=True),
    Option("batch_size", int, 128, "Global batch size.", minimum=1),
    Option("lr", float, None, "Peak learning rate (> 0); default below.", field="learning_rate", above=0),
    Option("steps", int, None, "Total iterations.", minimum=1),
    Option("epochs", int, None, "Total epochs instead of --steps.", minimum=1),
    Option("momentum", float, 0.9, "SGD momentum, in [0, 1).", minimum=0, below=1),
    Option("weight_decay", float, 1e-4, "Coupled (PyTorch-style) weight decay.", minimum=0),
    Option(
        "precision",
        str,
        "auto",
        "auto: mixed_float16 on a GPU; on a CPU mixed_bfloat16 where the backend's bfloat16 kernels run "
        "in hardware (TensorFlow and torch with AVX512-BF16 or AMX; JAX with AMX), else float32.",
        choices=PRECISIONS,
    ),
    Option(
        "xla",
        bool,
        None,
        "Compile the train step: XLA (Keras jit_compile) under tensorflow and jax; under torch the "
        "torch.compile graph of the forward, loss and backward. Default: under tensorflow on for mixed_bfloat16 "
        "on a CPU without AVX512-BF16 or AMX (emulated bf16 is 6x slower without it), else Keras decides; "
        "always under jax; under torch on for runs long enough to win back the compile time on a CPU "
        "(not with --deterministic or --input=arrays).",
    ),
    Option("strategy", str, "auto", "auto: MirroredStrategy over all GPUs when there are several.", choices=STRATEGIES),
    Option("seed", int, 0, "Seed for weights, split, shuffling and augmentation.", minimum=0),
    Option(
        "verbose",
        int,
        None,
        "1: progress bar; 0 or 2: one line per epoch plus a progress line every "
        "30 s. Default: 1 on a terminal, else 0.",
        minimum=0,
        maximum=2,
    ),
    Option("export", bool, True, "Also export a TF Serving SavedModel to <model_dir>/export/<name>/<version>."),
    Option(
        "overwrite",
        bool,
        False,
        "Replace what --model_dir holds: a finished run, or an unfinished one whose backup cannot be read.",
    ),
    Option(
        "deterministic",
        bool,
        False,
        "Deterministic TensorFlow ops: bit-identical runs, also across a kill and resume (slower).",
    ),
    Option(
        "allow_lr_change",
        bool,
        False,
        "Resume an unfinished run with a different --lr (after a NaN stop, "
        "for example); config.json records the change.",
    ),
)
# Runner options that only krc-train offers as flags (ImageNet runs take the defaults).
RUNNER = (
    Option("steps_per_execution", int, 1, "Train steps per graph call.", minimum=1),
    Option(
        "input",
        str,
        "auto",
        "tfdata: the tf.data pipeline (augmentation on the host); arrays: uint8 arrays, augmentation in "
        "the compiled step, no TensorFlow needed. auto: arrays under jax or without TensorFlow, else tfdata.",
        choices=INPUTS,
    ),
    Option(
        "coordinator_address",
        str,
        None,
        "Several processes: HOST:PORT of process 0, the same on every process. "
        "Default: $KERAS_DISTRIBUTION_JOB_ADDRESSES (its first address).",
    ),
    Option(
        "num_processes",
        int,
        None,
        "Processes training together (jax backend). Default: $KERAS_DISTRIBUTION_NUM_PROCESSES, else 1.",
        minimum=1,
    ),
    Option(
        "process_id",
        int,
        None,
        "This process's index, 0 to num_processes-1; 0 writes the outputs. "
        "Default: $KERAS_DISTRIBUTION_PROCESS_ID, else 0.",
        minimum=0,
    ),
    Option(
        "join_timeout",
        int,
        300,
        "Several processes: seconds every process waits for the others to start (and join) before it gives up.",
        minimum=1,
    ),
    Option("progress_seconds", float, 30.0, flag=False, minimum=0),
)

# ---------------------------------------------------------------- the tasks' options
CIFAR = (
    Option(
        "n",
        int,
        3,
        "Blocks per stage (depth 6n+2): 3, 5, 7, 9, 18, 200. Default 3.",
        flag_default=None,
        minimum=1,
    ),
    Option("depth", int, None, "Alternatively the depth 6n+2: 20, 32, 44, 56, 110, 1202.", field=None, minimum=8),
    Option("shortcut", str, "A", "A: subsample + zero channels; B: 1x1 projection.", choices=CIFAR_SHORTCUTS),
    Option("plain", bool, False, "Train the paper's plain net (no shortcuts).", field="residual", invert=True),
    Option("dataset", str, "cifar10", "Dataset.", choices=DATASETS),
    Option(
        "data_dir",
        str,
        None,
        "Image folder (<root>/train/<class>/*.jpg), cifar-10-batches-py / "
        "cifar-100-python directory, .npz file (tools/to_npz.py), or prepared tfds directory. Default: Keras's cache "
        "(~/.keras/datasets) when it holds the batches, else a tfds download.",
    ),
    Option(
        "schedule",
        str,
        "paper",
        "paper: lr/10 at 50% and 75% of the steps (32k, 48k of 64k); cosine; onecycle. Default lr: "
        "0.1 (onecycle 0.2) x batch_size / 128 (the linear scaling rule). Default steps: the paper's "
        "64k x 128 / batch_size.",
        choices=CIFAR_SCHEDULES,
    ),
    Option(
        "steps_per_epoch",
        int,
        None,
        "Steps between evaluations and log rows. Default: one pass over the training split.",
        minimum=1,
    ),
    Option("warmup_steps", int, None, "Steps at lr/10 first (paper schedule). Default 400 for n >= 18.", minimum=0),
    Option(
        "validation_split",
        float,
        0.1,
        "Held-out share of the training set (0.1 = the paper's 45k/5k); 0 trains on all.",
        minimum=0,
        below=1,
    ),
    Option(
        "backend",
        str,
        "auto",
        "Keras backend to train under. auto: jax for several processes; tensorflow with a GPU; "
        "else torch where it is installed (the faster one on CPUs), else tensorflow. Export and "
        "serving are TensorFlow either way.",
        field=None,
        choices=BACKENDS,
    ),
    Option(
        "init_weights",
        str,
        None,
        "Start from pretrained weights: cifar10 (ResNet20/32/44/56 option A; "
        "with --dataset=cifar100 the classifier is new) or a .weights.h5 file of the same network.",
    ),
)
IMAGENET = (
    Option("arch", str, "resnet50", "Network (the paper's Table 1).", choices=IMAGENET_ARCHS),
    Option("plain", bool, False, "The plain net (no shortcuts; the paper's Table 2).", field="residual", invert=True),
    Option(
        "shortcut",
        str,
        "B",
        "A: zero-padding, B: projection where the shape changes, C: projection everywhere (Table 3).",
        choices=IMAGENET_SHORTCUTS,
    ),
    Option("stride_on", str, "3x3", "Bottleneck stride on the 3x3 (v1.5) or the first 1x1 (v1).", choices=STRIDE_ON),
    Option(
        "data_dir",
        str,
        None,
        "Image folder with train/ (and val/), or a tfds directory.",
        required="--data_dir is required (an image folder with train/, or a tfds directory)",
    ),
    Option("manual_dir", str, None, "Where the ILSVRC2012 tar files are, for tfds to prepare imagenet2012."),
    Option("image_size", int, 224, "Training and serving image side.", minimum=32),
    Option(
        "scale_augmentation",
        bool,
        False,
        "The paper's scale augmentation (shorter side in [256, 480], random crop) instead of random-resized crops.",
    ),
    Option(
        "schedule",
        str,
        "step",
        "step: /10 at epochs 30, 60, 80 of 90 (scaled to the "
        "run); cosine: to 0. Default lr: 0.1 x batch_size / 256; default length: 90 epochs.",
        choices=IMAGENET_SCHEDULES,
    ),
    Option("warmup_epochs", float, 0.0, "Warm-up: at lr/10 (step) or linear from 0 (cosine).", minimum=0),
    Option("label_smoothing", float, 0.0, "Label smoothing (0.1 is common), in [0, 1).", minimum=0, below=1),
)
# Per-task differences of the shared options: applied to the flags and to the config's ``run``.
CIFAR_RUN_DEFAULTS = {"model_dir_default": "runs/<model name>"}
IMAGENET_RUN_DEFAULTS = {"batch_size": 256, "model_dir_default": "runs/<arch>"}


RUN_RULES = (
    Rule(
        ("steps", "epochs"), lambda steps, epochs: steps is None or epochs is None, "give --steps or --epochs, not both"
    ),
)
# Rules that need the machine (``inputs.check_processes``: the batch divides
# over the processes; ``inputs.check_batch``: over the devices) stay where the
# cluster is known (runner.run), each checked once there.


RunOptions = dataclasses.make_dataclass("RunOptions", fields(RUN + RUNNER), frozen=True)
RunOptions.__module__ = "keras_resnet_cifar.training.config"  # make_dataclass(module=) needs Python 3.12
RunOptions.__doc__ = "How to run, whatever the task: one field per option of ``options.RUN`` and ``options.RUNNER``."


def task_config(name, options, run_defaults, module):
    """A task's config class: its own fields, then ``run: RunOptions`` with the task's defaults.

    The class gets ``of(**flat)``, which takes the former flat keywords
    (``TrainConfig.of(n=1, batch_size=16, ...)``) and sorts them into the
    two.
    """
    run_fields = {o.attr for o in RUN + RUNNER if o.is_field}
    run_overrides = {k: v for k, v in run_defaults.items() if k in run_fields}
    cls = dataclasses.make_dataclass(
        name,
        fields(options) + [("run", RunOptions, dataclasses.field(default_factory=lambda: RunOptions(**run_overrides)))],
        frozen=True,
    )
    cls.__module__ = module

    def of(cls_, **flat):
        run = {k: flat.pop(k) for k in list(flat) if k in run_fields}
        return cls_(run=RunOptions(**{**run_overrides, **run}), **flat)  # unknown keys: TypeError, as before

    cls.of = classmethod(of)
    cls.options = options
    return cls


def check(config):
    """Checks a task config (or a bare ``RunOptions``): every bound, then every rule.

    Raises:
        errors.ConfigError: naming the first bad setting.
    """
    run = config if isinstance(config, RunOptions) else config.run
    pairs = [(o, getattr(run, o.attr)) for o in RUN + RUNNER]
    if run is not config:
        pairs += [(o, getattr(config, o.attr)) for o in config.options if o.is_field]
    for rule in RUN_RULES:
        if not rule.ok(*(getattr(run, f) for f in rule.fields)):
            raise errors.ConfigError(rule.message)
    for option, value in pairs:
        if option.invert:
            value = not value if isinstance(value, bool) else value
        message = option.problem(value)
        if message:
            raise errors.ConfigError(message)


# The two tasks' configs, here so that a command checks its settings before it
# imports Keras; ``train.TrainConfig`` and ``imagenet_train.ImageNetConfig``
# are these classes.
TrainConfig = task_config("TrainConfig", CIFAR, CIFAR_RUN_DEFAULTS, "keras_resnet_cifar.training.train")
ImageNetConfig = task_config(
    "ImageNetConfig", IMAGENET, IMAGENET_RUN_DEFAULTS, "keras_resnet_cifar.training.imagenet_train"
)
