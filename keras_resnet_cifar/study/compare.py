"""Plain versus residual nets: the paper's Fig. 6 (error curves) and Fig. 7 (responses).

``train_runs`` trains each plain and residual net of the given depths through
``train.train_and_evaluate`` into ``<runs_dir>/plain20``, ``resnet20``, ...
(a finished run is reused, an interrupted one resumes); ``read_curve`` reads a
run's per-evaluation log; ``plot_curves`` and ``plot_responses`` draw the two
figures and write their numbers as CSV.

Presets:
    cpu: the paper's schedule (lr 0.1, /10 at 50% and 75%) compressed to
        300 iterations with an evaluation every 50: a bounded CPU run
        (measured on a 2-vCPU machine: 5-6 minutes per 20-layer net, 14.5
        per 56-layer net).
    paper: the full 64k iterations with an evaluation every epoch (a GPU job).
"""

import csv
import os

import numpy as np

from keras_resnet_cifar import errors, files
from keras_resnet_cifar.models import presets
from keras_resnet_cifar.study import plotting

DEPTHS = (20, 32, 44, 56)
PRESETS = {
    "cpu": {"steps": 300, "steps_per_epoch": 50},
    "paper": {"steps": 64_000, "steps_per_epoch": None},
}
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def run_name(depth, residual):
    """``resnet20`` or ``plain20``: the run's folder name (the model's name)."""
    return presets.model_name(presets.resolve_n(depth, None), residual)


def train_runs(
    depths,
    runs_dir,
    *,
    data_dir=None,
    dataset="cifar10",
    steps,
    steps_per_epoch=None,
    batch_size=128,
    seed=0,
    precision="auto",
    log=print,
):
    """Trains (or reuses) plain and residual nets of each depth, option A, paper schedule.

    Args:
        depths: depths 6n+2.
        runs_dir: parent folder of the runs.
        data_dir, dataset: the data, as ``train.TrainConfig`` takes them.
        steps: iterations per run.
        steps_per_epoch: iterations between evaluations (curve points).
        seed: the same seed for every run: same split, batches and
            augmentation, so the nets differ only in their shortcuts and depth.
        batch_size: the paper's 128.
        precision: as ``train.TrainConfig``.
        log: where progress lines go.

    Returns:
        The run folders, in order (plain and residual for each depth).
    """
    from keras_resnet_cifar.training import train

    dirs = []
    for depth in depths:
        for residual in (False, True):
            model_dir = os.path.join(runs_dir, run_name(depth, residual))
            dirs.append(model_dir)
            if os.path.exists(os.path.join(model_dir, "model.keras")):
                log(f"{run_name(depth, residual)}: finished run in {model_dir}, reused")
                continue
            log(f"{run_name(depth, residual)}: training {steps:,} steps into {model_dir}")
            train.train_and_evaluate(
                train.TrainConfig.of(
                    n=presets.resolve_n(depth, None),
                    residual=residual,
                    shortcut="A",
                    dataset=dataset,
                    data_dir=data_dir,
                    model_dir=model_dir,
                    steps=steps,
                    steps_per_epoch=steps_per_epoch,
                    schedule="paper",
                    batch_size=batch_size,
                    seed=seed,
                    precision=precision,
                    export=False,
                ),
                log=log,
            )
    return dirs


def read_curve(model_dir):
    """A run's curve from its ``metrics.csv``.

    Returns:
        A dict of numpy arrays: ``step``, ``train_error`` (the running error
        over the augmented batches since the last evaluation, as the paper's
        dashed lines) and ``val_error`` (NaN where the run had no validation).

    Raises:
        ValueError: a missing, empty or foreign CSV.
    """
    path = os.path.join(model_dir, "metrics.csv")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise errors.ArgumentError(f"{path} does not exist: train the run first (or drop --notrain)") from None
    if not rows or "step" not in rows[0] or "error" not in rows[0]:
        raise errors.ArgumentError(f"{path} has no step and error columns: not a run of this package's train.py")

    def column(name):
        return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows])

    return {"step": column("step"), "train_error": column("error"), "val_error": column("val_error")}


def summary(curves):
    """A text table of each run's last training and validation error, and what it shows.

    The training error of the last logging epoch is the paper's measure of
    how well a net optimises; the degradation problem is a deeper plain net
    ending with a higher training error than a shallower one.
    """
    lines = [f"{'net':<12}{'steps':>8}{'train error':>13}{'val error':>11}"]
    last = {}
    for (depth, residual), curve in sorted(curves.items(), key=lambda item: (item[0][1], item[0][0])):
        name = f"{'ResNet' if residual else 'plain'}-{depth}"
        last[depth, residual] = curve["train_error"][-1]
        lines.append(
            f"{name:<12}{int(curve['step'][-1]):>8,}{100 * curve['train_error'][-1]:>12.2f}%"
            f"{100 * curve['val_error'][-1]:>10.2f}%"
        )
    depths = sorted({d for d, _ in curves})
    for depth in depths:
        if (depth, False) in last and (depth, True) in last:
            better = last[depth, True] < last[depth, False]
            lines.append(
                f"depth {depth}: ResNet training error {'below' if better else 'NOT below'} plain "
                f"({100 * last[depth, True]:.2f}% vs {100 * last[depth, False]:.2f}%)"
            )
    plain = [d for d in depths if (d, False) in last]
    for shallow, deep in zip(plain, plain[1:]):
        worse = last[deep, False] > last[shallow, False]
        lines.append(
            f"plain-{deep} training error {'above' if worse else 'NOT above'} plain-{shallow} "
            f"({100 * last[deep, False]:.2f}% vs {100 * last[shallow, False]:.2f}%): "
            f"{'degradation' if worse else 'no degradation'} in this budget"
        )
    return "\n".join(lines)


