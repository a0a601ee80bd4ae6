"""The benchmark tool: it runs, its JSON holds every figure, bad flags are one line."""

import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

from keras_resnet_cifar.study import serving_speed
from keras_resnet_cifar.training import machine
from tests.helpers import hook_env, run_tool


@pytest.mark.slow
def test_tool_writes_every_figure_with_the_peer_and_the_default_marked(tmp_path):
    # One run for every figure: the fixed costs (the peak, the pipeline, the SavedModel) are paid once.
    backend = machine.resolve_backend("auto")
    precision = machine.resolve_precision("auto", backend)
    precisions = [precision]  # this machine's default (each more compiles the torch step once more)
    out = tmp_path / "bench.json"
    result = run_tool(
        "benchmark.py",
        "--depths=8",
        f"--precisions={','.join(precisions)}",
        "--xla=off",
        "--data=pipeline,synthetic",
        "--backends=tensorflow,torch",
        "--batch_sizes=16",
        "--steps=1",
        "--warmup_steps=1",
        "--peer=torch",
        "--peer_settings=float32,channels_last",
        "--rounds=2",  # the median of two rounds is their mean; tests/test_cases.py checks odd counts
        f"--json={out}",
        env=hook_env(KRC_TEST_QUICK_YARDSTICKS=1),  # the peak and pipeline rate, cheaply: their arithmetic is checked
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["tensorflow"]
    assert report["pipeline_images_per_sec"] > 0
    # Each rate is also a share of the float32 peak measured in the same run.
    assert report["peak_gflops"] > 0 and "GFLOP/s" in result.stdout
    # Under torch its compiled step (a full run's default) and, with --xla=off, the eager step beside it.
    assert [(r["data"], r["backend"], r["precision"], r["xla"]) for r in report["train"]] == [
        (data, b, p, jit)
        for data in ("pipeline", "synthetic")
        for b in ("tensorflow", "torch")
        for p in precisions
        for jit in ((False,) if b == "tensorflow" else (True, False))
    ]
    resnet8_train_mflop = 3 * 2 * 12_239_488 / 1e6  # ResNet8 multiply-adds; three forward passes, 2 FLOP each
    for row in report["train"]:
        assert row["share_of_peak"] == pytest.approx(
            row["images_per_sec"] * resnet8_train_mflop / 1e3 / report["peak_gflops"]
        )
    first = report["train"][0]
    assert first["ratio"] == 1.0
    assert report["train"][1]["ratio"] == pytest.approx(report["train"][1]["images_per_sec"] / first["images_per_sec"])
    # Exactly one row is tools/train.py's default here: --backend=auto's backend and precision, on the pipeline.
    marked = [(r["backend"], r["precision"], r["data"]) for r in report["train"] if r["default"]]
    assert marked == [(backend, precision, "pipeline")]
    assert result.stdout.count("<- tools/train.py default") == 1
    # Every case, ours and the peer's, is timed once a round and reported as its median.
    peer = report["peer"]
    assert peer["framework"].startswith("torch ")
    assert [r["setting"] for r in peer["train"]] == ["float32", "channels_last"]
    for row in [*report["train"], *peer["train"]]:
        assert len(row["images_per_sec_rounds"]) == 2 and all(r > 0 for r in row["images_per_sec_rounds"])
        assert row["images_per_sec"] == pytest.approx(sum(row["images_per_sec_rounds"]) / 2)
        # Beside each rate, its first step's seconds, which hold the compile, in every round.
        assert len(row["first_step_seconds_rounds"]) == 2 and all(s > 0 for s in row["first_step_seconds_rounds"])
    # Each compiled torch row, timed beside its eager twin (--xla=off), says from how many steps it pays.
    compiled = [r for r in report["train"] if r["backend"] == "torch" and r["xla"]]
    assert all("compile_break_even_steps" in r for r in compiled)
    said = re.findall(r"^Compiling (?:pays from [\d,]+ steps|never pays) here \(", result.stdout, re.MULTILINE)
    assert len(said) == len(compiled) == 2 * len(precisions)
    # The suite names its Inductor cache, which may hold the graphs: each figure says so.
    assert result.stdout.count("from a named Inductor cache, which may have held the graph") == len(compiled)
    assert f"Inductor's cache: {os.environ['TORCHINDUCTOR_CACHE_DIR']} ($TORCHINDUCTOR_CACHE_DIR)" in result.stdout
    best = max(r["images_per_sec"] for r in peer["train"])
    assert first["ratio_to_peer"] == pytest.approx(first["images_per_sec"] / best)
    assert set(peer["inference"]) == {"resnet8A float32", "resnet8A channels_last"}
    # The bfloat16 SavedModel only where TensorFlow runs bfloat16 in hardware (AVX512-BF16, AMX).
    bfloat16 = ["saved_model bfloat16"] if "tensorflow" in machine.cpu_default("bfloat16") else []
    kinds = ["keras", "saved_model", *bfloat16, "litert", "litert int8", "onnx"]
    assert set(report["inference"]["resnet8A"]) == set(kinds)
    for kind in kinds:
        figures = report["inference"]["resnet8A"][kind]
        assert figures["batch_images_per_sec"] > 0 and figures["share_of_peak"] > 0
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p99_ms"]
        assert figures["batch_ratio_to_peer"] > 0 and figures["latency_p50_ratio_to_peer"] > 0
    assert "Round 2 of 2" in result.stdout and "Ours as ratios to the peer's best" in result.stdout


def test_without_a_cache_named_compiled_steps_start_from_an_empty_one_removed_at_the_end(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with machine.benchmark_inductor_cache() as empty:
        folder = os.environ["TORCHINDUCTOR_CACHE_DIR"]
        assert empty is True and os.path.dirname(folder) == str(tmp_path) and os.listdir(folder) == []
        open(os.path.join(folder, "graph"), "w").close()  # what a compile leaves
    assert "TORCHINDUCTOR_CACHE_DIR" not in os.environ and list(tmp_path.iterdir()) == []
    # A named cache is the user's: used as it is (maybe warm), kept.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    with machine.benchmark_inductor_cache() as empty:
        assert empty is False and os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


@pytest.mark.parametrize(
    "flag, message",
    [
        (
            "--depths=21",
            "--depths must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...). Received: --depths=21",
        ),
        ("--precisions=float64", "--precisions: 'float64' is not one of"),
        ("--xla=maybe", "--xla: 'maybe' is not one of"),
        ("--peer=torch --peer_settings=fp8", "--peer_settings: 'fp8' is not one of"),
    ],
)
def test_bad_flags_are_one_line(flag, message):
    result = run_tool("benchmark.py", *flag.split())
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_numeric_flags_are_bounded():
    for flag in ("--steps=0", "--rounds=0"):
        result = run_tool("benchmark.py", flag)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"error: flag {flag}: 0 is not a positive integer (--help lists the flags)"
        ]


@pytest.mark.parametrize("flags, timed", [("avx2 fma", False), ("avx2 fma avx512f avx512_bf16", True)])
def test_the_bfloat16_savedmodel_is_timed_only_where_the_cpu_has_bfloat16_instructions(monkeypatch, flags, timed):
    from keras_resnet_cifar.study import benchmark

    monkeypatch.setattr(machine, "cpu_info", lambda: {"cpu_model": "fake", "cpu_flags": set(flags.split())})
    monkeypatch.setattr(benchmark, "FILE_FORMATS", ())
    exported = []  # the timing itself is tested above: here, which exports it is asked to time
    monkeypatch.setattr(serving_speed, "measure", lambda path, **kwargs: exported.append(path) or {"path": path})
    lines = []
    results = benchmark.inference(depth=8, log=lines.append)
    assert ("saved_model bfloat16" in results) == timed and len(exported) == 1 + timed
    assert (
        any("saved_model bfloat16 not timed: this CPU has no bfloat16 instructions" in line for line in lines) != timed
    )


def test_latency_percentiles_are_the_p50_and_p99_of_the_timed_calls_in_ms(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(serving_speed.time, "perf_counter", lambda: clock[0])
    # 5 warm-up calls of 1 s each (not timed), then calls of 1, 2, ..., 100 ms.
    durations = iter([1.0] * 5 + [i / 1000 for i in range(1, 101)])
    seen = []

    def call(x):
        seen.append(x)
        clock[0] += next(durations)

    p50, p99 = serving_speed.percentiles_ms(call, "batch", repeats=100, warmup=5)
    assert seen == ["batch"] * 105
    assert p50 == pytest.approx(50.5) and p99 == pytest.approx(99.01)


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
