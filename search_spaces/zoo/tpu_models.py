"""MnasNet-A1/B1, Single-Path NAS and EfficientNet-Lite0..4 as ArchSpecs, from the block
strings of the tensorflow/tpu reference code (models/official/mnasnet/mnasnet_models.py,
models/official/efficientnet/efficientnet_builder.py, efficientnet_lite_builder.py) and of
Single-Path NAS, which is built on that MnasNet code.

A block string such as 'r3_k5_s22_e3_i24_o40_se0.25' reads: repeat 3 times, kernel 5, stride 2
(first repeat; the others stride 1), expansion 3, input 24, output 40, squeeze-excite ratio
0.25 of the block's input channels; 'noskip' drops the identity shortcut.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, MBConv
from search_spaces.space import make_divisible


@dataclass(frozen=True)
class BlockArgs:
    repeats: int
    kernel: int
    stride: int
    expansion: int
    in_ch: int
    out_ch: int
    se_ratio: float


_BLOCK = re.compile(r"r(\d+)_k(\d+)_s(\d)\3_e(\d+)_i(\d+)_o(\d+)(?:_se([\d.]+))?(?:_noskip)?$")


def decode_block_string(text: str) -> BlockArgs:
    match = _BLOCK.match(text)
    if not match:
        raise ValueError(f"not a block string: {text!r}")
    r, k, s, e, i, o, se = match.groups()
    return BlockArgs(int(r), int(k), int(s), int(e), int(i), int(o), float(se) if se else 0.0)


def blocks_to_layers(
    blocks: tuple[str, ...],
    in_ch: int,
    activation: str,
    width: float = 1.0,
    depth: float = 1.0,
    fixed_ends: bool = False,
    se_gate: str = "sigmoid",
) -> list[MBConv]:
    """Expand block strings into MBConv layers with channel (width) and repeat (depth)
    scaling as the reference builders do. `fixed_ends`: EfficientNet-Lite keeps the repeats
    of the first and last block unscaled. The expanded width is input * expansion; the SE
    squeeze is max(1, int(input * ratio))."""
    layers, channels = [], in_ch
    for index, text in enumerate(blocks):
        args = decode_block_string(text)
        out = make_divisible(args.out_ch * width)
        unscaled = fixed_ends and index in (0, len(blocks) - 1)
        repeats = args.repeats if unscaled else int(math.ceil(depth * args.repeats))
        for r in range(repeats):
            mid = channels * args.expansion
            se = max(1, int(channels * args.se_ratio)) if args.se_ratio else 0
            stride = args.stride if r == 0 else 1
            layers.append(MBConv(channels, out, args.kernel, stride, args.expansion, mid, se, activation, se_gate))
            channels = out
    return layers


MNASNET_A1 = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r2_k3_s22_e6_i16_o24",
    "r3_k5_s22_e3_i24_o40_se0.25",
    "r4_k3_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o112_se0.25",
    "r3_k5_s22_e6_i112_o160_se0.25",
    "r1_k3_s11_e6_i160_o320",
)
MNASNET_B1 = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r3_k3_s22_e3_i16_o24",
    "r3_k5_s22_e3_i24_o40",
    "r3_k5_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o96",
    "r4_k5_s22_e6_i96_o192",
    "r1_k3_s11_e6_i192_o320_noskip",
)


# Single-Path NAS (Stamoulis et al., 2019), the network found for the Pixel 1 (79 ms): MnasNet's
# stem, first and last block and head around 20 searched layers (k3/k5 x e3/e6 or skip; one
# skipped in the 24-channel stage). As encoded by timm's `_gen_spnasnet`
# (huggingface/pytorch-image-models, timm/models/efficientnet.py).
SPNASNET = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r3_k3_s22_e3_i16_o24",
    "r1_k5_s22_e6_i24_o40",
    "r3_k3_s11_e3_i40_o40",
    "r1_k5_s22_e6_i40_o80",
    "r3_k3_s11_e3_i80_o80",
    "r1_k5_s11_e6_i80_o96",
    "r3_k5_s11_e3_i96_o96",
    "r4_k5_s22_e6_i96_o192",
    "r1_k3_s11_e6_i192_o320_noskip",
)


def mnasnet(variant: str, resolution: int = 224, num_classes: int = 1000) -> ArchSpec:
    """MnasNet-A1/B1, or `variant="spnasnet"` for Single-Path NAS (same stem and head)."""
    blocks = {"a1": MNASNET_A1, "b1": MNASNET_B1, "spnasnet": SPNASNET}[variant]
    layers = blocks_to_layers(blocks, 32, "relu")
    last = layers[-1].out_ch
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, 32, 3, 2, activation="relu"),),
        layers=tuple(layers),
        head=(Conv(last, 1280, 1, activation="relu"), GlobalPool(1280)),
        classifier=Dense(1280, num_classes),
        name=variant if variant == "spnasnet" else f"mnasnet_{variant}",
    )


# EfficientNet-B0's blocks; Lite drops squeeze-excite and uses ReLU6.
EFFICIENTNET_B0 = (
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
)
# efficientnet_lite_builder.py: name -> (width, depth, resolution, dropout)
LITE_PARAMS = {
    0: (1.0, 1.0, 224),
    1: (1.0, 1.1, 240),
    2: (1.1, 1.2, 260),
    3: (1.2, 1.4, 280),
    4: (1.4, 1.8, 300),
}


def efficientnet_lite(index: int, resolution: int | None = None, num_classes: int = 1000) -> ArchSpec:
    """Stem (32) and head (1280) are not scaled in Lite, nor the first and last block's repeats."""
    width, depth, native = LITE_PARAMS[index]
    layers = blocks_to_layers(EFFICIENTNET_B0, 32, "relu6", width, depth, fixed_ends=True)
    return ArchSpec(
        resolution=resolution or native,
        stem=(Conv(3, 32, 3, 2, activation="relu6"),),
        layers=tuple(layers),
        head=(Conv(layers[-1].out_ch, 1280, 1, activation="relu6"), GlobalPool(1280)),
        classifier=Dense(1280, num_classes),
        name=f"efficientnet_lite{index}",
    )
