"""SavedModel export: signatures, TF Serving REST bodies, warm-up, tools, errors."""

import base64
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet_cifar as krc
from keras_resnet_cifar.data.arrays import DataError
from keras_resnet_cifar.models.presets import CIFAR10_CLASSES
from keras_resnet_cifar.serving import evaluate, export, predict, runtimes
from tests import datagen
from tests.helpers import REPO, hook_env, run_tool

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
JPEGS = sorted(glob.glob(str(REPO.parent / "shared" / "cifar10-jpeg" / "train" / "*" / "0000.jpg")))


def _model(kind):
    model = krc.resnet_cifar(n=1, residual=kind != "plain", shortcut="B" if kind == "B" else "A")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial BatchNorm statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    out = {}
    for kind in ["A", "B", "plain"]:
        model = _model(kind)
        # Each kind under its own name: resnet8, resnet8_b, plain8.
        out[kind] = (model, export.export_saved_model(model, str(base), class_names=list(CIFAR10_CLASSES)))
    return base, out


def _pixels(batch, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)


def test_layout_assets_and_versions(exported):
    base, out = exported
    path = out["A"][1]
    assert path == os.path.join(base, "resnet8", "1")
    for name in [
        "saved_model.pb",
        "variables",
        "assets/labels.txt",
        "assets.extra/model_card.json",
        "assets.extra/tf_serving_warmup_requests",
    ]:
        assert os.path.exists(os.path.join(path, name)), name
    assert not [d for d in os.listdir(os.path.join(base, "resnet8")) if d.startswith(".tmp")]
    card = json.load(open(os.path.join(path, "assets.extra", "model_card.json")))
    assert card["depth"] == 8 and card["shortcut"] == "A" and card["num_classes"] == 10
    assert json.load(open(os.path.join(out["B"][1], "assets.extra", "model_card.json")))["shortcut"] == "B"
    assert set(card["signatures"]) == {"serving_default", "serving_bytes"}
    # The next export takes the next version; an existing one is refused.
    again = export.export_saved_model(out["A"][0], str(base), warmup=False)
    assert again.endswith(os.path.join("resnet8", "2"))
    with pytest.raises(export.ExportError, match="exists: exported versions are never overwritten"):
        export.export_saved_model(out["A"][0], str(base), version=1)
    # A model name is one folder under the base, never a path out of it; a file in the way is named.
    (base / "afile").write_text("")
    for name in ("../escaped", "a/b", ".."):
        with pytest.raises(export.ExportError, match="the model name must be one folder name"):
            export.export_saved_model(out["A"][0], str(base / "afile"), model_name=name, warmup=False)
    with pytest.raises(export.ExportError, match="afile is a file, not a folder"):
        export.export_saved_model(out["A"][0], str(base / "afile"), warmup=False)
    assert not (base.parent / "escaped").exists()


@pytest.mark.parametrize("kind", ["A", "B", "plain"])
@pytest.mark.parametrize("batch", [1, 7])
def test_signatures_match_keras(exported, kind, batch):
    model, path = exported[1][kind]
    loaded = tf.saved_model.load(path)
    x = _pixels(batch, seed=batch)
    out = loaded.signatures["serving_default"](image=tf.constant(x))
    want = keras.ops.convert_to_numpy(keras.ops.softmax(model(x.astype("float32"))))
    np.testing.assert_allclose(out["probabilities"].numpy(), want, atol=1e-5)
    assert out["probabilities"].dtype == tf.float32 and out["logits"].dtype == tf.float32
    np.testing.assert_array_equal(out["class_ids"].numpy(), want.argmax(1))
    encoded = tf.constant([tf.io.encode_png(image).numpy() for image in x])
    from_bytes = loaded.signatures["serving_bytes"](image_bytes=encoded)
    np.testing.assert_allclose(from_bytes["probabilities"].numpy(), want, atol=1e-5)


def test_mixed_precision_model_exports_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = krc.resnet_cifar(n=1)
    keras.mixed_precision.set_global_policy("float32")
    path = export.export_saved_model(model, str(tmp_path))
    out = tf.saved_model.load(path).signatures["serving_default"](image=tf.constant(_pixels(3)))
    assert out["logits"].dtype == tf.float32
    float32 = export.float32_copy(model)
    assert float32.get_layer("conv1_conv").compute_dtype == "float32"
    np.testing.assert_allclose(out["logits"].numpy(), float32(_pixels(3).astype("float32")), atol=1e-5)


