"""The benchmark's case grid, medians and ratios (pure arithmetic, nothing timed)."""

from keras_resnet_cifar.study import cases


def test_compiling_varies_under_tensorflow_and_torch_always_times_its_graph_step():
    grid = cases.train_cases(
        [20], ["A"], [128], ["pipeline"], ["tensorflow", "torch", "jax"], ["float32"], [False, True]
    )
    assert [(c.backend, c.xla) for c in grid] == [
        ("tensorflow", False),
        ("tensorflow", True),
        ("torch", True),
        ("torch", False),
        ("jax", True),
    ]
    assert [c.label().split(" batch 128 ")[1] for c in grid[1:4]] == [
        "XLA pipeline",
        "compiled step pipeline",
        "eager step pipeline",
    ]
    # --xla=off: the default (compiled) torch case is timed all the same, the eager one beside it.
    assert len(cases.train_cases([20, 56], ["A", "B"], [64, 128], ["pipeline"], ["torch"], ["float32"], [False])) == 16


def test_medians_and_ratios_to_the_first_row_of_a_group():
    grid = cases.train_cases([20], ["A"], [128], ["pipeline", "synthetic"], ["tensorflow", "jax"], ["float32"], [False])
    rates = [[100, 300, 50, 80], [120, 200, 70, 60], [110, 250, 60, 100]]
    rounds = [[cases.Timing(rate, 1.0) for rate in round_] for round_ in rates]
    rows = cases.summarize(grid, rounds, ("jax", "float32", True, "pipeline"))
    assert [r["images_per_sec"] for r in rows] == [110, 250, 60, 80]
    assert [r["images_per_sec_rounds"] for r in rows][1] == [300, 200, 250]
    # Each data source is its own group: its first row is 1.0.
    assert [round(r["ratio"], 4) for r in rows] == [1.0, round(250 / 110, 4), 1.0, round(80 / 60, 4)]
    assert [r["default"] for r in rows] == [False, True, False, False]


def test_ratios_to_the_peers_best():
    assert cases.ratio_to_best(300, [200, 400, 250]) == 0.75
    assert cases.ratio_to_best(300, []) is None
    assert cases.latency_ratio_to_best(4.0, [2.0, 3.0]) == 0.5  # the peer is twice as fast
    assert cases.latency_ratio_to_best(4.0, []) is None


def test_medians_of_the_peers_cases_keep_their_fields():
    rounds = [[cases.Timing(1, 40.0), cases.Timing(10, 0.5)], [cases.Timing(3, 3.0), cases.Timing(30, 0.4)]]
    rows = cases.with_medians(
        [{"setting": "a"}, {"setting": "b"}], [*rounds, [cases.Timing(2, 2.5), cases.Timing(20, 0.6)]]
    )
    assert rows == [
        {
            "setting": "a",
            "images_per_sec": 2,
            "images_per_sec_rounds": [1, 3, 2],
            "first_step_seconds_rounds": [40, 3, 2.5],
        },
        {
            "setting": "b",
            "images_per_sec": 20,
            "images_per_sec_rounds": [10, 30, 20],
            "first_step_seconds_rounds": [0.5, 0.4, 0.6],
        },
    ]


def test_layout_varies_only_under_torch_and_only_auto_is_the_default():
    grid = cases.train_cases(
        [20], ["A"], [128], ["pipeline"], ["tensorflow", "torch"], ["float32"], [False], ["auto", "channels_last"]
    )
    assert [(c.backend, c.xla, c.layout) for c in grid] == [
        ("tensorflow", False, "auto"),
        ("torch", True, "auto"),
        ("torch", True, "channels_last"),
        ("torch", False, "auto"),
        ("torch", False, "channels_last"),
    ]
    assert "channels_last" in grid[2].label() and "channels" not in grid[1].label()
    rounds = [[cases.Timing(rate, 1.0) for rate in (100, 300, 280, 200, 190)]]
    rows = cases.summarize(grid, rounds, ("torch", "float32", True, "pipeline"))
    assert [r["default"] for r in rows] == [False, True, False, False, False]


def test_share_of_peak():
    # 500 images/s of 240 MFLOP each is 120 GFLOP/s: 60% of a 200 GFLOP/s machine.
    assert cases.share_of_peak(500, 240, 200) == 0.6


def test_compiling_pays_from_the_step_where_its_first_step_is_won_back():
    grid = cases.train_cases([20], ["A"], [100], ["pipeline", "synthetic"], ["torch"], ["float32"], [False])
    assert [(c.data, c.xla) for c in grid] == [
        ("pipeline", True),
        ("pipeline", False),
        ("synthetic", True),
        ("synthetic", False),
    ]
    # Compiled 0.1 s a step against 0.2 eager. Round 1's first compiled step of the graph took 41 s (the
    # synthetic case found it in the cache: 3 s), the eager one's 1 s: 40 s to win back at 0.1 s a step.
    rounds = [
        [cases.Timing(1000, 41.0), cases.Timing(500, 1.0), cases.Timing(1000, 3.0), cases.Timing(500, 1.0)],
        [cases.Timing(1000, 3.0), cases.Timing(500, 1.0), cases.Timing(1000, 3.0), cases.Timing(500, 1.0)],
    ]
    rows = cases.summarize(grid, rounds, ("torch", "float32", True, "pipeline"))
    assert cases.compile_break_even(rows) == {0: 401, 2: 401}
    # A compiled step that is not faster never pays; a row without its eager twin gets no figure.
    slow = cases.summarize(grid, [[cases.Timing(500, 41.0), *rounds[0][1:]]], ("torch", "float32", True, "pipeline"))
    assert cases.compile_break_even(slow) == {0: None, 2: 401}
    assert cases.compile_break_even(rows[:1] + rows[2:3]) == {}