def plot_curves(curves, out_prefix):
    """Fig. 6: training (dashed) and validation (solid) error against iterations.

    Args:
        curves: ``{(depth, residual): read_curve(...)}``.
        out_prefix: path without extension; writes ``.png``, ``.svg`` and ``.csv``.

    Returns:
        The three paths.
    """
    plt = plotting.pyplot()
    depths = sorted({depth for depth, _ in curves})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    rows = []
    for ax, residual in zip(axes, (False, True)):
        for depth in depths:
            curve = curves.get((depth, residual))
            if curve is None:
                continue
            colour = _COLOURS[depths.index(depth) % len(_COLOURS)]
            name = f"{'ResNet' if residual else 'plain'}-{depth}"
            ax.plot(curve["step"], 100 * curve["train_error"], "--", color=colour, lw=1.2)
            ax.plot(curve["step"], 100 * curve["val_error"], "-", color=colour, lw=2, label=name)
            rows += [
                [name, depth, residual, int(s), f"{t:.4f}", f"{v:.4f}"]
                for s, t, v in zip(curve["step"], curve["train_error"], curve["val_error"])
            ]
        ax.set_title("residual (option A)" if residual else "plain")
        ax.set_xlabel("iterations")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8, title="dashed: training, solid: validation", title_fontsize=8)
    axes[0].set_ylabel("error (%)")
    fig.tight_layout()
    return _save(fig, out_prefix, ["net", "depth", "residual", "step", "train_error", "val_error"], rows)


def responses_for(model_dirs, images, log=print):
    """Fig. 7 numbers for each finished run: ``{run name: [(layer, std), ...]}``."""
    from keras_resnet_cifar.serving import loading
    from keras_resnet_cifar.study import responses

    out = {}
    for model_dir in model_dirs:
        name = os.path.basename(os.path.normpath(model_dir))
        model = loading.load_keras_file(os.path.join(model_dir, "model.keras"))
        out[name] = responses.response_std(model, images)
        log(f"{name}: response std of {len(out[name])} layers, mean {np.mean([s for _, s in out[name]]):.3f}")
    return out


def plot_responses(stds, out_prefix):
    """Fig. 7: response std per 3x3 layer, in layer order (top) and sorted (bottom).

    Args:
        stds: ``{run name: [(layer, std), ...]}``, from ``responses_for``.
        out_prefix: path without extension; writes ``.png``, ``.svg`` and ``.csv``.

    Returns:
        The three paths.
    """
    plt = plotting.pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(8, 6.5))
    rows = []
    for k, (name, values) in enumerate(sorted(stds.items(), key=lambda item: _sort_key(item[0]))):
        std = np.array([v for _, v in values])
        colour = _COLOURS[k % len(_COLOURS)]
        style = "-" if name.startswith("resnet") else "--"
        label = name.replace("resnet", "ResNet-").replace("plain", "plain-")
        axes[0].plot(np.arange(1, len(std) + 1), std, style, color=colour, label=label, lw=1.3)
        order = np.argsort(-std)
        axes[1].plot(np.arange(1, len(std) + 1), std[order], style, color=colour, label=label, lw=1.3)
        rank = np.empty(len(std), dtype=int)
        rank[order] = np.arange(1, len(std) + 1)
        rows += [[name, i + 1, layer, f"{s:.6f}", rank[i]] for i, (layer, s) in enumerate(values)]
    axes[0].set_xlabel("layer index (original)")
    axes[1].set_xlabel("layer index (sorted by magnitude)")
    for ax in axes:
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_prefix, ["net", "layer_index", "layer", "std", "sorted_rank"], rows)


def _save(fig, out_prefix, header, rows):
    """Writes the figure as PNG and SVG and its plotted numbers as CSV."""
    paths = plotting.save(fig, out_prefix + ".png", out_prefix + ".svg")
    text = ",".join(header) + "\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows)
    files.write_text(out_prefix + ".csv", text)
    return paths + [out_prefix + ".csv"]


def _sort_key(name):
    kind = 0 if name.startswith("plain") else 1
    digits = "".join(ch for ch in name if ch.isdigit())
    return kind, int(digits or 0)
