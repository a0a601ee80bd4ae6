"""Block diagrams of a CIFAR ResNet, drawn with matplotlib from the built model.

Each box is a layer (or, in the stage and overview pictures, a block or a
convolution) labelled with what it computes and the shape it outputs, read
from the model, so a picture cannot drift from the code. Skip connections are
drawn as lines beside the main path: solid for identity shortcuts, dashed
where the shape changes (option A or B), as in the paper's Fig. 3.

Example:

>>> from keras_resnet_cifar import diagrams, resnet
>>> paths = diagrams.draw_all(3, "docs/figures")  # doctest: +SKIP
"""

import dataclasses
import os
import re

from keras import layers

from keras_resnet_cifar import errors
from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.study import describe, plotting

# One colour per part: input and conv1, then stages 1-3, then the head.
_COLOURS = {"input": "#eeeeee", "conv1": "#fde2c8", 2: "#d7e8fb", 3: "#dcf1d6", 4: "#f6d9ec", "head": "#fff4b8"}
_SHORTCUT = "#b03a2e"


@dataclasses.dataclass
class Node:
    """One box of a diagram."""

    label: str
    shape: str = ""
    colour: str = "#ffffff"
    add: bool = False  # drawn as a circled "+"


@dataclasses.dataclass
class Skip:
    """A shortcut from after node ``start`` to node ``end`` (an add node) or after it."""

    start: int
    end: int
    label: str = ""
    dashed: bool = False
    boxes: list = dataclasses.field(default_factory=list)  # shortcut layers, drawn beside the path


def layer_label(layer):
    """What a layer computes, in the paper's words ("3x3 conv, 32, /2")."""
    if isinstance(layer, layers.Conv2D):
        text = f"{layer.kernel_size[0]}x{layer.kernel_size[1]} conv, {layer.filters}"
        return text + (f", /{layer.strides[0]}" if layer.strides[0] > 1 else "")
    if isinstance(layer, layers.BatchNormalization):
        return "BN"
    if isinstance(layer, layers.Activation):
        return layer.activation.__name__.replace("relu", "ReLU")
    if isinstance(layer, layers.Add):
        return "+"
    if isinstance(layer, layers.MaxPooling2D):
        return f"subsample x[::{layer.strides[0]}, ::{layer.strides[1]}]"
    if isinstance(layer, layers.ZeroPadding2D):
        if layer.data_format == "channels_first":  # the option-A channel padding
            before, after = layer.padding[1]
            return f"zero channels +{before} / +{after}"
        return f"zero-pad {layer.padding[0][0]}"
    if isinstance(layer, layers.GlobalAveragePooling2D):
        return "global average pool"
    if isinstance(layer, layers.Dense):
        return f"fc, {layer.units}"
    if isinstance(layer, layers.Normalization):
        return "(x - mean) / std"
    return type(layer).__name__


def _dims(shape):
    """ "32x32x16" for a batched shape ``(None, 32, 32, 16)``."""
    return "x".join(str(s) for s in shape[1:])


def _shape(layer):
    return _dims(layer.output.shape)


def _colour(name):
    match = re.match(r"conv(\d+)_block", name)
    if match:
        return _COLOURS.get(int(match.group(1)), "#ffffff")
    if name.startswith(("conv1", "preprocessing")):
        return _COLOURS["conv1"]
    return _COLOURS["head"]


def _layer_node(layer):
    return Node(layer_label(layer), _shape(layer), _colour(layer.name), add=isinstance(layer, layers.Add))


