"""The torch fast path and the stock Keras path train to the same weights; outside its pins it steps aside."""

import json
import re
import textwrap

import keras
import pytest

from keras_resnet_cifar.training import fast_path
from tests.helpers import REPO, run_python

COMPARE = textwrap.dedent(
    """
    import json
    import keras, numpy as np
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import fast_path, optimizer, runner

    x = np.random.RandomState(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    build = lambda **layout: resnet.resnet_cifar(n=1, **layout)
    logged = []
    fast = runner.training_model(build, logged.append)
    fast_path.KERAS_TESTED = ((0, 0), (0, 1))  # as if Keras were a release the fast path never saw
    stock = runner.training_model(build, logged.append)
    stock.set_weights(fast.get_weights())
    for model in (fast, stock):
        model.compile(optimizer=optimizer.sgd(0.01, 0.9, 0.05), loss=keras.losses.SparseCategoricalCrossentropy(True))
        for _ in range(3):
            model.train_on_batch(x, y)
    difference = max(
        float((np.abs(a - b) / np.maximum(np.abs(a), 1)).max()) for a, b in zip(fast.get_weights(), stock.get_weights())
    )
    print(json.dumps({"fast": type(fast).__name__, "stock": type(stock).__name__, "difference": difference,
                      "logged": logged, "enabled": fast_path.enabled()}))
    """
)

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
    # Without decay it is Keras's own SGD.
    stock = type(optimizer.sgd(0.1, 0.9, 0)) is type(keras.optimizers.SGD(0.1))
    print(json.dumps({"difference": difference, "changed": changed, "stock": stock}))
    """
)


def test_fast_and_stock_paths_give_the_same_weights_and_the_fallback_is_said():
    result = json.loads(run_python(COMPARE, backend="torch").strip().splitlines()[-1])
    assert result["fast"] == "LeanGraph" and result["stock"] == "Functional"
    # Fused and stock BatchNorm sum in different orders: float32 rounding, not a different step.
    assert result["difference"] < 1e-4
    # The version said is the installed Keras's (this process and the torch child share it).
    assert result["logged"] == [
        f"Training on the stock Keras path: Keras {keras.__version__} is outside the range the fast "
        "path was tested on (0.0 to below 0.1)"
    ]
    assert result["enabled"] is False


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


def test_the_install_pin_ends_where_the_fast_path_was_tested():
    # A Keras release past the tested range is neither installed by setup.py
    # nor, if installed by hand, trained on through the fast path.
    (upper,) = re.findall(r'"keras>=[\d.]+,<([\d.]+)"', (REPO / "setup.py").read_text())
    assert tuple(int(part) for part in upper.split(".")) == fast_path.KERAS_TESTED[1]
