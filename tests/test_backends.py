"""Training under each Keras backend: the choice, the layout, and whole runs."""

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_cifar.models import resnet, stats
from keras_resnet_cifar.training import machine, train
from tests import datagen, trainproc
from tests.helpers import REPO, run_python

# lscpu flags (the ones that decide) of the CPU classes this project runs on.
CPUS = {
    "AMD EPYC Zen 3": ("avx2 fma sse4_2 f16c", "avx2"),
    "Intel Xeon Ice Lake": ("avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni", "avx512"),
    "AMD EPYC Zen 4": ("avx2 fma avx512f avx512bw avx512_vnni avx512_bf16", "avx512_bf16"),
    "Intel Xeon Sapphire Rapids": ("avx2 fma avx512f avx512_bf16 avx512_vnni amx_bf16 amx_int8 amx_tile", "amx"),
    "no AVX2": ("sse4_2 avx", "other"),
}


def _fake_cpu(monkeypatch, name):
    flags, _ = CPUS[name]
    monkeypatch.setattr(machine, "cpu_info", lambda: {"cpu_model": name, "cpu_flags": set(flags.split())})
    monkeypatch.setattr(machine, "has_gpu", lambda: False)


@pytest.mark.parametrize("name", CPUS)
def test_each_cpu_class_gets_its_measured_defaults(monkeypatch, name):
    _fake_cpu(monkeypatch, name)
    cpu_class = CPUS[name][1]
    assert machine.cpu_class() == cpu_class
    amx, bf16 = cpu_class == "amx", cpu_class in ("amx", "avx512_bf16")
    assert machine.resolve_backend("auto") == ("torch" if machine.installed("torch") else "tensorflow")
    # bfloat16 where the backend's kernels run it in hardware: AVX512-BF16 or AMX (JAX's only with AMX).
    assert machine.resolve_precision("auto", "torch") == ("mixed_bfloat16" if bf16 else "float32")
    assert machine.resolve_precision("auto", "tensorflow") == ("mixed_bfloat16" if bf16 else "float32")
    assert machine.resolve_precision("auto", "jax") == ("mixed_bfloat16" if amx else "float32")
    assert machine.resolve_precision("float32", "torch") == "float32"
    # Every x86 class measured so far trains fastest in NCHW under torch, eager or compiled (NHWC 0.31-0.93x).
    assert machine.resolve_data_format("torch") == "channels_first"
    # A quick start (352 steps) runs its torch step eagerly, a 10-epoch run (3,520) compiles it.
    assert machine.compile_torch_step(352)[0] is False
    assert machine.compile_torch_step(3_520)[0] is True
    assert machine.resolve_data_format("tensorflow") == machine.resolve_data_format("jax") == "channels_last"
    # XLA only rescues TensorFlow's emulated bfloat16; oneDNN's bfloat16 kernels run without it.
    assert machine.resolve_xla(None, "float32", False, 1) is False
    assert machine.resolve_xla(None, "mixed_bfloat16", False, 1) is (not bf16)
    assert machine.resolve_xla(None, "mixed_bfloat16", True, 1) is False
    assert machine.resolve_xla(None, "mixed_bfloat16", False, 2) is False
    assert machine.resolve_xla(True, "float32", False, 1) is True
    assert machine.resolve_xla(None, "mixed_bfloat16", False, 1, "torch") is False  # eager torch
    assert machine.resolve_xla(None, "float32", False, 1, "jax") is True


def test_the_class_follows_the_flags_not_the_model_name():
    assert machine.cpu_class({"avx512f", "avx2", "fma"}) == "avx512"
    assert machine.cpu_class({"avx512f", "avx512_bf16"}) == "avx512_bf16"
    assert machine.cpu_class({"avx2"}) == "other"  # AVX2 without FMA: no class was measured
    assert machine.cpu_class(set()) == "other"
    assert set(machine.CPU_DEFAULTS) == {"amx", "avx512_bf16", "avx512", "avx2", "other"}
    assert machine.cpu_class() in machine.CPU_DEFAULTS  # this machine's own flags


