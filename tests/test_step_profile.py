"""The step profiler: its categories, and the tool on a small network in both precisions."""

import subprocess
import sys

import pytest

from keras_resnet_cifar.study import step_profile
from tests.helpers import REPO


def test_operators_fall_into_the_categories_of_a_resnet_step():
    totals = step_profile.categorise(
        [
            ("aten::mkldnn_convolution", 5.0),
            ("aten::convolution_backward", 9.0),
            ("aten::native_batch_norm", 2.0),
            ("aten::native_batch_norm_backward", 1.0),
            ("aten::threshold_backward", 0.5),
            ("aten::_foreach_add_", 0.25),
            ("aten::copy_", 3.0),
        ]
    )
    assert totals["convolution forward"] == 5.0
    assert totals["convolution backward (data + filter)"] == 9.0
    assert totals["BatchNorm"] == 3.0
    assert totals["ReLU"] == 0.5
    assert totals["optimizer update"] == 0.25
    assert totals["other operators"] == 3.0
    assert sum(totals.values()) == 20.75


@pytest.mark.parametrize("precision, peer", [("float32", "float32"), ("mixed_bfloat16", "bfloat16")])
def test_the_tool_profiles_ours_and_the_peer_in_the_same_precision(precision, peer):
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "profile_step.py"), "--depth=8", "--steps=2", "--batch_size=16"]
        + [f"--precision={precision}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"ours, torch, {precision}" in out.stdout and f"PyTorch peer, {peer}" in out.stdout
    rows = {line[:44].strip(): line[44:].split() for line in out.stdout.splitlines() if len(line) > 44}
    step = [float(v) for v in rows["step (wall)"]]
    conv = [float(v) for v in rows["convolution forward"]]
    assert all(s > 0 for s in step) and all(0 < c < s for c, s in zip(conv, step))
