"""Inference-form weights for an ArchSpec: batch norm already folded into each conv's kernel
and bias, NHWC/HWIO layouts, float32 numpy arrays keyed by layer path ('layers[3]') and name.

This is the hand-over format between training (which folds BN when it exports) and the
emitter, and what `random_weights` draws for latency measurement. Names per layer type:
  conv:   kernel [k, k, in/groups, out], bias [out]
  dwsep:  dw_kernel [k, k, in], dw_bias [in], pw_kernel [1, 1, in, out], pw_bias [out]
  mbconv: expand_kernel [1, 1, in/groups, mid], expand_bias (only with an expand conv),
          dw_kernel [k, k, mid], dw_bias, se_reduce_kernel [mid, se], se_reduce_bias,
          se_expand_kernel [se, mid], se_expand_bias (only with SE),
          project_kernel [1, 1, mid/groups, out], project_bias [out]
  dense:  kernel [in, out], bias [out]
"""

from __future__ import annotations

import numpy as np

from search_spaces.arch_spec import ArchSpec, Conv, Dense, DWSeparable, Layer, MBConv

Weights = dict[str, dict[str, np.ndarray]]


def weight_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    if isinstance(layer, Conv):
        return {
            "kernel": (layer.kernel, layer.kernel, layer.in_ch // layer.groups, layer.out_ch),
            "bias": (layer.out_ch,),
        }
    if isinstance(layer, DWSeparable):
        return {
            "dw_kernel": (layer.kernel, layer.kernel, layer.in_ch),
            "dw_bias": (layer.in_ch,),
            "pw_kernel": (1, 1, layer.in_ch, layer.out_ch),
            "pw_bias": (layer.out_ch,),
        }
    if isinstance(layer, MBConv):
        shapes = {}
        if layer.expand_conv:
            shapes["expand_kernel"] = (1, 1, layer.in_ch // layer.groups, layer.mid_ch)
            shapes["expand_bias"] = (layer.mid_ch,)
        shapes["dw_kernel"] = (layer.kernel, layer.kernel, layer.mid_ch)
        shapes["dw_bias"] = (layer.mid_ch,)
        if layer.se_ch:
            shapes["se_reduce_kernel"] = (layer.mid_ch, layer.se_ch)
            shapes["se_reduce_bias"] = (layer.se_ch,)
            shapes["se_expand_kernel"] = (layer.se_ch, layer.mid_ch)
            shapes["se_expand_bias"] = (layer.mid_ch,)
        shapes["project_kernel"] = (1, 1, layer.mid_ch // layer.groups, layer.out_ch)
        shapes["project_bias"] = (layer.out_ch,)
        return shapes
    if isinstance(layer, Dense):
        return {"kernel": (layer.in_ch, layer.out_ch), "bias": (layer.out_ch,)}
    return {}


def random_layer_weights(layer: Layer, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-scaled kernels (so activations keep their scale through a deep random network) and
    small biases."""
    out = {}
    for name, shape in weight_shapes(layer).items():
        if name.endswith("bias"):
            out[name] = rng.normal(0.0, 0.05, shape).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) != 3 else shape[0] * shape[1]  # depthwise: k*k
            out[name] = rng.normal(0.0, np.sqrt(1.0 / fan_in), shape).astype(np.float32)
    return out


def random_weights(spec: ArchSpec, seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)
    return {s.path: random_layer_weights(s.layer, rng) for s in spec.shapes}


def check_weights(spec: ArchSpec, weights: Weights) -> None:
    """Raise ValueError naming the first missing or misshapen array."""
    for located in spec.shapes:
        given = weights.get(located.path, {})
        for name, shape in weight_shapes(located.layer).items():
            if name not in given:
                raise ValueError(f"weights: {located.path}.{name} missing")
            if tuple(given[name].shape) != shape:
                raise ValueError(
                    f"weights: {located.path}.{name} has shape {tuple(given[name].shape)}, expected {shape}"
                )