def _convolution_dtypes(path):
    """The dtypes the convolutions of a SavedModel's graph compute in."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    return {tf.as_dtype(node.attr["T"].type) for node in nodes if node.op == "Conv2D"}


def test_a_bfloat16_export_computes_in_bfloat16_and_keeps_the_signatures(tmp_path):
    model = krc.ResNet20(weights="cifar10")
    path = export.export_saved_model(model, str(tmp_path), warmup=False, precision="bfloat16")
    assert path == os.path.join(tmp_path, "resnet20_bfloat16", "1")  # beside a float32 export, never its next version
    assert _convolution_dtypes(path) == {tf.bfloat16}
    assert _convolution_dtypes(export.export_saved_model(model, str(tmp_path), warmup=False)) == {tf.float32}
    x = _pixels(64)
    out = tf.saved_model.load(path).signatures["serving_default"](image=tf.constant(x))
    assert out["logits"].dtype == tf.float32 and out["probabilities"].dtype == tf.float32
    want = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert np.abs(out["logits"].numpy() - want).max() < 0.5  # bfloat16 keeps 8 bits of each value
    assert np.mean(out["class_ids"].numpy() == want.argmax(1)) >= 0.95
    card = json.load(open(os.path.join(path, "assets.extra", "model_card.json")))
    assert card["precision"] == "bfloat16" and card["signatures"]["serving_default"]["outputs"]["logits"].startswith(
        "float32"
    )
    with pytest.raises(export.ExportError, match="precision must be one of float32, bfloat16, not 'float16'"):
        export.export_saved_model(model, str(tmp_path), precision="float16")


def test_the_export_tool_writes_a_bfloat16_savedmodel(tmp_path):
    out = run_tool("export.py", "--model=resnet20:cifar10", f"--export_base={tmp_path}", "--precision=bfloat16")
    assert out.returncode == 0, out.stderr[-2000:]
    path = tmp_path / "resnet20_bfloat16" / "1"
    assert out.stdout.strip().endswith(f"to {path}")
    assert _convolution_dtypes(str(path)) == {tf.bfloat16}
    assert json.loads((path / "assets.extra" / "model_card.json").read_text())["precision"] == "bfloat16"


def test_a_savedmodel_is_read_as_the_other_export_formats_are(exported, tmp_path):
    model, path = exported[1]["A"]
    runtime = runtimes.open_export(path)
    assert (runtime.format, runtime.num_classes, runtime.class_names) == ("saved_model", 10, list(CIFAR10_CLASSES))
    x = _pixels(5)
    np.testing.assert_allclose(runtime.logits(x), model(x.astype("float32")), atol=1e-4)
    assert runtime.logits(_pixels(0)).shape == (0, 10)

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            return {"y": x}

    other = Other()
    tf.saved_model.save(other, str(tmp_path / "other"), signatures={"serving_default": other.serve})
    with pytest.raises(runtimes.ExportFileError, match="other is not an export of this zoo: its serving_default"):
        runtimes.open_export(str(tmp_path / "other"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a protocol buffer")
    with pytest.raises(runtimes.ExportFileError, match="broken cannot be loaded as a SavedModel: "):
        runtimes.open_export(str(tmp_path / "broken"))


def test_the_evaluate_tool_scores_a_savedmodel_as_the_keras_model_scores(exported, tmp_path):
    model, path = exported[1]["A"]
    images, labels = datagen.image_folder(str(tmp_path / "data"), list(CIFAR10_CLASSES), per_class=3)
    out = run_tool(
        "evaluate.py",
        f"--model={path}",
        f"--data_dir={tmp_path / 'data'}",
        "--split=train",
        "--validation_split=0",
        f"--json={tmp_path / 'r.json'}",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    scored = json.loads((tmp_path / "r.json").read_text())
    keras_scored = evaluate.evaluate(model, np.asarray(images), np.asarray(labels), list(CIFAR10_CLASSES))
    assert scored["num_images"] == 30 and scored["confusion_matrix"] == keras_scored["confusion_matrix"]


def test_tfsmlayer_loads_export(exported):
    model, path = exported[1]["A"]
    layer = keras.layers.TFSMLayer(path, call_endpoint="serving_default")
    x = _pixels(4)
    out = layer(tf.constant(x))
    np.testing.assert_allclose(out["logits"], model(x.astype("float32")), atol=1e-4)


def test_saved_model_cli_show_lists_contract(exported):
    path = exported[1]["A"][1]
    out = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    default = text[text.index("signature_def['serving_default']") :]
    bytes_sig = text[text.index("signature_def['serving_bytes']") : text.index("signature_def['serving_default']")]
    assert "inputs['image'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, 32, 32, 3)" in default
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in bytes_sig
    for sig in (default, bytes_sig):
        assert "outputs['probabilities'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 10)" in sig
        assert "outputs['logits'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 10)" in sig
        assert "outputs['class_ids'] tensor_info:\n        dtype: DT_INT64\n        shape: (-1)" in sig


def test_saved_model_cli_run(exported, tmp_path):
    model, path = exported[1]["A"]
    x = _pixels(1, seed=9)
    np.save(tmp_path / "image.npy", x)
    out = subprocess.run(
        [
            SAVED_MODEL_CLI,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"image={tmp_path / 'image.npy'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Result for output key probabilities" in out.stdout
    assert f"Result for output key class_ids:\n[{int(np.argmax(model(x.astype('float32'))))}]" in out.stdout


def _real_images():
    if JPEGS:
        return [open(p, "rb").read() for p in JPEGS[:3]]
    return [tf.io.encode_jpeg(image).numpy() for image in _pixels(3)]


def test_rest_bodies_as_tf_serving_decodes_them(exported):
    """Builds the README's request bodies, decodes them as TF Serving does, runs them."""
    model, path = exported[1]["A"]
    signatures = tf.saved_model.load(path).signatures
    files = _real_images()
    pixels = np.stack([tf.io.decode_jpeg(f).numpy() for f in files])

    row = json.loads(json.dumps({"instances": pixels.tolist()}))
    out = signatures["serving_default"](image=tf.constant(np.array(row["instances"], dtype=np.uint8)))
    # Row format with several outputs: a list of one object per instance.
    reply = {"predictions": [{k: v.numpy()[i].tolist() for k, v in out.items()} for i in range(len(files))]}
    assert len(reply["predictions"]) == 3 and len(reply["predictions"][0]["probabilities"]) == 10
    assert isinstance(reply["predictions"][0]["class_ids"], int)

    columnar = json.loads(json.dumps({"inputs": {"image": pixels.tolist()}}))
    out2 = signatures["serving_default"](image=tf.constant(np.array(columnar["inputs"]["image"], dtype=np.uint8)))
    reply2 = {"outputs": {k: v.numpy().tolist() for k, v in out2.items()}}
    assert np.array(reply2["outputs"]["logits"]).shape == (3, 10)
    assert np.array(reply2["outputs"]["class_ids"]).shape == (3,)

    b64 = json.loads(
        json.dumps(
            {"signature_name": "serving_bytes", "instances": [{"b64": base64.b64encode(f).decode()} for f in files]}
        )
    )
    decoded = [base64.b64decode(item["b64"]) for item in b64["instances"]]
    out3 = signatures["serving_bytes"](image_bytes=tf.constant(decoded))
    np.testing.assert_allclose(out3["probabilities"].numpy(), out["probabilities"].numpy(), atol=1e-6)


