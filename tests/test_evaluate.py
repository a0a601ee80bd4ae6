"""Evaluation never scores under the wrong class names: model and data classes must agree."""

import subprocess
import sys

import pytest

from keras_resnet_cifar import files
from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.serving import evaluate
from tests import datagen
from tests.helpers import REPO
from tests.trainproc import CLASSES


def _model(tmp_path, names):
    folder = tmp_path / f"model{len(names)}"
    folder.mkdir()
    files.save_model(resnet.resnet_cifar(n=1, num_classes=len(names)), str(folder / "model.keras"))
    (folder / "labels.txt").write_text("\n".join(names) + "\n")
    return folder / "model.keras"


def _evaluate(model, data, *extra):
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/evaluate.py"),
            f"--model={model}",
            f"--data_dir={data}",
            "--split=train",
            "--validation_split=0",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


# The class names of the two data folders of ``folders``.
_DATA_CLASSES = {"pets": ["cat", "deer", "dog"], "cifar": CLASSES}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    datagen.image_folder(root / "pets", _DATA_CLASSES["pets"], per_class=2)
    datagen.image_folder(root / "cifar", _DATA_CLASSES["cifar"], per_class=1)
    return root


_DIFFER = [
    (
        CLASSES,
        "pets",
        "the model predicts 10 classes (airplane, automobile, bird, cat, deer, dog, frog, horse, "
        "ship, truck) but the data has 3 (cat, deer, dog)",
    ),
    (
        ["airplane", "automobile", "bird"],
        "pets",
        "the model's classes (airplane, automobile, bird) are not the data's (cat, deer, dog)",
    ),
    (
        ["airplane", "automobile", "bird"],
        "cifar",
        "the model predicts 3 classes (airplane, automobile, bird) but the data has 10 (airplane, automobile,",
    ),
]


@pytest.mark.parametrize("model_classes,data,message", _DIFFER, ids=["10-on-3", "other-names", "3-on-10"])
def test_class_names_that_differ_are_an_error_naming_both(model_classes, data, message):
    with pytest.raises(evaluate.EvaluationError) as raised:
        evaluate.match_classes(model_classes, len(model_classes), _DATA_CLASSES[data])
    assert str(raised.value).startswith(message)


def test_the_tool_refuses_differing_classes_in_one_line(tmp_path, folders):
    # The command reads the model's names from its labels.txt and the data's from the folder.
    model_classes, data, message = _DIFFER[0]
    out = _evaluate(_model(tmp_path, model_classes), folders / data)
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    assert line.startswith(f"error: {message}")
    assert "accuracy" not in out.stdout


def test_matching_by_index_is_explicit_and_said(tmp_path, folders):
    out = _evaluate(_model(tmp_path, ["airplane", "automobile", "bird"]), folders / "pets", "--match_classes_by_index")
    assert out.returncode == 0, out.stderr
    assert "note: label i of the data is scored as the model's class i: airplane, automobile, bird" in out.stdout
    assert "images 6  accuracy" in out.stdout


def test_matching_names_need_no_flag():
    assert evaluate.match_classes(["a", "b"], 2, ["a", "b"]) == ["a", "b"]
    assert evaluate.match_classes(None, 2, ["a", "b"]) == ["a", "b"]
    with pytest.raises(evaluate.EvaluationError, match=r"predicts 3 classes \(names unknown\) but the data has 2"):
        evaluate.match_classes(None, 3, ["a", "b"])
