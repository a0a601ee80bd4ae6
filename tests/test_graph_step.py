"""The torch backend's compiled training step: the graph it runs, the weights it reaches, its cache and its choice."""

import json
import textwrap

import keras
import numpy as np
import pytest

from keras_resnet_cifar.training import machine
from tests import trainproc
from tests.helpers import hook_env, run_python

GRAPH = textwrap.dedent(
    """
    import json
    import keras, numpy as np
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import torch_graph

    numpy = keras.ops.convert_to_numpy
    x = np.random.RandomState(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    rows = []
    for dtype in ("float32", "mixed_bfloat16"):
        for data_format in ("channels_first", "channels_last"):
            for variant in ({"shortcut": "A"}, {"shortcut": "B"}, {"residual": False}):
                build = lambda: resnet.resnet_cifar(8, data_format=data_format, weight_decay=0, dtype=dtype, **variant)
                stock, graphed = build(), build()
                graphed.set_weights(stock.get_weights())
                graph = torch_graph.TorchGraph(graphed)
                expected = numpy(stock(x, training=True)).astype("float32")
                got = graph.forward(graph.values(), keras.ops.convert_to_tensor(x)).detach().float().numpy()
                # Moving statistics: what Keras's training call left against what the graph left.
                moved = max(float(np.abs(a - b).max()) for a, b in zip(stock.get_weights(), graphed.get_weights()))
                rows.append([dtype, data_format, json.dumps(variant), float(np.abs(expected - got).max()), moved])
    # The ImageNet networks' layers too (7x7 stem, max pooling, basic and bottleneck blocks), for a Python
    # caller training them under torch (krc-train-imagenet trains under TensorFlow), in float32: bfloat16
    # rounding grows over 50 layers of batch statistics.
    from keras_resnet_cifar.models import imagenet

    large = np.random.RandomState(1).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    for arch in ("resnet18", "resnet50"):
        build = lambda: imagenet.resnet_imagenet(arch, input_shape=(64, 64, 3), num_classes=10, data_format="channels_first", weight_decay=0)
        stock, graphed = build(), build()
        graphed.set_weights(stock.get_weights())
        graph = torch_graph.TorchGraph(graphed)
        expected = numpy(stock(large, training=True))
        got = graph.forward(graph.values(), keras.ops.convert_to_tensor(large)).detach().numpy()
        # Relative: deep layers' moving variances run into the hundreds. Keras's variance under torch is
        # E[x^2] - E[x]^2, which loses digits where the mean is large against the spread; PyTorch's does not.
        pairs = zip(stock.get_weights(), graphed.get_weights())
        moved = max(float((np.abs(a - b) / np.maximum(np.abs(a), 1)).max()) for a, b in pairs)
        rows.append(["float32", "channels_first", arch, float(np.abs(expected - got).max()), moved])
    refused = []
    dropout = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)])
    functional = keras.Model(dropout.inputs, dropout.outputs)
    shared, image = keras.layers.Dense(4, name="shared"), keras.Input((4,))
    twice = keras.Model(image, shared(shared(image)))
    for model in (functional, resnet.resnet_cifar(8, weight_decay=0), twice):
        try:
            if model.name.startswith("resnet"):
                model.get_layer("conv1_bn").trainable = False
            torch_graph.TorchGraph(model)
        except torch_graph.Unsupported as e:
            refused.append(str(e))
    # Asked to compile such a model, the runner trains it on Keras's step (with the decay in the optimizer).
    from keras_resnet_cifar.training import graph_step

    logged = []
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kept = graph_step.compile_for_training(functional, loss, 0.1, 0.9, 1e-4, "float32", True, logged.append)
    fallback = [type(kept).__name__, type(kept.optimizer).__name__, logged]
    # A model with regularisers: the graph's loss would leave their losses out.
    regularised = graph_step.unsupported_reason(resnet.resnet_cifar(n=1, weight_decay=1e-4), loss, "float32")
    # Sample weights: the graph's loss is the batch's mean (Keras's step would weigh it, without the decay).
    eager = graph_step.compile_for_training(resnet.resnet_cifar(n=1, weight_decay=0), loss, 0.1, 0.9, 1e-4, "float32", False, print)
    try:
        eager.train_on_batch(x[:4], np.arange(4), sample_weight=np.ones(4))
        weighted = None
    except ValueError as e:
        weighted = str(e)
    print(json.dumps({"rows": rows, "refused": refused, "fallback": fallback, "regularised": regularised, "weighted": weighted}))
    """
)


