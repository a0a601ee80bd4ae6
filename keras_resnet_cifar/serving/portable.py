"""LiteRT and ONNX exports: the served graph converted, checked against Keras, written as a version.

Each export is ``<export_base>/<model_name>/<version>/`` (the SavedModel's
layout and rules, ``versions.py``) holding ``model.tflite`` or
``model.onnx``, ``labels.txt`` and ``model_card.json``. The model takes
input ``pixels``, uint8 ``[N, 32, 32, 3]`` raw RGB (what a camera gives, no
float pre-processing), and gives output ``logits`` ``[N, classes]``:
float32, or for a full-integer LiteRT model int8 with the scale and zero
point in the file and the card (``logits = scale * (q - zero_point)``).

The graph converted is the served form (float32, BatchNorm folded into the
convolutions) with the preprocessing's mean and deviation as constants, so
that neither converter sees them as inputs or variables. It goes through
Keras's ``ExportArchive`` and ``tf.lite.TFLiteConverter.from_saved_model``
(as Keras's own ``format="litert"`` does) and ``tf2onnx.convert.from_function``.
Before anything is written, the converted model runs in its runtime on
``CHECK_IMAGES`` images and is compared with the Keras model; the card
records the result.
"""

import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_resnet_cifar.serving import export, runtimes, versions
from keras_resnet_cifar.serving.versions import ExportError

ONNX_OPSET = 17
CHECK_IMAGES = 64
# Largest logit difference from Keras allowed, as a share of the largest logit (at least 1): a
# float32 conversion computes what Keras computes up to rounding order (an untrained ResNet56's
# logits reach 1e5, so the bound scales); float16 weights round each by about 1e-3 of its size.
FLOAT32_TOLERANCE = 1e-4
_SHAPE = runtimes.IMAGE_SHAPE
FLOAT16_TOLERANCE = 1e-2


def default_name(model, fmt, quantize="none"):
    """The model's sub-folder: ``resnet20_litert``, ``resnet20_litert_int8``, ``resnet20_onnx``."""
    return f"{model.name}_{fmt}" + (f"_{quantize}" if quantize != "none" else "")


def export_file(
    model,
    fmt,
    export_base,
    model_name=None,
    version=None,
    *,
    quantize="none",
    calibration=None,
    class_names=None,
    card=None,
    log=None,
):
    """Converts ``model`` to LiteRT or ONNX, checks it, and writes it as a version directory.

    Args:
        model: a functional Keras model of the zoo (``[None, 32, 32, 3]``
            0..255 pixels to logits).
        fmt: "litert" or "onnx".
        export_base, version: as ``export.export_saved_model``.
        model_name: the sub-folder; default ``default_name``.
        quantize: LiteRT only: "none" (float32), "float16" (weights), or
            "int8" (weights and activations, calibrated on ``calibration``).
        calibration: uint8 ``[N, 32, 32, 3]`` training images for "int8".
        class_names: written to ``labels.txt``; default "0", "1", ...
        card: extra model-card entries (dataset, source, ...).
        log: where progress and the check's result are said; None: silently.

    Returns:
        The version directory written.

    Raises:
        ExportError: a bad model, format or quantization, missing
            calibration, a failed conversion or check, an existing version,
            or a failed write (nothing is left behind then).
        runtimes.MissingExtraError: the format's packages are not installed.
    """
    if fmt not in runtimes.FILES:
        raise ExportError(f"unknown format {fmt!r}; the file formats are {', '.join(runtimes.FILES)}")
    refusal = runtimes.quantize_refusal(fmt, quantize)
    if refusal:
        raise ExportError(f"quantize={quantize!r}: {refusal}")
    if quantize == "int8" and (calibration is None or not len(calibration)):
        raise ExportError("int8 quantization needs calibration images (krc-export: --data_dir with training images)")
    runtimes.require(fmt)
    export.check_exportable(model)
    model = export.float32_copy(model)
    if tuple(model.input_shape[1:]) != _SHAPE:
        raise ExportError(f"the model takes {model.input_shape[1:]}; the {fmt} export takes 32x32x3 images")
    class_names = export.label_names(model, class_names)
    name = model_name or default_name(model, fmt, quantize)
    versions.free_version(export_base, name, version)  # refused before converting
    say = log or (lambda line: None)
    graph = constant_form(export.served_form(model))
    if fmt == "litert":
        content, details = _to_litert(graph, quantize, calibration, say)
    else:
        content, details = _to_onnx(graph)
    details["check"] = _check(model, fmt, content, quantize, calibration)
    say(f"Checked against Keras on {details['check']['images']} images: {_check_text(details['check'])}")
    model_card = dict(
        export.describe(model),
        **(card or {}),
        class_names=class_names,
        format=fmt,
        file=runtimes.FILES[fmt],
        quantize=quantize,
        inputs={"pixels": "uint8 [None, 32, 32, 3], raw RGB pixels 0..255"},
        **details,
        versions=_versions(fmt),
    )

    def write(tmp):
        with open(os.path.join(tmp, runtimes.FILES[fmt]), "wb") as f:
            f.write(content)
        with open(os.path.join(tmp, "labels.txt"), "w") as f:
            f.write("\n".join(class_names) + "\n")
        with open(os.path.join(tmp, "model_card.json"), "w") as f:
            json.dump(model_card, f, indent=2)

    return versions.write_version(export_base, name, version, write, log)


