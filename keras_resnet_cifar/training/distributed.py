"""Several devices and processes: data parallelism on ``keras.distribution`` (JAX).

Keras 3's released engine for one ``model.fit`` over many processes is
``keras.distribution`` on the JAX backend: ``jax.distributed`` joins the
processes (over gloo on CPUs, NCCL on GPUs) and ``DataParallel`` runs the
compiled step SPMD over every device of every process, so the gradients and
BatchNorm's batch statistics are those of the global batch. TensorFlow's
MultiWorkerMirroredStrategy fails inside Keras 3's ``fit``
(keras-team/keras#20585) and torch DDP inside ``fit`` is not released, so
several processes need the JAX backend.

What a job needs from its processes, and what this module checks:

* Every process runs the same program: the same settings (``agree``), the
  same data, the same number of steps.
* Creating a Keras variable under a multi-process distribution is itself a
  collective (its value is checked equal everywhere), and saving weights
  creates one; so one process writes its files with the distribution lifted
  (``local_only``), reading its own replica of the weights.
* A lost process stalls the others inside a collective; JAX's coordination
  service notices the missing heartbeats after ``HEARTBEAT_SECONDS`` and
  stops them (``cli/supervise.py`` reports it in one line).
"""

import contextlib
import dataclasses
import json
import os
import re
import sys

from keras_resnet_cifar.training import process_ids
from keras_resnet_cifar.training.config import TrainingError

