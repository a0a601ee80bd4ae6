"""Under the torch backend, the training step as one function of plain PyTorch operations, inside ``fit``.

``GraphStep`` is the runner's training model (the same layers and
variables) with Keras's documented ``train_step`` override: the forward
pass and the loss run as one function of the variables' tensors
(``torch_graph``), the gradients come from ``torch.autograd`` and Keras's
optimizer applies them, so the optimizer's state, the schedule, the
metrics, callbacks, backups and resumes are Keras's own. ``fit``,
``evaluate`` and ``predict`` are otherwise unchanged, and the saved model
never sees this class.

The function runs compiled by ``torch.compile`` (Inductor compiles the
backward with the forward; the compiled step) or as it is (the eager step,
the operations an eager PyTorch script runs). Compiling costs tens of
seconds once per process (less where Inductor's cache,
``machine.inductor_cache_dir()``, holds the graph already), so the runner
(``machine.compile_torch_step``) compiles only runs long enough to win it
back. ``compile_for_training`` compiles a model for ``fit`` as every
training run and benchmark does, on this step where the model can run on
it, else on Keras's own step.
"""

import time

import keras

from keras_resnet_cifar.training import machine, optimizer, torch_graph


def unsupported_reason(model, loss, precision):
    """Why ``model`` cannot train on the graph step with ``loss`` in ``precision``; None when it can."""
    if keras.backend.backend() != "torch":
        return f"the graph step is for the torch backend, not {keras.backend.backend()}"
    config = loss.get_config() if isinstance(loss, keras.losses.SparseCategoricalCrossentropy) else {}
    if not (
        config.get("from_logits") and config.get("ignore_class") is None and loss.reduction == "sum_over_batch_size"
    ):
        return "its loss is not the sparse categorical cross-entropy of logits"
    if precision == "mixed_float16":
        return "loss scaling (mixed_float16) runs on Keras's own step"
    if model.losses:
        return "the model adds losses of its own (regularisers), which the graph's loss leaves out"
    try:
        torch_graph.TorchGraph(model)
    except torch_graph.Unsupported as e:
        return str(e)
    return None


class GraphStep(keras.Model):
    """A functional model whose ``train_step`` is one function of PyTorch operations (built by ``wrap``)."""

    def train_step(self, data):
        step = self.__dict__.get("_krc_step")
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if step is None:
            return super().train_step(data)
        if sample_weight is not None:
            # Keras's own step would drop the decay, which only this step adds.
            raise ValueError("the torch graph step takes no sample or class weights: its loss is the batch's mean")
        import torch

        # Keras's data adapters hand numpy arrays over for some inputs; the graph takes tensors.
        x, y = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
        values = step["graph"].values()
        started = time.perf_counter() if step["compiled"] and step["compile_seconds"] is None else None
        loss, logits = step["function"](values, x, y)
        trainable = [values[i] for i in step["trainable"]]
        gradients = torch.autograd.grad(loss, trainable)
        if started is not None:  # the first step traces and compiles the forward and the backward
            step["compile_seconds"] = time.perf_counter() - started
        with torch.no_grad():
            if step["decay"]:
                # Outside the graph: in its backward, the decay's term added about 7 s
                # (16%) to the compile of ResNet20 and nothing to the step's speed.
                for gradient, weight in zip(gradients, trainable):
                    gradient.add_(weight, alpha=step["decay"])
            self.optimizer.apply(list(gradients), self.trainable_variables)
        loss = loss.detach()
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss, sample_weight=x.shape[0])
        return self.compute_metrics(x, y, logits.detach(), sample_weight=None)

    @property
    def runs_compiled(self):
        """Whether the step runs compiled by ``torch.compile`` (else as plain PyTorch operations)."""
        step = self.__dict__.get("_krc_step")
        return bool(step and step["compiled"])

    @property
    def compile_seconds(self):
        """Seconds the first compiled step took (tracing and compiling included); None before it or eagerly."""
        step = self.__dict__.get("_krc_step")
        return None if step is None else step["compile_seconds"]


