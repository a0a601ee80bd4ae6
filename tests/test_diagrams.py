"""diagrams.py: the pictures hold the model's shapes and shortcuts, and are valid images."""

import pytest

from keras_resnet_cifar.models import resnet
from keras_resnet_cifar.study import diagrams

pytest.importorskip("matplotlib", reason="diagrams need matplotlib (the test extra installs it)")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def models():
    return {
        kind: resnet.resnet_cifar(20, residual=kind != "plain", shortcut="B" if kind == "B" else "A")
        for kind in ("A", "B", "plain")
    }


def test_identity_block(models):
    nodes, skips = diagrams.block_nodes(models["A"], "conv2_block1")
    assert [n.label for n in nodes] == ["input", "3x3 conv, 16", "BN", "ReLU", "3x3 conv, 16", "BN", "+", "ReLU"]
    assert {n.shape for n in nodes} == {"32x32x16"}
    assert len(skips) == 1 and skips[0].label == "identity" and not skips[0].dashed and not skips[0].boxes
    assert nodes[skips[0].end].add


def test_option_a_and_b_blocks_show_their_shortcut_layers(models):
    nodes, (skip,) = diagrams.block_nodes(models["A"], "conv3_block1")
    assert nodes[0].shape == "32x32x16" and nodes[1].label == "3x3 conv, 32, /2" and nodes[-1].shape == "16x16x32"
    assert skip.dashed and skip.label == "A: zero-padding"
    assert [(b.label, b.shape) for b in skip.boxes] == [
        ("subsample x[::2, ::2]", "16x16x16"),
        ("zero channels +8 / +8", "16x16x32"),
    ]
    _, (skip,) = diagrams.block_nodes(models["B"], "conv4_block1")
    assert skip.label == "B: projection"
    assert [(b.label, b.shape) for b in skip.boxes] == [("1x1 conv, 64, /2", "8x8x64"), ("BN", "8x8x64")]


def test_plain_block_has_no_skip(models):
    nodes, skips = diagrams.block_nodes(models["plain"], "conv3_block1")
    assert skips == [] and "+" not in [n.label for n in nodes]


def test_overview_has_a_box_per_weighted_layer(models):
    nodes, skips = diagrams.network_nodes(models["A"])
    assert len(nodes) == 1 + 20 + 1  # image, 20 weighted layers, the pool
    assert nodes[1].label == "3x3 conv, 16" and nodes[-1].label == "fc, 10"
    assert len(skips) == 9 and sum(s.dashed for s in skips) == 2
    # Each skip spans exactly the two convolutions of its block.
    assert all(s.end - s.start == 2 for s in skips)
    assert diagrams.network_nodes(models["plain"])[1] == []


def test_stage_diagram(models):
    nodes, skips = diagrams.stage_nodes(models["A"], 4)
    assert nodes[0].shape == "16x16x32" and [n.shape for n in nodes[1:]] == ["8x8x64"] * 4
    assert nodes[1].label == "block1: 3x3 conv, 64, /2 + 3x3 conv, 64"
    assert [s.dashed for s in skips] == [True, False, False]
    with pytest.raises(ValueError, match="no stage"):
        diagrams.stage_nodes(models["A"], 7)


def test_draw_all_writes_valid_images(tmp_path):
    paths = diagrams.draw_all(1, tmp_path)
    assert sorted(paths) == [
        "block_identity",
        "block_option_a",
        "block_option_b",
        "head",
        "initial_conv",
        "overview",
        "stage3",
    ]
    for path in paths.values():
        with open(path, "rb") as f:
            assert f.read(8) == PNG
    svg = diagrams.draw([("ResNet-8", *diagrams.network_nodes(resnet.resnet_cifar(8)))], "t", str(tmp_path / "o.svg"))
    text = open(svg).read()
    assert "<svg" in text and "3x3 conv, 16" in text
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