ENV = {
    "coordinator_address": "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "num_processes": "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "process_id": "KERAS_DISTRIBUTION_PROCESS_ID",
}
# A process silent this long is taken for dead. Heartbeats come from a
# background thread, not from the training step, so a slow step does not
# delay them; JAX's default is 100 s.
HEARTBEAT_SECONDS = 30
# Joining waits this long for every process to start (``--join_timeout``).
JOIN_SECONDS = 300
# Processes that finish training wait this long for process 0 to write the
# outputs (evaluation and export) before they exit together.
SHUTDOWN_SECONDS = 3600


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in the job: ``process_id`` of ``num_processes``."""

    coordinator_address: str | None = None
    num_processes: int = 1
    process_id: int = 0

    @property
    def is_chief(self):
        """Process 0, the one that writes."""
        return self.process_id == 0

    @property
    def multi_process(self):
        return self.num_processes > 1


def cluster_from(coordinator_address=None, num_processes=None, process_id=None, environ=None):
    """The job from the flags, else from the ``KERAS_DISTRIBUTION_*`` variables that cluster launchers set.

    Raises:
        TrainingError: a setting is missing, malformed or out of range.
    """
    environ = os.environ if environ is None else environ
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes, "process_id": process_id}
    for key, variable in ENV.items():
        if given[key] is None and environ.get(variable):
            value = environ[variable]
            try:
                given[key] = value if key == "coordinator_address" else int(value)
            except ValueError:
                raise TrainingError(f"{variable}={value!r} is not a whole number") from None
    count = given["num_processes"] or 1
    index = given["process_id"] or 0
    address = given["coordinator_address"]
    if address and "," in address:  # KERAS_DISTRIBUTION_JOB_ADDRESSES lists every process; the first coordinates
        address = address.split(",")[0]
    if count < 1:
        raise TrainingError(f"num_processes must be >= 1, got {count}")
    if not 0 <= index < count:
        raise TrainingError(f"process_id must be in [0, {count - 1}] for {count} process(es), got {index}")
    if count > 1 and not address:
        raise TrainingError(
            f"{count} processes need --coordinator_address=HOST:PORT (process 0's host and a free port), "
            "the same on every process"
        )
    if address and (":" not in address or not address.rsplit(":", 1)[1].isdigit()):
        raise TrainingError(f"coordinator_address must be HOST:PORT, got {address!r}")
    return Cluster(address if count > 1 else None, count, index)


def check_backend(cluster, backend):
    """Refuses several processes under a backend that cannot train with them."""
    if cluster.multi_process and backend != "jax":
        why = {
            "tensorflow": "TensorFlow's MultiWorkerMirroredStrategy fails inside Keras 3's fit "
            "(keras-team/keras#20585)",
            "torch": "torch DDP inside Keras's fit is not in a released Keras",
        }.get(backend, f"the {backend} backend has no multi-process engine in Keras")
        raise TrainingError(
            f"--num_processes={cluster.num_processes} needs --backend=jax: {why}; "
            "keras.distribution on JAX trains over several processes"
        )


def start(cluster, join_seconds=JOIN_SECONDS):
    """Joins the job (every process calls it before anything runs on JAX); a no-op for one process.

    The join waits at most ``join_seconds`` for every process; SIGTERM and
    Ctrl-C stop it at any moment (it runs on a thread while this one
    waits). Once joined, every process checks that they all run with the
    same ``--num_processes``.

    Raises:
        TrainingError: another process with this ``--process_id`` on this
            host (before or while joining), a coordinator port in use, a join
            that failed or timed out, or processes that disagree on the job's size.
    """
    if not cluster.multi_process:
        return
    import jax

    # XLA's preemption notifier would take SIGTERM from this process's own handler for the whole run.
    jax.config.update("jax_enable_preemption_service", False)
    process_ids.claim(cluster)
    error = _bounded(
        # keras.distribution.initialize makes this same call, without the timeouts.
        lambda: jax.distributed.initialize(
            coordinator_address=cluster.coordinator_address,
            num_processes=cluster.num_processes,
            process_id=cluster.process_id,
            # XLA aborts the process at its own deadline: ours (below) comes first, with one line.
            initialization_timeout=join_seconds + 60,
            heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
            shutdown_timeout_seconds=SHUTDOWN_SECONDS,
        ),
        join_seconds,
        check=lambda: process_ids.check_alone(cluster),
    )
    if error is not None:
        raise TrainingError(
            f"process {cluster.process_id} of {cluster.num_processes} could not join the job at "
            f"{cluster.coordinator_address}: {error} (every process must start within "
            f"{join_seconds} s, each with its own --process_id and the same --coordinator_address and "
            "--num_processes)"
        )
    counts = share(cluster, cluster.num_processes)
    for index, count in enumerate(counts):
        if count != cluster.num_processes:
            raise TrainingError(
                f"process {index} runs with --num_processes={count}, process {cluster.process_id} with "
                f"--num_processes={cluster.num_processes}: start every process with the same --num_processes"
            )


def _bounded(call, seconds, check=lambda: None):
    """Runs ``call()`` on a thread; None when it returned, else why not (a timeout, or its error's first line).

    ``check()`` runs on this thread every half second; an error it raises
    ends the wait.

    This thread waits in short steps, so signal handlers (SIGTERM, Ctrl-C)
    run meanwhile; a call left behind ends with the process.
    """
    import threading

    done, failed = threading.Event(), []

    def target():
        try:
            call()
        except BaseException as e:  # noqa: BLE001 - jaxlib raises its own runtime errors
            failed.append(str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
        finally:
            done.set()

    threading.Thread(target=target, daemon=True, name="krc-join").start()
    waited = 0.0
    while not done.wait(0.5):
        check()
        waited += 0.5
        if waited >= seconds:
            return f"no answer within {seconds} s"
    return failed[0] if failed else None


def stop(cluster):
    """Leaves the job together with the others (waits for every process); a no-op for one process."""
    if cluster.multi_process:
        import jax

        jax.distributed.shutdown()


def data_parallel(backend, auto_shard):
    """Sets ``keras.distribution.DataParallel`` over every device of the job, under JAX with several.

    Args:
        backend: the Keras backend.
        auto_shard: let Keras shard a tf.data input across processes; the
            arrays input shards itself.

    Returns:
        The number of replicas (devices) a global batch is split over.
    """
    if backend != "jax":
        return 1
    import jax
    import keras

    devices = jax.devices()
    if len(devices) == 1:
        return 1
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=auto_shard))
    return len(devices)


def local_devices(backend):
    """Devices of this process (1 outside JAX)."""
    if backend != "jax":
        return 1
    import jax

    return jax.local_device_count()


@contextlib.contextmanager
def local_only():
    """Runs the block with no distribution set: what it creates and saves is this process's alone."""
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def leave_distribution():
    """Lifts the distribution for good: models built afterwards live in this process alone."""
    import keras

    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(None)


def share(cluster, value):
    """Every process's ``value`` (JSON-able), in process order; every process must call it."""
    if not cluster.multi_process:
        return [value]
    import numpy as np
    from jax.experimental import multihost_utils

    mine = json.dumps(value, sort_keys=True, default=str).encode()
    sizes = np.asarray(multihost_utils.process_allgather(np.array([len(mine)], np.int64))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: len(mine)] = np.frombuffer(mine, np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(sizes), -1)
    return [json.loads(bytes(row[:size]).decode()) for row, size in zip(gathered, sizes)]


def agree(cluster, settings):
    """Checks that every process runs with the same ``settings`` (a dict).

    Every process takes part and every process raises the same error, so the
    job stops together.

    Raises:
        TrainingError: naming the first setting that differs, and where.
    """
    everyone = share(cluster, settings)
    chief = everyone[0]
    for index, theirs in enumerate(everyone[1:], start=1):
        for key in sorted(set(chief) | set(theirs)):
            if chief.get(key) != theirs.get(key):
                raise TrainingError(_difference(key, index, theirs.get(key), chief.get(key)))


def lost_peer(cluster, error):
    """A one-line ``TrainingError`` for a collective that failed because a peer went away, else None.

    Gloo (CPUs) fails the all-reduce at once when a peer's connection
    closes, as a ``JaxRuntimeError``: in a job of several processes, that
    type out of ``fit`` is a failed collective (the step's own errors are
    raised while tracing, as Python errors). Gloo knows the peer's address,
    not its process number, which two processes make certain.
    """
    if not cluster.multi_process or not isinstance(error, _runtime_error_types()):
        return None
    text = str(error)
    if cluster.num_processes == 2:
        who = f"process {1 - cluster.process_id} of 2 stopped"
    else:
        who = f"a process other than this one (process {cluster.process_id}) stopped"
    detail = re.sub(r"\s+", " ", text.splitlines()[0])[:160]
    return TrainingError(
        f"{who} ({detail}), and the job cannot go on without it; re-run every process with the same command "
        "to resume from the last completed epoch"
    )


def _runtime_error_types():
    """JAX's runtime error classes (the type failed collectives raise), where JAX is imported."""
    jax_errors = sys.modules.get("jax.errors")
    found = getattr(jax_errors, "JaxRuntimeError", None) if jax_errors else None
    return (found,) if found is not None else ()


def _difference(key, index, theirs, chief):
    if key == "sees_run_dir":
        return (
            f"process {index} finds no run directory where process 0 made one: --model_dir must be on storage "
            "every process sees (a shared file system), at the same path"
        )
    if key == "backup_epoch":
        return (
            f"process {index} sees a backup of {theirs} epoch(s) where process 0 sees {chief}: --model_dir must "
            "be one shared directory, not a copy on each host"
        )
    return (
        f"process {index} runs with {key}={theirs!r}, process 0 with {key}={chief!r}: "
        "start every process with the same flags"
    )
