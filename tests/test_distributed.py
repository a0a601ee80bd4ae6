"""Several processes and devices on keras.distribution (JAX), on 127.0.0.1, and training without TensorFlow."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests import datagen
from tests.helpers import REPO, hook_env

TRAIN = str(REPO / "tools" / "train.py")
# 40 images, 8 held out: each epoch is two global batches of 16, one pass.
FLAGS = (
    "--n=1",
    "--backend=jax",
    "--batch_size=16",
    "--epochs=2",
    "--validation_split=0.2",
    "--schedule=cosine",
    # A small rate: at 0.05 the float rounding of the two reduction orders
    # grows past 1e-5 in 4 steps of this tiny net; at 0.01 it stays near 1e-7.
    "--lr=0.01",
    # float32 on every CPU class: with AMX, auto is mixed_bfloat16 under JAX,
    # whose rounding of the two reduction orders is far above 1e-5.
    "--precision=float32",
    "--noexport",
    "--verbose=0",
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(root):
    datagen.image_folder(str(root / "data"), ["a", "b", "c", "d"], per_class=10)
    return str(root / "data")


def _start(model_dir, data_dir, log, *extra, env=None, process=None, port=None):
    args = [sys.executable, TRAIN, *FLAGS, f"--data_dir={data_dir}", f"--model_dir={model_dir}", *extra]
    if process is not None:
        args += [f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={process}"]
    env = dict(hook_env(**(env or {})), KERAS_BACKEND="jax")
    # Its own session: killing the group stops the command and its supervised child.
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _run_pair(tmp, name, data_dir, env=None, extra=((), ())):
    """Two processes of one job; returns their exit codes and outputs."""
    port = _free_port()
    outputs = [tmp / f"{name}-{i}.txt" for i in range(2)]
    procs = []
    for i in (1, 0):
        with open(outputs[i], "w") as log:
            procs.append(_start(tmp / name, data_dir, log, *extra[i], env=(env or [{}, {}])[i], process=i, port=port))
    try:
        codes = [p.wait(timeout=300) for p in reversed(procs)]
    finally:
        for p in procs:
            _kill(p)
    return codes, [o.read_text() for o in outputs]


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _weights(path):
    return keras.models.load_model(path, compile=False).get_weights()


def _assert_close(a, b, atol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def _steps(record):
    rows = [line.split() for line in record.read_text().splitlines()]
    return {int(r[0]): [int(i) for i in r[1:]] for r in rows}, len(rows)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted two-process run, watched, and a one-process run of the same global batch."""
    tmp = tmp_path_factory.mktemp("dist")
    data_dir = _data(tmp)
    env = [
        {
            "KRC_TEST_RECORD": str(tmp / f"record-{i}"),
            "WATCH_DIR": str(tmp / "two"),
            "WATCH_LOG": str(tmp / f"writes-{i}.txt"),
        }
        for i in range(2)
    ]
    codes, outputs = _run_pair(tmp, "two", data_dir, env)
    with open(tmp / "one.txt", "w") as log:
        one = _start(tmp / "one", data_dir, log)
        one_code = one.wait(timeout=300)
    return {"tmp": tmp, "data": data_dir, "codes": codes, "outputs": outputs, "one_code": one_code}


