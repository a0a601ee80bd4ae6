"""Training, inference, serving and input-pipeline speed on this machine.

Examples:
    python tools/benchmark.py                               # ResNet20, the default grid
    python tools/benchmark.py --depths=20,56 --precisions=float32 --xla=on
    python tools/benchmark.py --data_dir=../shared/cifar10-jpeg --json=bench.json
    python tools/benchmark.py --backends=torch --peer=torch --peer_compile --rounds=5

Prints a table (each training row with its ratio to the grid's first
precision and XLA setting for the same depth, batch and data, and its first
step's seconds, which hold the compile) and writes JSON with the machine
description. Where torch is timed, compiled steps, ours and the peer's, start
from an empty Inductor cache (a temporary folder; ``$TORCHINDUCTOR_CACHE_DIR`` where set),
as a first run does: round 1's first step of each graph compiles it (kernels
of the same source that an earlier graph compiled are reused), later
rounds load it, and where both of our torch steps are timed (``--xla=off``)
the benchmark says from how many steps compiling pays here.
"""

import json
import os

from absl import flags

from keras_resnet_cifar.cli import app
from keras_resnet_cifar.training import machine, options  # pure Python: no Keras import yet

# Every precision but "auto" (the benchmark names each one it times).
PRECISIONS = tuple(p for p in options.PRECISIONS if p != "auto")

