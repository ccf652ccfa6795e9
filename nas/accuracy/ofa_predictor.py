"""Once-for-All's ImageNet accuracy predictor as this project's estimator, and the mapping of its
raw score onto the top-1 that Once-for-All's fine-tuned networks measured.

The predictor (mit-han-lab/once-for-all, ofa/tutorial/accuracy_predictor.py) is an MLP
128-400-400-400-1 over a one-hot encoding of a subnet of the width-1.2 MobileNetV3 supernet: 20
block slots (5 stages x 4) of kernel (3, 5, 7), then 20 of expansion (3, 4, 6), then the input
resolution as (r - 112) // 16 over 112..224; the slots past a stage's depth are zeros. That is
the encoding `Encoder` builds over the mbv3 space from the dimensions below. Its output is a
fraction: the predicted ImageNet validation top-1 of the subnet with the weights it inherits
from the supernet, not fine-tuned.

Only 160..224 px is scored. Below that the file's resolution inputs carry no accuracy: it gives
Once-for-All's tutorial network 81.10/81.33/81.67% at 112/128/144 px against 79.20% at 160 px
(and every network tried likewise: all blocks smallest 76.28/76.67/76.95 against 75.31%), so
those inputs were evidently not trained (Once-for-All's tutorial searches 160..224 px). Their
input columns are dropped, which leaves every score at 160..224 unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.files import read_json
from nas.accuracy.estimator import AccuracyPredictor, EstimatorError
from nas.accuracy.scope import Mapping, Scope
from nas.accuracy.torch_legacy import read_state_dict
from search_spaces.mbv3 import DEPTHS, EXPANSIONS, KERNELS, MobileNetV3Space
from search_spaces.ofa_config import parse_net_config
from search_spaces.space import PinnedSpace

DATA = Path(__file__).resolve().parents[2] / "data" / "accuracy-data"  # the repository's copy (data/README.md)
WIDTH = 1.2
OFA_RESOLUTIONS = tuple(range(112, 225, 16))  # the predictor's resolution one-hot
SCORED_RESOLUTIONS = tuple(range(160, 225, 16))  # where it carries accuracy (see above)
SHAPES = {
    "0.weight": (400, 128),
    "0.bias": (400,),
    "2.weight": (400, 400),
    "2.bias": (400,),
    "4.weight": (400, 400),
    "4.bias": (400,),
    "6.weight": (1, 400),
    "6.bias": (1,),
}
SOURCE = (
    "Once-for-All (Cai et al., ICLR 2020): "
    "han-cai/files@a7c9bcd525e17404968bc55aa43772bf7e51909e:ofa/acc_predictor.pth, "
    "the file mit-han-lab/once-for-all's tutorial downloads"
)
MAPPING_TO = "ImageNet validation top-1 of the subnet fine-tuned from the supernet (75 epochs, as Once-for-All's)"
BLOCK_SLOTS = [(s, b) for s in range(5) for b in range(max(DEPTHS))]


def space() -> PinnedSpace:
    """The networks the predictor scores: mbv3 at width 1.2 and 160..224 px, 3 channels, 1000 classes."""
    return PinnedSpace(MobileNetV3Space(resolutions=SCORED_RESOLUTIONS), {"width": WIDTH})


def dimension_names() -> list[str]:
    kernels = [f"stage{s}.block{b}.kernel" for s, b in BLOCK_SLOTS]
    expansions = [f"stage{s}.block{b}.expansion" for s, b in BLOCK_SLOTS]
    return [*kernels, *expansions, "resolution"]


def convert(pth: str | Path) -> AccuracyPredictor:
    """The predictor in `pth` (read without torch, nothing in it executed) as an estimator."""
    tensors = read_state_dict(pth)
    shapes = {name: array.shape for name, array in tensors.items()}
    if shapes != SHAPES:
        raise EstimatorError(f"{pth}: not Once-for-All's MobileNetV3 accuracy predictor (tensors {shapes})")
    pinned = space()
    resolution_options = pinned.dimensions[[d.name for d in pinned.dimensions].index("resolution")].options
    keep = [*range(120), *(120 + OFA_RESOLUTIONS.index(r) for r in resolution_options)]
    weights = [(tensors["0.weight"].T[keep], tensors["0.bias"])]
    weights += [(tensors[f"{i}.weight"].T.copy(), tensors[f"{i}.bias"]) for i in (2, 4, 6)]
    names = dimension_names()
    dims = [{"name": d.name, "options": list(d.options)} for n in names for d in pinned.dimensions if d.name == n]
    scope = Scope(
        space=pinned.name,
        pinned={"width": WIDTH},
        resolutions=tuple(resolution_options),
        form="deployed",
        in_channels=3,
        classes=1000,
        data="ImageNet-1k validation",
        metric="Once-for-All's predicted top-1 of the subnet with weights inherited from its supernet (not fine-tuned)",
    )
    info = {
        "source": SOURCE,
        "source_sha256": hashlib.sha256(Path(pth).read_bytes()).hexdigest(),
        "encoding": "one-hot: kernel of 20 block slots, expansion of 20 block slots, resolution "
        "(the 112, 128 and 144 px columns dropped: not trained)",
    }
    return AccuracyPredictor(pinned.name, dims, weights, 0.0, info, scope)


@dataclass(frozen=True)
class Specialised:
    """One of Once-for-All's published networks specialised for a device and fine-tuned."""

    name: str
    values: dict[str, Any]  # the mbv3 choices, resolution included
    image_size: int
    top1: float  # ImageNet validation top-1 after fine-tuning (fraction), from the name


