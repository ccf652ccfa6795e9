"""A subnet as a stand-alone network with the weights it inherits from the supernet.

The supernet stores every tensor at its largest size; a subnet takes the first channels of each
and its kernel option's effective depthwise kernel (after Once-for-All's transforms). The
result is a plain `SpecNet` of the subnet's ArchSpec, which is what export (BN folding into
latency_models/tflite/weights.py's format) starts from, and what tests compare the masked
supernet against.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from nas.supernet.layers import BatchNorm
from nas.supernet.model import SpecNet
from nas.supernet.supernet import ElasticMBConv, Layout, Supernet
from search_spaces.arch_spec import ArchSpec, MBConv
from search_spaces.space import Choices


def _bn(bn: BatchNorm, n: int) -> dict:
    return {name: getattr(bn, name)[...][:n] for name in ("scale", "bias", "mean", "var")}


def _block(block: ElasticMBConv, layer: MBConv, kernel_index: int) -> dict:
    mid, out = layer.mid_ch, layer.out_ch
    params = {}
    if layer.expand_conv:
        params["expand"] = block.expand[...][:, :, : layer.in_ch, :mid]
        params["expand_bn"] = _bn(block.expand_bn, mid)
    params["dw"] = block.depthwise_kernels()[kernel_index][:, :, :mid]
    params["dw_bn"] = _bn(block.dw_bn, mid)
    if layer.se_ch:
        se = layer.se_ch
        params["se_reduce"] = block.se_reduce[...][:mid, :se]
        params["se_reduce_bias"] = block.se_reduce_bias[...][:se]
        params["se_expand"] = block.se_expand[...][:se, :mid]
        params["se_expand_bias"] = block.se_expand_bias[...][:mid]
    params["project"] = block.project[...][:, :, :mid, :out]
    params["project_bn"] = _bn(block.project_bn, out)
    return params


def subnet_model(supernet: Supernet, layout: Layout, choices: Choices) -> tuple[ArchSpec, SpecNet]:
    """The subnet's spec and a SpecNet holding its inherited weights (batch-norm statistics
    included: recalibrate the supernet for this subnet first if they will be used)."""
    spec = layout.materialize(choices)
    stem, first, *_ = spec.stem + spec.layers
    final, _, last = spec.head
    weights: dict[int, dict] = {
        0: {
            "kernel": supernet.stem[...][:, :, :, : stem.out_ch],
            "bn": _bn(supernet.stem_bn, stem.out_ch),
        },
        1: _block(supernet.first, first, 0),
    }
    slots = layout.slot_layers(spec, layout.depths(choices))
    index = 2
    for block, layer in zip(supernet.blocks, slots):
        if layer is not None:
            weights[index] = _block(block, layer, layout.kernels.index(layer.kernel))
            index += 1
    weights[index] = {
        "kernel": supernet.head[...][:, :, : final.in_ch, : final.out_ch],
        "bn": _bn(supernet.head_bn, final.out_ch),
    }
    weights[index + 2] = {"kernel": supernet.feature[...][None, None, : last.in_ch, : last.out_ch]}
    weights[index + 3] = {
        "kernel": supernet.classifier[...][: last.out_ch],
        "bias": supernet.classifier_bias[...],
    }
    model = SpecNet(spec, eps=supernet.bn_eps)
    state = nnx.state(model)
    nnx.replace_by_pure_dict(state, {"layers": {i: _as_arrays(w) for i, w in weights.items()}})
    nnx.update(model, state)
    return spec, model


def _as_arrays(tree: dict) -> dict:
    return {k: _as_arrays(v) if isinstance(v, dict) else jnp.asarray(v) for k, v in tree.items()}
