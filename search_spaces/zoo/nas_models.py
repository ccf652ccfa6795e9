"""Architectures found by earlier NAS work, as ArchSpecs.

ProxylessNAS mobile / mobile_14 / cpu / gpu transcribe the released network configs
(mit-han-lab/proxylessnas, proxyless_nas/model_zoo: net.config per model; a test checks them
against those configs where data/latency-data/raw/proxylessnas/ holds a copy).
"""

from __future__ import annotations

from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, MBConv
from search_spaces.fbnet import IMAGENET_STRIDES, LAYER_WIDTHS, STEM_CH, op_layer
from search_spaces.proxyless import parse_op

# name -> (stem width, first-block width, [(stage width, first stride, ops per block)], mix width).
# An op is "k{kernel}_e{expansion}" or "zero" (a skipped block).
PROXYLESS = {
    "mobile": (
        32,
        16,
        [
            (32, 2, ("k5_e3", "k3_e3", "zero", "zero")),
            (40, 2, ("k7_e3", "k3_e3", "k5_e3", "k5_e3")),
            (80, 2, ("k7_e6", "k5_e3", "k5_e3", "k5_e3")),
            (96, 1, ("k5_e6", "k5_e3", "k5_e3", "k5_e3")),
            (192, 2, ("k7_e6", "k7_e6", "k7_e3", "k7_e3")),
            (320, 1, ("k7_e6",)),
        ],
        1280,
    ),
    "mobile_14": (
        48,
        24,
        [
            (40, 2, ("k5_e3", "k3_e3", "zero", "zero")),
            (56, 2, ("k7_e3", "k3_e3", "k5_e3", "k5_e3")),
            (112, 2, ("k7_e6", "k5_e3", "k5_e3", "k5_e3")),
            (136, 1, ("k5_e6", "k5_e3", "k5_e3", "k5_e3")),
            (256, 2, ("k7_e6", "k7_e6", "k7_e3", "k7_e3")),
            (448, 1, ("k7_e6",)),
        ],
        1792,
    ),
    "cpu": (
        40,
        24,
        [
            (32, 2, ("k3_e6", "k3_e3", "k3_e3", "k3_e3")),
            (48, 2, ("k3_e6", "k3_e3", "k3_e3", "k5_e3")),
            (88, 2, ("k3_e6", "zero", "zero", "k3_e3")),
            (104, 1, ("k5_e6", "k3_e3", "k3_e3", "k3_e3")),
            (216, 2, ("k5_e6", "k5_e3", "k5_e3", "k3_e3")),
            (360, 1, ("k5_e6",)),
        ],
        1432,
    ),
    "gpu": (
        40,
        24,
        [
            (32, 2, ("k5_e3", "zero", "zero", "zero")),
            (56, 2, ("k7_e3", "zero", "zero", "k3_e3")),
            (112, 2, ("k7_e6", "zero", "zero", "k5_e3")),
            (128, 1, ("k5_e6", "zero", "k3_e3", "k5_e3")),
            (256, 2, ("k7_e6", "k7_e6", "k7_e6", "k5_e6")),
            (432, 1, ("k7_e6",)),
        ],
        1728,
    ),
}


def proxylessnas(variant: str, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    stem_ch, first_ch, stages, mix_ch = PROXYLESS[variant]
    layers = [MBConv(stem_ch, first_ch, 3, 1, 1, stem_ch, activation="relu6")]
    channels = first_ch
    for width, stride, ops in stages:
        for i, op in enumerate(ops):
            if op == "zero":
                continue
            kernel, expansion = parse_op(op)
            mid = round(channels * expansion)
            layers.append(MBConv(channels, width, kernel, stride if i == 0 else 1, expansion, mid, activation="relu6"))
            channels = width
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, stem_ch, 3, 2, activation="relu6"),),
        layers=tuple(layers),
        head=(Conv(channels, mix_ch, 1, activation="relu6"), GlobalPool(mix_ch)),
        classifier=Dense(mix_ch, num_classes),
        name=f"proxylessnas_{variant}",
    )


# FBNet-A/B/C (Wu et al., CVPR 2019): the 22 per-layer ops, in the FBNet space's op names, of
# facebookresearch/mobile-vision, mobile_cv/arch/fbnet_v2/fbnet_modeldef_cls_fbnet.py. As there,
# e1 blocks have no expand conv and FBNet-A's head is 1504 wide (1984 for B and C); the FBNet
# search space (HW-NAS-Bench's definition) keeps the e1 conv.
FBNET_OPS = {
    "a": (
        "skip",
        "k3_e3",
        "k3_e1",
        "skip",
        "skip",
        "k5_e6",
        "k3_e3",
        "k5_e1",
        "k3_e3",
        "k5_e6",
        "k5_e3",
        "k5_e1_g2",
        "k5_e6",
        "k3_e6",
        "k5_e1_g2",
        "k5_e3",
        "k3_e1_g2",
        "k5_e6",
        "k5_e6",
        "k5_e3",
        "k5_e6",
        "k5_e6",
    ),
    "b": (
        "k3_e1",
        "k3_e6",
        "k5_e1",
        "k3_e1",
        "k3_e1",
        "k5_e6",
        "k5_e3",
        "k3_e6",
        "k5_e6",
        "k5_e6",
        "k5_e6",
        "skip",
        "k5_e3",
        "k5_e6",
        "k3_e1",
        "k5_e1",
        "k5_e3",
        "k5_e6",
        "k5_e1",
        "k5_e6",
        "k5_e6",
        "k3_e6",
    ),
    "c": (
        "k3_e1",
        "k3_e6",
        "skip",
        "k3_e1",
        "k3_e1",
        "k5_e6",
        "k5_e3",
        "k5_e6",
        "k3_e6",
        "k5_e6",
        "k5_e3",
        "k5_e6",
        "k5_e6",
        "k5_e6",
        "k5_e6",
        "k5_e6",
        "k5_e3",
        "k5_e6",
        "k5_e6",
        "k5_e6",
        "k5_e6",
        "k3_e6",
    ),
}


def fbnet(variant: str, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    layers, channels = [], STEM_CH
    for i, (op, width) in enumerate(zip(FBNET_OPS[variant], LAYER_WIDTHS)):
        layers.append(op_layer(op, channels, width, IMAGENET_STRIDES.get(i, 1), e1_expand_conv=False))
        channels = width
    head_ch = 1504 if variant == "a" else 1984
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, STEM_CH, 3, 2, activation="relu"),),
        layers=tuple(layers),
        head=(Conv(channels, head_ch, 1, activation="relu"), GlobalPool(head_ch)),
        classifier=Dense(head_ch, num_classes),
        name=f"fbnet_{variant}",
    )
