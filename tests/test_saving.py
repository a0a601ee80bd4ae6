"""A saved model must load with Keras alone: no import of this package."""

import textwrap

import keras
import numpy as np

import keras_resnet_cifar as krc
from tests.helpers import run_python

LOADER = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np

    x = np.load(sys.argv[1] if len(sys.argv) > 1 else {x!r})
    for path in {paths!r}:
        model = keras.models.load_model(path)  # default safe_mode, no custom_objects
        np.save(path + ".reloaded.npy", model.predict(x, verbose=0))
    assert "keras_resnet_cifar" not in sys.modules, "the loader imported our package"
    print("loaded", len({paths!r}))
    """
)


def _reloads_identically(tmp_path, models, x):
    """Saves ``models``, loads them in a process with Keras alone, compares outputs bit for bit."""
    np.save(tmp_path / "x.npy", x)
    paths, expected = [], []
    for model in models:
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        paths.append(path)
        expected.append(model.predict(x, verbose=0))
    # cwd elsewhere so the package is not importable from the working directory.
    out = run_python(LOADER.format(x=str(tmp_path / "x.npy"), paths=paths), cwd=tmp_path)
    assert f"loaded {len(models)}" in out
    for path, want in zip(paths, expected):
        np.testing.assert_array_equal(np.load(path + ".reloaded.npy"), want)


def test_keras_file_loads_in_fresh_process_with_keras_only(tmp_path):
    models = []
    for kind in ["A", "B", "plain"]:
        model = krc.resnet_cifar(20, shortcut="B" if kind == "B" else "A", residual=kind != "plain")
        # Non-default BN statistics, so a reload that drops them would show.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, "float32"))
                layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, "float32"))
        models.append(model)
    x = np.random.RandomState(0).uniform(0, 255, (5, 32, 32, 3)).astype("float32")
    _reloads_identically(tmp_path, models, x)


def test_imagenet_keras_files_load_with_keras_only(tmp_path):
    models = [
        krc.ResNet18(input_shape=(64, 64, 3), num_classes=10),
        krc.ResNet50(shortcut="A", stride_on="1x1", input_shape=(64, 64, 3), num_classes=10),
        krc.ResNet50(shortcut="C", input_shape=(64, 64, 3), num_classes=10),
    ]
    x = np.random.RandomState(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    _reloads_identically(tmp_path, models, x)
