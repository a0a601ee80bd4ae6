"""The one registry of named models: build arguments, exact sizes and shipped weights, one record each.

Pure Python: tools list names, check ``--arch`` and parse ``name:weights``
without importing Keras. ``build`` imports the builders when it is called.

Two families:

* ``"cifar"``: the CIFAR nets of section 4.2, ``resnet{6n+2}`` (option A),
  ``resnet{6n+2}_b`` (option B) and ``plain{6n+2}`` (n <= 18), built by
  ``resnet.resnet_cifar``. Counts are for a 10-class head: option A and
  plain ``97,216 n - 21,926`` trainable parameters, option B 2,752 more;
  BatchNorm statistics ``32 + 448 n`` (option B 192 more).
* ``"imagenet"``: the nets of section 3.4, ``resnet{18,34,50,101,152}``
  (option B, torchvision's published counts), ``_a`` and ``_c`` (options
  A and C) and ``plain{depth}``, built by ``imagenet.resnet_imagenet``.
  Counts are for 1000 classes; ``stride_on`` ("v1"/"v1.5") does not change
  them.

Every count is a literal written down independently of the builders; the
tests build each model by name and compare (``tests/test_resnet.py``).
"""

import dataclasses
import types

from keras_resnet_cifar import errors

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
# A 100-class CIFAR head has 90 more outputs of 64 weights and one bias each.
CIFAR100_EXTRA_PARAMS = 90 * 65

FAMILIES = ("cifar", "imagenet")
CIFAR_SHORTCUTS = ("A", "B")
IMAGENET_SHORTCUTS = ("A", "B", "C")
# ImageNet stage tables (the paper's Table 1): blocks per stage, bottleneck?
IMAGENET_STAGES = {
    "resnet18": ((2, 2, 2, 2), False),
    "resnet34": ((3, 4, 6, 3), False),
    "resnet50": ((3, 4, 6, 3), True),
    "resnet101": ((3, 4, 23, 3), True),
    "resnet152": ((3, 8, 36, 3), True),
}
IMAGENET_ARCHS = tuple(IMAGENET_STAGES)

AKAMASTER = "akamaster/pytorch_resnet_cifar10"
AKAMASTER_LICENCE = "BSD-2-Clause"  # the text ships as models/weights/LICENSE


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """One shipped weights file (the fields of the former ``pretrained.Pretrained``, plus provenance).

    Attributes:
        model: the model name it fits (``resnet20``), a key of ``MODELS``.
        dataset: the weights name users pass (``"cifar10"``).
        n: blocks per stage of the network the file fits.
        checkpoint: the reference checkpoint it was converted from.
        test_error: the reference's published test error on ``dataset``.
        sha256: the digest of the shipped file, checked on every load.
        source: where the checkpoint comes from.
        licence: its SPDX licence id.
        classes: the class names of its outputs, in order.
    """

    model: str
    dataset: str
    n: int
    checkpoint: str
    test_error: float
    sha256: str
    source: str = AKAMASTER
    licence: str = AKAMASTER_LICENCE
    classes: tuple = CIFAR10_CLASSES

    @property
    def filename(self):
        return f"{self.model}_{self.dataset}.weights.h5"

    @property
    def spec(self):
        """The ``name:weights`` spec the serving tools take (``resnet20:cifar10``)."""
        return f"{self.model}:{self.dataset}"

    @property
    def accuracy(self):
        return 1 - self.test_error

    @property
    def card_source(self):
        """The model card's "source" line for this file (``loading.load``)."""
        return f"pretrained weights {self.spec} ({self.source}, {self.licence})"


