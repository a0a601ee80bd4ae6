"""Learning-rate schedules: pure functions of the step, built-in Keras classes.

Built-in schedule classes serialize with Keras alone, so an optimizer saved
with them (a compiled model saved with its optimizer) needs no code of ours to load.

The optimizer evaluates the schedule at ``optimizer.iterations`` *before* the
update, so update number ``i`` (counting from 0) uses ``schedule(i)``.
"""

import keras

from keras_resnet_cifar import errors
from keras_resnet_cifar.training import options

SCHEDULES, IMAGENET_SCHEDULES = options.CIFAR_SCHEDULES, options.IMAGENET_SCHEDULES
# Where the step schedules divide the rate by 10, as fractions of the run:
# the paper's CIFAR 32k and 48k of 64k; ImageNet's epochs 30, 60, 80 of 90.
_DECAYS = {"paper": ((1, 2), (3, 4)), "step": ((1, 3), (2, 3), (8, 9))}
PAPER_STEPS = 64_000  # at batch 128
PAPER_WARMUP_STEPS = 400  # ResNet110 and deeper: 0.01 until training error < 80%
BASE_BATCH = 128

# Peak learning rates at batch 128, scaled linearly with the batch size.
_BASE_LR = {"paper": 0.1, "cosine": 0.1, "onecycle": 0.2}


def default_learning_rate(schedule, batch_size):
    """The schedule's peak rate at ``batch_size`` by the linear scaling rule.

    Goyal et al. 2017: multiply the rate by k when the batch grows k times;
    the paper's 0.1 is for batch 128.
    """
    return _BASE_LR[schedule] * batch_size / BASE_BATCH


def paper_steps(batch_size):
    """The paper's 64k iterations at batch 128, as the same number of epochs."""
    return round(PAPER_STEPS * BASE_BATCH / batch_size)


def make_schedule(name, learning_rate, total_steps, warmup_steps=0):
    """Builds a ``keras.optimizers.schedules.LearningRateSchedule``.

    Args:
        name: "paper": ``learning_rate`` divided by 10 at 50% and again at 75%
            of ``total_steps`` (32k and 48k of 64k in the paper), after
            ``warmup_steps`` at a tenth of the rate. "step" (ImageNet): the
            same at 1/3, 2/3 and 8/9 of the run (epochs 30, 60, 80 of 90).
            "cosine": cosine decay from ``learning_rate`` to 0, after a
            linear warm-up from 0 over ``warmup_steps``. "onecycle": a
            linear rise from ``learning_rate / 25`` to ``learning_rate``
            over the first 30% of the steps, then cosine decay to 0
            (PyTorch's OneCycleLR shape).
        learning_rate: the peak rate.
        total_steps: iterations of the whole run.
        warmup_steps: "paper" and "step": steps at ``learning_rate / 10``
            first (the paper's ResNet110 warm-up); "cosine": steps of linear
            warm-up; "onecycle": ignored.

    Returns:
        The schedule.

    Raises:
        ValueError: on an unknown name or inconsistent steps.
    """
    names = SCHEDULES + tuple(n for n in IMAGENET_SCHEDULES if n not in SCHEDULES)
    if name not in names:
        raise errors.ArgumentError(f"schedule must be one of {', '.join(names)}. Received: {name!r}")
    if total_steps < 1:
        raise errors.ArgumentError(f"total_steps must be >= 1. Received: {total_steps}")
    if name in _DECAYS:
        decays = [total_steps * num // den for num, den in _DECAYS[name]]
        if decays[0] < 1 or sorted(set(decays)) != decays:
            fewest = next(t for t in range(total_steps, 10_000) if _decays_apart(name, t))
            shares = ", ".join(f"{num}/{den}" for num, den in _DECAYS[name])
            raise errors.ArgumentError(
                f"the {name} schedule divides the rate at {shares} of the steps, so it needs at least {fewest} "
                f"steps. Received: total_steps={total_steps}"
            )
        if not 0 <= warmup_steps < decays[0]:
            raise errors.ArgumentError(
                f"warmup_steps must be below the first decay step {decays[0]}. Received: {warmup_steps}"
            )
        # PiecewiseConstantDecay keeps values[i] while step <= boundaries[i]:
        # boundary b - 1 makes step b the first at the new rate.
        boundaries = [b - 1 for b in decays]
        values = [learning_rate / 10**i for i in range(len(decays) + 1)]
        if warmup_steps:
            boundaries.insert(0, warmup_steps - 1)
            values.insert(0, learning_rate / 10)
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if name == "cosine":
        if not 0 <= warmup_steps < total_steps:
            raise errors.ArgumentError(
                f"warmup_steps must be below total_steps {total_steps}. Received: {warmup_steps}"
            )
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else learning_rate,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    rise = max(1, int(0.3 * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        learning_rate / 25,
        decay_steps=max(1, total_steps - rise),
        warmup_target=learning_rate,
        warmup_steps=rise,
    )


def _decays_apart(name, total_steps):
    decays = [total_steps * num // den for num, den in _DECAYS[name]]
    return decays[0] >= 1 and sorted(set(decays)) == decays
