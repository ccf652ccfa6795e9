"""The learned latency predictor of one device.

    block latency   = (costs . basis(block)) * exp(0.7 * tanh(mlp(descriptor(block))))
    network latency = exp(network scale) * sum of its block latencies
                      + (network costs . sum of its blocks' basis) + network overhead
    table row       = block latency + standalone overhead (a block timed alone pays one invoke)

The network terms are what make the learned predictor beat a plain table sum: a block timed
alone runs with warm caches and its weights resident; inside a network, weights and
activations stream from memory (the network costs price that work, e.g. per weight byte).

`costs` are learned non-negative prices of each kind of work (features.BASIS), so a block never
measured is still priced by what it does; the small MLP corrects each block by at most a factor
of two for what linear costs miss. Fitted in JAX/Optax on a latency table, optionally plus
whole-network measurements (which pin down the overheads and how blocks compose). Saved as JSON
(arrays as lists; no pickle), with a schema version and what it was fitted on.
"""

from __future__ import annotations

import datetime
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
from common.values import all_finite
from latency_models.predictor.features import BASIS, DESCRIPTOR_SIZE, basis, descriptor
from latency_models.tables.latency_table import LatencyTable
from latency_models.tables.signature import Block, spec_blocks
from search_spaces.arch_spec import ArchSpec

SCHEMA_VERSION = 1
KIND = "platform-nas/latency-predictor"
EARLIER_KINDS = ("latency_predictor",)  # predictors written before the kinds were named alike, still read
HIDDEN = 32
CORRECTION = 0.7  # the MLP may scale a block by exp(+-0.7), i.e. by at most ~2x


class PredictorError(InputError):
    """A predictor file that cannot be used."""


def _softplus(xp, x):
    return xp.logaddexp(x, 0.0)


def block_latency(xp, params: dict[str, Any], basis_m, desc_m):
    """Latency (ms) of each block from its basis [N, B] and normalised descriptor [N, D]."""
    linear = basis_m @ _softplus(xp, params["log_costs"])
    hidden = xp.tanh(desc_m @ params["w1"] + params["b1"])
    correction = xp.exp(CORRECTION * xp.tanh(hidden @ params["w2"] + params["b2"]))
    return linear * correction[:, 0]


@dataclass
class LatencyPredictor:
    params: dict[str, np.ndarray]
    desc_mean: np.ndarray
    desc_std: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    # --- prediction ------------------------------------------------------------------------

    @property
    def network_overhead_ms(self) -> float:
        return float(_softplus(np, self.params["net_overhead"]))

    @property
    def network_scale(self) -> float:
        return float(np.exp(self.params["net_log_scale"]))

    @property
    def standalone_overhead_ms(self) -> float:
        return float(_softplus(np, self.params["block_overhead"]))

    def block_ms(self, blocks: Sequence[Block]) -> np.ndarray:
        if not blocks:
            return np.zeros(0)
        b = np.stack([basis(block) for block in blocks]).astype(np.float64)
        d = (np.stack([descriptor(block) for block in blocks]) - self.desc_mean) / self.desc_std
        return np.asarray(block_latency(np, self.params, b, d), dtype=np.float64)

    def in_network_ms(self, blocks: Sequence[Block]) -> np.ndarray:
        """What each block costs inside a network (the network overhead excluded)."""
        if not blocks:
            return np.zeros(0)
        extra = np.stack([basis(block) for block in blocks]) @ _softplus(np, self.params["net_costs"])
        return self.network_scale * self.block_ms(blocks) + extra

    def spec_ms(self, spec: ArchSpec, precision: str = "fp32") -> float:
        return float(self.in_network_ms(spec_blocks(spec, precision)).sum() + self.network_overhead_ms)

    def breakdown(self, spec: ArchSpec, precision: str = "fp32") -> list[dict[str, Any]]:
        """Each block's share of the network prediction (the overhead is in no block)."""
        blocks = spec_blocks(spec, precision)
        return [
            {"path": s.path, "key": block.key, "ms": float(ms)}
            for s, block, ms in zip(spec.shapes, blocks, self.in_network_ms(blocks))
        ]

    # --- files -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "metadata": self.metadata,
            "basis": list(BASIS),
            "descriptor_mean": self.desc_mean.tolist(),
            "descriptor_std": self.desc_std.tolist(),
            "params": {name: np.asarray(value).tolist() for name, value in self.params.items()},
        }

    def save(self, path: str | Path) -> None:
        write_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: Any, origin: str = "predictor") -> LatencyPredictor:
        data = check_document(data, KIND, SCHEMA_VERSION, PredictorError, origin, "a latency predictor", EARLIER_KINDS)
        if data.get("basis") != list(BASIS) or len(data.get("descriptor_mean", [])) != DESCRIPTOR_SIZE:
            raise PredictorError(f"{origin}: fitted with other features than this version computes; refit it")
        params = _checked_params(data.get("params"), origin)
        mean = _checked_array(data["descriptor_mean"], (DESCRIPTOR_SIZE,), f"{origin}: descriptor_mean")
        std = _checked_array(data["descriptor_std"], (DESCRIPTOR_SIZE,), f"{origin}: descriptor_std")
        if np.any(std <= 0):
            raise PredictorError(f"{origin}: descriptor_std: must be positive")
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            raise PredictorError(f"{origin}: metadata: expected a JSON object")
        return cls(params, mean, std, metadata)

    @classmethod
    def load(cls, path: str | Path) -> LatencyPredictor:
        return cls.from_dict(read_json(path, PredictorError), str(path))


