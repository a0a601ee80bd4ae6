"""The benchmark's plan as package functions: the peer's cases, the default row, the arithmetic, the ratios."""

import pytest

from keras_resnet_cifar.study import bench_plan, benchmark
from keras_resnet_cifar.study import cases as study_cases
from keras_resnet_cifar.training import machine


def test_the_peer_is_timed_at_every_batch_size():
    plan = bench_plan.Plan(depths=(20, 56), batch_sizes=(64, 128), peer=True, peer_settings=("float32",))
    cases = bench_plan.peer_cases(plan)
    assert [(c["depth"], c["batch_size"], c["compile"]) for c in cases] == [
        (20, 64, False),
        (20, 128, False),
        (56, 64, False),
        (56, 128, False),
    ]
    compiled = bench_plan.peer_cases(bench_plan.Plan(peer=True, peer_settings=("float32",), peer_compile=True))
    assert [c["compile"] for c in compiled] == [False, True]


def test_ours_are_compared_with_the_peer_at_the_same_batch_size():
    result = {
        "train": [
            {"depth": 20, "shortcut": "A", "batch_size": 64, "images_per_sec": 300.0, "backend": "torch",
             "layout": "auto", "precision": "float32", "data": "pipeline", "xla": False},
            {"depth": 20, "shortcut": "A", "batch_size": 128, "images_per_sec": 400.0, "backend": "torch",
             "layout": "auto", "precision": "float32", "data": "pipeline", "xla": False},
        ],
        "peer": {
            "train": [
                {"depth": 20, "batch_size": 64, "images_per_sec": 600.0},
                {"depth": 20, "batch_size": 128, "images_per_sec": 200.0},
            ],
            "inference": {},
        },
        "inference": {},
    }  # fmt: skip
    bench_plan.ratios_to_peer(20, "A", result, log=lambda line: None)
    assert [row["ratio_to_peer"] for row in result["train"]] == [0.5, 2.0]


def test_the_default_row_is_what_krc_train_picks_here():
    backend = machine.resolve_backend("auto")
    setting = bench_plan.default_setting(backend)
    assert setting == (backend, machine.resolve_precision("auto", backend), setting[2], "pipeline")
    grid = study_cases.train_cases(
        [8], ["A"], [128], ["pipeline", "synthetic"], ["tensorflow", "torch"], ["float32", "mixed_bfloat16"], [False]
    )
    rows = study_cases.summarize(
        grid, [[study_cases.Timing(1.0, 1.0)] * len(grid)], ("torch", "mixed_bfloat16", False, "pipeline")
    )
    assert [(r["backend"], r["precision"], r["data"]) for r in rows if r["default"]] == [
        ("torch", "mixed_bfloat16", "pipeline")
    ]


def test_training_is_three_forward_passes_of_two_flops_a_multiply_add():
    assert benchmark.forward_mflop(8) == pytest.approx(2 * 12_239_488 / 1e6)
    assert benchmark.train_mflop(8) == pytest.approx(3 * benchmark.forward_mflop(8))
    assert benchmark.forward_mflop(8, "B") > benchmark.forward_mflop(8)  # the projections count


def test_the_spread_of_rounds():
    assert bench_plan.spread([500.0]) == ""
    assert bench_plan.spread([512.0, 480.4, 1_001.0]) == "  (480-1,001)"
