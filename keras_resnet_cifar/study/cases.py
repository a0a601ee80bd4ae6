"""The benchmark's arithmetic: its case grid, medians of interleaved rounds, and ratios.

Pure Python, so that a unit test checks it without timing anything.
"""

import collections
import dataclasses
import itertools
import math
import statistics

from keras_resnet_cifar.training import machine  # pure Python too

# One timing of a training case: its steady rate, and its first step's
# seconds (building the step, tracing and compiling it included; under
# TensorFlow also the input pipeline's start, which runs inside the step).
Timing = collections.namedtuple("Timing", "images_per_sec first_step_seconds")


@dataclasses.dataclass
class TrainCase:
    """One training configuration to time, as ``krc-train`` trains it."""

    depth: int = 20
    shortcut: str = "A"
    precision: str = "float32"
    batch_size: int = 128
    xla: bool = False
    data: str = "pipeline"  # "pipeline": tf.data with augmentation; "synthetic": one batch repeated
    backend: str = "tensorflow"
    layout: str = "auto"  # torch only: "auto" (the machine's choice), "channels_first" or "channels_last"

    def label(self):
        layout = "" if self.layout == "auto" else f" {self.layout}"
        return (
            f"ResNet{self.depth}{self.shortcut} {self.backend}{layout} {self.precision} batch {self.batch_size} "
            f"{machine.step_label(self.backend, self.xla)} {self.data}"
        )


def train_cases(depths, shortcuts, batch_sizes, data, backends, precisions, xla, layouts=("auto",)):
    """Every combination to time, in the order the table prints.

    ``xla`` is TensorFlow's XLA and torch's compiled step (``graph_step``);
    torch always gets its compiled case, the default of a full run, and
    JAX, which always compiles its step, one case. The layout is a choice
    only under torch (TensorFlow's CPU kernels take NHWC only).
    """
    cases = []
    for depth, shortcut, batch, source, backend, precision in itertools.product(
        depths, shortcuts, batch_sizes, data, backends, precisions
    ):
        compile_settings = {"tensorflow": xla, "torch": dict.fromkeys((True, *xla)), "jax": [True]}[backend]
        for jit in compile_settings:
            for layout in layouts if backend == "torch" else ["auto"]:
                cases.append(TrainCase(depth, shortcut, precision, batch, jit, source, backend, layout))
    return cases


def summarize(cases, rounds, default):
    """One row per case: the median of its rounds and its ratio to the first row of its group.

    Args:
        cases: ``TrainCase`` list.
        rounds: one list of ``Timing`` per round, each in ``cases`` order.
        default: ``(backend, precision, xla, data)`` that ``krc-train`` uses here.

    Returns:
        Dicts with the case's fields, ``with_medians``' figures, ``ratio``
        (to the first case of the same depth, shortcut, batch size and
        data) and ``default``.
    """
    rows, baselines = with_medians([vars(case) for case in cases], rounds), {}
    for case, row in zip(cases, rows):
        rate = row["images_per_sec"]
        baseline = baselines.setdefault((case.depth, case.shortcut, case.batch_size, case.data), rate)
        row["ratio"] = rate / baseline
        row["default"] = case.layout == "auto" and (case.backend, case.precision, case.xla, case.data) == tuple(default)
    return rows


def with_medians(items, rounds):
    """Each item (a dict) with ``images_per_sec``, the median of its rounds, and each round's figures.

    Args:
        items: one dict per timed case.
        rounds: one list of ``Timing`` per round, each in ``items`` order.

    Returns:
        The items with ``images_per_sec``, ``images_per_sec_rounds`` and
        ``first_step_seconds_rounds``.
    """
    return [
        {
            **item,
            "images_per_sec": statistics.median(t.images_per_sec for t in timings),
            "images_per_sec_rounds": [t.images_per_sec for t in timings],
            "first_step_seconds_rounds": [t.first_step_seconds for t in timings],
        }
        for item, timings in zip(items, zip(*rounds))
    ]


def compile_break_even(rows):
    """The steps from which each compiled torch row wins back its compile time over its eager twin.

    A run of N steps takes ``first_c + (N - 1) * step_c`` compiled and
    ``first_e + (N - 1) * step_e`` eagerly (each first step with its
    tracing, and compiling), so compiling pays from
    ``N = 1 + (first_c - first_e) / (step_e - step_c)``. ``first_c`` is the
    slowest first step of round 1 among the compiled rows of the same graph
    (depth, shortcut, precision, batch, layout): the benchmark starts from an
    empty Inductor cache and the graph's first row fills it. ``first_e`` is
    the twin's (the eager row of the same case) in round 1.

    Args:
        rows: ``summarize``'s rows.

    Returns:
        ``{index of a compiled row: steps}``, for the rows with an eager
        twin; None where the compiled step is not the faster.
    """

    def graph(row):
        return row["depth"], row["shortcut"], row["precision"], row["batch_size"], row["layout"]

    torch_rows = [(i, row) for i, row in enumerate(rows) if row["backend"] == "torch"]
    first_compiled = {}
    for _, row in torch_rows:
        if row["xla"]:
            first_compiled[graph(row)] = max(first_compiled.get(graph(row), 0.0), row["first_step_seconds_rounds"][0])
    steps = {}
    for i, row in torch_rows:
        twins = [e for _, e in torch_rows if not e["xla"] and (graph(e), e["data"]) == (graph(row), row["data"])]
        if not row["xla"] or not twins:
            continue
        step_c, step_e = (row["batch_size"] / r["images_per_sec"] for r in (row, twins[0]))
        cost = first_compiled[graph(row)] - twins[0]["first_step_seconds_rounds"][0]
        steps[i] = math.ceil(1 + max(cost, 0.0) / (step_e - step_c)) if step_e > step_c else None
    return steps


def share_of_peak(images_per_sec, mflop_per_image, peak_gflops):
    """The fraction of the machine's float32 peak that ``images_per_sec`` computes."""
    return images_per_sec * mflop_per_image / 1e3 / peak_gflops


def ratio_to_best(rate, peer_rates):
    """``rate`` over the best of ``peer_rates`` (> 1: faster than the peer); None without a peer."""
    best = max(peer_rates, default=None)
    return rate / best if best else None


def latency_ratio_to_best(ms, peer_ms):
    """The peer's lowest latency over ours, so that > 1 means faster here too; None without a peer."""
    best = min(peer_ms, default=None)
    return best / ms if best else None
