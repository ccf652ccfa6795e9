"""pytorchcv's (osmr/imgclsmob) ImageNet networks as ArchSpecs: the ones whose Pixel 4 latencies
data/latency-data/published_models.csv holds (qed-usc/mobile-ml-benchmark converted pytorchcv
models to TFLite). `MODELS` maps the CSV's model name to its family and builder.

Each builder follows pytorchcv's definition (osmr/imgclsmob at commit 8489d1bfc3b6, the last
one holding pytorch/pytorchcv/models/; the file is named in each builder) and reproduces the
weight count that file's `_test` asserts, exactly (tests/test_pytorchcv_models.py). Where a
pytorchcv network is one of our zoo models, the zoo model is used (MobileNetV1, MnasNet-A1,
ProxylessNAS). Mapped onto our IR:

- A fixed `AvgPool2d(7)` on the 7x7 map at 224 px is a GlobalPool (so the specs also run at
  other resolutions, where pytorchcv's would not).
- pytorchcv pads its convs by kernel // 2, the max pools 3/2 by 1, and EfficientNet-EdgeTPU
  ('_b', TF-ported) the TF way: every one gives our SAME-padding shapes.
- Not expressible, so not here: SqueezeNet/SqueezeResNet (the fire module concatenates two
  parallel convs; unpadded, ceil-mode pools give 109/55/27/13 maps) and DiracNetV2 (2x2 max
  pools between stages; our pools have odd windows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from search_spaces.arch_spec import (
    ArchSpec,
    Conv,
    Dense,
    DWSeparable,
    FusedMBConv,
    GlobalPool,
    MBConv,
    Norm,
    Pool,
    ResBlock,
)
from search_spaces.space import make_divisible
from search_spaces.zoo.mobilenet import V2_SETTINGS, V3_LARGE, V3_SMALL, mobilenet_v1
from search_spaces.zoo.nas_models import proxylessnas
from search_spaces.zoo.tpu_models import mnasnet

# --- the ResNet family: ResNet, PreResNet, SE-ResNet, SE-PreResNet, ResNeXt ------------------------

# Units per stage by depth, basic blocks / bottlenecks (resnet.py, get_resnet; also preresnet.py,
# seresnet.py, sepreresnet.py, resnext.py).
_BASIC_LAYERS = {10: (1, 1, 1, 1), 12: (2, 1, 1, 1), 14: (2, 2, 1, 1), 16: (2, 2, 2, 1), 18: (2, 2, 2, 2)}
_BOTTLENECK_LAYERS = {14: (1, 1, 1, 1), 26: (2, 2, 2, 2)}


def _resnet_widths(layers: tuple[int, ...], widths: tuple[int, ...], width_scale: float) -> list[list[int]]:
    """Per-unit output widths; pytorchcv scales all by int(c * w) but the very last unit's."""
    channels = [[c] * n for c, n in zip(widths, layers)]
    if width_scale != 1.0:
        last = (len(channels) - 1, len(channels[-1]) - 1)
        channels = [
            [c if (i, j) == last else int(c * width_scale) for j, c in enumerate(stage)]
            for i, stage in enumerate(channels)
        ]
    return channels


def resnet(
    blocks: int,
    bottleneck: bool = False,
    width_scale: float = 1.0,
    preact: bool = False,
    se: bool = False,
    resolution: int = 224,
    num_classes: int = 1000,
) -> ArchSpec:
    """ResNet (resnet.py), PreResNet (preresnet.py, `preact`), SE-ResNet (seresnet.py, `se`) and
    SE-PreResNet (sepreresnet.py): a 7x7/2 conv and a 3x3/2 max pool, four stages of 64-512
    (bottleneck: 256-2048, a quarter of it inside) whose first units stride but the first
    stage's, a global pool and the classifier. Bottlenecks here are all pytorchcv's 'b' kind
    (stride in the 3x3 conv). SE squeezes the unit's output 16-fold (SEBlock's reduction);
    pre-activation networks end in a BN + ReLU of their own before pooling."""
    layers = (_BOTTLENECK_LAYERS if bottleneck else _BASIC_LAYERS)[blocks]
    widths = tuple(c * 4 for c in (64, 128, 256, 512)) if bottleneck else (64, 128, 256, 512)
    init = int(64 * width_scale)
    channels, units = init, []
    for i, stage in enumerate(_resnet_widths(layers, widths, width_scale)):
        for j, out in enumerate(stage):
            stride = 2 if j == 0 and i != 0 else 1
            units.append(
                ResBlock(
                    channels,
                    out,
                    stride,
                    mid_ch=out // 4 if bottleneck else out,
                    bottleneck=bottleneck,
                    se_ch=out // 16 if se else 0,
                    preact=preact,
                )
            )
            channels = out
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, init, 7, 2), Pool(init, "max", 3, 2)),
        layers=tuple(units),
        head=((Norm(channels),) if preact else ()) + (GlobalPool(channels),),
        classifier=Dense(channels, num_classes),
    )


