"""ImageNet ResNets: exact sizes, layout, preprocessing, and a tiny run end to end."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_cifar import errors
from keras_resnet_cifar.data import imagenet_data
from keras_resnet_cifar.models import imagenet, stats
from keras_resnet_cifar.training import imagenet_train, schedules
from tests import datagen, trainproc
from tests.helpers import REPO

WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]


def test_the_registry_pins_torchvisions_counts():
    # torchvision's published sizes; test_resnet.py builds every registry name and checks its pinned size.
    torchvision = {
        "resnet18": 11_689_512,
        "resnet34": 21_797_672,
        "resnet50": 25_557_032,
        "resnet101": 44_549_160,
        "resnet152": 60_192_808,
    }
    assert imagenet.PARAMS == torchvision


@pytest.mark.parametrize("build, last", [(imagenet.ResNet18, 2), (imagenet.ResNet50, 3)])
def test_stage_outputs_are_56_28_14_7(build, last):
    model = build()
    blocks = {"resnet18": (2, 2, 2, 2), "resnet50": (3, 4, 6, 3)}[model.name]
    widths = (64, 128, 256, 512) if model.name == "resnet18" else (256, 512, 1024, 2048)
    for stage, (count, side, width) in enumerate(zip(blocks, (56, 28, 14, 7), widths)):
        out = model.get_layer(f"conv{stage + 2}_block{count}_out").output
        assert tuple(out.shape) == (None, side, side, width)
    assert model.output_shape == (None, 1000)


def test_layer_names_match_keras_applications():
    ours = imagenet.ResNet50()
    theirs = keras.applications.ResNet50(weights=None)
    names = {layer.name for layer in ours.layers}
    missing = [layer.name for layer in theirs.layers[1:] if layer.name not in names]
    assert missing == []
    # Same network but for the convolution biases keras.applications carries.
    biases = sum(int(np.prod(layer.bias.shape)) for layer in theirs.layers if isinstance(layer, keras.layers.Conv2D))
    assert theirs.count_params() == 25_636_712
    assert stats.trainable_params(theirs) - biases == stats.trainable_params(ours)


def test_shortcut_options_and_plain_nets():
    b = stats.trainable_params(imagenet.ResNet34())
    a = stats.trainable_params(imagenet.ResNet34(shortcut="A"))
    c = stats.trainable_params(imagenet.ResNet34(shortcut="C"))
    plain = imagenet.Plain34()
    assert a == stats.trainable_params(plain) < b < c  # A adds no parameters
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    assert plain.name == "plain34" and imagenet.ResNet34(shortcut="C").name == "resnet34_c"
    # C projects on all 16 blocks, B on the 3 that change shape.
    conv_c = sum(layer.name.endswith("_0_conv") for layer in imagenet.ResNet34(shortcut="C").layers)
    conv_b = sum(layer.name.endswith("_0_conv") for layer in imagenet.ResNet34().layers)
    assert (conv_b, conv_c) == (3, 16)


def test_stride_placement_v1_and_v15():
    v15, v1 = imagenet.ResNet50(), imagenet.ResNet50(stride_on="1x1")
    assert v1.name == "resnet50_v1"
    assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert v1.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert v1.get_layer("conv3_block1_2_conv").strides == (1, 1)
    assert stats.trainable_params(v1) == stats.trainable_params(v15)
    assert stats.multiply_adds(v1) < stats.multiply_adds(v15)  # 3.86 G against 4.09 G


@pytest.mark.slow
def test_multiply_adds_match_the_papers_table_1():
    # Table 1 "FLOPs" (multiply-adds) for the paper's v1 networks, to its one decimal.
    paper = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}
    for arch, gflops in paper.items():
        ours = stats.multiply_adds(imagenet.resnet_imagenet(arch, stride_on="1x1")) / 1e9
        assert abs(ours - gflops) < 0.1, (arch, ours)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(arch="resnet20"), "arch must be one of"),
        (dict(shortcut="D"), "shortcut must be 'A', 'B' or 'C'"),
        (dict(stride_on="2x2"), "stride_on must be"),
        (dict(input_shape=(16, 16, 3)), "input_shape must be"),
        (dict(num_classes=0), "num_classes"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        imagenet.resnet_imagenet(**kwargs)


def _jpeg(image):
    return tf.io.encode_jpeg(image, quality=100)


def test_eval_resizes_the_shorter_side_and_crops_the_centre():
    # 100 x 200, black left half, white right half: after the resize to 73 x 146
    # the central 64 columns are 41..104, so the edge (column 73) lands at 32.
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255
    out = imagenet_data.eval_image(tf.io.encode_png(image), size=64).numpy()
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[:, :30].max() < 10 and out[:, 35:].min() > 245
    tall = imagenet_data.eval_image(tf.io.encode_png(image.transpose(1, 0, 2)), size=64).numpy()
    assert tall[:30].max() < 10 and tall[35:].min() > 245


def test_train_crops_have_the_size_vary_and_repeat_with_the_seed():
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    data = tf.io.encode_png(image)
    crops = [imagenet_data.train_image(data, [0, i], size=48).numpy() for i in range(6)]
    assert all(c.shape == (48, 48, 3) and c.dtype == np.uint8 for c in crops)
    assert len({c.tobytes() for c in crops}) == 6
    assert np.array_equal(imagenet_data.train_image(data, [0, 3], size=48).numpy(), crops[3])
    scaled = imagenet_data.train_image(data, [1, 0], size=48, scale_augmentation=True).numpy()
    assert scaled.shape == (48, 48, 3)


def test_folder_errors_name_the_folder(tmp_path):
    datagen.image_folder(tmp_path, WNIDS[:2], per_class=2, ext="jpg", size=40)
    datagen.image_folder(tmp_path, ["n09999999"], per_class=1, split="val", ext="jpg", size=40)
    with pytest.raises(imagenet_data.DataError, match="classes that train/ lacks: n09999999"):
        imagenet_data.load(str(tmp_path))
    with pytest.raises(imagenet_data.DataError, match="needs --data_dir"):
        imagenet_data.load(None)


@pytest.mark.slow
def test_tiny_run_trains_evaluates_exports_and_reloads(tmp_path):
    datagen.image_folder(tmp_path / "data", WNIDS, per_class=8, ext="jpg", size=64)
    datagen.image_folder(tmp_path / "data", WNIDS, per_class=2, split="val", ext="jpg", size=64, seed=1)
    config = imagenet_train.ImageNetConfig.of(
        arch="resnet18",
        data_dir=str(tmp_path / "data"),
        model_dir=str(tmp_path / "run"),
        image_size=64,
        batch_size=8,
        epochs=3,
        learning_rate=0.01,
        schedule="cosine",
        warmup_epochs=1,
        verbose=0,
    )
    lines = []
    metrics = imagenet_train.train_imagenet(config, log=lines.append)
    assert metrics["steps"] == 12 and metrics["val_top5_accuracy"] == 1.0  # 4 classes
    assert 0 <= metrics["val_accuracy"] <= 1 and np.isfinite(metrics["train_loss"])
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["val_accuracy"] == metrics["val_accuracy"]
    assert any(line.startswith("Loaded image folder") and "train 32, val 8; 4 classes" in line for line in lines)

    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 4)
    export = tmp_path / "run" / "export" / "resnet18" / "1"
    loaded = tf.saved_model.load(str(export))
    pixels = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    out = loaded.signatures["serving_default"](image=tf.constant(pixels))
    np.testing.assert_allclose(out["logits"].numpy(), model(pixels.astype("float32")).numpy(), atol=1e-4)
    # Bytes of any size are resized and center-cropped like evaluation.
    big = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    out = loaded.signatures["serving_bytes"](image_bytes=tf.constant([_jpeg(big).numpy()]))
    expected = model(imagenet_data.eval_image(_jpeg(big), 64).numpy()[None].astype("float32")).numpy()
    np.testing.assert_allclose(out["logits"].numpy(), expected, atol=1e-4)
    assert (export / "assets" / "labels.txt").read_text().split() == WNIDS


def test_step_schedule_boundaries_and_warmup():
    schedule = schedules.make_schedule("step", 0.1, total_steps=900, warmup_steps=10)
    # A built-in class: an optimizer saved with it loads with Keras alone.
    assert type(schedule) is keras.optimizers.schedules.PiecewiseConstantDecay
    values = {s: float(schedule(s)) for s in (0, 9, 10, 299, 300, 599, 600, 799, 800, 899)}
    # Warm-up at a tenth of the rate, as the paper's ResNet110.
    assert values[0] == pytest.approx(0.01) and values[9] == pytest.approx(0.01)
    assert values[10] == pytest.approx(0.1) and values[299] == pytest.approx(0.1)
    assert values[300] == pytest.approx(0.01) and values[599] == pytest.approx(0.01)
    assert values[600] == pytest.approx(0.001) and values[799] == pytest.approx(0.001)
    assert values[800] == pytest.approx(0.0001) and values[899] == pytest.approx(0.0001)
    cosine = schedules.make_schedule("cosine", 0.1, total_steps=100, warmup_steps=10)
    assert type(cosine) is keras.optimizers.schedules.CosineDecay
    assert float(cosine(10)) == pytest.approx(0.1) and float(cosine(100)) == pytest.approx(0.0, abs=1e-6)


def test_tool_errors_are_one_line(tmp_path):
    tool = str(REPO / "tools" / "train_imagenet.py")
    result = subprocess.run([sys.executable, tool], capture_output=True, text=True, timeout=300)
    # TensorFlow's C++ start-up notices may come first; ours is the last line.
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --data_dir is required")
    result = subprocess.run(
        [sys.executable, tool, f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'r'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path} holds no prepared imagenet2012")


def test_tfds_imagenet2012_streams_encoded_images(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        source = imagenet_data.load(str(tmp_path))
        assert source.description.startswith("tfds imagenet2012")
        assert (source.train_size, len(source.class_names)) == (6, 1000)
        images, labels = next(iter(imagenet_data.train_dataset(source, 2, size=64)))
        assert images.shape == (2, 64, 64, 3) and images.dtype == tf.uint8 and labels.dtype == tf.int64
        images, _ = next(iter(imagenet_data.eval_dataset(source, 3, size=64)))
        assert images.shape == (3, 64, 64, 3)


@pytest.mark.slow
def test_a_killed_imagenet_run_refuses_other_settings_and_resumes_at_its_step(tmp_path):
    datagen.image_folder(tmp_path / "data", WNIDS, per_class=8, ext="jpg", size=40)

    def cmd(model_dir, *extra):
        return [
            sys.executable,
            str(REPO / "tools" / "train_imagenet.py"),
            "--arch=resnet18",
            f"--data_dir={tmp_path / 'data'}",
            f"--model_dir={model_dir}",
            "--image_size=32",
            "--batch_size=8",
            "--epochs=3",
            "--lr=0.01",
            "--deterministic",
            "--noexport",
            *extra,
        ]

    # The whole run, and its directory as a kill in epoch 2 (of 4-step epochs) leaves it.
    whole = trainproc.run_copying_at(cmd(tmp_path / "whole"), "step6", tmp_path / "killed")
    assert whole.returncode == 0, whole.stderr[-3000:]
    # Other settings are refused before the backend is compared (in this process: its error is the command's line).
    settings = dict(arch="resnet18", data_dir=str(tmp_path / "data"), image_size=32, batch_size=8, epochs=3)
    settings.update(learning_rate=0.01, export=False, label_smoothing=0.1)
    config = imagenet_train.ImageNetConfig.of(model_dir=str(tmp_path / "killed"), **settings)
    with pytest.raises(errors.TrainingError, match="holds an unfinished run with label_smoothing=0.0, not 0.1"):
        imagenet_train.train_imagenet(config, log=lambda _: None)
    # A shell's KERAS_BACKEND (krc-train's torch) does not reach the ImageNet command, which trains and
    # exports under TensorFlow: the resume ends on the whole run's weights.
    env = dict(os.environ, KERAS_BACKEND="torch")
    resumed = subprocess.run(cmd(tmp_path / "killed"), capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in resumed.stdout
    # The same images in the same order from the resumed step on: the same weights.
    a = keras.models.load_model(tmp_path / "whole" / "model.keras").get_weights()
    b = keras.models.load_model(tmp_path / "killed" / "model.keras").get_weights()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
