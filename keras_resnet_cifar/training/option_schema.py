"""The machinery of the option schema: what an option is, its checks, its absl flag.

``options.py`` declares every option once with ``Option``; this module turns
a declaration into a config field, a check and an absl flag. Pure Python
(absl is imported by ``define_flags`` only).
"""

import dataclasses
import math
from typing import Any

SAME = object()  # Option.flag_default: the same as the field's default


@dataclasses.dataclass(frozen=True)
class Option:
    """One option.

    Attributes:
        name: the flag name, and the name in messages ("lr").
        type: bool, int, float or str.
        default: the config field's default.
        help: the flag's help text, verbatim.
        field: the config field it sets; "" (default): ``name``; None: a
            flag only (``--depth``, ``--backend``), read by the tool's ``main``.
        flag: False: a config field only (``progress_seconds``).
        flag_default: the flag's default where it differs (``--n``: None,
            so that ``--depth`` can be told from it).
        invert: the flag is the field's negation (``--plain`` sets
            ``residual``).
        choices: the allowed values (an absl enum).
        minimum, maximum: inclusive bounds (absl's own bounds and messages).
        above, below: exclusive bounds (a validator: "--lr must be > 0").
        nonempty: a string that may not be blank ("--model_dir is empty").
        required: the message when the option is missing (None: optional).
    """

    name: str
    type: type
    default: Any
    help: str = ""
    field: str | None = ""
    flag: bool = True
    flag_default: Any = SAME
    invert: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    nonempty: bool = False
    required: str | None = None

    @property
    def attr(self):
        return self.field or self.name

    @property
    def is_field(self):
        return self.field is not None

    def problem(self, value):
        """What is wrong with ``value`` as this option's field value, or None."""
        if value is None:
            if self.required:
                return self.required
            if self.default is not None:  # only the options that default to None may be None
                return f"{self.name} must be {self.type.__name__}, got None"
            return None
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.type is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.type)
        if not ok:
            return f"{self.name} must be {self.type.__name__}, got {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
        if self.nonempty and not value.strip():
            return f"{self.name} is empty"
        if self.type in (int, float):
            if self.above is not None and not value > self.above:  # NaN fails here too
                return f"{self.name} must be > {self.above}, got {value}"
            low = self.minimum is not None and not value >= self.minimum
            high = (self.below is not None and not value < self.below) or (
                self.maximum is not None and not value <= self.maximum
            )
            if low or high or (self.type is float and math.isnan(value)):
                return f"{self.name} must be {_range(self)}, got {value}"
        return None


def _range(o):
    if o.minimum is not None and o.below is not None:
        return f"in [{o.minimum:g}, {o.below:g})"
    if o.minimum is not None and o.maximum is not None:
        return f"in [{o.minimum:g}, {o.maximum:g}]"
    if o.minimum is not None:
        return f">= {o.minimum:g}"
    if o.below is not None:
        return f"below {o.below:g}"
    return f"<= {o.maximum:g}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """A rule between options: ``ok(*values)`` over the named fields, else ``message``."""

    fields: tuple
    ok: Any
    message: str


def fields(options, defaults=None):
    defaults = defaults or {}
    out = []
    for o in options:
        if not o.is_field:
            continue  # a flag only
        default = defaults.get(o.name, o.default)
        if o.invert:
            default = not default
        out.append((o.attr, o.type | None, dataclasses.field(default=default)))
    return out


# ---------------------------------------------------------------- absl
def define_flags(options, *, module_name, defaults=None):
    """Defines ``options`` as absl flags, attributed to ``module_name`` (as if it had defined them).

    Call it from a tool's entry module only, at import: ``cli/app.py``'s
    ``define_run_flags`` passes ``"keras_resnet_cifar.cli.app"`` (the run
    flags' module until now) and a tool passes its own ``__name__`` for its
    task flags, so ``--help`` groups and lists them as before.
    """
    from absl import flags

    defaults = defaults or {}
    for o in options:
        if not o.flag:
            continue
        default = defaults.get(o.name, o.default if o.flag_default is SAME else o.flag_default)
        text = o.help.format(**defaults) if "{" in o.help else o.help
        common = {"module_name": module_name}
        if o.choices is not None:
            flags.DEFINE_enum(o.name, default, list(o.choices), text, **common)
        elif o.type is bool:
            flags.DEFINE_bool(o.name, default, text, **common)
        elif o.type is int:
            flags.DEFINE_integer(o.name, default, text, lower_bound=o.minimum, upper_bound=o.maximum, **common)
        elif o.type is float:
            flags.DEFINE_float(o.name, default, text, lower_bound=o.minimum, upper_bound=o.maximum, **common)
        else:
            flags.DEFINE_string(o.name, default, text, **common)
        # Exclusive bounds and blank strings: validators, with the former messages.
        if o.above is not None:
            flags.register_validator(
                o.name, lambda v, a=o.above: v is None or v > a, message=f"--{o.name} must be > {o.above:g}"
            )
        if o.below is not None:
            flags.register_validator(
                o.name, lambda v, b=o.below: v is None or v < b, message=f"--{o.name} must be below {o.below:g}"
            )
        if o.nonempty:
            flags.register_validator(o.name, lambda v: v is None or v.strip() != "", message=f"--{o.name} is empty")


def flag_values(values, options):
    """The parsed flags of ``options`` as config keywords (``--lr`` -> ``learning_rate``, ``--plain`` -> ``residual``)."""
    out = {}
    for o in options:
        if not o.flag or not o.is_field:
            continue
        value = values[o.name].value
        out[o.attr] = (not value) if o.invert else value
    return out
