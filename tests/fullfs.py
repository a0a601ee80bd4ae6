"""Runs a command with a small, private file system mounted over a folder: a real full disk.

``unshare`` gives the command its own mount namespace (as an unprivileged
user too, through a user namespace), so the tmpfs is seen by that command
alone and disappears with it; what the command left there is listed before.
"""

import os
import shlex
import subprocess


def run(command, folder, size, timeout=600, env=None):
    """Runs ``command`` (a list) with a ``size`` tmpfs (e.g. "300k") mounted at ``folder``.

    Returns:
        ``(completed process, files left under folder)``: the process's
        stdout holds only the command's own stdout; the listing is relative
        to ``folder``.
    """
    os.makedirs(folder, exist_ok=True)
    marker = "---files-left---"
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))} || exit 99\n"
        f"{shlex.join(str(c) for c in command)}\n"
        "code=$?\n"
        f"echo {marker}\n"
        f"cd {shlex.quote(str(folder))} && find . -mindepth 1 | sort\n"
        "exit $code\n"
    )
    result = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **(env or {})),
    )
    assert result.returncode != 99, f"could not mount a tmpfs: {result.stderr}"
    own, _, listing = result.stdout.partition(marker + "\n")
    result.stdout = own
    return result, [line[2:] for line in listing.splitlines()]
