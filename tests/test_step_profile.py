"""The step profiler: its categories, and the tool on a small network in both precisions and steps."""

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
            ("## Call CompiledFxGraph fr65wxjt6krh7mtegeiyizt46gypno3yz ##", 4.0),
        ]
    )
    assert totals["convolution forward"] == 5.0
    assert totals["convolution backward (data + filter)"] == 9.0
    assert totals["BatchNorm"] == 3.0
    assert totals["ReLU"] == 0.5
    assert totals["optimizer update"] == 0.25
    assert totals["other operators"] == 3.0
    assert totals[step_profile.COMPILED] == 4.0
    assert sum(totals.values()) == 24.75


@pytest.mark.parametrize(
    "precision, step, peer",
    [
        ("float32", "eager", "float32, eager"),
        ("mixed_bfloat16", "compiled", "bfloat16, torch.compile"),
    ],
)
def test_the_tool_profiles_ours_and_the_peer_in_the_same_precision_and_step(precision, step, peer):
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "profile_step.py"), "--depth=8", "--steps=2", "--batch_size=16"]
        + [f"--precision={precision}", f"--step={step}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip() == ""
    assert f"PyTorch peer: {peer}\n" in out.stdout
    ours = "compiled step, compiled in " if step == "compiled" else "eager step\n"
    assert f"ours: torch, {precision}, {ours}" in out.stdout
    rows = {line[:62].strip(): line[62:].split() for line in out.stdout.splitlines() if len(line) > 62}
    step_ms = [float(v) for v in rows["step (wall)"]]
    conv = [float(v) for v in rows["convolution forward"]]
    assert all(s > 0 for s in step_ms) and all(0 < c < s for c, s in zip(conv, step_ms))
    # Compiled, BatchNorm runs inside Inductor's kernels; eager, the peer's is ATen's operator.
    fused = [float(v) for v in rows[step_profile.COMPILED]]
    batch_norm = [float(v) for v in rows["BatchNorm"]]
    if step == "compiled":
        assert all(f > 0 for f in fused) and batch_norm == [0.0, 0.0]
    else:
        assert fused == [0.0, 0.0] and batch_norm[1] > 0
