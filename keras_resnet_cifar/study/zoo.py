"""A table of every variant, built and measured, for tools/zoo.py and docs."""

import time

from keras_resnet_cifar.models import resnet, stats
from keras_resnet_cifar.models.presets import VARIANTS

_COLUMNS = ("model", "depth", "n", "shortcut", "trainable", "paper", "BN stats", "layers", "M mult-adds", "build s")


def rows(max_depth=1202):
    """Builds each variant up to ``max_depth`` and yields its measured row."""
    for v in VARIANTS.values():
        if v.depth > max_depth:
            continue
        start = time.perf_counter()
        model = resnet.from_preset(v.name)
        seconds = time.perf_counter() - start
        yield {
            "model": v.name,
            "depth": v.depth,
            "n": v.n,
            "shortcut": v.shortcut if v.residual else "none",
            "trainable": stats.trainable_params(model),
            "paper": v.trainable_params,
            "BN stats": stats.non_trainable_params(model),
            "layers": stats.weighted_layers(model),
            "M mult-adds": round(stats.multiply_adds(model) / 1e6, 1),
            "build s": round(seconds, 1),
        }


def _cell(value):
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(max_depth=1202, markdown=False):
    """Prints the table a row at a time (deep models take a while to build).

    Returns:
        True when every built model matches the table's parameter counts.
    """
    widths = [12, 6, 5, 10, 11, 11, 10, 8, 13, 9]
    if markdown:
        print("| " + " | ".join(_COLUMNS) + " |")
        print("|" + "|".join("---" for _ in _COLUMNS) + "|")
    else:
        print("".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(_COLUMNS, widths))))
    ok = True
    for row in rows(max_depth):
        ok &= row["trainable"] == row["paper"] and row["layers"] == row["depth"]
        cells = [_cell(row[c]) for c in _COLUMNS]
        if markdown:
            print("| " + " | ".join(cells) + " |", flush=True)
        else:
            print("".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))), flush=True)
    print("all parameter counts match the table" if ok else "MISMATCH against the table")
    return ok
