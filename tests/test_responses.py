"""responses.py: Fig. 7's layer response std, checked against a hand-computed answer."""

import keras
import numpy as np
import pytest

from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.study import responses


def test_response_layers_are_the_bn_after_each_3x3_conv():
    names = responses.response_layers(resnet.resnet_cifar(20))
    assert len(names) == 19 and names[0] == "conv1_bn" and names[-1] == "conv4_block3_2_bn"
    # Option B's projection BN follows a 1x1 conv and is not a 3x3 response.
    b_names = responses.response_layers(resnet.resnet_cifar(20, shortcut="B"))
    assert b_names == names and "conv3_block1_0_bn" not in b_names
    assert len(responses.response_layers(resnet.resnet_cifar(56, residual=False))) == 55


def _hand_built():
    """A 3x3 conv that copies its input, BN with known gamma, beta and statistics, and a 1x1 branch."""
    inputs = keras.Input((5, 5, 2), name="image")
    conv = keras.layers.Conv2D(2, 3, padding="same", use_bias=False, name="conv1_conv")
    bn = keras.layers.BatchNormalization(epsilon=1e-3, name="conv1_bn")
    side = keras.layers.Conv2D(2, 1, use_bias=False, name="conv2_block1_0_conv")
    side_bn = keras.layers.BatchNormalization(name="conv2_block1_0_bn")
    x = bn(conv(inputs))
    y = side_bn(side(inputs))
    model = keras.Model(inputs, keras.layers.Add()([x, y]))
    kernel = np.zeros((3, 3, 2, 2), "float32")
    kernel[1, 1] = np.eye(2)  # the centre tap copies each channel
    conv.set_weights([kernel])
    # gamma, beta, moving mean, moving variance per channel.
    bn.set_weights(
        [
            np.array([2.0, 0.5], "float32"),
            np.array([1.0, -3.0], "float32"),
            np.array([0.5, 0.0], "float32"),
            np.array([4.0, 1.0], "float32"),
        ]
    )
    side.set_weights([np.eye(2, dtype="float32")[None, None] * 7])
    return model


def test_response_std_known_answer():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(37, 5, 5, 2)).astype("float32")
    model = _hand_built()
    assert responses.response_layers(model) == ["conv1_bn"]
    gamma, beta, mean, var = np.array([2.0, 0.5]), np.array([1.0, -3.0]), np.array([0.5, 0.0]), np.array([4.0, 1.0])
    expected = gamma * (images.astype(np.float64) - mean) / np.sqrt(var + 1e-3) + beta
    # Batches of 10 do not divide 37: the accumulation must still give the whole-set std.
    [(name, std)] = responses.response_std(model, images, batch_size=10)
    assert name == "conv1_bn"
    assert std == pytest.approx(expected.std(), rel=1e-5)


def test_response_std_of_a_resnet_and_errors():
    model = resnet.resnet_cifar(8)
    images = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3)).astype("uint8")
    stds = responses.response_std(model, images, batch_size=4)
    assert [n for n, _ in stds] == responses.response_layers(model)
    assert all(s > 0 for _, s in stds)
    with pytest.raises(ValueError, match="at least one image"):
        responses.response_std(model, images[:0])
    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="no 3x3 convolution"):
        responses.response_std(keras.Model(inputs, keras.layers.Dense(2)(inputs)), np.zeros((1, 4)))
