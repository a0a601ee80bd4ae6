"""Stage-by-stage breakdown of a CIFAR ResNet, read off the built model.

Every entry (kernel, filters, strides, padding, shapes, parameters, weighted
layers, the kind of shortcut) comes from the model's layers and their
configs, so what the tool prints is what the builder made, not what a
formula says it should have made.

Example:

>>> from keras_resnet_cifar import resnet
>>> parts = breakdown(resnet.resnet_cifar(20))
>>> [(p.name, p.output_shape, p.params) for p in parts][:2]
[('conv1', (32, 32, 16), 464), ('stage 1', (32, 32, 16), 14016)]
"""

import dataclasses
import math
import re

from keras import layers

from keras_resnet_cifar import errors
from keras_resnet_cifar.models import stats

_BLOCK = re.compile(r"^conv(\d+)_block(\d+)_")


@dataclasses.dataclass
class Part:
    """One row of the breakdown: the initial convolution, a stage or the head.

    Attributes:
        name: "conv1", "stage 1" ... "stage 3" or "head".
        layers: the part's Keras layer names, in model order.
        what: what the part computes, in words.
        stride: the stride of its first convolution (1 for the head).
        output_shape: ``(height, width, channels)`` or ``(classes,)``.
        params: trainable parameters.
        weighted_layers: convolutions and dense layers, 1x1 projections
            excluded (the paper's count).
        blocks: basic blocks (stages only).
        shortcut: "identity", "A", "B" or "none" for the stage's first block.
        shortcut_text: that shortcut in words.
        shortcut_params: trainable parameters of that shortcut.
    """

    name: str
    layers: list
    what: str
    stride: int
    output_shape: tuple
    params: int
    weighted_layers: int
    blocks: int = 0
    shortcut: str = ""
    shortcut_text: str = ""
    shortcut_params: int = 0


def breakdown(model):
    """The model's parts, in order: conv1, each stage, the head.

    Args:
        model: a model from ``resnet.resnet_cifar`` (its layer names).

    Returns:
        A list of ``Part``; their params and weighted layers add up to the
        model's.

    Raises:
        ValueError: if ``model`` does not have the CIFAR ResNet layer names.
    """
    by_name = {layer.name: layer for layer in model.layers}
    if "conv1_conv" not in by_name:
        raise errors.ArgumentError(f"{model.name} has no layer conv1_conv: not a CIFAR ResNet of this package.")
    parts = [_initial(model, by_name)]
    stages = sorted({int(m.group(1)) for m in map(_BLOCK.match, by_name) if m})
    for index, stage in enumerate(stages, start=1):
        parts.append(_stage(model, by_name, stage, index))
    if "predictions" in by_name:
        parts.append(_head(model, by_name))
    return parts


def summary_table(model):
    """The paper's section 4.2 table for this model.

    Returns:
        ``(header, rows)``: header ``["output map size", ...]`` per stage,
        rows for the weighted layers (the first stage counts conv1 as
        "1+k", as the paper writes 1+2n) and the filters.
    """
    parts = breakdown(model)
    conv1 = parts[0]
    stages = [p for p in parts if p.name.startswith("stage")]
    header = ["output map size"] + [f"{p.output_shape[0]}x{p.output_shape[1]}" for p in stages]
    counts = [f"{conv1.weighted_layers}+{stages[0].weighted_layers}"] + [str(p.weighted_layers) for p in stages[1:]]
    return header, [["# layers"] + counts, ["# filters"] + [str(p.output_shape[-1]) for p in stages]]


