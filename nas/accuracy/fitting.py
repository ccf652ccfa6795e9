"""Fitting an accuracy estimator on a trained supernet: subnets drawn and evaluated with
inherited weights (resumable: each result is appended as it comes), a held-out fifth, the weight
penalty chosen on validation, the fit and its held-out error. `python -m nas.fit_accuracy` is
the command."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import read_json_lines, write_atomic
from nas.accuracy.estimator import AccuracyPredictor, fit, proxy_scope, rank_metrics
from nas.training.evaluation import open_evaluator
from nas.training.run import Run

DATASET = "accuracy/subnets.jsonl"
HELD_OUT = 0.2
L2_GRID = (0.01, 0.03, 0.1, 0.3)


class SamplesError(InputError):
    """A subnet-evaluation file made with other settings, or damaged before its last line."""


@dataclass(frozen=True)
class Sampling:
    """Which subnets are evaluated and how: the settings the samples file is keyed by."""

    subnets: int
    val_images: int  # the first N images of the test split score each subnet
    calib_images: int
    seed: int


def draw_subnets(layout, names: list[str], count: int, seed: int) -> list[tuple[int, ...]]:
    """`count` subnets distinct in the dimensions the supernet sees: the largest, the smallest,
    then uniform samples in a seeded order (so a longer list extends a shorter one)."""
    index = [i for i, d in enumerate(layout.space.dimensions) if d.name in names]
    rng = np.random.default_rng([seed, 11])
    drawn, seen = [], set()
    candidates = iter([layout.largest_choices, layout.smallest_choices])
    while len(drawn) < count:
        choices = next(candidates, None) or layout.space.sample(rng)
        key = tuple(choices[i] for i in index)
        if key not in seen:
            seen.add(key)
            drawn.append(choices)
    return drawn


def read_rows(path: Path, header: dict) -> list[dict]:
    """Rows already evaluated. A last line cut short by a kill is dropped (and rewritten later)."""
    if not path.exists():
        return []
    lines = read_json_lines(path, SamplesError, torn_last_line=True).records
    stored = lines[0][1] if lines else None
    if stored != header:
        raise SamplesError(
            f"{path} was made with other settings ({stored}); use them again, or move the file away to start over"
        )
    return [row for _, row in lines[1:]]


def collect(
    run_folder: Run, sampling: Sampling, names: list[str], progress: Callable[[int, int, float], None]
) -> tuple[list[dict], dict]:
    """The evaluated subnets (those already in RUN/accuracy/subnets.jsonl, then the rest, each
    appended as it comes) and the file's header. `progress(done, total, seconds)` after each."""
    trained, evaluator, data = open_evaluator(run_folder, sampling.calib_images, None)
    if sampling.val_images > len(data.test_y):
        raise SamplesError(f"--val-images {sampling.val_images} exceeds the {len(data.test_y)} test images")
    layout = trained.layout
    header = {
        "kind": "platform-nas/accuracy-samples",
        "schema_version": 1,
        "supernet_step": trained.step,
        "val_images": sampling.val_images,
        "calib_images": sampling.calib_images,
        "seed": sampling.seed,
    }
    path = run_folder.path / DATASET
    rows = read_rows(path, header)
    subnets = draw_subnets(layout, names, sampling.subnets, sampling.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    # rewritten whole first: this drops a line torn by a kill before anything is appended
    write_atomic(path, "".join(json.dumps(line) + "\n" for line in [header, *rows]))
    progress(len(rows), len(subnets), 0.0)
    with path.open("a") as sink:
        for i in range(len(rows), len(subnets)):
            began = time.perf_counter()
            choices = subnets[i]
            top1 = evaluator.top1(trained.params, layout.subnet(choices), sampling.val_images)
            row = {"index": i, "choices": list(choices), "top1": top1, "seconds": round(time.perf_counter() - began, 2)}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            rows.append(row)
            progress(len(rows), len(subnets), row["seconds"])
    return rows[: sampling.subnets], header


def choose_l2(space, names, choices, top1, steps, seed) -> tuple[float, dict[str, float]]:
    """The weight penalty with the best Kendall tau on a fifth of the training subnets (the
    held-out test fifth is not looked at), from a small grid."""
    order = np.random.default_rng([seed, 17]).permutation(len(top1))
    cut = len(top1) // 5
    val, train = order[:cut], order[cut:]
    tried = {}
    for l2 in L2_GRID:
        predictor = fit(space, names, choices[train], top1[train], steps=steps, l2=l2, seed=seed)
        tried[str(l2)] = rank_metrics(predictor.scorer(space)(choices[val]), top1[val])["kendall_tau"]
    # a penalty so strong that every prediction is the same has no tau (NaN): never chosen
    return float(max(tried, key=lambda k: -np.inf if np.isnan(tried[k]) else tried[k])), tried


def fit_held_out(
    space, names: list[str], rows: list[dict], seed: int, steps: int, info: dict
) -> tuple[AccuracyPredictor, int, int]:
    """Holds out a seeded fifth of `rows`, chooses the penalty on the rest, fits on the rest and
    records the held-out error in the estimator's info. Returns (estimator, fitted, held out)."""
    choices = np.array([r["choices"] for r in rows])
    top1 = np.array([r["top1"] for r in rows])
    order = np.random.default_rng([seed, 13]).permutation(len(rows))
    cut = int(round(len(rows) * HELD_OUT))
    test, train = order[:cut], order[cut:]
    info = {**info, "samples": {**info["samples"], "top1_range": [float(top1.min()), float(top1.max())]}}
    l2, tried = choose_l2(space, names, choices[train], top1[train], steps, seed)
    info["l2_selection"] = tried
    scope = proxy_scope(space.name, info["supernet"], info["samples"]["val_images"])
    predictor = fit(space, names, choices[train], top1[train], steps=steps, l2=l2, seed=seed, info=info, scope=scope)
    predictor.info["held_out"] = rank_metrics(predictor.scorer(space)(choices[test]), top1[test])
    return predictor, len(train), len(test)
