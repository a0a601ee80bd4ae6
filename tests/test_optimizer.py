"""Coupled weight decay in the update equals the paper's L2 regularisers, under every backend."""

import json
import textwrap

import pytest

from tests.helpers import run_python

DECAY = textwrap.dedent(
    """
    import json
    import keras, numpy as np
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import optimizer

    x = np.random.RandomState(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    regularised = resnet.resnet_cifar(n=1, weight_decay=0.05)
    plain = resnet.resnet_cifar(n=1, weight_decay=0)
    plain.set_weights(regularised.get_weights())
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    regularised.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=loss)
    plain.compile(optimizer=optimizer.sgd(0.1, 0.9, 0.05), loss=loss)
    for _ in range(3):
        regularised.train_on_batch(x, y)
        plain.train_on_batch(x, y)
    difference = max(
        float((np.abs(a - b) / np.maximum(np.abs(a), 1)).max())
        for a, b in zip(regularised.get_weights(), plain.get_weights())
    )
    start = resnet.resnet_cifar(n=1).get_weights()
    changed = sum(not np.allclose(a, b) for a, b in zip(plain.get_weights(), start))
    # Without decay it is Keras's own SGD (under torch, its fused one).
    stock = type(optimizer.sgd(0.1, 0.9, 0)) is type(keras.optimizers.SGD(0.1))
    print(json.dumps({"difference": difference, "changed": changed, "stock": stock}))
    """
)


@pytest.mark.parametrize("backend", ["tensorflow", "torch", "jax"])
def test_decay_in_the_update_equals_the_l2_regularisers_under(backend, capsys):
    """``optimizer.sgd`` on a model without regularisers takes the steps the regularised model takes."""
    if backend == "tensorflow":  # this process's own backend: no second interpreter needed
        exec(DECAY, {})
        output = capsys.readouterr().out
    else:
        output = run_python(DECAY, backend=backend)
    result = json.loads(output.strip().splitlines()[-1])
    # The decay moves each weight by lr * wd = 0.5% a step, over 1% in three; the two graphs' float32
    # rounding, amplified by three steps at lr 0.1, has reached 1.6e-4 under torch's threads.
    assert result["difference"] < 1e-3 and result["changed"] > 10 and result["stock"]
