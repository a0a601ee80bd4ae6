"""Importing the PyTorch reference weights: exact parity with a torch forward."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from torch import nn
from torch.nn import functional as F

from keras_resnet_cifar.data import sources
from keras_resnet_cifar.models import convert, stats
from tests import datagen
from tests.helpers import REPO

SHARED = REPO.parent / "shared"
WEIGHTS = SHARED / "reference-weights" / "akamaster"
IMAGES = SHARED / "cifar10-jpeg" / "train"


# The reference architecture, written here from its description (no third-party code).
class _Block(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if stride != 1 or in_planes != planes else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + skip)


class _TorchResNet(nn.Module):
    def __init__(self, n, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        planes_in, stages = 16, []
        for planes, stride in [(16, 1), (32, 2), (64, 2)]:
            blocks = []
            for i in range(n):
                blocks.append(_Block(planes_in, planes, stride if i == 0 else 1))
                planes_in = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(64, num_classes)

    def forward(self, images):  # NHWC 0..255, normalised as the reference trained
        x = torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) / 255
        x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
            1, 3, 1, 1
        )
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _random_reference(n, seed=0, num_classes=10):
    torch.manual_seed(seed)
    net = _TorchResNet(n, num_classes)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial statistics and affine terms
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return net.eval()


def _save(tmp_path, net, prefix="module."):
    path = tmp_path / "ckpt.th"
    torch.save({"best_prec1": 0.0, "state_dict": {prefix + k: v for k, v in net.state_dict().items()}}, path)
    return path


def _pixels(num, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (num, 32, 32, 3)).astype(np.uint8)


@pytest.mark.parametrize("n,prefix,num_classes", [(1, "module.", 10), (2, "", 10), (1, "", 100)])
def test_random_checkpoint_matches_torch_forward(tmp_path, n, prefix, num_classes):
    net = _random_reference(n, seed=n, num_classes=num_classes)
    state = convert.read_checkpoint(_save(tmp_path, net, prefix))
    model = convert.convert_state_dict(state)
    assert model.name == f"resnet{6 * n + 2}" and model.output_shape == (None, num_classes)
    x = _pixels(6)
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(model.predict(x.astype("float32"), verbose=0), expected, atol=1e-4, rtol=1e-4)
    # The package's own reference forward (used by the parity tool) agrees too.
    np.testing.assert_allclose(convert.reference_forward(state, x), expected, atol=1e-5, rtol=1e-5)
    # num_batches_tracked counters are read but are not weights.
    assert any(k.endswith("num_batches_tracked") for k in state)


def test_converted_model_saves_and_loads(tmp_path):
    model = convert.convert_state_dict(convert.read_checkpoint(_save(tmp_path, _random_reference(1))))
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    x = _pixels(2).astype("float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    pre = again.get_layer("preprocessing").get_config()
    np.testing.assert_allclose(pre["mean"], convert.REFERENCE_MEAN)


def test_checkpoint_errors(tmp_path):
    net = _random_reference(1)
    path = _save(tmp_path, net)
    data = path.read_bytes()
    (tmp_path / "cut.th").write_bytes(data[: len(data) // 2])
    with pytest.raises(convert.ConversionError, match="cannot read checkpoint .*cut.th"):
        convert.read_checkpoint(tmp_path / "cut.th")
    with pytest.raises(convert.ConversionError, match="does not exist"):
        convert.read_checkpoint(tmp_path / "none.th")
    # Not a checkpoint at all: torch's advice to load with weights_only=False (running the file's code) is not passed on.
    (tmp_path / "photo.th").write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a checkpoint")
    with pytest.raises(convert.ConversionError, match=r"photo.th: not a PyTorch file of tensors$"):
        convert.read_checkpoint(tmp_path / "photo.th")
    state = convert.read_checkpoint(path)
    broken = dict(state)
    del broken["layer2.0.bn1.weight"]
    with pytest.raises(convert.ConversionError, match="missing key layer2.0.bn1.weight"):
        convert.convert_state_dict(broken)
    option_b = dict(state, **{"layer2.0.shortcut.0.weight": np.zeros((32, 16, 1, 1), np.float32)})
    with pytest.raises(convert.ConversionError, match="unexpected key layer2.0.shortcut.0.weight .*option B"):
        convert.convert_state_dict(option_b)
    wrong = dict(state, **{"layer3.0.conv2.weight": np.zeros((64, 32, 3, 3), np.float32)})
    with pytest.raises(
        convert.ConversionError,
        match=r"key layer3.0.conv2.weight has shape \(64, 32, 3, 3\), .* needs \(64, 64, 3, 3\)",
    ):
        convert.convert_state_dict(wrong)
    with pytest.raises(convert.ConversionError, match="no layer1"):
        convert.convert_state_dict({"fc.weight": np.zeros((10, 512), np.float32)})


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_a_checkpoint_that_would_run_code_is_refused_with_the_reason(tmp_path):
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "extra": _RunsCode()}, tmp_path / "hostile.th")
    with pytest.raises(convert.ConversionError) as refused:
        convert.read_checkpoint(tmp_path / "hostile.th")
    message = str(refused.value)
    assert message.startswith(f"refused checkpoint {tmp_path / 'hostile.th'}: it holds the Python global ")
    assert "system" in message and "weights_only" not in message and "False" not in message


def test_missing_torch_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(convert.ConversionError, match=r"needs torch: pip install 'keras-resnet-cifar\[torch\]'"):
        convert.read_checkpoint("x.th")


def test_tool_converts_and_reports_errors(tmp_path):
    path = _save(tmp_path, _random_reference(1))
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/convert_weights.py"),
            f"--checkpoint={path}",
            f"--output={tmp_path / 'out' / 'model.keras'}",
            f"--export_base={tmp_path / 'serve'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "every tensor used once" in out.stdout
    signature = tf.saved_model.load(str(tmp_path / "serve" / "resnet8" / "1")).signatures["serving_default"]
    x = _pixels(2)
    np.testing.assert_allclose(
        signature(image=tf.constant(x))["logits"].numpy(),
        keras.models.load_model(tmp_path / "out" / "model.keras")(x.astype("float32")),
        atol=1e-5,
    )
    assert (tmp_path / "out" / "labels.txt").read_text().split()[0] == "airplane"
    (tmp_path / "bad.th").write_bytes(b"garbage")
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/convert_weights.py"),
            f"--checkpoint={tmp_path / 'bad.th'}",
            f"--output={tmp_path / 'o.keras'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "error: cannot read checkpoint" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "o.keras").exists()


def _cifar_sample(per_class):
    files, labels = [], []
    for label, name in enumerate(sources.CIFAR10_CLASSES):
        found = sorted(glob.glob(str(IMAGES / name / "*.jpg")))[:per_class]
        files += found
        labels += [label] * len(found)
    return np.stack([tf.io.decode_jpeg(tf.io.read_file(f)).numpy() for f in files]), np.asarray(labels)


@pytest.mark.skipif(
    not WEIGHTS.is_dir() or not IMAGES.is_dir(), reason="../shared/reference-weights or cifar10-jpeg absent"
)
@pytest.mark.parametrize("depth,params", [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018)])
def test_published_checkpoints_match_pytorch(depth, params):
    (checkpoint,) = glob.glob(str(WEIGHTS / f"resnet{depth}-*.th"))
    state = convert.read_checkpoint(checkpoint)
    model = convert.convert_state_dict(state)
    assert stats.trainable_params(model) == params
    net = _TorchResNet(convert.infer_n(state)).eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    x, y = _cifar_sample(per_class=10)
    with torch.no_grad():
        expected = net(x).numpy()
    ours = model.predict(x.astype("float32"), verbose=0)
    np.testing.assert_array_equal(ours.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(ours, expected, atol=1e-3, rtol=0)
    assert np.mean(ours.argmax(1) == y) > 0.7  # trained weights, training images


def test_verify_compares_with_the_reference_forward_on_an_image_folder(tmp_path):
    state = convert.read_checkpoint(_save(tmp_path, _random_reference(1)))
    datagen.image_folder(str(tmp_path / "images"), list(sources.CIFAR10_CLASSES), per_class=3)
    parity = convert.verify(convert.convert_state_dict(state), state, str(tmp_path / "images"), per_class=2)
    assert parity["images"] == 20 and parity["agreement"] == 1.0 and parity["disagreements"] == 0
    assert parity["max_logit_diff"] < 1e-4
    with pytest.raises(convert.ConversionError, match="no images to verify with in"):
        convert.verify(convert.convert_state_dict(state), state, str(tmp_path / "empty"), per_class=2)
