"""A plain Flax NNX network for any ArchSpec: static shapes, no masks.

It is the reference the supernet is checked against (a subnet's extracted weights must give the
same outputs), the baseline of the step-time benchmark, and what stand-alone training of a
subnet trains. Parameter names follow latency_models/tflite/weights.py (before batch-norm
folding), one module per spec layer path.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from nas.supernet import ops
from nas.supernet.layers import BN_EPS, TRAIN, BatchNorm, Mode, he_param, init_squeeze_excite, small_param, zeros
from search_spaces.arch_spec import ArchSpec, Conv, Dense, DWSeparable, Layer, MBConv
from search_spaces.layer_registry import LayerRegistry


class ConvLayer(nnx.Module):
    def __init__(self, layer: Conv, eps: float, rng: np.random.Generator):
        self.stride, self.groups, self.act = layer.stride, layer.groups, layer.activation
        k = layer.kernel
        self.kernel = he_param(rng, (k, k, layer.in_ch // layer.groups, layer.out_ch), k * k * layer.out_ch)
        self.bn = BatchNorm(layer.out_ch, eps) if layer.batch_norm else None
        self.bias = nnx.Param(zeros(layer.out_ch)) if layer.bias else None

    def __call__(self, x, mode: Mode, impl: str):
        if impl != "portable" and x.shape[1:3] == (1, 1) and self.kernel.shape[:2] == (1, 1):
            y = (x[:, 0, 0] @ self.kernel[0, 0])[:, None, None]  # a 1x1 conv on a pooled map
        else:
            y = ops.conv(x, self.kernel[...], self.stride, self.groups, impl)
        if self.bias is not None:
            y = y + self.bias[...]
        if self.bn is not None:
            y = self.bn(y, mode)
        return ops.activation(self.act, y)


class DWSeparableLayer(nnx.Module):
    """MobileNetV1's block: depthwise conv + BN + activation, pointwise conv + BN + activation."""

    def __init__(self, layer: DWSeparable, eps: float, rng: np.random.Generator):
        self.stride, self.act = layer.stride, layer.activation
        self.dw = he_param(rng, (layer.kernel, layer.kernel, layer.in_ch), layer.kernel**2)
        self.dw_bn = BatchNorm(layer.in_ch, eps)
        self.pw = he_param(rng, (1, 1, layer.in_ch, layer.out_ch), layer.out_ch)
        self.pw_bn = BatchNorm(layer.out_ch, eps)

    def __call__(self, x, mode: Mode, impl: str):
        y = ops.activation(self.act, self.dw_bn(ops.depthwise_conv(x, self.dw[...], self.stride, impl), mode))
        return ops.activation(self.act, self.pw_bn(ops.conv(y, self.pw[...], impl=impl), mode))


