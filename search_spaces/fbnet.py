"""The FBNet space as HW-NAS-Bench defines it (Wu et al., CVPR 2019; Li et al., ICLR 2021).

22 searchable layers, each one of 9 ops: k3_e1, k3_e1_g2, k3_e3, k3_e6, k5_e1, k5_e1_g2,
k5_e3, k5_e6 (MBConv with kernel k, expansion e, 1x1 convs in g groups) or skip. Two input
configurations with the same widths: ImageNet (224 px, stem stride 2, 32x downsampling) and
CIFAR-100 (32 px, stem and layer 1 at stride 1, 8x downsampling, head 1504, 100 classes),
matching HW-NAS-Bench's FBNet model and lookup table (GATECH-EIC/HW-NAS-Bench,
hw_nas_bench_api/fbnet_models/model_infer.py). As in the FBNet paper, e1 blocks keep their
expand 1x1 conv; a skip is an identity layer, or a 1x1 conv + BN + ReLU on a layer that changes
shape (`Skip`). Identities stay in the spec: HW-NAS-Bench's table times them.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, Identity, MBConv
from search_spaces.space import Choices, ChoiceSpace, Dimension

LAYER_WIDTHS = (16, 24, 24, 24, 24, 32, 32, 32, 32, 64, 64, 64, 64, 112, 112, 112, 112, 184, 184, 184, 184, 352)
IMAGENET_STRIDES = {1: 2, 5: 2, 9: 2, 17: 2}
CIFAR_STRIDES = {5: 2, 9: 2, 17: 2}
OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
STEM_CH = 16


@dataclass(frozen=True)
class InputConfig:
    resolution: int
    stem_stride: int
    strides: dict[int, int]  # layer index -> stride; all other layers stride 1
    head_ch: int
    num_classes: int


CONFIGS = {
    "imagenet": InputConfig(224, 2, IMAGENET_STRIDES, 1984, 1000),
    "cifar": InputConfig(32, 1, CIFAR_STRIDES, 1504, 100),
}


def op_layer(op: str, in_ch: int, out_ch: int, stride: int, e1_expand_conv: bool = True) -> Conv | MBConv | Identity:
    """The IR layer for one FBNet op (a skip that keeps the shape is an Identity). `e1_expand_conv`:
    whether an e1 block keeps its 1x1 expand conv (HW-NAS-Bench and the paper's figure do;
    mobile-vision's released FBNet-A/B/C do not)."""
    if op == "skip":
        if in_ch == out_ch and stride == 1:
            return Identity(in_ch)
        return Conv(in_ch, out_ch, 1, stride, activation="relu")
    parts = op.split("_")
    kernel, expansion = int(parts[0][1:]), int(parts[1][1:])
    groups = int(parts[2][1:]) if len(parts) == 3 else 1
    expand_conv = expansion != 1 or e1_expand_conv
    return MBConv(
        in_ch,
        out_ch,
        kernel,
        stride,
        expansion,
        in_ch * expansion,
        activation="relu",
        groups=groups,
        expand_conv=expand_conv,
    )


class FBNetSpace(ChoiceSpace):
    def __init__(self, config: str = "imagenet", num_classes: int | None = None, in_channels: int = 3):
        if config not in CONFIGS:
            raise ValueError(f"fbnet: unknown config {config!r} (allowed: {', '.join(CONFIGS)})")
        self.config = config
        self.name = "fbnet" if config == "imagenet" else f"fbnet_{config}"
        self.num_classes = num_classes or CONFIGS[config].num_classes
        self.in_channels = in_channels
        self.dimensions = tuple(Dimension(f"layer{i}", OPS) for i in range(len(LAYER_WIDTHS)))

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec:
        """`proxy=True` uses the CIFAR configuration's strides (8x downsampling) whatever the
        space's own configuration; `resolution` defaults to the configuration's."""
        v = self.values(self.check(choices))
        shape = CONFIGS["cifar" if proxy else self.config]
        head_ch = CONFIGS[self.config].head_ch
        stem = (Conv(self.in_channels, STEM_CH, 3, shape.stem_stride, activation="relu"),)
        layers, channels = [], STEM_CH
        for i, out_ch in enumerate(LAYER_WIDTHS):
            layers.append(op_layer(v[f"layer{i}"], channels, out_ch, shape.strides.get(i, 1)))
            channels = out_ch
        head = (Conv(channels, head_ch, 1, activation="relu"), GlobalPool(head_ch))
        return ArchSpec(
            resolution=resolution or shape.resolution,
            in_channels=self.in_channels,
            stem=stem,
            layers=tuple(layers),
            head=head,
            classifier=Dense(head_ch, self.num_classes),
            name=f"{self.name}{'-proxy' if proxy else ''}",
        )
