"""Training under each Keras backend: the choice, the layout, fused BatchNorm, the strided subsample, coupled decay, and whole runs."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_cifar.models import resnet, stats
from keras_resnet_cifar.training import machine, torch_layers
from tests import datagen
from tests.helpers import REPO, run_python
from tests.test_runner import CLASSES, _kill_at
from tests.test_runner import _cmd as runner_cmd


def test_auto_picks_torch_on_avx2_cpus_and_tensorflow_with_amx_or_a_gpu(monkeypatch):
    monkeypatch.setattr(machine, "has_gpu", lambda: False)
    monkeypatch.setattr(machine, "cpu_has_amx", lambda: False)
    assert machine.resolve_backend("auto") == "torch"
    monkeypatch.setattr(machine, "cpu_has_amx", lambda: True)
    assert machine.resolve_backend("auto") == "tensorflow"
    monkeypatch.setattr(machine, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(machine, "has_gpu", lambda: True)
    assert machine.resolve_backend("auto") == "tensorflow"
    monkeypatch.setattr(machine, "has_gpu", lambda: False)
    monkeypatch.setattr(machine, "installed", lambda name: False)
    assert machine.resolve_backend("auto") == "tensorflow"  # torch not installed
    for name in ("tensorflow", "torch", "jax"):
        assert machine.resolve_backend(name) == name
    with pytest.raises(ValueError, match="backend must be one of auto, tensorflow, torch, jax"):
        machine.resolve_backend("mxnet")


def test_a_backend_is_refused_once_keras_runs_another():
    assert keras.backend.backend() == "tensorflow"
    with pytest.raises(ValueError, match="Keras is already imported with the tensorflow backend, not torch"):
        machine.select_backend("torch")
    assert machine.select_backend("tensorflow") == "tensorflow"


def test_layouts():
    assert machine.resolve_data_format("torch") == "channels_first"
    assert machine.resolve_data_format("tensorflow") == machine.resolve_data_format("jax") == "channels_last"


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_a_channels_first_model_has_the_same_weights_and_shapes(shortcut):
    last = resnet.resnet_cifar(20, shortcut=shortcut)
    first = resnet.resnet_cifar(20, shortcut=shortcut, data_format="channels_first")
    assert first.input_shape == last.input_shape == (None, 32, 32, 3)
    assert first.output_shape == last.output_shape == (None, 10)
    assert stats.trainable_params(first) == stats.trainable_params(last)
    assert [w.shape for w in first.weights] == [w.shape for w in last.weights]
    first.set_weights(last.get_weights())
    assert first.get_layer("conv2_block1_1_conv").data_format == "channels_first"
    assert first.get_layer("conv2_block1_1_bn").axis == 1
    assert first.get_layer("avg_pool").data_format == "channels_first"
    if shortcut == "A":  # 16 -> 32 channels on 16x16 maps, NCHW
        assert first.get_layer("conv3_block1_0_pad").output.shape == (None, 32, 16, 16)
    with pytest.raises(ValueError, match="data_format must be 'channels_last' or 'channels_first'"):
        resnet.resnet_cifar(20, data_format="NCHW")


TORCH_SCRIPT = textwrap.dedent(
    """
    import keras, numpy as np
    assert keras.backend.backend() == "torch"
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import lean_graph, runner, torch_layers
    x = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    numpy = keras.ops.convert_to_numpy
    for shortcut in "AB":
        last = resnet.resnet_cifar(20, shortcut=shortcut)
        first = resnet.resnet_cifar(20, shortcut=shortcut, data_format="channels_first")
        first.set_weights(last.get_weights())
        print("layout", shortcut, float(np.abs(numpy(first(x)) - numpy(last(x))).max()))
    stock = resnet.resnet_cifar(20, data_format="channels_first")
    trained = runner.training_model(lambda **layout: resnet.resnet_cifar(20, **layout))
    assert sum(isinstance(l, torch_layers.FusedBatchNormalization) for l in trained.layers) == 19
    assert sum(isinstance(l, torch_layers.StridedSubsample) for l in trained.layers) == 2
    trained.set_weights(stock.get_weights())
    out = float(np.abs(numpy(stock(x, training=True)) - numpy(trained(x, training=True))).max())
    # Relative to the value (at least 1): a moving variance near 10 is 1 float32 ulp from 1e-6 apart.
    weights = max(
        float((np.abs(a - b) / np.maximum(np.abs(a), 1)).max()) for a, b in zip(stock.get_weights(), trained.get_weights())
    )
    print("fused", out, weights)
    # The lean graph (torch, float32) computes what Keras's own calls of the same layers compute.
    assert isinstance(trained, lean_graph.LeanGraph)
    called = torch_layers.swap(resnet.resnet_cifar(20, data_format="channels_first", weight_decay=0))
    y = np.arange(8) % 10
    for model in (called, trained):
        model.set_weights(stock.get_weights())
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(True))
        model.train_on_batch(x, y)
    step = max(float(np.abs(a - b).max()) for a, b in zip(called.get_weights(), trained.get_weights()))
    moved = sum(not np.array_equal(a, b) for a, b in zip(stock.get_weights(), trained.get_weights()))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = runner.training_model(lambda **layout: resnet.resnet_cifar(20, **layout))
    print("lean", step, moved, len(stock.weights), type(mixed).__name__)
    """
)


@pytest.mark.parametrize("size, stride, padding", [(8, 2, "valid"), (7, 2, "valid"), (7, 3, "same")])
def test_the_strided_subsample_keeps_what_a_1x1_max_pool_keeps(size, stride, padding):
    x = np.random.RandomState(0).normal(size=(2, size, size + 1, 3)).astype("float32")
    layer = dict(pool_size=1, strides=stride, padding=padding)
    pooled = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(**layer)(x))
    sliced = keras.ops.convert_to_numpy(torch_layers.StridedSubsample(**layer)(x))
    np.testing.assert_array_equal(sliced, pooled)
    np.testing.assert_array_equal(sliced, x[:, ::stride, ::stride])
    first = torch_layers.StridedSubsample(**layer, data_format="channels_first")(x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first), pooled.transpose(0, 3, 1, 2))
    # Any other window is the stock max pool.
    wide = dict(pool_size=2, strides=stride, padding=padding)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(torch_layers.StridedSubsample(**wide)(x)),
        keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(**wide)(x)),
    )


def test_under_torch_layouts_agree_and_the_fused_lean_training_model_equals_the_stock_one():
    lines = [line.split() for line in run_python(TORCH_SCRIPT, backend="torch").strip().splitlines()]
    assert [line[:2] for line in lines[:2]] == [["layout", "A"], ["layout", "B"]]
    assert max(float(line[2]) for line in lines[:2]) < 1e-5
    assert lines[2][0] == "fused"
    assert float(lines[2][1]) < 1e-5  # training-mode outputs
    assert float(lines[2][2]) < 1e-6  # moving mean and variance after the step, and every other weight, relative
    assert lines[3][0] == "lean"
    assert float(lines[3][1]) == 0.0  # every weight after one SGD step, bit for bit
    assert int(lines[3][2]) == int(lines[3][3])  # and the step moved every one of them
    assert lines[3][4] == "Functional"  # mixed precision keeps Keras's own call (it autocasts)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    datagen.image_folder(root, CLASSES[:4], per_class=24)  # 72 train: 5 steps an epoch at 16
    return root


def _cmd(data_dir, model_dir, backend, *extra):
    """test_runner's short run, under ``backend`` and deterministic."""
    return runner_cmd(data_dir, model_dir, f"--backend={backend}", "--deterministic", "--seed=5", *extra)


