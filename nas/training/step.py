"""The compiled supernet train step: sandwich rule, in-place distillation, data parallel.

One step trains K subnets on the same batch, the largest first: the largest learns from the
(label-smoothed) labels, every other subnet from the largest's predictions (in-place
distillation, Yu et al., BigNAS). The K forward/backward passes are one `lax.scan` over the
stacked subnet arrays, so the step compiles one subnet's graph, not K, and the subnet choices
are data: any sandwich of any subnets runs the same executable.

Data parallel through `jax.shard_map` over a 1-D mesh of all devices (axis "data"): the batch
is split, parameters and optimiser state are replicated, batch norm averages its statistics
over the mesh and the loss is averaged over it, so the gradients are those of the global batch
and the sharded step computes what the single-device step does. Multi-host runs use the same
code: the mesh then spans every process's devices (nas/README.md, "multi-host").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nas.supernet.layers import Mode
from nas.supernet.supernet import Subnet, Supernet

AXIS = "data"


@dataclass(frozen=True)
class OptimConfig:
    """The optimiser's settings in steps; `TrainConfig.optim` derives them from a run's settings
    (the one place their defaults live)."""

    learning_rate: float
    momentum: float
    weight_decay: float
    warmup_steps: int
    total_steps: int
    label_smoothing: float


class TrainState(NamedTuple):
    params: Any  # nnx.State of the supernet's Params
    opt_state: Any


def _decay_mask(params: Any) -> Any:
    """Weight decay on convolution and dense kernels only: not on batch-norm scales, biases or
    the kernel transforms (identity-initialised matrices that decay would pull to zero)."""

    def keep(path, value) -> bool:
        names = [getattr(key, "key", getattr(key, "name", "")) for key in path]
        return value.ndim >= 2 and "transforms" not in names

    return jax.tree_util.tree_map_with_path(keep, params)


def learning_rate(config: OptimConfig) -> optax.Schedule:
    """Linear warm-up from zero, then cosine decay to zero at the last step."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=max(config.total_steps, config.warmup_steps + 1),
        end_value=0.0,
    )


def make_optimizer(config: OptimConfig) -> optax.GradientTransformation:
    """SGD with Nesterov momentum on the scheduled learning rate, decoupled weight decay."""
    return optax.chain(
        optax.add_decayed_weights(config.weight_decay, mask=_decay_mask),
        optax.sgd(learning_rate(config), momentum=config.momentum, nesterov=True),
    )


def make_mesh(devices: list | None = None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def split(model: Supernet) -> tuple[nnx.GraphDef, Any, Any]:
    """(graphdef, params, batch stats): the step works on the params; batch statistics are
    unused in training but a merge needs them."""
    return nnx.split(model, nnx.Param, nnx.BatchStat)


def init_state(params: Any, tx: optax.GradientTransformation, mesh: Mesh) -> TrainState:
    replicated = NamedSharding(mesh, P())
    params = jax.device_put(params, replicated)
    return TrainState(params, jax.device_put(tx.init(params), replicated))


def smoothed_labels(labels, num_classes: int, config: OptimConfig) -> jax.Array:
    return optax.smooth_labels(jax.nn.one_hot(labels, num_classes), config.label_smoothing)


def soft_cross_entropy(logits, target) -> jax.Array:
    """Mean cross-entropy against a distribution (smoothed labels or a teacher's softmax)."""
    return -(target * jax.nn.log_softmax(logits)).sum(-1).mean()


def make_train_step(
    graphdef: nnx.GraphDef,
    stats: Any,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    config: OptimConfig,
    num_classes: int,
    impl: str | None = None,
) -> Callable:
    """step(state, images, labels, subnets) -> (state, metrics). `subnets` is a stacked Subnet
    (leading axis K, the largest first); metrics hold each subnet's loss and the largest's
    top-1 on the batch."""

    def local_step(state: TrainState, images, labels, subnets: Subnet):
        mode = Mode("train", AXIS)

        def loss_fn(params, sub, target):
            logits = nnx.merge(graphdef, params, stats)(images, sub, mode, impl)
            # averaged over the mesh: the gradient of this replicated value is the global
            # batch's gradient (shard_map inserts the reductions)
            return lax.pmean(soft_cross_entropy(logits, target), AXIS), logits

        smooth = smoothed_labels(labels, num_classes, config)

        def body(carry, inputs):
            grads, teacher = carry
            sub, is_largest = inputs
            target = jnp.where(is_largest, smooth, teacher)
            (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(state.params, sub, target)
            teacher = jnp.where(is_largest, jax.nn.softmax(lax.stop_gradient(logits)), teacher)
            correct = lax.pmean((logits.argmax(-1) == labels).mean(), AXIS)
            return (jax.tree.map(jnp.add, grads, g), teacher), (loss, correct)

        count = subnets.mid.shape[0]
        zeros = jax.tree.map(jnp.zeros_like, state.params)
        (grads, _), (losses, correct) = lax.scan(
            body, (zeros, jnp.zeros_like(smooth)), (subnets, jnp.arange(count) == 0)
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state), {"loss": losses, "accuracy": correct[0]}

    sharded = jax.shard_map(
        local_step,
        mesh=mesh,
        in_specs=(P(), P(AXIS), P(AXIS), P()),
        out_specs=(P(), P()),
    )
    return jax.jit(sharded, donate_argnums=(0,))


def make_plain_train_step(
    graphdef: nnx.GraphDef,
    stats: Any,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    config: OptimConfig,
    num_classes: int,
    impl: str | None = None,
) -> Callable:
    """The same step for a plain network (nas.supernet.model.SpecNet): one network, the labels as the
    only target. It is the stand-alone baseline of the benchmarks."""

    def local_step(state: TrainState, images, labels):
        def loss_fn(params):
            logits = nnx.merge(graphdef, params, stats)(images, Mode("train", AXIS), impl)
            target = smoothed_labels(labels, num_classes, config)
            return lax.pmean(soft_cross_entropy(logits, target), AXIS), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        correct = lax.pmean((logits.argmax(-1) == labels).mean(), AXIS)
        return TrainState(optax.apply_updates(state.params, updates), opt_state), {"loss": loss, "accuracy": correct}

    sharded = jax.shard_map(local_step, mesh=mesh, in_specs=(P(), P(AXIS), P(AXIS)), out_specs=(P(), P()))
    return jax.jit(sharded, donate_argnums=(0,))


def shard_batch(mesh: Mesh, *arrays: np.ndarray) -> tuple[jax.Array, ...]:
    """Place a global batch (host arrays) on the mesh, split along the batch axis. On several
    hosts every process computes the same global batch (batches are a function of the step)
    and contributes its own slice of it."""
    sharding = NamedSharding(mesh, P(AXIS))
    count = jax.process_count()
    if count == 1:
        return tuple(jax.device_put(a, sharding) for a in arrays)
    index = jax.process_index()
    local = [a[index * (len(a) // count) : (index + 1) * (len(a) // count)] for a in arrays]
    return tuple(jax.make_array_from_process_local_data(sharding, a) for a in local)
