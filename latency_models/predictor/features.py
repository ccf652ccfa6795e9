"""Block features for the latency predictor, computed from the block signature alone.

Two views of a block:
- `basis`: work terms whose sum, each times a learned non-negative cost, is a physically
  meaningful latency (MACs by kind of op, activation bytes moved, number of ops, elementwise
  work). These make predictions extrapolate sensibly to blocks never measured.
- `descriptor`: log-scaled shapes and one-hot kinds, the input of a small correction network
  that captures what the linear costs miss (kernel-size effects, cache sizes, odd shapes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from latency_models.tables.signature import Block
from search_spaces.arch_spec import ACTIVATIONS, FusedMBConv, MBConv, ResBlock, layer_output_shape
from search_spaces.graph import Cost, Shape, layer_cost
from search_spaces.layer_registry import LayerRegistry

OPS = ("conv", "dwsep", "mbconv", "fused_mbconv", "resblock", "pool", "global_pool", "norm", "identity", "dense")
BASIS = (
    "ops",  # TFLite operators the block lowers to (per-op dispatch cost)
    "dense_macs",  # 1x1 convolutions and fully connected layers (M)
    "spatial_macs",  # kxk full convolutions, k > 1 (M)
    # kxk grouped convolutions that are not depthwise (ResNeXt, RegNet; M): a group of a few
    # channels reuses each input load far less than a full conv, so a MAC costs more.
    "grouped_macs",
    # What a grouped conv costs beyond its MACs, in MAC-equivalents (see _grouped_overhead):
    # groups of a few channels waste most of each tile of the kernels.
    "grouped_overhead_macs",
    # Depthwise MACs (M) by kernel size: XNNPACK and phone kernels have a tuned routine per size
    # (3x3 and 5x5), and 7x7 takes a slower generic path, so one price per MAC cannot fit all.
    # In int8, the 3x3 convs TFLite's fast 3x3 kernel refuses count as 5x5 (see _depthwise).
    "depthwise_macs_k3",
    "depthwise_macs_k5",
    "depthwise_macs_k7",
    "act_mbytes",  # activation bytes read and written by the block's ops (MB, fp32 width)
    "elementwise_m",  # elements through non-fused activations, SE scaling, residual adds (M)
    "weight_mbytes",  # weight bytes (MB)
)


# Channels per tile of the CPU conv kernels (XNNPACK's fp32 GEMM kernels on ARM64 are 8 output
# channels wide, its int8 ones 16); chosen by leave-one-family-out error on the Pixel 4 figures
# (docs/results.md#pixel-4-how-the-fp32-form-was-chosen).
CHANNEL_PACKING = {"fp32": 8, "int8": 16}


def _grouped_overhead(
    out_pixels: int, kernel: int, groups: int, width_in: int, width_out: int, precision: str
) -> float:
    """What a grouped conv of `groups` groups (`width_in` input and `width_out` output channels
    each) costs beyond its MACs, in MAC-equivalents.

    fp32 (XNNPACK): each group's input and output channels padded to the kernels' tile, so a group
    of 4 channels computes a whole 8x8 tile.

    int8: a cost per output element and filter tap whatever the group's width, counted as one
    tile's MACs (16). Padding does not fit it: on the Pixel 4, RegNet's 24-channel groups run no
    dearer per MAC than its 16-channel ones, which padding to 16 would make them. Measured
    against padding, and why the unit is 16: docs/results.md#pixel-4-the-int8-terms."""
    taps, packing = out_pixels * kernel**2 * groups, CHANNEL_PACKING[precision]
    if precision == "int8":
        return taps * width_out * packing
    padded_in, padded_out = (-(-width // packing) * packing for width in (width_in, width_out))
    return taps * (padded_in * padded_out - width_in * width_out)


def _depthwise(kernel: int, stride: int, in_shape: tuple[int, int, int], precision: str) -> str:
    """The work term of a depthwise conv's MACs. TFLite's int8 depthwise conv has one fast kernel,
    for 3x3 filters, and refuses it (Fast3x3FilterKernelSupported in tensorflow/lite/kernels/
    internal/optimized/depthwiseconv_3x3_filter_common.h) when the input depth is not a multiple
    of 8, or when a stride-2 conv's SAME padding starts at 0 (an even input side); the general
    kernel then runs, as for every 5x5 filter, so those MACs take the 5x5 price (what it changed
    on the Pixel 4 int8 figures: docs/results.md#pixel-4-the-int8-terms). fp32 runs XNNPACK,
    which has no such split."""
    h, w, channels = in_shape
    if kernel <= 3:
        fast = channels % 8 == 0 and (stride == 1 or (h % 2 and w % 2))
        return "depthwise_macs_k3" if precision != "int8" or fast else "depthwise_macs_k5"
    return "depthwise_macs_k5" if kernel <= 5 else "depthwise_macs_k7"


# Each layer type's work terms: (block, output shape, MACs and params, 1.0 when the activation
# is not fused, the terms to fill) -> None. Weight bytes are filled for every type before.
WORK_TERMS: LayerRegistry[Callable[[Block, Shape, Cost, float, dict[str, float]], None]] = LayerRegistry(
    "the latency predictor's work terms", __name__
)


def _work(block: Block) -> dict[str, float]:
    out_shape = layer_output_shape(block.layer, block.in_shape)
    out = dict.fromkeys(BASIS, 0.0)
    cost = layer_cost(block.layer, block.in_shape, out_shape)
    out["weight_mbytes"] = cost.params * 4 / 1e6
    unfused = 1.0 if getattr(block.layer, "activation", "none") in ("hswish", "swish") else 0.0
    WORK_TERMS.handler(block.layer)(block, out_shape, cost, unfused, out)
    return out


@WORK_TERMS.register("conv")
def _conv_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    layer, (h, w, c), (ho, wo, co) = block.layer, block.in_shape, out_shape
    kind = _conv_kind(layer.kernel, layer.groups, layer.stride, block.in_shape, block.precision)
    out[kind] = cost.macs / 1e6
    if kind == "grouped_macs":
        groups = layer.groups
        overhead = _grouped_overhead(ho * wo, layer.kernel, groups, c // groups, co // groups, block.precision)
        out["grouped_overhead_macs"] = overhead / 1e6
    out["ops"] = 1 + unfused
    out["act_mbytes"] = (h * w * c + ho * wo * co) * 4 / 1e6
    out["elementwise_m"] = unfused * ho * wo * co / 1e6


@WORK_TERMS.register("dwsep")
def _dwsep_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    layer, (h, w, c), (ho, wo, co) = block.layer, block.in_shape, out_shape
    out[_depthwise(layer.kernel, layer.stride, block.in_shape, block.precision)] = ho * wo * layer.kernel**2 * c / 1e6
    out["dense_macs"] = ho * wo * c * co / 1e6
    out["ops"] = 2 * (1 + unfused)
    out["act_mbytes"] = (h * w * c + 3 * ho * wo * c + ho * wo * co) * 4 / 1e6
    out["elementwise_m"] = unfused * (ho * wo * c + ho * wo * co) / 1e6


@WORK_TERMS.register("mbconv")
def _mbconv_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    layer, (h, w, c), (ho, wo, co) = block.layer, block.in_shape, out_shape
    size_in, size_out = h * w * c, ho * wo * co
    mid_in, mid_out = h * w * layer.mid_ch, ho * wo * layer.mid_ch
    depthwise = mid_out * layer.kernel**2 / 1e6
    out[_depthwise(layer.kernel, layer.stride, (h, w, layer.mid_ch), block.precision)] = depthwise
    out["dense_macs"] = (cost.macs / 1e6) - depthwise
    ops, moved, elementwise = 2, size_in + mid_out + mid_out + size_out, 0.0
    if layer.expand_conv:
        ops += 1 + unfused
        moved += size_in + 2 * mid_in
        elementwise += unfused * mid_in
    ops += unfused
    elementwise += unfused * mid_out
    _gate_and_shortcut(layer, mid_out, size_out, ops, moved, elementwise, out)


@WORK_TERMS.register("fused_mbconv")
def _fused_mbconv_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    layer, (h, w, c), (ho, wo, co) = block.layer, block.in_shape, out_shape
    size_in, size_out = h * w * c, ho * wo * co
    mid_out = (h * w if layer.project_stride else ho * wo) * layer.mid_ch
    spatial = mid_out * layer.kernel**2 * c / 1e6
    out["spatial_macs"] = spatial
    out["dense_macs"] = cost.macs / 1e6 - spatial
    ops, moved, elementwise = 2 + unfused, size_in + 3 * mid_out + size_out, unfused * mid_out
    _gate_and_shortcut(layer, mid_out, size_out, ops, moved, elementwise, out)


@WORK_TERMS.register("norm")
def _norm_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    # A per-channel multiply and add (the activation fused into the add, or one op more).
    h, w, c = block.in_shape
    out["ops"] = 2 + unfused
    out["act_mbytes"] = 3 * h * w * c * 4 / 1e6
    out["elementwise_m"] = (2 + unfused) * h * w * c / 1e6


@WORK_TERMS.register("pool")
def _pool_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    layer = block.layer
    _pooling_work(block.in_shape, out_shape, layer.kernel**2 / layer.stride**2, out)


@WORK_TERMS.register("global_pool")
def _global_pool_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    _pooling_work(block.in_shape, out_shape, 1, out)


def _pooling_work(in_shape: Shape, out_shape: Shape, reads_per_input: float, out: dict[str, float]) -> None:
    """One op; each input element read `reads_per_input` times (a window's overlap)."""
    (h, w, c), (ho, wo, co) = in_shape, out_shape
    size_in = h * w * c
    out["ops"] = 1
    out["act_mbytes"] = (size_in + ho * wo * co) * 4 / 1e6
    out["elementwise_m"] = size_in * reads_per_input / 1e6


@WORK_TERMS.register("identity")
def _identity_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    # Priced as a copy: measured tables time a skip as one (HW-NAS-Bench's Skip op).
    (h, w, c), (ho, wo, co) = block.in_shape, out_shape
    out["ops"] = 1
    out["act_mbytes"] = (h * w * c + ho * wo * co) * 4 / 1e6


@WORK_TERMS.register("dense")
def _dense_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    (h, w, c), (ho, wo, co) = block.in_shape, out_shape
    out["dense_macs"] = cost.macs / 1e6
    out["ops"] = 2 + unfused  # reshape + fully connected
    out["act_mbytes"] = (h * w * c + ho * wo * co) * 4 / 1e6


def _gate_and_shortcut(
    layer: MBConv | FusedMBConv, gated: int, size_out: int, ops: float, moved: float, elementwise: float, out: dict
) -> None:
    """An inverted residual block's work terms: its body's (`ops`, elements `moved` and
    `elementwise`) plus the squeeze-excite on its `gated` expanded elements and the residual add."""
    if layer.se_ch:
        ops += 5
        moved += 3 * gated
        elementwise += gated
    if layer.has_residual:
        ops += 1
        moved += 3 * size_out
        elementwise += size_out
    out["ops"] = ops
    out["act_mbytes"] = moved * 4 / 1e6
    out["elementwise_m"] = elementwise / 1e6


def _conv_kind(kernel: int, groups: int, stride: int, in_shape: tuple[int, int, int], precision: str) -> str:
    """The work term a conv's MACs count under. A kxk conv with one group per channel is a
    depthwise conv (TFLite runs it as DEPTHWISE_CONV_2D, e.g. pytorchcv's MobileNet(B) writes
    its depthwise convs as grouped convs)."""
    if kernel == 1:
        return "dense_macs"
    if groups == 1:
        return "spatial_macs"
    return _depthwise(kernel, stride, in_shape, precision) if groups == in_shape[2] else "grouped_macs"


@WORK_TERMS.register("resblock")
def _residual_work(block: Block, out_shape: Shape, cost: Cost, unfused: float, out: dict[str, float]) -> None:
    """The work of a residual block, conv by conv (see ResBlock for the order)."""
    layer, precision = block.layer, block.precision
    (h, w, c), (ho, wo, co) = block.in_shape, out_shape
    mid = layer.mid_ch
    convs = []  # (input elements, output elements, MACs, kind) of each conv
    if layer.bottleneck:
        convs.append((h * w * c, h * w * mid, h * w * c * mid, "dense_macs"))
        kxk = ho * wo * mid * layer.kernel**2 * (mid // layer.groups)
        kind = _conv_kind(layer.kernel, layer.groups, layer.stride, (h, w, mid), precision)
        convs.append((h * w * mid, ho * wo * mid, kxk, kind))
        if layer.groups > 1:
            width = mid // layer.groups
            overhead = _grouped_overhead(ho * wo, layer.kernel, layer.groups, width, width, precision)
            out["grouped_overhead_macs"] = overhead / 1e6
        convs.append((ho * wo * mid, ho * wo * co, ho * wo * mid * co, "dense_macs"))
    else:
        convs.append((h * w * c, ho * wo * mid, ho * wo * c * mid * layer.kernel**2, "spatial_macs"))
        convs.append((ho * wo * mid, ho * wo * co, ho * wo * mid * co * layer.kernel**2, "spatial_macs"))
    if layer.projects:
        convs.append((h * w * c, ho * wo * co, ho * wo * c * co, "dense_macs"))
    for _, _, macs, kind in convs:
        out[kind] += macs / 1e6
    # Inner convs' activations and the post-activation after the add fuse into the op before
    # them unless they are h-swish or swish.
    inner = len(convs) - 1 - layer.projects
    ops = len(convs) + 1 + unfused * inner  # the convs, the add
    moved = sum(i + o for i, o, _, _ in convs) + 3 * ho * wo * co
    elementwise = ho * wo * co + unfused * sum(o for _, o, _, _ in convs[:inner])
    if layer.se_ch:
        gated = ho * wo * layer.se_width
        out["dense_macs"] += 2 * layer.se_width * layer.se_ch / 1e6
        ops += 5
        moved += 3 * gated
        elementwise += gated
    if layer.preact:
        ops += 2 + unfused  # a per-channel multiply and add on the input
        moved += 3 * h * w * c
        elementwise += (2 + unfused) * h * w * c
    else:
        ops += unfused
        elementwise += unfused * ho * wo * co
    out["ops"] = ops
    out["act_mbytes"] = moved * 4 / 1e6
    out["elementwise_m"] = elementwise / 1e6


def basis(block: Block) -> np.ndarray:
    work = _work(block)
    return np.array([work[name] for name in BASIS], dtype=np.float32)


def descriptor(block: Block) -> np.ndarray:
    layer, (h, w, c) = block.layer, block.in_shape
    ho, wo, co = layer_output_shape(layer, block.in_shape)
    kernel = getattr(layer, "kernel", 1)
    mid = getattr(layer, "mid_ch", c)
    values = [
        math.log2(h * w),
        math.log2(c),
        math.log2(co),
        math.log2(mid),
        math.log2(max(ho * wo, 1)),
        kernel / 7,
        getattr(layer, "stride", 1) - 1,
        getattr(layer, "expansion", 1.0) / 6,
        1.0 if getattr(layer, "se_ch", 0) else 0.0,
        1.0 if getattr(layer, "groups", 1) > 1 else 0.0,
        1.0 if getattr(layer, "has_residual", False) or isinstance(layer, ResBlock) else 0.0,
        1.0 if block.precision == "int8" else 0.0,
    ]
    values += [1.0 if layer.op == op else 0.0 for op in OPS]
    values += [1.0 if getattr(layer, "activation", "none") == a else 0.0 for a in ACTIVATIONS]
    return np.array(values, dtype=np.float32)


DESCRIPTOR_SIZE = 12 + len(OPS) + len(ACTIVATIONS)
