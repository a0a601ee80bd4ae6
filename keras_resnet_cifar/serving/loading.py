"""One way for every tool to get a model: a ``.keras`` file or a pretrained name.

A model spec is either the path of a ``.keras`` file (with ``labels.txt``
beside it, as training writes) or ``<variant>:<weights>``, for example
``resnet20:cifar10``, which builds the variant with the shipped weights.
"""

import dataclasses
import json
import os
import zipfile

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.models import pretrained
from keras_resnet_cifar.models.presets import CIFAR10_CLASSES, VARIANTS


class ModelFileError(errors.Error):
    """A model spec that names no readable model; the message says which and why."""


@dataclasses.dataclass
class LoadedModel:
    """A model with what the tools need to report on it.

    Attributes:
        model: the ``keras.Model``.
        class_names: names in label order, or None when unknown.
        card: model-card entries (dataset, source) for an export.
        source: the spec it came from.
        run_dir: the folder of a ``.keras`` file (config.json and
            metrics.json of its run may lie there); None for a pretrained name.
    """

    model: object
    class_names: list | None
    card: dict
    source: str
    run_dir: str | None

    def run_record(self, name):
        """The run's ``config.json`` or ``metrics.json`` as a dict; {} when there is none.

        Raises:
            ModelFileError: the file exists but is not a JSON object.
        """
        path = os.path.join(self.run_dir or "", name)
        if not self.run_dir or not os.path.exists(path):
            return {}
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError) as e:
            raise ModelFileError(f"{path} is not readable JSON: {files.error_text(e)}") from None
        if not isinstance(record, dict):
            raise ModelFileError(f"{path} holds {type(record).__name__}, not a JSON object")
        return record


def parse_spec(spec):
    """``(variant, weights)`` for a ``name:weights`` spec, None for a file path.

    Raises:
        ModelFileError: a ``name:weights`` spec with an unknown variant or weights.
    """
    if spec.endswith(".keras") or ":" not in spec or os.path.exists(spec):
        return None
    name, weights = spec.split(":", 1)
    shipped = sorted(f"{p.model}:{p.dataset}" for p in pretrained.PRETRAINED.values())
    if name not in VARIANTS or (name, weights) not in pretrained.PRETRAINED:
        raise ModelFileError(f"no pretrained model {spec!r}; available: {', '.join(shipped)}")
    return name, weights


def load(spec):
    """Loads a model spec for inference.

    Args:
        spec: a ``.keras`` path or ``<variant>:<weights>`` (``resnet56:cifar10``).

    Returns:
        A ``LoadedModel``.

    Raises:
        ModelFileError: the file is missing, not a ``.keras`` file, corrupt
            or truncated, or the name is unknown.
        pretrained.WeightsError: a shipped weights file is missing or corrupt.
    """
    named = parse_spec(spec)
    if named:
        from keras_resnet_cifar.models import resnet

        name, weights = named
        model = resnet.from_preset(name, weights=weights)
        card = {
            "dataset": weights,
            "source": f"pretrained weights {spec} (akamaster/pytorch_resnet_cifar10, BSD 2-Clause)",
        }
        return LoadedModel(model, list(CIFAR10_CLASSES), card, spec, None)
    if os.path.isdir(spec) and os.path.isfile(os.path.join(spec, "model.keras")):
        spec = os.path.join(spec, "model.keras")  # a run directory stands for its model
    run_dir = os.path.dirname(os.path.abspath(spec))
    return LoadedModel(load_keras_file(spec), read_labels(os.path.join(run_dir, "labels.txt")), {}, spec, run_dir)


def is_saved_model(path):
    """Whether ``path`` is a SavedModel directory (it holds a ``saved_model.pb``)."""
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def load_keras_file(path):
    """``keras.models.load_model(path)`` with one-line errors for bad files."""
    if os.path.isdir(path):
        if is_saved_model(path):
            raise ModelFileError(f"{path} is a SavedModel export: give the .keras file or run directory it came from")
        raise ModelFileError(
            f"{path} is a directory without a model.keras: give a .keras file, a run directory or a name such as "
            "resnet20:cifar10"
        )
    if not os.path.isfile(path):
        raise ModelFileError(f"model file {path} does not exist")
    if not path.endswith(".keras"):
        raise ModelFileError(
            f"{path} is not a .keras file (give a .keras model file or a name such as resnet20:cifar10)"
        )
    # Keras reports a damaged archive as "File not found"; the zip directory
    # at the end of the file tells a truncated or foreign file apart first.
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a valid .keras file (corrupt or truncated: no zip archive)")
    _check_archive(path)
    import keras

    try:
        return keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - any failure inside the archive means a file Keras cannot load
        raise ModelFileError(f"{path} cannot be loaded by Keras: {files.error_text(e, limit=400)}") from None


def _check_archive(path):
    """Refuses, before Keras reads it, a ``.keras`` archive that this package never writes.

    Members named outside the archive (absolute, or with ``..``: "zip
    slip") and Python code in the config (a ``Lambda`` layer or a lambda,
    which Keras's safe mode refuses to run) are named in one line.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            outside = [n for n in names if _outside(n)]
            if outside:
                raise ModelFileError(
                    f"{path} is not a .keras file this package wrote: {len(outside)} of its members are named "
                    f"outside the archive ({outside[0]!r}); refused without extracting anything"
                )
            config = json.loads(archive.read("config.json")) if "config.json" in names else None
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise ModelFileError(
            f"{path} is not a valid .keras file (corrupt or truncated): {files.error_text(e)}"
        ) from None
    code = _code_layers(config, [])
    if code:
        raise ModelFileError(
            f"{path} holds Python code ({code[0]}), which Keras does not run from a model file (safe mode): "
            "rebuild the model without Lambda layers or lambdas; the zoo's models have none"
        )


def _outside(name):
    posix = name.replace("\\", "/")
    return posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in posix.split("/")


def _code_layers(node, found):
    """Lambda layers and lambdas in a ``.keras`` config, by name."""
    if isinstance(node, dict):
        if node.get("class_name") in ("Lambda", "__lambda__"):
            config = node.get("config")
            name = config.get("name") if isinstance(config, dict) else None
            found.append(f"Lambda layer {name!r}" if node["class_name"] == "Lambda" and name else "a lambda")
        for value in node.values():
            _code_layers(value, found)
    elif isinstance(node, list):
        for value in node:
            _code_layers(value, found)
    return found


def read_labels(path):
    """Class names from a ``labels.txt`` (one per line, in label order), or None if there is none."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]