@dataclasses.dataclass(frozen=True)
class Model:
    """One named model (the former ``presets.Variant``, for both families).

    Attributes:
        name: the table name, also the Keras model name (``resnet56_b``).
        family: "cifar" or "imagenet".
        residual: False for the paper's plain nets.
        shortcut: "A", "B" or "C"; plain nets carry the family default.
        trainable_params: with a 10-class (CIFAR) or 1000-class (ImageNet) head.
        non_trainable_params: BatchNorm moving means and variances.
        n: CIFAR blocks per stage (depth 6n+2); None for ImageNet.
        arch: the ImageNet stage table (``resnet50``); None for CIFAR.
        weights: shipped weights by name (``{"cifar10": Pretrained}``).
    """

    name: str
    family: str
    residual: bool
    shortcut: str
    trainable_params: int
    non_trainable_params: int
    n: int | None = None
    arch: str | None = None
    weights: types.MappingProxyType = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def depth(self):
        if self.family == "cifar":
            return 6 * self.n + 2
        return int(self.arch[len("resnet") :])

    def build_kwargs(self):
        """The builder's arguments that make this model (the rest are the caller's)."""
        if self.family == "cifar":
            return {"n": self.n, "residual": self.residual, "shortcut": self.shortcut}
        return {"arch": self.arch, "residual": self.residual, "shortcut": self.shortcut}


def _cifar_rows():
    # (n, A/plain trainable, A/plain BN stats, B trainable, B BN stats): presets.py's numbers.
    sizes = [
        (3, 269_722, 1_376, 272_474, 1_568),
        (5, 464_154, 2_272, 466_906, 2_464),
        (7, 658_586, 3_168, 661_338, 3_360),
        (9, 853_018, 4_064, 855_770, 4_256),
        (18, 1_727_962, 8_096, 1_730_714, 8_288),
        (200, 19_421_274, 89_632, 19_424_026, 89_824),
    ]
    for n, a_params, a_stats, b_params, b_stats in sizes:
        depth = 6 * n + 2
        yield Model(f"resnet{depth}", "cifar", True, "A", a_params, a_stats, n=n)
        yield Model(f"resnet{depth}_b", "cifar", True, "B", b_params, b_stats, n=n)
        if n <= 18:  # the paper trains plain nets up to 110 layers
            yield Model(f"plain{depth}", "cifar", False, "A", a_params, a_stats, n=n)


def _imagenet_rows():
    # arch: (B, A and plain, C) trainable parameters and BN statistics, 1000 classes.
    # B is torchvision's published count; A/plain drop the projections, C projects every block.
    sizes = {
        "resnet18": ((11_689_512, 9_600), (11_515_688, 7_808), (12_043_816, 11_648)),
        "resnet34": ((21_797_672, 17_024), (21_623_848, 15_232), (22_716_840, 22_784)),
        "resnet50": ((25_557_032, 53_120), (22_780_456, 45_440), (40_128_552, 75_648)),
        "resnet101": ((44_549_160, 105_344), (41_772_584, 97_664), (76_981_288, 162_688)),
        "resnet152": ((60_192_808, 151_424), (57_416_232, 143_744), (107_335_720, 239_488)),
    }
    for arch, (b, a, c) in sizes.items():
        depth = arch[len("resnet") :]
        yield Model(arch, "imagenet", True, "B", *b, arch=arch)
        yield Model(f"{arch}_a", "imagenet", True, "A", *a, arch=arch)
        yield Model(f"{arch}_c", "imagenet", True, "C", *c, arch=arch)
        yield Model(f"plain{depth}", "imagenet", False, "B", *a, arch=arch)


# Shipped files: CIFAR-10 checkpoints of the reference, converted by models/convert.py.
_PRETRAINED = (
    Pretrained(
        "resnet20",
        "cifar10",
        3,
        "resnet20-12fca82f.th",
        0.0827,
        "0f67385aef3a2f394a8359a587bd4a0acb75112bc9be783028899be4e0d3a3c7",
    ),
    Pretrained(
        "resnet32",
        "cifar10",
        5,
        "resnet32-d509ac18.th",
        0.0737,
        "af3b739c77f84e2a98357b98b52abdc49d2ab45ea195c416c35a26fd08bbaf9f",
    ),
    Pretrained(
        "resnet44",
        "cifar10",
        7,
        "resnet44-014dd654.th",
        0.0690,
        "39610676eacd387c77773694cb50188b7a34ff6fcab0c1565431b7654e4c38d7",
    ),
    Pretrained(
        "resnet56",
        "cifar10",
        9,
        "resnet56-4bfd9763.th",
        0.0661,
        "ff3164f7e486c2c5bfc82c6482e86a0afd075bf33abaf9eb062fa791b6279500",
    ),
)


