"""A Keras functional model's training forward pass as one plain PyTorch function.

``torch.compile`` cannot trace a Keras model whole: Keras's variables and
its per-call bookkeeping break the graph at every layer (17 graphs for a
ResNet20). The zoo's networks are made of a dozen built-in layer types, so
``TorchGraph`` follows the model's layers through their public input and
output tensors and runs each layer as the few ``torch`` operations it
stands for, on the tensors of the model's own variables. That function
traces as one graph, and Inductor fuses BatchNorm, ReLU and the additions
around the convolutions, as it does for a PyTorch network.

It computes what the layers compute in training (BatchNorm with the
batch's biased variance, its moving statistics updated in place as Keras
updates them), in each layer's dtype policy (mixed_bfloat16 included). A
model with any other layer, or a frozen one, raises ``Unsupported``, and
the runner trains it on Keras's own step.
"""

import keras


class Unsupported(Exception):
    """The model holds a layer or setting ``TorchGraph`` does not run."""


class TorchGraph:
    """``model``'s training forward pass in PyTorch operations.

    ``values()`` gives the tensors of ``variables`` (the model's, in one
    order), and ``forward(values, images)`` returns the logits, updating
    the BatchNorm moving statistics in ``values`` in place.
    """

    def __init__(self, model):
        if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
            raise Unsupported(f"{model.name} is not a functional model with one input and one output")
        # Which layer made each symbolic tensor, from the layers' public input
        # and output tensors (``model.layers`` of a functional model come in
        # the order they run). A layer called twice makes tensors that are not
        # its ``output``: a layer taking one of those is refused below.
        made = {id(model.inputs[0]): model.inputs[0].name}
        self._inputs = [model.inputs[0].name]
        graph = []  # (layer, the names of the layers whose outputs it takes)
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if type(layer) not in _RUNNERS:
                raise Unsupported(f"layer {layer.name} is a {type(layer).__name__}")
            if layer.weights and not layer.trainable:
                raise Unsupported(f"layer {layer.name} is frozen")
            sources = [made.get(id(tensor)) for tensor in keras.tree.flatten(layer.input)]
            if None in sources:
                raise Unsupported(f"layer {layer.name} takes a tensor of a layer called more than once")
            made[id(layer.output)] = layer.name
            graph.append((layer, sources))
        if id(model.outputs[0]) not in made:
            raise Unsupported(f"{model.name}'s output comes from a layer called more than once")
        self._outputs = [made[id(model.outputs[0])]]
        self.variables, self._nodes = [], []
        for layer, sources, padding in _fold_padding(graph):
            first = len(self.variables)
            self.variables.extend(layer.weights)
            run = _conv(layer, padding) if padding else _RUNNERS[type(layer)](layer)
            self._nodes.append((layer.name, run, sources, slice(first, len(self.variables))))

    def values(self):
        """The tensors behind ``variables`` (the same objects every step: Keras assigns in place)."""
        return [variable.value for variable in self.variables]

    def forward(self, values, images):
        """The logits of ``images`` in training mode, the moving statistics updated in ``values``."""
        tensors = {self._inputs[0]: images}
        for name, run, sources, weights in self._nodes:
            tensors[name] = run([tensors[source] for source in sources], values[weights])
        return tensors[self._outputs[0]]


def _fold_padding(graph):
    """``(layer, sources, padding)`` for ``graph``, each symmetric ZeroPadding2D that only
    feeds a "valid" convolution folded into it as the convolution's ``padding``.

    The builder pads before every stride-2 3x3 convolution (``blocks.conv3x3``);
    a separate padded copy of the activations cost a third of the
    forward pass's generated code (ResNet20, compiled).
    """
    layers = {layer.name: layer for layer, _ in graph}
    uses = {}
    for _, sources in graph:
        for source in sources:
            uses[source] = uses.get(source, 0) + 1
    folded, result = set(), []
    for layer, sources in graph:
        padding = None
        source = layers.get(sources[0])
        if (
            isinstance(layer, keras.layers.Conv2D)
            and layer.padding == "valid"
            and isinstance(source, keras.layers.ZeroPadding2D)
            and uses[source.name] == 1
            and source.data_format == layer.data_format
            and all(before == after for before, after in source.padding)
        ):
            padding = tuple(before for before, _ in source.padding)
            folded.add(source.name)
            sources = graph[[node.name for node, _ in graph].index(source.name)][1]
        result.append((layer, sources, padding))
    return [(layer, sources, padding) for layer, sources, padding in result if layer.name not in folded]


