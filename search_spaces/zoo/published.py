"""Published ImageNet top-1 of the zoo's networks: name -> (top-1 in percent, or None; source).

Each figure is the validation top-1 of the float model at the entry's published resolution and
width, as its source prints it. Sources are `owner/repo@commit:path` on GitHub or a paper. Where
data/latency-data/published_models.csv holds the figure, the source is that row's file
(tests/test_zoo.py checks the two agree); None means no published figure was found, and the
source says so.
"""

from __future__ import annotations

SLIM_V1_MD = "tensorflow/models@02c04f49a188ba9a515100a3375a6359f3fffef1:research/slim/nets/mobilenet_v1.md"
SLIM_README = "tensorflow/models@60c28f91c1a69098fa8d69e4430705981fc4e132:research/slim/nets/mobilenet/README.md"
TFLITE_HOSTED = (
    "tensorflow/tensorflow@0406598a59a78fd428b74fdd5e1ee704d17ce05a:tensorflow/lite/g3doc/guide/hosted_models.md"
)
MNASNET_README = "tensorflow/tpu@7dc921f846c9e4071f3884b768a7ddf521272a49:models/official/mnasnet/README.md"
# The mnasnet-b1 line was dropped from the README after this commit.
MNASNET_README_B1 = "tensorflow/tpu@33500fcf79ed3935076dc459083bffec045b4a74:models/official/mnasnet/README.md"
LITE_README = "tensorflow/tpu@7dc921f846c9e4071f3884b768a7ddf521272a49:models/official/efficientnet/lite/README.md"
# Written by MIT Han Lab (the page's author field); it gives top-1 error. The figures agree with the
# evaluation logs in mit-han-lab/proxylessnas@5539afd9aea7f09e7dee68280b3838e6ae934c6f:logs/
# (imagenet_{cpu,gpu,mobile}_log.txt: test_acc1 75.290, 75.084, 74.594).
PROXYLESS_HUB = "pytorch/hub@23d4266aa008ab7780e74edc1fcd238c5276eb3b:pytorch_vision_proxylessnas.md"
FBNET_PAPER = (
    "Wu et al., FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture Search, "
    "CVPR 2019 (arXiv 1812.03443), ImageNet results text"
)
SPNAS_PAPER = (
    "Stamoulis et al., Single-Path NAS: Designing Hardware-Efficient ConvNets in less than 4 Hours, "
    "ECML-PKDD 2019 (arXiv 1904.02877), abstract (the Pixel 1 network, 79 ms)"
)
# The slim README tabulates MobileNetV3 at dm 1.0 and 0.75 only. The paper (Howard et al., Searching
# for MobileNetV3, ICCV 2019) plots a 1.25 multiplier in Figure 1, but its labels could not be matched
# to points from the text, so no figure is taken from a plot.
V3_NONE = f"no published figure found for this width ({SLIM_README} lists dm=1 and dm=0.75 only)"


def _v1(alpha: float, top1: float, slim_top1: float) -> tuple[float, str]:
    # The csv's MobileNetV1 rows come from the TFLite hosted-models page (the TFLite float model);
    # TF-Slim's checkpoint table differs by 0.1, so its figure is named too.
    name = f"Mobilenet_V1_{alpha:.2f}_224" if alpha < 1 else "Mobilenet_V1_1.0_224"
    return top1, f"{TFLITE_HOSTED}, floating point models, {name} (TF-Slim {SLIM_V1_MD} lists {slim_top1})"


PUBLISHED_TOP1: dict[str, tuple[float | None, str]] = {
    "mobilenet_v1_0.25": _v1(0.25, 49.7, 49.8),
    "mobilenet_v1_0.5": _v1(0.5, 63.2, 63.3),
    "mobilenet_v1_0.75": _v1(0.75, 68.3, 68.4),
    "mobilenet_v1_1.0": _v1(1.0, 71.0, 70.9),
    **{
        f"mobilenet_v2_{a}": (top1, f"{SLIM_README}, Mobilenet V2 checkpoints, mobilenet_v2_{a}_224 (float)")
        for a, top1 in ((0.35, 60.3), (0.5, 65.4), (0.75, 69.8), (1.0, 71.8), (1.4, 75.0))
    },
    "mobilenet_v3_large_0.35": (None, V3_NONE),
    "mobilenet_v3_large_0.5": (None, V3_NONE),
    "mobilenet_v3_large_0.75": (73.3, f"{SLIM_README}, Mobilenet V3 checkpoints, Large dm=0.75 (float)"),
    "mobilenet_v3_large_1.0": (75.2, f"{SLIM_README}, Mobilenet V3 checkpoints, Large dm=1 (float)"),
    "mobilenet_v3_large_1.25": (None, V3_NONE),
    "mobilenet_v3_small_0.35": (None, V3_NONE),
    "mobilenet_v3_small_0.5": (None, V3_NONE),
    "mobilenet_v3_small_0.75": (65.4, f"{SLIM_README}, Mobilenet V3 checkpoints, Small dm=0.75 (float)"),
    "mobilenet_v3_small_1.0": (67.5, f"{SLIM_README}, Mobilenet V3 checkpoints, Small dm=1 (float)"),
    "mobilenet_v3_small_1.25": (None, V3_NONE),
    # The zoo's A1 is tensorflow/tpu's mnasnet-a1. The TFLite hosted-models MnasNet_1.0_224
    # (74.08) does not say which MnasNet it is, so it is not used.
    "mnasnet_a1": (75.2, f"{MNASNET_README}, Mnasnet-A1 table, input 224, depth multiplier 1"),
    "mnasnet_b1": (
        74.4,
        f"{MNASNET_README_B1}: 'mnasnet-b1 has ~74.4% top-1' (resolution not stated; the trainer's default is 224)",
    ),
    "proxylessnas_mobile": (74.6, f"{PROXYLESS_HUB}, top-1 error 25.4"),
    "proxylessnas_mobile_14": (76.7, f"{PROXYLESS_HUB}, top-1 error 23.3"),
    "proxylessnas_cpu": (75.3, f"{PROXYLESS_HUB}, top-1 error 24.7"),
    "proxylessnas_gpu": (75.1, f"{PROXYLESS_HUB}, top-1 error 24.9"),
    "fbnet_a": (73.0, f"{FBNET_PAPER}: 'FBNet-A achieves 73.0% accuracy'"),
    "fbnet_b": (74.1, f"{FBNET_PAPER} and abstract: 'FBNet-B achieves 74.1% top-1 accuracy'"),
    "fbnet_c": (74.9, f"{FBNET_PAPER}: 'FBNet-C achieves 74.9% accuracy'"),
    "spnasnet": (74.96, SPNAS_PAPER),
    **{
        f"efficientnet_lite{i}": (top1, f"{LITE_README}, FP32 accuracy, efficientnet-lite{i}")
        for i, top1 in enumerate((75.1, 76.7, 77.6, 79.8, 81.5))
    },
}
