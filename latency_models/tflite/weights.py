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
  fused_mbconv: expand_kernel [k, k, in, mid], expand_bias [mid], the SE arrays as mbconv's
          (only with SE), project_kernel [1, 1, mid, out], project_bias [out]
  resblock: basic: conv1_kernel [k, k, in, mid], conv2_kernel [k, k, mid, out];
          bottleneck: conv1_kernel [1, 1, in, mid], conv2_kernel [k, k, mid/groups, mid],
          conv3_kernel [1, 1, mid, out]; a convN_bias [its out] beside each; se_* as mbconv's
          over se_width channels (only with SE); shortcut_kernel [1, 1, in, out], shortcut_bias
          (only with a projection); preact_scale [in], preact_shift [in] (only with preact: the
          identity shortcut needs the input before that batch norm, so it cannot be folded).
          Biases are there even where the block has no batch norm to fold (under preact, the
          last conv and the shortcut): zeros then, as a conv's bias without batch norm is.
  norm:   scale [channels], shift [channels] (the batch norm's per-channel affine form)
  dense:  kernel [in, out], bias [out]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from search_spaces.arch_spec import (
    ArchSpec,
    Conv,
    Dense,
    DWSeparable,
    FusedMBConv,
    GlobalPool,
    Identity,
    Layer,
    MBConv,
    Norm,
    Pool,
    ResBlock,
)
from search_spaces.layer_registry import LayerRegistry

Weights = dict[str, dict[str, np.ndarray]]


# Each layer type's arrays: layer -> {name: shape} (empty for a layer without weights).
WEIGHT_SHAPES: LayerRegistry[Callable[[Layer], dict[str, tuple[int, ...]]]] = LayerRegistry(
    "the inference-form weights", __name__
)


def weight_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    return WEIGHT_SHAPES.handler(layer)(layer)


@WEIGHT_SHAPES.register("conv")
def _conv_shapes(layer: Conv) -> dict[str, tuple[int, ...]]:
    return {
        "kernel": (layer.kernel, layer.kernel, layer.in_ch // layer.groups, layer.out_ch),
        "bias": (layer.out_ch,),
    }


@WEIGHT_SHAPES.register("dwsep")
def _dwsep_shapes(layer: DWSeparable) -> dict[str, tuple[int, ...]]:
    return {
        "dw_kernel": (layer.kernel, layer.kernel, layer.in_ch),
        "dw_bias": (layer.in_ch,),
        "pw_kernel": (1, 1, layer.in_ch, layer.out_ch),
        "pw_bias": (layer.out_ch,),
    }


@WEIGHT_SHAPES.register("mbconv")
def _mbconv_shapes(layer: MBConv) -> dict[str, tuple[int, ...]]:
    shapes = {}
    if layer.expand_conv:
        shapes["expand_kernel"] = (1, 1, layer.in_ch // layer.groups, layer.mid_ch)
        shapes["expand_bias"] = (layer.mid_ch,)
    shapes["dw_kernel"] = (layer.kernel, layer.kernel, layer.mid_ch)
    shapes["dw_bias"] = (layer.mid_ch,)
    shapes.update(_se_shapes(layer.mid_ch, layer.se_ch))
    shapes["project_kernel"] = (1, 1, layer.mid_ch // layer.groups, layer.out_ch)
    shapes["project_bias"] = (layer.out_ch,)
    return shapes


@WEIGHT_SHAPES.register("fused_mbconv")
def _fused_mbconv_shapes(layer: FusedMBConv) -> dict[str, tuple[int, ...]]:
    shapes = {
        "expand_kernel": (layer.kernel, layer.kernel, layer.in_ch, layer.mid_ch),
        "expand_bias": (layer.mid_ch,),
    }
    shapes.update(_se_shapes(layer.mid_ch, layer.se_ch))
    shapes["project_kernel"] = (1, 1, layer.mid_ch, layer.out_ch)
    shapes["project_bias"] = (layer.out_ch,)
    return shapes


@WEIGHT_SHAPES.register("norm")
def _norm_shapes(layer: Norm) -> dict[str, tuple[int, ...]]:
    return {"scale": (layer.channels,), "shift": (layer.channels,)}


@WEIGHT_SHAPES.register("dense")
def _dense_shapes(layer: Dense) -> dict[str, tuple[int, ...]]:
    return {"kernel": (layer.in_ch, layer.out_ch), "bias": (layer.out_ch,)}


@WEIGHT_SHAPES.register("pool", "global_pool", "identity")
def _no_weights(layer: Pool | GlobalPool | Identity) -> dict[str, tuple[int, ...]]:
    return {}


def _se_shapes(channels: int, squeeze: int) -> dict[str, tuple[int, ...]]:
    if not squeeze:
        return {}
    return {
        "se_reduce_kernel": (channels, squeeze),
        "se_reduce_bias": (squeeze,),
        "se_expand_kernel": (squeeze, channels),
        "se_expand_bias": (channels,),
    }


@WEIGHT_SHAPES.register("resblock")
def _resblock_shapes(layer: ResBlock) -> dict[str, tuple[int, ...]]:
    k, cin, mid, cout = layer.kernel, layer.in_ch, layer.mid_ch, layer.out_ch
    shapes: dict[str, tuple[int, ...]] = {}
    if layer.preact:
        shapes["preact_scale"] = (cin,)
        shapes["preact_shift"] = (cin,)
    if layer.bottleneck:
        convs = [(1, cin, mid), (k, mid // layer.groups, mid), (1, mid, cout)]
    else:
        convs = [(k, cin, mid), (k, mid, cout)]
    for i, (size, conv_in, conv_out) in enumerate(convs, 1):
        shapes[f"conv{i}_kernel"] = (size, size, conv_in, conv_out)
        shapes[f"conv{i}_bias"] = (conv_out,)
    shapes.update(_se_shapes(layer.se_width, layer.se_ch))
    if layer.projects:
        shapes["shortcut_kernel"] = (1, 1, cin, cout)
        shapes["shortcut_bias"] = (cout,)
    return shapes


def random_layer_weights(layer: Layer, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-scaled kernels (so activations keep their scale through a deep random network), small
    biases and shifts, and batch norm scales near 1 (a trained one's are positive and of order 1)."""
    out = {}
    for name, shape in weight_shapes(layer).items():
        if name.endswith(("bias", "shift")):
            out[name] = rng.normal(0.0, 0.05, shape).astype(np.float32)
        elif name.endswith("scale"):
            out[name] = rng.uniform(0.8, 1.2, shape).astype(np.float32)
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
