"""An accuracy predictor: a small MLP from a subnet's encoding to its supernet top-1.

Evaluating one subnet on the supernet takes seconds (batch-norm recalibration, then a pass over
validation images); the search scores tens of thousands. As in Once-for-All, a few hundred to a
few thousand supernet-evaluated subnets train an MLP on the space's one-hot encoding, which then
scores any candidate in microseconds. The encoding leaves out the dimensions the supernet does
not see (the input resolution: the supernet trains one proxy resolution), so the predictor says
nothing about them; the search fixes them.

Every estimator declares what it scores (nas.accuracy.scope): an imported one (Once-for-All's
ImageNet predictor, nas.import_estimator) scores deployed networks at several resolutions; one
fitted here scores the proxy form its supernet trains.

Fitting is JAX + Optax; prediction is plain numpy (the search scores thousands of candidates a
call and should not pay a compile). Saved as JSON with its provenance, never pickled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common.errors import InputError
from common.files import check_document, read_json, write_atomic
from common.stats import kendall_tau
from common.values import all_finite, is_number
from nas.accuracy.scope import Scope
from search_spaces.space import ChoiceSpace

SCHEMA_VERSION = 2  # 2: the "scope" block (what it scores); version 1 files are read, their scope inferred
KIND = "platform-nas/accuracy-predictor"
BUNDLED_FOLDER = Path(__file__).resolve().parent / "estimators"
BUNDLED = {
    # Once-for-All's ImageNet predictor for its width-1.2 MobileNetV3 supernet (nas.import_estimator)
    "imagenet": BUNDLED_FOLDER / "ofa-mbv3-w1.2-imagenet.json",
    # fitted by nas.fit_accuracy on the Fashion-MNIST supernet runs/default
    "fashion-mnist": BUNDLED_FOLDER / "mbv3-fashion-mnist.json",
}
DEFAULT_ESTIMATOR = "imagenet"


class EstimatorError(InputError):
    """A predictor file that cannot be used (malformed, or for another space)."""


class Encoder:
    """One-hot encoding of the chosen dimensions of a space, vectorised over [N, dims] arrays
    of option indices. A dimension gated off (a block past its stage's depth) encodes as zeros,
    as `ChoiceSpace.encode` does."""

    def __init__(self, space: ChoiceSpace, names: Sequence[str]):
        index = {d.name: i for i, d in enumerate(space.dimensions)}
        missing = [name for name in names if name not in index]
        if missing:
            raise EstimatorError(f"space {space.name!r} has no dimension {missing[0]!r}")
        self.space, self.names = space, tuple(names)
        self.dims = np.array([index[name] for name in names])
        sizes = np.array([len(space.dimensions[i].options) for i in self.dims])
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.size = int(sizes.sum())
        # active[k, j]: is encoded dimension k present when its gating depth takes option j?
        gates = [space.dimensions[i].gate for i in self.dims]
        self.gate_dim = np.array([gate[0] if gate else 0 for gate in gates])
        width = max(len(d.options) for d in space.dimensions)
        self.active = np.ones((len(gates), width), dtype=bool)
        for k, gate in enumerate(gates):
            if gate is not None:
                depths = space.dimensions[gate[0]].options
                self.active[k, : len(depths)] = [depth > gate[1] for depth in depths]

    def __call__(self, choices: np.ndarray) -> np.ndarray:
        choices = np.atleast_2d(np.asarray(choices, dtype=np.int64))
        picked = choices[:, self.dims]
        active = self.active[np.arange(len(self.dims)), choices[:, self.gate_dim]]
        out = np.zeros((len(choices), self.size), dtype=np.float32)
        rows = np.repeat(np.arange(len(choices)), len(self.dims)).reshape(len(choices), -1)
        out[rows[active], (self.offsets + picked)[active]] = 1.0
        return out


def supernet_dimensions(space: ChoiceSpace, fixed: Sequence[str] = ("resolution",)) -> list[str]:
    """The dimensions a proxy supernet distinguishes: all but those it fixes."""
    return [d.name for d in space.dimensions if d.name not in fixed]


def estimator_path(name_or_file: str | Path | None) -> Path:
    """A bundled estimator's file by name (None: the default), or the file named."""
    name_or_file = DEFAULT_ESTIMATOR if name_or_file is None else name_or_file
    if str(name_or_file) in BUNDLED:
        path = BUNDLED[str(name_or_file)]
        if not path.exists():
            raise EstimatorError(f"the bundled estimator {name_or_file!r} is missing ({path}); reinstall the package")
        return path
    path = Path(name_or_file)
    if not path.is_file():
        raise EstimatorError(f"estimator {name_or_file}: no such file, and not a bundled name ({', '.join(BUNDLED)})")
    return path


@dataclass
class AccuracyPredictor:
    """MLP: encoding -> hidden (ReLU) x L -> top-1 (a fraction). `scope` says what networks it
    scores (None only while being fitted); `info` is the provenance."""

    space_name: str
    dimensions: list[dict[str, Any]]  # name and options of each encoded dimension, in order
    weights: list[tuple[np.ndarray, np.ndarray]]
    mean: float  # the target's mean over the training subnets: the network predicts the offset
    info: dict[str, Any] = field(default_factory=dict)
    scope: Scope | None = None

    def encoder(self, space: ChoiceSpace) -> Encoder:
        """The encoder for `space`, after checking it is the space this predictor was fitted on."""
        if space.name != self.space_name:
            raise EstimatorError(f"accuracy predictor is for space {self.space_name!r}, not {space.name!r}")
        options = {d.name: list(d.options) for d in space.dimensions}
        for dim in self.dimensions:
            if options.get(dim["name"]) != list(dim["options"]):
                found = options.get(dim["name"])
                raise EstimatorError(
                    f"accuracy predictor: dimension {dim['name']!r} differs from the space's ({found})"
                )
        encoder = Encoder(space, [d["name"] for d in self.dimensions])
        if encoder.size != self.weights[0][0].shape[0]:
            raise EstimatorError(
                f"accuracy predictor: its first layer takes {self.weights[0][0].shape[0]} inputs, "
                f"the encoding of its dimensions has {encoder.size}"
            )
        return encoder

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32)
        # Overflow gives inf, which the search refuses by name (no numpy warning on top).
        with np.errstate(over="ignore", invalid="ignore"):
            for i, (w, b) in enumerate(self.weights):
                h = h @ w + b
                if i < len(self.weights) - 1:
                    h = np.maximum(h, 0.0)
        return h[:, 0] + self.mean

    def scorer(self, space: ChoiceSpace):
        """A batch objective for the search: [N, dims] option indices -> [N] estimated top-1."""
        encode = self.encoder(space)
        return lambda choices: self.predict_features(encode(choices))

    def to_dict(self) -> dict[str, Any]:
        if self.scope is None:
            raise ValueError("an estimator is saved with its scope: what it scores")
        return {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "space": self.space_name,
            "scope": self.scope.to_dict(),
            "dimensions": self.dimensions,
            "mean": self.mean,
            "layers": [{"w": _shortest(w), "b": _shortest(b)} for w, b in self.weights],
            "info": self.info,
        }

    def save(self, path: str | Path) -> None:
        write_atomic(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def from_dict(cls, data: Any, origin: str = "accuracy predictor") -> AccuracyPredictor:
        if isinstance(data, dict) and data.get("kind") == KIND and data.get("schema_version") == 1:
            data = {**data, "schema_version": SCHEMA_VERSION, "scope": _version1_scope(data, origin)}
        data = check_document(data, KIND, SCHEMA_VERSION, EstimatorError, origin, "an accuracy predictor")
        try:
            weights = [
                (np.asarray(layer["w"], dtype=np.float32), np.asarray(layer["b"], dtype=np.float32))
                for layer in data["layers"]
            ]
            scope = Scope.from_dict(data["scope"])
            info = dict(data["info"])
            mean = float(data["mean"])
            dimensions = list(data["dimensions"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise EstimatorError(f"{origin}: malformed ({exc})") from None
        _check_network(weights, mean, origin)
        return cls(str(data["space"]), dimensions, weights, mean, info, scope)

    @classmethod
    def load(cls, path: str | Path) -> AccuracyPredictor:
        return cls.from_dict(read_json(path, EstimatorError), str(path))


def _check_network(weights: list[tuple[np.ndarray, np.ndarray]], mean: float, origin: str) -> None:
    """An MLP that can score: at least one layer, each a [in, out] matrix and [out] bias chained
    to the next, one output, every number finite, and a mean top-1 that is a fraction. Without
    this an estimator with no layers scored 188.97% and a NaN one wrote NaN results."""
    if not weights:
        raise EstimatorError(f"{origin}: layers: an estimator needs at least one layer")
    for i, (w, b) in enumerate(weights):
        where = f"{origin}: layers[{i}]"
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise EstimatorError(f"{where}: w must be [in, out] and b [out], got {list(w.shape)} and {list(b.shape)}")
        if i and w.shape[0] != weights[i - 1][0].shape[1]:
            raise EstimatorError(
                f"{where}.w: takes {w.shape[0]} inputs, the layer before gives {weights[i - 1][0].shape[1]}"
            )
        if not (all_finite(w) and all_finite(b)):
            raise EstimatorError(f"{where}: holds a value that is not a finite number")
    if weights[-1][0].shape[1] != 1:
        raise EstimatorError(f"{origin}: layers[{len(weights) - 1}]: the last layer must give one output (the top-1)")
    if not (is_number(mean) and 0 <= mean <= 1):
        raise EstimatorError(f"{origin}: mean: must be a top-1 fraction in [0, 1], got {mean}")


def _shortest(array: np.ndarray) -> list:
    """Nested lists of the shortest decimals that read back as the same float32 values (half the
    characters of float64 text)."""
    if array.ndim == 1:
        return [float(str(v)) for v in np.asarray(array, dtype=np.float32)]
    return [_shortest(row) for row in array]


def proxy_scope(space_name: str, supernet: dict[str, Any], val_images: int) -> Scope:
    """What an estimator fitted on a supernet's subnets scores: the proxy form that supernet
    trains (`supernet` is the "supernet" block of fit_accuracy's provenance)."""
    data = supernet["data"]
    args = dict(supernet.get("space_args", {}))
    return Scope(
        space=space_name,
        pinned={},
        resolutions=(int(supernet["proxy_resolution"]),),
        form="proxy",
        in_channels=int(args.pop("in_channels", data["channels"])),
        classes=int(args.pop("num_classes", len(data["classes"]))),
        data=f"{data['name']} (first {val_images} test images)",
        metric="top-1 of the subnet with weights inherited from the supernet, batch norm recalibrated",
        space_args=args,
    )


def _version1_scope(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """Version 1 files came from nas.fit_accuracy only: their provenance says what they score."""
    try:
        info = data["info"]
        return proxy_scope(str(data["space"]), info["supernet"], int(info["samples"]["val_images"])).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        raise EstimatorError(f"{origin}: a version 1 estimator without its supernet's provenance ({exc})") from None


def fit(
    space: ChoiceSpace,
    names: Sequence[str],
    choices: np.ndarray,
    top1: np.ndarray,
    hidden: Sequence[int] = (256, 256),
    steps: int = 3000,
    learning_rate: float = 1e-3,
    l2: float = 0.1,
    seed: int = 0,
    info: dict[str, Any] | None = None,
    scope: Scope | None = None,
) -> AccuracyPredictor:
    """Full-batch Adam on the mean squared error of the standardised top-1, plus `l2` times the
    squared weights: a few hundred subnets are enough for an unregularised MLP to memorise them
    and extrapolate wildly between. Deterministic for a seed."""
    encoder = Encoder(space, names)
    x = jnp.asarray(encoder(choices))
    y = np.asarray(top1, dtype=np.float32)
    mean, scale = float(y.mean()), float(max(y.std(), 1e-6))
    target = jnp.asarray((y - mean) / scale)
    sizes = [encoder.size, *hidden, 1]
    keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
    params = [
        (jax.random.normal(k, (a, b)) * np.sqrt(2.0 / a), jnp.zeros(b)) for k, a, b in zip(keys, sizes[:-1], sizes[1:])
    ]

    def forward(p, inputs):
        h = inputs
        for i, (w, b) in enumerate(p):
            h = h @ w + b
            if i < len(p) - 1:
                h = jax.nn.relu(h)
        return h[:, 0]

    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
    state = optimizer.init(params)

    def loss_fn(p):
        return jnp.mean((forward(p, x) - target) ** 2) + l2 * sum(jnp.sum(w**2) for w, _ in p)

    @jax.jit
    def step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    for _ in range(steps):
        params, state, loss = step(params, state)
    dims = [{"name": space.dimensions[i].name, "options": list(space.dimensions[i].options)} for i in encoder.dims]
    meta = dict(info or {})
    meta["fit"] = {
        "subnets": len(y),
        "hidden": list(hidden),
        "steps": steps,
        "l2": l2,
        "seed": seed,
        "train_rmse_points": float(np.sqrt(np.mean((np.asarray(forward(params, x)) * scale + mean - y) ** 2)) * 100),
    }
    # the output layer absorbs the standardisation, so prediction is the plain MLP plus the mean
    *hidden_layers, (w_out, b_out) = params
    params = [*hidden_layers, (w_out * scale, b_out * scale)]
    weights = [(np.asarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32)) for w, b in params]
    return AccuracyPredictor(space.name, dims, weights, mean, meta, scope)


def rank_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE (in top-1 points, i.e. percent) and Kendall's tau of predictions against truth."""
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    return {
        "rmse_points": float(np.sqrt(np.mean((predicted - actual) ** 2)) * 100),
        "kendall_tau": kendall_tau(predicted, actual),
        "count": len(actual),
    }
