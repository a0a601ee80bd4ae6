"""The arrays input: uint8 batches from memory, each process its own share.

TensorFlow-free: the input under JAX and wherever TensorFlow is absent. The
paper's augmentation runs inside the compiled step (``augment.py``), so the
host only gathers uint8 images.

Training is one endless stream of global batches, cut from one seeded
permutation of the training split after another (pass ``p``'s order is drawn
from ``(seed, p)``), so global batch ``s`` is a function of ``seed`` and
``s`` alone, and a run resumed at any step sees what an uninterrupted run
sees there. Of each global batch of ``B`` images, process ``i`` of ``P``
takes images ``i*B/P`` to ``(i+1)*B/P``: across the processes every image of
a pass is seen once.
"""

import functools
import math

import keras
import numpy as np


def train_batches(images, labels, batch_size, seed, first_step=0, process_id=0, num_processes=1):
    """This process's share of every global batch from ``first_step`` on, endlessly.

    Args:
        images: uint8 ``[N, 32, 32, 3]``.
        labels: int ``[N]``.
        batch_size: the global batch; ``num_processes`` divides it.
        seed: draws each pass's order.
        first_step: the global step of the first batch.
        process_id: this process, in ``[0, num_processes)``.
        num_processes: processes sharing each global batch.

    Yields:
        ``(images, labels)`` of ``batch_size / num_processes`` images.
    """
    count = len(images)
    step = first_step
    while True:
        mine = batch_indices(count, batch_size, seed, step, process_id, num_processes)
        yield images[mine], labels[mine]
        step += 1


def batch_indices(count, batch_size, seed, step, process_id=0, num_processes=1):
    """The indices of this process's share of global batch ``step`` (see the module docstring)."""
    local = batch_size // num_processes
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    passes = positions // count
    index = np.empty(batch_size, np.int64)
    for p in np.unique(passes):
        chosen = passes == p
        index[chosen] = _order(seed, int(p), count)[positions[chosen] - p * count]
    return index[process_id * local : (process_id + 1) * local]


@functools.lru_cache(maxsize=2)
def _order(seed, epoch, count):
    return np.random.default_rng([seed, epoch]).permutation(count)


class EvalBatches(keras.utils.PyDataset):
    """Evaluation batches in order: this process's share of each, weighted.

    Under several replicas a short last batch is padded to a multiple of
    ``replicas`` with weight-0 copies of its first image, so that every
    device gets the same number of images; the weights keep the padding out
    of the accuracy.
    """

    def __init__(self, images, labels, batch_size, process_id=0, num_processes=1, replicas=1):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.process_id, self.num_processes, self.replicas = process_id, num_processes, replicas

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, i):
        x = self.images[i * self.batch_size : (i + 1) * self.batch_size]
        y = self.labels[i * self.batch_size : (i + 1) * self.batch_size]
        if self.replicas == 1:
            return x, y
        pad = -len(x) % self.replicas
        weights = np.concatenate([np.ones(len(x), np.float32), np.zeros(pad, np.float32)])
        x = np.concatenate([x, np.repeat(x[:1], pad, axis=0)])
        y = np.concatenate([y, np.repeat(y[:1], pad, axis=0)])
        share = len(x) // self.num_processes
        mine = slice(self.process_id * share, (self.process_id + 1) * share)
        return x[mine], y[mine], weights[mine]
