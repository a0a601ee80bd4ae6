"""An export's serving speed, timed in a process of its own as a server runs it.

A server runs the SavedModel alone in its process. Timed inside the
benchmark, after the training cases and torch, it would share thread pools
and allocator state with them. So the benchmark exports the model and runs
this module as a child that imports TensorFlow only, sets the serving
threads before anything runs, loads the SavedModel and calls its
``serving_default`` signature on uint8 images. A LiteRT or ONNX export
(``"format": "litert"`` or ``"onnx"``) runs in its runtime instead, with
``intra_op`` threads (0: one per CPU).

    python -m keras_resnet_cifar.study.serving_speed '{"path": ".../1", "format": "saved_model", "intra_op": 1, "inter_op": 0, "batch_size": 128}'

prints one JSON line: ``batch_images_per_sec``, ``batch_size``,
``latency_p50_ms``, ``latency_p99_ms``.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np


def measure(path, fmt="saved_model", intra_op=0, inter_op=0, env=None, batch_size=128, timeout=900):
    """Figures of the export at ``path``, timed in a child process.

    Args:
        path: a SavedModel version directory with ``serving_default``, or a
            LiteRT or ONNX version directory.
        fmt: "saved_model", "litert" or "onnx".
        intra_op: TensorFlow's intra-op threads (TF Serving's
            ``--tensorflow_intra_op_parallelism``); 0 is TensorFlow's choice.
        inter_op: inter-op threads (``--tensorflow_inter_op_parallelism``).
        env: extra environment variables for the child (for example
            ``TF_ENABLE_ONEDNN_OPTS``).
        batch_size: the throughput batch.
        timeout: seconds before the child is stopped.

    Returns:
        The figures as a dict.

    Raises:
        RuntimeError: the child failed; its last line of stderr says why.
    """
    spec = {"path": path, "format": fmt, "intra_op": intra_op, "inter_op": inter_op, "batch_size": batch_size}
    result = subprocess.run(
        [sys.executable, "-m", __name__, json.dumps(spec)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
        raise RuntimeError(f"timing the {fmt} export failed: {lines[-1]}")
    return json.loads(result.stdout.splitlines()[-1])


def percentiles_ms(fn, x, repeats=200, warmup=20):
    """p50 and p99 wall time of ``fn(x)`` in milliseconds."""
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def images_per_sec(fn, x, repeats=20, warmup=3):
    """Throughput of ``fn`` on the batch ``x``."""
    for _ in range(warmup):
        fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return repeats * len(x) / (time.perf_counter() - start)


def figures(fn, batch):
    """Batch throughput and batch-1 latency of ``fn`` on uint8 images."""
    p50, p99 = percentiles_ms(fn, batch[:1])
    return {
        "batch_images_per_sec": images_per_sec(fn, batch),
        "batch_size": len(batch),
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
    }


def main(argv):
    try:
        spec = json.loads(argv[1])
        spec = {key: spec[key] for key in ("path", "format", "intra_op", "inter_op", "batch_size")}
    except (IndexError, ValueError, TypeError, KeyError):
        print(
            'usage: python -m keras_resnet_cifar.study.serving_speed \'{"path": ..., "format": "saved_model", '
            '"intra_op": 0, "inter_op": 0, "batch_size": 128}\'',
            file=sys.stderr,
        )
        return 2
    batch = np.random.default_rng(0).integers(0, 256, (spec["batch_size"], 32, 32, 3), dtype=np.uint8)
    if spec["format"] != "saved_model":  # the runtime alone: no TensorFlow in this process
        from keras_resnet_cifar.serving import runtimes

        runtime = runtimes.open_export(spec["path"], threads=spec["intra_op"])
        print(json.dumps(figures(runtime.logits, batch)))
        return 0
    import tensorflow as tf

    # Before any op runs: TensorFlow fixes its thread pools on first use.
    tf.config.threading.set_intra_op_parallelism_threads(spec["intra_op"])
    tf.config.threading.set_inter_op_parallelism_threads(spec["inter_op"])
    signature = tf.saved_model.load(spec["path"]).signatures["serving_default"]
    print(json.dumps(figures(lambda x: signature(image=tf.constant(x)), batch)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
