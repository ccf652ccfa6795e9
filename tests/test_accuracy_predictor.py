"""The accuracy predictor: its vectorised encoding equals the space's, it learns a known
function of the architecture well enough to rank held-out subnets, and it round-trips through
JSON exactly; a file for another space or a broken file is refused with a reason."""

import json
import re

import numpy as np
import pytest

from latency_models.predictor.batch import SpaceCost
from nas.accuracy.estimator import AccuracyPredictor, Encoder, EstimatorError, fit, rank_metrics, supernet_dimensions
from nas.accuracy.scope import Scope
from search_spaces import get_space
from search_spaces.mbv3 import MobileNetV3Space

SCOPE = Scope("mbv3", {}, (28,), "proxy", 1, 10, "synthetic", "a known function of the architecture")


@pytest.fixture(scope="module")
def space():
    return MobileNetV3Space(num_classes=10, in_channels=1)


@pytest.mark.parametrize("name", ["mbv3", "proxyless", "fbnet"])
def test_encoder_equals_the_space_encoding(name):
    space = get_space(name)
    rng = np.random.default_rng(1)
    choices = np.array([space.sample(rng) for _ in range(64)])
    encoder = Encoder(space, [d.name for d in space.dimensions])
    assert np.array_equal(encoder(choices), np.stack([space.encode(tuple(c)) for c in choices]))


def test_the_supernet_encoding_leaves_out_the_resolution(space):
    names = supernet_dimensions(space)
    assert "resolution" not in names and len(names) == len(space.dimensions) - 1
    a = list(space.sample(np.random.default_rng(0)))
    b = list(a)
    b[0] = (a[0] + 1) % len(space.dimensions[0].options)  # another resolution, same network otherwise
    encoder = Encoder(space, names)
    assert np.array_equal(encoder(np.array([a])), encoder(np.array([b])))


def test_fit_ranks_held_out_subnets_and_round_trips(space, tmp_path):
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(500)])
    # a known target, not linear in the encoding: log-MACs at one resolution (the supernet sees one)
    one_resolution = choices.copy()
    one_resolution[:, 0] = 0
    macs = np.log(SpaceCost(space)(one_resolution))
    top1 = 0.85 + 0.05 * (macs - macs.min()) / (macs.max() - macs.min())
    predictor = fit(
        space, supernet_dimensions(space), choices[:400], top1[:400], steps=1500, info={"note": "test"}, scope=SCOPE
    )
    held_out = rank_metrics(predictor.scorer(space)(choices[400:]), top1[400:])
    assert held_out["kendall_tau"] > 0.8 and held_out["rmse_points"] < 0.5
    path = tmp_path / "predictor.json"
    predictor.save(path)
    again = AccuracyPredictor.load(path)
    assert np.array_equal(again.scorer(space)(choices), predictor.scorer(space)(choices))
    assert again.info["note"] == "test" and again.info["fit"]["subnets"] == 400
    assert again.scope == SCOPE


def test_a_version_1_file_reads_with_the_scope_its_provenance_gives(space, tmp_path):
    """nas.fit_accuracy wrote version 1 files without a scope: they score the proxy form of the
    supernet their provenance names."""
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(20)])
    data = fit(space, supernet_dimensions(space), choices, np.linspace(0.8, 0.9, 20), steps=10, scope=SCOPE).to_dict()
    del data["scope"]
    data["schema_version"] = 1
    data["info"] = {
        "supernet": {
            "proxy_resolution": 28,
            "data": {"name": "fashion-mnist", "channels": 1, "classes": list("abcdefghij")},
        },
        "samples": {"val_images": 2000},
    }
    scope = AccuracyPredictor.from_dict(data).scope
    assert (scope.form, scope.resolutions, scope.in_channels, scope.classes) == ("proxy", (28,), 1, 10)
    del data["info"]["supernet"]
    with pytest.raises(EstimatorError, match="without its supernet's provenance"):
        AccuracyPredictor.from_dict(data)


def test_refuses_another_space_and_broken_files(space, tmp_path):
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(20)])
    predictor = fit(space, supernet_dimensions(space), choices, np.linspace(0.8, 0.9, 20), steps=10, scope=SCOPE)
    with pytest.raises(EstimatorError, match="for space 'mbv3', not 'fbnet'"):
        predictor.encoder(get_space("fbnet"))
    data = predictor.to_dict()
    data["dimensions"][1]["options"] = [0.5]
    with pytest.raises(EstimatorError, match="differs from the space"):
        AccuracyPredictor.from_dict(data).encoder(space)
    mapping = {"slope": 1.0, "intercept": -0.03, "to": "t", "loo_rmse_points": 0.1, "loo_max_points": 0.2}
    mapping |= {"fitted_on": ["a"], "raw_range": [0.8, 0.82], "source": "s"}
    damaged = [
        {"form": "sideways"},
        {"classes": 10**12},
        {"resolutions": [100000]},
        {"in_channels": 0},
        {"space_args": {"in_channels": 3}},
        {"mapping": {**mapping, "raw_range": [0.5]}},
        {"mapping": {**mapping, "slope": "nan"}},
        {"mapping": {**mapping, "raw_range": [0.9, 0.8]}},
    ]
    for change in damaged:
        data = predictor.to_dict()
        data["scope"] |= change
        with pytest.raises(EstimatorError, match="malformed"):
            AccuracyPredictor.from_dict(data)
    data = predictor.to_dict()
    data["scope"]["mapping"] = mapping
    assert AccuracyPredictor.from_dict(data).scope.mapping.covers(0.81)  # the well-formed one reads
    bad = tmp_path / "bad.json"
    for text, message in [("{", "not JSON"), (json.dumps({"kind": "x"}), "not an accuracy predictor")]:
        bad.write_text(text)
        with pytest.raises(EstimatorError, match=message):
            AccuracyPredictor.load(bad)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(layers=[]), "layers: an estimator needs at least one layer"),
        (lambda d: d["layers"][0]["w"][0].__setitem__(0, float("nan")), "layers[0]: holds a value"),
        (lambda d: d["layers"][-1]["b"].append(0.0), "w must be [in, out] and b [out]"),
        (lambda d: d["layers"].pop(0), "the encoding of its dimensions has"),
        (lambda d: d.update(mean=float("inf")), "mean: must be a top-1 fraction in [0, 1], got inf"),
        (lambda d: d.update(mean=1.9), "mean: must be a top-1 fraction in [0, 1], got 1.9"),
    ],
)
def test_an_estimator_that_cannot_score_is_refused(space, edit, message):
    """Without these checks an estimator with no layers scored 188.97% and a NaN one wrote NaN."""
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(20)])
    predictor = fit(space, supernet_dimensions(space), choices, np.linspace(0.8, 0.9, 20), steps=10, scope=SCOPE)
    data = json.loads(json.dumps(predictor.to_dict()))
    edit(data)
    with pytest.raises(EstimatorError, match=re.escape(message)):
        AccuracyPredictor.from_dict(data, "e.json").encoder(space)
