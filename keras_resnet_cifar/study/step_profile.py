"""Where a training step's time goes, from a PyTorch profiler trace.

Profiles the model ``tools/train.py`` trains under the torch backend (its
layout and decay), fed by the real tf.data pipeline, on the compiled step
of long runs or on the eager step (short runs, ``--deterministic``),
and the PyTorch peer on the same batch, under ``torch.compile`` or eager to
match, and sorts each trace's operator self-times into the categories of a
ResNet step. A compiled graph calls oneDNN's convolutions as operators of
their own; the rest of it (BatchNorm, ReLU, the additions, the loss and the
casts, fused) is Inductor's kernels, one category.
"""

import time

import numpy as np

from keras_resnet_cifar import errors

# aten operators by what they do in a ResNet step (self time; the rest is "other").
CATEGORIES = {
    "convolution forward": ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution"),
    "convolution backward (data + filter)": ("aten::convolution_backward",),
    "BatchNorm": ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::_batch_norm_impl_index"),
    "ReLU": ("aten::clamp_min", "aten::relu", "aten::relu_", "aten::threshold_backward"),
    "shortcut (add, subsample, zero channels)": (
        "aten::add",
        "aten::max_pool2d_with_indices",
        "aten::max_pool2d_with_indices_backward",
        "aten::constant_pad_nd",
        "aten::slice_backward",
    ),
    "optimizer update": ("aten::_foreach_mul_", "aten::_foreach_add_", "aten::add_", "aten::mul_", "aten::zero_"),
}
# A compiled graph's own kernels run inside these profiler ranges (their self time).
COMPILED = "compiled graph (Inductor: BatchNorm, ReLU, add, loss, casts)"
_COMPILED_PREFIX = "## Call CompiledFxGraph"


def categorise(events):
    """``{category: milliseconds}`` from ``(name, self_ms)`` pairs."""
    totals = dict.fromkeys([*CATEGORIES, COMPILED, "other operators"], 0.0)
    for name, self_ms in events:
        category = next((c for c, names in CATEGORIES.items() if name in names), "other operators")
        if name.startswith(_COMPILED_PREFIX):
            category = COMPILED
        totals[category] += self_ms
    return totals


def _summary(prof, wall_s, steps):
    wall_ms = wall_s * 1e3 / steps
    events = [(e.key, e.self_cpu_time_total / 1e3 / steps) for e in prof.key_averages()]
    totals = categorise(events)
    # Wall time no operator accounts for: Python, Keras and the data hand-over.
    totals["framework and input (no operator)"] = max(0.0, wall_ms - sum(totals.values()))
    return {"step_ms": wall_ms, "categories": totals}


def ours(depth=20, batch_size=128, steps=10, warmup_steps=5, images=None, precision="float32", compiled=True):
    """The profile of one step of ``tools/train.py``'s training under torch, in ``precision``.

    Args:
        depth: the ResNet's depth (6n+2).
        batch_size: images a step.
        steps: steps traced, after ``warmup_steps`` (the first compiles).
        warmup_steps: steps run before the trace.
        images: uint8 training images; default random.
        precision: "float32" or "mixed_bfloat16".
        compiled: the compiled step (``graph_step``) where the model runs
            on it, else the eager step (the same graph uncompiled).

    Returns:
        ``{"step_ms", "categories", "step"}``: the step's wall time, its
        milliseconds by category, and which step ran
        (``machine.step_label``; its compile time when compiled).
    """
    import keras
    import tensorflow as tf  # noqa: F401 (the pipeline)

    from keras_resnet_cifar.data import input_pipeline
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import graph_step, machine, runner

    if keras.backend.backend() != "torch":
        raise errors.ArgumentError(f"the profile is of the torch backend; Keras runs {keras.backend.backend()}")
    rng = np.random.default_rng(0)
    if images is None:
        images = rng.integers(0, 256, (4 * batch_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images)).astype(np.int64)
    model = runner.training_model(lambda **layout: resnet.resnet_cifar(depth=depth, **layout), dtype=precision)
    model = graph_step.compile_for_training(
        model,
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        0.01,
        0.9,
        1e-4,
        precision,
        compiled,
        print,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    data = machine.input_threads(input_pipeline.train_dataset(images, labels, batch_size, seed=0))
    prof, clock = _profiler(), {}

    class Tracer(keras.callbacks.Callback):
        """Traces whole steps inside one fit: no fit or iterator set-up in the trace."""

        def on_train_batch_begin(self, batch, logs=None):
            if batch == warmup_steps:
                prof.__enter__()
                clock["start"] = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch == warmup_steps + steps - 1:
                clock["wall"] = time.perf_counter() - clock["start"]
                prof.__exit__(None, None, None)

    model.fit(data, epochs=1, steps_per_epoch=warmup_steps + steps, verbose=0, callbacks=[Tracer()], shuffle=False)
    seconds = getattr(model, "compile_seconds", None)
    step = machine.step_label("torch", getattr(model, "runs_compiled", False))
    return dict(_summary(prof, clock["wall"], steps), step=step + (f", compiled in {seconds:.1f} s" if seconds else ""))


def _profiler():
    from torch.profiler import ProfilerActivity, profile

    return profile(activities=[ProfilerActivity.CPU])


def peer(depth=20, batch_size=128, steps=10, warmup_steps=5, setting="float32", compile_model=False):
    """The same profile of the PyTorch peer (one in-memory batch) in ``setting`` (``torch_peer.SETTINGS``).

    ``compile_model``: under ``torch.compile``, compiled in the warm-up steps.
    """
    import torch

    from keras_resnet_cifar.study import torch_peer

    net = torch_peer.prepare(torch_peer.build((depth - 2) // 6), setting, compile_model)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 10, batch_size))

    def run(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            with torch_peer.autocast(setting):
                loss = torch.nn.functional.cross_entropy(net(images), labels)
            loss.backward()
            opt.step()

    run(warmup_steps)
    with _profiler() as prof:
        start = time.perf_counter()
        run(steps)
        wall_s = time.perf_counter() - start
    return dict(_summary(prof, wall_s, steps), step="torch.compile" if compile_model else "eager")
