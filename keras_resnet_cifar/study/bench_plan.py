"""What ``krc-benchmark`` times and how: the plan, the rounds, the peer, the ratios.

``cli/benchmark.py`` parses flags into a ``Plan`` and prints what ``run``
logs; everything here is a function a test can call. The timings
themselves are ``benchmark.py`` (ours) and ``torch_peer.py`` (the peer);
the grid, medians, shares and ratios are ``cases.py``.
"""

import dataclasses
import statistics

from keras_resnet_cifar.study import benchmark
from keras_resnet_cifar.study import cases as study_cases
from keras_resnet_cifar.training import machine


@dataclasses.dataclass(frozen=True)
class Plan:
    """One benchmark run; the fields are ``krc-benchmark``'s flags, checked."""

    depths: tuple = (20,)
    shortcuts: tuple = ("A",)
    precisions: tuple = ("float32", "mixed_bfloat16")
    batch_sizes: tuple = (128,)
    xla: tuple = (False, True)
    data: tuple = ("pipeline", "synthetic")
    backends: tuple = ("tensorflow",)
    layouts: tuple = ("auto",)
    serving_threads: tuple = (0,)
    steps: int = 20
    warmup_steps: int = 5
    train: bool = True
    inference: bool = True
    imagenet_archs: tuple = ()
    peer: bool = False
    peer_compile: bool = False
    peer_settings: tuple = ()
    rounds: int = 1


def default_setting(backend):
    """``(backend, precision, xla, data)`` that ``krc-train`` trains with here (the row marked default)."""
    precision = machine.resolve_precision("auto", backend)
    # A default run (the paper's 64,000 steps) is long enough for torch to compile its step.
    xla = machine.resolve_xla(None, precision, False, 1, backend, total_steps=machine.cpu_default("compile_min_steps"))
    return backend, precision, xla, "pipeline"


def peer_cases(plan):
    """The peer's training cases: every depth, batch size, setting and compilation of the plan."""
    compiled = (False, True) if plan.peer_compile else (False,)
    return [
        {"depth": depth, "batch_size": batch_size, "setting": setting, "compile": compile_model}
        for depth in plan.depths
        for batch_size in plan.batch_sizes
        for setting in plan.peer_settings
        for compile_model in compiled
    ]


def peer_label(case):
    return f"ResNet{case['depth']} {case['setting']}{' compiled' if case['compile'] else ''}" + (
        f" batch {case['batch_size']}" if case.get("batch_size", 128) != 128 else ""
    )


def spread(measured):
    """`` (low-high)`` for a rate measured in several rounds, else nothing."""
    return f"  ({min(measured):,.0f}-{max(measured):,.0f})" if len(measured) > 1 else ""


def first_steps(seconds):
    """The first step's seconds: round 1's (where a compiled step compiles) and the later rounds' median."""
    later = f", {statistics.median(seconds[1:]):.2f} s later" if len(seconds) > 1 else ""
    return f"  first step {seconds[0]:.2f} s{later}"


