"""The ProxylessNAS MobileNetV2-style space (Cai et al., ICLR 2019; mit-han-lab/proxylessnas).

A fixed stem (3x3 conv, 32) and first block (MBConv e1, 16), then six stages of widths
24/40/80/96/192/320 with 4/4/4/4/4/1 blocks and strides 2/2/2/1/2/1. Every block chooses a
kernel of 3, 5 or 7 and an expansion of 3 or 6; every block but the first of a stage may also
be skipped (ProxylessNAS's zero op), which is how depth is searched. ReLU6 throughout, no SE.
"""

from __future__ import annotations

from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, MBConv
from search_spaces.space import Choices, ChoiceSpace, Dimension

STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))  # width, blocks, stride
MB_OPS = tuple(f"k{k}_e{e}" for k in (3, 5, 7) for e in (3, 6))
SKIP = "skip"
PROXY_RESOLUTION = 32


def parse_op(op: str) -> tuple[int, int]:
    kernel, expansion = op.split("_")
    return int(kernel[1:]), int(expansion[1:])


class ProxylessSpace(ChoiceSpace):
    name = "proxyless"

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, resolutions: tuple[int, ...] = (224,)):
        self.num_classes = num_classes
        self.in_channels = in_channels
        dims = [Dimension("resolution", tuple(resolutions), shared=True)]
        for s, (_, blocks, _) in enumerate(STAGES):
            for b in range(blocks):
                dims.append(Dimension(f"stage{s}.block{b}", MB_OPS if b == 0 else MB_OPS + (SKIP,)))
        self.dimensions = tuple(dims)

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec:
        """`proxy=True`: stem and first stage at stride 1 (8x downsampling, default 32 px)."""
        v = self.values(self.check(choices))
        if resolution is None:
            resolution = PROXY_RESOLUTION if proxy else v["resolution"]
        stem = (Conv(self.in_channels, 32, 3, 1 if proxy else 2, activation="relu6"),)
        layers = [MBConv(32, 16, 3, 1, 1, 32, activation="relu6")]
        channels = 16
        for s, (out_ch, blocks, stride) in enumerate(STAGES):
            stage_stride = 1 if proxy and s == 0 else stride
            for b in range(blocks):
                op = v[f"stage{s}.block{b}"]
                if op == SKIP:
                    continue
                kernel, expansion = parse_op(op)
                layers.append(
                    MBConv(
                        channels,
                        out_ch,
                        kernel,
                        stage_stride if b == 0 else 1,
                        expansion,
                        channels * expansion,
                        activation="relu6",
                    )
                )
                channels = out_ch
        head = (Conv(channels, 1280, 1, activation="relu6"), GlobalPool(1280))
        return ArchSpec(
            resolution=resolution,
            in_channels=self.in_channels,
            stem=stem,
            layers=tuple(layers),
            head=head,
            classifier=Dense(1280, self.num_classes),
            name=f"{self.name}{'-proxy' if proxy else ''}",
        )
