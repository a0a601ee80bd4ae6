"""Child processes that end with their parent: nothing a command started outlives it."""

import os
import signal


def die_with_parent(parent=None):
    """In a child (a ``preexec_fn``): Linux kills this process when its parent dies (``PR_SET_PDEATHSIG``).

    Args:
        parent: the parent's pid; a parent that died before the signal was
            set (the child was already re-parented) kills the child at once.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent's own handlers are all there is
        return
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
