"""Lowering: IR layers to TFLite builtin ops.

conv        CONV_2D (ReLU/ReLU6 fused; h-swish a HARD_SWISH op; swish LOGISTIC + MUL); DEPTHWISE_CONV_2D
            when it has one group per channel
dwsep       DEPTHWISE_CONV_2D, CONV_2D
mbconv      [CONV_2D expand] DEPTHWISE_CONV_2D [SE: MEAN, CONV_2D, CONV_2D, gate, MUL]
            CONV_2D project [ADD shortcut]; hard-sigmoid gate = relu6(z + 3) / 6 with the +3
            folded into the SE conv's bias; sigmoid gate = LOGISTIC
fused_mbconv  CONV_2D kxk [SE as mbconv's] CONV_2D project [ADD shortcut]
resblock    [preact: MUL scale, ADD shift (ReLU/ReLU6 fused)] CONV_2D per conv (inner ones'
            activations fused as conv's) [SE as mbconv's, on the last conv's or the kxk conv's
            output] [CONV_2D 1x1 projection] ADD (post-activation ReLU/ReLU6 fused into it)
norm        MUL scale, ADD shift (ReLU/ReLU6 fused into the ADD)
pool        MAX_POOL_2D / AVERAGE_POOL_2D;  global_pool  MEAN over H, W
identity    nothing (a lone identity block is a RESHAPE, so it has one op to time)
dense       RESHAPE to [N, C], FULLY_CONNECTED
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latency_models.tables.signature import Block
from latency_models.tflite.graph import Graph
from latency_models.tflite.weights import Weights, random_layer_weights
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

# Each layer type's TFLite ops: (graph, layer, input tensor, its weights, name) -> output tensor.
LOWERING: LayerRegistry[Callable[[Graph, Layer, int, dict[str, np.ndarray], str], int]] = LayerRegistry(
    "the TFLite lowering", __name__
)


def lower_layer(g: Graph, layer: Layer, x: int, w: dict[str, np.ndarray], name: str) -> int:
    return LOWERING.handler(layer)(g, layer, x, w, name)


@LOWERING.register("conv")
def _lower_conv(g: Graph, layer: Conv, x: int, w: dict[str, np.ndarray], name: str) -> int:
    if layer.groups > 1 and layer.groups == layer.in_ch == layer.out_ch:
        # One group per channel is a depthwise conv, and TFLite's converter emits it as one.
        return g.depthwise(x, w["kernel"][:, :, 0, :], w["bias"], layer.stride, layer.activation, name)
    return g.conv2d(x, w["kernel"], w["bias"], layer.stride, layer.activation, name)


@LOWERING.register("dwsep")
def _lower_dwsep(g: Graph, layer: DWSeparable, x: int, w: dict[str, np.ndarray], name: str) -> int:
    y = g.depthwise(x, w["dw_kernel"], w["dw_bias"], layer.stride, layer.activation, f"{name}/dw")
    return g.conv2d(y, w["pw_kernel"], w["pw_bias"], 1, layer.activation, f"{name}/pw")


@LOWERING.register("mbconv")
def _lower_mbconv(g: Graph, layer: MBConv, x: int, w: dict[str, np.ndarray], name: str) -> int:
    y = x
    if layer.expand_conv:
        y = g.conv2d(y, w["expand_kernel"], w["expand_bias"], 1, layer.activation, f"{name}/expand")
    y = g.depthwise(y, w["dw_kernel"], w["dw_bias"], layer.stride, layer.activation, f"{name}/dw")
    if layer.se_ch:
        y = _squeeze_excite(g, layer.se_gate, y, w, f"{name}/se")
    y = g.conv2d(y, w["project_kernel"], w["project_bias"], 1, "none", f"{name}/project")
    return g.add(y, x, f"{name}/add") if layer.has_residual else y


@LOWERING.register("fused_mbconv")
def _lower_fused_mbconv(g: Graph, layer: FusedMBConv, x: int, w: dict[str, np.ndarray], name: str) -> int:
    project_stride = layer.stride if layer.project_stride else 1
    y = g.conv2d(x, w["expand_kernel"], w["expand_bias"], layer.kxk_stride, layer.activation, f"{name}/expand")
    if layer.se_ch:
        y = _squeeze_excite(g, layer.se_gate, y, w, f"{name}/se")
    y = g.conv2d(y, w["project_kernel"], w["project_bias"], project_stride, "none", f"{name}/project")
    return g.add(y, x, f"{name}/add") if layer.has_residual else y


@LOWERING.register("norm")
def _lower_norm(g: Graph, layer: Norm, x: int, w: dict[str, np.ndarray], name: str) -> int:
    return g.channel_affine(x, w["scale"], w["shift"], layer.activation, name)


@LOWERING.register("pool")
def _lower_pool(g: Graph, layer: Pool, x: int, w: dict[str, np.ndarray], name: str) -> int:
    return g.pool(x, layer.kind, layer.kernel, layer.stride, name)


@LOWERING.register("global_pool")
def _lower_global_pool(g: Graph, layer: GlobalPool, x: int, w: dict[str, np.ndarray], name: str) -> int:
    return g.mean_hw(x, name)


@LOWERING.register("identity")
def _lower_identity(g: Graph, layer: Identity, x: int, w: dict[str, np.ndarray], name: str) -> int:
    return x


@LOWERING.register("dense")
def _lower_dense(g: Graph, layer: Dense, x: int, w: dict[str, np.ndarray], name: str) -> int:
    n = g.shape(x)[0]
    flat = g.reshape(x, (n, layer.in_ch), f"{name}/flatten")
    return g.fully_connected(flat, w["kernel"], w["bias"], layer.activation, name)


@LOWERING.register("resblock")
def _residual_block(g: Graph, layer: ResBlock, x: int, w: dict[str, np.ndarray], name: str) -> int:
    body_in = x
    if layer.preact:
        body_in = g.channel_affine(x, w["preact_scale"], w["preact_shift"], layer.activation, f"{name}/preact")
    # The stride sits in the first kxk conv (grouping is in the kernels' shapes). The SE's
    # "middle" site is that conv's output: a bottleneck's second conv, a basic block's first
    # (its only mid_ch-wide output).
    strides = [1, layer.stride, 1] if layer.bottleneck else [layer.stride, 1]
    se_after = len(strides) if layer.se_site == "output" else (2 if layer.bottleneck else 1)
    y = body_in
    for i, stride in enumerate(strides, 1):
        act = layer.activation if i < len(strides) else "none"
        y = g.conv2d(y, w[f"conv{i}_kernel"], w[f"conv{i}_bias"], stride, act, f"{name}/conv{i}")
        if layer.se_ch and i == se_after:
            y = _squeeze_excite(g, layer.se_gate, y, w, f"{name}/se")
    shortcut = x
    if layer.projects:
        shortcut = g.conv2d(body_in, w["shortcut_kernel"], w["shortcut_bias"], layer.stride, "none", f"{name}/shortcut")
    return g.add(y, shortcut, f"{name}/add", "none" if layer.preact else layer.activation)


def _squeeze_excite(g: Graph, gate_kind: str, y: int, w: dict[str, np.ndarray], name: str) -> int:
    pooled = g.mean_hw(y, f"{name}/pool")
    reduce_kernel = w["se_reduce_kernel"][np.newaxis, np.newaxis]
    hidden = g.conv2d(pooled, reduce_kernel, w["se_reduce_bias"], 1, "relu", f"{name}/reduce")
    expand_kernel = w["se_expand_kernel"][np.newaxis, np.newaxis]
    if gate_kind == "hsigmoid":
        shifted = g.conv2d(hidden, expand_kernel, w["se_expand_bias"] + 3.0, 1, "relu6", f"{name}/expand")
        gate = g.scale(shifted, 1.0 / 6.0, f"{name}/gate")
    else:
        logits = g.conv2d(hidden, expand_kernel, w["se_expand_bias"], 1, "none", f"{name}/expand")
        gate = g.logistic(logits, f"{name}/gate")
    return g.mul(y, gate, f"{name}/scale")


def lower_spec(spec: ArchSpec, weights: Weights, batch: int = 1) -> Graph:
    g = Graph()
    x = g.input((batch, spec.resolution, spec.resolution, spec.in_channels))
    for located in spec.shapes:
        x = lower_layer(g, located.layer, x, weights.get(located.path, {}), located.path)
    g.output(x)
    return g


def lower_block(block: Block, seed: int = 0) -> Graph:
    """One block on its own, with random weights: what a latency table row measures."""
    g = Graph()
    x = g.input((1, *block.in_shape))
    if isinstance(block.layer, Identity):
        y = g.reshape(x, (1, *block.in_shape), "identity")
    else:
        y = lower_layer(g, block.layer, x, random_layer_weights(block.layer, np.random.default_rng(seed)), "block")
    g.output(y)
    return g
