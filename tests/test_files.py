"""Writes through a temporary file: a failure never leaves half a file."""

import errno
import os

import pytest

from keras_resnet_cifar import files


class _DiskFullModel:
    """Writes half a file, then fails as a full disk would."""

    def save(self, path):
        with open(path, "w") as f:
            f.write("half a model")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_failed_save_leaves_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("the good model")
    with pytest.raises(files.WriteError, match="cannot write .*model.keras: No space left on device"):
        files.save_model(_DiskFullModel(), str(target))
    assert target.read_text() == "the good model"
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_failed_save_creates_nothing(tmp_path):
    with pytest.raises(files.WriteError):
        files.save_model(_DiskFullModel(), str(tmp_path / "new.keras"))
    assert os.listdir(tmp_path) == []


def test_write_json_and_text_replace_whole_files(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(str(path), {"accuracy": 0.5})
    files.write_json(str(path), {"accuracy": 0.75})
    assert path.read_text() == '{\n  "accuracy": 0.75\n}\n'
    (tmp_path / "file.txt").write_text("a file, not a folder")
    with pytest.raises(files.WriteError, match="cannot write"):
        files.write_text(str(tmp_path / "file.txt" / "below_a_file.txt"), "x")
    assert sorted(os.listdir(tmp_path)) == ["file.txt", "metrics.json"]
