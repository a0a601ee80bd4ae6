"""The training model's graph run layer by layer without Keras's per-call bookkeeping.

Under the torch backend every ``layer(x)`` goes through ``Layer.__call__``
(argument conversion, masks, dtype autocasting, name scopes, the symbolic
check) before it reaches ``layer.call``; in eager PyTorch that costs about
0.2 ms per layer. A ResNet20 training-mode forward pass at batch 2 (where
Python dominates) took 26 ms against PyTorch's 5.6 ms; calling each layer's
``call`` directly, as ``LeanGraph`` does, took 12 ms.

What ``__call__`` adds is not needed by the runner's training model: its
layers are built, unmasked and without activity regularisers, so
``LeanGraph`` is used for that model only. Under a mixed policy it keeps the
one part that matters, the autocasting: each layer's floating inputs cast
to its compute dtype, and its variables read in that dtype inside an
``AutocastScope``, as ``__call__`` does (through ``__call__``, a ResNet8
step in mixed_bfloat16 spent 38.5 ms with no operator running, against
PyTorch's 3.3, on a 2-core Zen 4).
"""

import inspect

import keras


class LeanGraph(keras.Model):
    """A functional model whose ``call`` runs each layer's ``call`` directly.

    Built by ``wrap(model)``: the same layers and variables, in the same
    order, as ``model``.
    """

    def call(self, inputs, training=None, mask=None):
        calls = self.__dict__.get("_lean_calls")
        if calls is None:
            mixed = any(_is_mixed(op) for op in self.operations)
            calls = {id(op): _plain_call(op, mixed) for op in self.operations}
            # Set past Keras's attribute tracking: a cache, not model state.
            object.__setattr__(self, "_lean_calls", calls)

        def operation_fn(op):
            call, takes_training = calls[id(op)]
            return (lambda *args, **kwargs: call(*args, training=training, **kwargs)) if takes_training else call

        # Functional.__call__ casts the images to the Input's dtype (float32 in every policy).
        inputs = keras.ops.cast(inputs, self.inputs[0].dtype)
        if self.compute_dtype == self.variable_dtype:
            return self._run_through_graph(inputs, operation_fn=operation_fn)
        from keras.src.backend.common.variables import AutocastScope  # checked by fast_path

        # This model's own __call__ opened a scope that would read every
        # variable in its compute dtype; each mixed layer opens its own
        # (``_plain_call``), and float32 layers read theirs in float32.
        with AutocastScope(None):
            return self._run_through_graph(inputs, operation_fn=operation_fn)


def _is_mixed(op):
    return isinstance(op, keras.layers.Layer) and op.autocast and op.compute_dtype != op.variable_dtype


def _plain_call(op, mixed_model):
    """``(call, takes_training)``: ``op.call``, with ``__call__``'s autocasting in a mixed-precision model.

    ``mixed_model``: whether any layer of the model computes in another
    dtype than its variables' (a mixed policy, global or passed to the
    builder as ``dtype``).
    """
    takes_training = "training" in inspect.signature(op.call).parameters
    if not isinstance(op, keras.layers.Layer) or not op.autocast:
        return op.call, takes_training
    compute = op.compute_dtype
    # Mixed layers read their variables in the compute dtype; under a mixed
    # policy float32 ones (the classifier) read theirs as they are, and both
    # take their floating inputs in the compute dtype, as __call__ gives them.
    mixed = compute != op.variable_dtype
    if not mixed and not mixed_model:
        return op.call, takes_training
    from keras.src.backend.common.variables import AutocastScope  # checked by fast_path

    def cast_call(*args, **kwargs):
        args = keras.tree.map_structure(lambda x: _cast(x, compute), args)
        if not mixed:
            return op.call(*args, **kwargs)
        with AutocastScope(compute):
            return op.call(*args, **kwargs)

    return cast_call, takes_training


def _cast(x, dtype):
    """``x`` in ``dtype`` when it is a floating tensor of another dtype, as ``Layer.__call__`` converts inputs."""
    if not hasattr(x, "dtype"):
        return x
    current = keras.backend.standardize_dtype(x.dtype)
    return keras.ops.cast(x, dtype) if current != dtype and keras.backend.is_float_dtype(current) else x


def wrap(model):
    """``model`` as a ``LeanGraph``: the same layers and variables, each layer's ``call`` run directly."""
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return LeanGraph(inputs=model.inputs, outputs=outputs, name=model.name)
