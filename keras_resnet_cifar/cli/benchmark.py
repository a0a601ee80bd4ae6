"""Training, inference, serving and input-pipeline speed on this machine.

Examples:
    python tools/benchmark.py                               # ResNet20, the default grid
    python tools/benchmark.py --depths=20,56 --precisions=float32 --xla=on
    python tools/benchmark.py --data_dir=../shared/cifar10-jpeg --json=bench.json
    python tools/benchmark.py --backends=torch --peer=torch --peer_compile --rounds=5

Prints a table (each training row with its ratio to the grid's first
precision and XLA setting for the same depth, batch and data) and writes
JSON with the machine description.
"""

import json

from absl import flags

from keras_resnet_cifar.cli import app

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

flags.DEFINE_list("depths", ["20"], "Depths 6n+2 to time.")
flags.DEFINE_list("shortcuts", ["A"], "Shortcut options (A, B).")
flags.DEFINE_list("precisions", ["float32", "mixed_bfloat16"], f"Any of {', '.join(PRECISIONS)}.")
flags.DEFINE_list("batch_sizes", ["128"], "Training batch sizes.")
flags.DEFINE_list("xla", ["off", "on"], "XLA settings to time under TensorFlow: off, on.")
flags.DEFINE_list(
    "backends",
    ["auto"],
    "Keras backends to time training under (tensorflow, torch, jax); auto: tensorflow and the "
    "backend tools/train.py picks here. Other backends than tensorflow run with their default "
    "compilation (torch: eager; jax: jit).",
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


def _ints(name, values, check):
    try:
        out = [int(v) for v in values]
    except ValueError:
        raise app.UsageError(f"--{name} takes integers, got {','.join(values)}") from None
    for v in out:
        if not check(v):
            raise app.UsageError(f"--{name}: bad value {v}")
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
    depths = _ints("depths", FLAGS.depths, lambda d: d >= 8 and (d - 2) % 6 == 0)
    batch_sizes = _ints("batch_sizes", FLAGS.batch_sizes, lambda b: b >= 1)
    shortcuts = _choices("shortcuts", FLAGS.shortcuts, ("A", "B"))
    precisions = _choices("precisions", FLAGS.precisions, PRECISIONS)
    xla = [v == "on" for v in _choices("xla", FLAGS.xla, ("off", "on"))]
    data = _choices("data", FLAGS.data, ("pipeline", "synthetic"))
    imagenet_archs = _choices("imagenet_archs", FLAGS.imagenet_archs, ARCHS) if FLAGS.imagenet_archs else []
    backends = _choices("backends", FLAGS.backends, ("auto", "tensorflow", "torch", "jax"))
    layouts = _choices("layouts", FLAGS.layouts, ("auto", "channels_first", "channels_last"))
    serving_threads = _ints("serving_threads", FLAGS.serving_threads, lambda t: t >= 0)

    from keras_resnet_cifar.training import machine

    if "auto" in backends:
        backends = ["tensorflow", machine.resolve_backend("auto")]
    backends = list(dict.fromkeys(backends))
    machine.select_backend("tensorflow")  # this process: pipeline, inference, SavedModel
    from keras_resnet_cifar.data import sources
    from keras_resnet_cifar.study import benchmark
    from keras_resnet_cifar.study import cases as study_cases

    result = {"machine": benchmark.describe_machine(), "train": [], "inference": {}}
    peer_cases = _peer_setup(result, depths) if FLAGS.peer == "torch" else []
    images = None
    if FLAGS.data_dir:
        images = sources.load_dataset("cifar10", FLAGS.data_dir).train_images
    print("Machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()), flush=True)
    result["peak_gflops"] = peak = benchmark.matmul_gflops()
    print(f"Float32 peak (4096x4096 matrix product, numpy, best of 10): {peak:,.1f} GFLOP/s", flush=True)
    result["pipeline_images_per_sec"] = benchmark.pipeline_images_per_sec(images)
    print(f"Input pipeline alone (batch 128, augmentation): {result['pipeline_images_per_sec']:,.0f} img/s", flush=True)

    if FLAGS.train:
        # tools/train.py's defaults on this machine, which the row marked "default" times.
        default_backend = machine.resolve_backend("auto")
        default_precision = machine.resolve_precision("auto", default_backend)
        default_xla = machine.resolve_xla(None, default_precision, False, 1, default_backend)
        cases = study_cases.train_cases(depths, shortcuts, batch_sizes, data, backends, precisions, xla, layouts)
        print(f"\nTiming {len(cases)} training case(s) under {', '.join(backends)} ...", flush=True)
        our_rounds, peer_rounds = [], []
        for number in range(1, FLAGS.rounds + 1):
            if FLAGS.rounds > 1:
                print(f"Round {number} of {FLAGS.rounds}", flush=True)
            our_rounds.append(benchmark.train_rates(cases, images, FLAGS.warmup_steps, FLAGS.steps))
            if FLAGS.rounds > 1:
                print("  ours: " + ", ".join(f"{rate:,.0f}" for rate in our_rounds[-1]) + " img/s", flush=True)
            if peer_cases:
                peer_rounds.append([_peer_train_rate(case) for case in peer_cases])
        print(
            f"{'training (ratio: to the first row of its depth, batch and data)':<86} {'img/s':>8} {'ratio':>6} "
            f"{'peak':>5}"
        )
        default = (default_backend, default_precision, default_xla, "pipeline")
        result["train"] = study_cases.summarize(cases, our_rounds, default)
        for row, case in zip(result["train"], cases):
            rate, measured = row["images_per_sec"], row["images_per_sec_rounds"]
            mflop = benchmark.train_mflop(case.depth, case.shortcut)
            row["share_of_peak"] = study_cases.share_of_peak(rate, mflop, peak)
            mark = "  <- tools/train.py default" if row["default"] else ""
            print(
                f"{case.label():<86} {rate:>8,.0f} {row['ratio']:>6.2f} {row['share_of_peak']:>5.0%}"
                f"{_spread(measured)}{mark}",
                flush=True,
            )
        if peer_cases:
            result["peer"]["train"] = study_cases.with_medians(peer_cases, peer_rounds)
            for row in result["peer"]["train"]:
                mflop = benchmark.train_mflop(row["depth"])
                row["share_of_peak"] = study_cases.share_of_peak(row["images_per_sec"], mflop, peak)

    for arch in imagenet_archs:
        baseline = None
        for jit in xla:
            rate = benchmark.imagenet_train_images_per_sec(arch, xla=jit)
            baseline = baseline or rate
            result["train"].append(
                {
                    "arch": arch,
                    "batch_size": 32,
                    "xla": jit,
                    "data": "synthetic",
                    "precision": "float32",
                    "images_per_sec": rate,
                    "ratio": rate / baseline,
                }
            )
            label = f"{arch} 224x224 float32 batch 32 {'XLA' if jit else 'no XLA'} synthetic"
            print(f"{label:<62} {rate:>8,.1f} {rate / baseline:>6.2f}", flush=True)

    if FLAGS.inference:
        print(
            f"\n{'inference (SavedModel: in a process of its own)':<48} {'batch img/s':>12} {'peak':>5} "
            f"{'b1 p50 ms':>10} {'b1 p99 ms':>10}"
        )
        settings = {(f"{t} intra-op thread(s)" if t else ""): {"intra_op": t} for t in serving_threads}
        for depth in depths:
            figures = benchmark.inference(depth, shortcuts[0], serving_settings=settings)
            result["inference"][f"resnet{depth}{shortcuts[0]}"] = figures
            mflop = figures.pop("forward_mflop")
            for kind, f in figures.items():
                f["share_of_peak"] = study_cases.share_of_peak(f["batch_images_per_sec"], mflop, peak)
                print(
                    f"ResNet{depth} {kind:<40} {f['batch_images_per_sec']:>12,.0f} {f['share_of_peak']:>5.0%} "
                    f"{f['latency_p50_ms']:>10.2f} {f['latency_p99_ms']:>10.2f}",
                    flush=True,
                )

    if FLAGS.peer == "torch":
        _time_peer(result, peer_cases, depths, shortcuts)

    if FLAGS.json:
        from keras_resnet_cifar import files

        files.write_text(FLAGS.json, json.dumps(result, indent=2) + "\n")
        print(f"Wrote {FLAGS.json}")
    return 0


def _spread(measured):
    return f"  ({min(measured):,.0f}-{max(measured):,.0f})" if len(measured) > 1 else ""


def _peer_setup(result, depths):
    """Checks that torch is there and the settings are known, and returns the peer's training cases."""
    from keras_resnet_cifar.training import machine

    if not machine.installed("torch"):
        raise app.UsageError("--peer=torch needs torch: pip install -e '.[torch]'")
    # torch itself is imported when the peer is first timed, after our first
    # round: our in-process TensorFlow timings run without it loaded.
    from keras_resnet_cifar.study import torch_peer

    settings = _choices("peer_settings", FLAGS.peer_settings, torch_peer.SETTINGS)
    result["peer"] = {"train": [], "inference": {}}
    compiled = [False, True] if FLAGS.peer_compile else [False]
    return [
        {"depth": depth, "setting": setting, "compile": compile_model}
        for depth in depths
        for setting in settings
        for compile_model in compiled
    ]


def _peer_label(case):
    return f"ResNet{case['depth']} {case['setting']}{' compiled' if case['compile'] else ''}"


def _peer_train_rate(case):
    from keras_resnet_cifar.study import torch_peer

    rate = torch_peer.train_images_per_sec(
        (case["depth"] - 2) // 6,
        case["setting"],
        int(FLAGS.batch_sizes[0]),
        FLAGS.warmup_steps,
        FLAGS.steps,
        case["compile"],
    )
    print(f"  peer {_peer_label(case) + ' train':<56} {rate:>8,.0f}", flush=True)
    return rate


def _time_peer(result, peer_cases, depths, shortcuts):
    """Times the peer's inference and adds ``ratio_to_peer`` to our figures (its training is timed with ours)."""
    import torch

    from keras_resnet_cifar.study import benchmark, torch_peer
    from keras_resnet_cifar.study import cases as study_cases

    peer = result["peer"]
    peer.update(framework=f"torch {torch.__version__}", threads=torch.get_num_threads())
    print(f"\n{'PyTorch peer (same network, option A, synthetic batch)':<62} {'img/s':>8}", flush=True)
    for row in peer["train"]:
        share = f" {row['share_of_peak']:>5.0%}" if "share_of_peak" in row else ""
        print(
            f"{_peer_label(row) + ' train':<62} {row['images_per_sec']:>8,.0f}{share}"
            f"{_spread(row['images_per_sec_rounds'])}"
        )
    for case in peer_cases if FLAGS.inference else []:
        key = f"resnet{case['depth']}A {case['setting']}{' compiled' if case['compile'] else ''}"
        peer["inference"][key] = f = torch_peer.inference(
            (case["depth"] - 2) // 6, case["setting"], compile_model=case["compile"]
        )
        mflop = benchmark.train_mflop(case["depth"]) / 3
        f["share_of_peak"] = study_cases.share_of_peak(f["batch_images_per_sec"], mflop, result["peak_gflops"])
        print(
            f"{key + ' inference':<40} {f['batch_images_per_sec']:>10,.0f} img/s ({f['share_of_peak']:.0%} of peak) "
            f"{f['latency_p50_ms']:>7.2f} / {f['latency_p99_ms']:.2f} ms b1 p50/p99",
            flush=True,
        )
    print("\nOurs as ratios to the peer's best (> 1: faster):", flush=True)
    for depth in depths:
        peer_rates = [r["images_per_sec"] for r in peer["train"] if r["depth"] == depth]
        for row in result["train"]:
            ratio = study_cases.ratio_to_best(row["images_per_sec"], peer_rates)
            if ratio and row.get("depth") == depth:
                row["ratio_to_peer"] = ratio
                print(
                    f"train  ResNet{depth}{row['shortcut']} {row['backend']}"
                    f"{'' if row['layout'] == 'auto' else ' ' + row['layout']} {row['precision']} {row['data']} "
                    f"{'XLA' if row['xla'] else 'no XLA'}: {row['ratio_to_peer']:.2f}x"
                    + ("  (tools/train.py default)" if row.get("default") else ""),
                    flush=True,
                )
        figures = [f for k, f in peer["inference"].items() if k.startswith(f"resnet{depth}A ")]
        ours = result["inference"].get(f"resnet{depth}{shortcuts[0]}", {})
        if figures:
            for kind, f in ours.items():
                f["batch_ratio_to_peer"] = study_cases.ratio_to_best(
                    f["batch_images_per_sec"], [g["batch_images_per_sec"] for g in figures]
                )
                f["latency_p50_ratio_to_peer"] = study_cases.latency_ratio_to_best(
                    f["latency_p50_ms"], [g["latency_p50_ms"] for g in figures]
                )
                print(
                    f"serve  ResNet{depth} {kind}: batch 128 {f['batch_ratio_to_peer']:.2f}x, "
                    f"batch-1 p50 {f['latency_p50_ratio_to_peer']:.2f}x",
                    flush=True,
                )


def run():
    """The console-script entry point."""
    app.run(main)
