"""Shipped CIFAR-10 weights: parity with the converter, hashes, errors, tools, wheel."""

import json
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import keras_resnet_cifar as krc
from keras_resnet_cifar.data import sources
from keras_resnet_cifar.models import convert, pretrained
from keras_resnet_cifar.serving import loading
from keras_resnet_cifar.training import train
from tests import datagen
from tests.helpers import REPO, run_tool

SHARED = REPO.parent / "shared"
CHECKPOINTS = SHARED / "reference-weights" / "akamaster"
IMAGES = SHARED / "cifar10-jpeg" / "train"
CONSTRUCTORS = {"resnet20": krc.ResNet20, "resnet32": krc.ResNet32, "resnet44": krc.ResNet44, "resnet56": krc.ResNet56}


@pytest.fixture(scope="module")
def images():
    """100 CIFAR-10 JPEG images, the first 10 of each class."""
    paths = [p for name in sources.CIFAR10_CLASSES for p in sources.list_images(str(IMAGES / name))[:10]]
    return sources.decode_files(paths).astype("float32")


@pytest.mark.parametrize("entry", list(pretrained.PRETRAINED.values()), ids=lambda e: e.model)
def test_named_weights_match_the_converter(entry, images):
    converted = convert.convert_state_dict(convert.read_checkpoint(str(CHECKPOINTS / entry.checkpoint)))
    model = CONSTRUCTORS[entry.model](weights="cifar10")
    assert model.name == entry.model
    want = converted.predict(images, batch_size=50, verbose=0)
    got = model.predict(images, batch_size=50, verbose=0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert (got.argmax(1) == want.argmax(1)).all()
    # The model carries the reference's normalisation, so raw pixels work.
    np.testing.assert_allclose(
        model.get_layer("preprocessing").mean.numpy().ravel(), pretrained.REFERENCE_MEAN, rtol=1e-6
    )


def test_every_pinned_file_is_shipped_with_its_hash():
    for entry in pretrained.PRETRAINED.values():
        assert pretrained.path(entry).endswith(entry.filename)
    assert "Redistribution and use in source and binary forms" in (pretrained.weights_dir() / "LICENSE").read_text()


@pytest.fixture
def copied_weights(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(str(pretrained.weights_dir()), folder)
    monkeypatch.setattr(pretrained, "weights_dir", lambda: folder)
    return folder


def test_a_flipped_byte_fails_the_hash_check(copied_weights):
    target = copied_weights / "resnet20_cifar10.weights.h5"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(pretrained.WeightsError, match="resnet20_cifar10.weights.h5 is corrupt"):
        krc.ResNet20(weights="cifar10")
    krc.ResNet32(weights="cifar10")  # the others are untouched


def test_a_missing_file_is_named(copied_weights):
    (copied_weights / "resnet44_cifar10.weights.h5").unlink()
    with pytest.raises(pretrained.WeightsError, match="resnet44_cifar10.weights.h5 is missing"):
        krc.ResNet44(weights="cifar10")


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: krc.ResNet20(weights="imagenet"), "weights must be None, 'cifar10' or the path"),
        (lambda: krc.ResNet20(weights=3), "weights must be None"),
        (lambda: krc.ResNet110(weights="cifar10"), "resnet20, resnet32, resnet44, resnet56 only. Received: resnet110"),
        (lambda: krc.ResNet20(shortcut="B", weights="cifar10"), "Received: resnet20_b"),
        (lambda: krc.Plain20(weights="cifar10"), "Received: plain20"),
        (lambda: krc.ResNet20(weights="cifar10", num_classes=100), "include_top=False .* num_classes=100"),
        (lambda: krc.ResNet20(weights="cifar10", preprocessing_std=(1, 1, 1)), "leave preprocessing_mean"),
        (lambda: krc.ResNet20(weights="model.keras"), "path to a .weights.h5"),
        (lambda: krc.ResNet20(weights="missing.weights.h5"), "weights file missing.weights.h5 does not exist"),
    ],
)
def test_bad_weights_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_include_top_false_loads_everything_but_the_classifier(images):
    full = krc.ResNet20(weights="cifar10")
    features = krc.ResNet20(weights="cifar10", include_top=False, pooling="avg", input_shape=(None, None, 3))
    assert "predictions" not in [layer.name for layer in features.layers]
    pooled = keras.Model(full.input, full.get_layer("avg_pool").output)
    np.testing.assert_allclose(
        features.predict(images[:8], verbose=0), pooled.predict(images[:8], verbose=0), rtol=0, atol=1e-5
    )
    random = krc.ResNet20(include_top=False, pooling="avg")
    assert not np.allclose(random.predict(images[:8], verbose=0), pooled.predict(images[:8], verbose=0))


