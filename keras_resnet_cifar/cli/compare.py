"""Plain versus residual nets: trains them and draws the paper's Fig. 6 and Fig. 7.

Examples:
    # Short CPU budget (300 iterations each), depths 20 and 56:
    python tools/compare.py --depths=20,56 --data_dir=../shared/cifar10-jpeg
    # The paper's protocol (64k iterations each; a GPU job):
    python tools/compare.py --preset=paper --data_dir=/data/cifar-10-batches-py
    # Plot finished runs again without training:
    python tools/compare.py --depths=20,56 --notrain --data_dir=../shared/cifar10-jpeg

Writes <out>/plain_vs_residual.{png,svg,csv} (Fig. 6: training error dashed,
validation error solid, against iterations) and
<out>/layer_responses.{png,svg,csv} (Fig. 7: std of each 3x3 layer's response
after BN, in layer order and sorted). Runs go to <runs_dir>/plain20,
resnet20, ...; a finished run is reused and an interrupted one resumes.
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

flags.DEFINE_list("depths", ["20", "32", "44", "56"], "Depths 6n+2; each is trained plain and residual.")
flags.DEFINE_enum(
    "preset",
    "cpu",
    ["cpu", "paper"],
    "cpu: 300 iterations, an evaluation every 50; paper: 64k iterations, one per epoch.",
)
flags.DEFINE_integer("steps", None, "Iterations per run (overrides the preset).", lower_bound=1)
flags.DEFINE_integer("steps_per_epoch", None, "Iterations between evaluations (overrides the preset).", lower_bound=1)
flags.DEFINE_string("data_dir", None, "Data, as for tools/train.py.")
flags.DEFINE_enum("dataset", "cifar10", ["cifar10", "cifar100"], "Dataset.")
flags.DEFINE_string("runs_dir", "runs/compare", "Parent folder of the runs.")
flags.DEFINE_string("out", "docs/figures", "Folder for the figures and their CSV files.")
flags.DEFINE_bool("train", True, "Train missing runs; --notrain only plots finished ones.")
flags.DEFINE_integer("response_images", 1000, "Validation images for the Fig. 7 response statistics.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed shared by every run (same split, batches and augmentation).", lower_bound=0)
FLAGS = flags.FLAGS


def _depths():
    depths = []
    for text in FLAGS.depths:
        if not text.strip().isdigit():
            raise app.UsageError(f"--depths takes integers 6n+2, got {text!r}")
        n = app.resolve_n(None, int(text), default=3, depth_flag="depths")
        depths.append(6 * n + 2)
    if not depths:
        raise app.UsageError("--depths is empty")
    return depths


def main(argv):
    app.reject_extra_args(argv)
    depths = _depths()
    app.check_output("out", FLAGS.out, folder=True)  # before an hour of training
    from keras_resnet_cifar.data import arrays, sources
    from keras_resnet_cifar.study import compare, plotting

    preset = dict(compare.PRESETS[FLAGS.preset])
    if FLAGS.steps is not None:
        preset["steps"] = FLAGS.steps
    if FLAGS.steps_per_epoch is not None:
        preset["steps_per_epoch"] = FLAGS.steps_per_epoch

    plotting.pyplot()  # fail now, not after an hour of training, when matplotlib is missing
    if FLAGS.train:
        dirs = compare.train_runs(
            depths, FLAGS.runs_dir, data_dir=FLAGS.data_dir, dataset=FLAGS.dataset, seed=FLAGS.seed, **preset
        )
    else:
        dirs = [os.path.join(FLAGS.runs_dir, compare.run_name(d, r)) for d in depths for r in (False, True)]
    curves = {
        (d, r): compare.read_curve(path) for (d, r), path in zip([(d, r) for d in depths for r in (False, True)], dirs)
    }
    print(compare.summary(curves))
    print("Wrote " + ", ".join(compare.plot_curves(curves, os.path.join(FLAGS.out, "plain_vs_residual"))))

    data = sources.load_dataset(FLAGS.dataset, FLAGS.data_dir)
    _, _, val_x, _ = arrays.split_train_validation(data.train_images, data.train_labels, 0.1, FLAGS.seed)
    stds = compare.responses_for(dirs, val_x[: FLAGS.response_images])
    print("Wrote " + ", ".join(compare.plot_responses(stds, os.path.join(FLAGS.out, "layer_responses"))))
    return 0


def run():
    """The console-script entry point."""
    app.run(main, resumes=True)
