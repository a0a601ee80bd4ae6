"""Model specs and bad model files: every tool that loads a .keras file says what is wrong."""

import subprocess
import sys

import pytest

import keras_resnet_cifar as krc
from keras_resnet_cifar.serving import loading
from tests.helpers import REPO


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    good = root / "good.keras"
    krc.resnet_cifar(n=1).save(good)
    data = good.read_bytes()
    (root / "truncated.keras").write_bytes(data[: len(data) // 2])
    (root / "text.keras").write_text("this is not a model\n")
    return root


@pytest.mark.parametrize("name", ["truncated.keras", "text.keras"])
def test_a_damaged_file_is_named_as_such(bad_files, name):
    with pytest.raises(loading.ModelFileError, match=rf"{name} is not a valid \.keras file \(corrupt or truncated"):
        loading.load_keras_file(str(bad_files / name))
    with pytest.raises(loading.ModelFileError, match="does not exist"):
        loading.load_keras_file(str(bad_files / "missing.keras"))
    with pytest.raises(loading.ModelFileError, match="is a directory, not a .keras file"):
        loading.load_keras_file(str(bad_files))


@pytest.mark.parametrize(
    "tool,args",
    [
        ("predict.py", ["--npy=unused.npy"]),
        ("evaluate.py", ["--data_dir=unused"]),
        ("export.py", ["--export_base=unused"]),
    ],
)
def test_every_tool_reports_a_damaged_file_in_one_line(bad_files, tool, args):
    path = bad_files / "truncated.keras"
    if tool == "predict.py":
        import numpy as np

        np.save(bad_files / "unused.npy", np.zeros((1, 32, 32, 3), np.uint8))
        args = [f"--npy={bad_files / 'unused.npy'}"]
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / tool), f"--model={path}", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path} is not a valid .keras file (corrupt or truncated")


def test_evaluate_refuses_a_zero_batch_size():
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "evaluate.py"), "--model=x.keras", "--batch_size=0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: flag --batch_size=0: 0 is not a positive integer (--help lists the flags)"
    ]
