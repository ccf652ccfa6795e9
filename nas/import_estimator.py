"""`python -m nas.import_estimator`: Once-for-All's ImageNet accuracy predictor as this project's
estimator (the bundled `imagenet` one), with its mapping onto fine-tuned top-1.

  python -m nas.import_estimator                     # rebuilds nas/accuracy/estimators/ofa-mbv3-w1.2-imagenet.json

Reads the predictor's PyTorch file without torch and without running anything in it (only the
three globals a float state dict needs are admitted; any other ends the import with exit 2),
and fits the map from its raw score to the ImageNet top-1 of Once-for-All's width-1.2 networks
that were specialised and fine-tuned (nas.accuracy.ofa_predictor). Both inputs default to the
repository's data/accuracy-data (see data/README.md for their provenance).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from common.cli import ArgumentParser, run
from nas.accuracy.estimator import BUNDLED
from nas.accuracy.ofa_predictor import DATA, SOURCE, convert, fit_mapping, read_specialised, space

PROG = "python -m nas.import_estimator"
SPECIALISED_SOURCE = "han-cai/files@a7c9bcd525e17404968bc55aa43772bf7e51909e:ofa/ofa_specialized/ (names give top-1)"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Import Once-for-All's ImageNet accuracy predictor as an estimator.")
    p.add_argument(
        "--predictor",
        default=str(DATA / "ofa_mbv3_w1.2_acc_predictor.pth"),
        help="Once-for-All's acc_predictor.pth (default: the repository's data/accuracy-data copy)",
    )
    p.add_argument(
        "--specialised",
        default=str(DATA / "ofa_specialized"),
        help="folder of Once-for-All's specialised networks, <name>/{net.config,run.config}, to fit the mapping on "
        "(default: the repository's data/accuracy-data/ofa_specialized)",
    )
    p.add_argument("--out", default=str(BUNDLED["imagenet"]), help="estimator JSON to write (default: the bundled one)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # an unusable --out fails here, before any work
    estimator = convert(args.predictor)
    nets = read_specialised(args.specialised)
    mapping = fit_mapping(estimator, nets, SPECIALISED_SOURCE)
    estimator.scope = dataclasses.replace(estimator.scope, mapping=mapping)
    estimator.info["made_by"] = PROG
    estimator.save(args.out)
    pinned = space()
    raw = estimator.scorer(pinned)(np.array([pinned.from_values(n.values) for n in nets]))
    for net, score in zip(nets, raw):
        print(
            f"{net.name:42s} {net.image_size} px: raw {score:.2%}, mapped {mapping(score):.2%}, measured {net.top1:.1%}"
        )
    print(
        f"mapping: fine-tuned = {mapping.slope:.4f} x raw {mapping.intercept:+.4f} on {len(nets)} networks; "
        f"leave-one-out RMSE {mapping.loo_rmse_points:.2f} points, max {mapping.loo_max_points:.2f}\n"
        f"wrote {args.out} (source: {SOURCE})",
        file=sys.stderr,
    )
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
