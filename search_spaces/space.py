"""The search-space protocol and the generic machinery every concrete space shares.

A space is a list of categorical dimensions. A point in it (`Choices`) is a tuple holding one
option index per dimension. Some dimensions are gated: a block's kernel only matters when
its stage's depth reaches that block. Choices are kept canonical, every inactive dimension at
index 0, so that two choices that build the same network are equal, encode alike and are
counted once by `size()`.

Evolution only needs `sample`, `mutate` and `crossover` (always valid, by construction);
predictors need `encode`, a fixed-length one-hot vector in which inactive dimensions are all
zeros (the encoding Once-for-All's accuracy predictor uses); everything downstream only needs
`materialize`, which turns choices into an ArchSpec.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from search_spaces.arch_spec import ArchSpec

Choices = tuple[int, ...]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor` without losing more than 10%.

    The rule of the TensorFlow MobileNet code, also used by Once-for-All and EfficientNet.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class Dimension:
    """One categorical decision. `gate` = (index of a depth dimension, block index): the
    dimension is active only when that depth's chosen value exceeds the block index.
    `shared`: a decision every block sees (input resolution, width multiplier), as opposed to
    one that shapes a single block (its kernel, its expansion, its op)."""

    name: str
    options: tuple[Any, ...]
    gate: tuple[int, int] | None = None
    shared: bool = False


class SearchSpace(Protocol):
    name: str
    dimensions: tuple[Dimension, ...]

    def sample(self, rng: np.random.Generator) -> Choices: ...
    def mutate(self, choices: Choices, rng: np.random.Generator, rate: float = 0.1) -> Choices: ...
    def crossover(self, a: Choices, b: Choices, rng: np.random.Generator) -> Choices: ...
    def encode(self, choices: Choices) -> np.ndarray: ...
    def decode(self, vector: np.ndarray) -> Choices: ...
    def size(self) -> int: ...
    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec: ...


class ChoiceSpace:
    """Implements the SearchSpace protocol for any list of (possibly gated) dimensions.
    Subclasses set `name`, `dimensions` and define `materialize`."""

    name: str = ""
    dimensions: tuple[Dimension, ...] = ()

    # --- validity --------------------------------------------------------------------

    def check(self, choices: Sequence[int]) -> Choices:
        """Return `choices` as a canonical tuple, or raise ValueError naming the bad dimension."""
        if len(choices) != len(self.dimensions):
            raise ValueError(f"{self.name}: expected {len(self.dimensions)} choices, got {len(choices)}")
        for dim, index in zip(self.dimensions, choices):
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(dim.options):
                raise ValueError(
                    f"{self.name}.{dim.name}: option index {index!r} out of range 0..{len(dim.options) - 1}"
                )
        return self.canonical(choices)

    def is_active(self, choices: Sequence[int], i: int) -> bool:
        gate = self.dimensions[i].gate
        if gate is None:
            return True
        depth_dim, block = gate
        return self.dimensions[depth_dim].options[choices[depth_dim]] > block

    def canonical(self, choices: Sequence[int]) -> Choices:
        return tuple(int(c) if self.is_active(choices, i) else 0 for i, c in enumerate(choices))

    def values(self, choices: Choices) -> dict[str, Any]:
        """The chosen option of every active dimension, by name (for reports and JSON)."""
        return {
            d.name: d.options[c] for i, (d, c) in enumerate(zip(self.dimensions, choices)) if self.is_active(choices, i)
        }

    def from_values(self, values: dict[str, Any]) -> Choices:
        """Inverse of `values`; dimensions left out (inactive ones) take their first option."""
        names = {d.name for d in self.dimensions}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{self.name}: unknown dimension {unknown[0]!r}")
        indices = []
        for dim in self.dimensions:
            if dim.name not in values:
                indices.append(0)
            elif values[dim.name] in dim.options:
                indices.append(dim.options.index(values[dim.name]))
            else:
                raise ValueError(f"{self.name}.{dim.name}: {values[dim.name]!r} is not one of {list(dim.options)}")
        return self.check(indices)

    # --- evolution -------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> Choices:
        """Each dimension uniformly and independently (so each depth is equally likely, as in
        Once-for-All; this is not uniform over distinct networks, which would favour depth)."""
        return self.canonical([int(rng.integers(len(d.options))) for d in self.dimensions])

    def mutate(self, choices: Choices, rng: np.random.Generator, rate: float = 0.1) -> Choices:
        """Resample each dimension with probability `rate`; blocks a deeper stage switches on
        get fresh random options rather than the canonical placeholder."""
        child = list(choices)
        for i, dim in enumerate(self.dimensions):
            if rng.random() < rate:
                child[i] = int(rng.integers(len(dim.options)))
        for i, dim in enumerate(self.dimensions):
            if self.is_active(child, i) and not self.is_active(choices, i):
                child[i] = int(rng.integers(len(dim.options)))
        return self.canonical(child)

    def crossover(self, a: Choices, b: Choices, rng: np.random.Generator) -> Choices:
        """Uniform crossover: each dimension from either parent. When the chosen parent had
        a block switched off that the child switches on, the other parent's gene is used."""
        pick_a = rng.random(len(self.dimensions)) < 0.5
        child = [x if take_a else y for x, y, take_a in zip(a, b, pick_a)]
        for i in range(len(child)):
            donor, other = (a, b) if pick_a[i] else (b, a)
            if self.is_active(child, i) and not self.is_active(donor, i) and self.is_active(other, i):
                child[i] = other[i]
        return self.canonical(child)

    # --- predictor encoding --------------------------------------------------------------

    @property
    def encoding_size(self) -> int:
        return sum(len(d.options) for d in self.dimensions)

    def encode(self, choices: Choices) -> np.ndarray:
        vector = np.zeros(self.encoding_size, dtype=np.float32)
        offset = 0
        for i, (dim, index) in enumerate(zip(self.dimensions, choices)):
            if self.is_active(choices, i):
                vector[offset + index] = 1.0
            offset += len(dim.options)
        return vector

    def decode(self, vector: np.ndarray) -> Choices:
        vector = np.asarray(vector)
        if vector.shape != (self.encoding_size,):
            raise ValueError(f"{self.name}: expected an encoding of shape ({self.encoding_size},), got {vector.shape}")
        indices, offset = [], 0
        for dim in self.dimensions:
            segment = vector[offset : offset + len(dim.options)]
            indices.append(int(np.argmax(segment)) if segment.any() else 0)
            offset += len(dim.options)
        return self.check(indices)

    # --- size --------------------------------------------------------------------------

    def size(self) -> int:
        """The number of distinct canonical choices (distinct networks)."""
        gated: dict[int, list[tuple[int, int]]] = {}
        for dim in self.dimensions:
            if dim.gate is not None:
                depth_dim, block = dim.gate
                gated.setdefault(depth_dim, []).append((block, len(dim.options)))
        total = 1
        for i, dim in enumerate(self.dimensions):
            if dim.gate is not None:
                continue
            if i in gated:
                total *= sum(math.prod(n for block, n in gated[i] if depth > block) for depth in dim.options)
            else:
                total *= len(dim.options)
        return total

    # --- coverage --------------------------------------------------------------------------

    def covering_choices(self) -> list[Choices]:
        """A few choices whose networks together contain every distinct layer of the space.

        Every gating (depth) dimension is set to its largest value so all blocks exist; the
        other dimensions are grouped by their option lists (all kernels, all expansions, all
        per-block ops ...) and each combination of one option per group is applied to every
        dimension of that group. This relies on what holds for the spaces here: a block's
        layer depends only on its own decisions and on global ones (width, resolution), never
        on another block's."""
        gates = {dim.gate[0] for dim in self.dimensions if dim.gate is not None}
        groups: dict[tuple, list[int]] = {}
        for i, dim in enumerate(self.dimensions):
            if i not in gates:
                groups.setdefault(dim.options, []).append(i)
        base = [len(dim.options) - 1 if i in gates else 0 for i, dim in enumerate(self.dimensions)]
        combos = [base]
        for options, members in groups.items():
            combos = [
                [index if i in members else c for i, c in enumerate(combo)]
                for combo in combos
                for index in range(len(options))
            ]
        return list(dict.fromkeys(self.check(combo) for combo in combos))

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec:
        raise NotImplementedError


