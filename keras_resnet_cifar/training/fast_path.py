"""The torch backend's fast path behind one door, pinned to the versions it was tested on.

The fast path (``torch_layers``: PyTorch's fused BatchNorm with in-place
moving statistics and a strided-slice subsample; ``lean_graph``: each layer's
``call`` run through ``Functional._run_through_graph``; ``optimizer``: the
decay as one ``torch._foreach_add``) reaches into Keras and torch internals.
A release that renames one of them must not break training, so the fast
path runs only where it was tested, and everywhere else training takes the
stock Keras path, saying so in one log line. ``tests/test_fast_path.py``
runs both and checks they give the same weights.
"""

import keras

# [lowest, first untested) release, as (major, minor).
KERAS_TESTED = ((3, 15), (3, 16))
TORCH_TESTED = ((2, 13), (2, 14))


def _release(version):
    return tuple(int(part) for part in version.split("+")[0].split(".")[:2])


def unavailable_reason():
    """Why the fast path cannot run in this process, or None when it can."""
    if keras.backend.backend() != "torch":
        return f"the fast path is for the torch backend, not {keras.backend.backend()}"
    import torch

    for name, version, (low, high) in (
        ("Keras", keras.__version__, KERAS_TESTED),
        ("torch", torch.__version__, TORCH_TESTED),
    ):
        if not low <= _release(version) < high:
            return (
                f"{name} {version} is outside the range the fast path was tested on "
                f"({'.'.join(map(str, low))} to below {'.'.join(map(str, high))})"
            )
    try:  # the class keras.Model(inputs, outputs) builds, which LeanGraph runs through
        from keras.src.models.functional import Functional
    except ImportError:
        return "keras.src.models.functional, which the fast path uses, is missing"
    from keras.src.backend.common import variables

    for owner, attribute in (
        (Functional, "_run_through_graph"),
        (torch, "_foreach_add"),
        (variables, "AutocastScope"),
    ):
        if not hasattr(owner, attribute):
            return f"{owner.__name__}.{attribute}, which the fast path uses, is missing"
    return None


def enabled():
    """Whether this process trains on the fast path."""
    return unavailable_reason() is None


def accelerate(model, log=None):
    """``model`` with the fast path's layers and graph where it can run, else ``model`` itself.

    Args:
        model: the training model (channels_first under torch), not yet built
            into an optimizer.
        log: where to say, once, that the stock path is taken under torch.

    Returns:
        A model with the same weights in the same order.
    """
    reason = unavailable_reason()
    if reason:
        if log and keras.backend.backend() == "torch":
            log(f"Training on the stock Keras path: {reason}")
        return model
    from keras_resnet_cifar.training import lean_graph, torch_layers

    return lean_graph.wrap(torch_layers.swap(model))
