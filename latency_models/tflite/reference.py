"""A plain numpy forward pass of an ArchSpec with inference-form weights: the oracle the
emitted TFLite models are checked against. It follows the IR's semantics directly (it does not
share code with the lowering), with TensorFlow's SAME padding (extra padding at the bottom and
right for even totals) and average pooling that ignores padded cells, as TFLite does."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from latency_models.tflite.weights import Weights
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

# Each layer type's forward pass: (layer, input [N, H, W, C], its weights) -> output.
REFERENCE: LayerRegistry[Callable[[Layer, np.ndarray, dict[str, np.ndarray]], np.ndarray]] = LayerRegistry(
    "the numpy reference", __name__
)


def layer_forward(layer: Layer, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return REFERENCE.handler(layer)(layer, x, w)


def activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "relu6":
        return np.clip(x, 0, 6)
    if name == "hswish":
        return x * np.clip(x + 3, 0, 6) / 6
    if name == "swish":
        return x / (1 + np.exp(-x))
    raise ValueError(f"unknown activation {name!r}")


def _same_pad(x: np.ndarray, kernel: int, stride: int, value: float = 0.0) -> tuple[np.ndarray, int, int]:
    h, w = x.shape[1:3]
    ho, wo = -(-h // stride), -(-w // stride)
    pad_h = max((ho - 1) * stride + kernel - h, 0)
    pad_w = max((wo - 1) * stride + kernel - w, 0)
    padding = ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    return np.pad(x, padding, constant_values=value), ho, wo


def _windows(x: np.ndarray, kernel: int, stride: int, value: float = 0.0):
    """Yield (i, j, slice) for each kernel offset: the input cells that offset touches."""
    padded, ho, wo = _same_pad(x, kernel, stride, value)
    for i in range(kernel):
        for j in range(kernel):
            yield i, j, padded[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, groups: int = 1) -> np.ndarray:
    k = kernel.shape[0]
    cin_g, cout = kernel.shape[2], kernel.shape[3]
    cout_g = cout // groups
    out = None
    for i, j, window in _windows(x.astype(np.float64), k, stride):
        parts = [
            window[..., g * cin_g : (g + 1) * cin_g] @ kernel[i, j, :, g * cout_g : (g + 1) * cout_g]
            for g in range(groups)
        ]
        term = np.concatenate(parts, axis=-1)
        out = term if out is None else out + term
    return out + bias


def depthwise(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    out = None
    for i, j, window in _windows(x.astype(np.float64), kernel.shape[0], stride):
        term = window * kernel[i, j]
        out = term if out is None else out + term
    return out + bias


@REFERENCE.register("pool")
def pool(layer: Pool, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    if layer.kind == "max":
        return np.max(np.stack([window for _, _, window in _windows(x, layer.kernel, layer.stride, -np.inf)]), axis=0)
    values = np.stack([window for _, _, window in _windows(x, layer.kernel, layer.stride, np.nan)])
    return np.nanmean(values, axis=0)  # padded cells do not count


def squeeze_excite(y: np.ndarray, w: dict[str, np.ndarray], gate: str) -> np.ndarray:
    squeezed = y.mean(axis=(1, 2), keepdims=True)
    hidden = np.maximum(squeezed @ w["se_reduce_kernel"] + w["se_reduce_bias"], 0)
    logits = hidden @ w["se_expand_kernel"] + w["se_expand_bias"]
    return y * (np.clip(logits + 3, 0, 6) / 6 if gate == "hsigmoid" else 1 / (1 + np.exp(-logits)))


@REFERENCE.register("resblock")
def residual_block(layer: ResBlock, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """ResBlock as its docstring states it, written out per variant."""
    act, se = layer.activation, layer.se_ch > 0
    inp = activation(x * w["preact_scale"] + w["preact_shift"], act) if layer.preact else x
    if layer.bottleneck:
        y = activation(conv2d(inp, w["conv1_kernel"], w["conv1_bias"], 1), act)
        y = activation(conv2d(y, w["conv2_kernel"], w["conv2_bias"], layer.stride, layer.groups), act)
        if se and layer.se_site == "middle":
            y = squeeze_excite(y, w, layer.se_gate)
        y = conv2d(y, w["conv3_kernel"], w["conv3_bias"], 1)
    else:
        y = activation(conv2d(inp, w["conv1_kernel"], w["conv1_bias"], layer.stride), act)
        if se and layer.se_site == "middle":
            y = squeeze_excite(y, w, layer.se_gate)
        y = conv2d(y, w["conv2_kernel"], w["conv2_bias"], 1)
    if se and layer.se_site == "output":
        y = squeeze_excite(y, w, layer.se_gate)
    shortcut = conv2d(inp, w["shortcut_kernel"], w["shortcut_bias"], layer.stride) if layer.projects else x
    return y + shortcut if layer.preact else activation(y + shortcut, act)


@REFERENCE.register("conv")
def _conv_forward(layer: Conv, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return activation(conv2d(x, w["kernel"], w["bias"], layer.stride, layer.groups), layer.activation)


@REFERENCE.register("dwsep")
def _dwsep_forward(layer: DWSeparable, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    y = activation(depthwise(x, w["dw_kernel"], w["dw_bias"], layer.stride), layer.activation)
    return activation(conv2d(y, w["pw_kernel"], w["pw_bias"], 1), layer.activation)


@REFERENCE.register("mbconv")
def _mbconv_forward(layer: MBConv, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    y = x
    if layer.expand_conv:
        y = activation(conv2d(y, w["expand_kernel"], w["expand_bias"], 1, layer.groups), layer.activation)
    y = activation(depthwise(y, w["dw_kernel"], w["dw_bias"], layer.stride), layer.activation)
    if layer.se_ch:
        y = squeeze_excite(y, w, layer.se_gate)
    y = conv2d(y, w["project_kernel"], w["project_bias"], 1, layer.groups)
    return y + x if layer.has_residual else y


@REFERENCE.register("fused_mbconv")
def _fused_mbconv_forward(layer: FusedMBConv, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    # The stride sits in the kxk conv, or in the 1x1 projection with `project_stride`.
    kxk_stride, project_stride = (1, layer.stride) if layer.project_stride else (layer.stride, 1)
    y = activation(conv2d(x, w["expand_kernel"], w["expand_bias"], kxk_stride), layer.activation)
    if layer.se_ch:
        y = squeeze_excite(y, w, layer.se_gate)
    y = conv2d(y, w["project_kernel"], w["project_bias"], project_stride)
    return y + x if layer.has_residual else y


@REFERENCE.register("norm")
def _norm_forward(layer: Norm, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return activation(x * w["scale"] + w["shift"], layer.activation)


@REFERENCE.register("global_pool")
def _global_pool_forward(layer: GlobalPool, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return x.mean(axis=(1, 2), keepdims=True)


@REFERENCE.register("identity")
def _identity_forward(layer: Identity, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return x


@REFERENCE.register("dense")
def _dense_forward(layer: Dense, x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    return activation(x @ w["kernel"] + w["bias"], layer.activation)


def forward(spec: ArchSpec, weights: Weights, images: np.ndarray) -> np.ndarray:
    """images [N, H, W, C] float -> logits [N, num_classes] (float64)."""
    x = np.asarray(images, dtype=np.float64)
    for located in spec.shapes:
        x = layer_forward(located.layer, x, weights.get(located.path, {}))
    return x.reshape(x.shape[0], -1)
