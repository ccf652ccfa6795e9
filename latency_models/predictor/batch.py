"""Batch prediction of additive network metrics over a whole search space, jit-compiled:
millions of candidates per second, for the evolutionary search.

Latency under the learned predictor, MACs and parameters are all additive (a network costs the
sum of its blocks plus a constant), and in the spaces here a block depends only on its own
decisions and on the shared ones (resolution, width). So for every assignment g of the shared
decisions the metric splits exactly into

    latency(choices) = F[g] + sum over slots s active in choices of (A[g, s] + D[g, s, option_s])

where a slot is one block position (the dimensions gated by the same depth at the same index,
or one ungated per-block dimension), F is the network with every slot at its first option and
every depth at its minimum, A the cost of switching an optional slot on, and D the cost of an
option relative to the first. The tables are built once by pricing a few hundred probe
networks; prediction is then gathers and a sum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from latency_models.predictor.latency_predictor import LatencyPredictor
from latency_models.tables.signature import Block, spec_blocks
from search_spaces.arch_spec import layer_output_shape
from search_spaces.graph import layer_cost
from search_spaces.space import ChoiceSpace


@dataclass(frozen=True)
class Slot:
    dims: tuple[int, ...]  # the dimensions deciding this block position
    gate: tuple[int, int] | None  # (depth dimension, block index), or None: always present


class AdditiveSpaceMetric:
    """A metric that is a sum over a network's blocks plus a constant, tabulated over a space.
    `price` gives each block's share; blocks are priced once and cached."""

    def __init__(
        self,
        space: ChoiceSpace,
        price: Callable[[Sequence[Block]], np.ndarray],
        constant: float = 0.0,
        precision: str = "fp32",
    ):
        self.space, self.precision, self.price, self.constant = space, precision, price, constant
        dims = space.dimensions
        self.shared = [i for i, d in enumerate(dims) if d.shared]
        gates = {d.gate[0] for d in dims if d.gate is not None}
        grouped: dict[object, list[int]] = {}
        for i, d in enumerate(dims):
            if not d.shared and i not in gates:
                grouped.setdefault(d.gate if d.gate is not None else ("own", i), []).append(i)
        self.slots = [Slot(tuple(members), dims[members[0]].gate) for members in grouped.values()]
        self._cache: dict[str, float] = {}
        self._build_tables()
        # Mixed-radix strides turning per-dimension indices into table indices.
        shared_sizes = [len(dims[i].options) for i in self.shared]
        self.shared_strides = np.array(
            [math.prod(shared_sizes[k + 1 :]) for k in range(len(shared_sizes))], dtype=np.int32
        )
        self._jitted = None

    # --- tables ---------------------------------------------------------------------------------

    def _price(self, choices: list[int]) -> float:
        """The metric of one probe network."""
        blocks = spec_blocks(self.space.materialize(self.space.check(choices)), self.precision)
        missing = [b for b in blocks if b.key not in self._cache]
        if missing:
            for block, value in zip(missing, self.price(missing)):
                self._cache[block.key] = float(value)
        return sum(self._cache[b.key] for b in blocks) + self.constant

    def _slot_options(self, slot: Slot) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(len(self.space.dimensions[i].options)) for i in slot.dims)))

    def _depth_index(self, gate_dim: int, value: int) -> int:
        return self.space.dimensions[gate_dim].options.index(value)

    def _bases(self) -> Iterator[tuple[int, list[int]]]:
        """Each assignment g of the shared decisions (in table order), as the network with every
        depth at its minimum (index 0) and every slot at its first option."""
        dims = self.space.dimensions
        for g, shared_values in enumerate(itertools.product(*(range(len(dims[i].options)) for i in self.shared))):
            base = [0] * len(dims)
            for i, v in zip(self.shared, shared_values):
                base[i] = v
            yield g, base

    def _switched_on(self, base: list[int], slot: Slot) -> tuple[list[int], list[int] | None]:
        """`base` with `slot` present (probe), and, where the slot is optional there (its depth
        may leave it out), `base` with the depth just short of it (without); else None."""
        probe = list(base)
        if slot.gate is None or slot.gate[1] < self.space.dimensions[slot.gate[0]].options[0]:
            return probe, None
        depth_dim, block = slot.gate
        probe[depth_dim] = self._depth_index(depth_dim, block + 1)
        without = list(base)
        without[depth_dim] = self._depth_index(depth_dim, block)
        return probe, without

    def _varied(self, probe: list[int], slot: Slot) -> Iterator[tuple[int, list[int]]]:
        """`probe` with `slot` at each of its options."""
        for o, values in enumerate(self._slot_options(slot)):
            varied = list(probe)
            for i, v in zip(slot.dims, values):
                varied[i] = v
            yield o, varied

    def _table_shapes(self) -> tuple[int, int]:
        """(assignments of the shared decisions, the most options a slot has)."""
        n_shared = math.prod(len(self.space.dimensions[i].options) for i in self.shared)
        return n_shared, max(len(self._slot_options(s)) for s in self.slots)

    def _build_tables(self) -> None:
        n_shared, n_options = self._table_shapes()
        self.F = np.zeros(n_shared)
        self.A = np.zeros((n_shared, len(self.slots)))
        self.D = np.zeros((n_shared, len(self.slots), n_options))
        for g, base in self._bases():
            self.F[g] = self._price(base)
            for s, slot in enumerate(self.slots):
                probe, without = self._switched_on(base, slot)
                if without is not None:  # optional: price switching it on
                    self.A[g, s] = self._price(probe) - self._price(without)
                reference = self._price(probe)
                for o, varied in self._varied(probe, slot):
                    if o:
                        self.D[g, s, o] = self._price(varied) - reference

    # --- prediction -----------------------------------------------------------------------------

    def _index_arrays(self, choices: np.ndarray):
        choices = np.asarray(choices, dtype=np.int32)
        g = choices[:, self.shared] @ self.shared_strides if self.shared else np.zeros(len(choices), np.int32)
        options = np.zeros((len(choices), len(self.slots)), dtype=np.int32)
        active = np.ones((len(choices), len(self.slots)), dtype=np.float32)
        dims = self.space.dimensions
        for s, slot in enumerate(self.slots):
            sizes = [len(dims[i].options) for i in slot.dims]
            strides = [math.prod(sizes[k + 1 :]) for k in range(len(sizes))]
            options[:, s] = choices[:, list(slot.dims)] @ np.array(strides, dtype=np.int32)
            if slot.gate is not None:
                depth_dim, block = slot.gate
                depth_values = np.array(dims[depth_dim].options)[choices[:, depth_dim]]
                active[:, s] = depth_values > block
        return g, options, active

    def _predict_fn(self) -> Callable:
        """(shared index, slot options, slot active) -> the metric; jit-compiled on first call."""
        F, A, D = (jnp.asarray(x, dtype=jnp.float32) for x in (self.F, self.A, self.D))

        def predict(g, options, active):
            per_slot = jnp.take_along_axis(D[g], options[:, :, None], axis=2)[:, :, 0] + A[g]
            return F[g] + jnp.sum(active * per_slot, axis=1)

        return predict

    def __call__(self, choices: np.ndarray) -> np.ndarray:
        """The metric of each row of `choices` ([N, dimensions] option indices)."""
        if self._jitted is None:
            self._jitted = jax.jit(self._predict_fn())
        # padded to a power of two, so a search calling with every batch size compiles a few times
        choices = np.asarray(choices)
        count = len(choices)
        padded = 1 << max(6, (count - 1).bit_length())
        if padded != count:
            choices = np.concatenate([choices, np.repeat(choices[:1], padded - count, axis=0)])
        return np.asarray(self._jitted(*self._index_arrays(choices)))[:count]


class SpaceLatency(AdditiveSpaceMetric):
    """Predicted latency (ms) of a device over a space."""

    def __init__(self, predictor: LatencyPredictor, space: ChoiceSpace, precision: str = "fp32"):
        self.predictor = predictor
        super().__init__(space, predictor.in_network_ms, predictor.network_overhead_ms, precision)


class SpaceCost(AdditiveSpaceMetric):
    """MACs or parameters over a space (the counting convention of search_spaces.graph)."""

    def __init__(self, space: ChoiceSpace, metric: str = "macs"):
        if metric not in ("macs", "params"):
            raise ValueError(f"metric: 'macs' or 'params', got {metric!r}")

        def price(blocks: Sequence[Block]) -> np.ndarray:
            costs = [layer_cost(b.layer, b.in_shape, layer_output_shape(b.layer, b.in_shape)) for b in blocks]
            return np.array([getattr(c, metric) for c in costs], dtype=np.float64)

        super().__init__(space, price)