class MBConvLayer(nnx.Module):
    def __init__(self, layer: MBConv, eps: float, rng: np.random.Generator):
        self.stride, self.act, self.gate, self.residual = (
            layer.stride,
            layer.activation,
            layer.se_gate,
            layer.has_residual,
        )
        self.groups = layer.groups  # of both 1x1 convolutions (FBNet's g2 blocks), as the spec says
        g = layer.groups
        self.expand = he_param(rng, (1, 1, layer.in_ch // g, layer.mid_ch), layer.mid_ch) if layer.expand_conv else None
        self.expand_bn = BatchNorm(layer.mid_ch, eps) if layer.expand_conv else None
        self.dw = he_param(rng, (layer.kernel, layer.kernel, layer.mid_ch), layer.kernel**2)
        self.dw_bn = BatchNorm(layer.mid_ch, eps)
        self.se = layer.se_ch > 0
        if self.se:
            init_squeeze_excite(self, rng, layer.mid_ch, layer.se_ch)
        self.project = he_param(rng, (1, 1, layer.mid_ch // g, layer.out_ch), layer.out_ch)
        self.project_bn = BatchNorm(layer.out_ch, eps, zero_init=self.residual)

    def __call__(self, x, mode: Mode, impl: str):
        y = x
        if self.expand is not None:
            y = ops.conv(y, self.expand[...], groups=self.groups, impl=impl)
            y = ops.activation(self.act, self.expand_bn(y, mode))
        y = ops.activation(self.act, self.dw_bn(ops.depthwise_conv(y, self.dw[...], self.stride, impl), mode))
        if self.se:
            s = jax.nn.relu(y.mean((1, 2)) @ self.se_reduce[...] + self.se_reduce_bias[...])
            y = y * ops.gate(self.gate, s @ self.se_expand[...] + self.se_expand_bias[...])[:, None, None, :]
        y = self.project_bn(ops.conv(y, self.project[...], groups=self.groups, impl=impl), mode)
        return x + y if self.residual else y


class GlobalPoolLayer(nnx.Module):
    def __call__(self, x, mode: Mode, impl: str):
        return x.mean((1, 2), keepdims=True)


class IdentityLayer(nnx.Module):
    def __call__(self, x, mode: Mode, impl: str):
        return x


class DenseLayer(nnx.Module):
    def __init__(self, layer: Dense, rng: np.random.Generator):
        self.act = layer.activation
        self.kernel = small_param(rng, (layer.in_ch, layer.out_ch))
        self.bias = nnx.Param(zeros(layer.out_ch)) if layer.bias else None

    def __call__(self, x, mode: Mode, impl: str):
        y = x.reshape(x.shape[0], -1) @ self.kernel[...]
        if self.bias is not None:
            y = y + self.bias[...]
        return ops.activation(self.act, y)


# Each layer type's module: (layer, batch-norm epsilon, rng) -> nnx.Module. The types no search
# space produces have none (the supernet and stand-alone training train the spaces' networks).
SPEC_NET_LAYERS: LayerRegistry[Callable[[Layer, float, np.random.Generator], nnx.Module]] = LayerRegistry(
    "the plain model", __name__
)
SPEC_NET_LAYERS.register("conv")(ConvLayer)
SPEC_NET_LAYERS.register("dwsep")(DWSeparableLayer)
SPEC_NET_LAYERS.register("mbconv")(MBConvLayer)
SPEC_NET_LAYERS.register("global_pool")(lambda layer, eps, rng: GlobalPoolLayer())
SPEC_NET_LAYERS.register("identity")(lambda layer, eps, rng: IdentityLayer())
SPEC_NET_LAYERS.register("dense")(lambda layer, eps, rng: DenseLayer(layer, rng))
_ZOO_ONLY = "no search space produces it (networks with it come from the zoo, to be measured, not trained)"
SPEC_NET_LAYERS.refuse("fused_mbconv", _ZOO_ONLY)
SPEC_NET_LAYERS.refuse("resblock", _ZOO_ONLY)
SPEC_NET_LAYERS.refuse("pool", _ZOO_ONLY)
SPEC_NET_LAYERS.refuse("norm", _ZOO_ONLY)


def _build(layer: Layer, eps: float, rng: np.random.Generator) -> nnx.Module:
    return SPEC_NET_LAYERS.handler(layer)(layer, eps, rng)


class SpecNet(nnx.Module):
    """The network an ArchSpec describes; `layers[i]` is the spec's i-th located layer."""

    def __init__(self, spec: ArchSpec, seed: int = 0, eps: float = BN_EPS):
        rng = np.random.default_rng(seed)
        self.paths = tuple(path for path, _ in spec.located_layers())
        self.layers = nnx.List([_build(layer, eps, rng) for _, layer in spec.located_layers()])

    def __call__(self, x: jax.Array, mode: Mode = TRAIN, impl: str | None = None) -> jax.Array:
        impl = impl or ops.default_depthwise_impl()
        for layer in self.layers:
            x = layer(x, mode, impl)
        return x
