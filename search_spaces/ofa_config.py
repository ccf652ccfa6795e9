"""Read Once-for-All / ProxylessNAS network configs (`net.config` JSON) as ArchSpecs.

Both projects describe a network as first_conv, a list of MobileInvertedResidualBlock (each an
MBInvertedConvLayer or a ZeroLayer, plus an optional identity shortcut), then head layers and
a LinearLayer classifier (mit-han-lab/once-for-all, ofa/utils/layers.py and
ofa/imagenet_classification/networks/{mobilenet_v3,proxyless_nets}.py). The layouts differ in
the head: MobileNetV3 runs final_expand_layer, global pooling, then a BN-free feature_mix_layer;
ProxylessNAS runs feature_mix_layer, then global pooling.
"""

from __future__ import annotations

from typing import Any

from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, MBConv, SpecError
from search_spaces.space import make_divisible

ACTIVATION_NAMES = {None: "none", "relu": "relu", "relu6": "relu6", "h_swish": "hswish"}


def _activation(name: Any) -> str:
    if name not in ACTIVATION_NAMES:
        raise SpecError(f"act_func: unsupported activation {name!r}")
    return ACTIVATION_NAMES[name]


def _conv(cfg: dict[str, Any]) -> Conv:
    return Conv(
        cfg["in_channels"],
        cfg["out_channels"],
        cfg["kernel_size"],
        cfg.get("stride", 1),
        cfg.get("groups", 1),
        _activation(cfg.get("act_func")),
        batch_norm=cfg.get("use_bn", True),
        bias=cfg.get("bias", False),
    )


def _mbconv(cfg: dict[str, Any]) -> MBConv:
    in_ch, expansion = cfg["in_channels"], cfg["expand_ratio"]
    mid = cfg.get("mid_channels") or round(in_ch * expansion)
    return MBConv(
        in_ch,
        cfg["out_channels"],
        cfg["kernel_size"],
        cfg["stride"],
        expansion,
        mid,
        se_ch=make_divisible(mid // 4) if cfg.get("use_se") else 0,
        activation=_activation(cfg.get("act_func", "relu6")),
    )


def parse_net_config(config: dict[str, Any], resolution: int = 224, name: str = "") -> ArchSpec:
    """An ArchSpec from a parsed net.config. Zero layers (skipped blocks) are dropped."""
    try:
        layers = tuple(
            _mbconv(block["mobile_inverted_conv"])
            for block in config["blocks"]
            if block["mobile_inverted_conv"]["name"] != "ZeroLayer"
        )
        classifier_cfg = config["classifier"]
        classifier = Dense(
            classifier_cfg["in_features"], classifier_cfg["out_features"], bias=classifier_cfg.get("bias", True)
        )
        mix = _conv(config["feature_mix_layer"])
        if "final_expand_layer" in config:
            final = _conv(config["final_expand_layer"])
            head = (final, GlobalPool(final.out_ch), mix)
        else:
            head = (mix, GlobalPool(mix.out_ch))
        return ArchSpec(
            resolution=resolution,
            stem=(_conv(config["first_conv"]),),
            layers=layers,
            head=head,
            classifier=classifier,
            name=name or config.get("name", ""),
        )
    except KeyError as exc:
        raise SpecError(f"net config: missing key {exc.args[0]!r}") from None