def _cast_in(layer, x):
    """``x`` in ``layer``'s compute dtype when it is floating, as ``Layer.__call__`` casts inputs."""
    import torch

    dtype = getattr(torch, layer.compute_dtype)
    return x.to(dtype) if x.is_floating_point() and x.dtype != dtype else x


def _weight(layer, w):
    """A variable's tensor read in ``layer``'s compute dtype, as Keras reads autocast variables."""
    import torch

    return w.to(getattr(torch, layer.compute_dtype)) if layer.autocast else w


def _activation(layer):
    """``layer``'s activation as a function of a tensor (linear or ReLU, the zoo's)."""
    name = getattr(layer.activation, "__name__", None)
    if name == "linear":
        return lambda x: x
    if name == "relu":
        return lambda x: x.relu()
    raise Unsupported(f"layer {layer.name} has the activation {name!r}")


def _spatial_axes(data_format):
    return (2, 3) if data_format == "channels_first" else (1, 2)


def _same_padding(size, kernel, stride, dilation):
    """(before, after) of TensorFlow's "same" padding on one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_spatial(x, pads, data_format, value=0.0):
    """``x`` padded by ``pads`` ((top, bottom), (left, right)) on its spatial axes."""
    from torch.nn import functional

    if not any(sum(p) for p in pads):
        return x
    flat = []  # functional.pad lists the last axis first
    axes = _spatial_axes(data_format)
    for axis in range(x.ndim - 1, 0, -1):
        flat.extend(pads[axes.index(axis)] if axis in axes else (0, 0))
    return functional.pad(x, flat, value=value)


def _to_nchw(x, data_format):
    return x if data_format == "channels_first" else x.permute(0, 3, 1, 2)


def _from_nchw(x, data_format):
    return x if data_format == "channels_first" else x.permute(0, 2, 3, 1)


def _conv(layer, folded=None):
    """``layer`` as ``conv2d``; ``folded``: the (rows, cols) zero padding of a ZeroPadding2D before it."""
    from torch.nn import functional

    if layer.padding not in ("same", "valid") or layer.groups != 1:
        raise Unsupported(f"layer {layer.name} has padding {layer.padding!r} and groups {layer.groups}")
    fmt, strides, dilation = layer.data_format, tuple(layer.strides), tuple(layer.dilation_rate)
    kernel_size, activation = tuple(layer.kernel_size), _activation(layer)

    def run(inputs, weights):
        x, padding = _cast_in(layer, inputs[0]), folded or (0, 0)
        if layer.padding == "same":
            sizes = [x.shape[a] for a in _spatial_axes(fmt)]
            pads = [_same_padding(s, k, st, d) for s, k, st, d in zip(sizes, kernel_size, strides, dilation)]
            if all(before == after for before, after in pads):
                padding = tuple(before for before, _ in pads)  # inside the convolution: no padded copy
            else:
                x = _pad_spatial(x, pads, fmt)
        # Keras's (height, width, in, out) kernel as PyTorch's (out, in, height, width).
        kernel = _weight(layer, weights[0]).permute(3, 2, 0, 1)
        bias = _weight(layer, weights[1]) if layer.use_bias else None
        y = functional.conv2d(_to_nchw(x, fmt), kernel, bias, strides, padding, dilation)
        return activation(_from_nchw(y, fmt))

    return run


def _batch_norm(layer):
    import torch

    if layer.renorm or not (layer.scale and layer.center):
        raise Unsupported(f"layer {layer.name} uses renorm or lacks a scale or centre")
    momentum, epsilon = layer.momentum, layer.epsilon

    def run(inputs, weights):
        gamma, beta, moving_mean, moving_variance = weights
        x = _cast_in(layer, inputs[0])
        axis = layer.axis % x.ndim
        # PyTorch's batch_norm with the channels on axis 1 (its backward one
        # fused reduction). A bfloat16 input is normalised in float32 against
        # the float32 parameters and rounded once, as Keras's layer does.
        # Keras's moving mean is PyTorch's running mean at momentum 1 - m;
        # PyTorch updates its running variance with the batch's unbiased
        # variance, Keras with the biased one, which the last line restores.
        # batch_norm keeps its running statistics for its backward, so it
        # updates copies.
        count = x.numel() // x.shape[axis]
        with torch.no_grad():
            mean, variance = moving_mean.clone(), moving_variance.clone()
        y = torch.nn.functional.batch_norm(
            x.movedim(axis, 1), mean, variance, gamma, beta, True, 1.0 - momentum, epsilon
        )
        with torch.no_grad():
            moving_mean.copy_(mean)
            kept = moving_variance * momentum
            moving_variance.copy_((variance - kept) * ((count - 1) / count) + kept)
        return y.movedim(1, axis)

    return run


def _normalization(layer):
    import torch

    if layer.invert:
        raise Unsupported(f"layer {layer.name} inverts")
    mean = torch.as_tensor(keras.ops.convert_to_numpy(layer.mean))
    std = torch.as_tensor(keras.ops.convert_to_numpy(layer.variance)).sqrt().clamp_min(keras.backend.epsilon())

    def run(inputs, weights):
        x = _cast_in(layer, inputs[0])
        return (x - mean.to(x.device, x.dtype)) / std.to(x.device, x.dtype)

    return run


def _max_pool(layer):
    from torch.nn import functional

    fmt, pool, strides = layer.data_format, tuple(layer.pool_size), tuple(layer.strides)

    def run(inputs, weights):
        x = _cast_in(layer, inputs[0])
        if pool == (1, 1):  # a 1x1 window keeps every stride-th pixel: a strided slice
            rows, cols = (slice(None, None, s) for s in strides)
            return x[:, :, rows, cols] if fmt == "channels_first" else x[:, rows, cols, :]
        if layer.padding == "same":
            sizes = [x.shape[a] for a in _spatial_axes(fmt)]
            pads = [_same_padding(s, k, st, 1) for s, k, st in zip(sizes, pool, strides)]
            x = _pad_spatial(x, pads, fmt, value=float("-inf"))
        return _from_nchw(functional.max_pool2d(_to_nchw(x, fmt), pool, strides), fmt)

    return run


def _zero_padding(layer):
    pads = tuple(tuple(p) for p in layer.padding)

    def run(inputs, weights):
        return _pad_spatial(_cast_in(layer, inputs[0]), pads, layer.data_format)

    return run


def _global_average(layer):
    def run(inputs, weights):
        x = _cast_in(layer, inputs[0])
        return x.mean(dim=_spatial_axes(layer.data_format), keepdim=layer.keepdims)

    return run


def _dense(layer):
    activation = _activation(layer)

    def run(inputs, weights):
        x = _cast_in(layer, inputs[0])
        y = x @ _weight(layer, weights[0])
        if layer.use_bias:
            y = y + _weight(layer, weights[1])
        return activation(y)

    return run


def _activation_layer(layer):
    activation = _activation(layer)
    return lambda inputs, weights: activation(_cast_in(layer, inputs[0]))


def _add(layer):
    def run(inputs, weights):
        total = _cast_in(layer, inputs[0])
        for x in inputs[1:]:
            total = total + _cast_in(layer, x)
        return total

    return run


def _permute(layer):
    dims = (0, *layer.dims)
    return lambda inputs, weights: _cast_in(layer, inputs[0]).permute(dims)


_RUNNERS = {
    keras.layers.Conv2D: _conv,
    keras.layers.BatchNormalization: _batch_norm,
    keras.layers.Normalization: _normalization,
    keras.layers.MaxPooling2D: _max_pool,
    keras.layers.ZeroPadding2D: _zero_padding,
    keras.layers.GlobalAveragePooling2D: _global_average,
    keras.layers.Dense: _dense,
    keras.layers.Activation: _activation_layer,
    keras.layers.Add: _add,
    keras.layers.Permute: _permute,
}
