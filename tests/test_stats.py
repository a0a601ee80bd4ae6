"""Tests of the counts read off built models."""

import pytest

import keras_resnet_cifar as krc
from keras_resnet_cifar.models import stats


@pytest.mark.parametrize("n", [1, 3, 9])
def test_multiply_adds_match_paper_formula(n):
    # 442,368 (stem) + (6n - 1) 3x3 layers of 2,359,296 each + 640 (dense).
    expected = 442_368 + (6 * n - 1) * 2_359_296 + 640
    assert stats.multiply_adds(krc.resnet_cifar(n=n)) == expected
    assert stats.multiply_adds(krc.resnet_cifar(n=n, residual=False)) == expected


def test_resnet20_is_40_6_million_multiply_adds():
    assert round(stats.multiply_adds(krc.ResNet20()) / 1e6, 1) == 40.6


def test_option_b_adds_projection_cost_not_layers():
    a, b = krc.ResNet20(), krc.ResNet20(shortcut="B")
    # 16x16x32x16 + 8x8x64x32 multiply-adds for the two 1x1 projections.
    assert stats.multiply_adds(b) - stats.multiply_adds(a) == 16 * 16 * 32 * 16 + 8 * 8 * 64 * 32
    assert stats.weighted_layers(a) == stats.weighted_layers(b) == 20
