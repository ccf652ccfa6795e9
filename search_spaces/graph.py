"""The ArchSpec as a networkx graph, and the MACs / parameter counts read off that graph.

One node per IR layer (a whole MBConv is one node, as latency tables see it), in execution
order, each carrying its op type, its attributes, its input/output NHWC shapes (batch
omitted), its multiply-accumulates and its parameter count. Edges carry the tensor shape
that flows along them.

Counting convention (the one torchvision and most papers use): MACs count the multiply-adds
of convolutions and fully connected layers only (not BN, activations, pooling, the SE
channel-wise product or residual adds); parameters count weights, biases and the trainable
BN scale and offset (2 per channel), not BN running statistics.

Layer types are told apart by their `op` name (`LAYER_COSTS`, a per-layer-type registry), so
this module needs arch_spec only for type hints and arch_spec can import it for
`ArchSpec.to_graph`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import networkx as nx

from search_spaces.layer_registry import LayerRegistry

if TYPE_CHECKING:
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

Shape = tuple[int, int, int]


@dataclasses.dataclass(frozen=True)
class Cost:
    macs: int
    params: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.params + other.params)


def _conv(h: int, w: int, cin: int, cout: int, k: int, groups: int = 1, bn: bool = True, bias: bool = False) -> Cost:
    weights = k * k * (cin // groups) * cout
    return Cost(h * w * weights, weights + (2 * cout if bn else 0) + (cout if bias else 0))


def _se(channels: int, squeeze: int) -> Cost:
    """Squeeze and excite: two biased 1x1 convs on the pooled vector."""
    reduce = _conv(1, 1, channels, squeeze, 1, bn=False, bias=True)
    return reduce + _conv(1, 1, squeeze, channels, 1, bn=False, bias=True)


# Each layer type's MACs and parameters: (layer, in_shape, out_shape) -> Cost.
LAYER_COSTS: LayerRegistry[Callable[[Layer, Shape, Shape], Cost]] = LayerRegistry("MACs and params", __name__)


def layer_cost(layer: Layer, in_shape: Shape, out_shape: Shape) -> Cost:
    return LAYER_COSTS.handler(layer)(layer, in_shape, out_shape)


@LAYER_COSTS.register("conv")
def _conv_layer_cost(layer: Conv, in_shape: Shape, out_shape: Shape) -> Cost:
    ho, wo, _ = out_shape
    return _conv(ho, wo, layer.in_ch, layer.out_ch, layer.kernel, layer.groups, layer.batch_norm, layer.bias)


@LAYER_COSTS.register("dwsep")
def _dwsep_cost(layer: DWSeparable, in_shape: Shape, out_shape: Shape) -> Cost:
    ho, wo, _ = out_shape
    depthwise = _conv(ho, wo, layer.in_ch, layer.in_ch, layer.kernel, groups=layer.in_ch)
    return depthwise + _conv(ho, wo, layer.in_ch, layer.out_ch, 1)


@LAYER_COSTS.register("mbconv")
def _mbconv_cost(layer: MBConv, in_shape: Shape, out_shape: Shape) -> Cost:
    (h, w, _), (ho, wo, _) = in_shape, out_shape
    cost = Cost(0, 0)
    if layer.expand_conv:
        cost += _conv(h, w, layer.in_ch, layer.mid_ch, 1, layer.groups)
    cost += _conv(ho, wo, layer.mid_ch, layer.mid_ch, layer.kernel, groups=layer.mid_ch)
    if layer.se_ch:
        cost += _se(layer.mid_ch, layer.se_ch)
    return cost + _conv(ho, wo, layer.mid_ch, layer.out_ch, 1, layer.groups)


@LAYER_COSTS.register("fused_mbconv")
def _fused_mbconv_cost(layer: FusedMBConv, in_shape: Shape, out_shape: Shape) -> Cost:
    (h, w, _), (ho, wo, _) = in_shape, out_shape
    mh, mw = (h, w) if layer.project_stride else (ho, wo)
    cost = _conv(mh, mw, layer.in_ch, layer.mid_ch, layer.kernel)
    if layer.se_ch:
        cost += _se(layer.mid_ch, layer.se_ch)
    return cost + _conv(ho, wo, layer.mid_ch, layer.out_ch, 1)


@LAYER_COSTS.register("resblock")
def _resblock_cost(layer: ResBlock, in_shape: Shape, out_shape: Shape) -> Cost:
    # Post-activation: a batch norm after every conv. Pre-activation: one before every conv
    # instead, which the input's (in_ch wide) and the mid_ch-wide ones after each inner conv
    # are; the last conv and the projection then have none.
    (h, w, _), (ho, wo, _) = in_shape, out_shape
    k, post = layer.kernel, not layer.preact
    if layer.bottleneck:
        cost = _conv(h, w, layer.in_ch, layer.mid_ch, 1)
        cost += _conv(ho, wo, layer.mid_ch, layer.mid_ch, k, layer.groups)
        cost += _conv(ho, wo, layer.mid_ch, layer.out_ch, 1, bn=post)
    else:
        cost = _conv(ho, wo, layer.in_ch, layer.mid_ch, k) + _conv(ho, wo, layer.mid_ch, layer.out_ch, k, bn=post)
    if layer.se_ch:
        cost += _se(layer.se_width, layer.se_ch)
    if layer.projects:
        cost += _conv(ho, wo, layer.in_ch, layer.out_ch, 1, bn=post)
    if layer.preact:
        cost += Cost(0, 2 * layer.in_ch)
    return cost


@LAYER_COSTS.register("norm")
def _norm_cost(layer: Norm, in_shape: Shape, out_shape: Shape) -> Cost:
    return Cost(0, 2 * layer.channels)


@LAYER_COSTS.register("dense")
def _dense_cost(layer: Dense, in_shape: Shape, out_shape: Shape) -> Cost:
    return _conv(1, 1, layer.in_ch, layer.out_ch, 1, bn=False, bias=layer.bias)


@LAYER_COSTS.register("pool", "global_pool", "identity")
def _no_cost(layer: Pool | GlobalPool | Identity, in_shape: Shape, out_shape: Shape) -> Cost:
    return Cost(0, 0)


# What a graph node records beyond the layer's fields: the derived properties its type has.
DERIVED_ATTRIBUTES = {
    "mbconv": {"residual": "has_residual"},
    "fused_mbconv": {"residual": "has_residual"},
    "resblock": {"projection": "projects"},
}


def spec_to_graph(spec: ArchSpec) -> nx.DiGraph:
    graph = nx.DiGraph(name=spec.name, resolution=spec.resolution, content_hash=spec.content_hash())
    input_shape = (spec.resolution, spec.resolution, spec.in_channels)
    graph.add_node("input", op="input", attrs={}, in_shape=input_shape, out_shape=input_shape, macs=0, params=0)
    previous = "input"
    for order, located in enumerate(spec.shapes):
        layer = located.layer
        cost = layer_cost(layer, located.in_shape, located.out_shape)
        attrs = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
        for name, derived in DERIVED_ATTRIBUTES.get(layer.op, {}).items():
            attrs[name] = getattr(layer, derived)
        graph.add_node(
            located.path,
            op=layer.op,
            attrs=attrs,
            order=order,
            in_shape=located.in_shape,
            out_shape=located.out_shape,
            macs=cost.macs,
            params=cost.params,
        )
        graph.add_edge(previous, located.path, shape=located.in_shape)
        previous = located.path
    return graph


def graph_cost(graph: nx.DiGraph) -> Cost:
    macs = sum(data["macs"] for _, data in graph.nodes(data=True))
    params = sum(data["params"] for _, data in graph.nodes(data=True))
    return Cost(macs, params)


def count_macs(spec: ArchSpec) -> int:
    return graph_cost(spec_to_graph(spec)).macs


def count_params(spec: ArchSpec) -> int:
    return graph_cost(spec_to_graph(spec)).params