def _checked_array(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictorError(f"{where}: expected numbers") from None
    if array.shape != shape:
        raise PredictorError(f"{where}: shape {list(array.shape)}, expected {list(shape)}")
    if not all_finite(array):
        raise PredictorError(f"{where}: holds a value that is not a finite number")
    return array


def _checked_params(params: Any, origin: str) -> dict[str, np.ndarray]:
    """The parameter arrays, each of the shape this version's predictor has and all finite: a
    damaged file is refused by name here, not priced as 'nan ms'."""
    if not isinstance(params, dict):
        raise PredictorError(f"{origin}: params: expected a JSON object")
    expected = {name: value.shape for name, value in _initial_params(np.random.default_rng(0)).items()}
    missing = sorted(set(expected) - set(params))
    if missing:
        raise PredictorError(f"{origin}: params.{missing[0]}: missing")
    return {name: _checked_array(params[name], shape, f"{origin}: params.{name}") for name, shape in expected.items()}


# --- fitting -----------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One whole network timed end to end."""

    spec: ArchSpec
    ms: float
    precision: str = "fp32"
    label: str = ""


def _initial_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "log_costs": np.full(len(BASIS), -3.0),
        "w1": rng.normal(0, 0.3, (DESCRIPTOR_SIZE, HIDDEN)),
        "b1": np.zeros(HIDDEN),
        "w2": rng.normal(0, 0.1, (HIDDEN, 1)),
        "b2": np.zeros(1),
        "block_overhead": np.array(-3.0),
        "net_overhead": np.array(-3.0),
        "net_log_scale": np.array(0.0),
        "net_costs": np.full(len(BASIS), -12.0),  # ~0 until whole networks say otherwise
    }


# The work a term's price stands in for when a table never exercised it: the nearest kind of
# work, per MAC. A table of a space without 7x7 kernels (HW-NAS-Bench's FBNet space: 3x3 and 5x5)
# otherwise keeps the initial price for them, 43x below its 3x3 price on the pixel3 profile, and a
# search there picks 7x7 kernels everywhere. Per MAC, 7x7 and 5x5 depthwise convs cost about the
# same where both were timed (note10 0.152 and 0.154 ms/M, pixel1 0.232 and 0.212 ms/M).
KIN = {
    "depthwise_macs_k7": "depthwise_macs_k5",
    "depthwise_macs_k5": "depthwise_macs_k3",
    "grouped_macs": "spatial_macs",
    "grouped_overhead_macs": "grouped_macs",
}


