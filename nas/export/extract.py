"""A subnet taken out of a trained supernet: its spec as trained, and a plain network with the
weights it inherits and batch-norm statistics recalibrated for it (as `nas.evaluate` does).

This is where every export starts, and what the exported model is verified against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from flax import nnx

from nas.options import DEFAULT_CALIB_IMAGES
from nas.supernet.layers import Mode
from nas.supernet.match import NotASubnet, match_spec
from nas.supernet.model import SpecNet
from nas.supernet.subnet import subnet_model
from nas.supernet.supernet import Layout
from nas.training.data import Dataset, Normalizer
from nas.training.evaluation import open_evaluator
from nas.training.run import Run
from search_spaces.arch_spec import ArchSpec


@dataclass
class Extracted:
    spec: ArchSpec  # the network the supernet trains (its proxy form, at the data's resolution)
    model: SpecNet  # inherited weights, batch-norm statistics recalibrated for this subnet
    normalizer: Normalizer  # what the network's input must go through first
    data: Dataset
    provenance: dict[str, Any]

    def logits(self, images: np.ndarray, batch: int = 250) -> np.ndarray:
        """The Flax subnet's outputs (eval mode) for uint8 images, in float32."""
        graphdef, state = nnx.split(self.model)
        forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x, Mode("eval")))
        out = [np.asarray(forward(state, self.normalizer(images[i : i + batch]))) for i in range(0, len(images), batch)]
        return np.concatenate(out)


def extract(supernet: str, arch: str, calib_images: int = DEFAULT_CALIB_IMAGES, step: int | None = None) -> Extracted:
    """Fails with one line (NotASubnet) when `arch` is not a subnet of the supernet, naming the
    first layer that differs, before anything is loaded."""
    run_folder = Run.open(supernet)
    wanted = ArchSpec.load(arch)
    try:
        choices = match_spec(Layout(run_folder.config.supernet), wanted)
    except NotASubnet as exc:
        raise NotASubnet(f"{arch}: not a subnet of the supernet in {supernet}: {exc}") from None
    trained, evaluator, data = open_evaluator(run_folder, calib_images, step)
    run_folder.close()
    layout = trained.layout
    stats = evaluator.recalibrate(trained.params, layout.subnet(choices))
    spec, model = subnet_model(nnx.merge(trained.graphdef, trained.params, stats), layout, choices)
    spec = spec.with_name(f"{wanted.name or 'subnet'} ({supernet} step {trained.step})")
    provenance = {
        "arch": arch,
        "arch_spec_hash": wanted.content_hash(),
        "supernet": str(supernet),
        "step": trained.step,
        "data": data.name,
        "bn_recalibration_images": len(evaluator.calib),
        "bn_eps": run_folder.config.supernet.bn_eps,
        "choices": layout.space.values(choices),
    }
    return Extracted(spec, model, run_folder.config.normalizer, data, provenance)
