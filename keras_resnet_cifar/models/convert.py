"""Imports the PyTorch reference weights (akamaster/pytorch_resnet_cifar10).

That project's option-A CIFAR ResNets are the paper's networks; its published
ResNet20/32/44/56 checkpoints (BSD 2-Clause) convert into our models weight for
weight. Key layout (``module.`` prefix optional)::

    conv1.weight, bn1.{weight,bias,running_mean,running_var}
    layer{1,2,3}.{i}.conv{1,2}.weight, layer{1,2,3}.{i}.bn{1,2}.*
    linear.weight, linear.bias

Convolutions are OIHW there and HWIO here; the dense kernel is transposed.
The reference fed [0, 1] pixels normalised with ImageNet statistics, so the
converted model carries those constants (on the 0..255 scale) and takes raw
pixels like every model of ours. Both use BatchNorm epsilon 1e-5.

torch is needed only to read the checkpoint (``pip install '.[torch]'``) and
is imported here alone.
"""

import os
import pickle
import re

import numpy as np

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.models.pretrained import REFERENCE_MEAN, REFERENCE_STD

_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, mean, variance
# Counters PyTorch keeps beside BatchNorm statistics; not weights.
_IGNORED = re.compile(r".*num_batches_tracked$")


class ConversionError(errors.Error):
    """A checkpoint that cannot be read or is not of the reference's layout."""


def read_checkpoint(path):
    """Reads a reference checkpoint into ``{key: float32 array}``, safely.

    ``torch.load(weights_only=True)`` restores tensors and plain containers
    only: no code from the file runs.

    Raises:
        ConversionError: torch missing, the file missing, truncated or not a
            state dict.
    """
    try:
        import torch
    except ImportError:
        raise ConversionError(
            "reading PyTorch checkpoints needs torch: pip install 'keras-resnet-cifar[torch]'"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConversionError(f"checkpoint {path} does not exist") from None
    except Exception as e:  # truncated zip or pickle, foreign objects, ...
        refused = re.search(r"unsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", str(e))
        if refused:
            # weights_only loading met an object that would run code: say so,
            # and never suggest turning the protection off.
            raise ConversionError(
                f"refused checkpoint {path}: it holds the Python global {refused.group(1) or refused.group(2)}, "
                "which no weights file needs (loading it could run code); only tensors and plain containers "
                "are read"
            ) from None
        if isinstance(e, pickle.UnpicklingError):
            # torch's text advises weights_only=False, which would run the file's code: not ours to give.
            raise ConversionError(f"cannot read checkpoint {path}: not a PyTorch file of tensors") from None
        raise ConversionError(f"cannot read checkpoint {path}: {files.error_text(e)}") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise ConversionError(f"{path} holds no state dict (got {type(obj).__name__})")
    arrays = {}
    for key, value in state.items():
        if not hasattr(value, "numpy"):
            raise ConversionError(f"{path}: {key} is not a tensor")
        arrays[key.removeprefix("module.")] = value.detach().cpu().numpy()
    return arrays


def infer_n(state):
    """Blocks per stage, from the ``layer1.{i}`` keys."""
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"layer1\.(\d+)\.", k))}
    if not blocks:
        raise ConversionError("no layer1.<i>.* keys: not a CIFAR ResNet of the reference layout")
    n = max(blocks) + 1
    if blocks != set(range(n)):
        raise ConversionError(f"layer1 blocks are not numbered 0..{n - 1}: {sorted(blocks)}")
    return n


def _mapping(n):
    """(torch key, Keras layer, index in layer.get_weights(), transform) for every weight."""
    rows = [("conv1.weight", "conv1_conv", 0, "conv")]
    rows += [(f"bn1.{f}", "conv1_bn", i, None) for i, f in enumerate(_BN_FIELDS)]
    for stage in range(3):
        for block in range(n):
            prefix, name = f"layer{stage + 1}.{block}", f"conv{stage + 2}_block{block + 1}"
            for j in (1, 2):
                rows.append((f"{prefix}.conv{j}.weight", f"{name}_{j}_conv", 0, "conv"))
                rows += [(f"{prefix}.bn{j}.{f}", f"{name}_{j}_bn", i, None) for i, f in enumerate(_BN_FIELDS)]
    rows += [("linear.weight", "predictions", 0, "dense"), ("linear.bias", "predictions", 1, None)]
    return rows


