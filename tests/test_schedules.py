"""The learning-rate schedules at their boundaries."""

import keras
import numpy as np
import pytest

from keras_resnet_cifar.training import schedules


def _at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_paper_schedule_boundaries():
    s = schedules.make_schedule("paper", 0.1, 64_000)
    expected = {0: 0.1, 31_999: 0.1, 32_000: 0.01, 47_999: 0.01, 48_000: 0.001, 63_999: 0.001}
    for step, lr in expected.items():
        assert _at(s, step) == pytest.approx(lr, rel=1e-6), step


def test_paper_warmup_for_resnet110():
    s = schedules.make_schedule("paper", 0.1, 64_000, warmup_steps=400)
    assert _at(s, 0) == pytest.approx(0.01)
    assert _at(s, 399) == pytest.approx(0.01)
    assert _at(s, 400) == pytest.approx(0.1)
    assert _at(s, 32_000) == pytest.approx(0.01)


def test_cosine_and_onecycle():
    cos = schedules.make_schedule("cosine", 0.1, 1000)
    assert _at(cos, 0) == pytest.approx(0.1)
    assert _at(cos, 500) == pytest.approx(0.05, rel=1e-4)
    assert _at(cos, 1000) == pytest.approx(0.0, abs=1e-7)
    one = schedules.make_schedule("onecycle", 0.2, 1000)
    values = [_at(one, s) for s in range(0, 1001, 10)]
    assert values[0] == pytest.approx(0.2 / 25)
    assert _at(one, 300) == pytest.approx(0.2)
    assert max(values) == pytest.approx(0.2)
    assert np.all(np.diff(values[:31]) > 0) and np.all(np.diff(values[30:]) <= 0)
    assert values[-1] == pytest.approx(0.0, abs=1e-6)


def test_linear_scaling_and_paper_steps():
    assert schedules.default_learning_rate("paper", 128) == pytest.approx(0.1)
    assert schedules.default_learning_rate("paper", 512) == pytest.approx(0.4)
    assert schedules.default_learning_rate("onecycle", 64) == pytest.approx(0.1)
    assert schedules.paper_steps(128) == 64_000
    assert schedules.paper_steps(256) == 32_000


def test_schedule_errors():
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedules.make_schedule("bogus", 0.1, 100)
    with pytest.raises(ValueError, match="warmup_steps must be below"):
        schedules.make_schedule("paper", 0.1, 100, warmup_steps=60)


def test_schedule_serializes_with_keras_alone():
    s = schedules.make_schedule("paper", 0.1, 64_000, warmup_steps=400)
    config = keras.optimizers.schedules.serialize(s)
    again = keras.optimizers.schedules.deserialize(config)
    assert _at(again, 400) == pytest.approx(0.1) and _at(again, 32_000) == pytest.approx(0.01)
    # Every schedule, CIFAR's and ImageNet's, is a built-in class that round-trips.
    for name in schedules.SCHEDULES + schedules.IMAGENET_SCHEDULES:
        s = schedules.make_schedule(name, 0.1, 900, warmup_steps=10 if name != "onecycle" else 0)
        assert type(s).__module__.startswith("keras.src.optimizers.schedules")
        again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
        assert [_at(again, t) for t in (0, 300, 899)] == pytest.approx([_at(s, t) for t in (0, 300, 899)])


def test_too_few_steps_for_the_paper_schedule_is_said_as_such():
    for steps in (1, 2):
        with pytest.raises(
            ValueError,
            match=rf"the paper schedule divides the rate at 1/2, 3/4 of the steps, so it needs at least 3 steps. Received: total_steps={steps}",
        ):
            schedules.make_schedule("paper", 0.1, steps, 0)
    schedule = schedules.make_schedule("paper", 0.1, 3, 0)
    assert [round(float(schedule(s)), 6) for s in range(3)] == [0.1, 0.01, 0.001]