def read_specialised(folder: str | Path) -> list[Specialised]:
    """The width-1.2 MobileNetV3 networks among `folder`'s `<name>/{net.config,run.config}` that
    were fine-tuned for 75 epochs and run at a resolution the predictor scores. (Once-for-All's
    own encoding would score a 220 px network as 208 px and a 228 or 236 px one as 224 px; those
    four networks lie 0.3 points closer to their raw score than the four at 224 px, a bias of the
    encoding, so they are left out.) Each network's layers are checked to be exactly the space's
    network for the choices read off it."""
    pinned = space()
    nets = []
    try:
        for path in sorted(Path(folder).iterdir()):
            config = read_json(path / "net.config", EstimatorError, "a network config")
            image_size = int(read_json(path / "run.config", EstimatorError, "a run config")["image_size"])
            if config.get("name") != "MobileNetV3" or config["first_conv"]["out_channels"] != 24:
                continue  # another supernet (width 1.0, ProxylessNAS)
            if image_size not in SCORED_RESOLUTIONS or not path.name.endswith("_finetune-75"):
                continue
            values = _choices(config, image_size)
            spec = parse_net_config(config, resolution=image_size)
            if pinned.materialize(pinned.from_values(values)).content_hash() != spec.content_hash():
                raise EstimatorError(f"{path.name}: its layers are not the mbv3 space's network for {values}")
            top1 = float(path.name.split("_top1-")[1].split("_")[0]) / 100
            nets.append(Specialised(path.name, values, image_size, top1))
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise EstimatorError(
            f"{folder}: not Once-for-All's specialised networks ({type(exc).__name__}: {exc})"
        ) from None
    return nets


def _choices(config: dict[str, Any], resolution: int) -> dict[str, Any]:
    blocks = [
        b["mobile_inverted_conv"] for b in config["blocks"][1:] if b["mobile_inverted_conv"]["name"] != "ZeroLayer"
    ]
    values: dict[str, Any] = {"resolution": resolution, "width": WIDTH}
    stage, index, previous = -1, 0, None
    for block in blocks:
        if block["out_channels"] != previous:
            stage, index, previous = stage + 1, 0, block["out_channels"]
        if block["kernel_size"] not in KERNELS or block["expand_ratio"] not in EXPANSIONS:
            raise EstimatorError(f"block of stage {stage}: kernel/expansion outside the mbv3 space")
        values[f"stage{stage}.block{index}.kernel"] = block["kernel_size"]
        values[f"stage{stage}.block{index}.expansion"] = block["expand_ratio"]
        index += 1
        values[f"stage{stage}.depth"] = index
    return values


def fit_mapping(estimator: AccuracyPredictor, nets: list[Specialised], source: str) -> Mapping:
    """The raw score's map onto the fine-tuned top-1 over `nets`: a constant offset (slope 1) or a
    least-squares line, whichever predicts each network better when fitted on the others (the
    leave-one-out error it carries). A handful of networks over a narrow range cannot pin a slope
    that holds far from them; an offset extrapolates more safely, and the file says the range."""
    if len(nets) < 3:
        raise EstimatorError(f"a mapping needs at least 3 fine-tuned networks, got {len(nets)}")
    pinned = space()
    raw = estimator.scorer(pinned)(np.array([pinned.from_values(n.values) for n in nets])).astype(np.float64)
    top1 = np.array([n.top1 for n in nets])

    def offset(x, y):
        return 1.0, float(np.mean(y - x))

    def line(x, y):
        slope, intercept = np.polyfit(x, y, 1)
        return float(slope), float(intercept)

    def loo_errors(fit):
        errors = []
        for i in range(len(nets)):
            keep = np.arange(len(nets)) != i
            slope, intercept = fit(raw[keep], top1[keep])
            errors.append(slope * raw[i] + intercept - top1[i])
        return np.array(errors) * 100

    errors, fit = min(((loo_errors(f), f) for f in (offset, line)), key=lambda pair: np.sqrt(np.mean(pair[0] ** 2)))
    slope, intercept = fit(raw, top1)
    return Mapping(
        slope=slope,
        intercept=intercept,
        to=MAPPING_TO,
        loo_rmse_points=float(np.sqrt(np.mean(errors**2))),
        loo_max_points=float(np.max(np.abs(errors))),
        fitted_on=tuple(n.name for n in nets),
        raw_range=(float(raw.min()), float(raw.max())),
        source=source,
    )
