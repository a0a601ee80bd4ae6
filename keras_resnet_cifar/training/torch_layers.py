"""Training-time versions of two stock layers that are slow under the torch backend.

- BatchNormalization: Keras computes the batch statistics and the
  normalisation with about ten separate tensor operations, each with its own
  backward pass; in a ResNet20 training step they cost more than half as
  much as the convolutions (README, Performance). PyTorch's ``batch_norm``
  does the same work in one pass forward and one backward.
- The option-A subsample, a 1x1 max pool with stride 2 (the saved model
  holds built-in layers only, and Keras has no strided-slice layer): in
  PyTorch its forward and backward took 5.1-6.8 ms a ResNet20 step at batch
  128, the strided slice it equals 1.1 ms.

Each has the stock layer's weights and configuration, so the runner trains
with them and saves the stock layers (``swap``): the saved model holds
built-in layers only. Outside the cases they are written for they are the
stock layers.
"""

import keras


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with PyTorch's fused kernel for training.

    The fused path is taken in training, on float32 or bfloat16 tensors
    (mixed_bfloat16: PyTorch's kernel takes them with the float32 scale and
    offset and computes the statistics in float32, as Keras's layer does) under the torch
    backend, with the channels on axis 1 or last (there PyTorch sees the
    NCHW view of the NHWC tensor: channels_last memory, no copy). It computes what the stock layer
    computes: the output normalised with the batch's mean and biased
    variance, and the moving averages updated with them (not with PyTorch's
    unbiased variance).
    """

    def call(self, inputs, training=None, mask=None):
        if not (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and self.axis in (1, -1, inputs.ndim - 1)
            and keras.backend.backend() == "torch"
            and keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16")
        ):
            return super().call(inputs, training=training, mask=mask)
        import torch  # only on this path: the torch backend is in use

        channels_last = self.axis != 1
        if channels_last:
            inputs = torch.movedim(inputs, -1, 1)
        # No running statistics passed: PyTorch would update them with the
        # unbiased variance. It returns the batch mean and 1/sqrt(var + eps).
        outputs, mean, inv_std = torch.native_batch_norm(
            inputs,
            self.gamma.value if self.scale else None,
            self.beta.value if self.center else None,
            None,
            None,
            True,
            0.0,
            self.epsilon,
        )
        with torch.no_grad():
            variance = inv_std.pow(-2) - self.epsilon
            # In place on the variables' tensors: Variable.assign and its
            # arithmetic made a ResNet20 forward pass 1.5 ms slower (15.0
            # against 13.4 ms at batch 2).
            for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
                moving.value.mul_(self.momentum).add_(batch, alpha=1.0 - self.momentum)
        return torch.movedim(outputs, 1, -1) if channels_last else outputs


class StridedSubsample(keras.layers.MaxPooling2D):
    """``keras.layers.MaxPooling2D`` that is a strided slice when its window is 1x1.

    A 1x1 window with stride ``s`` keeps every ``s``-th pixel, ``x[:, ::s,
    ::s]`` on the spatial axes, under either padding (a 1x1 window never
    needs any): the same values, and a gradient that PyTorch computes
    without a max pool's indices.
    """

    def call(self, inputs):
        if tuple(self.pool_size) != (1, 1):
            return super().call(inputs)
        rows, cols = (slice(None, None, s) for s in self.strides)
        if self.data_format == "channels_first":
            return inputs[:, :, rows, cols]
        return inputs[:, rows, cols, :]


# Stock layer class -> its training-time version.
_VERSIONS = {
    keras.layers.BatchNormalization: FusedBatchNormalization,
    keras.layers.MaxPooling2D: StridedSubsample,
}


def swap(model):
    """A copy of ``model`` with the training-time versions of its layers (weights not copied)."""

    def clone(layer):
        return _VERSIONS.get(type(layer), type(layer)).from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)