def test_two_processes_share_each_batch_and_equal_one_process(runs):
    tmp = runs["tmp"]
    assert runs["codes"] == [0, 0], runs["outputs"]
    assert runs["one_code"] == 0, (tmp / "one.txt").read_text()
    assert "Process 1 of 2: 8 images a step of the global batch 16" in runs["outputs"][1]
    seen = [_steps(tmp / f"record-{i}.{i}") for i in range(2)]
    for steps, lines in seen:
        assert sorted(steps) == [0, 1, 2, 3] and lines == 4  # each step once
        assert all(len(index) == 8 for index in steps.values())  # each process's batch is 8
    for epoch in (0, 1):
        mine = [set(i for s in (2 * epoch, 2 * epoch + 1) for i in seen[p][0][s]) for p in range(2)]
        assert not mine[0] & mine[1]  # disjoint
        assert mine[0] | mine[1] == set(range(32))  # together, the whole epoch
    final = _weights(tmp / "two" / "model.keras")
    replicas = [list(np.load(tmp / f"record-{i}.{i}.npz").values()) for i in range(2)]
    _assert_close(replicas[0], replicas[1], atol=0)
    _assert_close(final, replicas[1])
    _assert_close(final, _weights(tmp / "one" / "model.keras"))
    # Only process 0 wrote.
    assert not (tmp / "writes-1.txt").exists(), (tmp / "writes-1.txt").read_text()
    written = (tmp / "writes-0.txt").read_text()
    for name in ("config.json", "labels.txt", "metrics.csv", "model.keras", "metrics.json"):
        assert name in written  # through a temporary of that name, renamed
    assert json.loads((tmp / "two" / "config.json").read_text())["num_processes"] == 2
    # The model loads with plain Keras in a fresh process and predicts.
    code = (
        "import keras, numpy as np; m = keras.models.load_model(r'%s');"
        "p = m.predict(np.zeros((3, 32, 32, 3), 'uint8'), verbose=0); print('shape', p.shape)"
    ) % (tmp / "two" / "model.keras")
    env = dict(os.environ, KERAS_BACKEND="jax")  # as it was trained: no TensorFlow to start
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and "shape (3, 4)" in out.stdout, out.stderr[-2000:]


def test_a_frozen_process_is_found_by_its_missing_heartbeats(runs):
    tmp, data_dir = runs["tmp"], runs["data"]
    port = _free_port()
    with open(tmp / "frozen-0.txt", "w") as log0, open(tmp / "frozen-1.txt", "w") as log1:
        # Heartbeats every 8 s rather than 30 (the hooks' KRC_TEST_HEARTBEAT): the same path, found sooner.
        beat = {"KRC_TEST_HEARTBEAT": "8"}
        one = _start(tmp / "frozen", data_dir, log1, env={"KRC_TEST_PAUSE_AT": "step3", **beat}, process=1, port=port)
        zero = _start(tmp / "frozen", data_dir, log0, env=beat, process=0, port=port)
        try:
            deadline = time.time() + 240
            while "paused at step3" not in (tmp / "frozen-1.txt").read_text():
                assert time.time() < deadline and one.poll() is None, (tmp / "frozen-1.txt").read_text()
                time.sleep(0.5)
            os.killpg(one.pid, signal.SIGSTOP)  # a hung host: its connections stay open, its heartbeats stop
            stopped = time.time()
            code = zero.wait(timeout=120)
            assert time.time() - stopped < 120
        finally:
            _kill(one)
            _kill(zero)
    output = (tmp / "frozen-0.txt").read_text()
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 1 and len(lines) == 1, output
    assert lines[0].startswith("error: process 1 of 2 stopped responding, and the job cannot go on without it")
    kept = re.search(r"details in (\S+)$", lines[0]).group(1)
    assert "heartbeat" in open(kept).read()
    assert "Check failure" not in output and "@ 0x" not in output