def test_a_gpu_or_a_missing_torch_overrides_the_cpu_class(monkeypatch):
    _fake_cpu(monkeypatch, "AMD EPYC Zen 4")
    monkeypatch.setattr(machine, "has_gpu", lambda: True)
    assert machine.resolve_backend("auto") == "tensorflow"
    assert machine.resolve_precision("auto") == "mixed_float16"
    monkeypatch.setattr(machine, "has_gpu", lambda: False)
    monkeypatch.setattr(machine, "installed", lambda name: False)
    assert machine.resolve_backend("auto") == "tensorflow"  # torch not installed
    for name in ("tensorflow", "torch", "jax"):
        assert machine.resolve_backend(name) == name
    assert machine.resolve_backend("auto", num_processes=2) == "jax"
    with pytest.raises(ValueError, match="backend must be one of auto, tensorflow, torch, jax"):
        machine.resolve_backend("mxnet")


def test_a_backend_is_refused_once_keras_runs_another():
    assert keras.backend.backend() == "tensorflow"
    with pytest.raises(ValueError, match="Keras is already imported with the tensorflow backend, not torch"):
        machine.select_backend("torch")
    assert machine.select_backend("tensorflow") == "tensorflow"


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
    x = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    numpy = keras.ops.convert_to_numpy
    for shortcut in "AB":
        last = resnet.resnet_cifar(20, shortcut=shortcut)
        first = resnet.resnet_cifar(20, shortcut=shortcut, data_format="channels_first")
        first.set_weights(last.get_weights())
        print("layout", shortcut, float(np.abs(numpy(first(x)) - numpy(last(x))).max()))
    """
)


def test_under_torch_the_layouts_agree():
    lines = [line.split() for line in run_python(TORCH_SCRIPT, backend="torch").strip().splitlines()]
    assert [line[:2] for line in lines] == [["layout", "A"], ["layout", "B"]]
    assert max(float(line[2]) for line in lines) < 1e-5


def _cmd(data_dir, model_dir, backend, *extra):
    """The short run of ``trainproc``, under ``backend`` and deterministic."""
    return trainproc.cmd(data_dir, model_dir, f"--backend={backend}", "--deterministic", "--seed=5", *extra)


@pytest.mark.parametrize(
    "backend, precision",
    # torch in both precisions its CPU classes default to (mixed_bfloat16 with AVX512-BF16 or AMX).
    [("tensorflow", "auto"), ("torch", "float32"), ("torch", "mixed_bfloat16"), ("jax", "auto")],
)
def test_a_whole_run_killed_and_resumed_under_each_backend(backend, precision, data_dir, killed_run, tmp_path):
    """Same outputs, resume, export and errors under every backend --backend offers."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    flag = f"--precision={precision}"
    if backend == keras.backend.backend():  # this process's: both runs here, as the command runs them
        config = functools.partial(trainproc.killed_config, data_dir, precision=precision, deterministic=True)
        with trainproc.copying_at(8, whole, killed):  # a kill three steps into epoch 2 of 3 leaves this copy
            train.train_and_evaluate(config(whole), log=lambda _: None)
        lines = []
        train.train_and_evaluate(config(killed, export=True), log=lines.append)
        stdout = "\n".join(map(str, lines))
    else:
        if (backend, precision) == ("torch", "float32"):  # the shared run of these flags (trainproc.KILLED_FLAGS)
            whole = killed_run[0]
            shutil.copytree(killed_run[1], killed)
        else:  # the whole run, and its directory as a kill three steps into epoch 2 of 3 leaves it
            out = trainproc.run_copying_at(_cmd(data_dir, whole, backend, flag, "--noexport"), "step8", killed)
            assert out.returncode == 0, out.stderr[-3000:]
        out = subprocess.run(_cmd(data_dir, killed, backend, flag), capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        stdout = out.stdout
    assert f"{backend} backend ({machine.resolve_data_format(backend)})" in stdout
    assert "1 epoch(s) done, going on with epoch 2" in stdout
    if backend == "torch":  # deterministic runs take the eager step, and say so
        assert "eager step (--deterministic trains eagerly" in stdout
    config = json.loads((killed / "config.json").read_text())
    assert (config["backend"], config["data_format"]) == (backend, machine.resolve_data_format(backend))
    assert config["precision"] == machine.resolve_precision(precision, backend)
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
    assert "Exported SavedModel" in stdout
    card = json.loads((export / "assets.extra" / "model_card.json").read_text())
    assert card["val_accuracy"] == metrics["val_accuracy"]
    images = datagen.images(4)[0]
    served = tf.saved_model.load(str(export)).signatures["serving_default"](image=tf.constant(images))
    np.testing.assert_allclose(served["logits"], b(images.astype("float32")), atol=1e-4, rtol=1e-4)

    # Errors are the same one line, also where TensorFlow is not used to read the data (jax: arrays input).
    if backend != "jax":
        return
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