def wrap(model):
    """``model`` (functional) as a ``GraphStep``: the same layers and variables, on Keras's step until ``enable``."""
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return GraphStep(inputs=model.inputs, outputs=outputs, name=model.name)


def enable(model, weight_decay=0.0, compile_step=True):
    """Puts ``model``'s training step on its graph (call after ``model.compile``).

    Args:
        model: a ``GraphStep`` for which ``unsupported_reason`` gave None,
            compiled with that loss and a plain ``keras.optimizers.SGD``.
        weight_decay: coupled decay added to every trainable variable's
            gradient before the update (the optimizer must not add it).
        compile_step: run the graph compiled by ``torch.compile``; False:
            as plain PyTorch operations.
    """
    import torch

    graph = torch_graph.TorchGraph(model)
    index = {id(v): i for i, v in enumerate(graph.variables)}
    trainable = [index[id(v)] for v in model.trainable_variables]
    input_dtype = getattr(torch, model.inputs[0].dtype)

    def forward_loss(values, images, labels):
        logits = graph.forward(values, images.to(input_dtype))
        return torch.nn.functional.cross_entropy(logits.float(), labels.reshape(-1).long()), logits

    machine.hold_freed_memory()
    step = {
        "graph": graph,
        "trainable": trainable,
        "decay": weight_decay,
        "compiled": compile_step,
        "compile_seconds": None,
        "function": forward_loss,
    }
    if compile_step:
        # Dynamo keys compiled code by function and guards on what it closes
        # over: a process that compiles a step for a second model (the
        # benchmark's rounds, tests) would recompile until its limit and then
        # run eagerly. One compiled step per process: the earlier ones are dropped.
        torch.compiler.reset()
        # dynamic=False: one graph for the run's batch shape (the pipelines
        # drop the last partial batch), without symbolic sizes.
        step["function"] = torch.compile(forward_loss, dynamic=False)
    object.__setattr__(model, "_krc_step", step)  # past Keras's tracking: not model state


def compile_for_training(model, loss, schedule, momentum, weight_decay, precision, xla, log, **compile_args):
    """``model`` compiled for ``fit`` as every training run compiles it: under torch, on the graph step where it runs.

    Args:
        model: the training model (``training_model``, or it with augmentation layers).
        loss: the training loss.
        schedule: the learning rate (a float or a schedule).
        momentum: SGD momentum.
        weight_decay: coupled decay, in the update (``optimizer.sgd``, or the
            graph step's gradients under torch), not as the model's regularisers.
        precision: the run's precision (mixed_float16 adds loss scaling).
        xla: ``machine.resolve_xla``'s choice: Keras's ``jit_compile``, or
            under torch the compiled step (else the eager one).
        log: where a model the graph step cannot run says why it trains on
            Keras's own step.
        **compile_args: for ``model.compile`` (metrics, steps_per_execution).

    Returns:
        The compiled model: ``model``, or a ``GraphStep`` of its layers.
    """
    torch_backend = keras.backend.backend() == "torch"
    graph = torch_backend and _graph_step_possible(model, loss, precision, log)
    if graph:
        model = wrap(model)
    sgd = optimizer.sgd(schedule, momentum, 0 if graph else weight_decay)
    if precision == "mixed_float16":
        # What compile(auto_scale_loss=True) does for a model built under a global mixed_float16 policy.
        sgd = keras.optimizers.LossScaleOptimizer(sgd, name="loss_scale_optimizer")
    # Under torch the compiled step is this module's, never Keras's jit_compile.
    model.compile(optimizer=sgd, loss=loss, jit_compile=False if torch_backend else xla, **compile_args)
    if graph:
        enable(model, weight_decay, compile_step=bool(xla))
    return model


def _graph_step_possible(model, loss, precision, log):
    """Whether ``model`` can train on the graph step; if not, says why in one log line."""
    reason = unsupported_reason(model, loss, precision)
    if reason:
        log(f"Training on Keras's own eager step, not the graph step: {reason}")
    return reason is None
