"""SavedModel export for TF Serving: two signatures, labels, model card, warm-up.

Layout written: ``<export_base>/<model_name>/<version>/`` with
``saved_model.pb``, ``variables/``, ``assets/labels.txt`` and
``assets.extra/{model_card.json, tf_serving_warmup_requests}``. A version is
written under a temporary name beside it and renamed when complete, so TF
Serving (which ignores non-numeric directories) never loads half of one.

Signatures (our public contract):

* ``serving_default``: input ``image``, uint8 ``[None, 32, 32, 3]`` raw
  pixels; outputs ``probabilities`` float32 ``[None, C]``, ``class_ids``
  int64 ``[None]``, ``logits`` float32 ``[None, C]``.
* ``serving_bytes``: input ``image_bytes``, string ``[None]``, each a PNG or
  JPEG file; same outputs. Images must be 32x32: a wrong size is an error
  rather than a silent resize, which would change what the model sees.

ImageNet models (``image_size=224``) take ``[None, 224, 224, 3]`` in
``serving_default``, and their ``serving_bytes`` accepts images of any size,
resized and center-cropped as in evaluation (``imagenet_data.eval_image``).

The graph computes in float32, whatever the model's dtype policy, or with
``precision="bfloat16"`` in bfloat16 (inputs and outputs as above): faster
batches where the CPU runs bfloat16 in hardware (docs/performance.md).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_resnet_cifar import files
from keras_resnet_cifar.models import stats
from keras_resnet_cifar.serving import runtimes, versions
from keras_resnet_cifar.serving.versions import ExportError

SIGNATURE_BYTES = "serving_bytes"
IMAGE_SIZE = 32
_WARMUP_BATCH_SIZES = (1, 8)


def float32_copy(model):
    """The same functional model computing in float32, with the same weights (``served_form`` unfolded)."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    return served_form(model, fold=False)


def served_form(model, fold=True, precision="float32"):
    """The model as the export serves it: its layers in ``precision`` and, with ``fold``, BatchNorm folded.

    Args:
        model: a functional model (``check_exportable``).
        fold: fold each BatchNorm into the convolution it alone reads.
        precision: one of ``runtimes.PRECISIONS``. With "bfloat16" every
            layer but the last computes in bfloat16 (Keras's
            ``mixed_bfloat16``: float32 weights, cast as they are read); the
            last gives float32 logits.

    Every Conv2D whose output only a BatchNormalization reads becomes one
    biased Conv2D: y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta is
    conv'(x) with the kernel scaled by gamma / sqrt(var + eps) per output
    channel and bias beta - mean * that scale. Neither TensorFlow's graph
    optimiser nor TF Serving does this for Keras 3's BatchNormalization (its
    ``Mul``/``AddV2`` read resource variables, not constants), and the folded
    convolution, bias and ReLU run as one fused oneDNN kernel
    (docs/performance.md has the measurement). Built with Keras's public
    ``clone_model``, so no serialized config is edited.
    """
    pairs = _conv_batch_norm_pairs(model) if fold else {}
    folded_convs = set(pairs.values())
    _check_precision(precision)
    compute = "float32" if precision == "float32" else f"mixed_{precision}"
    last = model.layers[-1]  # the logits layer; ``model.layers`` builds a new list at each call

    def clone(layer):
        config = dict(layer.get_config(), dtype="float32" if layer is last else compute)
        if layer.name in folded_convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        if layer.name in pairs:  # the folded BatchNorm: its convolution now does its work
            return args[0]
        return layer(*args, **kwargs)

    served = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in served.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        original = model.get_layer(layer.name)
        bn = next((model.get_layer(b) for b, c in pairs.items() if c == layer.name), None)
        if bn is None:
            layer.set_weights(original.get_weights())
            continue
        gamma, beta, mean, var = (
            keras.ops.convert_to_numpy(w).astype("float64")
            for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
        )
        scale = gamma / np.sqrt(var + bn.epsilon)
        kernel = keras.ops.convert_to_numpy(original.kernel).astype("float64") * scale
        bias = keras.ops.convert_to_numpy(original.bias).astype("float64") if original.use_bias else 0.0
        layer.set_weights([kernel.astype("float32"), ((bias - mean) * scale + beta).astype("float32")])
    return served


def _check_precision(precision):
    if precision not in runtimes.PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(runtimes.PRECISIONS)}, not {precision!r}")


def _conv_batch_norm_pairs(model):
    """``{batch norm name: conv name}`` for each BatchNormalization that alone reads a Conv2D's output."""
    readers = {}
    for layer in model.layers:
        inputs = _called_once(layer, "input")
        for tensor in keras.tree.flatten(inputs) if inputs is not None else []:
            readers.setdefault(id(tensor), []).append(layer)
    pairs = {}
    for conv in model.layers:
        output = _called_once(conv, "output") if isinstance(conv, keras.layers.Conv2D) else None
        found = readers.get(id(output), []) if output is not None else []
        if (
            len(found) == 1
            and isinstance(found[0], keras.layers.BatchNormalization)
            and found[0].center
            and found[0].scale
            and _called_once(found[0], "input") is not None
        ):
            pairs[found[0].name] = conv.name
    return pairs


