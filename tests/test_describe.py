"""tools/describe.py and describe.py: the breakdown is read off the model and adds up."""

import pytest

from keras_resnet_cifar.models import resnet, stats
from keras_resnet_cifar.study import describe
from tests.helpers import REPO, run_tool

# ResNet20 option A by hand: conv1 3*3*3*16 + 2*16 BN; stage 1 six 3x3x16x16
# convs + BN; stage 2 one 3x3x16x32 and five 3x3x32x32 + BN; stage 3 likewise
# with 64; head 64*10 + 10.
RESNET20_A = {"conv1": 464, "stage 1": 14_016, "stage 2": 51_072, "stage 3": 203_520, "head": 650}


def _expected_params(n, shortcut):
    stage1 = 2 * n * (9 * 16 * 16 + 32)
    stage2 = 9 * 16 * 32 + (2 * n - 1) * 9 * 32 * 32 + 2 * n * 64
    stage3 = 9 * 32 * 64 + (2 * n - 1) * 9 * 64 * 64 + 2 * n * 128
    if shortcut == "B":
        stage2 += 16 * 32 + 64
        stage3 += 32 * 64 + 128
    return [464, stage1, stage2, stage3, 650]


@pytest.mark.parametrize("depth", [20, 56])
@pytest.mark.parametrize("kind", ["A", "B", "plain"])
def test_breakdown_adds_up_and_matches_the_paper(depth, kind):
    n = (depth - 2) // 6
    model = resnet.resnet_cifar(depth, residual=kind != "plain", shortcut="B" if kind == "B" else "A")
    parts = describe.breakdown(model)
    assert [p.name for p in parts] == ["conv1", "stage 1", "stage 2", "stage 3", "head"]
    assert [p.params for p in parts] == _expected_params(n, kind)
    assert sum(p.params for p in parts) == stats.trainable_params(model)
    assert [p.weighted_layers for p in parts] == [1, 2 * n, 2 * n, 2 * n, 1]
    assert sum(p.weighted_layers for p in parts) == depth
    assert [p.output_shape for p in parts] == [(32, 32, 16), (32, 32, 16), (16, 16, 32), (8, 8, 64), (10,)]
    assert [p.stride for p in parts[:4]] == [1, 1, 2, 2]
    assert [p.blocks for p in parts[1:4]] == [n, n, n]
    stages = parts[1:4]
    if kind == "plain":
        assert [p.shortcut for p in stages] == ["none"] * 3
    else:
        assert [p.shortcut for p in stages] == ["identity", kind, kind]
    assert [p.shortcut_params for p in stages] == ([0, 576, 2176] if kind == "B" else [0, 0, 0])
    # Every layer of the model belongs to exactly one part.
    named = [name for p in parts for name in p.layers]
    assert sorted(named) == sorted(layer.name for layer in model.layers if layer.name != "image")


def test_resnet20_numbers_pinned():
    parts = describe.breakdown(resnet.resnet_cifar(20))
    assert {p.name: p.params for p in parts} == RESNET20_A
    assert "zero-pad channels 16 -> 32" in parts[2].shortcut_text
    assert "zero-pad channels 32 -> 64" in parts[3].shortcut_text
    assert parts[0].what == "(x - mean) / std, 3x3 conv 16, pad 1, BN, ReLU"
    assert parts[2].what == "3 x [3x3 conv 32, 3x3 conv 32]"


def test_option_b_shortcut_text():
    parts = describe.breakdown(resnet.resnet_cifar(20, shortcut="B"))
    assert parts[2].shortcut_text == "B: 1x1 conv 32, stride 2, BN"
    assert parts[3].shortcut_text == "B: 1x1 conv 64, stride 2, BN"


def test_summary_table_is_the_papers():
    header, rows = describe.summary_table(resnet.resnet_cifar(56))
    assert header == ["output map size", "32x32", "16x16", "8x8"]
    assert rows == [["# layers", "1+18", "18", "18"], ["# filters", "16", "32", "64"]]
    header, rows = describe.summary_table(resnet.resnet_cifar(20, residual=False))
    assert rows[0] == ["# layers", "1+6", "6", "6"]


def test_render_markdown_and_text():
    model = resnet.resnet_cifar(20)
    markdown = describe.render(model, "markdown")
    assert markdown.startswith("## resnet20: n = 3, 20 weighted layers\n")
    assert (
        "| stage 2 | 3 x [3x3 conv 32, 3x3 conv 32] | 2 | A: subsample stride 2, zero-pad channels 16 -> 32 | 0 | 16x16x32 | 51,072 | 6 |"
        in markdown
    )
    assert "| total |  |  |  |  | 10 | 269,722 | 20 |" in markdown
    assert "| # layers | 1+6 | 6 | 6 |" in markdown
    text = describe.render(model)
    assert "stage 3" in text and "|" not in text
    with pytest.raises(ValueError, match="fmt must be"):
        describe.render(model, "html")


def test_foreign_model_is_refused():
    import keras

    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="not a CIFAR ResNet"):
        describe.breakdown(keras.Model(inputs, keras.layers.Dense(2)(inputs)))


def test_tool_prints_the_render_and_rejects_bad_flags():
    out = run_tool("describe.py", "--depth=56", "--shortcut=B", "--format=markdown")
    assert out.returncode == 0, out.stderr
    assert out.stdout == describe.render(resnet.resnet_cifar(56, shortcut="B"), "markdown")
    bad = run_tool("describe.py", "--depth=21")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...). Received: --depth=21"
    ]


def test_committed_architecture_tables_match_the_tool():
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    assert text.count("<!-- describe ") >= 3
    refreshed, changed = describe.refresh_markdown(text)
    assert changed == [], f"stale tables: {changed}; run python tools/make_docs.py"
    assert refreshed == text


def test_refresh_rewrites_a_stale_table():
    stale = "intro\n<!-- describe --depth=20 --plain -->\nold table\n<!-- end describe -->\nend\n"
    new, changed = describe.refresh_markdown(stale)
    assert changed == ["--depth=20 --plain"]
    assert "## plain20: n = 3, 20 weighted layers" in new and "old table" not in new
    assert new.startswith("intro\n") and new.endswith("<!-- end describe -->\nend\n")
    assert describe.refresh_markdown(new) == (new, [])
    with pytest.raises(ValueError, match="unknown describe flag"):
        describe.refresh_markdown("<!-- describe --width=2 -->\n<!-- end describe -->")
