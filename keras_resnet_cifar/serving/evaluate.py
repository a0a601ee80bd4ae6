"""Accuracy, per-class accuracy and the confusion matrix of a trained model or its LiteRT or ONNX export."""

import numpy as np

from keras_resnet_cifar import errors
from keras_resnet_cifar.data import arrays, sources
from keras_resnet_cifar.serving import runtimes


def split_images(data, split, validation_split=0.1, seed=0):
    """Images and labels of "train", "val" (as training held it out) or "test"."""
    if split == "test":
        if data.test_images is None:
            raise sources.DataError(f"{data.source} has no test split; use --split=val")
        return data.test_images, data.test_labels
    train_x, train_y, val_x, val_y = arrays.split_train_validation(
        data.train_images, data.train_labels, validation_split, seed
    )
    if split == "train":
        return train_x, train_y
    if val_x is None:
        raise sources.DataError("validation_split=0 leaves no validation split")
    return val_x, val_y


class EvaluationError(errors.Error):
    """A model and data that cannot be scored together; the message names both sides."""


def match_classes(model_names, num_outputs, data_names, by_index=False):
    """The class names to score under: the data's, once they are known to be the model's.

    Args:
        model_names: the model's class names (``labels.txt``), or None when unknown.
        num_outputs: how many classes the model predicts.
        data_names: the data's class names, in label order.
        by_index: score by label index under the data's names even when the
            names differ (the counts must still agree).

    Returns:
        The data's class names.

    Raises:
        EvaluationError: the counts differ, or the names differ without ``by_index``.
    """
    if num_outputs != len(data_names):
        raise EvaluationError(
            f"the model predicts {num_outputs} classes ({', '.join(model_names or ['names unknown'])}) but the "
            f"data has {len(data_names)} ({', '.join(data_names)})"
        )
    if model_names is not None and list(model_names) != list(data_names) and not by_index:
        raise EvaluationError(
            f"the model's classes ({', '.join(model_names)}) are not the data's ({', '.join(data_names)}), so its "
            "scores would be counted under the wrong names; evaluate on data with the model's classes, or pass "
            "--match_classes_by_index to score label i as the model's class i"
        )
    return list(data_names)


def evaluate(model, images, labels, class_names, batch_size=256):
    """Classifies ``images`` (uint8 or 0..255 floats) and scores the result.

    Args:
        model: a ``keras.Model``, or a LiteRT or ONNX export
            (``runtimes.Runtime``), scored by the same code.
        images, labels: the data.
        class_names: the data's class names, in label order.
        batch_size: images per call.

    Returns:
        A dict: accuracy, error, num_images, per_class_accuracy (name to
        accuracy), confusion_matrix (rows true class, columns predicted),
        class_names.

    Raises:
        EvaluationError: the model's output and ``class_names`` disagree in number.
    """
    num_classes = len(class_names)
    if isinstance(model, runtimes.Runtime):
        match_classes(None, model.num_classes, class_names)
        logits = model.logits(images, batch_size)
    else:
        match_classes(None, model.output_shape[-1], class_names)
        logits = model.predict(images.astype("float32"), batch_size=batch_size, verbose=0)
    predicted = np.argmax(logits, axis=-1)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = {
        name: (float(confusion[i, i] / totals[i]) if totals[i] else None) for i, name in enumerate(class_names)
    }
    accuracy = float(np.trace(confusion) / max(len(labels), 1))
    return {
        "accuracy": accuracy,
        "error": 1.0 - accuracy,
        "num_images": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
    }


def format_report(result):
    """A plain-text table of the result."""
    names = result["class_names"]
    width = max(10, *(len(n) for n in names)) + 1
    lines = [
        f"images {result['num_images']:,}  accuracy {result['accuracy']:.4f}  error {result['error']:.4f}",
        "",
        "per-class accuracy:",
    ]
    for name, acc in result["per_class_accuracy"].items():
        lines.append(f"  {name:<{width}} {'-' if acc is None else f'{acc:.4f}'}")
    if len(names) <= 20:
        lines += [
            "",
            "confusion matrix (rows: true, columns: predicted):",
            " " * width + "".join(f"{i:>6}" for i in range(len(names))),
        ]
        for i, row in enumerate(result["confusion_matrix"]):
            lines.append(f"{i:>2} {names[i][: width - 4]:<{width - 3}}" + "".join(f"{v:>6}" for v in row))
    return "\n".join(lines)