def resnext(
    blocks: int, cardinality: int, bottleneck_width: int, resolution: int = 224, num_classes: int = 1000
) -> ArchSpec:
    """ResNeXt (resnext.py, get_resnext): ResNet's stem and bottleneck stages (256-2048), the 3x3
    conv split into `cardinality` groups of floor(out / 4 * bottleneck_width / 64) channels."""
    channels, units = 64, []
    for i, (out, n) in enumerate(zip((256, 512, 1024, 2048), _BOTTLENECK_LAYERS[blocks])):
        group_width = cardinality * math.floor(out // 4 * (bottleneck_width / 64.0))
        for j in range(n):
            stride = 2 if j == 0 and i != 0 else 1
            units.append(ResBlock(channels, out, stride, mid_ch=group_width, bottleneck=True, groups=cardinality))
            channels = out
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, 64, 7, 2), Pool(64, "max", 3, 2)),
        layers=tuple(units),
        head=(GlobalPool(channels),),
        classifier=Dense(channels, num_classes),
    )


# --- RegNet ---------------------------------------------------------------------------------------

# (w0, wa, wm, depth, group width) of each model (regnet.py, regnetx002 ... regnety016).
REGNET_PARAMS = {
    "regnetx002": (24, 36.44, 2.49, 13, 8),
    "regnetx004": (24, 24.48, 2.54, 22, 16),
    "regnetx006": (48, 36.97, 2.24, 16, 24),
    "regnetx008": (56, 35.73, 2.28, 16, 16),
    "regnetx016": (80, 34.01, 2.25, 18, 24),
    "regnety002": (24, 36.44, 2.49, 13, 8),
    "regnety004": (48, 27.89, 2.09, 16, 8),
    "regnety006": (48, 32.54, 2.32, 15, 16),
    "regnety008": (56, 38.84, 2.4, 14, 16),
    "regnety016": (48, 20.71, 2.65, 27, 24),
}


def regnet_stages(w0: int, wa: float, wm: float, depth: int, group_width: int) -> list[tuple[int, int]]:
    """(width, units) per stage: pytorchcv's get_regnet (the paper's quantized linear widths,
    rounded to 8 and to a multiple of the group width)."""
    cont = np.arange(depth) * wa + w0
    exps = np.round(np.log(cont / w0) / np.log(wm))
    widths = (np.round(w0 * np.power(wm, exps) / 8) * 8).astype(int)
    per_stage, counts = np.unique(widths, return_counts=True)
    groups = [min(group_width, int(c)) for c in per_stage]
    return [(int(round(c / g) * g), int(n)) for c, g, n in zip(per_stage, groups, counts)]


def regnet(model: str, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """RegNetX/Y (regnet.py): a 3x3/2 conv to 32 channels, then stages whose first unit always
    strides; each unit a bottleneck of ratio 1 whose 3x3 conv has groups of `group width`
    channels. RegNetY adds SE after the 3x3 conv, squeezing to the unit's input width / 4."""
    w0, wa, wm, depth, group_width = REGNET_PARAMS[model]
    se = model.startswith("regnety")
    channels, units = 32, []
    for out, n in regnet_stages(w0, wa, wm, depth, group_width):
        for j in range(n):
            units.append(
                ResBlock(
                    channels,
                    out,
                    2 if j == 0 else 1,
                    mid_ch=out,
                    bottleneck=True,
                    groups=out // min(group_width, out),
                    se_ch=channels // 4 if se else 0,
                    se_site="middle",
                )
            )
            channels = out
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, 32, 3, 2),),
        layers=tuple(units),
        head=(GlobalPool(channels),),
        classifier=Dense(channels, num_classes),
    )