def block_nodes(model, prefix):
    """Nodes and the skip of one basic block (``prefix`` like "conv3_block1").

    The main path shows every layer (conv, BN, ReLU, conv, BN, +, ReLU); the
    shortcut layers of option A or B are boxes on the skip line.
    """
    block = [layer for layer in model.layers if layer.name.startswith(prefix + "_")]
    if not block:
        raise errors.ArgumentError(f"{model.name} has no block {prefix!r}")
    first = block[0]
    source = first.input if not isinstance(first.input, list) else first.input[0]
    nodes = [Node("input", _dims(source.shape), _COLOURS["input"])]
    shortcut = [layer for layer in block if layer.name.startswith(prefix + "_0_")]
    add_index = None
    for layer in block:
        # The 1-pixel padding of a stride-2 conv is part of that conv's label.
        if layer in shortcut or (isinstance(layer, layers.ZeroPadding2D) and layer.name.endswith("_1_pad")):
            continue
        if isinstance(layer, layers.Add):
            add_index = len(nodes)
        nodes.append(_layer_node(layer))
    if add_index is None:
        return nodes, []
    if shortcut:
        skip = Skip(0, add_index, _shortcut_label(model, prefix), dashed=True, boxes=[_layer_node(s) for s in shortcut])
    else:
        skip = Skip(0, add_index, "identity")
    return nodes, [skip]


def _block_convs(model, prefix):
    return [
        layer
        for layer in model.layers
        if layer.name.startswith(prefix + "_")
        and isinstance(layer, layers.Conv2D)
        and not layer.name.startswith(prefix + "_0_")
    ]


def _blocks(model, stage):
    names = {
        re.match(r"(conv\d+_block\d+)_", layer.name).group(1)
        for layer in model.layers
        if layer.name.startswith(f"conv{stage}_block")
    }
    return sorted(names, key=lambda name: int(name.split("block")[1]))


def _shortcut_label(model, prefix):
    """ "A: zero-padding" or "B: projection" for a shape-changing shortcut, else ""."""
    kind, _, _ = describe.block_shortcut({layer.name: layer for layer in model.layers}, prefix + "_")
    return {"A": "A: zero-padding", "B": "B: projection"}.get(kind, "")


def stage_nodes(model, stage):
    """One node per block of stage ``stage`` (2, 3 or 4 in layer names), with skips."""
    prefixes = _blocks(model, stage)
    if not prefixes:
        raise errors.ArgumentError(f"{model.name} has no stage conv{stage}")
    first = model.get_layer(prefixes[0] + "_1_conv")
    source = model.get_layer(prefixes[0] + "_1_pad").input if first.strides[0] > 1 else first.input
    nodes = [Node("input", _dims(source.shape), _COLOURS["input"])]
    names = {layer.name for layer in model.layers}
    skips = []
    for i, prefix in enumerate(prefixes):
        convs = " + ".join(layer_label(c) for c in _block_convs(model, prefix))
        nodes.append(
            Node(f"{prefix.split('_')[1]}: {convs}", _shape(model.get_layer(prefix + "_out")), _colour(prefix))
        )
        if prefix + "_add" in names:
            label = _shortcut_label(model, prefix)
            skips.append(Skip(i, i + 1, label, dashed=bool(label)))
    nodes.append(Node("output", nodes[-1].shape, _COLOURS["input"]))
    return nodes, skips


def network_nodes(model):
    """The whole network as in the paper's Fig. 3: one box per weighted layer, skips per block."""
    nodes = [Node("image", _dims(model.input.shape), _COLOURS["input"])]
    names = {layer.name for layer in model.layers}
    conv1 = model.get_layer("conv1_conv")
    nodes.append(Node(layer_label(conv1), _shape(conv1), _COLOURS["conv1"]))
    skips = []
    for stage in (2, 3, 4):
        for prefix in _blocks(model, stage):
            start = len(nodes) - 1
            for conv in _block_convs(model, prefix):
                nodes.append(Node(layer_label(conv), _shape(conv), _colour(prefix)))
            if prefix + "_add" in names:
                skips.append(Skip(start, len(nodes) - 1, dashed=bool(_shortcut_label(model, prefix))))
    if "avg_pool" in names:
        nodes.append(Node("avg pool", _shape(model.get_layer("avg_pool")), _COLOURS["head"]))
    if "predictions" in names:
        dense = model.get_layer("predictions")
        nodes.append(Node(layer_label(dense), _shape(dense), _COLOURS["head"]))
    return nodes, skips


