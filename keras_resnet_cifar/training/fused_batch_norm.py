"""A training-time BatchNormalization that runs PyTorch's fused kernel.

Under the torch backend, Keras's BatchNormalization computes the batch
statistics and the normalisation with about ten separate tensor operations,
each with its own backward pass; in a ResNet20 training step they cost more
than half as much as the convolutions (README, Performance). PyTorch's
``batch_norm`` does the same work in one pass forward and one backward.

The layer has the stock layer's four weights, in the same order, so the
runner trains with it and saves the stock layer (``swap``): the saved model
holds built-in layers only. Everywhere else (other backends, inference,
channels_last, mixed precision) it is the stock layer.
"""

import keras


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with PyTorch's fused kernel for training.

    The fused path is taken in training, on float32 ``channels_first``
    tensors under the torch backend. It computes what the stock layer
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
            and self.axis == 1
            and keras.backend.backend() == "torch"
            and keras.backend.standardize_dtype(inputs.dtype) == "float32"
        ):
            return super().call(inputs, training=training, mask=mask)
        import torch  # only on this path: the torch backend is in use

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
        return outputs


def swap(model):
    """A copy of ``model`` whose BatchNormalization layers are fused ones (weights not copied)."""

    def clone(layer):
        if type(layer) is keras.layers.BatchNormalization:
            return FusedBatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)
