"""Version directories: how every export format is written, and never overwritten.

An export goes to ``<export_base>/<model_name>/<version>/``, as TF Serving
reads it: written under a temporary name beside the version and renamed
when complete, so a reader (TF Serving ignores non-numeric directories)
never sees half of one, and a failed write leaves nothing behind.
"""

import os
import shutil

from keras_resnet_cifar import errors, files


class ExportError(errors.Error):
    """An export that cannot be written; the message says why."""


def next_version(model_base):
    """One more than the highest numbered version under ``model_base`` (1 when there is none)."""
    versions = [int(d) for d in os.listdir(model_base) if d.isdigit()] if os.path.isdir(model_base) else []
    return max(versions, default=0) + 1


def free_version(export_base, model_name, version=None):
    """The version directory an export would write: ``version``, or the next free one.

    Raises:
        ExportError: ``model_name`` is not one folder name, or ``version``
            is not an integer >= 1, or exists.
    """
    # TF Serving finds a model as <base>/<name>/<version>: a path here would write elsewhere.
    if not model_name or os.sep in model_name or model_name in (".", ".."):
        raise ExportError(f"the model name must be one folder name, without {os.sep}, got {model_name!r}")
    model_base = os.path.join(export_base, model_name)
    if version is None:
        version = next_version(model_base)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ExportError(f"version must be an integer >= 1, got {version!r}")
    final = os.path.join(model_base, str(version))
    if os.path.exists(final):
        raise ExportError(f"{final} exists: exported versions are never overwritten; pick another --version")
    return final


def write_version(export_base, model_name, version, write, log=None):
    """Runs ``write(tmp)`` into a temporary folder and renames it to the version directory.

    Args:
        export_base: the base folder.
        model_name: the model's sub-folder.
        version: integer version; None takes the next free one.
        write: fills the folder it is given; raises ``ExportError`` or
            ``OSError`` on failure.
        log: where to say that unfinished exports of stopped processes
            (``.tmp-<pid>-<version>`` folders) were removed; None: silently.

    Returns:
        The version directory written.

    Raises:
        ExportError: an existing or bad version, or a failed write (nothing
            is left behind then).
    """
    model_base = os.path.join(export_base, model_name)
    final = free_version(export_base, model_name, version)
    tmp = files.temporary_path(final)
    created_base = not os.path.exists(model_base)
    try:
        files.make_directory(model_base)
        removed = files.remove_stale_temporaries(model_base)
        if removed and log:
            log(f"Removed {len(removed)} unfinished export(s) of processes that were stopped: {', '.join(removed)}")
        # A leftover of a stopped process whose PID this one now has (containers repeat PIDs).
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        write(tmp)
        os.rename(tmp, final)
    except OSError as e:
        _clean_up(tmp, model_base, created_base)
        raise ExportError(f"cannot write {final}: {e.strerror or e}") from None
    except BaseException:
        _clean_up(tmp, model_base, created_base)
        raise
    return final


def _clean_up(tmp, model_base, created_base):
    """Removes a failed export's temporary, and the model's folder if this export made it."""
    shutil.rmtree(tmp, ignore_errors=True)
    if created_base and os.path.isdir(model_base) and not os.listdir(model_base):
        os.rmdir(model_base)
