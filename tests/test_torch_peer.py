"""The PyTorch peer is the same network: parameters, output shape, shortcut values."""

import keras
import numpy as np
import pytest
import torch

import keras_resnet_cifar as krc
from keras_resnet_cifar.models import blocks, stats
from keras_resnet_cifar.study import torch_peer


@pytest.mark.parametrize("n", [1, 3])
def test_the_peer_has_our_parameter_count_and_output_shape(n):
    net = torch_peer.build(n)
    assert torch_peer.trainable_params(net) == stats.trainable_params(krc.resnet_cifar(n=n))
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8))
    assert tuple(net.eval()(images).shape) == (3, 10)


@pytest.mark.parametrize("stage, channels_in, channels", [(1, 16, 32), (2, 32, 64)])
def test_the_peer_option_a_block_adds_our_option_a_shortcut(stage, channels_in, channels):
    block = torch_peer.build(1).eval().stages[stage][0]
    with torch.no_grad():  # bn2 -> 0: the block returns relu(its shortcut)
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    x = np.random.default_rng(1).uniform(0.5, 3.0, (2, 9, 10, channels_in)).astype("float32")  # odd size, > 0
    with torch.no_grad():
        theirs = block(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1).numpy()
    inputs = keras.Input((9, 10, channels_in))
    ours = keras.Model(inputs, blocks.option_a_shortcut(inputs, channels, 2, name="s"))
    np.testing.assert_array_equal(theirs, keras.ops.convert_to_numpy(ours(x)))


@pytest.mark.parametrize("setting", torch_peer.SETTINGS)
def test_every_setting_trains_and_serves(setting):
    timing = torch_peer.train_timing(1, setting, batch_size=8, warmup_steps=1, steps=1)
    assert timing.images_per_sec > 0 and timing.first_step_seconds > 0
    figures = torch_peer.inference(1, setting, batch_size=8, repeats=1, latency_repeats=3)
    assert figures["batch_images_per_sec"] > 0 and 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    with pytest.raises(ValueError, match="setting must be one of"):
        torch_peer.train_timing(1, "float16", batch_size=8, warmup_steps=0, steps=1)


def test_each_compiled_timing_starts_with_a_fresh_dynamo_cache(monkeypatch):
    # Real Dynamo (its "eager" backend: no Inductor), allowed one compilation per frame: each timing
    # builds a new network class, so without a reset the second one would recompile and fail here.
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda net: real_compile(net, backend="eager"))
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    monkeypatch.setattr(torch._dynamo.config, "fail_on_recompile_limit_hit", True)
    image = torch.zeros((1, 32, 32, 3), dtype=torch.uint8)
    try:
        for _ in range(3):
            net = torch_peer.prepare(torch_peer.build(1), "float32", compile_model=True).eval()
            with torch.no_grad():
                assert tuple(net(image).shape) == (1, 10)
    finally:
        torch._dynamo.reset()