# --- MobileNet(B), FD-MobileNet ---------------------------------------------------------------------


def mobilenetb(width: float, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """MobileNet(B) (mobilenetb.py: get_mobilenet(dws_simplified=True) in mobilenet.py):
    MobileNetV1's plan, widths int(c * w), ReLU, but each depthwise conv has neither BN nor an
    activation, which DWSeparable cannot say: it is a Conv of its own."""
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    channels = int(32 * width)
    layers = []
    for out, stride in plan:
        out = int(out * width)
        layers.append(Conv(channels, channels, 3, stride, groups=channels, activation="none", batch_norm=False))
        layers.append(Conv(channels, out, 1))
        channels = out
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, int(32 * width), 3, 2),),
        layers=tuple(layers),
        head=(GlobalPool(channels),),
        classifier=Dense(channels, num_classes),
    )


def fdmobilenet(width: float, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """FD-MobileNet (fdmobilenet.py, get_fdmobilenet): MobileNetV1's blocks (BN + ReLU after
    both convs), widths int(c * w), but every stage strides (the 64-wide first one too) and
    there are four: the 1024-wide unit ends the 512 stage at stride 1."""
    plan = [(64, 2), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 4 + [(1024, 1)]
    channels = int(32 * width)
    layers = []
    for out, stride in plan:
        layers.append(DWSeparable(channels, int(out * width), 3, stride, activation="relu"))
        channels = int(out * width)
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, int(32 * width), 3, 2),),
        layers=tuple(layers),
        head=(GlobalPool(channels),),
        classifier=Dense(channels, num_classes),
    )


# --- EfficientNet-EdgeTPU ---------------------------------------------------------------------------


def round_channels(channels: float, divisor: int = 8) -> int:
    """pytorchcv's round_channels (common.py)."""
    rounded = max(int(channels + divisor / 2.0) // divisor * divisor, divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


# (depth factor, width factor) (efficientnetedge.py, get_efficientnet_edge).
EDGE_FACTORS = {"small": (1.0, 1.0), "medium": (1.1, 1.0), "large": (1.4, 1.2)}


def efficientnet_edge(version: str, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """EfficientNet-EdgeTPU '_b' (efficientnetedge.py): three stages of fused units (3x3 conv,
    stride in the 1x1 projection; the first stage expands its output width 4-fold and never
    adds a shortcut, the others expand their input 8-fold), then inverted residuals (5x5
    depthwise, expansion 8), all ReLU, no SE; a 1280-wide (x width factor above 1) 1x1 conv
    before pooling. The '_b' models are TF-padded, which gives SAME shapes. pytorchcv builds
    medium and large at 240 and 300 px; the structure does not depend on the resolution."""
    depth_factor, width_factor = EDGE_FACTORS[version]
    # Layer groups: width, units, expansion, kernel, first stride; the fifth group (144 wide)
    # continues the fourth's stage (downsample 0), so it does not stride.
    groups = [(24, 1, 4, 3, 1), (32, 2, 8, 3, 2), (48, 4, 8, 3, 2), (96, 5, 8, 5, 2), (144, 4, 8, 5, 1)]
    groups.append((192, 2, 8, 5, 2))
    channels = round_channels(32 * width_factor)
    stem = (Conv(3, channels, 3, 2),)
    units = []
    for stage, (width, n, expansion, kernel, stride) in enumerate(groups):
        out = round_channels(width * width_factor)
        for j in range(math.ceil(n * depth_factor)):
            s = stride if j == 0 else 1
            if stage < 3:
                mid = channels * expansion if stage else out * expansion
                residual = stage > 0 and s == 1 and channels == out
                units.append(FusedMBConv(channels, out, 3, s, expansion, mid, project_stride=True, residual=residual))
            else:
                units.append(MBConv(channels, out, kernel, s, expansion, channels * expansion, activation="relu"))
            channels = out
    final = round_channels(1280 * width_factor) if width_factor > 1 else 1280
    return ArchSpec(
        resolution=resolution,
        stem=stem,
        layers=tuple(units),
        head=(Conv(channels, final, 1), GlobalPool(final)),
        classifier=Dense(final, num_classes),
    )


# --- MobileNetV2 and V3, where pytorchcv's differ from ours ----------------------------------------


def pytorchcv_mobilenet_v2(
    width: float, first_expand_conv: bool = True, resolution: int = 224, num_classes: int = 1000
) -> ArchSpec:
    """pytorchcv's MobileNetV2 (pytorch/pytorchcv/models/mobilenetv2.py, get_mobilenetv2):
    widths int(c * w), expanded width in * 6, a 1x1 conv (in -> in) before the first block's
    depthwise conv unless `first_expand_conv` is False (pytorchcv's mobilenetv2b), last conv
    1280 wide unless w > 1, classifier without bias (a 1x1 conv)."""
    stem_ch = 32 if width == 1 else int(32 * width)
    channels, layers = stem_ch, []
    for t, c, n, s in V2_SETTINGS:
        out = c if width == 1 else int(c * width)
        for j in range(n):
            stride = s if j == 0 else 1
            if t == 1:
                layers.append(
                    MBConv(channels, out, 3, stride, 1, channels, activation="relu6", expand_conv=first_expand_conv)
                )
            else:
                layers.append(MBConv(channels, out, 3, stride, 6, channels * 6, activation="relu6"))
            channels = out
    last = int(1280 * width) if width > 1 else 1280
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, stem_ch, 3, 2, activation="relu6"),),
        layers=tuple(layers),
        head=(Conv(channels, last, 1, activation="relu6"), GlobalPool(last)),
        classifier=Dense(last, num_classes, bias=False),
        name=f"pytorchcv_mobilenetv2{'' if first_expand_conv else 'b'}_{width}",
    )


