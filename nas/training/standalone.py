"""Training one network from scratch, without weight sharing: the yardstick the supernet and the
search are checked against (benchmarks/supernet_ranking.py, benchmarks/search_vs_zoo.py).

The recipe is the supernet's (`TrainConfig`: batch, optimiser, schedule, label smoothing,
augmentation), applied to a plain Flax model of one ArchSpec, so any two networks trained here
differ only in their architecture.
"""

from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from nas.supernet.model import SpecNet
from nas.training.data import Batches, Dataset, Normalizer
from nas.training.run import TrainConfig
from nas.training.step import init_state, make_optimizer, make_plain_train_step, shard_batch
from search_spaces.arch_spec import ArchSpec, Dense


def train_alone(
    spec: ArchSpec, data: Dataset, train: TrainConfig, normalizer: Normalizer, mesh, epochs: int, seed: int
) -> tuple:
    """Trains `spec` for `epochs` over `data`; returns (graphdef, params, batch stats)."""
    batches = Batches(data, train.batch_size, seed, train.augmentation, normalizer)
    optim = train.optim(batches.steps_per_epoch, epochs)
    graphdef, params, stats = nnx.split(SpecNet(spec, seed=seed), nnx.Param, nnx.BatchStat)
    tx = make_optimizer(optim)
    state = init_state(params, tx, mesh)
    step = make_plain_train_step(graphdef, stats, tx, mesh, optim, data.num_classes)
    metrics = None
    for i in range(optim.total_steps):
        images, labels = shard_batch(mesh, *batches.batch(i))
        state, metrics = step(state, images, labels)
    jax.block_until_ready(metrics)
    return graphdef, state.params, stats


def for_data(spec: ArchSpec, data: Dataset) -> ArchSpec:
    """The same network fed `data`'s images: its resolution and input channels, and a classifier
    with one output per class. Every layer in between is kept, strides included, so a network
    published for 224 px ImageNet keeps its depth, widths and kernels."""
    first = dataclasses.replace(spec.stem[0], in_ch=data.channels)
    classifier = Dense(spec.classifier.in_ch, data.num_classes, spec.classifier.activation, spec.classifier.bias)
    return dataclasses.replace(
        spec,
        resolution=data.resolution,
        in_channels=data.channels,
        stem=(first, *spec.stem[1:]),
        classifier=classifier,
    )
