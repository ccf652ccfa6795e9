"""MobileNetV1, V2 and V3 as ArchSpecs, following the TensorFlow-Slim reference definitions
(tensorflow/models, research/slim/nets/mobilenet_v1.py and nets/mobilenet/mobilenet_v2.py,
mobilenet_v3.py) and the papers (Howard et al. 2017; Sandler et al. 2018; Howard et al. 2019).
"""

from __future__ import annotations

from search_spaces.arch_spec import ArchSpec, Conv, Dense, DWSeparable, GlobalPool, MBConv
from search_spaces.space import make_divisible


def mobilenet_v1(alpha: float, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """Slim's rule: every width is max(int(width * alpha), 8)."""

    def width(c: int) -> int:
        return max(int(c * alpha), 8)

    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    channels = width(32)
    layers = []
    for out, stride in plan:
        layers.append(DWSeparable(channels, width(out), 3, stride, activation="relu6"))
        channels = width(out)
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, width(32), 3, 2, activation="relu6"),),
        layers=tuple(layers),
        head=(GlobalPool(channels),),
        classifier=Dense(channels, num_classes),
        name=f"mobilenet_v1_{alpha}",
    )


# MobileNetV2 inverted residual settings: expansion t, channels c, repeats n, first stride s.
V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def mobilenet_v2(alpha: float, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """Widths are make_divisible(c * alpha, 8); the expanded width is make_divisible(in * t, 8);
    the last 1x1 conv keeps 1280 channels below alpha 1 (Slim's finegrain_classification_mode)."""
    channels = make_divisible(32 * alpha)
    stem = (Conv(3, channels, 3, 2, activation="relu6"),)
    layers = []
    for t, c, n, s in V2_SETTINGS:
        out = make_divisible(c * alpha)
        for i in range(n):
            mid = channels if t == 1 else make_divisible(channels * t)
            layers.append(MBConv(channels, out, 3, s if i == 0 else 1, t, mid, activation="relu6"))
            channels = out
    last = make_divisible(1280 * max(alpha, 1.0))
    return ArchSpec(
        resolution=resolution,
        stem=stem,
        layers=tuple(layers),
        head=(Conv(channels, last, 1, activation="relu6"), GlobalPool(last)),
        classifier=Dense(last, num_classes),
        name=f"mobilenet_v2_{alpha}",
    )


# MobileNetV3 bneck rows (paper Tables 1 and 2): kernel, expanded width, out, SE, activation, stride.
V3_LARGE = (
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
)
V3_SMALL = (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
)


def mobilenet_v3(size: str, alpha: float, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """Slim's rules: output widths are make_divisible(c * alpha, 8); a block's expanded width is
    its scaled input times the paper's ratio (expanded / input), made divisible by 8; the SE
    squeeze is make_divisible(expanded / 4, 8) with a hard-sigmoid gate; the last 1x1 conv
    (1280 or 1024, biased, no BN) is not scaled below alpha 1."""
    rows, last_conv, pre_pool = (V3_LARGE, 1280, 960) if size == "large" else (V3_SMALL, 1024, 576)
    channels, base_in = make_divisible(16 * alpha), 16
    stem = (Conv(3, channels, 3, 2, activation="hswish"),)
    layers = []
    for kernel, expanded, base_out, se, act, stride in rows:
        ratio = expanded / base_in
        mid = channels if ratio == 1 else make_divisible(channels * ratio)
        out = make_divisible(base_out * alpha)
        expansion = mid / channels
        layers.append(
            MBConv(
                channels,
                out,
                kernel,
                stride,
                expansion,
                mid,
                se_ch=make_divisible(mid / 4) if se else 0,
                activation=act,
            )
        )
        channels, base_in = out, base_out
    wide = make_divisible(pre_pool * alpha)
    last = make_divisible(last_conv * max(alpha, 1.0))
    head = (
        Conv(channels, wide, 1, activation="hswish"),
        GlobalPool(wide),
        Conv(wide, last, 1, activation="hswish", batch_norm=False, bias=True),
    )
    return ArchSpec(
        resolution=resolution,
        stem=stem,
        layers=tuple(layers),
        head=head,
        classifier=Dense(last, num_classes),
        name=f"mobilenet_v3_{size}_{alpha}",
    )
