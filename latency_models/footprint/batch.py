"""A network's flash and activation arena over a whole search space at once, for the search:
the block-by-block tables of the batch latency predictor (latency_models.predictor.batch),
priced from each block's own lowered graph.

Flash is a sum: each block's tensors, ops and constants, plus the network's own tables (priced
as the exact flash of one network less its blocks). The file writes a quantisation vector that
recurs across blocks once, so the sum is a close estimate, not the exact count of
`costs.flash_bytes` (benchmarks/memory_fidelity.py measures how close).

The arena is a maximum: the most bytes alive at one time within any block (a network's tensors
are alive within one block; the block's input and output at its ends) or at the interface ops.
That is TFLM's arena whenever its greedy planner leaves no gap, and never more, so a budget on
it rejects no network that fits; `costs.footprint` gives the planner's exact head.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from latency_models.footprint.costs import check_deployment, flash_bytes, footprint
from latency_models.footprint.planner import align, live_peak, planned_buffers
from latency_models.predictor.batch import AdditiveSpaceMetric
from latency_models.tables.signature import Block, block_key, spec_blocks
from latency_models.tflite.graph import Graph
from latency_models.tflite.lower import lower_layer
from latency_models.tflite.weights import weight_shapes
from search_spaces.arch_spec import ArchSpec, Identity
from search_spaces.space import ChoiceSpace


class _BlockGraphs:
    """Each distinct block lowered once, on its own: its input the graph's input, its output the
    graph's output. Each weight array is one constant of its own (priced bytes need shapes and
    distinct int8 scale vectors, as trained weights give, not values)."""

    def __init__(self) -> None:
        self._graphs: dict[str, Graph] = {}

    def __call__(self, block: Block, key: str | None = None) -> Graph:
        key = key or block.key
        if key not in self._graphs:
            g = Graph()
            x = g.input((1, *block.in_shape))
            weights = {
                name: np.full(shape, 1e-3 * (k + 1), np.float32)
                for k, (name, shape) in enumerate(weight_shapes(block.layer).items())
            }
            g.output(lower_layer(g, block.layer, x, weights, "block"))
            self._graphs[key] = g
        return self._graphs[key]


def _bare_graph(in_shape: tuple[int, int, int]) -> Graph:
    """A graph whose input is its output: what a block's graph holds besides the block."""
    g = Graph()
    g.output(g.input((1, *in_shape)))
    return g


class SpaceFlash(AdditiveSpaceMetric):
    """Predicted .tflite bytes over a space."""

    def __init__(self, space: ChoiceSpace, precision: str = "fp32", integer_io: bool = False):
        check_deployment(precision, integer_io)
        self._graphs, self._block_bytes = _BlockGraphs(), {}
        self._precision = precision
        reference = space.materialize(space.covering_choices()[0])
        constant = footprint(reference, precision, integer_io).flash_bytes - sum(
            self._bytes(b) for b in spec_blocks(reference, precision)
        )
        super().__init__(space, lambda blocks: np.array([self._bytes(b) for b in blocks]), constant, precision)

    def _bytes(self, block: Block) -> float:
        # a layer's bytes do not depend on the height and width it is fed
        key = block_key(block.layer, (1, 1, block.in_shape[2]), self._precision)
        if key not in self._block_bytes:
            value = 0.0  # an identity layer lowers to nothing inside a network
            if not isinstance(block.layer, Identity):
                bare = self._precision == "int8"  # no interface ops: the network has its own
                alone = flash_bytes(self._graphs(block, key), self._precision, integer_io=bare)
                value = float(alone - flash_bytes(_bare_graph(block.in_shape), self._precision, integer_io=bare))
            self._block_bytes[key] = value
        return self._block_bytes[key]


