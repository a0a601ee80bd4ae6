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


def test_error_text_gives_the_cause_of_an_error_inside_a_tf_function():
    import tensorflow as tf

    images = tf.data.Dataset.from_tensor_slices([b"not an image"]).map(
        lambda data: tf.io.decode_image(data, channels=3, expand_animations=False)
    )

    @tf.function
    def first(iterator):
        return next(iterator)

    # Eagerly TensorFlow's message is one line; in a graph it starts "Graph execution error:" and the cause follows.
    for read in (lambda: next(iter(images)), lambda: first(iter(images))):
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            read()
        assert files.error_text(caught.value).startswith("Unknown image file format."), caught.value.message


def test_a_file_in_the_way_of_a_folder_is_named(tmp_path):
    (tmp_path / "afile").write_text("")
    # The folder itself is a file (makedirs: "File exists"), or one above it is ("Not a directory").
    for folder in (tmp_path / "afile", tmp_path / "afile" / "below"):
        with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'afile'} is a file, not a folder"):
            files.make_directory(str(folder))
    files.make_directory(str(tmp_path / "new" / "deeper"))
    assert (tmp_path / "new" / "deeper").is_dir()


def test_this_process_temporaries_are_removed_only_when_asked(tmp_path):
    own = tmp_path / f".tmp-{os.getpid()}-config.json"
    own.write_text("{")
    dead = tmp_path / ".tmp-999999999-metrics.csv"  # above any pid Linux hands out
    dead.write_text("")
    assert files.remove_stale_temporaries(tmp_path) == [dead.name]
    assert own.exists()
    assert files.remove_stale_temporaries(tmp_path, this_process=True) == [own.name]
    assert list(tmp_path.iterdir()) == []
