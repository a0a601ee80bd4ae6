"""What every tool shares: one-line errors and exit codes instead of tracebacks."""

import importlib
import os
import re
import sys
import threading

from absl import app, flags, logging


class UsageError(Exception):
    """A bad flag value; the message says which and what is allowed."""


def define_run_flags(batch_size, model_dir_default):
    """The flags every training tool shares (``config.RunOptions``), with their bounds."""
    flags.DEFINE_string("model_dir", None, f"Run directory. Default: {model_dir_default}.")
    flags.DEFINE_integer("batch_size", batch_size, "Global batch size.", lower_bound=1)
    flags.DEFINE_float("lr", None, "Peak learning rate (> 0); default below.")
    flags.register_validator("lr", lambda v: v is None or v > 0, message="--lr must be > 0")
    flags.DEFINE_integer("steps", None, "Total iterations.", lower_bound=1)
    flags.DEFINE_integer("epochs", None, "Total epochs instead of --steps.", lower_bound=1)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum, in [0, 1).", lower_bound=0)
    flags.register_validator("momentum", lambda v: v < 1, message="--momentum must be below 1")
    flags.DEFINE_float("weight_decay", 1e-4, "Coupled (PyTorch-style) weight decay.", lower_bound=0)
    flags.DEFINE_enum(
        "precision",
        "auto",
        ["auto", "float32", "mixed_float16", "mixed_bfloat16"],
        "auto: mixed_float16 on a GPU; on a CPU mixed_bfloat16 with AMX, else float32.",
    )
    flags.DEFINE_bool(
        "xla",
        None,
        "Jit-compile the train step (Keras jit_compile: XLA under tensorflow and jax, torch.compile "
        "under torch). Default: under tensorflow on for mixed_bfloat16 on a CPU without AMX (emulated "
        "bf16 is 6x slower without it), else Keras decides; always under jax; off under torch.",
    )
    flags.DEFINE_enum(
        "strategy",
        "auto",
        ["auto", "mirrored", "one_device"],
        "auto: MirroredStrategy over all GPUs when there are several.",
    )
    flags.DEFINE_integer("seed", 0, "Seed for weights, split, shuffling and augmentation.", lower_bound=0)
    flags.DEFINE_integer(
        "verbose",
        None,
        "1: progress bar; 0 or 2: one line per epoch plus a progress line every "
        "30 s. Default: 1 on a terminal, else 0.",
        lower_bound=0,
        upper_bound=2,
    )
    flags.DEFINE_bool("export", True, "Also export a TF Serving SavedModel to <model_dir>/export/<name>/<version>.")
    flags.DEFINE_bool("overwrite", False, "Replace a finished run in --model_dir.")
    flags.DEFINE_bool(
        "deterministic",
        False,
        "Deterministic TensorFlow ops: bit-identical runs, also across a kill and resume (slower).",
    )
    flags.DEFINE_bool(
        "allow_lr_change",
        False,
        "Resume an unfinished run with a different --lr (after a NaN stop, "
        "for example); config.json records the change.",
    )


def run_flag_values(values):
    """``define_run_flags``'s values as ``TrainConfig`` / ``ImageNetConfig`` keyword arguments."""
    names = (
        "batch_size",
        "momentum",
        "weight_decay",
        "precision",
        "xla",
        "strategy",
        "seed",
        "verbose",
        "export",
        "overwrite",
        "allow_lr_change",
        "deterministic",
        "steps",
    )
    return dict({name: values[name].value for name in names}, learning_rate=values.lr)


def reject_extra_args(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags take --name=value)")


def resolve_n(n, depth, default):
    """--n or --depth (6n+2), checked by the package's one rule (``presets.resolve_n``), as n."""
    from keras_resnet_cifar.models import presets  # pure Python: no Keras import yet

    if n is None and depth is None:
        return default
    try:
        return presets.resolve_n(depth, n)
    except ValueError as e:
        raise UsageError(f"--{e}") from None


def _known_errors():
    errors = [UsageError, ValueError, FileNotFoundError]
    # Module by module: on a machine without TensorFlow (the JAX path) the
    # TF-free modules' errors must still print as one line.
    for module, name in (
        ("data.arrays", "DataError"),
        ("files", "WriteError"),
        ("models.convert", "ConversionError"),
        ("models.pretrained", "WeightsError"),
        ("serving.loading", "ModelFileError"),
        ("serving.export", "ExportError"),
        ("training.config", "TrainingError"),
        ("study.plotting", "PlotError"),
    ):
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
    r"computation_placer\.cc|Unable to register cu(DNN|FFT|BLAS) factory"
)


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
        print("interrupted: re-run the same command to resume from the last completed epoch", file=sys.stderr)
        return 130
    except _known_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
