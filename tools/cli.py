"""What every tool shares: one-line errors and exit codes instead of tracebacks."""

import importlib
import os
import sys

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
                         ("export", "ExportError"), ("train", "TrainingError"),
                         ("plotting", "PlotError")):
        try:
            errors.append(getattr(importlib.import_module(f"keras_resnet_cifar.{module}"), name))
        except ImportError:  # pragma: no cover
            pass
    return tuple(errors)


def run(main):
    """``absl.app.run(main)`` with one-line errors: exit 2 bad usage, 1 failure, 130 interrupt."""

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines are noise here
        _exit_now(_outcome(main, argv))

    try:
        app.run(wrapped)
    except app.UsageError as e:  # pragma: no cover
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _exit_now(code):
    """Exits at once: every output is written and closed by now.

    Interpreter shutdown destroys live tf.data iterators, and that has been
    seen to block for minutes after a resumed training run had finished.
    """
    sys.stdout.flush()
    sys.stderr.flush()
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
