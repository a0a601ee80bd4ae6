"""Pretrained CIFAR-10 weights shipped inside the package, keras.applications style.

``weights="cifar10"`` is available for the option-A residual ResNet20, 32, 44
and 56: the published checkpoints of the PyTorch reference
akamaster/pytorch_resnet_cifar10 (BSD 2-Clause, ``weights/LICENSE``),
converted once by ``convert.py`` (``tools/build_weights.py`` repeats it;
the reference's published errors: docs/pretrained.md).

The reference normalised its inputs with ImageNet statistics, so a model
built with these weights carries those constants (``REFERENCE_MEAN``,
``REFERENCE_STD``) and takes raw 0..255 pixels like every model here. The
files' SHA-256 are pinned below and checked on every load; nothing is
downloaded.
"""

import hashlib
import importlib.resources
import warnings

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.models import presets

# The reference fed [0, 1] pixels normalised with ImageNet statistics; on the
# 0..255 scale that is 255 times its constants.
REFERENCE_MEAN = tuple(255 * m for m in (0.485, 0.456, 0.406))
REFERENCE_STD = tuple(255 * s for s in (0.229, 0.224, 0.225))
CLASSIFIER = "predictions"


class WeightsError(errors.Error):
    """A shipped weights file that is missing or corrupt; the message names it."""


# The shipped files are records of the one registry (``presets.MODELS``).
Pretrained = presets.Pretrained
PRETRAINED = {(p.model, p.dataset): p for p in presets.all_pretrained()}
WEIGHT_NAMES = presets.WEIGHT_NAMES


def weights_dir():
    """The package folder that holds the shipped files."""
    return importlib.resources.files("keras_resnet_cifar.models") / "weights"


def is_named(weights):
    """True for a shipped weights name ("cifar10"), False for a file path or None."""
    return isinstance(weights, str) and weights in WEIGHT_NAMES


def check(weights, *, model_name, residual, shortcut, include_top, num_classes):
    """Checks a ``weights=`` argument before anything is built.

    Args:
        weights: None, a shipped name ("cifar10") or a path to a
            ``.weights.h5`` file.
        model_name: the variant name the arguments make (``resnet20``).
        residual: False for a plain net.
        shortcut: "A" or "B".
        include_top: whether the classifier is built.
        num_classes: its size.

    Returns:
        The ``Pretrained`` entry for a shipped name, else None.

    Raises:
        ValueError: an unknown name, a network without shipped weights, or a
            classifier of other than the weights' 10 classes.
    """
    if weights is None:
        return None
    if not isinstance(weights, str) or not weights:
        raise errors.ArgumentError(
            f"weights must be None, {_quoted(WEIGHT_NAMES)} or the path to a .weights.h5 "
            f"file. Received: weights={weights!r}"
        )
    if not is_named(weights):
        if not weights.endswith(".weights.h5"):
            raise errors.ArgumentError(
                f"weights must be None, {_quoted(WEIGHT_NAMES)} or the path to a "
                f".weights.h5 file. Received: weights={weights!r}"
            )
        return None
    variant = model_name if residual else None
    entry = PRETRAINED.get((variant, weights)) if shortcut == "A" else None
    if entry is None:
        available = ", ".join(p.model for p in PRETRAINED.values() if p.dataset == weights)
        raise errors.ArgumentError(
            f"weights={weights!r} exist for the residual option-A {available} only. "
            f"Received: {model_name} (residual={residual}, shortcut={shortcut!r})"
        )
    if include_top and num_classes != 10:
        raise errors.ArgumentError(
            f"weights={weights!r} have a 10-class classifier; pass num_classes=10, or "
            f"include_top=False to load everything but the classifier. Received: num_classes={num_classes}"
        )
    return entry


def path(entry):
    """The verified path of a shipped file.

    Raises:
        WeightsError: the file is missing or its SHA-256 is not the pinned one.
    """
    resource = weights_dir() / entry.filename
    try:
        data = resource.read_bytes()
    except OSError:
        raise WeightsError(
            f"pretrained weights file {resource} is missing from the installed package; reinstall keras-resnet-cifar"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise WeightsError(
            f"pretrained weights file {resource} is corrupt (SHA-256 {digest[:12]}..., expected "
            f"{entry.sha256[:12]}...); reinstall keras-resnet-cifar"
        )
    return str(resource)


def load(model, weights, entry, build_source):
    """Loads ``weights`` into ``model``; a classifier of another size is left as built.

    Args:
        model: the model to fill.
        weights: a shipped name or a ``.weights.h5`` path, as ``check`` passed.
        entry: what ``check`` returned (None for a path).
        build_source: a function of no arguments that builds the full
            10-class network ``entry``'s file fits.

    Raises:
        WeightsError: a shipped file is missing or corrupt.
        ValueError: a ``.weights.h5`` file that is missing or does not fit ``model``.
    """
    if entry is None:
        try:
            with warnings.catch_warnings():
                # Keras only warns when parts of the file do not fit and
                # leaves those layers as initialised: refuse such a file.
                warnings.filterwarnings("error", message="Skipping", category=UserWarning)
                model.load_weights(weights)
        except FileNotFoundError:
            raise errors.ArgumentError(f"weights file {weights} does not exist") from None
        except (ValueError, OSError, UserWarning) as e:
            raise errors.ArgumentError(
                f"cannot load weights file {weights} into {model.name}: {files.error_text(e)}"
            ) from None
        return
    source = build_source()
    source.load_weights(path(entry))
    copy_weights(source, model)


def copy_weights(source, target):
    """Copies every weighted layer of ``target`` from the same-named layer of ``source``.

    A classifier of a different size (a new head) is left as initialised.
    """
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name == CLASSIFIER and source.get_layer(CLASSIFIER).output.shape != layer.output.shape:
            continue
        layer.set_weights(source.get_layer(layer.name).get_weights())


def _quoted(names):
    return " or ".join(repr(n) for n in names)
