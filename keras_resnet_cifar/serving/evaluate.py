"""Accuracy, per-class accuracy and the confusion matrix of a trained model."""

import numpy as np

from keras_resnet_cifar.data import input_pipeline


def split_images(data, split, validation_split=0.1, seed=0):
    """Images and labels of "train", "val" (as training held it out) or "test"."""
    if split == "test":
        if data.test_images is None:
            raise input_pipeline.DataError(f"{data.source} has no test split; use --split=val")
        return data.test_images, data.test_labels
    train_x, train_y, val_x, val_y = input_pipeline.split_train_validation(
        data.train_images, data.train_labels, validation_split, seed
    )
    if split == "train":
        return train_x, train_y
    if val_x is None:
        raise input_pipeline.DataError("validation_split=0 leaves no validation split")
    return val_x, val_y


def evaluate(model, images, labels, class_names, batch_size=256):
    """Classifies ``images`` (uint8 or 0..255 floats) and scores the result.

    Returns:
        A dict: accuracy, error, num_images, per_class_accuracy (name to
        accuracy), confusion_matrix (rows true class, columns predicted),
        class_names.

    Raises:
        ValueError: when the model's classes and ``class_names`` disagree.
    """
    num_classes = len(class_names)
    if model.output_shape[-1] != num_classes:
        raise ValueError(f"the model predicts {model.output_shape[-1]} classes but the data has {num_classes}")
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
