"""What every command shares: one-line errors, exit codes, signals, --help; and the training commands' run flags.

Bad input (a flag, a missing or corrupt file, a full disk) ends in one line
starting with ``error:``; anything else is a bug, reported in one line that
names the file holding its traceback, or printed whole when
``KERAS_RESNET_CIFAR_TRACEBACK=1`` is set.
"""

import contextlib
import datetime
import gc
import os
import signal
import sys
import tempfile
import traceback

from absl import app, flags, logging

from keras_resnet_cifar import errors
from keras_resnet_cifar.cli import startup

TRACEBACK_VARIABLE = "KERAS_RESNET_CIFAR_TRACEBACK"


UsageError = errors.UsageError


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``) or SIGHUP (a closed terminal or ssh session): stops the run as Ctrl-C does."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__(signum)
        self.signum = signal.Signals(signum)


class _OutputToClosedPipe:
    """``sys.stdout`` or ``sys.stderr`` that drops its output once its reader has gone (``| head``), so the work goes on.

    Python ignores SIGPIPE and raises ``BrokenPipeError`` at the next write
    instead: a run piped into ``head`` would stop in the middle, before its
    ``--json`` or its model was written.
    """

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def write(self, text):
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._gone = True
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone = True

    def __getattr__(self, name):
        if name == "_stream":  # not set yet (a copy): no endless lookup
            raise AttributeError(name)
        return getattr(self._stream, name)


_stopping = False  # Terminated is on its way out: a repeated signal must not cut its clean-up short


def _on_terminate(signum, frame):
    global _stopping
    if _stopping:
        return
    if _drops_exceptions(frame):
        # Raised here, Terminated would be printed as "Exception ignored in" and the command
        # would go on: the signal is handled again 50 ms later, once this code has returned
        # (an alarm, not a thread: nothing here may wait for a lock).
        signal.signal(signal.SIGALRM, lambda _, later: _on_terminate(signum, later))
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    _stopping = True
    raise Terminated(signum)


