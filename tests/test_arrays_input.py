"""The arrays input: augmentation in the step, each process's share, and training without TensorFlow."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

from keras_resnet_cifar.data import array_input, arrays, augment, input_pipeline
from tests import datagen
from tests.helpers import HOOKS, REPO

# Runs a tool with every "import tensorflow" failing, as on the GPU machine.
NO_TF = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ImportError("no tensorflow here")

    sys.meta_path.insert(0, NoTensorFlow())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def _numbered(batch=64):
    # Every pixel of image i holds (i, row, column): a crop's source is readable.
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    x = np.zeros((batch, 32, 32, 3), np.int32)
    x[..., 0] = np.arange(batch)[:, None, None]
    x[..., 1] = rows + 1
    x[..., 2] = cols + 1
    return x


def test_pad_crop_flip_crops_within_the_padding_and_flips_half():
    x = _numbered(400)
    out = keras.ops.convert_to_numpy(augment.pad_crop_flip(x, keras.random.SeedGenerator(3)))
    assert out.shape == x.shape
    assert np.array_equal(out[..., 0][out[..., 1] > 0], x[..., 0][out[..., 1] > 0])  # own image
    flips, offsets = 0, set()
    for img in out:
        rows = img[:, :, 1].max(axis=1)  # 0 only on padded rows
        cols = img[:, :, 2].max(axis=0)
        inside_r, inside_c = rows[rows > 0], cols[cols > 0]
        assert np.all(np.abs(np.diff(inside_r)) == 1) and np.all(np.abs(np.diff(inside_c)) == 1)
        flipped = inside_c[0] > inside_c[-1]
        flips += flipped
        # Output row k reads padded row dy + k, and padded row p is image row p - 4.
        leading_zeros = int(np.argmax(rows > 0))
        dy = int(inside_r[0]) - 1 + 4 - leading_zeros
        assert 0 <= dy <= 8
        offsets.add(dy)
        # At most 4 padded rows/columns: the crop stays within the padded image.
        assert (rows == 0).sum() <= 4 and (cols == 0).sum() <= 4
    assert 150 < flips < 250  # p = 1/2 over 400 images
    assert offsets == set(range(9))  # each image draws its own crop


def test_layer_is_identity_at_inference_and_random_in_training():
    x = _numbered(8).astype("uint8")
    layer = augment.RandomPadCropFlip(seed=1)
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x)), x.astype("float32"))
    a = keras.ops.convert_to_numpy(layer(x, training=True))
    b = keras.ops.convert_to_numpy(layer(x, training=True))
    assert a.dtype == np.float32 and not np.array_equal(a, b)


def test_same_transform_as_the_tf_pipeline():
    # Same family of outputs: every augmented image from either path is one of
    # the 81 x 2 crops and flips of its source.
    x = np.random.default_rng(0).integers(1, 256, (16, 32, 32, 3), dtype=np.uint8)
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)])

    def candidates(i):
        crops = [padded[i, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        return crops + [c[:, ::-1] for c in crops]

    ours = keras.ops.convert_to_numpy(augment.pad_crop_flip(x, keras.random.SeedGenerator(0)))
    theirs = input_pipeline.augment_batch(x, [0, 1]).numpy()
    for i in range(len(x)):
        for out in (ours[i], theirs[i]):
            assert any(np.array_equal(out, c) for c in candidates(i))


def test_npz_round_trip_and_errors(tmp_path):
    images, labels = datagen.images(20)
    data = arrays.Dataset(images, labels, None, None, [f"c{i}" for i in range(10)], "test")
    path = tmp_path / "d.npz"
    arrays.save_npz(data, str(path))
    back = arrays.load_npz(str(path))
    assert np.array_equal(back.train_images, data.train_images) and back.class_names == data.class_names
    assert back.test_images is None
    with pytest.raises(arrays.DataError, match="no such file"):
        arrays.load_npz(str(tmp_path / "missing.npz"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    # numpy's advice to load pickles unsafely is not passed on.
    with pytest.raises(arrays.DataError, match=r"not a \.npz file \(nor \.npy\); pickled data is not read$"):
        arrays.load_npz(str(tmp_path / "bad.npz"))
    np.savez(
        tmp_path / "gray.npz",
        train_images=np.zeros((2, 32, 32), np.uint8),
        train_labels=np.zeros(2, int),
        class_names=np.array(["a"]),
    )
    with pytest.raises(arrays.DataError, match=r"uint8 \[N, 32, 32, 3\]"):
        arrays.load_npz(str(tmp_path / "gray.npz"))
    # Labels that are not class numbers are refused, never truncated (0.5 would train as class 0).
    np.savez(
        tmp_path / "halves.npz",
        train_images=np.zeros((2, 32, 32, 3), np.uint8),
        train_labels=np.array([0.5, 1.0]),
        class_names=np.array(["a", "b"]),
    )
    with pytest.raises(arrays.DataError, match="train_labels must be integer class numbers, got float64"):
        arrays.load_npz(str(tmp_path / "halves.npz"))
    # An empty file, an empty split and a bare .npy are data errors, not crashes.
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(arrays.DataError, match="not a readable .npz file"):
        arrays.load_npz(str(tmp_path / "empty.npz"))
    np.savez(
        tmp_path / "none.npz",
        train_images=np.zeros((0, 32, 32, 3), np.uint8),
        train_labels=np.zeros(0, int),
        class_names=np.array(["a"]),
    )
    with pytest.raises(arrays.DataError, match="train_images holds no images"):
        arrays.load_npz(str(tmp_path / "none.npz"))
    np.save(tmp_path / "bare.npy", np.zeros(3))
    (tmp_path / "bare.npy").rename(tmp_path / "bare.npz")
    with pytest.raises(arrays.DataError, match="a single .npy array, not a .npz file"):
        arrays.load_npz(str(tmp_path / "bare.npz"))


def _run_without_tf(*args, env_extra=None):
    env = {"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(HOOKS), str(REPO)])}
    env.update({k: v for k, v in os.environ.items() if k.startswith("JAX_")})  # the suite's compilation cache
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, "-c", NO_TF, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_train_batches_share_each_global_batch_and_resume_exactly():
    x = np.arange(40)[:, None, None, None].astype(np.uint8) * np.ones((1, 32, 32, 3), np.uint8)
    y = np.arange(40)
    whole = array_input.train_batches(x, y, 16, seed=3)
    halves = [array_input.train_batches(x, y, 16, seed=3, process_id=i, num_processes=2) for i in range(2)]
    for _ in range(6):  # across the end of a pass (40 is not a multiple of 16)
        images, labels = next(whole)
        parts = [next(h) for h in halves]
        assert [len(p[1]) for p in parts] == [8, 8]
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)
        np.testing.assert_array_equal(images[:, 0, 0, 0], labels)
    first_pass = np.concatenate([b[1] for b, _ in zip(array_input.train_batches(x, y, 8, seed=3), range(5))])
    assert sorted(first_pass) == list(range(40))  # a pass is each image once
    resumed = array_input.train_batches(x, y, 16, seed=3, first_step=4)
    again = array_input.train_batches(x, y, 16, seed=3)
    for _ in range(4):
        next(again)
    np.testing.assert_array_equal(next(resumed)[1], next(again)[1])


def test_eval_batches_pad_a_short_batch_for_several_replicas_with_zero_weight():
    x = np.zeros((21, 32, 32, 3), np.uint8)
    y = np.arange(21)
    one = array_input.EvalBatches(x, y, 8)
    assert len(one) == 3 and len(one[2][1]) == 5 and len(one[2]) == 2
    shares = [array_input.EvalBatches(x, y, 8, process_id=i, num_processes=2, replicas=2) for i in range(2)]
    last = [s[2] for s in shares]
    assert [len(p[1]) for p in last] == [3, 3]
    labels = np.concatenate([p[1] for p in last])
    weights = np.concatenate([p[2] for p in last])
    np.testing.assert_array_equal(labels[weights == 1], [16, 17, 18, 19, 20])
    assert weights.sum() == 5


def _wait_for(proc, text, timeout=300):
    lines = []
    deadline = time.time() + timeout
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return "".join(lines)
        assert time.time() < deadline, "".join(lines)
    raise AssertionError(f"ended before {text!r}: {''.join(lines)} {proc.stderr.read()}")


def test_training_without_tensorflow_resumes_and_exports_later(tmp_path):
    datagen.image_folder(str(tmp_path / "data"), list("abcd"), per_class=8)  # 24 train: 2 steps an epoch
    run = tmp_path / "run"
    args = [
        str(REPO / "tools" / "train.py"),
        "--backend=jax",
        f"--data_dir={tmp_path / 'data'}",
        "--n=1",
        "--epochs=3",
        "--batch_size=16",
        "--schedule=cosine",
        "--lr=0.05",
        "--validation_split=0.25",
        "--verbose=0",
        f"--model_dir={run}",
    ]
    proc = _run_without_tf(*args, env_extra={"KRC_TEST_PAUSE_AT": "step3"})
    try:
        first = _wait_for(proc, "paused at step3")  # in epoch 2 (2 steps an epoch)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert "arrays input" in first and "jax backend" in first
    code, out, err = _finish(_run_without_tf(*args))
    assert code == 0, err[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in out
    assert "TensorFlow is not importable here, so no SavedModel was exported" in out
    assert "Traceback" not in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["export"] is None and metrics["steps"] == 6
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3
    assert not (run / "export").exists()
    # Later, where TensorFlow is: the export the line advises.
    advice = re.search(r"run (python tools/export\.py .*)$", out, re.M).group(1).split()
    assert advice[:2] == ["python", "tools/export.py"]
    exported = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export.py"), *advice[2:]],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert (run / "export" / "resnet8" / "1" / "saved_model.pb").is_file()


def test_tool_errors_are_one_line_without_tensorflow(tmp_path):
    code, _, err = _finish(
        _run_without_tf(
            str(REPO / "tools" / "train.py"),
            "--backend=jax",
            f"--data_dir={tmp_path / 'no.npz'}",
            f"--model_dir={tmp_path / 'run'}",
        )
    )
    assert code == 1 and "Traceback" not in err
    assert err.strip() == f"error: {tmp_path / 'no.npz'}: no such file"
    code, _, err = _finish(_run_without_tf(str(REPO / "tools" / "train.py"), "--backend=jax", "--depth=21"))
    assert code == 2 and "--depth must be 6n+2" in err
