"""matplotlib, loaded on demand: plots are optional and need no display."""

from keras_resnet_cifar import errors


class PlotError(errors.Error):
    """Plotting was asked for but cannot run (matplotlib is missing)."""


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend.

    Raises:
        PlotError: when matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise PlotError("plots need matplotlib: pip install matplotlib (or pip install -e '.[study]')") from None
    matplotlib.use("Agg")  # Files only: works on servers and CI without a display.
    import matplotlib.pyplot as plt

    return plt


def save(fig, *paths):
    """Writes ``fig`` to each path atomically (``files.write_figure``), then closes it.

    The extension of each path (.png, .svg) picks its format.

    Returns:
        The paths, as a list.
    """
    from keras_resnet_cifar import files

    try:
        for path in paths:
            files.write_figure(fig, path)
    finally:
        pyplot().close(fig)
    return list(paths)
