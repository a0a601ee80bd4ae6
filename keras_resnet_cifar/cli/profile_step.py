"""Where a ResNet training step's time goes: ours (torch backend) beside the PyTorch peer.

Example:
    python tools/profile_step.py --depth=20 --steps=10 --data_dir=../shared/cifar10-jpeg

Needs the torch extra. Prints milliseconds per step by category, from a
torch profiler trace of each: by default of the compiled step that long
runs train on and of the peer under torch.compile; --step=eager profiles
the same step run eagerly (short runs, --deterministic) and the eager peer.
"""

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_integer("depth", 20, "Depth 6n+2.", lower_bound=8)
flags.DEFINE_integer("steps", 10, "Profiled steps.", lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
flags.DEFINE_string("data_dir", None, "Real images for our pipeline (any layout train.py reads); default random.")
flags.DEFINE_enum(
    "precision",
    "auto",
    ["auto", "float32", "mixed_bfloat16"],
    "Our precision; auto: tools/train.py's under torch on this CPU. The peer runs the same "
    "(float32, or bfloat16 autocast for mixed_bfloat16).",
)
flags.DEFINE_enum(
    "step",
    "compiled",
    ["compiled", "eager"],
    "compiled: the training step of runs long enough to win back its compile time, and the peer under "
    "torch.compile; eager: the same step run eagerly (short runs, --deterministic) and the eager peer.",
)
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    n = app.resolve_n(None, FLAGS.depth, default=3)
    from keras_resnet_cifar.training import machine

    try:
        machine.select_backend("torch")
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    from keras_resnet_cifar.data import sources
    from keras_resnet_cifar.study import step_profile

    images = sources.load_dataset("cifar10", FLAGS.data_dir).train_images if FLAGS.data_dir else None
    depth = 6 * n + 2
    precision = machine.resolve_precision(FLAGS.precision, "torch")
    setting = "bfloat16" if precision == "mixed_bfloat16" else "float32"
    compiled = FLAGS.step == "compiled"
    print(
        f"Profiling {FLAGS.steps} steps of ResNet{depth}, batch {FLAGS.batch_size}, {precision}, {FLAGS.step} ...",
        flush=True,
    )
    results = {
        "ours": step_profile.ours(
            depth, FLAGS.batch_size, FLAGS.steps, images=images, precision=precision, compiled=compiled
        ),
        "PyTorch peer": step_profile.peer(
            depth, FLAGS.batch_size, FLAGS.steps, setting=setting, compile_model=compiled
        ),
    }
    print(f"ours: torch, {precision}, {results['ours']['step']}")
    print(f"PyTorch peer: {setting}, {results['PyTorch peer']['step']}")
    names = list(results)
    print(f"\n{'ms per step':<62}" + "".join(f"{name:>14}" for name in names))
    for category in next(iter(results.values()))["categories"]:
        print(f"{category:<62}" + "".join(f"{results[n]['categories'][category]:>14.1f}" for n in names))
    print(f"{'step (wall)':<62}" + "".join(f"{results[n]['step_ms']:>14.1f}" for n in names))
    return 0


def run():
    """The console-script entry point."""
    app.run(main)