def test_the_graph_computes_what_keras_computes_in_training():
    result = json.loads(run_python(GRAPH, backend="torch").strip().splitlines()[-1])
    assert len(result["rows"]) == 14
    for dtype, data_format, variant, logits, moved in result["rows"]:
        # float32: two orders of the same sums (ResNet50's 50 layers: 1e-3). bfloat16 (8 bits of mantissa):
        # logits of about 4 within a few of its ulps, and the float32 moving statistics of bfloat16 activations.
        depth_tolerance = 1e-3 if variant.startswith("resnet") else 1e-4
        assert logits < (depth_tolerance if dtype == "float32" else 0.05), (dtype, data_format, variant, logits)
        assert moved < (depth_tolerance / 10 if dtype == "float32" else 2e-3), (dtype, data_format, variant, moved)
    assert result["refused"][0].startswith("layer dropout is a Dropout")
    assert result["refused"][1] == "layer conv1_bn is frozen"
    assert result["refused"][2].endswith("output comes from a layer called more than once")
    assert result["fallback"] == [
        "Functional",
        "CoupledDecaySGD",
        ["Training on Keras's own eager step, not the graph step: layer dropout is a Dropout"],
    ]
    assert result["regularised"].startswith("the model adds losses of its own")
    assert result["weighted"] == "the torch graph step takes no sample or class weights: its loss is the batch's mean"


STEPS = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    import torch
    from keras_resnet_cifar.models import resnet
    from keras_resnet_cifar.training import graph_step, optimizer, runner

    # The compiled step, the same graph run eagerly, and Keras's own step (the decay in its optimizer).
    settings = ["compiled", "eager", "keras"] if sys.argv[1] == "all" else ["compiled"]
    x = np.random.RandomState(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    models, losses, logged = {}, {}, []
    for setting in settings:
        keras.utils.set_random_seed(0)
        net = runner.training_model(lambda **layout: resnet.resnet_cifar(n=1, **layout))
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if setting == "keras":
            net.compile(optimizer=optimizer.sgd(0.05, 0.9, 0.05), loss=loss)
            models[setting] = net
        else:
            xla = setting == "compiled"
            models[setting] = graph_step.compile_for_training(net, loss, 0.05, 0.9, 0.05, "float32", xla, logged.append)
        start = models[setting].get_weights()
        losses[setting] = [float(models[setting].train_on_batch(x, y)) for _ in range(3)]
    compiled = models["compiled"]
    result = {
        "types": {k: [type(m).__name__, getattr(m, "runs_compiled", None)] for k, m in models.items()},
        "seconds": compiled.compile_seconds,
        "moved": sum(not np.array_equal(a, b) for a, b in zip(start, compiled.get_weights())),
        "weights": len(start),
        "misses": torch._dynamo.utils.counters["inductor"]["fxgraph_cache_miss"],
        "hits": torch._dynamo.utils.counters["inductor"]["fxgraph_cache_hit"],
        "logged": logged,
        "losses": losses,
    }
    if "keras" in models:
        result["difference"] = {
            k: max(
                float((np.abs(a - b) / np.maximum(np.abs(a), 1)).max())
                for a, b in zip(models[k].get_weights(), models["keras"].get_weights())
            )
            for k in ("compiled", "eager")
        }
        result["eager_seconds"] = models["eager"].compile_seconds
    print(json.dumps(result))
    """
)


def test_compiled_and_eager_steps_reach_keras_steps_weights_and_a_second_process_compiles_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    first = json.loads(run_python(STEPS.replace("sys.argv[1]", '"all"'), backend="torch").strip().splitlines()[-1])
    assert first["types"] == {
        "compiled": ["GraphStep", True],
        "eager": ["GraphStep", False],
        "keras": ["Functional", None],
    }
    assert first["moved"] == first["weights"]  # every variable: weights and moving statistics
    # Three SGD steps at lr 0.05 with the decay (0.05: 0.25% of each weight a step) in the
    # graph's backward and in Keras's optimizer: the same weights up to float32 rounding.
    assert first["difference"]["compiled"] < 1e-4 and first["difference"]["eager"] < 1e-4
    for setting in ("compiled", "eager"):  # the cross-entropy, without the decay
        assert first["losses"][setting] == pytest.approx(first["losses"]["keras"], rel=1e-5)
    assert first["misses"] > 0 and first["seconds"] > 0 and first["logged"] == []
    assert first["eager_seconds"] is None  # nothing compiled
    # A second process (a resume, a repeated run) finds the forward and backward graphs in the cache.
    second = json.loads(run_python(STEPS.replace("sys.argv[1]", '"one"'), backend="torch").strip().splitlines()[-1])
    assert second["misses"] == 0 and second["hits"] >= 2
    assert second["moved"] == second["weights"]


@pytest.mark.parametrize("cpu_class", ["amx", "avx2"])
@pytest.mark.parametrize(
    "extra_steps, deterministic, expected",
    [(-1, False, False), (0, False, True), (64_000, True, False)],
)
def test_torch_compiles_its_step_only_where_it_pays(cpu_class, extra_steps, deterministic, expected, monkeypatch):
    monkeypatch.setattr(machine, "has_gpu", lambda: False)
    monkeypatch.setattr(machine, "cpu_class", lambda flags=None: cpu_class)
    # Each class has its own break-even in the table (measured with AMX; the others take its figure).
    steps = machine.CPU_DEFAULTS[cpu_class]["compile_min_steps"] + extra_steps
    compiled, why = machine.compile_torch_step(steps, deterministic)
    assert compiled is expected
    assert machine.resolve_xla(None, "float32", deterministic, 1, "torch", steps) is expected
    assert ("--deterministic" in why) is deterministic
    # The arrays input augments inside the model, in a layer the graph does not run: eager, whatever the length.
    assert machine.compile_torch_step(steps, deterministic, "arrays")[0] is False
    # The caller's --xla wins, and the other backends keep their rule.
    assert machine.resolve_xla(not expected, "float32", deterministic, 1, "torch", steps) is (not expected)
    assert machine.resolve_xla(None, "float32", deterministic, 1, "jax", steps) is True


HOLD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from keras_resnet_cifar.training import machine

    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()

    held = machine.hold_freed_memory() if sys.argv[1:] == ["hold"] else None
    before = rss()
    block = np.ones(1 << 20)  # 8 MiB, written: resident
    del block
    print(json.dumps({"held": held, "kept": rss() - before}))
    """
)