def constant_form(model):
    """``model`` with each Normalization layer as a Rescaling of the same arithmetic, its statistics constants.

    Keras keeps a Normalization's mean and variance as tensors that a traced
    function captures: tf2onnx turns them into two more model inputs, and
    the LiteRT converter reads them as NaN. ``(x - mean) / max(sqrt(var),
    eps)`` is ``x * scale + offset`` with numpy constants, which both
    converters embed.
    """

    def clone(layer):
        if not isinstance(layer, keras.layers.Normalization) or layer.invert:
            return layer.__class__.from_config(layer.get_config())
        mean, variance = (keras.ops.convert_to_numpy(v).astype("float64") for v in (layer.mean, layer.variance))
        scale = 1.0 / np.maximum(np.sqrt(variance), keras.config.epsilon())
        return keras.layers.Rescaling(
            scale.astype("float32"), (-mean * scale).astype("float32"), name=layer.name, dtype=layer.dtype_policy
        )

    constant = keras.models.clone_model(model, clone_function=clone)
    for layer in constant.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return constant


def _logits(model):
    """The function every format serves: ``pixels`` (any dtype, 0..255) to ``{"logits": ...}``."""
    return lambda pixels: {"logits": model(tf.cast(pixels, tf.float32), training=False)}


def _graph(model, dtype):
    """A SavedModel-ready archive: ``pixels`` of ``dtype`` to ``{"logits": ...}``."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default", _logits(model), input_signature=[tf.TensorSpec([None, *_SHAPE], dtype, name="pixels")]
    )
    return archive


def _to_litert(model, quantize, calibration, say):
    # int8: the graph takes float pixels and the converter makes its input
    # uint8 with the scale its calibration found, 1.0 when it saw 0 and 255,
    # so that uint8 pixels go in unchanged; float: the graph casts uint8 itself.
    with tempfile.TemporaryDirectory(prefix="krc-litert-") as saved:
        _graph(model, tf.float32 if quantize == "int8" else tf.uint8).write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            images = np.concatenate(
                [
                    np.zeros((1, *_SHAPE), np.uint8),
                    np.full((1, *_SHAPE), 255, np.uint8),
                    np.asarray(calibration, np.uint8),
                ]
            )
            say(f"Calibrating int8 on {len(calibration)} training images (and one black, one white)")
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([image[None].astype(np.float32)] for image in images)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.int8
        # A failure here is a bug (the zoo's graphs convert), so it keeps its traceback.
        content = converter.convert()
    details = _litert_details(content)
    if quantize == "int8" and details["input_quantization"] != {"scale": 1.0, "zero_point": 0}:
        raise ExportError(f"the int8 model's input is quantized as {details['input_quantization']}, not raw pixels")
    return content, details


def _litert_details(content):
    """The input and output of a LiteRT model and its operators left in float, for the card."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the default delegate: XNNPACK would replace the operators by one DELEGATE node.
    interpreter = Interpreter(
        model_content=content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    floating = [t for t in tensors.values() if np.issubdtype(t["dtype"], np.floating)]
    details = {
        "input_quantization": _quantization(source),
        "output": {"logits": f"{np.dtype(target['dtype']).name} [None, {int(target['shape_signature'][-1])}]"},
        "output_quantization": _quantization(target),
        "float_tensors": len(floating),
    }
    # Operators are listed only by the interpreter's underscored method (ai-edge-litert 2.3); without it
    # the card keeps the count of float tensors, which is 0 exactly when no operator computes in float.
    ops = getattr(interpreter, "_get_ops_details", None)
    if ops is not None:
        listed = ops()
        details["operators"] = len(listed)
        details["float_operators"] = sorted(
            op["op_name"]
            for op in listed
            if any(np.issubdtype(tensors[i]["dtype"], np.floating) for i in [*op["inputs"], *op["outputs"]] if i >= 0)
        )
    return details


def _quantization(detail):
    scale, zero_point = detail["quantization"]
    return {"scale": float(scale), "zero_point": int(zero_point)} if scale else None


def _to_onnx(model):
    import tf2onnx

    function = tf.function(_logits(model))
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=[tf.TensorSpec([None, *_SHAPE], tf.uint8, name="pixels")], opset=ONNX_OPSET
    )
    outputs = {o.name: o for o in proto.graph.output}
    details = {"opset": ONNX_OPSET, "output": {"logits": f"float32 [None, {int(model.output_shape[-1])}]"}}
    if list(outputs) != ["logits"]:
        raise ExportError(f"tf2onnx named the outputs {list(outputs)}, not logits")
    return proto.SerializeToString(), details


