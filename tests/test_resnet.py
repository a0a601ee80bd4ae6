"""Tests of the CIFAR ResNet builder against the paper's exact numbers."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_resnet_cifar as krc
from keras_resnet_cifar.models import blocks, presets, stats
from keras_resnet_cifar.models.presets import CIFAR100_EXTRA_PARAMS, VARIANTS


def _images(batch=2, size=32, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def _count(model, cls):
    return sum(isinstance(layer, cls) for layer in model.layers)


# n = 1 and 2 are not in the registry: the formula holds off the table too
# (every registry name is built below).
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("kind", ["A", "B", "plain"])
def test_exact_sizes(n, kind):
    model = krc.resnet_cifar(n=n, residual=kind != "plain", shortcut="B" if kind == "B" else "A")
    extra = 2_752 if kind == "B" else 0
    assert stats.trainable_params(model) == 97_216 * n - 21_926 + extra
    assert stats.non_trainable_params(model) == 32 + 448 * n + (192 if kind == "B" else 0)
    assert stats.weighted_layers(model) == 6 * n + 2
    assert _count(model, keras.layers.Add) == (0 if kind == "plain" else 3 * n)
    assert model.count_params() == stats.trainable_params(model) + stats.non_trainable_params(model)


def _builds_slowly(entry):
    return entry.family == "imagenet" and entry.depth >= 101


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.slow] if _builds_slowly(entry) else [])
        for name, entry in presets.MODELS.items()
        if entry.family == "imagenet" or entry.n < 200
    ],
)
def test_from_preset_builds_every_registry_name_with_its_pinned_size(name):
    entry = presets.MODELS[name]
    # ImageNet nets at 32x32: the sizes do not depend on the input's.
    small = {"input_shape": (32, 32, 3)} if entry.family == "imagenet" else {}
    model = krc.from_preset(name, **small)
    assert model.name == name
    assert stats.trainable_params(model) == entry.trainable_params
    assert stats.non_trainable_params(model) == entry.non_trainable_params
    assert stats.weighted_layers(model) == entry.depth
    assert _count(model, keras.layers.Add) == (_adds(entry) if entry.residual else 0)
    # What the export's model card states (export.describe): the shortcut read off the layers.
    assert stats.shortcut_kind(model) == (entry.shortcut if entry.residual else "none (plain)")


def _adds(entry):
    if entry.family == "cifar":
        return 3 * entry.n
    return sum(presets.IMAGENET_STAGES[entry.arch][0])


def test_dtype_goes_to_the_layers_not_to_the_global_policy():
    model = krc.ResNet20(dtype="mixed_bfloat16")
    assert keras.mixed_precision.dtype_policy().name == "float32"
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("conv4_block3_out").compute_dtype == "bfloat16"
    assert model.get_layer("preprocessing").compute_dtype == "float32"
    assert keras.ops.convert_to_numpy(model(_images())).dtype == np.float32
    assert krc.ResNet50(dtype="mixed_float16", input_shape=(32, 32, 3)).get_layer("conv1_conv").compute_dtype == (
        "float16"
    )
    with pytest.raises(ValueError, match="dtype must be None, a dtype policy name"):
        krc.ResNet20(dtype="float33")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet1202", "resnet1202_b"])
def test_variant_table_resnet1202(name):
    v = VARIANTS[name]
    model = krc.from_preset(name)
    assert stats.trainable_params(model) == v.trainable_params
    assert stats.non_trainable_params(model) == v.non_trainable_params
    assert stats.weighted_layers(model) == 1202


def test_table_matches_paper_formula():
    for v in VARIANTS.values():
        extra = 2_752 if v.shortcut == "B" and v.residual else 0
        assert v.trainable_params == 97_216 * v.n - 21_926 + extra
    assert VARIANTS["resnet110"].trainable_params == 1_727_962
    assert VARIANTS["resnet1202"].trainable_params == 19_421_274


def test_named_constructors():
    for fn, name in [(krc.ResNet20, "resnet20"), (krc.ResNet56, "resnet56"), (krc.Plain32, "plain32")]:
        assert fn().name == name
    assert krc.ResNet56(shortcut="B").name == "resnet56_b"
    assert krc.ResNet20(name="mine").name == "mine"


def test_cifar100_head():
    ten = krc.ResNet20()
    hundred = krc.ResNet20(num_classes=100)
    assert stats.trainable_params(hundred) - stats.trainable_params(ten) == 5_850 == CIFAR100_EXTRA_PARAMS
    assert hundred.output_shape == (None, 100)


def test_stage_shapes_and_names():
    model = krc.ResNet20()
    shapes = {
        "conv1_relu": (None, 32, 32, 16),
        "conv2_block3_out": (None, 32, 32, 16),
        "conv3_block3_out": (None, 16, 16, 32),
        "conv4_block3_out": (None, 8, 8, 64),
        "avg_pool": (None, 64),
        "predictions": (None, 10),
    }
    for name, shape in shapes.items():
        assert tuple(model.get_layer(name).output.shape) == shape
    for name in [
        "conv1_conv",
        "conv1_bn",
        "conv2_block1_1_conv",
        "conv2_block1_2_bn",
        "conv3_block1_0_subsample",
        "conv3_block1_0_pad",
        "conv4_block1_add",
    ]:
        model.get_layer(name)
    b = krc.ResNet20(shortcut="B")
    assert b.get_layer("conv3_block1_0_conv").strides == (2, 2)
    assert b.get_layer("conv4_block1_0_conv").kernel_size == (1, 1)
    # Identity shortcuts everywhere else: exactly two projections.
    assert sum(1 for layer in b.layers if layer.name.endswith("_0_conv")) == 2


def test_plain_lines_up_with_residual():
    res = {layer.name for layer in krc.ResNet32().layers}
    plain = {layer.name for layer in krc.Plain32().layers}
    assert plain < res
    assert all(name.endswith(("_add", "_subsample", "_0_pad")) for name in res - plain)


def test_head_options():
    assert krc.ResNet20(include_top=False).output_shape == (None, 8, 8, 64)
    assert krc.ResNet20(include_top=False, pooling="avg").output_shape == (None, 64)
    assert krc.ResNet20(include_top=False, pooling="max").output_shape == (None, 64)
    probs = krc.ResNet20(classifier_activation="softmax")(_images(3))
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)
    any_size = krc.ResNet20(input_shape=(None, None, 3))
    assert any_size(_images(1, size=40)).shape == (1, 10)


@pytest.mark.parametrize("in_ch,out_ch,stride", [(16, 32, 2), (32, 64, 2), (5, 12, 2), (4, 7, 1)])
def test_option_a_shortcut_values(in_ch, out_ch, stride):
    inputs = keras.Input((9, 10, in_ch))
    layer_model = keras.Model(inputs, blocks.option_a_shortcut(inputs, out_ch, stride, name="s"))
    x = np.random.RandomState(1).normal(size=(2, 9, 10, in_ch)).astype("float32") + 3.0
    y = keras.ops.convert_to_numpy(layer_model(x))
    pad = out_ch - in_ch
    before = pad // 2
    sub = x[:, ::stride, ::stride, :]
    assert y.shape == sub.shape[:3] + (out_ch,)
    np.testing.assert_array_equal(y[..., before : before + in_ch], sub)
    assert not np.any(y[..., :before])
    assert not np.any(y[..., before + in_ch :])
    assert y[..., before + in_ch :].shape[-1] == pad - before


def test_option_a_inside_resnet20():
    model = krc.ResNet20()
    probe = keras.Model(
        model.input,
        [model.get_layer("conv2_block3_out").output, model.get_layer("conv3_block1_0_pad").output],
    )
    before, after = (keras.ops.convert_to_numpy(t) for t in probe(_images(2)))
    np.testing.assert_array_equal(after[..., 8:24], before[:, ::2, ::2, :])
    assert not np.any(after[..., :8]) and not np.any(after[..., 24:])


def test_stride2_convolutions_pad_symmetrically():
    # Conv output pixel i must be centred on input 2i, where option A samples.
    model = krc.ResNet20()
    pad = model.get_layer("conv3_block1_1_pad")
    assert pad.padding == ((1, 1), (1, 1))
    assert model.get_layer("conv3_block1_1_conv").padding == "valid"


def test_preprocessing_inside_model():
    raw = _images(4)
    with_pre = krc.ResNet20(preprocessing_mean=(10, 20, 30), preprocessing_std=(2, 4, 8))
    without = krc.ResNet20(include_preprocessing=False)
    without.set_weights(with_pre.get_weights())
    normalised = (raw - np.array([10, 20, 30], "float32")) / np.array([2, 4, 8], "float32")
    np.testing.assert_allclose(with_pre(raw), without(normalised), rtol=1e-4, atol=1e-4)
    config = with_pre.get_layer("preprocessing").get_config()
    assert list(config["mean"]) == [10, 20, 30]
    assert list(config["variance"]) == [4, 16, 64]
    assert "preprocessing" not in {layer.name for layer in without.layers}
    krc.ResNet20(include_preprocessing=False, input_shape=(32, 32, 1))


def test_config_json_round_trip():
    model = krc.ResNet20(shortcut="A")
    clone = keras.Model.from_config(json.loads(json.dumps(model.get_config())))
    clone.set_weights(model.get_weights())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(model(_images()), clone(_images()))
    again = keras.models.model_from_json(model.to_json())
    assert stats.trainable_params(again) == 269_722


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_returns_float32(policy):
    keras.mixed_precision.set_global_policy(policy)
    model = krc.ResNet20()
    assert model.get_layer("conv1_conv").compute_dtype == policy.split("_")[1]
    assert model.output.dtype == "float32"
    assert keras.ops.convert_to_numpy(model(_images())).dtype == np.float32
    probs = krc.ResNet20(classifier_activation="softmax")
    assert probs.output.dtype == "float32"


def test_weight_decay_is_pytorch_coupled_decay():
    weight_decay = 1e-4
    model = krc.ResNet20(shortcut="B", weight_decay=weight_decay)
    # Every trainable weight carries one regulariser, and nothing else does.
    assert len(model.losses) == len(model.trainable_weights)
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    grads = tape.gradient(penalty, model.trainable_weights)
    for var, grad in zip(model.trainable_weights, grads):
        # The gradient of the penalty is what torch's SGD adds: wd * w.
        np.testing.assert_allclose(grad.numpy(), weight_decay * var.numpy(), rtol=1e-5, atol=1e-12)
    expected = weight_decay / 2 * sum(float(np.sum(np.square(w.numpy()))) for w in model.trainable_weights)
    np.testing.assert_allclose(float(penalty), expected, rtol=1e-4)
    assert krc.ResNet20(weight_decay=0).losses == []


def test_batch_norm_matches_reference_settings():
    bn = krc.ResNet20().get_layer("conv2_block1_1_bn")
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9


def test_backward_pass_changes_weights():
    model = krc.resnet_cifar(n=1)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(_images(8), np.arange(8) % 10)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"depth": 21}, "depth must be 6n\\+2"),
        ({"depth": 2}, "depth must be 6n\\+2"),
        ({"depth": 20.0}, "depth must be 6n\\+2"),
        ({"n": 0}, "n must be an integer >= 1"),
        ({"n": -3}, "n must be an integer >= 1"),
        ({"depth": 20, "n": 5}, "depth and n disagree"),
        ({}, "Give depth"),
        ({"depth": 20, "shortcut": "C"}, "shortcut must be 'A' or 'B'. Received: shortcut='C'"),
        ({"depth": 20, "num_classes": 0}, "num_classes must be an integer >= 1"),
        ({"depth": 20, "input_shape": (4, 32, 3)}, "at least 8x8"),
        ({"depth": 20, "input_shape": (32, 32, 1)}, "3 \\(RGB\\) channels"),
        ({"depth": 20, "input_shape": (32, 32)}, "input_shape must be"),
        ({"depth": 20, "pooling": "sum", "include_top": False}, "pooling must be"),
        ({"depth": 20, "classifier_activation": "nope"}, "classifier_activation"),
        ({"depth": 20, "weight_decay": -1.0}, "weight_decay"),
        ({"depth": 20, "preprocessing_std": (1, 0, 1)}, "preprocessing_std"),
        ({"depth": 20, "preprocessing_mean": (1, 2)}, "preprocessing_mean"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        krc.resnet_cifar(**kwargs)


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown model name. Received: name='resnet21'"):
        krc.from_preset("resnet21")
    with pytest.raises(ValueError, match="Unknown model name. Received: name='resnet50_b'"):
        krc.from_preset("resnet50_b")
