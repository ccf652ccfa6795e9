"""The `--format flax` export: a standalone Flax NNX network that loads without the supernet.

DIR/spec.json      the ArchSpec of the network (what `SpecNet` builds)
DIR/export.json    input normalisation, batch-norm epsilon and provenance
DIR/checkpoint/    Orbax checkpoint of the network's state (parameters and batch statistics)

  from nas.export.to_flax import load
  model, spec, normalizer = load("DIR")
  logits = model(normalizer(uint8_images), Mode("eval"))
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from common.errors import InputError
from common.files import check_document, check_new_folder, read_json
from nas.export.extract import Extracted
from nas.supernet.model import SpecNet
from nas.training.data import Normalizer
from search_spaces.arch_spec import ArchSpec

KIND = "platform-nas/flax-export"


class FlaxExportError(InputError):
    """A folder that is not a Flax export written by `save`, or one `save` will not write into."""


def save(extracted: Extracted, out: str | os.PathLike) -> None:
    """Writes DIR whole or not at all, and only where there was nothing: built in a sibling
    folder, then renamed into place, a rename the system makes only onto an absent or empty
    folder. A folder that holds anything is refused and left as it was."""
    out = Path(out).absolute()
    check_new_folder(out, FlaxExportError, "a Flax export")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        (staging / "spec.json").write_text(extracted.spec.to_json() + "\n")
        meta = {
            "kind": KIND,
            "schema_version": 1,
            "normalizer": dataclasses.asdict(extracted.normalizer),
            "bn_eps": extracted.provenance["bn_eps"],
            "provenance": extracted.provenance,
        }
        (staging / "export.json").write_text(json.dumps(meta, indent=2) + "\n")
        state = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(extracted.model)))
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(staging / "checkpoint", state)
        try:
            os.rename(staging, out)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise FlaxExportError(f"{out} is not empty (filled while the export was made): nothing replaced") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load(folder: str | os.PathLike) -> tuple[SpecNet, ArchSpec, Normalizer]:
    folder = Path(folder).absolute()
    meta = check_document(
        read_json(folder / "export.json", FlaxExportError), KIND, 1, FlaxExportError, str(folder / "export.json"),
        "a Flax export",
    )  # fmt: skip
    spec = ArchSpec.load(folder / "spec.json")
    model = SpecNet(spec, eps=meta["bn_eps"])
    state = nnx.state(model)
    target = jax.tree.map(np.asarray, nnx.to_pure_dict(state))
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(folder / "checkpoint", target)
    nnx.replace_by_pure_dict(state, restored)
    nnx.update(model, state)
    normalizer = Normalizer(tuple(meta["normalizer"]["mean"]), tuple(meta["normalizer"]["std"]))
    return model, spec, normalizer
