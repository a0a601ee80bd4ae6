"""Running the exports: logits of raw pixels, with the class names written beside them.

A LiteRT or ONNX export is a version directory (``portable.py``) holding
``model.tflite`` or ``model.onnx``, ``labels.txt`` and ``model_card.json``;
``open_export`` takes that directory or the model file in it. A SavedModel
(``export.py``) is its version directory, run through its ``serving_default``
signature with TensorFlow. Every format takes uint8 ``[N, 32, 32, 3]``
pixels; a full-integer model gives int8 logits with a scale and zero point,
which ``Runtime.logits`` turns back into float32 (argmax is the same either
way).
"""

import dataclasses
import importlib.util
import json
import os

import numpy as np

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.serving import loading

FILES = {"litert": "model.tflite", "onnx": "model.onnx"}
SAVED_MODEL = "saved_model"
# LiteRT's precisions: float32, float16 weights, full-integer int8 (portable.py).
QUANTIZE = ("none", "float16", "int8")
PRECISIONS = ("float32", "bfloat16")  # what a SavedModel's graph computes in (krc-export --precision)
# The modules each format needs (each from the distribution of its name with "-" for "_"), which the
# extra of setup.py named as the format installs.
MODULES = {"litert": ("ai_edge_litert",), "onnx": ("onnxruntime", "onnx", "tf2onnx")}
IMAGE_SHAPE = (32, 32, 3)


class MissingExtraError(errors.Error):
    """An optional dependency that is not installed; the message names the ``pip install`` to run."""


class ExportFileError(errors.Error):
    """A LiteRT or ONNX file that cannot be read or run; the message names it and why."""


def quantize_refusal(fmt, quantize):
    """Why ``quantize`` cannot apply to an export in ``fmt`` ("saved_model", "litert", "onnx"); None when it can."""
    if quantize not in QUANTIZE:
        return f"LiteRT's quantizations are {', '.join(QUANTIZE)}"
    if quantize != "none" and fmt != "litert":
        if fmt == "saved_model":
            return "only the litert format is quantized; a SavedModel is float32 or, with --precision, bfloat16"
        return "only the litert format is quantized; ONNX is float32"
    return None


