"""The runner under faults: kill -9 at each stage, NaN stops, exact resume, bad paths, progress."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_resnet_cifar import files
from keras_resnet_cifar.training import run_log, train
from tests import datagen
from tests.helpers import REPO

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """96 images of 4 classes: 72 for training (5 steps an epoch at batch 16), 24 for validation."""
    root = tmp_path_factory.mktemp("data")
    datagen.image_folder(root, CLASSES[:4], per_class=24)
    return root


def _cmd(data_dir, model_dir, *extra):
    return [
        sys.executable,
        str(REPO / "tools" / "train.py"),
        "--depth=8",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        "--batch_size=16",
        "--epochs=3",
        "--schedule=cosine",
        "--lr=0.05",
        "--validation_split=0.25",
        *extra,
    ]


def _run(cmd, **env):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, **env))


def _paused(cmd, point, stderr=subprocess.DEVNULL):
    """Starts ``cmd`` and returns it once it stands at the pause point ``point``."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=dict(os.environ, **{files.PAUSE_ENV: point}),
    )
    deadline = time.time() + 300
    for line in proc.stdout:
        if line.strip() == f"paused at {point}":
            return proc
        assert time.time() < deadline, f"never reached {point}"
    raise AssertionError(f"{cmd} ended (rc {proc.wait()}) before {point}")


def _kill_at(cmd, point):
    """Starts ``cmd``, waits until it stops at the named pause point, then kills it with SIGKILL."""
    proc = _paused(cmd, point)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def _rows(model_dir):
    return run_log.read_csv(os.path.join(model_dir, "metrics.csv"))


def test_kill_during_the_final_export_is_completed_without_training(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    cmd = _cmd(data_dir, model_dir)
    _kill_at(cmd, "export")
    assert (model_dir / "model.keras").is_file() and not (model_dir / "metrics.json").exists()
    export_dir = model_dir / "export" / "resnet8"
    left = os.listdir(export_dir)
    assert len(left) == 1 and left[0].startswith(".tmp-")  # a temporary, never a version
    rows = _rows(model_dir)

    out = _run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "is written but not metrics.json: completing the run without training" in out.stdout
    assert "Resuming" not in out.stdout and "epoch 1/" not in out.stdout
    assert _rows(model_dir) == rows  # no epoch trained again
    assert sorted(os.listdir(export_dir)) == ["1"]  # the killed export's temporary is gone
    assert "Removed 1 unfinished export(s)" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["export"] == str(export_dir / "1") and metrics["steps"] == 15
    again = _run(cmd)
    assert again.returncode == 1 and "already holds a finished run" in again.stderr


def test_kill_between_the_last_epoch_and_the_save_resumes_with_full_metrics(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    cmd = _cmd(data_dir, model_dir, "--noexport")
    _kill_at(cmd, "before_save")
    assert not (model_dir / "model.keras").exists()
    out = _run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "all 3 epoch(s) done, nothing left to train" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for key in ("train_loss", "train_accuracy", "train_error", "images_per_sec", "wall_time_s", "val_accuracy"):
        assert metrics[key] is not None, key
    assert metrics["steps"] == 15 and [int(r["epoch"]) for r in _rows(model_dir)] == [0, 1, 2]
    assert not (model_dir / "backup").exists()


def test_a_deterministic_run_killed_mid_epoch_resumes_bit_identically(data_dir, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    out = _run(_cmd(data_dir, whole, "--deterministic", "--noexport", "--seed=3"))
    assert out.returncode == 0, out.stderr[-3000:]
    cmd = _cmd(data_dir, killed, "--deterministic", "--noexport", "--seed=3")
    _kill_at(cmd, "step8")  # three steps into epoch 2 of 3 (5 steps an epoch)
    out = _run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in out.stdout
    a = keras.models.load_model(whole / "model.keras").get_weights()
    b = keras.models.load_model(killed / "model.keras").get_weights()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_nan_messages_are_true_and_their_advice_works(data_dir, tmp_path):
    # NaN in the first epoch: nothing to resume, and a lower rate starts over.
    first = _run(_cmd(data_dir, tmp_path / "first", "--lr=1e12", "--noexport"))
    assert first.returncode == 1
    assert "No epoch completed, so there is nothing to resume" in first.stderr
    assert not (tmp_path / "first" / "backup").exists()
    assert _run(_cmd(data_dir, tmp_path / "first", "--lr=0.05", "--noexport")).returncode == 0

    # NaN after an epoch: the message names the backup, and the advice resumes from it.
    model_dir = tmp_path / "later"
    _kill_at(_cmd(data_dir, model_dir, "--noexport"), "step7")  # epoch 1 is in the backup
    refused = _run(_cmd(data_dir, model_dir, "--noexport", "--lr=0.01"))
    assert refused.returncode == 1
    assert "learning_rate=0.05, not 0.01" in refused.stderr and "pass --allow_lr_change" in refused.stderr
    nan = _run(_cmd(data_dir, model_dir, "--noexport", "--lr=1e12", "--allow_lr_change"))
    assert nan.returncode == 1
    assert "Epoch 1 completed and is kept in" in nan.stderr
    assert "re-run the same command with a lower --lr and --allow_lr_change" in nan.stderr
    resumed = _run(_cmd(data_dir, model_dir, "--noexport", "--lr=0.01", "--allow_lr_change"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in resumed.stdout
    config = json.loads((model_dir / "config.json").read_text())
    assert config["learning_rate"] == 0.01
    assert [(c["after_epoch"], c["from"], c["to"]) for c in config["lr_changes"]] == [(1, 0.05, 1e12), (1, 1e12, 0.01)]


def test_a_model_dir_that_is_a_file_fails_before_any_data_is_read(tmp_path):
    (tmp_path / "taken").write_text("a file")
    out = _run(_cmd(tmp_path / "no-such-data", tmp_path / "taken"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: --model_dir {tmp_path / 'taken'} is a file, not a directory"]


def test_progress_lines_off_a_terminal(data_dir, tmp_path):
    lines = []
    config = train.TrainConfig(
        n=1,
        data_dir=str(data_dir),
        model_dir=str(tmp_path / "run"),
        batch_size=16,
        epochs=1,
        schedule="cosine",
        learning_rate=0.05,
        validation_split=0.25,
        verbose=0,
        export=False,
        progress_seconds=0,
    )
    train.train_and_evaluate(config, log=lines.append)
    progress = [line for line in lines if line.startswith("step ")]
    assert len(progress) == 5  # every step with a zero interval
    assert progress[-1].startswith("step 5/5: ") and "loss " in progress[-1] and "accuracy " in progress[-1]
    assert progress[-1].endswith("img/s, ETA 0:00")
    assert any(line.startswith("epoch 1/1 step 5: ") for line in lines)


def test_the_tools_print_no_native_start_up_noise(tmp_path):
    out = _run(_cmd(tmp_path / "missing", tmp_path / "run"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: --data_dir {tmp_path / 'missing'} does not exist or is not a directory"
    ]
