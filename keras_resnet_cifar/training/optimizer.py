"""SGD with momentum and PyTorch-style coupled weight decay, applied in the update.

``torch.optim.SGD(weight_decay=wd)`` adds ``wd * w`` to each gradient before
the momentum. Keras's own ``SGD(weight_decay=...)`` is decoupled (it shrinks
the weights outside the momentum), so the builders express the paper's decay
as L2 regularisers instead. Those add a term per weight to the loss and its
backward pass; adding ``wd * w`` to the gradients is the same update at a
fraction of the cost, and leaves the logged loss the plain cross-entropy.
The torch graph step (compiled or eager) adds it to its gradients itself
(``graph_step.enable``) and takes the plain SGD of ``sgd(..., 0)``.
"""

import keras


class CoupledDecaySGD(keras.optimizers.SGD):
    """``keras.optimizers.SGD`` that adds ``weight_decay * w`` to every gradient in ``update_step``.

    ``update_step`` is Keras's documented hook for a custom optimizer; every
    backend calls it for a subclass (under torch, Keras's own fused SGD is
    taken for ``keras.optimizers.SGD`` itself only).
    """

    def __init__(self, coupled_decay, **kwargs):
        super().__init__(**kwargs)
        self.coupled_decay = coupled_decay

    def update_step(self, gradient, variable, learning_rate):
        decay = keras.ops.multiply(keras.ops.cast(variable, gradient.dtype), self.coupled_decay)
        return super().update_step(keras.ops.add(gradient, decay), variable, learning_rate)

    def get_config(self):
        return dict(super().get_config(), coupled_decay=self.coupled_decay)


def sgd(learning_rate, momentum, weight_decay):
    """An SGD optimizer that adds ``weight_decay * w`` to every gradient.

    Args:
        learning_rate: a float or a schedule.
        momentum: SGD momentum.
        weight_decay: coupled decay on every trainable variable; 0: none
            (``keras.optimizers.SGD`` itself).
    """
    if not weight_decay:
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    return CoupledDecaySGD(weight_decay, learning_rate=learning_rate, momentum=momentum)
