"""LiteRT and ONNX exports: equal to Keras, full-integer int8, scored by krc-evaluate, bad input in one line."""

import glob
import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet_cifar as krc
from keras_resnet_cifar.models.presets import CIFAR10_CLASSES
from keras_resnet_cifar.serving import evaluate, export, portable, runtimes
from keras_resnet_cifar.serving.versions import ExportError
from tests import fullfs
from tests.helpers import REPO, hook_env, run_tool

IMAGES = REPO.parent / "shared" / "cifar10-jpeg"
KINDS = ["A", "B", "plain"]
FORMATS = [("litert", "none"), ("litert", "float16"), ("litert", "int8"), ("onnx", "none")]


def _resnet20(kind):
    """ResNet20 (A or B) or Plain20 with non-trivial BatchNorm statistics."""
    model = krc.resnet_cifar(n=3, residual=kind != "plain", shortcut="B" if kind == "B" else "A")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype("float32"))
    return model


def _pixels(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{kind: (model, {(format, quantize): version directory})}`` for ResNet20 A, B and Plain20."""
    base = tmp_path_factory.mktemp("portable")
    out = {}
    for kind in KINDS:
        model = _resnet20(kind)
        out[kind] = (
            model,
            {
                (fmt, quantize): portable.export_file(model, fmt, str(base), quantize=quantize, calibration=_pixels(64))
                for fmt, quantize in FORMATS
            },
        )
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", ["litert", "onnx"])
def test_float_exports_give_keras_logits(exported, kind, fmt):
    model, paths = exported[kind]
    images = _pixels(64, seed=1)
    runtime = runtimes.open_export(paths[(fmt, "none")])
    expected = keras.ops.convert_to_numpy(model(images.astype("float32"), training=False))
    np.testing.assert_allclose(runtime.logits(images), expected, rtol=0, atol=1e-4)
    card = runtime.card
    assert (card["format"], card["file"], card["num_classes"]) == (fmt, runtimes.FILES[fmt], 10)
    assert card["check"]["max_abs_logit_difference"] <= 1e-4
    assert runtime.class_names == [str(i) for i in range(10)]
    if fmt == "onnx":
        assert card["opset"] == portable.ONNX_OPSET


@pytest.mark.parametrize("kind", KINDS)
def test_float16_weights_give_keras_logits_to_their_precision_in_half_the_size(exported, kind):
    model, paths = exported[kind]
    images = _pixels(64, seed=1)
    expected = keras.ops.convert_to_numpy(model(images.astype("float32"), training=False))
    got = runtimes.open_export(paths[("litert", "float16")]).logits(images)
    np.testing.assert_allclose(got, expected, rtol=0, atol=portable.FLOAT16_TOLERANCE * np.abs(expected).max())
    size = {q: os.path.getsize(os.path.join(paths[("litert", q)], "model.tflite")) for q in ("none", "float16")}
    assert size["float16"] <= 0.55 * size["none"], size


@pytest.mark.parametrize("kind", KINDS)
def test_int8_computes_in_integers_on_raw_pixels_and_is_small(exported, kind):
    _, paths = exported[kind]
    runtime = runtimes.open_export(paths[("litert", "int8")])
    card = runtime.card
    assert card["float_operators"] == [] and card["float_tensors"] == 0 and card["operators"] > 20
    assert card["input_quantization"] == {"scale": 1.0, "zero_point": 0}  # camera pixels go in unchanged
    assert card["output"] == {"logits": "int8 [None, 10]"} and card["output_quantization"]["scale"] > 0
    int8 = os.path.getsize(os.path.join(paths[("litert", "int8")], "model.tflite"))
    float32 = os.path.getsize(os.path.join(paths[("litert", "none")], "model.tflite"))
    assert int8 <= 0.3 * float32, (int8, float32)
    # Untrained, these nets give every image one class, so agreement of top-1 would say nothing here
    # (the shipped ResNet20's is tested on real images below): their dequantized logits follow Keras's.
    model, images = exported[kind][0], _pixels(500, seed=2)
    got, expected = runtime.logits(images), model.predict(images.astype("float32"), verbose=0)
    assert got.dtype == np.float32 and np.median(np.abs(got - expected)) <= 0.05 * expected.std()


def test_without_the_interpreters_operator_listing_the_card_counts_float_tensors(monkeypatch, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    monkeypatch.delattr(Interpreter, "_get_ops_details")
    path = portable.export_file(krc.resnet_cifar(n=1), "litert", str(tmp_path), quantize="int8", calibration=_pixels(8))
    card = runtimes.open_export(path).card
    assert card["float_tensors"] == 0 and "float_operators" not in card and "operators" not in card


def test_a_leftover_temporary_of_a_process_with_this_pid_is_replaced(tmp_path):
    from keras_resnet_cifar import files

    leftover = files.temporary_path(str(tmp_path / "resnet8_onnx" / "1"))
    os.makedirs(leftover)
    open(os.path.join(leftover, "model.onnx"), "w").close()
    path = portable.export_file(krc.resnet_cifar(n=1), "onnx", str(tmp_path))
    assert (
        sorted(os.listdir(os.path.dirname(path))) == ["1"] and os.path.getsize(os.path.join(path, "model.onnx")) > 1000
    )


def test_a_model_file_of_another_kind_is_refused_in_one_line(tmp_path):
    other = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda x: {"y": x * 2.0}).get_concrete_function(tf.TensorSpec([1, 4], tf.float32))]
    ).convert()
    (tmp_path / "other.tflite").write_bytes(other)
    with pytest.raises(runtimes.ExportFileError, match="is not an export of this zoo: it needs one input of uint8"):
        runtimes.open_export(str(tmp_path / "other.tflite"))


def test_int8_takes_raw_pixels_even_when_the_calibration_images_are_dim(tmp_path):
    dim = np.random.default_rng(0).integers(60, 190, (16, 32, 32, 3), dtype=np.uint8)
    path = portable.export_file(krc.resnet_cifar(n=1), "litert", str(tmp_path), quantize="int8", calibration=dim)
    assert runtimes.open_export(path).card["input_quantization"] == {"scale": 1.0, "zero_point": 0}


def test_a_float_model_is_refused_where_its_conversion_differs_from_keras(monkeypatch, tmp_path):
    """The check before writing: a converted graph that computes something else is not written."""
    model = krc.resnet_cifar(n=1)
    other = portable.constant_form(export.served_form(krc.resnet_cifar(n=1, name="other")))  # other weights
    monkeypatch.setattr(portable, "constant_form", lambda m: other)
    with pytest.raises(ExportError, match="computes other logits than Keras"):
        portable.export_file(model, "onnx", str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_constant_form_has_no_normalization_and_the_same_logits():
    model = _resnet20("A")
    constant = portable.constant_form(model)
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in constant.layers)
    images = _pixels(8).astype("float32")
    np.testing.assert_allclose(constant.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-4)


@pytest.fixture(scope="module")
def real_images():
    """500 calibration and 500 other training images of the JPEG copy, every class."""
    files = sorted(glob.glob(str(IMAGES / "train" / "*" / "*.jpg")))
    picked = np.random.default_rng(0).choice(len(files), 1000, replace=False)
    images = np.stack([tf.io.decode_jpeg(tf.io.read_file(files[i])).numpy() for i in picked])
    labels = np.array([CIFAR10_CLASSES.index(os.path.basename(os.path.dirname(files[i]))) for i in picked])
    return images[:500], images[500:], labels[500:]


@pytest.mark.skipif(not IMAGES.is_dir(), reason="../shared/cifar10-jpeg absent")
def test_pretrained_int8_agrees_with_keras_and_evaluates_alike(real_images, tmp_path):
    calibration, images, labels = real_images
    model = krc.ResNet20(weights="cifar10")
    paths = {
        quantize: portable.export_file(model, "litert", str(tmp_path), quantize=quantize, calibration=calibration)
        for quantize in ("none", "int8")
    }
    paths["onnx"] = portable.export_file(model, "onnx", str(tmp_path))
    expected = model.predict(images.astype("float32"), verbose=0).argmax(-1)
    int8 = runtimes.open_export(paths["int8"])
    logits = int8.logits(images)
    assert np.mean(logits.argmax(-1) == expected) >= 0.97
    # Dequantized with the output's scale and zero point: the logits themselves, not only their order.
    assert np.median(np.abs(logits - model.predict(images.astype("float32"), verbose=0))) < 0.5
    # krc-evaluate's scoring, the same code for the Keras model and each export.
    keras_accuracy = evaluate.evaluate(model, images, labels, list(CIFAR10_CLASSES))["accuracy"]
    for name, path in paths.items():
        accuracy = evaluate.evaluate(runtimes.open_export(path), images, labels, list(CIFAR10_CLASSES))["accuracy"]
        assert abs(accuracy - keras_accuracy) <= (0.03 if name == "int8" else 0.002), (name, accuracy)


@pytest.mark.skipif(not IMAGES.is_dir(), reason="../shared/cifar10-jpeg absent")
def test_the_commands_export_evaluate_and_predict_an_int8_model(tmp_path):
    base = tmp_path / "deploy"
    out = run_tool(
        "export.py",
        "--model=resnet20:cifar10",
        f"--export_base={base}",
        "--format=litert",
        "--quantize=int8",
        f"--data_dir={IMAGES}",
        "--calibration_images=200",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    version = base / "resnet20_litert_int8" / "1"
    assert sorted(os.listdir(version)) == ["labels.txt", "model.tflite", "model_card.json"]
    card = json.loads((version / "model_card.json").read_text())
    assert card["calibration"] == {"images": 200, "seed": 0, "data": f"image folder {IMAGES}", "split": "train"}
    assert (card["validation_split"], card["validation_seed"]) == (0.1, 0)
    assert card["class_names"] == list(CIFAR10_CLASSES) and card["float_operators"] == []
    scored = run_tool(
        "evaluate.py",
        f"--model={version / 'model.tflite'}",
        f"--data_dir={IMAGES}",
        "--split=val",
        "--json=" + str(tmp_path / "r.json"),
    )
    assert scored.returncode == 0, scored.stderr[-2000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["num_images"] == 5000 and result["accuracy"] > 0.8
    cat = sorted(glob.glob(str(IMAGES / "train" / "cat" / "*.jpg")))[0]
    predicted = run_tool("predict.py", f"--model={version}", "--top_k=1", cat)
    assert predicted.returncode == 0 and predicted.stdout.strip().startswith(f"{cat}: cat "), predicted.stdout


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    from keras_resnet_cifar import files

    path = tmp_path_factory.mktemp("zoo") / "model.keras"
    files.save_model(krc.resnet_cifar(n=1), str(path))
    return path


@pytest.mark.parametrize(
    "flags, env, code, message",
    [
        (["--format=litert", "--quantize=int8"], None, 2, "error: --quantize=int8 calibrates on training images"),
        (["--format=tflite"], None, 2, "error: flag --format=tflite: value should be one of"),
        (["--format=onnx", "--quantize=int8"], None, 2, "error: --quantize=int8: only the litert format is quantized"),
        (
            ["--quantize=float16"],
            None,
            2,
            "error: --quantize=float16: only the litert format is quantized; a SavedModel",
        ),
        (["--format=litert", "--seed=3"], None, 2, "error: --seed: only --quantize=int8 calibrates on training images"),
        (["--format=onnx", "--nowarmup"], None, 2, "error: --warmup is for --format=saved_model"),
        (["--format=litert", "--precision=bfloat16"], None, 2, "error: --precision is for --format=saved_model"),
        (
            ["--format=litert"],
            {"KRC_TEST_HIDE_MODULES": "ai_edge_litert"},
            1,
            "error: the litert format needs ai_edge_litert, which is not installed: pip install -e '.[litert]'",
        ),
        (
            ["--format=onnx"],
            {"KRC_TEST_HIDE_MODULES": "onnxruntime,tf2onnx"},
            1,
            "error: the onnx format needs onnxruntime, tf2onnx, which are not installed: pip install -e '.[onnx]'",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(zoo_file, tmp_path, flags, env, code, message):
    base = tmp_path / "base"
    out = run_tool("export.py", f"--model={zoo_file}", f"--export_base={base}", *flags, env=env and hook_env(**env))
    assert out.returncode == code, out.stderr[-2000:]
    [line] = out.stderr.splitlines()
    assert line.startswith(message), line
    assert not base.exists()


def test_a_foreign_model_and_an_existing_version_are_refused_and_leave_things_as_they_were(tmp_path):
    sequential = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ExportError, match="is a Sequential; the export takes a functional keras.Model"):
        portable.export_file(sequential, "litert", str(tmp_path))
    assert os.listdir(tmp_path) == []
    model = krc.resnet_cifar(n=1)
    # krc-export's rule, from the API too: only LiteRT is quantized.
    for fmt, quantize in (("onnx", "int8"), ("litert", "int4")):
        with pytest.raises(ExportError, match=f"^quantize='{quantize}': "):
            portable.export_file(model, fmt, str(tmp_path), quantize=quantize, calibration=_pixels(8))
    assert os.listdir(tmp_path) == []
    first = portable.export_file(model, "onnx", str(tmp_path), version=1)
    before = {name: os.path.getmtime(os.path.join(first, name)) for name in os.listdir(first)}
    with pytest.raises(ExportError, match="exists: exported versions are never overwritten"):
        portable.export_file(model, "onnx", str(tmp_path), version=1)
    assert {name: os.path.getmtime(os.path.join(first, name)) for name in os.listdir(first)} == before
    assert os.listdir(os.path.dirname(first)) == ["1"]


def test_a_litert_export_on_a_full_disk_is_one_line_and_leaves_nothing(zoo_file, tmp_path):
    base = tmp_path / "base"
    cmd = [
        sys.executable,
        str(REPO / "tools" / "export.py"),
        f"--model={zoo_file}",
        f"--export_base={base}",
        "--format=litert",
    ]
    out, left = fullfs.run(cmd, base, "200k")
    assert out.returncode == 1, out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"error: cannot write {base}/resnet8_litert/1: ") and "No space left on device" in line
    assert left == []


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_damaged_or_missing_file_is_one_line(tmp_path, suffix):
    damaged = tmp_path / f"model{suffix}"
    damaged.write_bytes(b"\x00" * 100)
    with pytest.raises(runtimes.ExportFileError, match=f"{damaged} cannot be loaded as "):
        runtimes.open_export(str(damaged))
    with pytest.raises(runtimes.ExportFileError, match="does not exist"):
        runtimes.open_export(str(tmp_path / f"absent{suffix}"))


def test_the_export_runs_under_tensorflow_whatever_keras_backend_says(zoo_file, tmp_path):
    out = run_tool(
        "export.py",
        f"--model={zoo_file}",
        f"--export_base={tmp_path}",
        "--format=onnx",
        env=dict(os.environ, KERAS_BACKEND="torch"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert os.path.isfile(tmp_path / "resnet8_onnx" / "1" / "model.onnx")
