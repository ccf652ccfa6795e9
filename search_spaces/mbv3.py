"""The Once-for-All MobileNetV3 space (Cai et al., ICLR 2020; mit-han-lab/once-for-all, ofa_mbv3.py).

Five MBConv stages after a fixed stem and first block; per stage a depth of 2, 3 or 4; per
block a kernel of 3, 5 or 7 and an expansion of 3, 4 or 6; SE and h-swish per stage as in
MobileNetV3-Large; width multiplier 1.0 or 1.2 (Once-for-All trains one supernet per width:
here the width is one more decision); input resolution 128..224 in steps of 16 (Once-for-All
uses steps of 4; 16 keeps the per-resolution latency tables few).
"""

from __future__ import annotations

from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, MBConv
from search_spaces.space import Choices, ChoiceSpace, Dimension, make_divisible

STAGE_WIDTHS = (24, 40, 80, 112, 160)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTIVATIONS = ("relu", "relu", "hswish", "hswish", "hswish")
STAGE_SE = (False, True, False, True, True)
DEPTHS = (2, 3, 4)
KERNELS = (3, 5, 7)
EXPANSIONS = (3, 4, 6)
WIDTHS = (1.0, 1.2)
RESOLUTIONS = tuple(range(128, 225, 16))
PROXY_RESOLUTION = 32
# The proxy for 28-32 px data, sized so that the supernet trains on 2 CPU cores within an hour:
# 8x downsampling instead of 32x, with the stem, the first and the third stage at stride 2
# (28 px -> 14, then the stages at 7, 7, 4, 4, 4 where the full network at 224 px has 56, 28, 14,
# 14, 7), and every channel count halved before rounding to a multiple of 8. Measured (one
# core, batch 64, plain model of the largest subnet, forward + backward + SGD): 7.3 s per step
# with stride 1 in the stem and the first stage at full width, 0.68 s with this proxy.
PROXY_STEM_STRIDE = 2
PROXY_STAGE_STRIDES = (2, 1, 2, 1, 1)
PROXY_CHANNELS = 0.5


class MobileNetV3Space(ChoiceSpace):
    name = "mbv3"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        stages: int = len(STAGE_WIDTHS),
        resolutions: tuple[int, ...] = RESOLUTIONS,
    ):
        """`stages` < 5 keeps only the first stages: a small space for tests and quick checks.
        `resolutions` narrows the input resolutions (e.g. to those an accuracy estimator scores)."""
        if not 1 <= stages <= len(STAGE_WIDTHS):
            raise ValueError(f"{self.name}: stages must be 1..{len(STAGE_WIDTHS)}, got {stages}")
        if not resolutions or not set(resolutions) <= set(RESOLUTIONS):
            raise ValueError(f"{self.name}: resolutions must be some of {list(RESOLUTIONS)}, got {list(resolutions)}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stages = stages
        dims = [
            Dimension("resolution", tuple(sorted(resolutions)), shared=True),
            Dimension("width", WIDTHS, shared=True),
        ]
        depth_index = {}
        for s in range(stages):
            depth_index[s] = len(dims)
            dims.append(Dimension(f"stage{s}.depth", DEPTHS))
        for s in range(stages):
            for b in range(max(DEPTHS)):
                gate = (depth_index[s], b)
                dims.append(Dimension(f"stage{s}.block{b}.kernel", KERNELS, gate))
                dims.append(Dimension(f"stage{s}.block{b}.expansion", EXPANSIONS, gate))
        self.dimensions = tuple(dims)

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec:
        """Build the network. `proxy=True` is the small-image variant for 28-32 px data (default
        resolution 32): 8x downsampling instead of 32x and half the channels (see
        PROXY_STAGE_STRIDES). Otherwise `resolution` overrides the chosen one."""
        v = self.values(self.check(choices))
        width = v["width"] * (PROXY_CHANNELS if proxy else 1.0)
        if resolution is None:
            resolution = PROXY_RESOLUTION if proxy else v["resolution"]
        stem_ch = make_divisible(16 * width)
        stem = (Conv(self.in_channels, stem_ch, 3, PROXY_STEM_STRIDE if proxy else 2, activation="hswish"),)
        layers = [MBConv(stem_ch, stem_ch, 3, 1, 1, stem_ch, activation="relu")]
        channels = stem_ch
        for s, base in enumerate(STAGE_WIDTHS[: self.stages]):
            out_ch = make_divisible(base * width)
            stage_stride = PROXY_STAGE_STRIDES[s] if proxy else STAGE_STRIDES[s]
            for b in range(v[f"stage{s}.depth"]):
                expansion = v[f"stage{s}.block{b}.expansion"]
                mid = make_divisible(round(channels * expansion))
                layers.append(
                    MBConv(
                        channels,
                        out_ch,
                        kernel=v[f"stage{s}.block{b}.kernel"],
                        stride=stage_stride if b == 0 else 1,
                        expansion=expansion,
                        mid_ch=mid,
                        se_ch=make_divisible(mid // 4) if STAGE_SE[s] else 0,
                        activation=STAGE_ACTIVATIONS[s],
                    )
                )
                channels = out_ch
        final_ch = make_divisible(960 * width)
        last_ch = make_divisible(1280 * width)
        head = (
            Conv(channels, final_ch, 1, activation="hswish"),
            GlobalPool(final_ch),
            Conv(final_ch, last_ch, 1, activation="hswish", batch_norm=False),
        )
        return ArchSpec(
            resolution=resolution,
            in_channels=self.in_channels,
            stem=stem,
            layers=tuple(layers),
            head=head,
            classifier=Dense(last_ch, self.num_classes),
            name=f"{self.name}{'-proxy' if proxy else ''}",
        )
