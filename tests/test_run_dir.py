"""A run directory is never lost: damaged backups stop the run, one process at a time, resume keys."""

import json
import os
import shutil
import signal
import subprocess

import pytest

from keras_resnet_cifar.training import options, run_dir, run_log, train
from keras_resnet_cifar.training.config import TrainingError
from tests import trainproc


@pytest.fixture
def interrupted(killed_run):
    """The shared run killed in epoch 2 (``conftest.killed_run``): its backup holds epoch 1."""
    return killed_run[1]


# A resume passes the killed run's own flags; no export, to be quick.
FLAGS = (*trainproc.KILLED_FLAGS, "--noexport")


def _copy(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _snapshot(backup):
    return {p.name: p.read_bytes() for p in sorted(backup.iterdir())}


@pytest.mark.parametrize(
    "damage,named,problem",
    [
        (lambda b: (b / "state.json").write_text('{"epoch": 1, "wei'), "state.json", "is not valid JSON"),
        (lambda b: (b / "state.json").write_text('{"epoch": "1", "weights": 3}'), "state.json", 'holds {"epoch": "1"'),
        (lambda b: (b / "epoch-1.weights.h5").unlink(), "epoch-1.weights.h5", "which"),
        (
            lambda b: (b / "epoch-1.weights.h5").write_bytes((b / "epoch-1.weights.h5").read_bytes()[:5000]),
            "epoch-1.weights.h5",
            "cannot be read",
        ),
    ],
    ids=["truncated-state", "wrong-types", "weights-deleted", "truncated-weights"],
)
def test_a_damaged_backup_stops_the_run_and_is_kept(data_dir, interrupted, tmp_path, damage, named, problem):
    model_dir = _copy(interrupted, tmp_path)
    damage(model_dir / "backup")
    before = _snapshot(model_dir / "backup")
    config = (model_dir / "config.json").read_bytes()
    if named == "state.json" and problem == "is not valid JSON":  # one through the command: its one line
        out = trainproc.run(trainproc.cmd(data_dir, model_dir, *FLAGS))
        assert out.returncode == 1
        [line] = out.stderr.splitlines()
    else:  # the others where the runner checks the run directory, in this process
        with pytest.raises(TrainingError) as refused:
            run_dir.prepare(options.RunOptions(model_dir=str(model_dir)))
        [line] = f"error: {refused.value}".splitlines()
    assert line.startswith("error: cannot resume: ") and named in line and problem in line
    assert "Nothing was deleted" in line and "--overwrite" in line
    assert _snapshot(model_dir / "backup") == before  # nothing rewritten, nothing removed
    assert (model_dir / "config.json").read_bytes() == config
    assert not (model_dir / "model.keras").exists()


def test_the_advice_for_a_damaged_state_file_resumes_the_run_and_logs_again_an_orphan_row(
    data_dir, interrupted, tmp_path
):
    model_dir = _copy(interrupted, tmp_path)
    (model_dir / "backup" / "state.json").write_text("{")
    with pytest.raises(TrainingError) as refused:  # the line the command prints after "error: "
        run_dir.prepare(options.RunOptions(model_dir=str(model_dir)))
    record = str(refused.value).split("write ", 1)[1].split(" to ", 1)[0]  # the advice, followed as written
    (model_dir / "backup" / "state.json").write_text(record)
    # And epoch 2's row, written before a kill took its backup: logged again by the resume.
    rows = run_log.read_csv(model_dir / "metrics.csv")
    orphan = dict(rows[0], epoch="1", loss="123.0")
    with open(model_dir / "metrics.csv", "a") as f:
        f.write(",".join(orphan[k] for k in rows[0]) + "\n")
    out = trainproc.run(trainproc.cmd(data_dir, model_dir, *FLAGS))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in out.stdout
    after = run_log.read_csv(model_dir / "metrics.csv")
    assert [r["epoch"] for r in after] == ["0", "1", "2"] and after[1]["loss"] != "123.0"
    assert json.loads((model_dir / "metrics.json").read_text())["steps"] == 15  # nothing trained twice


def test_overwrite_starts_a_run_with_an_unreadable_backup_over(data_dir, interrupted, tmp_path):
    model_dir = _copy(interrupted, tmp_path)
    (model_dir / "backup" / "epoch-1.weights.h5").unlink()
    # A fresh start, so its length is its own (one epoch, to be quick).
    out = trainproc.run(trainproc.cmd(data_dir, model_dir, *FLAGS, "--overwrite", "--epochs=1"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Resuming" not in out.stdout
    assert json.loads((model_dir / "metrics.json").read_text())["steps"] == 5


def test_a_first_backup_killed_before_its_record_starts_over(data_dir, interrupted, tmp_path):
    # The kill fell between epoch 1's weights and its state.json: epoch 1 was never recorded.
    model_dir = _copy(interrupted, tmp_path)
    (model_dir / "backup" / "state.json").unlink()
    out = trainproc.run(trainproc.cmd(data_dir, model_dir, *FLAGS, "--epochs=1"))  # a fresh start: any length
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Resuming" not in out.stdout


def test_a_changed_backend_is_refused_before_anything_is_rewritten(data_dir, interrupted, tmp_path):
    model_dir = _copy(interrupted, tmp_path)
    config = (model_dir / "config.json").read_bytes()
    # The killed run's settings (trainproc's recipe, KILLED_FLAGS), under this process's tensorflow.
    with pytest.raises(TrainingError) as refused:
        train.train_and_evaluate(trainproc.killed_config(data_dir, model_dir), log=lambda _: None)
    assert str(refused.value) == (
        f"{model_dir} holds an unfinished run with backend='torch', not 'tensorflow'; re-run it with "
        "the same flags or choose another --model_dir"
    )
    assert (model_dir / "config.json").read_bytes() == config


def test_a_damaged_metrics_csv_is_named(tmp_path):
    path = tmp_path / "metrics.csv"
    header = "epoch,accuracy,images_per_sec,loss\n"
    path.write_text(header + "0,0.5,100.0,1.2\n" + header + "1,0.6,101.0,1.1\n")
    with pytest.raises(TrainingError, match=rf"{path} is damaged at line 3 .*move it aside"):
        run_log.read_csv(path)
    path.write_text(header + "0,0.5,100.0,1.2\n1,0.6\n")
    with pytest.raises(TrainingError, match="damaged at line 3"):
        run_log.read_csv(path)
    path.write_text(header + "0,0.5,100.0,1.2\n")
    assert run_log.read_csv(path) == [{"epoch": "0", "accuracy": "0.5", "images_per_sec": "100.0", "loss": "1.2"}]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_say_how_to_resume_like_ctrl_c(data_dir, tmp_path, signum):
    model_dir = tmp_path / "run"
    cmd = trainproc.cmd(data_dir, model_dir, *FLAGS)
    proc = trainproc.paused(cmd, "step8", stderr=subprocess.PIPE)
    if signum == signal.SIGTERM:  # meanwhile the directory is held: a second command is refused, writing nothing
        before = {name: (model_dir / name).read_bytes() for name in ("config.json", "metrics.csv", "labels.txt")}
        second = trainproc.run(cmd)
        assert second.returncode == 1
        assert second.stderr.splitlines() == [
            f"error: --model_dir {model_dir} is in use by process {proc.pid} on {os.uname().nodename}: "
            "wait until that run ends, or choose another --model_dir"
        ]
        assert {name: (model_dir / name).read_bytes() for name in before} == before
        # (A SIGKILLed holder frees it too: test_runner's kill before the save, resumed.)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    assert stderr.splitlines() == [
        f"terminated ({signal.Signals(signum).name}): re-run the same command to resume from the last completed epoch"
    ]
    # What it says holds: the backup of epoch 1 is there to resume from (resumes: the tests above).
    assert json.loads((model_dir / "backup" / "state.json").read_text())["epoch"] == 1


def test_rows_of_epochs_after_the_backup_are_dropped_and_logged_again(tmp_path):
    # A kill between an epoch's CSV row and its backup leaves one row too many.
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss\n0,2.0\n1,1.5\n")
    run_log.keep_rows(str(path), 1)  # the backup holds 1 epoch
    assert run_log.read_csv(path) == [{"epoch": "0", "loss": "2.0"}]
    run_log.keep_rows(str(path), 1)  # nothing more to drop: unchanged
    assert path.read_text() == "epoch,loss\n0,2.0\n"
    run_log.keep_rows(str(path), 0)
    assert not path.exists()
