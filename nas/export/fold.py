"""A trained `SpecNet` in inference form: batch norm folded into the convolution before it.

In eval mode a batch norm is the per-channel affine map y = (x - mean) * s + beta with
s = scale / sqrt(var + eps), so conv(x, K) + b followed by it equals conv(x, K * s) + (b - mean)
* s + beta: one convolution, as TFLite runs it. The result is the emitter's weight format
(latency_models/tflite/weights.py), float32 numpy arrays keyed by layer path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flax import nnx

from latency_models.tflite.weights import Weights, check_weights
from nas.supernet.model import SPEC_NET_LAYERS, ConvLayer, DenseLayer, DWSeparableLayer, MBConvLayer, SpecNet
from search_spaces.arch_spec import ArchSpec, Conv, Dense, DWSeparable, GlobalPool, Identity, Layer, MBConv
from search_spaces.layer_registry import LayerRegistry


def _array(variable) -> np.ndarray:
    return np.asarray(variable[...], dtype=np.float64)


def _fold(kernel, bias, bn) -> tuple[np.ndarray, np.ndarray]:
    """Kernel [..., out] and bias [out] (None: zero) with batch norm `bn` (None: none) folded in;
    computed in float64 so the fold adds no rounding of its own."""
    kernel = _array(kernel)
    bias = np.zeros(kernel.shape[-1]) if bias is None else _array(bias)
    if bn is not None:
        s = _array(bn.scale) / np.sqrt(_array(bn.var) + bn.eps)
        kernel, bias = kernel * s, (bias - _array(bn.mean)) * s + _array(bn.bias)
    return kernel.astype(np.float32), bias.astype(np.float32)


# Each layer type's inference-form weights from its SpecNet module: (layer, module) -> arrays
# (empty: the layer has none). The types the plain model refuses have no module to fold.
FOLDING: LayerRegistry[Callable[[Layer, nnx.Module], dict[str, np.ndarray]]] = LayerRegistry(
    "batch-norm folding", __name__
)


def inference_weights(spec: ArchSpec, model: SpecNet) -> Weights:
    """The emitter's weights for `spec` from `model` (a SpecNet of the same spec, its batch-norm
    statistics already those to deploy with)."""
    weights: Weights = {}
    for (path, layer), module in zip(spec.located_layers(), model.layers, strict=True):
        folded = FOLDING.handler(layer)(layer, module)
        if folded:
            weights[path] = folded
    check_weights(spec, weights)
    return weights


@FOLDING.register("conv")
def _fold_conv(layer: Conv, module: ConvLayer) -> dict[str, np.ndarray]:
    kernel, bias = _fold(module.kernel, module.bias, module.bn)
    return {"kernel": kernel, "bias": bias}


@FOLDING.register("dwsep")
def _fold_dwsep(layer: DWSeparable, module: DWSeparableLayer) -> dict[str, np.ndarray]:
    dw, dw_bias = _fold(module.dw, None, module.dw_bn)
    pw, pw_bias = _fold(module.pw, None, module.pw_bn)
    return {"dw_kernel": dw, "dw_bias": dw_bias, "pw_kernel": pw, "pw_bias": pw_bias}


@FOLDING.register("mbconv")
def _fold_mbconv(layer: MBConv, module: MBConvLayer) -> dict[str, np.ndarray]:
    w = {}
    if layer.expand_conv:
        w["expand_kernel"], w["expand_bias"] = _fold(module.expand, None, module.expand_bn)
    w["dw_kernel"], w["dw_bias"] = _fold(module.dw, None, module.dw_bn)
    if layer.se_ch:
        w["se_reduce_kernel"], w["se_reduce_bias"] = _fold(module.se_reduce, module.se_reduce_bias, None)
        w["se_expand_kernel"], w["se_expand_bias"] = _fold(module.se_expand, module.se_expand_bias, None)
    w["project_kernel"], w["project_bias"] = _fold(module.project, None, module.project_bn)
    return w


@FOLDING.register("dense")
def _fold_dense(layer: Dense, module: DenseLayer) -> dict[str, np.ndarray]:
    kernel, bias = _fold(module.kernel, module.bias, None)
    return {"kernel": kernel, "bias": bias}


@FOLDING.register("global_pool", "identity")
def _nothing_to_fold(layer: GlobalPool | Identity, module: nnx.Module) -> dict[str, np.ndarray]:
    return {}


# A type the plain model has no module for has nothing to fold.
for _op, _reason in SPEC_NET_LAYERS.refusals.items():
    FOLDING.refuse(_op, f"the plain model has no module for it ({_reason})")
