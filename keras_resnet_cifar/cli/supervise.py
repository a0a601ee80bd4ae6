"""Runs one process of a multi-process job as a child, to report a lost peer in one line.

When a process of a job dies, the others stall in a collective until JAX's
coordination service misses its heartbeats; the service then aborts them
with a page of native log lines and a stack dump. The command runs its work
in a child process, passes the child's output on until the first such native
line, keeps the rest in a file, and ends with one line that names the lost
process.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile

from keras_resnet_cifar import processes

# Set in the child: the supervising command's pid.
CHILD_ENV = "KERAS_RESNET_CIFAR_SUPERVISED"
# The first native line of a job going down (glog: severity, date, time, thread, file:line]).
_NATIVE = re.compile(r"^[EFW]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.]+:\d+\]")
# How the command's own outcome lines start (cli/app.py).
_OURS = ("error:", "internal error", "terminated", "interrupted")
_DOWN = re.compile(r"coordination_service|client\.h|distributed|heartbeat|Barrier|gloo", re.I)


def is_child():
    """Whether this process is the supervised child (one whose command is gone ends here, at once)."""
    parent = os.environ.get(CHILD_ENV)
    if not parent:
        return False
    if parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)  # the command died before this child could start: nobody is left to report to
    return True


def run_child(module, cluster):
    """Runs ``python -m module`` with this command's arguments; returns the exit status to exit with."""
    parent = os.getpid()
    child = subprocess.Popen(
        [sys.executable, "-m", module, *sys.argv[1:]],
        env=dict(os.environ, **{CHILD_ENV: str(parent)}),
        stderr=subprocess.PIPE,
        # Killed with its command, even by SIGKILL (which no handler sees): never an orphan that trains on.
        preexec_fn=lambda: processes.die_with_parent(parent),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, frame: child.send_signal(s))
    held, said = [], False
    for raw in child.stderr:
        line = raw.decode(errors="replace")
        ours = line.startswith(_OURS)  # the command's own one-line outcome always gets out
        if not ours and (held or (_NATIVE.match(line) and _DOWN.search(line))):
            held.append(line)
            continue
        said = said or ours
        sys.stderr.write(line)
        sys.stderr.flush()
    code = child.wait()
    if code == 0 or said or not held:
        return 128 - code if code < 0 else code
    print(f"error: {lost_line(''.join(held), cluster)}; details in {_keep(held)}", file=sys.stderr)
    return 1


def lost_line(text, cluster):
    """What the coordination service's lines say was lost, as one sentence."""
    # XLA's service aborts the job when a task id it knows connects again (a second
    # process with the same --process_id, or a restarted one): "<id> unexpectedly tried
    # to connect with a different incarnation" (the id alone, or a task name ending in it).
    twice = re.search(r"(\d+) unexpectedly tried to connect with a different incarnation", text)
    if twice:
        id_ = twice.group(1)
        return (
            f"process {id_} joined the job a second time (two processes were started with --process_id={id_}, "
            f"or process {id_} restarted while the job ran), and the job stopped; stop every process of the job, "
            "then start each once, with its own --process_id, to resume from the last completed epoch"
        )
    lost = re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*\n?\s*([\d, ]+)", text)
    lost = lost or re.search(r"Task (\d+) heartbeat timeout", text)
    if lost:
        ids = ", ".join(i for i in re.split(r"[,\s]+", lost.group(1)) if i)
        who = f"process {ids} of {cluster.num_processes} stopped responding"
    elif cluster.process_id != 0:
        who = f"process 0 (the coordinator at {cluster.coordinator_address}) stopped responding"
    else:
        who = "the job lost a process"
    return (
        f"{who}, and the job cannot go on without it; re-run every process with the same command "
        "to resume from the last completed epoch"
    )


def _keep(lines):
    fd, path = tempfile.mkstemp(prefix="krc-job-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.writelines(lines)
    return path
