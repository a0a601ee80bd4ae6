"""The PyTorch peer is the same network: parameters, output shape, shortcut values."""

import numpy as np
import pytest
import torch

import keras_resnet_cifar as krc
from keras_resnet_cifar.models import stats
from keras_resnet_cifar.study import torch_peer


@pytest.mark.parametrize("n", [1, 3])
def test_the_peer_has_our_parameter_count_and_output_shape(n):
    net = torch_peer.build(n)
    assert torch_peer.trainable_params(net) == stats.trainable_params(krc.resnet_cifar(n=n))
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    assert tuple(net.eval()(images).shape) == (3, 10)


def test_the_peer_option_a_shortcut_subsamples_and_pads_like_ours():
    net = torch_peer.build(1)
    block = net.stages[1][0]  # 16 -> 32 channels, stride 2
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).view(2, 16, 4, 4)
    skip = torch.nn.functional.pad(x[:, :, ::2, ::2], block.pad)
    assert skip.shape == (2, 32, 2, 2)
    assert torch.equal(skip[:, 8:24], x[:, :, ::2, ::2]) and skip[:, :8].abs().sum() == 0


@pytest.mark.parametrize("setting", torch_peer.SETTINGS)
def test_every_setting_trains_and_serves(setting):
    assert torch_peer.train_images_per_sec(1, setting, batch_size=8, warmup_steps=1, steps=1) > 0
    figures = torch_peer.inference(1, setting, batch_size=8, repeats=1, latency_repeats=3)
    assert figures["batch_images_per_sec"] > 0 and 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    with pytest.raises(ValueError, match="setting must be one of"):
        torch_peer.train_images_per_sec(1, "float16", batch_size=8, warmup_steps=0, steps=1)


def test_each_compiled_timing_starts_with_a_fresh_dynamo_cache(monkeypatch):
    calls = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: calls.append("reset"))
    monkeypatch.setattr(torch, "compile", lambda net: calls.append("compile") or net)
    torch_peer.prepare(torch_peer.build(1), "float32", compile_model=True)
    torch_peer.prepare(torch_peer.build(1), "channels_last", compile_model=False)
    assert calls == ["reset", "compile"]