def _drops_exceptions(frame):
    """Whether ``frame`` runs inside a gc callback (JAX has one) or a ``__del__``, which drop what they raise."""
    callbacks = {getattr(callback, "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code in callbacks or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def _handle_termination():
    signal.signal(signal.SIGTERM, _on_terminate)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # under nohup it stays ignored
        signal.signal(signal.SIGHUP, _on_terminate)


def define_run_flags(defaults):
    """The flags every training tool shares, from the one schema (``options.RUN``).

    Args:
        defaults: the tool's differences (``options.CIFAR_RUN_DEFAULTS``,
            ``options.IMAGENET_RUN_DEFAULTS``).
    """
    from keras_resnet_cifar.training import options  # pure Python: no Keras import yet

    options.define_flags(options.RUN, module_name=__name__, defaults=defaults)


def reject_extra_args(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags take --name=value)")


def check_output(flag, path, folder=False):
    """Refuses, before any work, an output that no write could make: a folder at a file's path, a file in the way.

    Missing folders are fine: the write makes them.

    Args:
        flag: the flag that named ``path``, without its dashes.
        path: a file to write, or with ``folder`` a folder to write into.
        folder: ``path`` is a folder.

    Raises:
        UsageError: what stands in the way, named.
    """
    from keras_resnet_cifar import files  # pure Python: no Keras import yet

    if not folder and os.path.isdir(path):
        raise UsageError(f"--{flag} {path} is a folder: give a file path")
    blocking = files.blocking_file(path if folder else os.path.dirname(os.path.abspath(path)))
    if blocking:
        raise UsageError(f"--{flag} {path}: {blocking} is a file, not a folder")


def resolve_n(n, depth, default, depth_flag="depth"):
    """--n or --depth (6n+2), checked by the package's one rule (``presets.resolve_n``), as n.

    Args:
        n: --n's value, or None.
        depth: --depth's value, or None.
        default: n when neither is given.
        depth_flag: the flag that gave ``depth``, for the message.
    """
    from keras_resnet_cifar.models import presets  # pure Python: no Keras import yet

    if n is None and depth is None:
        return default
    try:
        return presets.resolve_n(depth, n, names=(f"--{depth_flag}", "--n"))
    except ValueError as e:
        raise UsageError(str(e)) from None


def report_bug(error, stream=None):
    """Reports an unexpected exception: the whole traceback when asked for, else one line.

    Returns:
        The path the traceback was written to, or None when it was printed.
    """
    stream = stream or sys.stderr
    text = "".join(traceback.format_exception(error))
    summary = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
        stream.write(text)
        print(f"internal error (a bug, please report it): {summary}", file=stream)
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        fd, path = tempfile.mkstemp(prefix=f"krc-traceback-{stamp}-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(text)
    except OSError:  # a full /tmp must not hide the bug: print it whole
        stream.write(text)
        print(f"internal error (a bug, please report it): {summary}", file=stream)
        return None
    print(
        f"internal error (a bug, please report it): {summary}; traceback in {path} "
        f"(or re-run with {TRACEBACK_VARIABLE}=1)",
        file=stream,
    )
    return path


def _use_tool_help(main):
    """Makes ``--help`` show the tool's own text and flags under any launcher.

    absl's ``--help`` prints ``__main__``'s docstring and the flags of the
    module named ``sys.argv[0]``; under a console script or a tools/ shim
    that is the launcher, which defines none.
    """
    module = sys.modules.get(main.__module__)
    launcher = sys.modules.get("__main__")
    if module is None or launcher is None or module is launcher:
        return
    launcher.__doc__ = module.__doc__
    for name in (main.__module__, __name__):
        for flag in flags.FLAGS.get_flags_for_module(name):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run(main, resumes=False):
    """``absl.app.run(main)`` with one-line errors: exit 2 bad usage, 1 failure, 70 a bug, 128 + a signal's number.

    Args:
        main: the tool's ``main(argv)``.
        resumes: the tool resumes interrupted work when re-run (training):
            an interruption says so.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0) >= 2
    stderr_filter = startup.StderrFilter() if quiet else None
    _use_tool_help(main)

    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines are noise here
        _handle_termination()
        for name in ("stdout", "stderr"):
            if getattr(sys, name) is not None:  # None when started with it closed (``>&-``)
                setattr(sys, name, _OutputToClosedPipe(getattr(sys, name)))
        _exit_now(_outcome(main, argv, resumes), stderr_filter)

    try:
        app.run(wrapped, flags_parser=_parse_flags)
    except app.UsageError as e:  # pragma: no cover
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as e:
        # absl exits 1 after --help; asking for help is not a failure.
        if e.code == 1 and any(a in ("--help", "-h", "-?", "--helpshort", "--helpfull") for a in sys.argv[1:]):
            sys.exit(0)
        raise
    finally:  # absl exits here on a bad flag or --helpfull; their text must get out
        if stderr_filter:
            stderr_filter.close()


def _parse_flags(argv):
    """absl's flag parsing, with a bad flag as one ``error:`` line and exit 2, as every usage error."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e} (--help lists the flags)", file=sys.stderr)
        sys.exit(2)


def _exit_now(code, stderr_filter=None):
    """Exits at once: every output is written and closed by now.

    Interpreter shutdown destroys live tf.data iterators, and that has been
    seen to block for minutes after a resumed training run had finished.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if stderr_filter:
        stderr_filter.close()
    _remove_autograph_sources()
    os._exit(code or 0)


def _remove_autograph_sources():
    """Deletes the source files TensorFlow's autograph wrote for this process's converted functions.

    Autograph writes each converted function (tf.data maps, Keras's train
    function) to a temporary ``__autograph_generated_file*.py``, imports it
    under that name and deletes it in an ``atexit`` handler, which
    ``os._exit`` skips: every run would leave a handful in the temporary folder.
    """
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith("__autograph_generated_file") and path:
            with contextlib.suppress(OSError):
                os.remove(path)


def _outcome(main, argv, resumes=False):
    """``main(argv)``'s exit status, with known errors printed as one line and bugs reported."""
    try:
        return main(argv)
    except (UsageError, errors.ConfigError) as e:  # bad flags, or settings that do not go together
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, Terminated) else None
        how = f"terminated ({signum.name})" if signum else "interrupted"
        # A training run resumes from its backup; other tools have nothing to resume.
        advice = ": re-run the same command to resume from the last completed epoch" if resumes else ""
        print(f"{how}{advice}", file=sys.stderr)
        return 128 + signum if signum else 130
    except errors.Error as e:  # the package's own checks: each message is written for the user
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # missing files, permissions, a full disk
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:
        report_bug(e)
        return 70  # EX_SOFTWARE: an internal error