def convert_state_dict(state):
    """Builds our option-A model holding the reference's weights.

    Args:
        state: ``{key: array}`` as ``read_checkpoint`` returns.

    Returns:
        A float32 ``keras.Model`` (``resnet{6n+2}``) with the reference's
        preprocessing constants.

    Raises:
        ConversionError: naming the first missing, unexpected or misshapen key
            (an option-B checkpoint has unexpected shortcut keys).
    """
    state = {k: v for k, v in state.items() if not _IGNORED.match(k)}
    n = infer_n(state)
    rows = _mapping(n)
    expected = [key for key, *_ in rows]
    missing = [k for k in expected if k not in state]
    if missing:
        raise ConversionError(f"missing key {missing[0]} (n={n} from the layer1 keys; {len(missing)} missing)")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        hint = (
            " (a projection shortcut: option B is not the reference's option A)"
            if ("shortcut" in unexpected[0] or "downsample" in unexpected[0])
            else ""
        )
        raise ConversionError(f"unexpected key {unexpected[0]}{hint}; {len(unexpected)} unexpected")

    num_classes = state["linear.weight"].shape[0]
    model = resnet.resnet_cifar(
        n=n,
        shortcut="A",
        num_classes=num_classes,
        preprocessing_mean=REFERENCE_MEAN,
        preprocessing_std=REFERENCE_STD,
    )
    targets = {}
    for key, layer_name, index, transform in rows:
        value = np.asarray(state[key], np.float32)
        if transform == "conv":
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif transform == "dense":
            value = value.T
        layer = model.get_layer(layer_name)
        weights = targets.setdefault(layer_name, [w.copy() for w in layer.get_weights()])
        if weights[index].shape != value.shape:
            raise ConversionError(
                f"key {key} has shape {tuple(state[key].shape)}, {layer_name} needs "
                f"{_torch_shape(weights[index].shape, transform)}"
            )
        weights[index] = value
    # Each source key went to exactly one target slot, and no slot twice.
    slots = {(layer, index) for _, layer, index, _ in rows}
    if not len(slots) == len(rows) == len(state):
        raise ConversionError(f"{len(state)} source tensors for {len(slots)} target weights")
    weighted = [layer for layer in model.layers if layer.get_weights()]
    unset = [layer.name for layer in weighted if layer.name not in targets]
    if unset or sum(len(layer.get_weights()) for layer in weighted) != len(slots):
        raise ConversionError(f"weights left unset in layers {unset}")
    for layer_name, weights in targets.items():
        model.get_layer(layer_name).set_weights(weights)
    return model


def _torch_shape(shape, transform):
    if transform == "conv":
        h, w, i, o = shape
        return (o, i, h, w)
    if transform == "dense":
        return tuple(reversed(shape))
    return tuple(shape)


def reference_forward(state, images):
    """The reference network's forward pass in PyTorch, for parity checks.

    Written from the reference's architecture (its resnet.py): 3x3 convs with
    padding 1, BatchNorm in eval mode, option-A shortcuts as
    ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))``.

    Args:
        state: ``{key: array}`` of the reference's layout.
        images: uint8 or float NHWC images on the 0..255 scale.

    Returns:
        Logits as a float32 NumPy array.
    """
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items() if not _IGNORED.match(k)}
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.from_numpy(np.asarray(images, np.float32)).permute(0, 3, 1, 2) / 255.0
    x = (x - mean) / std

    def bn(x, prefix):
        return F.batch_norm(
            x,
            t[f"{prefix}.running_mean"],
            t[f"{prefix}.running_var"],
            t[f"{prefix}.weight"],
            t[f"{prefix}.bias"],
            training=False,
            eps=1e-5,
        )

    n = infer_n(state)
    with torch.no_grad():
        x = F.relu(bn(F.conv2d(x, t["conv1.weight"], padding=1), "bn1"))
        for stage, planes in enumerate((16, 32, 64)):
            for block in range(n):
                p = f"layer{stage + 1}.{block}"
                stride = 2 if stage > 0 and block == 0 else 1
                out = F.relu(bn(F.conv2d(x, t[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
                out = bn(F.conv2d(out, t[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
                if stride != 1 or x.shape[1] != planes:
                    x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
                x = F.relu(out + x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.linear(x, t["linear.weight"], t["linear.bias"]).numpy()


def verify(model, state, image_dir, per_class):
    """Compares ``model`` with the checkpoint's own PyTorch forward on real images.

    Args:
        model: the converted ``keras.Model``.
        state: the checkpoint's state dict (``read_checkpoint``).
        image_dir: a CIFAR-10 image folder (``<image_dir>/train/<class>/``).
        per_class: images of each class to compare.

    Returns:
        A dict: ``images``, ``seconds``, ``keras_accuracy``, ``pytorch_accuracy``,
        ``agreement`` (share of equal predictions), ``disagreements`` and
        ``max_logit_diff``.

    Raises:
        ConversionError: a class folder holds no images.
    """
    import time

    from keras_resnet_cifar.data import sources

    paths, labels = [], []
    for label, name in enumerate(sources.CIFAR10_CLASSES):
        folder = os.path.join(image_dir, "train", name)
        found = sources.list_images(folder)[:per_class]
        if not found:
            raise ConversionError(f"no images to verify with in {folder}")
        paths += found
        labels += [label] * len(found)
    images = sources.decode_files(paths)
    labels = np.asarray(labels)
    start = time.perf_counter()
    ours = model.predict(images.astype("float32"), batch_size=500, verbose=0)
    theirs = np.concatenate([reference_forward(state, images[i : i + 500]) for i in range(0, len(images), 500)])
    same = ours.argmax(1) == theirs.argmax(1)
    return {
        "images": len(images),
        "seconds": time.perf_counter() - start,
        "keras_accuracy": float(np.mean(ours.argmax(1) == labels)),
        "pytorch_accuracy": float(np.mean(theirs.argmax(1) == labels)),
        "agreement": float(np.mean(same)),
        "disagreements": int(np.sum(~same)),
        "max_logit_diff": float(np.abs(ours - theirs).max()),
    }
