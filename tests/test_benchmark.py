"""The benchmark tool: it runs, its JSON holds every figure, bad flags are one line."""

import json
import subprocess
import sys

import pytest

from keras_resnet_cifar.study import serving_speed
from keras_resnet_cifar.training import machine
from tests.helpers import REPO


def _tool(*args):
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "benchmark.py"), *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_tool_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = _tool(
        "--depths=8",
        "--precisions=float32",
        "--xla=off",
        "--data=pipeline,synthetic",
        "--backends=tensorflow,torch",
        "--steps=2",
        "--warmup_steps=1",
        f"--json={out}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["tensorflow"]
    assert report["pipeline_images_per_sec"] > 0
    # Each rate is also a share of the float32 peak measured in the same run.
    assert report["peak_gflops"] > 0 and "GFLOP/s" in result.stdout
    assert [(r["data"], r["backend"], r["depth"]) for r in report["train"]] == [
        ("pipeline", "tensorflow", 8),
        ("pipeline", "torch", 8),
        ("synthetic", "tensorflow", 8),
        ("synthetic", "torch", 8),
    ]
    assert all(r["images_per_sec"] > 0 for r in report["train"])
    resnet8_train_mflop = 3 * 2 * 12_239_488 / 1e6  # ResNet8 multiply-adds; three forward passes, 2 FLOP each
    for row in report["train"]:
        assert row["share_of_peak"] == pytest.approx(
            row["images_per_sec"] * resnet8_train_mflop / 1e3 / report["peak_gflops"]
        )
    assert report["train"][0]["ratio"] == report["train"][2]["ratio"] == 1.0
    assert report["train"][1]["ratio"] == pytest.approx(
        report["train"][1]["images_per_sec"] / report["train"][0]["images_per_sec"]
    )
    # The row marked as tools/train.py's default is the backend --backend=auto picks, on the pipeline.
    defaults = [(r["backend"], r["data"]) for r in report["train"] if r["default"]]
    assert defaults in ([], [(machine.resolve_backend("auto"), "pipeline")])
    backend = machine.resolve_backend("auto")
    if backend == "torch" and machine.resolve_precision("auto", backend) == "float32":  # in this grid
        assert defaults and "<- tools/train.py default" in result.stdout
    for kind in ("keras", "saved_model"):
        figures = report["inference"]["resnet8A"][kind]
        assert figures["batch_images_per_sec"] > 0 and figures["share_of_peak"] > 0
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
    assert "img/s" in result.stdout and "saved_model" in result.stdout


@pytest.mark.slow
def test_peer_figures_and_ratios(tmp_path):
    out = tmp_path / "bench.json"
    result = _tool(
        "--depths=8",
        "--precisions=float32",
        "--xla=off",
        "--data=synthetic",
        "--backends=tensorflow",
        "--steps=1",
        "--warmup_steps=1",
        "--peer=torch",
        "--peer_settings=float32,channels_last",
        "--rounds=3",
        f"--json={out}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    peer = report["peer"]
    assert peer["framework"].startswith("torch ")
    assert [r["setting"] for r in peer["train"]] == ["float32", "channels_last"]
    (ours,) = report["train"]
    # Every case is timed once a round, and reported as its median.
    for row in [ours, *peer["train"]]:
        assert len(row["images_per_sec_rounds"]) == 3 and all(r > 0 for r in row["images_per_sec_rounds"])
        assert row["images_per_sec"] == sorted(row["images_per_sec_rounds"])[1]
    best = max(r["images_per_sec"] for r in peer["train"])
    assert ours["ratio_to_peer"] == pytest.approx(ours["images_per_sec"] / best)
    assert set(peer["inference"]) == {"resnet8A float32", "resnet8A channels_last"}
    for kind in ("keras", "saved_model"):
        figures = report["inference"]["resnet8A"][kind]
        assert figures["batch_ratio_to_peer"] > 0 and figures["latency_p50_ratio_to_peer"] > 0
    assert "Round 3 of 3" in result.stdout and "Ours as ratios to the peer's best" in result.stdout


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--depths=21", "--depths: bad value 21"),
        ("--precisions=float64", "--precisions: 'float64' is not one of"),
        ("--xla=maybe", "--xla: 'maybe' is not one of"),
        ("--peer=torch --peer_settings=fp8", "--peer_settings: 'fp8' is not one of"),
    ],
)
def test_bad_flags_are_one_line(flag, message):
    result = _tool(*flag.split())
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_numeric_flags_are_bounded():
    for flag in ("--steps=0", "--rounds=0"):
        result = _tool(flag)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"error: flag {flag}: 0 is not a positive integer (--help lists the flags)"
        ]


def test_latency_percentiles_are_ordered():
    calls = []
    p50, p99 = serving_speed.percentiles_ms(calls.append, 0, repeats=50, warmup=5)
    assert len(calls) == 55
    assert 0 <= p50 <= p99


def test_the_serving_timer_refuses_a_bad_spec_in_one_line():
    for args in ([], ['{"path": "x"}'], ["not json"]):
        out = subprocess.run(
            [sys.executable, "-m", "keras_resnet_cifar.study.serving_speed", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and out.stderr.startswith("usage: python -m keras_resnet_cifar.study.serving_speed")
        assert len(out.stderr.splitlines()) == 1
