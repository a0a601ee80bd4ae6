"""The PyTorch peer: the same CIFAR ResNet in plain PyTorch, timed as ours is.

Users comparing CIFAR ResNet zoos compare with PyTorch code such as
akamaster/pytorch_resnet_cifar10, so ``tools/benchmark.py --peer=torch``
times this network beside ours in the same run, and our figures are
reported as ratios to its best setting. It is the paper's network with
option-A shortcuts (``x[:, :, ::2, ::2]`` plus zero channels), the same
parameter count as ``resnet_cifar(n)``, trained by SGD (momentum 0.9, weight
decay 1e-4) on uint8 NHWC batches normalised inside the step, as ours.

Settings: "float32"; "channels_last" (the weights in NHWC memory format
too: the activations are NHWC in memory in every setting, the input being
a transposed view of the NHWC batch); "bfloat16" (``torch.autocast``);
"channels_last+bfloat16"; each optionally with ``torch.compile``. torch
is imported only here (``pip install -e ".[torch]"``).
"""

import time

import numpy as np

from keras_resnet_cifar import errors
from keras_resnet_cifar.models.resnet import CIFAR10_MEAN, CIFAR10_STD
from keras_resnet_cifar.study import cases

SETTINGS = ("float32", "channels_last", "bfloat16", "channels_last+bfloat16")


def build(n=3, num_classes=10):
    """The peer network, a ``torch.nn.Module`` taking uint8 NHWC images."""
    import torch
    from torch import nn
    from torch.nn import functional

    class Block(nn.Module):
        def __init__(self, channels_in, channels, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.stride = stride
            extra = channels - channels_in
            self.pad = (0, 0, 0, 0, extra // 2, extra - extra // 2) if extra else None

        def forward(self, x):
            y = functional.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            skip = x[:, :, :: self.stride, :: self.stride] if self.stride != 1 else x
            if self.pad:
                skip = functional.pad(skip, self.pad)
            return functional.relu(y + skip)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(CIFAR10_STD).view(1, 3, 1, 1))
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            stages, channels_in = [], 16
            for stage, channels in enumerate((16, 32, 64)):
                blocks = [
                    Block(channels_in if i == 0 else channels, channels, 2 if stage and not i else 1) for i in range(n)
                ]
                stages.append(nn.Sequential(*blocks))
                channels_in = channels
            self.stages = nn.Sequential(*stages)
            self.linear = nn.Linear(64, num_classes)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight)

        def forward(self, images):
            x = (images.permute(0, 3, 1, 2).float() - self.mean) / self.std
            x = functional.relu(self.bn1(self.conv1(x)))
            x = self.stages(x)
            return self.linear(functional.adaptive_avg_pool2d(x, 1).flatten(1))

    return Net()


def trainable_params(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def prepare(net, setting, compile_model):
    """``net`` in ``setting``'s memory format, under ``torch.compile`` when ``compile_model``."""
    import torch

    if setting not in SETTINGS:
        raise errors.ArgumentError(f"setting must be one of {', '.join(SETTINGS)}. Received: {setting!r}")
    if "channels_last" in setting:
        net = net.to(memory_format=torch.channels_last)
    if not compile_model:
        return net
    # Every timing builds a new network class and Dynamo guards on it: without
    # a reset, a process's ninth compiled timing (benchmark --rounds) hits
    # the recompile limit and runs eager.
    torch.compiler.reset()
    return torch.compile(net)


def autocast(setting):
    """The autocast context of ``setting``: bfloat16 on the CPU for the bfloat16 settings, else none."""
    import contextlib

    import torch

    if "bfloat16" in setting:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batch(batch_size, seed=0):
    import torch

    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, batch_size))
    return images, labels


def train_timing(n=3, setting="float32", batch_size=128, warmup_steps=5, steps=20, compile_model=False):
    """Steady-state training rate of the peer on one in-memory batch (as our "synthetic" data).

    The first step, timed apart, is one of the ``warmup_steps`` (at least one runs).

    Returns:
        A ``cases.Timing``: the rate, and the first step's seconds (under
        ``torch.compile``, tracing and compiling the forward and backward).
    """
    import torch

    net = prepare(build(n), setting, compile_model)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images, labels = _batch(batch_size)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(setting):
            loss = torch.nn.functional.cross_entropy(net(images), labels)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    first_step = time.perf_counter() - start
    for _ in range(warmup_steps - 1):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return cases.Timing(steps * batch_size / (time.perf_counter() - start), first_step)


def inference(n=3, setting="float32", batch_size=128, compile_model=False, repeats=20, latency_repeats=200):
    """Batch throughput and batch-1 latency (p50, p99) of the peer in eval mode."""
    import torch

    net = prepare(build(n), setting, compile_model).eval()
    batch, _ = _batch(batch_size)
    one = batch[:1]

    def run(x):
        with torch.no_grad(), autocast(setting):
            return net(x)

    for _ in range(3):
        run(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        run(batch)
    rate = repeats * batch_size / (time.perf_counter() - start)
    times = []
    for i in range(latency_repeats + 20):
        begin = time.perf_counter()
        run(one)
        if i >= 20:
            times.append(time.perf_counter() - begin)
    return {
        "batch_images_per_sec": rate,
        "latency_p50_ms": float(np.percentile(times, 50) * 1e3),
        "latency_p99_ms": float(np.percentile(times, 99) * 1e3),
    }