def run(plan, images=None, log=print, default_backend=None, empty_cache=True):
    """Times what ``plan`` asks for and returns the results (``krc-benchmark --json`` writes them).

    Args:
        plan: a ``Plan``.
        images: uint8 training images for the pipeline; None: random pixels.
        log: where each result line goes as it is measured.
        default_backend: the backend ``krc-train`` picks here (its row is marked).
        empty_cache: whether Inductor's cache started empty
            (``machine.benchmark_inductor_cache``); if not, round 1's first
            compiled steps may be loads, and the break-even says so.
    """
    result = {"machine": benchmark.describe_machine(), "train": [], "inference": {}}
    log("Machine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()))
    result["peak_gflops"] = peak = benchmark.matmul_gflops()
    log(f"Float32 peak (4096x4096 matrix product, numpy, best of 10): {peak:,.1f} GFLOP/s")
    result["pipeline_images_per_sec"] = benchmark.pipeline_images_per_sec(images)
    log(f"Input pipeline alone (batch 128, augmentation): {result['pipeline_images_per_sec']:,.0f} img/s")
    peers = peer_cases(plan) if plan.peer else []
    if plan.peer:
        result["peer"] = {"train": [], "inference": {}}
    if plan.train:
        _time_training(plan, result, peers, images, log, default_backend or plan.backends[-1], empty_cache)
    for arch in plan.imagenet_archs:
        _time_imagenet(arch, plan.xla, result, log)
    if plan.inference:
        _time_inference(plan, result, log)
    if plan.peer:
        _time_peer(plan, result, peers, log)
    return result


def _time_training(plan, result, peers, images, log, default_backend, empty_cache):
    peak = result["peak_gflops"]
    cases = study_cases.train_cases(
        plan.depths, plan.shortcuts, plan.batch_sizes, plan.data, plan.backends, plan.precisions, plan.xla, plan.layouts
    )
    log(f"\nTiming {len(cases)} training case(s) under {', '.join(plan.backends)} ...")
    our_rounds, peer_rounds = [], []
    for number in range(1, plan.rounds + 1):
        if plan.rounds > 1:
            log(f"Round {number} of {plan.rounds}")
        our_rounds.append(benchmark.train_timings(cases, images, plan.warmup_steps, plan.steps))
        if plan.rounds > 1:
            log("  ours: " + ", ".join(f"{t.images_per_sec:,.0f}" for t in our_rounds[-1]) + " img/s")
        if peers:  # the peer in the same round as ours: both see the machine in the same state
            peer_rounds.append([_peer_train_timing(case, plan, log) for case in peers])
    log(
        f"{'training (ratio: to the first row of its depth, batch and data)':<86} {'img/s':>8} {'ratio':>6} {'peak':>5}"
    )
    result["train"] = study_cases.summarize(cases, our_rounds, default_setting(default_backend))
    for row, case in zip(result["train"], cases):
        rate, measured = row["images_per_sec"], row["images_per_sec_rounds"]
        row["share_of_peak"] = study_cases.share_of_peak(rate, benchmark.train_mflop(case.depth, case.shortcut), peak)
        mark = "  <- tools/train.py default" if row["default"] else ""
        log(
            f"{case.label():<86} {rate:>8,.0f} {row['ratio']:>6.2f} {row['share_of_peak']:>5.0%}{spread(measured)}"
            f"{first_steps(row['first_step_seconds_rounds'])}{mark}"
        )
    for i, steps in study_cases.compile_break_even(result["train"]).items():
        result["train"][i]["compile_break_even_steps"] = steps
        found = f"Compiling pays from {steps:,} steps here" if steps else "Compiling never pays here (not faster)"
        log(
            f"{found} ({cases[i].label()}; krc-train compiles from "
            f"{machine.cpu_default('compile_min_steps'):,} on this CPU class)"
            + ("" if empty_cache else "; from a named Inductor cache, which may have held the graph: too few steps")
        )
    if peers:
        result["peer"]["train"] = study_cases.with_medians(peers, peer_rounds)
        for row in result["peer"]["train"]:
            mflop = benchmark.train_mflop(row["depth"])
            row["share_of_peak"] = study_cases.share_of_peak(row["images_per_sec"], mflop, peak)


def _peer_train_timing(case, plan, log):
    from keras_resnet_cifar.study import torch_peer

    timing = torch_peer.train_timing(
        (case["depth"] - 2) // 6, case["setting"], case["batch_size"], plan.warmup_steps, plan.steps, case["compile"]
    )
    log(f"  peer {peer_label(case) + ' train':<56} {timing.images_per_sec:>8,.0f}")
    return timing


def _time_imagenet(arch, xla_settings, result, log):
    baseline = None
    for jit in xla_settings:
        rate = benchmark.imagenet_train_timing(arch, xla=jit).images_per_sec
        baseline = baseline or rate
        row = {"arch": arch, "batch_size": 32, "xla": jit, "data": "synthetic", "precision": "float32"}
        result["train"].append(dict(row, images_per_sec=rate, ratio=rate / baseline))
        label = f"{arch} 224x224 float32 batch 32 {'XLA' if jit else 'no XLA'} synthetic"
        log(f"{label:<62} {rate:>8,.1f} {rate / baseline:>6.2f}")


def _time_inference(plan, result, log):
    log(
        f"\n{'inference (each export in a process of its own)':<48} {'batch img/s':>12} {'peak':>5} "
        f"{'b1 p50 ms':>10} {'b1 p99 ms':>10}"
    )
    settings = {(f"{t} intra-op thread(s)" if t else ""): {"intra_op": t} for t in plan.serving_threads}
    for depth in plan.depths:
        figures = benchmark.inference(depth, plan.shortcuts[0], serving_settings=settings, log=log)
        result["inference"][f"resnet{depth}{plan.shortcuts[0]}"] = figures
        mflop = figures.pop("forward_mflop")
        for kind, f in figures.items():
            f["share_of_peak"] = study_cases.share_of_peak(f["batch_images_per_sec"], mflop, result["peak_gflops"])
            log(
                f"ResNet{depth} {kind:<40} {f['batch_images_per_sec']:>12,.0f} {f['share_of_peak']:>5.0%} "
                f"{f['latency_p50_ms']:>10.2f} {f['latency_p99_ms']:>10.2f}"
            )


def _time_peer(plan, result, peers, log):
    """Times the peer's inference and adds ``ratio_to_peer`` to our figures (its training is timed with ours)."""
    import torch

    from keras_resnet_cifar.study import torch_peer

    peer = result["peer"]
    peer.update(framework=f"torch {torch.__version__}", threads=torch.get_num_threads())
    log(f"\n{'PyTorch peer (same network, option A, synthetic batch)':<62} {'img/s':>8}")
    for row in peer["train"]:
        share = f" {row['share_of_peak']:>5.0%}" if "share_of_peak" in row else ""
        log(
            f"{peer_label(row) + ' train':<62} {row['images_per_sec']:>8,.0f}{share}{spread(row['images_per_sec_rounds'])}"
            f"{first_steps(row['first_step_seconds_rounds'])}"
        )
    inference_cases = {(c["depth"], c["setting"], c["compile"]) for c in peers} if plan.inference else set()
    for depth, setting, compiled in sorted(inference_cases):
        key = f"resnet{depth}A {setting}{' compiled' if compiled else ''}"
        peer["inference"][key] = f = torch_peer.inference((depth - 2) // 6, setting, compile_model=compiled)
        mflop = benchmark.forward_mflop(depth)
        f["share_of_peak"] = study_cases.share_of_peak(f["batch_images_per_sec"], mflop, result["peak_gflops"])
        log(
            f"{key + ' inference':<40} {f['batch_images_per_sec']:>10,.0f} img/s ({f['share_of_peak']:.0%} of peak) "
            f"{f['latency_p50_ms']:>7.2f} / {f['latency_p99_ms']:.2f} ms b1 p50/p99"
        )
    log("\nOurs as ratios to the peer's best (> 1: faster):")
    for depth in plan.depths:
        ratios_to_peer(depth, plan.shortcuts[0], result, log)


def ratios_to_peer(depth, shortcut, result, log):
    peer = result["peer"]
    for row in result["train"]:
        if row.get("depth") != depth:
            continue
        # Against the peer at the same batch size: a larger batch is a different workload.
        peer_rates = [
            r["images_per_sec"] for r in peer["train"] if (r["depth"], r["batch_size"]) == (depth, row["batch_size"])
        ]
        ratio = study_cases.ratio_to_best(row["images_per_sec"], peer_rates)
        if ratio:
            row["ratio_to_peer"] = ratio
            log(
                f"train  ResNet{depth}{row['shortcut']} {row['backend']}"
                f"{'' if row['layout'] == 'auto' else ' ' + row['layout']} {row['precision']} {row['data']} "
                f"batch {row['batch_size']} {machine.step_label(row['backend'], row['xla'])}: {ratio:.2f}x"
                + ("  (tools/train.py default)" if row.get("default") else "")
            )
    figures = [f for k, f in peer["inference"].items() if k.startswith(f"resnet{depth}A ")]
    for kind, f in result["inference"].get(f"resnet{depth}{shortcut}", {}).items() if figures else ():
        f["batch_ratio_to_peer"] = study_cases.ratio_to_best(
            f["batch_images_per_sec"], [g["batch_images_per_sec"] for g in figures]
        )
        f["latency_p50_ratio_to_peer"] = study_cases.latency_ratio_to_best(
            f["latency_p50_ms"], [g["latency_p50_ms"] for g in figures]
        )
        log(
            f"serve  ResNet{depth} {kind}: batch 128 {f['batch_ratio_to_peer']:.2f}x, "
            f"batch-1 p50 {f['latency_p50_ratio_to_peer']:.2f}x"
        )