def _table():
    rows = list(_cifar_rows()) + list(_imagenet_rows())
    names = [m.name for m in rows]
    if len(set(names)) != len(names):  # pragma: no cover - a table error, caught on import
        raise AssertionError(f"duplicate model names in the registry: {sorted(n for n in names if names.count(n) > 1)}")
    shipped = {}
    for p in _PRETRAINED:
        shipped.setdefault(p.model, {})[p.dataset] = p
    table = {}
    for m in rows:
        if m.name in shipped:
            m = dataclasses.replace(m, weights=types.MappingProxyType(shipped.pop(m.name)))
        table[m.name] = m
    if shipped:  # pragma: no cover
        raise AssertionError(f"weights for models not in the registry: {sorted(shipped)}")
    return types.MappingProxyType(table)


MODELS = _table()  # name -> Model, CIFAR rows first, in the former VARIANTS order
WEIGHT_NAMES = tuple(sorted({p.dataset for p in _PRETRAINED}))  # ("cifar10",)


def models(family=None):
    """``{name: Model}`` of one family (or all), in table order."""
    return {name: m for name, m in MODELS.items() if family is None or m.family == family}


def get(name):
    """The ``Model`` named ``name``.

    Raises:
        errors.ArgumentError (a ValueError): an unknown name; the message
            keeps the former ``from_preset`` wording.
    """
    if name not in MODELS:
        raise errors.ArgumentError(f"Unknown model name. Received: name={name!r}; allowed: {', '.join(MODELS)}")
    return MODELS[name]


def all_pretrained():
    """Every shipped ``Pretrained``, in table order."""
    return [p for m in MODELS.values() for p in m.weights.values()]


def pretrained(name, weights):
    """The ``Pretrained`` for ``name`` and weights ``weights``, or None when none is shipped."""
    m = MODELS.get(name)
    return None if m is None else m.weights.get(weights)


# Views of the table for the readers that know one family.
VARIANTS = models("cifar")  # the CIFAR nets by name
Variant = Model


def model_name(n, residual=True, shortcut="A"):
    """The CIFAR table name: ``resnet20``, ``resnet56_b``, ``plain32``."""
    depth = 6 * n + 2
    if not residual:
        return f"plain{depth}"
    return f"resnet{depth}" + ("_b" if shortcut == "B" else "")


def resolve_n(depth, n, names=("depth", "n")):
    """Blocks per stage from ``depth`` (6n+2) or ``n``, checked; ValueError says what was received.

    Args:
        depth: 6n+2, or None.
        n: blocks per stage, or None.
        names: what messages call ``depth`` and ``n`` (a command names its flags).
    """
    d, b = names
    if depth is None and n is None:
        raise errors.ArgumentError(f"Give {d} (6n+2: 20, 32, 44, 56, 110, 1202) or {b} >= 1.")
    if n is not None and (not _is_int(n) or n < 1):
        raise errors.ArgumentError(f"{b} must be an integer >= 1. Received: {b}={n!r}")
    if depth is not None:
        if not _is_int(depth) or depth < 8 or (depth - 2) % 6:
            raise errors.ArgumentError(
                f"{d} must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...). Received: {d}={depth!r}"
            )
        if n is not None and n != (depth - 2) // 6:
            raise errors.ArgumentError(
                f"{d} and {b} disagree: {d}={depth} means {b}={(depth - 2) // 6}. Received: {b}={n}"
            )
        n = (depth - 2) // 6
    return n


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