def pytorchcv_mobilenet_v3(size: str, width: float, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """pytorchcv's MobileNetV3 (pytorch/pytorchcv/models/mobilenetv3.py, get_mobilenetv3):
    output and expanded widths are make_divisible(c * w) each (so a block's expansion ratio is
    not kept), an expand conv only when expanded != output width, SE squeeze
    make_divisible(expanded / 4) with a hard-sigmoid gate, pre-pool conv 960 (Large) / 576
    (Small) unless w > 1, then a 1280-wide 1x1 conv (no BN, no bias) and a biased classifier."""
    rows, pre_pool = (V3_LARGE, 960) if size == "large" else (V3_SMALL, 576)

    def scale(c: int) -> int:
        return c if width == 1 else make_divisible(c * width)

    channels = scale(16)
    layers = []
    for kernel, expanded, out, se, act, stride in rows:
        mid, out = scale(expanded), scale(out)
        expand = mid != out
        if not expand and mid != channels:
            raise ValueError(f"pytorchcv MobileNetV3 {size} {width}: block without expand conv changes width")
        layers.append(
            MBConv(
                channels,
                out,
                kernel,
                stride,
                mid / channels if expand else 1,
                mid,
                se_ch=make_divisible(mid / 4) if se else 0,
                activation=act,
                expand_conv=expand,
            )
        )
        channels = out
    wide = make_divisible(pre_pool * width) if width > 1 else pre_pool
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, scale(16), 3, 2, activation="hswish"),),
        layers=tuple(layers),
        head=(
            Conv(channels, wide, 1, activation="hswish"),
            GlobalPool(wide),
            Conv(wide, 1280, 1, activation="hswish", batch_norm=False, bias=False),
        ),
        classifier=Dense(1280, num_classes),
        name=f"pytorchcv_mobilenetv3_{size}_{width}",
    )


# --- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PytorchcvModel:
    family: str
    build: Callable[..., ArchSpec]  # (resolution=224, num_classes=1000) -> ArchSpec
    description: str  # what it is in our terms


# pytorchcv's width suffixes.
WIDTHS = {"w1": 1.0, "w3d4": 0.75, "wd2": 0.5, "wd4": 0.25, "w7d20": 0.35, "w5d4": 1.25}


