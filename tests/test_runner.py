"""The runner under faults: kill -9 at each stage, NaN stops, exact resume, bad paths, progress."""

import json
import os
import shutil
import signal
import subprocess

import pytest

from keras_resnet_cifar import errors
from keras_resnet_cifar.training import train
from tests import trainproc
from tests.helpers import hook_env


def test_kill_during_the_final_export_is_completed_without_training(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    cmd = trainproc.cmd(data_dir, model_dir)
    trainproc.kill_at(cmd, "export")
    assert (model_dir / "model.keras").is_file() and not (model_dir / "metrics.json").exists()
    export_dir = model_dir / "export" / "resnet8"
    left = os.listdir(export_dir)
    assert len(left) == 1 and left[0].startswith(".tmp-")  # a temporary, never a version
    rows = trainproc.rows(model_dir)

    out = trainproc.run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "is written but not metrics.json: completing the run without training" in out.stdout
    assert "Resuming" not in out.stdout and "epoch 1/" not in out.stdout
    assert trainproc.rows(model_dir) == rows  # no epoch trained again
    assert sorted(os.listdir(export_dir)) == ["1"]  # the killed export's temporary is gone
    assert "Removed 1 unfinished export(s)" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["export"] == str(export_dir / "1") and metrics["steps"] == 15
    # (A third run is refused as finished: test_train's finished-run test.)


def test_a_stop_right_after_the_export_is_renamed_writes_no_second_version(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    cmd = trainproc.cmd(data_dir, model_dir, "--backend=tensorflow", "--epochs=1")  # the export in this process
    proc = trainproc.paused(cmd, "after_export", stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    export_dir = model_dir / "export" / "resnet8"
    assert sorted(os.listdir(export_dir)) == ["1"] and not (model_dir / "metrics.json").exists()
    out = trainproc.run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "is the export of this" in out.stdout and "not exporting it again" in out.stdout
    assert sorted(os.listdir(export_dir)) == ["1"]  # no second copy
    assert json.loads((model_dir / "metrics.json").read_text())["export"] == str(export_dir / "1")


def test_kill_between_the_last_epoch_and_the_save_resumes_with_full_metrics(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    cmd = trainproc.cmd(data_dir, model_dir, "--noexport")
    trainproc.kill_at(cmd, "before_save")
    assert not (model_dir / "model.keras").exists()
    out = trainproc.run(cmd)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "all 3 epoch(s) done, nothing left to train" in out.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for key in ("train_loss", "train_accuracy", "train_error", "images_per_sec", "wall_time_s", "val_accuracy"):
        assert metrics[key] is not None, key
    assert metrics["steps"] == 15 and [int(r["epoch"]) for r in trainproc.rows(model_dir)] == [0, 1, 2]
    assert not (model_dir / "backup").exists()


def test_nan_messages_are_true_and_their_advice_works(data_dir, killed_run, tmp_path):
    # NaN in the first epoch: nothing to resume, and a lower rate starts over (in this process: the
    # message is the error's; the command's one line of it is checked below).
    first = tmp_path / "first"
    with pytest.raises(errors.NanLossError, match="No epoch completed, so there is nothing to resume") as stop:
        train.train_and_evaluate(trainproc.killed_config(data_dir, first, learning_rate=1e12), log=lambda _: None)
    assert "re-run the same command with a lower --lr to start again" in str(stop.value)
    assert not first.exists()  # it wrote config.json, labels.txt, logs and metrics.csv: all gone with the folder
    metrics = train.train_and_evaluate(trainproc.killed_config(data_dir, first, epochs=1), log=lambda _: None)
    assert metrics["steps"] == 5

    # NaN after an epoch: the message names the backup, and the advice resumes from it.
    model_dir = tmp_path / "later"
    shutil.copytree(killed_run[1], model_dir)  # epoch 1 is in the backup
    flags = (*trainproc.KILLED_FLAGS, "--noexport")
    # A new rate alone is refused (the learning rate is checked before the backend: this process's tensorflow).
    with pytest.raises(train.TrainingError) as refused:
        train.train_and_evaluate(trainproc.killed_config(data_dir, model_dir, learning_rate=0.01), log=lambda _: None)
    assert "learning_rate=0.05, not 0.01" in str(refused.value) and "pass --allow_lr_change" in str(refused.value)
    nan = trainproc.run(trainproc.cmd(data_dir, model_dir, *flags, "--lr=1e12", "--allow_lr_change"))
    assert nan.returncode == 1
    (line,) = nan.stderr.strip().splitlines()  # one line, and its advice (followed next) works
    assert line.startswith("error: training stopped: ")
    assert "Epoch 1 completed and is kept in" in nan.stderr
    assert "re-run the same command with a lower --lr and --allow_lr_change" in nan.stderr
    resumed = trainproc.run(trainproc.cmd(data_dir, model_dir, *flags, "--lr=0.01", "--allow_lr_change"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in resumed.stdout
    config = json.loads((model_dir / "config.json").read_text())
    assert config["learning_rate"] == 0.01
    assert [(c["after_epoch"], c["from"], c["to"]) for c in config["lr_changes"]] == [(1, 0.05, 1e12), (1, 1e12, 0.01)]


def test_a_runtime_error_in_training_is_a_bug_whatever_its_text(data_dir, tmp_path):
    # "inference" holds "inf", "information" "nan": neither makes it a NaN stop.
    message = "inference failed, information lost"
    cmd = trainproc.cmd(data_dir, tmp_path / "run", "--noexport")
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=hook_env(KRC_TEST_RAISE_AT=f"step2:{message}")
    )
    assert out.returncode == 70, out.stderr[-3000:]
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"internal error (a bug, please report it): RuntimeError: {message}; traceback in ")
    assert "--lr" not in line


def test_a_model_dir_that_is_a_file_fails_before_any_data_is_read(tmp_path):
    (tmp_path / "taken").write_text("a file")
    out = trainproc.run(trainproc.cmd(tmp_path / "no-such-data", tmp_path / "taken"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [f"error: --model_dir {tmp_path / 'taken'} is a file, not a folder"]


def test_a_failed_first_run_takes_away_the_folder_it_made_and_nothing_else(tmp_path):
    made = tmp_path / "runs" / "new"
    out = trainproc.run(trainproc.cmd(tmp_path / "no-such-data", made))
    assert out.returncode == 1 and "no-such-data" in out.stderr
    assert not made.exists()
    kept = tmp_path / "kept"  # a folder that was there before: only the lock is added
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    out = trainproc.run(trainproc.cmd(tmp_path / "no-such-data", kept))
    assert out.returncode == 1
    assert sorted(p.name for p in kept.iterdir()) == [".lock", "notes.txt"]


def test_sigterm_in_the_first_epoch_takes_away_the_folder_the_run_made(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    proc = trainproc.paused(trainproc.cmd(data_dir, model_dir, "--noexport"), "step2", stderr=subprocess.PIPE)
    assert {"config.json", "labels.txt", "metrics.csv", "logs"} <= {p.name for p in model_dir.iterdir()}
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert not model_dir.exists() and list(tmp_path.iterdir()) == []


def test_progress_lines_off_a_terminal(data_dir, tmp_path):
    lines = []
    config = train.TrainConfig.of(
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
    out = trainproc.run(trainproc.cmd(tmp_path / "missing", tmp_path / "run"))
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: --data_dir {tmp_path / 'missing'} does not exist or is not a directory"
    ]