class PinnedSpace(ChoiceSpace):
    """A space with some dimensions held at one option (e.g. the input resolution a search
    deploys at): sample, mutate and crossover never move them. Everything else, the encoding
    and the dimension list included, is the base space's, so metrics tabulated over the base
    space apply unchanged."""

    def __init__(self, base: ChoiceSpace, pinned: dict[str, Any]):
        self.base, self.name, self.dimensions = base, base.name, base.dimensions
        names = [d.name for d in base.dimensions]
        self.pinned: dict[int, int] = {}
        for name, value in pinned.items():
            if name not in names:
                raise ValueError(f"{base.name}: no dimension {name!r} to pin")
            dim = base.dimensions[names.index(name)]
            if value not in dim.options:
                raise ValueError(f"{base.name}.{name}: {value!r} is not one of {list(dim.options)}")
            self.pinned[names.index(name)] = dim.options.index(value)

    def _pin(self, choices: Sequence[int]) -> Choices:
        return self.canonical([self.pinned.get(i, c) for i, c in enumerate(choices)])

    def sample(self, rng: np.random.Generator) -> Choices:
        return self._pin(super().sample(rng))

    def mutate(self, choices: Choices, rng: np.random.Generator, rate: float = 0.1) -> Choices:
        return self._pin(super().mutate(choices, rng, rate))

    def crossover(self, a: Choices, b: Choices, rng: np.random.Generator) -> Choices:
        return self._pin(super().crossover(a, b, rng))

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec:
        return self.base.materialize(choices, resolution, proxy)


class ProxyFormSpace(PinnedSpace):
    """A pinned space whose every network is the proxy form a supernet trains, at the supernet's
    `resolution` (the resolution decision, if any, is then no decision: pin it)."""

    def __init__(self, base: ChoiceSpace, pinned: dict[str, Any], resolution: int):
        super().__init__(base, pinned)
        self.resolution = resolution

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = True) -> ArchSpec:
        return self.base.materialize(choices, resolution or self.resolution, proxy=True)

    def values(self, choices: Choices) -> dict[str, Any]:
        """Without the resolution decision: it does not decide the proxy's input."""
        return {k: v for k, v in super().values(choices).items() if k != "resolution"}