class PeakSpaceMetric(AdditiveSpaceMetric):
    """A metric that is the largest of a network's blocks' values (`value(block)`) and of a part
    the shared decisions fix (`fixed(network)`), tabulated over the slots of AdditiveSpaceMetric:
    F[g] the fixed part and every block in no slot, P[g, s, o] the block of slot s at option o.
    A slot's block is the one block its options (or its depth) change."""

    def __init__(
        self,
        space: ChoiceSpace,
        value: Callable[[Block], float],
        fixed: Callable[[ArchSpec], float],
        precision: str = "fp32",
    ):
        self.fixed = fixed
        self._known: dict[str, Block] = {}
        self._values: dict[str, float] = {}

        def cached(key: str) -> float:
            if key not in self._values:
                self._values[key] = value(self._known[key])
            return self._values[key]

        self.value = cached
        super().__init__(space, lambda blocks: np.zeros(len(blocks)), 0.0, precision)

    def _counted(self, choices: list[int]) -> tuple[ArchSpec, Counter]:
        spec = self.space.materialize(self.space.check(choices))
        blocks = spec_blocks(spec, self.precision)
        keys = [b.key for b in blocks]
        self._known.update(zip(keys, blocks))
        return spec, Counter(keys)

    def _changed(self, before: Counter, after: Counter) -> tuple[str | None, str | None]:
        """The block that left and the block that came, between two networks one slot apart."""
        gone, came = list((before - after).elements()), list((after - before).elements())
        if len(gone) > 1 or len(came) > 1:
            raise ValueError(f"{type(self.space).__name__}: one decision changed {max(len(gone), len(came))} blocks")
        return (gone[0] if gone else None), (came[0] if came else None)

    def _build_tables(self) -> None:
        n_shared, n_options = self._table_shapes()
        self.F = np.zeros(n_shared)
        self.P = np.zeros((n_shared, len(self.slots), n_options))
        for g, base in self._bases():
            base_spec, fixed_blocks = self._counted(base)
            for s, slot in enumerate(self.slots):
                probe, without = self._switched_on(base, slot)
                own = None  # the slot's block at its first option
                if without is not None:  # optional: the block switching it on adds
                    _, own = self._changed(self._counted(without)[1], self._counted(probe)[1])
                _, reference = self._counted(probe)
                at_option = {}
                for o, varied in self._varied(probe, slot):
                    gone, came = self._changed(reference, self._counted(varied)[1])
                    at_option[o] = came
                    if gone is not None and own is None:
                        own = gone
                        fixed_blocks[own] -= 1  # a block of the base network: this slot's
                if own is None:
                    continue  # no option changes a block: it stays among the fixed ones
                for o in at_option:
                    self.P[g, s, o] = self.value(at_option[o] or own)
            values = [self.value(key) for key in (+fixed_blocks).elements()]
            self.F[g] = max([self.fixed(base_spec), *values])

    def _predict_fn(self) -> Callable:
        F, P = jnp.asarray(self.F, jnp.float32), jnp.asarray(self.P, jnp.float32)

        def predict(g, options, active):
            per_slot = jnp.take_along_axis(P[g], options[:, :, None], axis=2)[:, :, 0]
            return jnp.maximum(F[g], jnp.max(active * per_slot, axis=1))

        return predict


class SpaceArena(PeakSpaceMetric):
    """TFLM's activation arena over a space, as the most bytes alive at once (see the module)."""

    def __init__(self, space: ChoiceSpace, precision: str = "fp32", integer_io: bool = False):
        check_deployment(precision, integer_io)
        graphs = _BlockGraphs()

        def value(block: Block) -> float:
            if isinstance(block.layer, Identity):
                return 0.0
            return float(live_peak(planned_buffers(graphs(block), precision, integer_io=True)))

        def interface(spec: ArchSpec) -> float:
            """The QUANTIZE and DEQUANTIZE ops of a float interface: a float and an int8 copy."""
            if precision == "fp32" or integer_io:
                return 0.0
            sizes = [spec.resolution * spec.resolution * spec.in_channels, spec.num_classes]
            return float(max(align(4 * n) + align(n) for n in sizes))

        super().__init__(space, value, interface, precision)
