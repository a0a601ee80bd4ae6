"""One process per ``--process_id`` of a job on each host, by a lock file per id.

Two processes with one id would otherwise wait for each other (two
coordinators, each serving the port) or take the running job down when the
second connects.
"""

import fcntl
import os
import socket
import tempfile

from keras_resnet_cifar.training.config import TrainingError

HELD = []  # this process's lock files, held until it exits


def _port(cluster):
    return int(cluster.coordinator_address.rsplit(":", 1)[1])


def _lock_path(cluster):
    return os.path.join(tempfile.gettempdir(), f"krc-job-{_port(cluster)}-process-{cluster.process_id}.lock")


def claim(cluster):
    """Holds this host's lock on the job's ``--process_id`` until this process ends.

    A second process with the id stops here, at once, and leaves a note; the
    first, if it still waits to join, sees it and stops too
    (``check_alone``). A job that already runs is left alone.

    Raises:
        TrainingError: the id is held on this host, or process 0's port is in use.
    """
    path = _lock_path(cluster)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        with open(path + ".twice", "w") as note:
            note.write(str(os.getpid()))
        raise TrainingError(
            f"another process on this host runs as --process_id={cluster.process_id} with "
            f"--coordinator_address={cluster.coordinator_address}: {_own_ids(cluster)}"
        ) from None
    try:
        os.remove(path + ".twice")  # left by an earlier job on this port
    except FileNotFoundError:
        pass
    if cluster.is_chief:
        port = _port(cluster)
        with socket.socket() as probe:
            probe.settimeout(2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                os.close(fd)
                raise TrainingError(
                    f"port {port} of --coordinator_address={cluster.coordinator_address} is in use by another "
                    "program: choose a free port"
                )
    HELD.append(fd)  # the kernel releases it when this process ends, killed or not


def check_alone(cluster):
    """Raises if a second process with this one's ``--process_id`` started on this host since it claimed the id.

    Raises:
        TrainingError: naming the id and the second process.
    """
    try:
        with open(_lock_path(cluster) + ".twice") as note:
            pid = note.read().strip()
    except FileNotFoundError:
        return
    raise TrainingError(
        f"a second process (pid {pid}) was started with --process_id={cluster.process_id} while this one "
        f"waited to join the job at {cluster.coordinator_address}: {_own_ids(cluster)}; stop both, "
        "then start each process once"
    )


def _own_ids(cluster):
    return f"each of the {cluster.num_processes} processes needs its own --process_id, 0 to {cluster.num_processes - 1}"