def _called_once(layer, attribute):
    """``layer.input`` or ``layer.output``; None for an input layer or a layer called more than once (shared)."""
    if isinstance(layer, keras.layers.InputLayer):
        return None
    try:
        return getattr(layer, attribute)
    except (AttributeError, ValueError):  # Keras: "has multiple inbound nodes"
        return None


def describe(model):
    """Depth, shortcut and classes read off a built model, for the model card."""
    return {
        "model": model.name,
        "depth": stats.weighted_layers(model),
        "shortcut": stats.shortcut_kind(model),
        "num_classes": int(model.output_shape[-1]),
        "trainable_params": stats.trainable_params(model),
    }


def export_saved_model(
    model,
    export_base,
    model_name=None,
    version=None,
    class_names=None,
    card=None,
    warmup=True,
    image_size=IMAGE_SIZE,
    preprocess_bytes=None,
    log=None,
    precision="float32",
):
    """Writes ``model`` for TF Serving and returns the version directory.

    Args:
        model: a Keras model taking ``[None, 32, 32, 3]`` 0..255 pixels and
            returning logits.
        export_base: the base path TF Serving watches.
        model_name: sub-directory (the served model's name); default
            ``model.name``, with ``_bfloat16`` for a bfloat16 graph (a
            float32 model's next version is never replaced by one).
        version: integer version; None takes the next free one.
        class_names: written to ``assets/labels.txt``; default "0", "1", ...
        card: extra model-card entries (dataset, accuracy, ...).
        warmup: write ``assets.extra/tf_serving_warmup_requests``.
        image_size: side of the square uint8 images ``serving_default``
            takes (32 for CIFAR, 224 for ImageNet).
        preprocess_bytes: None: ``serving_bytes`` accepts only images of
            ``image_size`` (CIFAR); else a function from one encoded image
            to a uint8 ``[image_size, image_size, 3]`` tensor, for example
            ImageNet's resize and center crop.
        log: where to say that unfinished exports of stopped processes
            (``.tmp-<pid>-<version>`` folders) were removed; None: silently.
        precision: what the graph computes in, one of ``runtimes.PRECISIONS``; the
            signatures' inputs and outputs are the same either way.

    Raises:
        ExportError: an existing version, a bad version, precision or model,
            or a failed write (nothing is left behind then).
    """
    _check_precision(precision)
    check_exportable(model)
    model = float32_copy(model)
    if tuple(model.input_shape[1:]) not in ((image_size, image_size, 3), (None, None, 3)):
        raise ExportError(
            f"the model takes {model.input_shape[1:]}, the signatures need {image_size}x{image_size}x3 images"
        )
    num_classes = int(model.output_shape[-1])
    class_names = label_names(model, class_names)
    model_name = model_name or (model.name + ("" if precision == "float32" else f"_{precision}"))

    def write(tmp):
        extra = os.path.join(tmp, "assets.extra")
        try:
            _write_archive(served_form(model, precision=precision), tmp, image_size, preprocess_bytes)
            os.makedirs(extra, exist_ok=True)
            if warmup:
                _write_warmup(os.path.join(extra, "tf_serving_warmup_requests"), model_name, image_size)
        except tf.errors.OpError as e:  # TensorFlow's own writers: SaveV2, TFRecordWriter (a full disk, for one)
            raise OSError(files.failure_reason(e)) from None
        os.makedirs(os.path.join(tmp, "assets"), exist_ok=True)
        with open(os.path.join(tmp, "assets", "labels.txt"), "w") as f:
            f.write("\n".join(class_names) + "\n")
        model_card = {  # the export's own entries over a caller's of the same name
            **describe(model),
            **(card or {}),
            "class_names": class_names,
            "precision": precision,
            "signatures": _contract(num_classes, image_size, preprocess_bytes is not None),
            "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        }
        with open(os.path.join(extra, "model_card.json"), "w") as f:
            json.dump(model_card, f, indent=2)

    return versions.write_version(export_base, model_name, version, write, log)


def label_names(model, class_names=None):
    """``class_names`` as a list, or "0", "1", ... when None; one per output of ``model``.

    Raises:
        ExportError: the count differs from the model's outputs.
    """
    num_classes = int(model.output_shape[-1])
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ExportError(f"{len(names)} class names for a model of {num_classes} classes")
    return names


def check_exportable(model):
    """Refuses, before anything is written, a model the export cannot read.

    The export clones the functional graph (to fold BatchNorm into the
    convolutions) and serves logits of uint8 images.
    """
    try:
        one_to_one = len(model.inputs) == 1 and len(model.outputs) == 1
    except (AttributeError, TypeError, ValueError):  # a subclassed model has no graph to read
        one_to_one = False
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential) or not one_to_one:
        raise ExportError(
            f"{getattr(model, 'name', model)!r} is a {type(model).__name__}; the export takes a functional "
            "keras.Model with one image input and one logits output, as the zoo builds (keras_resnet_cifar."
            "resnet_cifar, resnet_imagenet): rebuild it as one"
        )


