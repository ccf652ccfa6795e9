"""The plain per-spec model (nas/supernet/model.py) on the layer kinds only published networks use:
MobileNetV1's depthwise-separable block and FBNet's grouped 1x1 convolutions."""

import dataclasses

import jax
import numpy as np

from nas.supernet import ops
from nas.supernet.layers import TRAIN
from nas.supernet.model import DWSeparableLayer, MBConvLayer
from search_spaces.arch_spec import DWSeparable, MBConv


def block_diagonal(kernel: np.ndarray, groups: int) -> np.ndarray:
    """A grouped 1x1 kernel [1, 1, in/g, out] as the dense kernel [1, 1, in, out] it stands for."""
    _, _, per_in, out = kernel.shape
    per_out = out // groups
    dense = np.zeros((1, 1, per_in * groups, out), np.float32)
    for g in range(groups):
        dense[:, :, g * per_in : (g + 1) * per_in, g * per_out : (g + 1) * per_out] = kernel[
            :, :, :, g * per_out : (g + 1) * per_out
        ]
    return dense


def test_grouped_mbconv_equals_its_block_diagonal_dense_form():
    grouped = MBConv(8, 8, kernel=3, stride=1, expansion=3, mid_ch=24, groups=2)
    g2 = MBConvLayer(grouped, 1e-5, np.random.default_rng(0))
    dense = MBConvLayer(dataclasses.replace(grouped, groups=1), 1e-5, np.random.default_rng(1))
    assert g2.expand.shape == (1, 1, 4, 24) and g2.project.shape == (1, 1, 12, 8)
    dense.expand[...] = block_diagonal(np.asarray(g2.expand[...]), 2)
    dense.project[...] = block_diagonal(np.asarray(g2.project[...]), 2)
    dense.dw[...] = g2.dw[...]
    for bn in ("expand_bn", "dw_bn", "project_bn"):  # the grouped block's project BN starts at zero
        getattr(dense, bn).scale[...] = np.linspace(0.5, 1.5, getattr(g2, bn).scale.shape[0], dtype=np.float32)
        getattr(g2, bn).scale[...] = getattr(dense, bn).scale[...]
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 8))
    np.testing.assert_allclose(g2(x, TRAIN, "slices"), dense(x, TRAIN, "slices"), atol=1e-5)
    assert not np.allclose(g2(x, TRAIN, "slices"), x)  # the block does something


def test_depthwise_separable_block_is_depthwise_then_pointwise():
    layer = DWSeparableLayer(DWSeparable(4, 6, kernel=3, stride=2), 1e-5, np.random.default_rng(0))
    x = jax.random.normal(jax.random.key(1), (2, 7, 7, 4))
    y = layer(x, TRAIN, "slices")
    assert y.shape == (2, 4, 4, 6)

    def bn_relu(v):
        mean, var = v.mean((0, 1, 2)), v.var((0, 1, 2))
        return np.maximum((v - mean) / np.sqrt(var + 1e-5), 0.0)

    depthwise = bn_relu(np.asarray(ops.depthwise_conv(x, layer.dw[...], 2, "grouped")))
    expected = bn_relu(np.einsum("nhwc,cd->nhwd", depthwise, np.asarray(layer.pw[0, 0])))
    np.testing.assert_allclose(y, expected, atol=1e-4)
