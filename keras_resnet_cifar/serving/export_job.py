"""Exports a trained model for TF Serving, whichever Keras backend trained it.

A SavedModel is traced from TensorFlow functions, so only a process running
Keras's TensorFlow backend can write one. A run under torch or JAX hands the
saved ``.keras`` file to such a process (``python -m
keras_resnet_cifar.serving.export_job SPEC``), which exports it exactly as
an in-process export would.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras

from keras_resnet_cifar import processes

_PATH = "exported: "
_LOG = "log: "


def existing_export(export_base, model_sha256):
    """The version directory under ``export_base`` already exported from the model file of this SHA-256, or None.

    A version directory appears only by the export's last step (a rename),
    so one that is there is complete; its model card names the digest of
    the ``.keras`` file it came from. A run stopped after that rename and
    before ``metrics.json`` finds its own export here instead of writing a
    second version.
    """
    found = []
    for model_base in _subdirectories(export_base):
        for version in _subdirectories(model_base):
            if not os.path.basename(version).isdigit():
                continue
            try:
                with open(os.path.join(version, "assets.extra", "model_card.json")) as f:
                    card = json.load(f)
            except (OSError, ValueError):
                continue
            if isinstance(card, dict) and card.get("model_sha256") == model_sha256:
                found.append((int(os.path.basename(version)), version))
    return max(found)[1] if found else None


def _subdirectories(path):
    try:
        return [os.path.join(path, name) for name in os.listdir(path) if os.path.isdir(os.path.join(path, name))]
    except OSError:
        return []


def export(model, model_path, export_base, *, class_names, card, log=print, **options):
    """``export.export_saved_model(model, export_base, ...)`` under any backend.

    Args:
        model: the model to export, under the TensorFlow backend.
        model_path: its ``.keras`` file, which a TensorFlow-backend process
            loads under any other backend.
        export_base, class_names, card, log: as ``export_saved_model``.
        **options: other ``export_saved_model`` arguments (JSON values only
            under another backend).

    Returns:
        The version directory written.

    Raises:
        export.ExportError: the export failed; the message is the export's.
    """
    from keras_resnet_cifar.serving import export as export_lib

    if keras.backend.backend() == "tensorflow":
        return export_lib.export_saved_model(model, export_base, class_names=class_names, card=card, log=log, **options)
    spec = {"model": model_path, "export_base": export_base, "class_names": list(class_names), "card": card}
    # stderr to a file: a pipe nobody reads until the end could fill and block the export.
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__, json.dumps(dict(spec, **options))],
            env=dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3"),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=processes.die_with_parent,  # the export ends with the run
        )
        path = None
        for line in proc.stdout:  # as it comes: a long export shows its progress
            line = line.rstrip("\n")
            if line.startswith(_LOG):
                log(line[len(_LOG) :])
            elif line.startswith(_PATH):
                path = line[len(_PATH) :]
            else:
                print(line, flush=True)
        proc.wait()
        stderr.seek(0)
        errors = [line for line in stderr.read().splitlines() if line.strip()]
    if proc.returncode or path is None:
        raise export_lib.ExportError(
            errors[-1] if errors else f"the TensorFlow export process ended with exit code {proc.returncode}"
        )
    return path


def main(argv):
    from keras_resnet_cifar.serving import export as export_lib
    from keras_resnet_cifar.serving import loading

    spec = json.loads(argv[1])
    try:
        model = loading.load_keras_file(spec.pop("model"))
        path = export_lib.export_saved_model(
            model, spec.pop("export_base"), log=lambda line: print(_LOG + line, flush=True), **spec
        )
    except (export_lib.ExportError, loading.ModelFileError) as e:
        print(e, file=sys.stderr)
        return 1
    print(_PATH + path, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
