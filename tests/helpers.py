"""Helpers for tests that run Python in a fresh process."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_python(code, *, backend="tensorflow", cwd=None, timeout=600):
    """Runs ``code`` in a new interpreter and returns its stdout.

    The repository is on PYTHONPATH so the package imports without being
    installed; tests that must not use it assert so themselves.
    """
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    if result.returncode:
        raise AssertionError(f"subprocess failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


HOOKS = REPO / "tests" / "hooks"


def hook_env(**variables):
    """The environment of a child process with ``tests/hooks/sitecustomize.py`` installed.

    ``variables`` are its settings (``KRC_TEST_PAUSE_AT="step3"``, ...; see
    that module); the repository stays importable.
    """
    env = dict(os.environ, **{k: str(v) for k, v in variables.items()})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOKS), str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def run_tool(script, *args, timeout=600, env=None):
    """Runs ``tools/<script>`` (``"export.py"``) with ``args`` in a fresh interpreter; returns the result."""
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