def require(fmt):
    """Raises ``MissingExtraError`` unless the packages ``fmt`` ("litert" or "onnx") needs are installed."""
    missing = [m for m in MODULES[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"the {fmt} format needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed: pip install -e '.[{fmt}]'"
        )


def find(path):
    """``(format, model file)`` for a SavedModel, a ``.tflite``/``.onnx`` file or a version directory; else None.

    A SavedModel's "model file" is its directory.
    """
    if loading.is_saved_model(path):
        return SAVED_MODEL, path
    if os.path.isdir(path):
        for fmt, name in FILES.items():
            if os.path.isfile(os.path.join(path, name)):
                return fmt, os.path.join(path, name)
        return None
    for fmt, name in FILES.items():
        if path.endswith(os.path.splitext(name)[1]):
            return fmt, path
    return None


@dataclasses.dataclass
class Runtime:
    """One exported model, ready to classify.

    Attributes:
        format: "saved_model", "litert" or "onnx".
        num_classes: how many logits it gives.
        class_names: names from ``labels.txt`` beside the file, or None.
        card: ``model_card.json`` beside the file, or {}.
    """

    format: str
    num_classes: int
    class_names: list | None
    card: dict
    _run: object = dataclasses.field(repr=False, default=None)

    def logits(self, images, batch_size=256):
        """float32 logits ``[N, classes]`` of uint8 ``[N, 32, 32, 3]`` pixels (0..255 floats are rounded)."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
            raise errors.ArgumentError(f"images of shape {images.shape}; the export takes [N, 32, 32, 3]")
        images = images if images.dtype == np.uint8 else np.clip(np.round(images), 0, 255).astype(np.uint8)
        out = [self._run(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)


def open_export(path, threads=0):
    """The export at ``path``: a SavedModel version directory, or a LiteRT or ONNX file or its version directory.

    Args:
        path: a SavedModel directory, a ``.tflite`` or ``.onnx`` file, or a
            directory holding ``model.tflite`` or ``model.onnx``.
        threads: LiteRT's or ONNX Runtime's intra-op threads; 0: one per
            CPU this process may use. A SavedModel runs on TensorFlow's.

    Raises:
        ExportFileError: no such file, or one the runtime cannot load.
        MissingExtraError: the format's runtime is not installed.
    """
    found = find(path)
    if found is None:
        raise ExportFileError(
            f"{path} is not a SavedModel, a .tflite or .onnx file, nor a directory holding model.tflite or model.onnx"
        )
    fmt, model_file = found
    if fmt == SAVED_MODEL:
        run, num_classes = _open_saved_model(model_file)
        card_path = os.path.join(model_file, "assets.extra", "model_card.json")
        labels_path = os.path.join(model_file, "assets", "labels.txt")
    else:
        if not os.path.isfile(model_file):
            raise ExportFileError(f"{model_file} does not exist")
        folder = os.path.dirname(os.path.abspath(model_file))
        with open(model_file, "rb") as f:
            content = f.read()
        run, num_classes = load(fmt, content, threads, name=model_file)
        card_path, labels_path = os.path.join(folder, "model_card.json"), os.path.join(folder, "labels.txt")
    card = _read_json(card_path)
    try:
        names = loading.read_labels(labels_path)
    except (OSError, UnicodeDecodeError) as e:
        raise ExportFileError(f"{labels_path} is not readable text: {files.error_text(e)}") from None
    return Runtime(fmt, num_classes, names or card.get("class_names"), card, run)


def _open_saved_model(path):
    """``(run, num_classes)`` for a SavedModel's ``serving_default``: ``run(uint8 batch)`` gives float32 logits."""
    import tensorflow as tf

    try:
        function = tf.saved_model.load(path).signatures["serving_default"]
    except Exception as e:  # noqa: BLE001 - TensorFlow's OpError family, a missing signature's KeyError, ...
        raise ExportFileError(f"{path} cannot be loaded as a SavedModel: {files.error_text(e, limit=300)}") from None
    image = function.structured_input_signature[1].get("image")
    logits = function.structured_outputs.get("logits")
    if (
        image is None
        or image.dtype != tf.uint8
        or list(image.shape[1:]) != list(IMAGE_SHAPE)
        or logits is None
        or len(logits.shape) != 2
    ):
        raise ExportFileError(
            f"{path} is not an export of this zoo: its serving_default needs an input image of uint8 "
            "[N, 32, 32, 3] raw pixels and a logits output of [N, classes] (krc-export writes such SavedModels)"
        )

    def run(images):
        return function(image=tf.constant(images))["logits"].numpy()

    return run, int(logits.shape[-1])


def load(fmt, content, threads=0, name="the model"):
    """``(run, num_classes)`` for a model's bytes: ``run(uint8 batch)`` gives float32 logits.

    Raises:
        ExportFileError: the runtime cannot load ``content``.
        MissingExtraError: the format's runtime is not installed.
    """
    require(fmt)
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    threads = threads or (len(affinity(0)) if affinity else os.cpu_count() or 1)
    try:
        model = _open_litert(content, threads) if fmt == "litert" else _open_onnx(content, threads)
    except Exception as e:  # noqa: BLE001 - onnxruntime's own types (InvalidProtobuf, Fail), LiteRT's ValueError
        raise ExportFileError(f"{name} cannot be loaded as {fmt}: {files.error_text(e, limit=300)}") from None
    inputs, outputs = (
        (model.get_input_details(), model.get_output_details())
        if fmt == "litert"
        else (model.get_inputs(), model.get_outputs())
    )
    if not _zoo_signature(fmt, inputs, outputs):
        raise ExportFileError(
            f"{name} is not an export of this zoo: it needs one input of uint8 [N, 32, 32, 3] raw pixels and "
            "one output of [N, classes] logits (krc-export writes such files)"
        )
    return (_litert if fmt == "litert" else _onnx)(model, inputs[0], outputs[0])


def _zoo_signature(fmt, inputs, outputs):
    """Whether a model takes one uint8 ``[N, 32, 32, 3]`` input of raw pixels and gives one ``[N, C]`` output."""
    if len(inputs) != 1 or len(outputs) != 1:
        return False
    (source,), (target,) = inputs, outputs
    if fmt == "litert":
        quantization = source["quantization"]
        raw = quantization[0] in (0.0, 1.0) and quantization[1] == 0
        return (
            source["dtype"] == np.uint8
            and list(source["shape"][1:]) == list(IMAGE_SHAPE)
            and raw
            and len(target["shape"]) == 2
        )
    return source.type == "tensor(uint8)" and list(source.shape[1:]) == list(IMAGE_SHAPE) and len(target.shape) == 2


def _open_litert(content, threads):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=content, num_threads=threads)


def _open_onnx(content, threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])


def _litert(interpreter, source, target):
    scale, zero_point = target["quantization"]
    shape = [None]

    def run(images):
        if shape[0] != images.shape:  # a new batch size: LiteRT plans its buffers per shape
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            shape[0] = images.shape
        interpreter.set_tensor(source["index"], images.astype(source["dtype"], copy=False))
        interpreter.invoke()
        out = interpreter.get_tensor(target["index"])
        return scale * (out.astype(np.float32) - zero_point) if scale else out.astype(np.float32)

    return run, int(target["shape_signature"][-1])


def _onnx(session, source, target):
    def run(images):
        return session.run([target.name], {source.name: images})[0].astype(np.float32, copy=False)

    return run, int(target.shape[-1])


def _read_json(path):
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