def _registry() -> dict[str, PytorchcvModel]:
    models: dict[str, PytorchcvModel] = {}
    # The MobileNet families first, in the order the Pixel 4 profile has always fitted them.
    for suffix, w in list(WIDTHS.items())[:4]:
        models[f"mobilenet_{suffix}"] = PytorchcvModel(
            "mobilenet_v1", partial(mobilenet_v1, w), f"zoo mobilenet_v1_{w}"
        )
        models[f"mobilenetv2_{suffix}"] = PytorchcvModel(
            "mobilenet_v2", partial(pytorchcv_mobilenet_v2, w), f"pytorchcv MobileNetV2 {w}"
        )
        models[f"mobilenetv2b_{suffix}"] = PytorchcvModel(
            "mobilenet_v2", partial(pytorchcv_mobilenet_v2, w, False), f"pytorchcv MobileNetV2b {w}"
        )
    for size, suffixes in (("large", ("w1", "w3d4", "wd2", "w7d20")), ("small", ("w1", "w5d4", "wd2", "w7d20"))):
        for suffix in suffixes:
            models[f"mobilenetv3_{size}_{suffix}"] = PytorchcvModel(
                f"mobilenet_v3_{size}",
                partial(pytorchcv_mobilenet_v3, size, WIDTHS[suffix]),
                f"pytorchcv MobileNetV3-{size.title()} {WIDTHS[suffix]}",
            )
    models["mnasnet_a1"] = PytorchcvModel("mnasnet", partial(mnasnet, "a1"), "zoo mnasnet_a1")
    for v in ("cpu", "gpu", "mobile"):
        models[f"proxylessnas_{v}"] = PytorchcvModel("proxylessnas", partial(proxylessnas, v), f"zoo proxylessnas_{v}")

    for preact, se, family, title in (
        (False, False, "resnet", "ResNet"),
        (True, False, "preresnet", "PreResNet"),
        (False, True, "seresnet", "SE-ResNet"),
        (True, True, "sepreresnet", "SE-PreResNet"),
    ):
        variant = partial(resnet, preact=preact, se=se)
        for blocks in _BASIC_LAYERS:
            models[f"{family}{blocks}"] = PytorchcvModel(family, partial(variant, blocks), f"{title}-{blocks}")
        if se:  # pytorchcv has no narrow or 'bc' SE variants of these depths
            continue
        for suffix in ("w3d4", "wd2", "wd4"):
            models[f"{family}18_{suffix}"] = PytorchcvModel(
                family,
                partial(variant, 18, width_scale=WIDTHS[suffix]),
                f"{title}-18 x{WIDTHS[suffix]} (last unit kept 512 wide)",
            )
        for blocks in _BOTTLENECK_LAYERS:
            models[f"{family}bc{blocks}b"] = PytorchcvModel(
                family, partial(variant, blocks, bottleneck=True), f"{title}-{blocks}, bottleneck, stride in the 3x3"
            )
    for blocks in _BOTTLENECK_LAYERS:
        for cardinality in (16, 32):
            models[f"resnext{blocks}_{cardinality}x4d"] = PytorchcvModel(
                "resnext", partial(resnext, blocks, cardinality, 4), f"ResNeXt-{blocks} ({cardinality}x4d)"
            )
    for name in REGNET_PARAMS:
        models[name] = PytorchcvModel(name[:7], partial(regnet, name), f"RegNet{name[6].upper()}-{name[7:]}MF")
    narrow = {suffix: WIDTHS[suffix] for suffix in ("w1", "w3d4", "wd2", "wd4")}
    for suffix, w in narrow.items():
        models[f"fdmobilenet_{suffix}"] = PytorchcvModel("fdmobilenet", partial(fdmobilenet, w), f"FD-MobileNet {w}")
    for suffix, w in narrow.items():
        models[f"mobilenetb_{suffix}"] = PytorchcvModel(
            "mobilenetb", partial(mobilenetb, w), f"MobileNet {w}, depthwise convs without BN or activation"
        )
    for version in EDGE_FACTORS:
        models[f"efficientnet_edge_{version}_b"] = PytorchcvModel(
            "efficientnet_edge", partial(efficientnet_edge, version), f"EfficientNet-EdgeTPU-{version.title()} at 224"
        )
    return models


MODELS: dict[str, PytorchcvModel] = _registry()
