"""The one option schema: flags, configs and checks all come from its declarations."""

import ast
import dataclasses
import subprocess
import sys

import pytest

from keras_resnet_cifar import errors
from keras_resnet_cifar.training import options, train
from tests.helpers import REPO

# The flags of the two training tools and their defaults, as they were before
# the schema (the commands users type must keep parsing and meaning the same).
TRAIN_FLAGS = {
    "allow_lr_change": False, "backend": "auto", "batch_size": 128, "coordinator_address": None,
    "data_dir": None, "dataset": "cifar10", "depth": None, "deterministic": False, "epochs": None,
    "join_timeout": 300,  # added with the multi-process job's bounded join
    "export": True, "init_weights": None, "input": "auto", "lr": None, "model_dir": None, "momentum": 0.9,
    "n": None, "num_processes": None, "overwrite": False, "plain": False, "precision": "auto",
    "process_id": None, "schedule": "paper", "seed": 0, "shortcut": "A", "steps": None,
    "steps_per_epoch": None, "steps_per_execution": 1, "strategy": "auto", "validation_split": 0.1,
    "verbose": None, "warmup_steps": None, "weight_decay": 0.0001, "xla": None,
}  # fmt: skip
IMAGENET_FLAGS = {
    "allow_lr_change": False, "arch": "resnet50", "batch_size": 256, "data_dir": None, "deterministic": False,
    "epochs": None, "export": True, "image_size": 224, "label_smoothing": 0.0, "lr": None, "manual_dir": None,
    "model_dir": None, "momentum": 0.9, "overwrite": False, "plain": False, "precision": "auto",
    "scale_augmentation": False, "schedule": "step", "seed": 0, "shortcut": "B", "steps": None,
    "strategy": "auto", "stride_on": "3x3", "verbose": None, "warmup_epochs": 0.0, "weight_decay": 0.0001,
    "xla": None,
}  # fmt: skip

LIST_FLAGS = """
import sys
from absl import flags
import keras_resnet_cifar.cli.{tool} as tool
names = [f.name for m in ("keras_resnet_cifar.cli.{tool}", "keras_resnet_cifar.cli.app") for f in flags.FLAGS.get_flags_for_module(m)]
print(repr({{n: flags.FLAGS[n].default for n in names}}))
"""


@pytest.mark.parametrize("tool, expected", [("train", TRAIN_FLAGS), ("train_imagenet", IMAGENET_FLAGS)])
def test_the_tools_flags_and_defaults_are_the_schemas_and_unchanged(tool, expected):
    # A fresh process: absl refuses a flag defined twice, and one process imports one training tool.
    out = subprocess.run(
        [sys.executable, "-c", LIST_FLAGS.format(tool=tool)], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert ast.literal_eval(out.stdout) == expected


def test_every_option_is_declared_once_and_its_field_default_matches_its_flag():
    for group in (options.RUN + options.RUNNER + options.CIFAR, options.RUN + options.IMAGENET):
        names = [o.name for o in group]
        assert len(names) == len(set(names))
    config = train.TrainConfig()
    for o in options.CIFAR:
        if o.is_field:
            assert getattr(config, o.attr) == (not o.default if o.invert else o.default)
    for o in options.RUN + options.RUNNER:
        assert getattr(config.run, o.attr) == o.default


def test_a_task_config_holds_the_run_options():
    config = train.TrainConfig.of(n=1, batch_size=16, learning_rate=0.05, schedule="cosine")
    assert isinstance(config.run, options.RunOptions)
    assert (config.n, config.schedule, config.run.batch_size, config.run.learning_rate) == (1, "cosine", 16, 0.05)
    assert not hasattr(config, "batch_size")  # composition, not a copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n = 2
    with pytest.raises(TypeError):
        train.TrainConfig.of(no_such_option=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 3, "epochs": 2}, "give --steps or --epochs, not both"),
        ({"learning_rate": float("nan")}, "lr must be > 0, got nan"),
        ({"learning_rate": 0.0}, "lr must be > 0, got 0.0"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        ({"validation_split": 1.5}, r"validation_split must be in \[0, 1\), got 1.5"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"verbose": 3}, r"verbose must be in \[0, 2\], got 3"),
        ({"precision": "float64"}, "precision must be one of auto, float32, mixed_float16, mixed_bfloat16"),
        ({"shortcut": "C"}, "shortcut must be one of A, B, got 'C'"),
        ({"n": 0}, "n must be >= 1, got 0"),
        ({"model_dir": " "}, "model_dir is empty"),
        ({"batch_size": True}, "batch_size must be int, got True"),
    ],
)
def test_each_rule_is_checked_once_for_the_api_and_the_commands(kwargs, message):
    with pytest.raises(errors.ConfigError, match=message):
        train.check_config(train.TrainConfig.of(**kwargs))


@pytest.mark.parametrize(
    "tool, message",
    [
        ("train.py", "error: give --steps or --epochs, not both"),
        ("train_imagenet.py", "error: give --steps or --epochs, not both"),
    ],
)
def test_a_bad_combination_is_a_usage_error_of_the_command_before_keras_loads(tool, message):
    # -X importtime lists every module the command imported, on stderr before its error line.
    out = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "tools" / tool), "--steps=3", "--epochs=2"]
        + ["--data_dir=/nonexistent"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1] == message
    imported = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    assert "keras_resnet_cifar.training.options" in imported  # the listing is there
    assert not imported & {"keras", "tensorflow", "torch", "jax"}  # the check ran before any of them