def _contract(num_classes, size, any_size):
    outputs = {
        "probabilities": f"float32 [None, {num_classes}]",
        "class_ids": "int64 [None]",
        "logits": f"float32 [None, {num_classes}]",
    }
    return {
        "serving_default": {
            "inputs": {"image": f"uint8 [None, {size}, {size}, 3], raw RGB pixels 0..255"},
            "outputs": outputs,
        },
        SIGNATURE_BYTES: {
            "inputs": {
                "image_bytes": "string [None], PNG or JPEG files of "
                + (
                    f"any size (resized and center-cropped to {size}x{size})"
                    if any_size
                    else f"{size}x{size} RGB images"
                )
            },
            "outputs": outputs,
        },
    }


def _write_archive(model, path, size, preprocess_bytes):
    num_classes = int(model.output_shape[-1])

    def outputs(images):
        # An empty batch answers with empty outputs, as TF Serving clients
        # expect, instead of failing inside the first convolution.
        return tf.cond(tf.shape(images)[0] > 0, lambda: classify(images), empty)

    def classify(images):
        logits = model(tf.cast(images, tf.float32), training=False)
        return {
            "probabilities": tf.nn.softmax(logits),
            "class_ids": tf.argmax(logits, axis=-1, output_type=tf.int64),
            "logits": logits,
        }

    def empty():
        return {
            "probabilities": tf.zeros([0, num_classes]),
            "class_ids": tf.zeros([0], tf.int64),
            "logits": tf.zeros([0, num_classes]),
        }

    def gate(value, ok, *message):
        """``value``, available only after ``ok`` was asserted."""
        check = tf.debugging.Assert(ok, list(message))
        with tf.control_dependencies([check]):
            return tf.identity(value)

    def decode(data):
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    def serve(image):
        # Loaded signature functions do not enforce the declared shape.
        ok = tf.reduce_all(tf.equal(tf.shape(image)[1:], [size, size, 3]))
        return outputs(gate(image, ok, f"serving_default: image must be uint8 [N, {size}, {size}, 3]"))

    def serve_bytes(image_bytes):
        return tf.cond(tf.size(image_bytes) > 0, lambda: serve_encoded(image_bytes), empty)

    def serve_encoded(image_bytes):
        # A PNG or JPEG signature on every image first, so that a bad one is
        # reported by its index rather than by the decoder's internals.
        png = tf.equal(tf.strings.substr(image_bytes, 0, 8), b"\x89PNG\r\n\x1a\n")
        jpeg = tf.equal(tf.strings.substr(image_bytes, 0, 3), b"\xff\xd8\xff")
        known = tf.logical_or(png, jpeg)
        image_bytes = gate(
            image_bytes,
            tf.reduce_all(known),
            "serving_bytes: image",
            tf.argmin(tf.cast(known, tf.int32)),
            "of the batch (counting from 0) is not a PNG or JPEG",
        )
        if preprocess_bytes is not None:
            return outputs(
                tf.map_fn(preprocess_bytes, image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8))
            )
        # Sizes first, in a pass of their own, so that the size error is ours
        # rather than a shape error from inside the decoding loop.
        sizes = tf.map_fn(lambda d: tf.shape(decode(d))[:2], image_bytes, fn_output_signature=tf.int32)
        ok = tf.reduce_all(tf.equal(sizes, size))
        image_bytes = gate(image_bytes, ok, f"serving_bytes: each image must be a {size}x{size} PNG or JPEG")
        images = tf.map_fn(
            lambda d: tf.ensure_shape(decode(d), [size, size, 3]),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
        )
        return outputs(images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint added becomes serving_default.
    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="image")]
    )
    archive.add_endpoint(
        SIGNATURE_BYTES, serve_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")]
    )
    archive.write_out(path, verbose=False)


# --- TF Serving warm-up records -------------------------------------------


def warmup_record(model_name, signature, key, tensor):
    """One serialized ``PredictionLog`` holding a ``PredictRequest``, as TF Serving replays it."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature),
        inputs={key: tf.make_tensor_proto(tensor)},
    )
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    return log.SerializeToString()


def _write_warmup(path, model_name, size):
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(path) as writer:
        for batch in _WARMUP_BATCH_SIZES:
            pixels = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
            writer.write(warmup_record(model_name, "serving_default", "image", pixels))
            encoded = np.array([tf.io.encode_png(p).numpy() for p in pixels], dtype=object)
            writer.write(warmup_record(model_name, SIGNATURE_BYTES, "image_bytes", encoded))
