"""What every tool shares: one-line errors and exit codes instead of tracebacks."""

import importlib
import os
import re
import sys
import threading

from absl import app, logging


class UsageError(Exception):
    """A bad flag value; the message says which and what is allowed."""


def reject_extra_args(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags take --name=value)")


def resolve_n(n, depth, default):
    """--n or --depth (6n+2), checked, as n."""
    if n is not None and depth is not None and depth != 6 * n + 2:
        raise UsageError(f"--n={n} and --depth={depth} disagree (depth = 6n+2)")
    if depth is not None:
        if depth < 8 or (depth - 2) % 6:
            raise UsageError(f"--depth must be 6n+2 (20, 32, 44, 56, 110, 1202), got {depth}")
        return (depth - 2) // 6
    if n is not None and n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    return default if n is None else n


def _known_errors():
    errors = [UsageError, ValueError, FileNotFoundError]
    # Module by module: on a machine without TensorFlow (the JAX path) the
    # TF-free modules' errors must still print as one line.
    for module, name in (("arrays", "DataError"), ("files", "WriteError"), ("convert", "ConversionError"),
                         ("pretrained", "WeightsError"), ("loading", "ModelFileError"),
                         ("export", "ExportError"), ("train", "TrainingError"),
                         ("plotting", "PlotError")):
        try:
            errors.append(getattr(importlib.import_module(f"keras_resnet_cifar.{module}"), name))
        except ImportError:  # pragma: no cover
            pass
    return tuple(errors)


# What TensorFlow's C++ side prints at start-up on a machine without a GPU. It
# writes before absl logging is set up, so TF_CPP_MIN_LOG_LEVEL does not hold it back.
_NATIVE_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub\.cc|cuda_platform\.cc|cuda_dnn\.cc|"
    r"cuda_fft\.cc|cuda_blas\.cc|cpu_feature_guard\.cc|To enable the following instructions|"
    r"computation_placer\.cc|Unable to register cu(DNN|FFT|BLAS) factory")


class _StderrFilter:
    """Drops the native start-up noise from file descriptor 2, passing every other line on."""

    def __init__(self):
        self._original = os.dup(2)
        read, self._write = os.pipe()
        os.dup2(self._write, 2)
        self._thread = threading.Thread(target=self._pump, args=(read,), daemon=True)
        self._thread.start()

    def _pump(self, read):
        with os.fdopen(read, "rb") as pipe, os.fdopen(os.dup(self._original), "wb", buffering=0) as out:
            for line in pipe:
                if not _NATIVE_NOISE.search(line.decode(errors="replace")):
                    out.write(line)

    def close(self):
        """Restores descriptor 2 and waits until every passed line is written."""
        sys.stderr.flush()
        os.dup2(self._original, 2)
        os.close(self._write)
        self._thread.join(timeout=5)


def run(main):
    """``absl.app.run(main)`` with one-line errors: exit 2 bad usage, 1 failure, 130 interrupt."""
    quiet = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0) >= 2
    stderr_filter = _StderrFilter() if quiet else None

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines are noise here
        _exit_now(_outcome(main, argv), stderr_filter)

    try:
        app.run(wrapped)
    except app.UsageError as e:  # pragma: no cover
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    finally:  # absl exits here on a bad flag or --helpfull; their text must get out
        if stderr_filter:
            stderr_filter.close()


def _exit_now(code, stderr_filter=None):
    """Exits at once: every output is written and closed by now.

    Interpreter shutdown destroys live tf.data iterators, and that has been
    seen to block for minutes after a resumed training run had finished.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if stderr_filter:
        stderr_filter.close()
    os._exit(code or 0)


def _outcome(main, argv):
    """``main(argv)``'s exit status, with known errors printed as one line."""
    try:
        return main(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume from the last completed epoch",
              file=sys.stderr)
        return 130
    except _known_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
