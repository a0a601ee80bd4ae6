"""The table of CIFAR ResNet variants, their exact sizes, and the depth/n/name rule.

Pure Python: tools check ``--depth`` and name runs without importing Keras.

One row per named model. The parameter counts are for a 10-class head and are
pinned here as literals (not derived) so the tests compare every built model
against numbers written down independently of the builder:

* option A and plain: ``97,216 * n - 21,926`` trainable parameters;
* option B: 2,752 more (two 1x1 projections with their BatchNorms);
* BatchNorm moving statistics: ``32 + 448 * n`` (option B: 192 more);
* a 100-class head: 5,850 more trainable parameters
  (``CIFAR100_EXTRA_PARAMS``).
"""

import dataclasses

# CIFAR-10's classes in label order: what the datasets' label 0..9 and the
# shipped weights' outputs mean.
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# A 100-class head has 90 more outputs of 64 weights and one bias each.
CIFAR100_EXTRA_PARAMS = 90 * 65


@dataclasses.dataclass(frozen=True)
class Variant:
    """One named CIFAR ResNet.

    Attributes:
        name: model name, also the Keras model name (``resnet56_b``).
        n: blocks per stage; depth is ``6 * n + 2``.
        residual: False for the paper's plain baselines.
        shortcut: "A" or "B"; plain nets carry "A" (no shortcut is built).
        trainable_params: trainable weights with a 10-class head.
        non_trainable_params: BatchNorm moving means and variances.
    """

    name: str
    n: int
    residual: bool
    shortcut: str
    trainable_params: int
    non_trainable_params: int

    @property
    def depth(self):
        return 6 * self.n + 2


def _rows():
    # (n, A/plain trainable, A/plain non-trainable, B trainable, B non-trainable)
    sizes = [
        (3, 269_722, 1_376, 272_474, 1_568),
        (5, 464_154, 2_272, 466_906, 2_464),
        (7, 658_586, 3_168, 661_338, 3_360),
        (9, 853_018, 4_064, 855_770, 4_256),
        (18, 1_727_962, 8_096, 1_730_714, 8_288),
        (200, 19_421_274, 89_632, 19_424_026, 89_824),
    ]
    rows = []
    for n, a_params, a_stats, b_params, b_stats in sizes:
        depth = 6 * n + 2
        rows.append(Variant(f"resnet{depth}", n, True, "A", a_params, a_stats))
        rows.append(Variant(f"resnet{depth}_b", n, True, "B", b_params, b_stats))
        if n <= 18:  # The paper trains plain nets up to 110 layers.
            rows.append(Variant(f"plain{depth}", n, False, "A", a_params, a_stats))
    return rows


VARIANTS = {v.name: v for v in _rows()}


def model_name(n, residual=True, shortcut="A"):
    """The variant name: ``resnet20``, ``resnet56_b``, ``plain32``."""
    depth = 6 * n + 2
    if not residual:
        return f"plain{depth}"
    return f"resnet{depth}" + ("_b" if shortcut == "B" else "")


def resolve_n(depth, n):
    """Blocks per stage from ``depth`` (6n+2) or ``n``, checked; ValueError says what was received."""
    if depth is None and n is None:
        raise ValueError("Give depth (6n+2: 20, 32, 44, 56, 110, 1202) or n >= 1.")
    if n is not None and (not _is_int(n) or n < 1):
        raise ValueError(f"n must be an integer >= 1. Received: n={n!r}")
    if depth is not None:
        if not _is_int(depth) or depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...). Received: depth={depth!r}"
            )
        if n is not None and n != (depth - 2) // 6:
            raise ValueError(f"depth and n disagree: depth={depth} means n={(depth - 2) // 6}. Received: n={n}")
        n = (depth - 2) // 6
    return n


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