flags.DEFINE_list("depths", ["20"], "Depths 6n+2 to time.")
flags.DEFINE_list("shortcuts", ["A"], "Shortcut options (A, B).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], f"Any of {', '.join(PRECISIONS)}.")
flags.DEFINE_list("batch_sizes", ["128"], "Training batch sizes.")
flags.DEFINE_list(
    "xla",
    ["off", "on"],
    "Compile settings to time: XLA under tensorflow, the compiled step under torch (its default, always timed): off, on.",
)
flags.DEFINE_list(
    "backends",
    ["auto"],
    "Keras backends to time training under (tensorflow, torch, jax); auto: tensorflow and the "
    "backend tools/train.py picks here. torch runs its compiled step and, with --xla=off, its "
    "eager step too; jax always compiles (jit).",
)
flags.DEFINE_list(
    "layouts",
    ["auto"],
    "Layouts to time under the torch backend: auto (the one tools/train.py picks here), channels_first, channels_last.",
)
flags.DEFINE_list(
    "serving_threads",
    ["0"],
    "Intra-op thread counts to time the SavedModel with, each in a process of its own "
    "(TF Serving's --tensorflow_intra_op_parallelism); 0: TensorFlow's choice.",
)
flags.DEFINE_list(
    "data",
    ["pipeline", "synthetic"],
    "pipeline: the tf.data pipeline with augmentation; synthetic: one in-memory batch.",
)
flags.DEFINE_integer("steps", 20, "Timed training steps per configuration.", lower_bound=1)
flags.DEFINE_integer("warmup_steps", 5, "Untimed steps first (compilation included).", lower_bound=1)
flags.DEFINE_string(
    "data_dir", None, "Real images for the pipeline (any layout train.py reads); default random pixels."
)
flags.DEFINE_bool("train", True, "Time training.")
flags.DEFINE_bool("inference", True, "Time inference and the exported SavedModel.")
flags.DEFINE_list(
    "imagenet_archs",
    [],
    "Also time these ImageNet networks (resnet18 ... resnet152), "
    "224x224, batch 32, synthetic data, with each --xla setting.",
)
flags.DEFINE_enum(
    "peer",
    "none",
    ["none", "torch"],
    "Also time the same network in PyTorch (study/torch_peer.py) "
    "in this run, and give our figures as ratios to its best setting. Needs the torch extra.",
)
flags.DEFINE_bool("peer_compile", False, "Also time the peer under torch.compile.")
flags.DEFINE_list(
    "peer_settings",
    ["float32", "channels_last", "bfloat16", "channels_last+bfloat16"],
    "The peer's settings to time (study/torch_peer.py SETTINGS).",
)
flags.DEFINE_integer(
    "rounds",
    1,
    "Time training this many times, our cases and then the peer's in each round, and report "
    "each case's median (with its range). One measurement of a case varies by 10% or more on a "
    "shared 2-core machine, and the best of several single measurements is biased upward.",
    lower_bound=1,
)
flags.DEFINE_string("json", None, "Also write the results as JSON to this path.")
FLAGS = flags.FLAGS


def _ints(name, values, check=None, rule=None):
    try:
        out = [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--{name} takes integers, got {','.join(values)}") from None
    for v in out:
        if check and not check(v):
            raise app.UsageError(f"--{name}: {v} is not {rule}")
    return out


def _choices(name, values, allowed):
    for v in values:
        if v not in allowed:
            raise app.UsageError(f"--{name}: {v!r} is not one of {', '.join(allowed)}")
    if not values:
        raise app.UsageError(f"--{name} is empty")
    return values


def main(argv):
    app.reject_extra_args(argv)
    if FLAGS.json:
        app.check_output("json", FLAGS.json)
    backends = list(dict.fromkeys(_choices("backends", FLAGS.backends, options.BACKENDS)))
    default_backend = machine.resolve_backend("auto")
    if "auto" in backends:
        backends = list(dict.fromkeys(["tensorflow", default_backend] + [b for b in backends if b != "auto"]))
    # Every flag checked before TensorFlow loads: a usage error is quick.
    plan = dict(
        depths=tuple(
            6 * app.resolve_n(None, d, default=3, depth_flag="depths") + 2 for d in _ints("depths", FLAGS.depths)
        ),
        shortcuts=tuple(_choices("shortcuts", FLAGS.shortcuts, options.CIFAR_SHORTCUTS)),
        precisions=tuple(_choices("precisions", FLAGS.precisions, PRECISIONS)),
        batch_sizes=tuple(_ints("batch_sizes", FLAGS.batch_sizes, lambda b: b >= 1, "a positive integer")),
        xla=tuple(v == "on" for v in _choices("xla", FLAGS.xla, ("off", "on"))),
        data=tuple(_choices("data", FLAGS.data, ("pipeline", "synthetic"))),
        backends=tuple(backends),
        layouts=tuple(_choices("layouts", FLAGS.layouts, options.LAYOUTS)),
        serving_threads=tuple(
            _ints(
                "serving_threads", FLAGS.serving_threads, lambda t: t >= 0, "0 (TensorFlow's choice) or a thread count"
            )
        ),
        steps=FLAGS.steps,
        warmup_steps=FLAGS.warmup_steps,
        train=FLAGS.train,
        inference=FLAGS.inference,
        imagenet_archs=tuple(_choices("imagenet_archs", FLAGS.imagenet_archs, options.IMAGENET_ARCHS))
        if FLAGS.imagenet_archs
        else (),
        peer=FLAGS.peer == "torch",
        peer_compile=FLAGS.peer_compile,
        rounds=FLAGS.rounds,
    )
    if FLAGS.peer == "torch" and not machine.installed("torch"):
        raise app.UsageError("--peer=torch needs torch: pip install -e '.[torch]'")
    if "torch" not in backends and FLAGS.peer != "torch":
        return _run(plan, default_backend, empty_cache=None)
    with machine.benchmark_inductor_cache() as empty_cache:
        named = f"{os.environ['TORCHINDUCTOR_CACHE_DIR']} ($TORCHINDUCTOR_CACHE_DIR)"
        print(f"Inductor's cache: {'empty at the start (a temporary folder)' if empty_cache else named}")
        return _run(plan, default_backend, empty_cache)


def _run(plan, default_backend, empty_cache):
    machine.select_backend("tensorflow")  # this process: pipeline, inference, SavedModel; before Keras loads
    from keras_resnet_cifar.data import sources
    from keras_resnet_cifar.study import bench_plan, torch_peer  # torch itself loads when the peer is timed

    if FLAGS.peer == "torch":
        plan["peer_settings"] = tuple(_choices("peer_settings", FLAGS.peer_settings, torch_peer.SETTINGS))
    plan = bench_plan.Plan(**plan)
    images = sources.load_dataset("cifar10", FLAGS.data_dir).train_images if FLAGS.data_dir else None
    result = bench_plan.run(
        plan, images, log=lambda line: print(line, flush=True), default_backend=default_backend, empty_cache=empty_cache
    )
    if FLAGS.json:
        from keras_resnet_cifar import files

        files.write_text(FLAGS.json, json.dumps(result, indent=2) + "\n")
        print(f"Wrote {FLAGS.json}")
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