def render(model, fmt="text"):
    """The breakdown and the paper's table as text or markdown.

    Args:
        model: a CIFAR ResNet of this package.
        fmt: "text" (aligned columns) or "markdown" (pipe tables).

    Returns:
        A string ending in a newline.
    """
    if fmt not in ("text", "markdown"):
        raise errors.ArgumentError(f"fmt must be 'text' or 'markdown'. Received: fmt={fmt!r}")
    parts = breakdown(model)
    rows = [
        [
            p.name,
            p.what,
            str(p.stride),
            p.shortcut_text or "-",
            f"{p.shortcut_params:,}" if p.shortcut_text else "-",
            _shape(p.output_shape),
            f"{p.params:,}",
            str(p.weighted_layers),
        ]
        for p in parts
    ]
    rows.append(
        [
            "total",
            "",
            "",
            "",
            "",
            _shape(model.output_shape[1:]),
            f"{stats.trainable_params(model):,}",
            str(stats.weighted_layers(model)),
        ]
    )
    header, paper = summary_table(model)
    n = parts[1].blocks
    title = f"{model.name}: n = {n}, {stats.weighted_layers(model)} weighted layers"
    lines = [("## " if fmt == "markdown" else "") + title, ""]
    lines += _table(
        [
            "part",
            "layers",
            "stride",
            "shortcut (first block)",
            "shortcut params",
            "output",
            "params",
            "weighted layers",
        ],
        rows,
        fmt,
    )
    lines += [
        "",
        "Each 3x3 conv is followed by BN; a block is conv, BN, ReLU, conv, BN, then the "
        "shortcut is added (residual nets) and a ReLU follows. Params are trainable ones, "
        "BN's gamma and beta included; weighted layers are the paper's count "
        "(convolutions and dense, 1x1 projections excluded).",
    ]
    lines += ["", ("### " if fmt == "markdown" else "") + "The paper's table (section 4.2)", ""]
    lines += _table(header, paper, fmt)
    return "\n".join(lines) + "\n"


def _initial(model, by_name):
    names = [layer.name for layer in model.layers if layer.name.startswith("conv1_")]
    conv = by_name["conv1_conv"]
    what = f"{_conv_text(conv, by_name)}, BN, ReLU"
    if "preprocessing" in by_name:
        names.insert(0, "preprocessing")
        what = "(x - mean) / std, " + what
    return Part(
        "conv1",
        names,
        what,
        conv.strides[0],
        tuple(conv.output.shape[1:]),
        _params(by_name, names),
        _weighted(by_name, names),
    )


def _stage(model, by_name, stage, index):
    prefix = f"conv{stage}_"
    names = [layer.name for layer in model.layers if layer.name.startswith(prefix)]
    blocks = len({_BLOCK.match(name).group(2) for name in names})
    first = f"{prefix}block1_"
    conv = by_name[first + "1_conv"]
    convs = [by_name[n] for n in names if n.startswith(first) and n.endswith(("_1_conv", "_2_conv"))]
    body = ", ".join(f"{c.kernel_size[0]}x{c.kernel_size[1]} conv {c.filters}" for c in convs)
    shortcut, shortcut_names, shortcut_text = block_shortcut(by_name, first)
    what = f"{blocks} x [{body}]"
    last = by_name[f"{prefix}block{blocks}_out"]
    return Part(
        f"stage {index}",
        names,
        what,
        conv.strides[0],
        tuple(last.output.shape[1:]),
        _params(by_name, names),
        _weighted(by_name, names),
        blocks=blocks,
        shortcut=shortcut,
        shortcut_text=shortcut_text,
        shortcut_params=_params(by_name, shortcut_names),
    )


