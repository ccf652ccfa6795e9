"""Pieces both networks share (the supernet and the plain per-spec model): batch norm with an
explicit mode, initialisation and channel masks."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax


class Mode(NamedTuple):
    """How batch norm behaves in one call: `train` normalises with batch statistics, `calibrate`
    does the same and stores them in the BatchStat variables, `eval` uses the stored ones.
    `axis` names the data-parallel mesh axis, so batch statistics cover the global batch (the
    sharded step then computes what the single-device step does)."""

    kind: str = "train"
    axis: str | None = None


TRAIN = Mode()
BN_EPS = 1e-5  # batch norm's epsilon, of the supernet and of every network built from it


class BatchNorm(nnx.Module):
    def __init__(self, channels: int, eps: float, zero_init: bool = False):
        # zero_init on the last batch norm of a residual block starts every block as the
        # identity, which keeps deep subnets trainable from the first step (BigNAS).
        self.scale = nnx.Param(zeros(channels) if zero_init else ones(channels))
        self.bias = nnx.Param(zeros(channels))
        self.mean = nnx.BatchStat(zeros(channels))
        self.var = nnx.BatchStat(ones(channels))
        self.eps = eps

    def __call__(self, x: jax.Array, mode: Mode) -> jax.Array:
        if mode.kind == "train":
            return batch_norm(x, self.scale[...], self.bias[...], self.eps, mode.axis)
        if mode.kind == "eval":
            mean, var = self.mean[...], self.var[...]
        else:
            mean, var = _moments(x, mode.axis)
            self.mean[...] = mean
            self.var[...] = var
        return (x - mean) * lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]


def _moments(x: jax.Array, axis: str | None) -> tuple[jax.Array, jax.Array]:
    mean = _mean(x, axis)
    return mean, _mean(jnp.square(x - mean), axis)  # two passes: exact, unlike E[x^2] - mean^2


def _mean(x: jax.Array, axis: str | None) -> jax.Array:
    m = x.mean(tuple(range(x.ndim - 1)))
    return lax.pmean(m, axis) if axis else m


def _sum(x: jax.Array, axis: str | None) -> jax.Array:
    s = x.sum(tuple(range(x.ndim - 1)))
    return lax.psum(s, axis) if axis else s


@partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float, axis: str | None) -> jax.Array:
    """Batch norm with batch statistics (over `axis` too, when given) and a hand-written
    gradient: two passes over the tensor instead of autodiff's five or six, which matters on
    XLA:CPU where these memory-bound passes cost as much as the convolutions."""
    mean, var = _moments(x, axis)
    return (x - mean) * (lax.rsqrt(var + eps) * scale) + bias


def _batch_norm_fwd(x, scale, bias, eps, axis):
    mean, var = _moments(x, axis)
    inv = lax.rsqrt(var + eps)
    return (x - mean) * (inv * scale) + bias, (x, mean, inv, scale)


def _batch_norm_bwd(eps, axis, residuals, g):
    x, mean, inv, scale = residuals
    xhat = (x - mean) * inv
    count = x.size // x.shape[-1]
    if axis:
        count = lax.psum(count, axis)
    dbias = _sum(g, axis)
    dscale = _sum(g * xhat, axis)
    dx = (scale * inv) * (g - (dbias + xhat * dscale) / count)
    return dx, dscale, dbias


batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


# Initial values come from numpy: drawing them with jax.random compiles one kernel per distinct
# shape (15 s for the supernet on one core); numpy takes milliseconds, from the same seed.


def he_param(rng: np.random.Generator, shape: tuple[int, ...], fan_out: int) -> nnx.Param:
    """He (fan-out) initialisation, as torchvision's MobileNetV3 and Once-for-All use."""
    return nnx.Param(jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_out))))


def small_param(rng: np.random.Generator, shape: tuple[int, ...]) -> nnx.Param:
    """A classifier starts near zero (uniform predictions), as torchvision's MobileNetV3."""
    return nnx.Param(jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01)))


def init_squeeze_excite(module: nnx.Module, rng: np.random.Generator, mid_ch: int, se_ch: int) -> None:
    """Gives `module` its squeeze-excite parameters. The plain model and the supernet share these
    names: nas/supernet/subnet.py copies a subnet's slice of the one into the other by name."""
    module.se_reduce = he_param(rng, (mid_ch, se_ch), se_ch)
    module.se_reduce_bias = nnx.Param(zeros(se_ch))
    module.se_expand = he_param(rng, (se_ch, mid_ch), mid_ch)
    module.se_expand_bias = nnx.Param(zeros(mid_ch))


def zeros(*shape: int) -> jax.Array:
    return jnp.asarray(np.zeros(shape, np.float32))


def ones(*shape: int) -> jax.Array:
    return jnp.asarray(np.ones(shape, np.float32))


def eye(n: int) -> jax.Array:
    return jnp.asarray(np.eye(n, dtype=np.float32))


def mask(count: jax.Array | int, size: int) -> jax.Array:
    """1.0 for the first `count` of `size` channels, 0.0 for the rest."""
    return (jnp.arange(size) < count).astype(jnp.float32)
