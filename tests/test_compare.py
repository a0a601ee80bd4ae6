"""compare.py and tools/compare.py: Fig. 6 and Fig. 7 from tiny real runs."""

import csv

import numpy as np
import pytest

from keras_resnet_cifar.study import compare
from tests import datagen
from tests.helpers import run_tool
from tests.trainproc import CLASSES

pytest.importorskip("matplotlib", reason="plots need matplotlib (the test extra installs it)")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Plain-8 and ResNet-8, 4 steps each with an evaluation every 2, on a generated folder."""
    tmp = tmp_path_factory.mktemp("compare")
    datagen.image_folder(tmp / "data", CLASSES, per_class=8)
    lines = []
    dirs = compare.train_runs(
        [8], str(tmp / "runs"), data_dir=str(tmp / "data"), steps=4, steps_per_epoch=2, batch_size=8, log=lines.append
    )
    return tmp, dirs, lines


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_runs_and_curves(runs):
    tmp, dirs, lines = runs
    assert [d.rsplit("/", 1)[-1] for d in dirs] == ["plain8", "resnet8"]
    for model_dir in dirs:
        curve = compare.read_curve(model_dir)
        assert curve["step"].tolist() == [2, 4]
        assert np.all((curve["train_error"] >= 0) & (curve["train_error"] <= 1))
        assert np.all(np.isfinite(curve["val_error"]))
    # A second call reuses the finished runs instead of training again.
    again = []
    compare.train_runs(
        [8], str(tmp / "runs"), data_dir=str(tmp / "data"), steps=4, steps_per_epoch=2, batch_size=8, log=again.append
    )
    assert again == [f"plain8: finished run in {dirs[0]}, reused", f"resnet8: finished run in {dirs[1]}, reused"]


def test_plot_curves_writes_png_svg_and_the_plotted_numbers(runs, tmp_path):
    _, dirs, _ = runs
    curves = {(8, False): compare.read_curve(dirs[0]), (8, True): compare.read_curve(dirs[1])}
    png, svg, table = compare.plot_curves(curves, str(tmp_path / "fig6"))
    assert open(png, "rb").read(8) == PNG
    assert "<svg" in open(svg).read()
    rows = _read_csv(table)
    assert [(r["net"], int(r["step"])) for r in rows] == [
        ("plain-8", 2),
        ("plain-8", 4),
        ("ResNet-8", 2),
        ("ResNet-8", 4),
    ]
    for row in rows:
        curve = curves[8, row["net"].startswith("ResNet")]
        i = [2, 4].index(int(row["step"]))
        assert float(row["train_error"]) == pytest.approx(curve["train_error"][i], abs=1e-4)
        assert float(row["val_error"]) == pytest.approx(curve["val_error"][i], abs=1e-4)
    text = compare.summary(curves)
    assert "plain-8" in text and "depth 8: ResNet training error" in text


def test_responses_plot(runs, tmp_path):
    _, dirs, _ = runs
    images, _ = datagen.images(12)
    stds = compare.responses_for(dirs, images, log=lambda _: None)
    assert sorted(stds) == ["plain8", "resnet8"] and all(len(v) == 7 for v in stds.values())
    png, svg, table = compare.plot_responses(stds, str(tmp_path / "fig7"))
    assert open(png, "rb").read(8) == PNG and "<svg" in open(svg).read()
    rows = _read_csv(table)
    assert len(rows) == 14
    plain = [r for r in rows if r["net"] == "plain8"]
    assert [r["layer"] for r in plain] == [name for name, _ in stds["plain8"]]
    assert sorted(int(r["sorted_rank"]) for r in plain) == list(range(1, 8))
    biggest = max(plain, key=lambda r: float(r["std"]))
    assert biggest["sorted_rank"] == "1"


def test_read_curve_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        compare.read_curve(str(tmp_path))
    (tmp_path / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(ValueError, match="no step and error columns"):
        compare.read_curve(str(tmp_path))


def test_tool_plots_finished_runs(runs, tmp_path):
    tmp, _, _ = runs
    out = run_tool(
        "compare.py",
        "--depths=8",
        "--notrain",
        f"--runs_dir={tmp / 'runs'}",
        f"--data_dir={tmp / 'data'}",
        f"--out={tmp_path}",
        "--response_images=5",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "plain-8" in out.stdout and "ResNet-8" in out.stdout
    for name in ("plain_vs_residual", "layer_responses"):
        for ext in ("png", "svg", "csv"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0


def test_tool_errors(tmp_path):
    bad = run_tool("compare.py", "--depths=21")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: --depths must be 6n+2")
    assert bad.stderr.strip().endswith("Received: --depths=21")
    missing = run_tool("compare.py", "--depths=20", "--notrain", f"--runs_dir={tmp_path}")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith("error: ") and "does not exist" in missing.stderr
