"""What a run records: metrics.csv (a row an epoch, read back checked, trimmed on resume), final metrics, versions."""

import csv
import importlib.metadata
import io
import os
import sys

import keras
import numpy as np

import keras_resnet_cifar
from keras_resnet_cifar import files
from keras_resnet_cifar.training.config import TrainingError


def read_csv(path):
    """metrics.csv as a list of dicts (empty if there is none).

    Raises:
        TrainingError: the file is damaged (a second header, a cut or foreign
            row); the message names it and how to go on.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return []
    for number, row in enumerate(rows, start=2):
        try:
            bad = None in row or any(v is None for v in row.values())
            int(row["epoch"])
            for value in row.values():
                if value not in ("", "NA", None):  # CSVLogger writes NA for a metric an epoch lacks
                    float(value)
        except (KeyError, TypeError, ValueError):
            bad = True
        if bad:
            raise TrainingError(
                f"{path} is damaged at line {number} (a row that is not one epoch's numbers); it is kept: "
                "move it aside to go on (its earlier rows will be missing from the run's log), then re-run"
            )
    return rows


def keep_rows(path, epochs):
    """Drops the rows of epochs after the backup's, which the resumed run logs again."""
    rows = read_csv(path)
    kept = [r for r in rows if int(r["epoch"]) < epochs]
    if len(kept) == len(rows):
        return
    if not kept:
        os.remove(path)
        return
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept)
    files.write_text(path, text.getvalue())


def train_metrics(last):
    metrics = {"train_loss": float(last["loss"]) if last.get("loss") else None}
    for key in [k for k in last if k.endswith("accuracy") and not k.startswith("val_")]:
        metrics[f"train_{key}"] = float(last[key])
        metrics[f"train_{key[: -len('accuracy')]}error"] = 1 - float(last[key])
    metrics.setdefault("train_accuracy", None)
    metrics.setdefault("train_error", None)
    return metrics


def export_card(dataset, metrics):
    """Model-card entries of a finished run."""
    return {
        "dataset": dataset,
        "steps": metrics.get("steps"),
        **{k: v for k, v in metrics.items() if k.endswith("accuracy")},
    }


def versions():
    found = {
        "keras_resnet_cifar": keras_resnet_cifar.__version__,
        "keras": keras.__version__,
        "tensorflow": _installed_version("tensorflow"),
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    backend = keras.backend.backend()
    if backend != "tensorflow":
        found[backend] = sys.modules[backend].__version__
    return found


def _installed_version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None