def test_a_weights_file_path_loads_and_a_mismatched_one_is_refused(tmp_path, images):
    source = krc.ResNet20(weights="cifar10")
    source.save_weights(tmp_path / "mine.weights.h5")
    again = krc.ResNet20(
        weights=str(tmp_path / "mine.weights.h5"),
        preprocessing_mean=pretrained.REFERENCE_MEAN,
        preprocessing_std=pretrained.REFERENCE_STD,
    )
    np.testing.assert_array_equal(again.predict(images[:4], verbose=0), source.predict(images[:4], verbose=0))
    with pytest.raises(ValueError, match="cannot load weights file .*mine.weights.h5 into resnet32"):
        krc.ResNet32(weights=str(tmp_path / "mine.weights.h5"))


def test_model_specs():
    assert loading.parse_spec("resnet20:cifar10") == ("resnet20", "cifar10")
    assert loading.parse_spec("runs/x/model.keras") is None
    with pytest.raises(
        loading.ModelFileError,
        match="no pretrained model 'resnet110:cifar10'; available: "
        "resnet20:cifar10, resnet32:cifar10, resnet44:cifar10, resnet56:cifar10",
    ):
        loading.parse_spec("resnet110:cifar10")
    loaded = loading.load("resnet20:cifar10")
    assert loaded.class_names == list(sources.CIFAR10_CLASSES) and loaded.card["dataset"] == "cifar10"


def test_tools_take_a_pretrained_name(tmp_path):
    cat = sources.list_images(str(IMAGES / "cat"))[1]
    out = run_tool("predict.py", "--model=resnet20:cifar10", "--top_k=2", "--json", cat)
    assert out.returncode == 0, out.stderr
    top = json.loads(out.stdout)[0]["top_k"]
    model = krc.ResNet20(weights="cifar10")
    probs = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(sources.decode_files([cat]).astype("float32"), verbose=0))
    )[0]
    assert top[0]["class"] == sources.CIFAR10_CLASSES[int(probs.argmax())]
    assert top[0]["probability"] == pytest.approx(float(probs.max()), abs=1e-5)

    out = run_tool("export.py", "--model=resnet20:cifar10", f"--export_base={tmp_path / 'serve'}", "--nowarmup")
    assert out.returncode == 0, out.stderr
    version = tmp_path / "serve" / "resnet20" / "1"
    assert (version / "assets" / "labels.txt").read_text().split() == list(sources.CIFAR10_CLASSES)
    card = json.loads((version / "assets.extra" / "model_card.json").read_text())
    assert card["dataset"] == "cifar10" and "akamaster" in card["source"]

    out = run_tool("predict.py", "--model=resnet110:cifar10", cat)
    assert out.returncode == 1 and out.stderr.strip() == (
        "error: no pretrained model 'resnet110:cifar10'; available: resnet20:cifar10, resnet32:cifar10, "
        "resnet44:cifar10, resnet56:cifar10"
    )


def test_evaluate_tool_takes_a_pretrained_name(tmp_path):
    datagen.cifar10_batches(tmp_path, per_batch=4)
    out = run_tool(
        "evaluate.py",
        "--model=resnet20:cifar10",
        f"--data_dir={tmp_path / 'cifar-10-batches-py'}",
        f"--json={tmp_path / 'result.json'}",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["num_images"] == 4 and result["model"] == "resnet20:cifar10"


def test_fine_tuning_on_cifar100_starts_from_the_shipped_backbone(tmp_path):
    path, _ = datagen.cifar100_batches(tmp_path, num=200)
    config = train.TrainConfig.of(
        n=3,
        dataset="cifar100",
        data_dir=path,
        model_dir=str(tmp_path / "run"),
        batch_size=50,
        steps=1,
        schedule="cosine",
        learning_rate=1e-9,
        weight_decay=0,
        validation_split=0,
        verbose=0,
        export=False,
        init_weights="cifar10",
    )
    lines = []
    train.train_and_evaluate(config, log=lines.append)
    assert "Initialised from cifar10" in lines
    tuned = keras.models.load_model(tmp_path / "run" / "model.keras")
    shipped = krc.ResNet20(weights="cifar10")
    assert tuned.output_shape == (None, 100)
    # One step at lr 1e-9 leaves the backbone where the shipped weights put it.
    np.testing.assert_allclose(
        tuned.get_layer("conv4_block3_2_conv").kernel.numpy(),
        shipped.get_layer("conv4_block3_2_conv").kernel.numpy(),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        tuned.get_layer("preprocessing").mean.numpy().ravel(), pretrained.REFERENCE_MEAN, rtol=1e-6
    )
    bad = train.TrainConfig.of(n=18, dataset="cifar100", data_dir=path, init_weights="cifar10")
    with pytest.raises(train.TrainingError, match="--init_weights: weights='cifar10' exist for .* Received: resnet110"):
        train.train_and_evaluate(bad)


def test_a_built_wheel_contains_the_weights(tmp_path):
    for name in ["setup.py", "README.md"]:
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(
        REPO / "keras_resnet_cifar", tmp_path / "keras_resnet_cifar", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", "dist"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in pretrained.PRETRAINED.values():
        assert f"keras_resnet_cifar/models/weights/{entry.filename}" in names
    assert "keras_resnet_cifar/models/weights/LICENSE" in names
