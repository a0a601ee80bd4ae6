"""The benchmark's arithmetic: its case grid, medians of interleaved rounds, and ratios.

Pure Python, so that a unit test checks it without timing anything.
"""

import dataclasses
import itertools
import statistics

from keras_resnet_cifar.training import machine  # pure Python too


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
        rounds: one list of images/s per round, each in ``cases`` order.
        default: ``(backend, precision, xla, data)`` that ``krc-train`` uses here.

    Returns:
        Dicts with the case's fields, ``images_per_sec`` (median),
        ``images_per_sec_rounds``, ``ratio`` (to the first case of the same
        depth, shortcut, batch size and data) and ``default``.
    """
    rows, baselines = with_medians([vars(case) for case in cases], rounds), {}
    for case, row in zip(cases, rows):
        rate = row["images_per_sec"]
        baseline = baselines.setdefault((case.depth, case.shortcut, case.batch_size, case.data), rate)
        row["ratio"] = rate / baseline
        row["default"] = case.layout == "auto" and (case.backend, case.precision, case.xla, case.data) == tuple(default)
    return rows


def with_medians(items, rounds):
    """Each item (a dict) with ``images_per_sec``, the median of its rounds, and ``images_per_sec_rounds``.

    Args:
        items: one dict per timed case.
        rounds: one list of images/s per round, each in ``items`` order.
    """
    return [
        {**item, "images_per_sec": statistics.median(measured), "images_per_sec_rounds": list(measured)}
        for item, measured in zip(items, zip(*rounds))
    ]


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