def _price_unseen_work(log_costs: np.ndarray, basis_m: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """The fitted prices with each term the fitting data never had (a zero column) set to its
    kin's (KIN, followed until a seen term), and which terms took whose price."""
    seen = {name for name, total in zip(BASIS, np.abs(basis_m).sum(axis=0)) if total > 0}
    out, unseen = np.array(log_costs, dtype=np.float64), {}
    for name in BASIS:
        if name in seen:
            continue
        kin = KIN.get(name)
        while kin is not None and kin not in seen:
            kin = KIN.get(kin)
        if kin is not None:
            out[BASIS.index(name)] = out[BASIS.index(kin)]
            unseen[name] = kin
    return out, unseen


def fit(
    table: LatencyTable | None,
    measurements: Sequence[Measurement] = (),
    steps: int = 3000,
    seed: int = 0,
    network_weight: float = 1.0,
    init: LatencyPredictor | None = None,
    trainable: Sequence[str] | None = None,
    prior_weight: float = 0.0,
    metadata: dict[str, Any] | None = None,
) -> LatencyPredictor:
    """Fit on table rows (relative error of each row, with the standalone overhead) and whole
    networks (relative error of the sum plus network overhead). `init` starts from another
    predictor (transfer); `trainable` limits which parameters move; `prior_weight` keeps them
    near `init` (few-shot calibration of a new device)."""
    # Rows of 0 ms are placeholders (e.g. an importer's pooling row whose time went elsewhere):
    # they carry no timing to fit, and log(0) would poison the loss.
    rows = [row for row in table.rows.values() if row.ms > 0] if table is not None else []
    row_blocks = [row.block for row in rows]
    net_blocks: dict[str, Block] = {}
    for m in measurements:
        for block in spec_blocks(m.spec, m.precision):
            net_blocks.setdefault(block.key, block)
    unique = list({b.key: b for b in row_blocks + list(net_blocks.values())}.values())
    if not unique:
        raise ValueError("nothing to fit: give a table with rows or whole-network measurements")
    index = {b.key: i for i, b in enumerate(unique)}
    basis_m = np.stack([basis(b) for b in unique]).astype(np.float32)
    desc = np.stack([descriptor(b) for b in unique])
    if init is not None:
        mean, std = init.desc_mean, init.desc_std
    else:
        mean, std = desc.mean(axis=0), np.maximum(desc.std(axis=0), 1e-3)
    desc_m = ((desc - mean) / std).astype(np.float32)
    row_index = np.array([index[b.key] for b in row_blocks], dtype=np.int32)
    row_ms = np.array([row.ms for row in rows], dtype=np.float32)
    counts = np.zeros((len(measurements), len(unique)), dtype=np.float32)
    for i, m in enumerate(measurements):
        for block in spec_blocks(m.spec, m.precision):
            counts[i, index[block.key]] += 1
    net_ms = np.array([m.ms for m in measurements], dtype=np.float32)
    net_basis = counts @ basis_m

    start = init.params if init is not None else _initial_params(np.random.default_rng(seed))
    params = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in start.items()}
    prior = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in start.items()}
    moving = set(trainable) if trainable is not None else set(params)

    def loss_fn(p):
        latency = block_latency(jnp, p, basis_m, desc_m)
        loss = 0.0
        if len(row_ms):
            standalone = latency[row_index] + _softplus(jnp, p["block_overhead"])
            loss += jnp.mean((jnp.log(standalone) - jnp.log(row_ms)) ** 2)
        if len(net_ms):
            total = (
                jnp.exp(p["net_log_scale"]) * (counts @ latency)
                + net_basis @ _softplus(jnp, p["net_costs"])
                + _softplus(jnp, p["net_overhead"])
            )
            loss += network_weight * jnp.mean((jnp.log(total) - jnp.log(net_ms)) ** 2)
        loss += 1e-4 * (jnp.sum(p["w1"] ** 2) + jnp.sum(p["w2"] ** 2))
        if prior_weight:
            loss += prior_weight * sum(jnp.sum((p[k] - prior[k]) ** 2) for k in moving)
        return loss

    optimizer = optax.adam(optax.cosine_decay_schedule(0.05, steps))
    state = optimizer.init(params)

    @jax.jit
    def step(p, s):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        # Frozen parameters get no gradient, so Adam leaves them exactly where they are.
        grads = {k: (g if k in moving else jnp.zeros_like(g)) for k, g in grads.items()}
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    for _ in range(steps):
        params, state, loss = step(params, state)
    if len(net_ms) == 0 and init is None:
        # Without whole networks the network overhead is not identifiable: assume one invoke's.
        params["net_overhead"] = params["block_overhead"]
    fitted = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    unseen = {}  # a transfer keeps its base's prices for work it was not given
    if init is None:
        fitted["log_costs"], unseen = _price_unseen_work(fitted["log_costs"], basis_m)
    info = dict(metadata or {})
    info.setdefault("fitted", datetime.date.today().isoformat())
    info["fit"] = {"rows": len(rows), "networks": len(measurements), "steps": steps, "final_loss": float(loss)}
    if unseen:
        info["fit"]["priced_as_kin"] = unseen
    return LatencyPredictor(fitted, np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64), info)
