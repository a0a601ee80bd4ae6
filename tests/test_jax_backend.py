"""The model code is backend-neutral: it builds and trains under JAX."""

import textwrap

import numpy as np

import keras_resnet_cifar as krc
from tests.helpers import run_python

SCRIPT = textwrap.dedent(
    """
    import keras, numpy as np
    assert keras.backend.backend() == "jax"
    import keras_resnet_cifar as krc
    from keras_resnet_cifar.models import stats
    x = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = np.arange(8) % 10
    for kwargs in [dict(shortcut="A"), dict(shortcut="B"), dict(residual=False)]:
        model = krc.resnet_cifar(n=1, **kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = [w.copy() for w in model.get_weights()]
        losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
        assert all(np.isfinite(losses)), losses
        assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
        print(model.name, stats.trainable_params(model), losses[0], losses[-1])
    model = keras.models.load_model({path!r})
    np.save({out!r}, np.asarray(model(np.load({x!r}))))
    """
)


def test_builds_trains_and_loads_under_jax(tmp_path):
    x = np.random.RandomState(3).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    model = krc.ResNet20()
    model.save(tmp_path / "resnet20.keras")
    out = run_python(
        SCRIPT.format(path=str(tmp_path / "resnet20.keras"), out=str(tmp_path / "jax.npy"), x=str(tmp_path / "x.npy")),
        backend="jax",
    )
    lines = out.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["resnet8", str(97_216 - 21_926)],
        ["resnet8_b", str(97_216 - 21_926 + 2_752)],
        ["plain8", str(97_216 - 21_926)],
    ]
    # The same .keras file, saved under TensorFlow, gives the same logits under JAX.
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), model(x), rtol=1e-4, atol=1e-4)
