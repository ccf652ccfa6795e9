"""A trained `SpecNet` in inference form: batch norm folded into the convolution before it.

In eval mode a batch norm is the per-channel affine map y = (x - mean) * s + beta with
s = scale / sqrt(var + eps), so conv(x, K) + b followed by it equals conv(x, K * s) + (b - mean)
* s + beta: one convolution, as TFLite runs it. The result is the emitter's weight format
(latency_models/tflite/weights.py), float32 numpy arrays keyed by layer path.
"""

from __future__ import annotations

import numpy as np

from latency_models.tflite.weights import Weights, check_weights
from nas.supernet.model import SpecNet
from search_spaces.arch_spec import ArchSpec, Conv, Dense, DWSeparable, MBConv


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


def inference_weights(spec: ArchSpec, model: SpecNet) -> Weights:
    """The emitter's weights for `spec` from `model` (a SpecNet of the same spec, its batch-norm
    statistics already those to deploy with)."""
    weights: Weights = {}
    for (path, layer), module in zip(spec.located_layers(), model.layers, strict=True):
        if isinstance(layer, Conv):
            kernel, bias = _fold(module.kernel, module.bias, module.bn)
            weights[path] = {"kernel": kernel, "bias": bias}
        elif isinstance(layer, DWSeparable):
            dw, dw_bias = _fold(module.dw, None, module.dw_bn)
            pw, pw_bias = _fold(module.pw, None, module.pw_bn)
            weights[path] = {"dw_kernel": dw, "dw_bias": dw_bias, "pw_kernel": pw, "pw_bias": pw_bias}
        elif isinstance(layer, MBConv):
            w = {}
            if layer.expand_conv:
                w["expand_kernel"], w["expand_bias"] = _fold(module.expand, None, module.expand_bn)
            w["dw_kernel"], w["dw_bias"] = _fold(module.dw, None, module.dw_bn)
            if layer.se_ch:
                w["se_reduce_kernel"], w["se_reduce_bias"] = _fold(module.se_reduce, module.se_reduce_bias, None)
                w["se_expand_kernel"], w["se_expand_bias"] = _fold(module.se_expand, module.se_expand_bias, None)
            w["project_kernel"], w["project_bias"] = _fold(module.project, None, module.project_bn)
            weights[path] = w
        elif isinstance(layer, Dense):
            kernel, bias = _fold(module.kernel, module.bias, None)
            weights[path] = {"kernel": kernel, "bias": bias}
    check_weights(spec, weights)
    return weights
