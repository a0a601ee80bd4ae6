"""End-to-end training on tiny generated data, resume after kill -9, CLI errors."""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_resnet_cifar import errors
from keras_resnet_cifar.training import train
from tests import datagen
from tests.helpers import REPO, run_python
from tests.trainproc import CLASSES


def _config(tmp_path, data_dir, **kwargs):
    defaults = dict(
        n=1,
        data_dir=str(data_dir) if data_dir else None,
        model_dir=str(tmp_path / "run"),
        batch_size=16,
        epochs=3,
        schedule="cosine",
        learning_rate=0.05,
        validation_split=0.25,
        verbose=0,
        # float32 on every CPU class: these tests compare the epochs' own
        # validation figures with the float32 saved model's evaluation.
        precision="float32",
    )
    defaults.update(kwargs)
    return train.TrainConfig.of(**defaults)


def _csv(model_dir):
    with open(os.path.join(model_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """One short run on a generated image folder, shared by several tests."""
    tmp = tmp_path_factory.mktemp("folder")
    datagen.image_folder(tmp / "data", CLASSES, per_class=16)
    datagen.image_folder(tmp / "data", CLASSES, per_class=4, split="test", seed=1)
    lines = []
    metrics = train.train_and_evaluate(_config(tmp, tmp / "data", epochs=4), log=lines.append)
    return tmp / "run", tmp / "data", metrics, lines


def test_image_folder_run_outputs(folder_run):
    model_dir, _, metrics, lines = folder_run
    for name in ["model.keras", "metrics.json", "metrics.csv", "config.json", "labels.txt"]:
        assert (model_dir / name).is_file(), name
    assert not (model_dir / "backup").exists()  # deleted once training finished
    events = [f for _, _, files in os.walk(model_dir / "logs") for f in files if "tfevents" in f]
    assert events
    rows = _csv(model_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert [int(float(r["step"])) for r in rows] == [8, 16, 24, 32]  # optimizer steps at each epoch end
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    for key in ["error", "val_error", "learning_rate", "images_per_sec", "val_accuracy"]:
        assert key in rows[0]
    assert float(rows[0]["error"]) == pytest.approx(1 - float(rows[0]["accuracy"]), abs=1e-6)
    saved = json.loads((model_dir / "metrics.json").read_text())
    assert saved["steps"] == 4 * 8  # 120 training images / 16 per batch, 4 epochs
    for split in ["train", "val", "test"]:
        assert 0 <= saved[f"{split}_accuracy"] <= 1
        assert saved[f"{split}_error"] == pytest.approx(1 - saved[f"{split}_accuracy"])
    assert saved["val_accuracy"] > 0.3  # colours are learnable; chance is 0.1
    # The final evaluation reports the cross-entropy the last epoch logged, not it plus the L2 penalty.
    assert saved["val_loss"] == pytest.approx(float(rows[-1]["val_loss"]), rel=1e-4)
    assert saved["val_accuracy"] == pytest.approx(float(rows[-1]["val_accuracy"]), abs=1e-6)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["versions"]["keras"] == keras.__version__
    assert config["total_steps"] == 32 and config["class_names"] == CLASSES
    assert (model_dir / "labels.txt").read_text().split() == CLASSES
    assert any(line.startswith("Loaded image folder") and "train 160, test 40" in line for line in lines)


def test_saved_model_reloads_float32_and_matches_metrics(folder_run):
    model_dir, data_dir, metrics, _ = folder_run
    model = keras.models.load_model(model_dir / "model.keras")
    assert model.output.dtype == "float32" and getattr(model, "optimizer", None) is None
    from keras_resnet_cifar.data import sources

    data = sources.load_dataset("cifar10", str(data_dir))
    predicted = np.argmax(model.predict(data.test_images.astype("float32"), verbose=0), axis=1)
    assert np.mean(predicted == data.test_labels) == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_evaluate_tool(folder_run, tmp_path):
    model_dir, data_dir, metrics, _ = folder_run
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/evaluate.py"),
            f"--model={model_dir / 'model.keras'}",
            f"--data_dir={data_dir}",
            "--split=val",
            f"--json={tmp_path / 'e.json'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "e.json").read_text())
    # The tool re-creates the run's validation split from config.json.
    assert result["num_images"] == 40
    assert result["accuracy"] == pytest.approx(metrics["val_accuracy"], abs=1e-6)
    assert np.sum(result["confusion_matrix"]) == 40
    assert "confusion matrix" in out.stdout and "per-class accuracy" in out.stdout


def test_finished_run_is_not_overwritten(folder_run):
    model_dir, data_dir, _, _ = folder_run
    config = _config(model_dir.parent, data_dir)
    with pytest.raises(train.TrainingError, match="already holds a finished run"):
        train.train_and_evaluate(config, log=lambda line: None)


def test_cifar_batches_run(tmp_path):
    datagen.cifar10_batches(tmp_path / "data", per_batch=32)
    metrics = train.train_and_evaluate(_config(tmp_path, tmp_path / "data", export=False), log=lambda line: None)
    assert metrics["test_accuracy"] is not None and metrics["steps"] == 3 * 8
    rows = _csv(tmp_path / "run")
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_steps_per_epoch_sets_the_evaluation_interval(tmp_path):
    """--steps_per_epoch: an evaluation and a CSV row every k steps, whatever the split size."""
    datagen.cifar10_batches(tmp_path / "data", per_batch=32)
    config = _config(tmp_path, tmp_path / "data", epochs=None, steps=7, steps_per_epoch=3, export=False)
    metrics = train.train_and_evaluate(config, log=lambda line: None)
    rows = _csv(tmp_path / "run")
    # 7 steps in logging epochs of 3: evaluations after 3, 6 and the last step.
    assert [int(float(r["step"])) for r in rows] == [3, 6, 7]
    assert all(r["val_error"] != "" for r in rows)
    assert metrics["steps"] == 7
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps_per_epoch"] == 3
    with pytest.raises(train.TrainingError, match="steps_per_epoch must be >= 1"):
        train.check_config(_config(tmp_path, None, steps_per_epoch=0))


def test_tfds_mock_run(tmp_path, monkeypatch):
    from keras_resnet_cifar.data import sources

    # mock_data stands in for the download; skip the network pre-check.
    monkeypatch.setattr(sources, "_reachable", lambda *a, **k: True)
    monkeypatch.setattr(sources, "_keras_cache_dir", lambda dataset: None)
    with tfds.testing.mock_data(num_examples=64):
        metrics = train.train_and_evaluate(_config(tmp_path, None, epochs=2, export=False), log=lambda line: None)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert metrics["steps"] == 2 * -(-config["train_size"] // 16)
    keras.models.load_model(tmp_path / "run" / "model.keras")


def test_deterministic_runs_are_bit_identical(tmp_path):
    datagen.image_folder(tmp_path / "data", CLASSES[:4], per_class=16)
    weights = []
    for run in ["a", "b"]:
        config = _config(
            tmp_path,
            tmp_path / "data",
            model_dir=str(tmp_path / run),
            epochs=2,
            deterministic=True,
            seed=7,
            export=False,
        )
        train.train_and_evaluate(config, log=lambda line: None)
        weights.append(keras.models.load_model(tmp_path / run / "model.keras").get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_nan_loss_stops_with_clear_error(tmp_path):
    datagen.image_folder(tmp_path / "data", CLASSES[:4], per_class=16)
    config = _config(tmp_path, tmp_path / "data", learning_rate=1e12, epochs=2)
    with pytest.raises(
        errors.NanLossError, match=r"training stopped: the loss is (nan|inf) at step \d+\. No epoch completed"
    ):
        train.train_and_evaluate(config, log=lambda line: None)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_callers_global_dtype_policy_survives_a_run(tmp_path):
    datagen.image_folder(tmp_path / "data", CLASSES[:4], per_class=8)
    keras.mixed_precision.set_global_policy("mixed_float16")
    config = _config(tmp_path, tmp_path / "data", steps=2, epochs=None, precision="float32", export=False)
    train.train_and_evaluate(config, log=lambda line: None)
    assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
    # The saved model is float32 layer by layer (its config says so), whatever the global policy was.
    saved = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert {layer.dtype_policy.name for layer in saved.layers[1:]} == {"float32"}  # [0]: the InputLayer


def test_bad_config_errors(tmp_path):
    with pytest.raises(train.TrainingError, match="give --steps or --epochs, not both"):
        train.train_and_evaluate(_config(tmp_path, tmp_path, steps=3, epochs=2))
    with pytest.raises(train.TrainingError, match="validation_split must be in"):
        train.train_and_evaluate(_config(tmp_path, tmp_path, validation_split=1.5))


def _train_cmd(data_dir, model_dir, *extra):
    return [
        sys.executable,
        str(REPO / "tools/train.py"),
        "--depth=8",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--batch_size=16",
        "--epochs=4",
        "--schedule=cosine",
        "--lr=0.05",
        "--validation_split=0.1",
        *extra,
    ]


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    datagen.image_folder(tmp_path / "data", CLASSES[:4], per_class=16)
    code = f"""
import tensorflow as tf
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_resnet_cifar.training import train
metrics = train.train_and_evaluate(train.TrainConfig.of(
    n=1, data_dir={str(tmp_path / "data")!r}, model_dir={str(tmp_path / "run")!r}, batch_size=16,
    epochs=2, schedule="cosine", learning_rate=0.05, validation_split=0.25, strategy="mirrored", verbose=0, export=False))
print("steps", metrics["steps"])
"""
    out = run_python(code)
    assert "2 replica(s)" in out
    assert "steps 6" in out  # 48 images / global batch 16, 2 epochs
    keras.models.load_model(tmp_path / "run" / "model.keras")


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--depth=21"], 2, "error: --depth must be 6n+2"),
        (["--n=3", "--depth=56"], 2, "error: --depth and --n disagree: --depth=56 means --n=9. Received: --n=3"),
        (["--depth=8", "--data_dir=/nonexistent/cifar"], 1, "error: --data_dir /nonexistent/cifar does not exist"),
        (["--depth=8", "--data_dir=.", "--epochs=2", "--steps=5"], 2, "error: give --steps or --epochs, not both"),
        (["--depth=8", "extra"], 2, "error: unexpected arguments: extra"),
        (["--shortcut=C"], 2, "error: flag --shortcut=C: value should be one of <A|B>"),
        (["--n=0"], 2, "error: flag --n=0: 0 is not a positive integer"),
        (["--lr=nan"], 2, "error: flag --lr=nan: --lr must be > 0"),
        (["--epochs=0"], 2, "error: flag --epochs=0: 0 is not a positive integer"),
        (["--no_such_flag=1"], 2, "error: Unknown command line flag 'no_such_flag'"),
        (["--dataset=cifar1000"], 2, "error: flag --dataset=cifar1000: value should be one of <cifar10|cifar100>"),
        (["--model_dir="], 2, "error: flag --model_dir=: --model_dir is empty"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, code, message):
    out = subprocess.run(
        [sys.executable, str(REPO / "tools/train.py"), f"--model_dir={tmp_path}/r", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == code
    assert out.stderr.splitlines() == [out.stderr.splitlines()[0]] and out.stderr.startswith(message)


def test_an_epoch_longer_than_the_run_is_said_not_silent(tmp_path):
    datagen.image_folder(tmp_path / "data", CLASSES[:4], per_class=16)  # 48 train: 3 steps a pass at 16
    lines = []
    config = _config(tmp_path, tmp_path / "data", epochs=3, steps_per_epoch=80)
    task = train.make_task(config, log=lines.append)
    assert (task.total_steps, task.steps_per_epoch, task.epochs) == (9, 9, 1)
    assert "--steps_per_epoch=80 is more than the run's 9 steps (3 epoch(s) of 3 steps): one epoch of 9 steps" in lines
