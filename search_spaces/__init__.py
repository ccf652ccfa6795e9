"""Architectures: the ArchSpec IR, the search spaces that produce it and the zoo of published ones."""

from search_spaces.arch_spec import (
    ArchSpec,
    Conv,
    Dense,
    DWSeparable,
    FusedMBConv,
    GlobalPool,
    Identity,
    MBConv,
    Norm,
    Pool,
    ResBlock,
    SpecError,
)
from search_spaces.fbnet import FBNetSpace
from search_spaces.mbv3 import MobileNetV3Space
from search_spaces.proxyless import ProxylessSpace
from search_spaces.space import Choices, ChoiceSpace, Dimension, SearchSpace, make_divisible

SPACES = {
    "mbv3": MobileNetV3Space,
    "proxyless": ProxylessSpace,
    "fbnet": FBNetSpace,
    "fbnet_cifar": lambda **kw: FBNetSpace(config="cifar", **kw),
}
DEFAULT_SPACE = "mbv3"


def get_space(name: str = DEFAULT_SPACE, **kwargs) -> ChoiceSpace:
    """A search space by name; kwargs (num_classes, in_channels, ...) go to its constructor."""
    if name not in SPACES:
        raise ValueError(f"unknown search space {name!r} (known: {', '.join(SPACES)})")
    return SPACES[name](**kwargs)


__all__ = [
    "ArchSpec",
    "Conv",
    "Dense",
    "DWSeparable",
    "FusedMBConv",
    "GlobalPool",
    "Identity",
    "MBConv",
    "Norm",
    "Pool",
    "ResBlock",
    "SpecError",
    "ChoiceSpace",
    "Choices",
    "Dimension",
    "SearchSpace",
    "make_divisible",
    "FBNetSpace",
    "MobileNetV3Space",
    "ProxylessSpace",
    "SPACES",
    "DEFAULT_SPACE",
    "get_space",
]