def head_nodes(model):
    """Global pooling and the classifier, from the last stage's output."""
    pool = model.get_layer("avg_pool")
    dense = model.get_layer("predictions")
    return [
        Node("input", _dims(pool.input.shape), _COLOURS["input"]),
        _layer_node(pool),
        _layer_node(dense),
        Node("softmax (in the loss)", _shape(dense), _COLOURS["input"]),
    ], []


def initial_nodes(model):
    """The image, preprocessing and the first convolution with its BN and ReLU."""
    chain = [layer for layer in model.layers if layer.name in ("preprocessing",) or layer.name.startswith("conv1_")]
    return [Node("image", _dims(model.input.shape), _COLOURS["input"])] + [_layer_node(layer) for layer in chain], []


def draw(columns, title, path, *, spacing=1.0, box_height=0.62, box_width=3.4, font_size=9):
    """Draws columns of nodes with their skips and writes the figure to ``path``.

    Args:
        columns: a list of ``(heading, nodes, skips)``, drawn side by side.
        title: the figure title.
        path: where to write; the extension (.png, .svg) picks the format.

    Returns:
        ``path``.
    """
    plt = plotting.pyplot()
    rows = max(len(nodes) for _, nodes, _ in columns)
    pitch = box_width + 4.4  # room for the skip lines, their boxes and labels
    margin = 4.6 if any(skips for _, _, skips in columns) else 0.4
    left, right = -box_width / 2 - 0.4, (len(columns) - 1) * pitch + box_width / 2 + margin
    bottom, top = -(rows - 1) * spacing - 0.8, 1.6 * spacing
    scale = 0.7  # inches per unit, the same across and down (equal aspect)
    fig, ax = plt.subplots(figsize=(scale * (right - left), scale * (top - bottom) + 0.6))
    for c, (heading, nodes, skips) in enumerate(columns):
        _draw_column(ax, c * pitch, nodes, skips, spacing, box_height, box_width, font_size)
        if heading:
            ax.text(
                c * pitch, 0.9 * spacing, heading, ha="center", va="bottom", fontsize=font_size + 2, fontweight="bold"
            )
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=font_size + 3)
    return plotting.save(fig, path)[0]


def _draw_column(ax, x, nodes, skips, spacing, h, w, font_size):
    from matplotlib.patches import Circle, FancyBboxPatch

    ys = [-i * spacing for i in range(len(nodes))]
    for i, (node, y) in enumerate(zip(nodes, ys)):
        if node.add:
            ax.add_patch(Circle((x, y), h / 2.2, facecolor="white", edgecolor="black", lw=1.2))
            ax.text(x, y, "+", ha="center", va="center", fontsize=font_size + 4)
        else:
            ax.add_patch(
                FancyBboxPatch(
                    (x - w / 2, y - h / 2),
                    w,
                    h,
                    boxstyle="round,pad=0.02,rounding_size=0.08",
                    facecolor=node.colour,
                    edgecolor="black",
                    lw=0.8,
                )
            )
            ax.text(x, y + (0.16 * h if node.shape else 0), node.label, ha="center", va="center", fontsize=font_size)
            if node.shape:
                ax.text(x, y - 0.3 * h, node.shape, ha="center", va="center", fontsize=font_size - 2, color="#444444")
        if i:
            top = ys[i - 1] - h / 2
            bottom = y + (h / 2.2 if node.add else h / 2)
            ax.annotate("", (x, bottom), (x, top), arrowprops=dict(arrowstyle="-|>", lw=0.8, color="black"))
    for k, skip in enumerate(skips):
        _draw_skip(ax, x, ys, nodes, skip, spacing, h, w, font_size, offset=0.35 + 0.25 * (k % 2))


