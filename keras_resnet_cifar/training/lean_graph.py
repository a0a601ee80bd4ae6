"""The training model's graph run layer by layer without Keras's per-call bookkeeping.

Under the torch backend every ``layer(x)`` goes through ``Layer.__call__``
(argument conversion, masks, dtype autocasting, name scopes, the symbolic
check) before it reaches ``layer.call``; in eager PyTorch that costs about
0.2 ms per layer. A ResNet20 training-mode forward pass at batch 2 (where
Python dominates) took 26 ms against PyTorch's 5.6 ms; calling each layer's
``call`` directly, as ``LeanGraph`` does, took 12 ms.

What ``__call__`` adds is not needed by the runner's training model: its
layers are built, float32, unmasked and without activity regularisers, so
``LeanGraph`` is used for that model only, and only under a float32 policy
(mixed precision needs the autocasting).
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
            calls = {id(op): (op.call, "training" in inspect.signature(op.call).parameters) for op in self.operations}
            # Set past Keras's attribute tracking: a cache, not model state.
            object.__setattr__(self, "_lean_calls", calls)

        def operation_fn(op):
            call, takes_training = calls[id(op)]
            return (lambda *args, **kwargs: call(*args, training=training, **kwargs)) if takes_training else call

        # Layer.__call__ would cast the uint8 images to the first layer's dtype.
        return self._run_through_graph(keras.ops.cast(inputs, self.compute_dtype), operation_fn=operation_fn)


def wrap(model):
    """``model`` as a ``LeanGraph`` when the global dtype policy is float32, else ``model`` itself."""
    if keras.mixed_precision.dtype_policy().name != "float32":
        return model
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return LeanGraph(inputs=model.inputs, outputs=outputs, name=model.name)