@pytest.mark.parametrize("backend", ["tensorflow", "torch", "jax"])
def test_a_whole_run_killed_and_resumed_under_each_backend(backend, data_dir, tmp_path):
    """Same outputs, resume, export and errors under every backend --backend offers."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    out = subprocess.run(_cmd(data_dir, whole, backend, "--noexport"), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    cmd = _cmd(data_dir, killed, backend)
    _kill_at(cmd, "step8")  # three steps into epoch 2 of 3
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{backend} backend ({machine.resolve_data_format(backend)})" in out.stdout
    assert "1 epoch(s) done, going on with epoch 2" in out.stdout
    config = json.loads((killed / "config.json").read_text())
    assert (config["backend"], config["data_format"]) == (backend, machine.resolve_data_format(backend))
    if backend != "tensorflow":
        assert config["versions"][backend]
    rows = [line.split(",")[0] for line in (killed / "metrics.csv").read_text().splitlines()]
    assert rows == ["epoch", "0", "1", "2"]
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["steps"] == 15 and metrics["val_accuracy"] is not None

    # The saved model is the stock channels_last one, equal to the uninterrupted run's.
    a = keras.models.load_model(whole / "model.keras")
    b = keras.models.load_model(killed / "model.keras")
    assert {type(layer).__module__.split(".")[0] for layer in b.layers} == {"keras"}
    assert b.get_layer("conv1_conv").data_format == "channels_last"
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)

    # The TF Serving export, written by a TensorFlow process, serves what the model computes.
    export = killed / "export" / "resnet8" / "1"
    assert metrics["export"] == str(export)
    assert "Exported SavedModel" in out.stdout
    card = json.loads((export / "assets.extra" / "model_card.json").read_text())
    assert card["val_accuracy"] == metrics["val_accuracy"]
    images = datagen.images(4)[0]
    served = tf.saved_model.load(str(export)).signatures["serving_default"](image=tf.constant(images))
    np.testing.assert_allclose(served["logits"], b(images.astype("float32")), atol=1e-4, rtol=1e-4)

    # Errors are the same one line.
    bad = subprocess.run(
        _cmd("/nonexistent/cifar", tmp_path / "bad", backend), capture_output=True, text=True, timeout=600
    )
    assert (bad.returncode, bad.stderr.strip()) == (
        1,
        "error: --data_dir /nonexistent/cifar does not exist or is not a directory",
    )


def test_a_backend_that_is_not_installed_is_a_usage_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    # A module named torch that cannot be found: find_spec sees None through a meta-path blocker.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), "--backend=torch", "--data_dir=."],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().startswith("error: ")
    assert "torch" in out.stderr and "--backend=tensorflow" in out.stderr