def _draw_skip(ax, x, ys, nodes, skip, spacing, h, w, font_size, offset):
    """A shortcut line on the right of the column, with its own layers as boxes on it."""
    style = dict(color=_SHORTCUT, lw=1.4, linestyle="--" if skip.dashed else "-")
    y0 = ys[skip.start] - h / 2 - (spacing - h) / 2  # leaves the main path between two boxes
    into_add = nodes[skip.end].add
    y1 = ys[skip.end] if into_add else ys[skip.end] - h / 2 - (spacing - h) / 2
    right = x + w / 2 + offset + (1.4 if skip.boxes else 0)
    ax.plot([x, right, right], [y0, y0, y1], **style)
    end_x = x + h / 2.2 if into_add else x
    ax.annotate("", (end_x, y1), (right, y1), arrowprops=dict(arrowstyle="-|>", **style))
    if skip.boxes:
        from matplotlib.patches import FancyBboxPatch

        bw, bh = 2.7, 0.5
        span = y0 - y1
        for j, node in enumerate(skip.boxes):
            yb = y0 - span * (j + 1) / (len(skip.boxes) + 1)
            ax.add_patch(
                FancyBboxPatch(
                    (right - bw / 2, yb - bh / 2),
                    bw,
                    bh,
                    boxstyle="round,pad=0.02",
                    facecolor="#fbe3e0",
                    edgecolor=_SHORTCUT,
                    lw=0.9,
                    zorder=3,
                )
            )
            ax.text(right, yb + 0.08, node.label, ha="center", va="center", fontsize=font_size - 1, zorder=4)
            ax.text(
                right,
                yb - 0.13,
                node.shape,
                ha="center",
                va="center",
                fontsize=font_size - 3,
                color="#444444",
                zorder=4,
            )
    if skip.label and skip.boxes:
        # Above the line's top corner, clear of the shortcut's boxes.
        ax.text(right, y0 + 0.08, skip.label, ha="center", va="bottom", fontsize=font_size - 1, color=_SHORTCUT)
    elif skip.label:
        ax.text(
            right + 0.45, (y0 + y1) / 2, skip.label, ha="left", va="center", fontsize=font_size - 1, color=_SHORTCUT
        )


def draw_all(n, out_dir, fmt="png"):
    """Writes every diagram of the ResNet with ``n`` blocks per stage.

    Files: ``initial_conv``, ``block_identity`` (stage 1, block 1),
    ``block_option_a`` and ``block_option_b`` (the first block of stage 2),
    ``stage3`` (option A), ``head`` and ``overview`` (plain and residual side
    by side), each ``.<fmt>``.

    Returns:
        The paths written, by name.
    """
    depth = 6 * n + 2
    option_a = resnet.resnet_cifar(n=n, shortcut="A")
    option_b = resnet.resnet_cifar(n=n, shortcut="B")
    plain = resnet.resnet_cifar(n=n, residual=False)
    out = {}

    def one(name, title, *columns, **kwargs):
        out[name] = draw(list(columns), title, os.path.join(out_dir, f"{name}.{fmt}"), **kwargs)

    one("initial_conv", "conv1: the initial 3x3 convolution", ("", *initial_nodes(option_a)))
    one("block_identity", "Stage 1, block 1: identity shortcut", ("", *block_nodes(option_a, "conv2_block1")))
    one(
        "block_option_a",
        "Stage 2, block 1, option A: subsample + zero channels (no parameters)",
        ("", *block_nodes(option_a, "conv3_block1")),
    )
    one(
        "block_option_b",
        "Stage 2, block 1, option B: 1x1 projection + BN",
        ("", *block_nodes(option_b, "conv3_block1")),
    )
    one("stage3", f"Stage 3 (conv4): {n} blocks, 64 filters, 8x8 maps", ("", *stage_nodes(option_a, 4)), box_width=6.2)
    one("head", "Head: global average pooling and the classifier", ("", *head_nodes(option_a)))
    one(
        "overview",
        f"plain-{depth} and ResNet-{depth} (option A)",
        (f"plain-{depth}", *network_nodes(plain)),
        (f"ResNet-{depth}", *network_nodes(option_a)),
        spacing=0.8,
        box_height=0.5,
        font_size=8,
    )
    return out
