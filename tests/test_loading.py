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
    with pytest.raises(loading.ModelFileError, match="is a directory without a model.keras"):
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


def test_archives_this_package_never_writes_are_refused_in_one_whole_line(tmp_path):
    import zipfile

    import keras

    good = tmp_path / "good.keras"
    krc.resnet_cifar(n=1).save(good)
    # Zip slip: a member named outside the archive.
    slip = tmp_path / "slip.keras"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(slip, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename))
        target.writestr("../../escaped.txt", "x")
    with pytest.raises(loading.ModelFileError, match=r"1 of its members are named outside the archive \('\.\./\.\./"):
        loading.load_keras_file(str(slip))
    assert not (tmp_path.parent / "escaped.txt").exists()
    # A Lambda layer: named, in a whole sentence, not called corrupt.
    inputs = keras.Input((4,))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2, name="doubler")(inputs))
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(loading.ModelFileError) as raised:
        loading.load_keras_file(str(tmp_path / "lambda.keras"))
    message = str(raised.value)
    assert "holds Python code (Lambda layer 'doubler')" in message and message.endswith("the zoo's models have none")
    assert "corrupt" not in message


def test_a_run_directory_stands_for_its_model(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    krc.resnet_cifar(n=1).save(run / "model.keras")
    (run / "labels.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    loaded = loading.load(str(run))
    assert loaded.source == str(run / "model.keras") and loaded.class_names[0] == "c0"
    with pytest.raises(loading.ModelFileError, match="is a directory without a model.keras"):
        loading.load(str(tmp_path))
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(loading.ModelFileError, match="is a SavedModel export: give the .keras file"):
        loading.load(str(tmp_path))
