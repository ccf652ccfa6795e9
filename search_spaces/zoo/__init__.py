"""Published architectures as ArchSpecs, by name: `get("mobilenet_v2_1.0", resolution=224)`.

Each family module cites the reference definition it follows; `published` holds each network's
published ImageNet top-1 and where it is published. `get` also builds pytorchcv's networks whose
latencies were published (search_spaces.zoo.pytorchcv, `pytorchcv_names()`); `names()` lists the zoo
only. `python -m search_spaces.zoo` lists and shows both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from search_spaces.arch_spec import ArchSpec
from search_spaces.zoo.mobilenet import mobilenet_v1, mobilenet_v2, mobilenet_v3
from search_spaces.zoo.nas_models import FBNET_OPS, PROXYLESS, fbnet, proxylessnas
from search_spaces.zoo.published import PUBLISHED_TOP1
from search_spaces.zoo.pytorchcv import MODELS as PYTORCHCV
from search_spaces.zoo.tpu_models import LITE_PARAMS, efficientnet_lite, mnasnet


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str
    build: Callable[..., ArchSpec]  # (resolution=..., num_classes=...) -> ArchSpec
    resolution: int = 224
    top1: float | None = None  # published ImageNet top-1 (%), float model at `resolution`; None: none found
    top1_source: str = ""  # where `top1` is published, or why there is none


def _entries() -> list[ZooEntry]:
    entries = [ZooEntry(f"mobilenet_v1_{a}", "mobilenet_v1", partial(mobilenet_v1, a)) for a in (0.25, 0.5, 0.75, 1.0)]
    entries += [
        ZooEntry(f"mobilenet_v2_{a}", "mobilenet_v2", partial(mobilenet_v2, a)) for a in (0.35, 0.5, 0.75, 1.0, 1.4)
    ]
    for size in ("large", "small"):
        entries += [
            ZooEntry(f"mobilenet_v3_{size}_{a}", f"mobilenet_v3_{size}", partial(mobilenet_v3, size, a))
            for a in (0.35, 0.5, 0.75, 1.0, 1.25)
        ]
    entries += [ZooEntry(f"mnasnet_{v}", "mnasnet", partial(mnasnet, v)) for v in ("a1", "b1")]
    entries += [ZooEntry(f"proxylessnas_{v}", "proxylessnas", partial(proxylessnas, v)) for v in PROXYLESS]
    entries += [ZooEntry(f"fbnet_{v}", "fbnet", partial(fbnet, v)) for v in FBNET_OPS]
    entries.append(ZooEntry("spnasnet", "spnasnet", partial(mnasnet, "spnasnet")))
    entries += [
        ZooEntry(f"efficientnet_lite{i}", "efficientnet_lite", partial(efficientnet_lite, i), LITE_PARAMS[i][2])
        for i in LITE_PARAMS
    ]
    return entries


def _with_published_top1(entry: ZooEntry) -> ZooEntry:
    top1, source = PUBLISHED_TOP1[entry.name]  # a KeyError here: a new model lacks its row in published.py
    return replace(entry, top1=top1, top1_source=source)


ZOO: dict[str, ZooEntry] = {entry.name: _with_published_top1(entry) for entry in _entries()}


def names() -> list[str]:
    return list(ZOO)


def pytorchcv_names() -> list[str]:
    """pytorchcv's networks `get` builds that are not zoo models (search_spaces.zoo.pytorchcv)."""
    return [name for name in PYTORCHCV if name not in ZOO]


def _entry(name: str) -> ZooEntry:
    if name not in ZOO:
        known = len(ZOO) + len(pytorchcv_names())
        raise KeyError(f"unknown zoo model {name!r}; `python -m search_spaces.zoo list` shows the {known} known")
    return ZOO[name]


def get(name: str, resolution: int | None = None, num_classes: int = 1000) -> ArchSpec:
    """The named architecture at `resolution` (default: the one it was published at; pytorchcv's
    networks: 224)."""
    if name not in ZOO and name in PYTORCHCV:
        return PYTORCHCV[name].build(resolution=resolution or 224, num_classes=num_classes).with_name(name)
    entry = _entry(name)
    return entry.build(resolution=resolution or entry.resolution, num_classes=num_classes).with_name(name)


def published_top1(name: str) -> tuple[float, str] | None:
    """(ImageNet top-1 in percent, source) as published for the named model at its published
    resolution, or None where no figure was found (`ZOO[name].top1_source` says why)."""
    entry = _entry(name)
    return None if entry.top1 is None else (entry.top1, entry.top1_source)
