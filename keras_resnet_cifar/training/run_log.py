"""A run's ``metrics.csv``: one row per epoch, read back checked, trimmed on resume."""

import csv
import io
import os

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
