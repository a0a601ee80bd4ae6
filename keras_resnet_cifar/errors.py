"""The package's own errors: one base class, told apart by type.

Every message is written for the user, so a command prints it as one
``error:`` line (``cli/app.py``); any other exception is a bug and keeps its
traceback. ``ArgumentError`` is also a ``ValueError``, as Keras's and
keras-hub's builders raise for a bad argument, so Python callers catch
either.
"""


class Error(Exception):
    """Base class of every error this package raises on purpose."""


class UsageError(Error):
    """A bad flag value or command line; the message says which and what is allowed."""


class ArgumentError(Error, ValueError):
    """A bad argument to a public function (a builder, a schedule, ...), naming what was received."""


class DataError(Error):
    """Missing or bad data: the message names the file or source and what is wrong."""


class WriteError(Error):
    """An output that could not be written (a full disk, a read-only directory, a foreign file)."""


class TrainingError(Error):
    """A run that cannot start or go on; the message says why and what to do."""


class ConfigError(TrainingError):
    """A bad setting or a bad combination of settings (``options.check``); a command exits 2 (usage)."""


class NanLossError(TrainingError):
    """The training loss became NaN or infinite (raised by ``callbacks.StopOnNaN``)."""