def test_the_graph_step_keeps_freed_activations_for_the_next_step():
    # An 8 MiB block, as a ResNet20 activation at batch 128: glibc gives it back to the OS when
    # freed (to fault it in again next step) unless hold_freed_memory raised its thresholds.
    stock = json.loads(run_python(HOLD.replace("sys.argv[1:]", "[]")).strip().splitlines()[-1])
    held = json.loads(run_python(HOLD.replace("sys.argv[1:]", '["hold"]')).strip().splitlines()[-1])
    assert stock["kept"] < 1 << 20
    assert held["held"] is True and held["kept"] >= 7 << 20


def test_the_compile_time_is_told_once_and_kept_out_of_the_epochs_rate(monkeypatch):
    from keras_resnet_cifar.training import callbacks

    class Stub:
        pass

    model, model.optimizer = Stub(), Stub()
    model.compile_seconds = 30.0
    lines, logs = [], [{}, {}]
    stats = callbacks.EpochStats(
        batch_size=100, schedule=lambda step: 0.1, epochs=2, log=lines.append, print_line=False
    )
    stats.set_model(model)
    # Each epoch: its start, its last step's end, its end; the first one's 40 s hold the 30 s compile.
    clock = iter([0.0, 40.0, 41.0, 100.0, 110.0, 111.0])
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    for epoch in range(2):
        model.optimizer.iterations = 100 * epoch
        stats.on_epoch_begin(epoch)
        model.optimizer.iterations = 100 * (epoch + 1)
        stats.on_train_batch_end(99)
        stats.on_epoch_end(epoch, logs[epoch])
    assert [log["images_per_sec"] for log in logs] == [1000.0, 1000.0]
    assert logs[0]["epoch_seconds"] == 41.0  # the wall time keeps it
    assert lines == ["The training step was traced and compiled in 30.0 s (not in the epoch's img/s)"]


def test_a_compiled_run_killed_and_resumed_saves_the_stock_model(data_dir, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    flags = ("--backend=torch", "--precision=float32", "--xla=true", "--seed=5", "--noexport")
    # The whole run, and its directory as a kill three steps into epoch 2 of 3 leaves it.
    out = trainproc.run(trainproc.cmd(data_dir, whole, *flags), **hook_env(KRC_TEST_COPY_AT=f"step8:{killed}"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "compiled step (--xla=true)" in out.stdout and "traced and compiled in" in out.stdout
    out = trainproc.run(trainproc.cmd(data_dir, killed, *flags), **hook_env())
    assert out.returncode == 0, out.stderr[-3000:]
    assert "1 epoch(s) done, going on with epoch 2" in out.stdout
    assert [row["epoch"] for row in trainproc.rows(killed)] == ["0", "1", "2"]
    # The saved model is the built-in Functional model, not the training step's class.
    resumed = keras.saving.load_model(killed / "model.keras", safe_mode=True)
    assert type(resumed).__name__ == "Functional"
    assert {type(layer).__module__.split(".")[0] for layer in resumed.layers} == {"keras"}
    for x, y in zip(keras.saving.load_model(whole / "model.keras").get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(x, y, atol=1e-5)


CACHE = textwrap.dedent(
    """
    import json, os
    from keras_resnet_cifar.training import machine
    machine.select_backend("torch")
    import keras  # noqa: F401 (torch, imported with it, would set its own default)
    print(json.dumps([os.environ["TORCHINDUCTOR_CACHE_DIR"], machine.inductor_cache_dir()]))
    """
)


def test_a_torch_run_keeps_compiled_graphs_in_its_own_cache_unless_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    used, ours = json.loads(run_python(CACHE, backend="torch").strip().splitlines()[-1])
    assert used == ours == str(tmp_path / "keras-resnet-cifar" / "torchinductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    used, _ = json.loads(run_python(CACHE, backend="torch").strip().splitlines()[-1])
    assert used == str(tmp_path / "mine")