def test_one_host_with_two_devices_equals_one_device(runs):
    tmp = runs["tmp"]
    with open(tmp / "devices.txt", "w") as log:
        proc = _start(tmp / "devices", runs["data"], log, env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
        assert proc.wait(timeout=300) == 0, (tmp / "devices.txt").read_text()
    assert "2 replica(s) in 1 process(es)" in (tmp / "devices.txt").read_text()
    _assert_close(_weights(tmp / "devices" / "model.keras"), _weights(tmp / "one" / "model.keras"))


def test_a_setting_that_differs_between_processes_is_refused_by_name(runs):
    tmp = runs["tmp"]
    codes, outputs = _run_pair(tmp, "differ", runs["data"], extra=(("--lr=0.01",), ("--lr=0.1",)))
    for code, output in zip(codes, outputs):
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert code == 1 and len(errors) == 1, output
        assert "process 1 runs with learning_rate=0.1, process 0 with learning_rate=0.01" in errors[0]


def test_a_process_that_sees_no_run_directory_is_refused(runs):
    tmp = runs["tmp"]
    port = _free_port()
    with open(tmp / "unseen-0.txt", "w") as log0, open(tmp / "unseen-1.txt", "w") as log1:
        one = _start(tmp / "elsewhere" / "unseen", runs["data"], log1, process=1, port=port)
        zero = _start(tmp / "unseen", runs["data"], log0, process=0, port=port)
        codes = [zero.wait(timeout=300), one.wait(timeout=300)]
    for code, name in zip(codes, ("unseen-0.txt", "unseen-1.txt")):
        errors = [line for line in (tmp / name).read_text().splitlines() if line.startswith("error:")]
        assert code == 1 and errors == [
            "error: process 1 finds no run directory where process 0 made one: --model_dir must be on storage "
            "every process sees (a shared file system), at the same path"
        ], (tmp / name).read_text()
    assert not (tmp / "elsewhere").exists()


def test_a_batch_that_does_not_divide_over_the_processes_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, TRAIN, "--batch_size=15", "--num_processes=2", "--coordinator_address=127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr == "error: --batch_size=15 does not divide over 2 processes: pass a multiple of 2\n"


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_several_processes_need_jax(tmp_path, backend):
    result = subprocess.run(
        [sys.executable, TRAIN, f"--backend={backend}", "--num_processes=2", "--coordinator_address=127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert re.fullmatch(r"error: --num_processes=2 needs --backend=jax: [^\n]+\n", result.stderr), result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_job_comes_from_the_flags_or_from_kerass_variables():
    from keras_resnet_cifar.training import distributed
    from keras_resnet_cifar.training.config import TrainingError

    environ = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "node0:1234,node1:1234,node2:1234",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "3",
        "KERAS_DISTRIBUTION_PROCESS_ID": "2",
    }
    assert distributed.cluster_from(environ=environ) == distributed.Cluster("node0:1234", 3, 2)
    assert distributed.cluster_from(process_id=1, environ=environ) == distributed.Cluster("node0:1234", 3, 1)
    assert distributed.cluster_from(environ={}) == distributed.Cluster(None, 1, 0)
    for kwargs, message in (
        ({"num_processes": 2}, "2 processes need --coordinator_address=HOST:PORT"),
        ({"num_processes": 2, "process_id": 2, "coordinator_address": "h:1"}, r"process_id must be in \[0, 1\]"),
        ({"num_processes": 2, "coordinator_address": "h"}, "coordinator_address must be HOST:PORT"),
        ({"environ": {"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"}}, "KERAS_DISTRIBUTION_NUM_PROCESSES='two'"),
    ):
        with pytest.raises(TrainingError, match=message):
            distributed.cluster_from(**{"environ": {}, **kwargs})


def test_the_training_loop_is_the_runners_alone():
    found = subprocess.run(
        ["grep", "-rlE", r"\.fit\(|train_on_batch|apply_gradients", str(REPO / "keras_resnet_cifar"), "--include=*.py"],
        capture_output=True,
        text=True,
    ).stdout.split()
    names = sorted(os.path.relpath(p, REPO) for p in found)
    # The benchmark and the profiler time the runner's own step (runner.training_model).
    assert names == [
        "keras_resnet_cifar/study/benchmark.py",
        "keras_resnet_cifar/study/step_profile.py",
        "keras_resnet_cifar/training/runner.py",
    ]


def _job_pids(marker):
    """Live processes (not zombies) whose environment holds ``KRC_TEST_JOB=<marker...>``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours
            continue
        if state != "Z" and any(v.startswith(b"KRC_TEST_JOB=" + marker.encode()) for v in env):
            found.append(int(entry))
    return found


def _kill_job(marker):
    for pid in _job_pids(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for(path, text, proc, seconds=240):
    deadline = time.time() + seconds
    while text not in path.read_text():
        assert time.time() < deadline and proc.poll() is None, path.read_text()
        time.sleep(0.5)


def _wait_for_port(port, proc, log, seconds=240):
    deadline = time.time() + seconds
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.time() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.5)


def _errors(path):
    return [line for line in path.read_text().splitlines() if line.startswith("error:")]


def test_a_command_killed_by_pid_takes_its_training_with_it_the_job_stops_in_one_line_and_resumes(runs):
    tmp, data_dir, port, job = runs["tmp"], runs["data"], _free_port(), f"krc-orphan-{os.getpid()}"
    logs = [open(tmp / f"kill-{i}.txt", "w") for i in range(2)]
    procs = []
    try:
        env1 = {"KRC_TEST_PAUSE_AT": "step3", "KRC_TEST_JOB": job + "-1"}
        procs.append(_start(tmp / "kill", data_dir, logs[1], env=env1, process=1, port=port))
        procs.append(_start(tmp / "kill", data_dir, logs[0], env={"KRC_TEST_JOB": job + "-0"}, process=0, port=port))
        _wait_for(tmp / "kill-1.txt", "paused at step3", procs[0])  # in epoch 2
        os.kill(procs[0].pid, signal.SIGKILL)  # the command alone, not its group
        procs[0].wait()
        killed = time.time()
        while _job_pids(job + "-1") and time.time() - killed < 10:
            time.sleep(0.2)
        assert not _job_pids(job + "-1")  # its training child died with it
        code = procs[1].wait(timeout=150)
        assert time.time() - killed < 150 and code != 0
    finally:
        for proc in procs:
            _kill(proc)
        _kill_job(job)
        for log in logs:
            log.close()
    output = (tmp / "kill-0.txt").read_text()
    [line] = _errors(tmp / "kill-0.txt")
    assert "process 1 of 2 stopped" in line and "re-run every process" in line
    assert "Traceback" not in output and "Check failure" not in output
    assert not _job_pids(job)
    # The same two commands resume the job from its backup and end where the uninterrupted job ended.
    codes, outputs = _run_pair(tmp, "kill", data_dir)
    assert codes == [0, 0], outputs
    assert "1 epoch(s) done, going on with epoch 2" in outputs[0]
    _assert_close(_weights(tmp / "kill" / "model.keras"), _weights(tmp / "two" / "model.keras"))


def test_processes_that_disagree_on_num_processes_stop_naming_it(tmp_path):
    data_dir, port, job = _data(tmp_path), _free_port(), f"krc-count-{os.getpid()}"
    procs, logs = [], [tmp_path / f"count-{i}.txt" for i in range(2)]
    try:
        for i, count in ((1, 3), (0, 2)):
            with open(logs[i], "w") as log:
                args = [sys.executable, TRAIN, *FLAGS, f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'run'}"]
                args += ["--batch_size=12", f"--coordinator_address=127.0.0.1:{port}"]  # 12 divides over 2 and 3
                args += [f"--num_processes={count}", f"--process_id={i}"]
                env = dict(hook_env(KRC_TEST_JOB=job), KERAS_BACKEND="jax")
                procs.append(
                    subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                )
        started = time.time()
        codes = [proc.wait(timeout=60) for proc in procs]
        assert time.time() - started < 60
    finally:
        for proc in procs:
            _kill(proc)
        _kill_job(job)
    for i in range(2):
        [line] = _errors(logs[i])
        assert "--num_processes=3" in line and "--num_processes=2" in line, logs[i].read_text()
        assert "internal error" not in logs[i].read_text()
    assert codes == [1, 1] and not _job_pids(job)


def test_two_processes_with_process_id_0_both_stop_within_60_s_naming_it(tmp_path):
    data_dir, port, job = _data(tmp_path), _free_port(), f"krc-dup-{os.getpid()}"
    procs, logs = [], [tmp_path / f"dup-{i}.txt" for i in range(2)]
    try:
        for k in range(2):
            with open(logs[k], "w") as log:
                procs.append(_start(tmp_path / "run", data_dir, log, env={"KRC_TEST_JOB": job}, process=0, port=port))
            if not k:  # the second comes once the first serves the port (so it holds the id's lock)
                _wait_for_port(port, procs[0], logs[0])
        started = time.time()
        second = procs[1].wait(timeout=60)
        # Without the second's note it would wait for a process 1 that never comes (--join_timeout, 300 s).
        first = procs[0].wait(timeout=60)
        assert time.time() - started < 60
    finally:
        for proc in procs:
            _kill(proc)
        _kill_job(job)
    [line] = _errors(logs[1])
    assert second == 1 and "another process on this host runs as --process_id=0" in line, line
    assert "its own --process_id" in line
    [line] = _errors(logs[0])
    assert first == 1 and "was started with --process_id=0 while this one waited to join" in line, line
    assert "stop both, then start each process once" in line
    assert not _job_pids(job)


def _claimed(cluster):
    """Claims ``cluster``'s id as a process would; returns a function that lets it go again."""
    from keras_resnet_cifar.training import process_ids

    held = len(process_ids.HELD)

    def release():
        for fd in process_ids.HELD[held:]:
            os.close(fd)
        del process_ids.HELD[held:]

    try:
        process_ids.claim(cluster)
    except BaseException:
        release()
        raise
    return release


@pytest.mark.parametrize("process", [0, 1])
def test_a_second_process_with_one_id_is_refused_and_the_first_told(process):
    from keras_resnet_cifar.training import distributed, process_ids
    from keras_resnet_cifar.training.config import TrainingError

    cluster = distributed.cluster_from(f"127.0.0.1:{_free_port()}", 2, process)
    told = f"was started with --process_id={process} while this one waited"
    release = _claimed(cluster)
    try:
        process_ids.check_alone(cluster)  # alone: no error
        with pytest.raises(TrainingError, match=f"another process on this host runs as --process_id={process} "):
            process_ids.claim(cluster)  # a second open file: flock refuses it as it would a process
        with pytest.raises(TrainingError, match=told):
            process_ids.check_alone(cluster)
        # The join of the first stops on it, long before its timeout.
        started = time.time()
        with pytest.raises(TrainingError, match=told):
            distributed._bounded(lambda: time.sleep(30), 20, check=lambda: process_ids.check_alone(cluster))
        assert time.time() - started < 2
    finally:
        release()
    # The next job on the port starts clean: an earlier job's note is removed when the id is claimed.
    release = _claimed(cluster)
    try:
        process_ids.check_alone(cluster)
    finally:
        release()


def test_sigterm_while_waiting_for_the_others_to_join_exits_143_in_one_line(tmp_path):
    data_dir, port, job = _data(tmp_path), _free_port(), f"krc-term-{os.getpid()}"
    log_path = tmp_path / "term.txt"
    with open(log_path, "w") as log:
        # Process 0 never starts; the test holds its port, so it sees process 1 connect to join.
        coordinator = socket.create_server(("127.0.0.1", port))
        proc = _start(tmp_path / "run", data_dir, log, env={"KRC_TEST_JOB": job}, process=1, port=port)
        try:
            coordinator.settimeout(120)
            coordinator.accept()[0].close()  # inside jax.distributed.initialize, waiting
            coordinator.close()
            proc.send_signal(signal.SIGTERM)  # the command, as a scheduler sends it
            code = proc.wait(timeout=30)
        finally:
            _kill(proc)
            _kill_job(job)
    output = log_path.read_text()
    assert code == 143, output
    assert [line for line in output.splitlines() if line.strip()][-1].startswith(
        "terminated (SIGTERM): re-run the same command"
    ), output
    assert "Traceback" not in output and not _job_pids(job)


# The first native lines each process of a job printed when a second process started with
# --process_id=1 joined it (3 processes on 127.0.0.1, jax 0.10.2; captured from a real run).
_SECOND_ID_1 = (
    "F1202 18:44:45.094208   32554 client.h:80] Terminating process because the JAX distributed service "
    "detected fatal errors. This most likely indicates that another task died; see the other task logs for "
    "more details. absl::Status: ABORTED: 1 unexpectedly tried to connect with a different incarnation. "
    "It has likely restarted.\n"
    "RPC: /xla.coordination.CoordinationService/PollForError\n"
)


@pytest.mark.parametrize("process", [0, 1])
def test_a_process_id_that_joins_twice_is_named_not_reported_as_lost(process):
    from keras_resnet_cifar.cli import supervise
    from keras_resnet_cifar.training import distributed

    cluster = distributed.cluster_from("127.0.0.1:1234", 2, process)
    line = supervise.lost_line(_SECOND_ID_1, cluster)
    assert line.startswith("process 1 joined the job a second time (two processes were started with --process_id=1")
    assert "stopped responding" not in line and "with its own --process_id" in line
    # What is lost is still named as lost.
    lost = "E1202 coordination_service.cc:1] tasks are unhealthy (stopped sending heartbeats):\n1\n"
    assert supervise.lost_line(lost, cluster).startswith("process 1 of 2 stopped responding")