def test_bad_inputs_are_clear_errors(exported):
    signatures = tf.saved_model.load(exported[1]["A"][1]).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image must be uint8 \[N, 32, 32, 3\]"):
        signatures["serving_default"](image=tf.constant(_pixels(1)[:, :28, :28]))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        signatures["serving_default"](image=tf.constant(_pixels(1).astype(np.float32)))
    good = tf.io.encode_png(_pixels(1)[0]).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"serving_bytes: image.*\n?.*\b2\b.*is not a PNG or JPEG"):
        signatures["serving_bytes"](image_bytes=tf.constant([good, good, b"not an image"]))
    small = tf.io.encode_png(np.zeros((28, 28, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="each image must be a 32x32 PNG or JPEG"):
        signatures["serving_bytes"](image_bytes=tf.constant([small]))


def _prediction_log_class():
    """TF Serving's own PredictionLog message, to read the records as the server does."""
    from tensorflow_serving.apis import prediction_log_pb2

    return prediction_log_pb2.PredictionLog


def test_warmup_requests_parse_and_run(exported):
    path = exported[1]["A"][1]
    signatures = tf.saved_model.load(path).signatures
    cls = _prediction_log_class()
    records = list(
        tf.data.TFRecordDataset(os.path.join(path, "assets.extra", "tf_serving_warmup_requests")).as_numpy_iterator()
    )
    assert 0 < len(records) <= 1000
    seen = set()
    for raw in records:
        log = cls.FromString(raw)
        request = log.predict_log.request
        assert request.model_spec.name == "resnet8"
        signature = request.model_spec.signature_name
        ((key, proto),) = request.inputs.items()
        value = tf.make_ndarray(proto)
        out = signatures[signature](**{key: tf.constant(value)})
        assert out["probabilities"].shape == (len(value), 10)
        seen.add((signature, key))
    assert seen == {("serving_default", "image"), ("serving_bytes", "image_bytes")}


def test_export_and_predict_tools(tmp_path):
    model = krc.resnet_cifar(n=1)
    model.save(tmp_path / "model.keras")
    (tmp_path / "labels.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    args = [f"--model={tmp_path / 'model.keras'}", f"--export_base={tmp_path / 'serve'}", "--model_name=cifar"]
    out = run_tool("export.py", *args, "--version=3")
    assert out.returncode == 0, out.stderr
    saved = tmp_path / "serve" / "cifar" / "3"
    assert (saved / "assets" / "labels.txt").read_text().split()[0] == "class0"
    # The same version again is refused (ExportError: test_layout_assets_and_versions; its exit 1 and
    # one line: tests/test_cli.py).
    out = run_tool("export.py", f"--model={tmp_path / 'missing.keras'}", f"--export_base={tmp_path / 'serve'}")
    assert out.returncode == 2 and "does not exist" in out.stderr and "Traceback" not in out.stderr

    images = _pixels(2, seed=4)
    for i, image in enumerate(images):
        tf.io.write_file(str(tmp_path / f"img{i}.png"), tf.io.encode_png(image))
    # The same two images, then a gray one (below) as RGB: one SavedModel call for both checks.
    gray = np.random.default_rng(1).integers(0, 256, (32, 32, 1), dtype=np.uint8)
    np.save(tmp_path / "batch.npy", np.concatenate([images, np.repeat(gray, 3, -1)[None]]))
    keras_out = run_tool(
        "predict.py",
        f"--model={tmp_path / 'model.keras'}",
        "--top_k=2",
        "--json",
        str(tmp_path / "img0.png"),
        str(tmp_path / "img1.png"),
    )
    assert keras_out.returncode == 0, keras_out.stderr
    saved_out = run_tool("predict.py", f"--model={saved}", f"--npy={tmp_path / 'batch.npy'}", "--top_k=2", "--json")
    assert saved_out.returncode == 0, saved_out.stderr
    a, (*b, gray_npy) = json.loads(keras_out.stdout), json.loads(saved_out.stdout)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b):
        assert [t["class"] for t in x["top_k"]] == [t["class"] for t in y["top_k"]]
        assert x["top_k"][0]["class"].startswith("class")
        assert x["top_k"][0]["probability"] == pytest.approx(y["top_k"][0]["probability"], abs=1e-5)
    tf.io.write_file(str(tmp_path / "small.png"), tf.io.encode_png(np.zeros((28, 28, 3), np.uint8)))
    with pytest.raises(DataError, match="small.png is 28x28, expected 32x32 \\(pass --resize"):
        predict.read_images([str(tmp_path / "small.png")])  # a DataError: one line, exit 1 (tests/test_cli.py)
    # Grayscale and RGBA images become RGB, as in training: one rule for both. (With --resize,
    # which leaves 32x32 images as they are and takes the small one.)
    tf.io.write_file(str(tmp_path / "gray.png"), tf.io.encode_png(gray))
    tf.io.write_file(str(tmp_path / "rgba.png"), tf.io.encode_png(np.concatenate([np.repeat(gray, 3, -1), gray], -1)))
    paths = [str(tmp_path / name) for name in ("gray.png", "rgba.png", "small.png")]
    out = run_tool("predict.py", f"--model={saved}", "--json", "--top_k=2", "--resize", *paths)
    assert out.returncode == 0, out.stderr
    as_gray, as_rgba, _ = json.loads(out.stdout)
    for other in (as_rgba, gray_npy):
        assert [t["class"] for t in other["top_k"]] == [t["class"] for t in as_gray["top_k"]]
        for a, b in zip(other["top_k"], as_gray["top_k"]):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)


@pytest.mark.parametrize("kwargs", [dict(shortcut="A"), dict(shortcut="B"), dict(residual=False)])
def test_folded_batch_norm_matches_the_model(kwargs):
    model = krc.resnet_cifar(n=1, **kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape),
                    rng.normal(0, 0.1, shape),
                    rng.normal(0, 0.1, shape),
                    rng.uniform(0.5, 1.5, shape),
                ]
            )
    folded = export.served_form(model)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
    assert all(layer.use_bias for layer in folded.layers if isinstance(layer, keras.layers.Conv2D))
    x = rng.integers(0, 256, (4, 32, 32, 3)).astype("float32")
    want, got = model(x).numpy(), folded(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_a_killed_export_leaves_no_version_and_the_next_export_cleans_up(tmp_path):
    import os
    import signal

    krc.resnet_cifar(n=1).save(tmp_path / "model.keras")
    cmd = [
        sys.executable,
        str(REPO / "tools" / "export.py"),
        f"--model={tmp_path / 'model.keras'}",
        f"--export_base={tmp_path / 'serve'}",
        "--model_name=cifar",
        "--nowarmup",
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=hook_env(KRC_TEST_PAUSE_AT="export"),
    )
    assert proc.stdout.readline().strip() == "paused at export"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (left,) = os.listdir(tmp_path / "serve" / "cifar")
    assert left.startswith(".tmp-")  # TF Serving ignores it: not an integer
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"Removed 1 unfinished export(s) of processes that were stopped: {left}" in out.stdout
    assert os.listdir(tmp_path / "serve" / "cifar") == ["1"]


# Every depth's counts and shortcut are checked where every registry name is built
# (tests/test_resnet.py); here, that the card states them, for each kind of network.
_CARDS = [(f"cifar{d}{s}", d, s) for d in (20, 56) for s in ("A", "B", "none (plain)")] + [
    ("imagenet18", 18, "B"),
    ("imagenet34c", 34, "C"),
    ("imagenet34a", 34, "A"),
    ("imagenet50", 50, "B"),
    ("imagenetplain18", 18, "none (plain)"),
]


def _card_model(key, depth, shortcut):
    if key.startswith("cifar"):
        if shortcut == "none (plain)":
            return krc.resnet_cifar(depth, residual=False)
        return krc.resnet_cifar(depth, shortcut=shortcut)
    if shortcut == "none (plain)":
        return krc.resnet_imagenet(depth, residual=False)
    return krc.resnet_imagenet(depth, shortcut=shortcut)


@pytest.mark.parametrize(
    "key,depth,shortcut",
    _CARDS,
)
def test_the_model_card_states_the_true_depth_and_shortcut(key, depth, shortcut):
    card = export.describe(_card_model(key, depth, shortcut))
    assert (card["depth"], card["shortcut"]) == (depth, shortcut)


def test_a_npy_batch_of_pixels_scaled_to_0_1_is_refused_not_read_as_black(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.save(tmp_path / "scaled.npy", pixels / 255.0)
    with pytest.raises(DataError, match=r"pixels scaled to 0..1; the models take raw 0..255 pixels"):
        predict.read_npy(str(tmp_path / "scaled.npy"))
    np.save(tmp_path / "raw.npy", pixels.astype("float32"))
    np.testing.assert_array_equal(predict.read_npy(str(tmp_path / "raw.npy")), pixels)
    for name, bad, message in (
        ("empty.npy", np.zeros((0, 32, 32, 3), np.uint8), "with N >= 1"),
        ("nan.npy", np.full((1, 32, 32, 3), np.nan), "not all finite"),
    ):
        np.save(tmp_path / name, bad)
        with pytest.raises(DataError, match=message):
            predict.read_npy(str(tmp_path / name))
    (tmp_path / "photo.npy").write_bytes(b"\xff\xd8\xff\xe0 not an array")
    with pytest.raises(DataError, match=r"photo.npy: not a \.npy array file; pickled data is not read$"):
        predict.read_npy(str(tmp_path / "photo.npy"))
    np.savez(tmp_path / "archive.npz", x=pixels)
    with pytest.raises(DataError, match="is a .npz archive"):
        predict.read_npy(str(tmp_path / "archive.npz"))