def _check(model, fmt, content, quantize, calibration):
    """How the converted model's logits compare with Keras's, on seeded pixels (and for int8 its calibration)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (CHECK_IMAGES, *_SHAPE), dtype=np.uint8)
    if quantize == "int8":  # natural images: random pixels say little about a calibrated range
        images = np.asarray(calibration[:CHECK_IMAGES], np.uint8)
    run, _ = runtimes.load(fmt, content)
    got = run(images)
    expected = keras.ops.convert_to_numpy(model(images.astype("float32"), training=False))
    difference = float(np.max(np.abs(got - expected))) if np.isfinite(got).all() else float("inf")
    check = {
        "images": len(images),
        "max_abs_logit_difference": difference,
        "top1_agreement": float(np.mean(got.argmax(-1) == expected.argmax(-1))),
    }
    tolerance = {"none": FLOAT32_TOLERANCE, "float16": FLOAT16_TOLERANCE}.get(quantize, np.inf)
    if not np.isfinite(difference) or difference > tolerance * max(1.0, float(np.max(np.abs(expected)))):
        raise ExportError(
            f"the {fmt} conversion computes other logits than Keras (largest difference {difference:.3g} on "
            f"{len(images)} images); nothing was written"
        )
    return check


def _check_text(check):
    return f"largest logit difference {check['max_abs_logit_difference']:.2g}, top-1 agreement {check['top1_agreement']:.1%}"


def _versions(fmt):
    from importlib import metadata

    packages = [module.replace("_", "-") for module in runtimes.MODULES[fmt]]
    found = {"keras": keras.__version__, "tensorflow": tf.__version__}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found