def block_shortcut(by_name, first):
    """Kind, layer names and description of a block's shortcut.

    Args:
        by_name: the model's layers by name.
        first: the block's name prefix with its underscore, ``"conv3_block1_"``.

    Returns:
        ``(kind, names, text)``: kind "B" (projection), "A" (subsample and
        zero channels), "identity" or "none" (plain net), the shortcut's
        own layer names, and a description.
    """
    if first + "0_conv" in by_name:
        conv = by_name[first + "0_conv"]
        names = [first + "0_conv", first + "0_bn"]
        return (
            "B",
            names,
            (f"B: {conv.kernel_size[0]}x{conv.kernel_size[1]} conv {conv.filters}, stride {conv.strides[0]}, BN"),
        )
    names = [n for n in (first + "0_subsample", first + "0_pad") if n in by_name]
    if names:
        parts = []
        if first + "0_subsample" in by_name:
            parts.append(f"subsample stride {by_name[first + '0_subsample'].strides[0]}")
        if first + "0_pad" in by_name:
            pad = by_name[first + "0_pad"]
            before, after = pad.padding[1]
            channels = pad.output.shape[-1]
            parts.append(f"zero-pad channels {channels - before - after} -> {channels}")
        return "A", names, f"A: {', '.join(parts)}"
    if first + "add" in by_name:
        return "identity", [], "identity"
    return "none", [], "none (plain)"


def _head(model, by_name):
    names = [n for n in ("avg_pool", "predictions") if n in by_name]
    dense = by_name["predictions"]
    pool_in = by_name["avg_pool"].input.shape if "avg_pool" in by_name else None
    pool = f"global avg pool {_shape(pool_in[1:])}, " if pool_in is not None else ""
    what = f"{pool}dense {dense.input.shape[-1]} -> {dense.units}"
    if dense.activation.__name__ != "linear":
        what += f", {dense.activation.__name__}"
    return Part(
        "head", names, what, 1, tuple(dense.output.shape[1:]), _params(by_name, names), _weighted(by_name, names)
    )


def _conv_text(conv, by_name):
    pad = by_name.get(conv.name.replace("_conv", "_pad"))
    if conv.padding == "same":
        padding = (conv.kernel_size[0] - 1) // 2
    elif pad is not None:
        padding = pad.padding[0][0]
    else:
        padding = 0
    return f"{conv.kernel_size[0]}x{conv.kernel_size[1]} conv {conv.filters}, pad {padding}"


def _params(by_name, names):
    return sum(math.prod(w.shape) for n in names for w in by_name[n].trainable_weights)


def _weighted(by_name, names):
    return sum(
        1
        for n in names
        if isinstance(by_name[n], (layers.Conv2D, layers.Dense)) and not stats.is_projection(by_name[n])
    )


def _shape(shape):
    return "x".join(str(s) for s in shape)


def _table(header, rows, fmt):
    if fmt == "markdown":
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return out + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    fmt_row = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return [fmt_row(header), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in rows]


# A generated table in a markdown file sits between these two lines, the first
# naming the tools/describe.py flags that made it.
_GENERATED = re.compile(r"(<!-- describe (?P<flags>[^>]*?) -->\n)(?P<body>.*?)(<!-- end describe -->)", re.S)


def model_from_flags(flags):
    """The model that ``tools/describe.py <flags>`` describes (--depth/--n, --shortcut, --plain)."""
    from keras_resnet_cifar.models import resnet

    kwargs = {"n": 3, "residual": True, "shortcut": "A"}
    for flag in flags.split():
        key, _, value = flag.lstrip("-").partition("=")
        if key == "depth":
            kwargs["n"] = resnet.resolve_n(int(value), None)
        elif key == "n":
            kwargs["n"] = int(value)
        elif key == "shortcut":
            kwargs["shortcut"] = value
        elif key == "plain":
            kwargs["residual"] = False
        elif key != "format":
            raise errors.ArgumentError(f"unknown describe flag in a generated table: {flag!r}")
    return resnet.resnet_cifar(**kwargs)


def refresh_markdown(text):
    """``text`` with every generated table replaced by what the tool prints now.

    Returns:
        ``(new text, list of the flags whose tables changed)``.
    """
    changed = []

    def replace(match):
        body = "\n" + render(model_from_flags(match["flags"]), "markdown") + "\n"
        if body != match["body"]:
            changed.append(match["flags"])
        return match.group(1) + body + match.group(4)

    return _GENERATED.sub(replace, text), changed
