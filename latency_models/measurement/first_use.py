"""The host profile on first use: before this machine prices networks, the blocks of those
networks that its table lacks are measured into the table (one row at a time, so a killed run
keeps what it measured and the next run carries on), and the host predictor is fitted again.

What is measured: the blocks of the networks asked for, plus, while the table would still have
fewer than MIN_ROWS rows, the blocks of a fixed starter sample of the mbv3 space (STARTER_SUBNETS
random subnets at 224 px), so the learned predictor is fitted on enough kinds of block to price
networks it never saw. The first `python -m latency_models.predict --target host --zoo
mobilenet_v2_1.0` thus times 81 blocks (40 s on this machine, the fit included); a later one
measures only blocks new to the table.

Nothing is measured when the kept host predictor already covers the request: when it was
calibrated on whole networks (`latency_models.evaluate`: its prices are kept as they are), or
when the table it was fitted on has every block asked for.

The host table is locked while it is measured into (`common.locks`, TABLE.lock beside it): a
second process that would measure into it at the same time is refused (exit 2, naming the one
measuring) rather than saving its rows over the other's; the rows another process added since
`plan` read the table are kept, and not measured again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console

from latency_models.measurement.backends import Backend
from latency_models.measurement.block_timing import block_progress, check_resumable, hold_table, measure_into
from latency_models.measurement.host import HostBackend, cpu_model
from latency_models.predictor.latency_predictor import LatencyPredictor
from latency_models.profiles.registry import (
    fit_host_predictor,
    host_table_path,
    is_calibrated,
    load_host_table,
    saved_host_predictor,
)
from latency_models.tables.latency_table import LatencyTable, TableError, TableMetadata
from latency_models.tables.signature import Block, spec_blocks
from search_spaces import get_space
from search_spaces.arch_spec import ArchSpec

SECONDS_PER_BLOCK = 0.5  # HostBackend's protocol, emitting included (0.45 s per block measured here)
FIT_SECONDS = 5  # fitting the predictor on the table afterwards
STARTER_SPACE, STARTER_RESOLUTION, STARTER_SUBNETS, STARTER_SEED = "mbv3", 224, 4, 0
MIN_ROWS = 64  # below this many rows the starter sample is measured too


def starter_specs() -> list[ArchSpec]:
    """The fixed sample of the mbv3 space measured on first use (about 66 distinct blocks)."""
    space = get_space(STARTER_SPACE)
    rng = np.random.default_rng(STARTER_SEED)
    return [space.materialize(space.sample(rng), resolution=STARTER_RESOLUTION) for _ in range(STARTER_SUBNETS)]


def distinct_blocks(specs: Sequence[ArchSpec], precision: str) -> list[Block]:
    blocks: dict[str, Block] = {}
    for spec in specs:
        for block in spec_blocks(spec, precision):
            blocks.setdefault(block.key, block)
    return list(blocks.values())


@dataclass
class FirstUse:
    """What the host still needs before it prices some networks: `missing` blocks to measure
    into `table`; `predictor` is the kept one when it covers the request as it is, else None
    (fitted on the table by `fitted`)."""

    precision: str
    table: LatencyTable
    missing: list[Block] = field(default_factory=list)
    predictor: LatencyPredictor | None = None

    @property
    def seconds(self) -> float:
        return len(self.missing) * SECONDS_PER_BLOCK + FIT_SECONDS

    def message(self) -> str:
        minutes = f" ({self.seconds / 60:.1f} min)" if self.seconds >= 90 else ""
        return (
            f"measuring {len(self.missing)} blocks of this machine's host table (~{self.seconds:.0f} s{minutes}), "
            f"once: {host_table_path(self.precision)} ({cpu_model()}, {self.precision}, 1 thread) lacks them; "
            "a killed run keeps what it measured and the next one carries on"
        )

    def measure(
        self, backend: Backend | None = None, on_block: Callable[[Block, str | None], None] = lambda b, e: None
    ) -> list[tuple[Block, str]]:
        """Time the missing blocks into the host table, saved after each (`on_block` and the
        result as in `block_timing.measure_into`); a block the interpreter rejects stays out of
        the table (the predictor still prices it)."""
        path = host_table_path(self.precision)
        self.predictor = None  # the table grows: the predictor is fitted again
        with hold_table(path):
            if path.exists():  # another process may have measured into it since `plan` read it
                for key, row in load_host_table(self.precision).rows.items():
                    if key not in self.table:
                        self.table.add(row)
                self.missing = [block for block in self.missing if block.key not in self.table]
            failed = measure_into(backend or HostBackend(), self.missing, self.table, path, on_block)
        self.missing = [block for block, _ in failed]
        return failed

    def fitted(self) -> LatencyPredictor:
        """The kept predictor when it covers the request, else one fitted on the table now (and kept)."""
        if self.predictor is not None:
            return self.predictor
        path = host_table_path(self.precision)
        if not self.table.rows:
            raise TableError(f"no block could be timed on this machine, so {path} has no rows to fit the host on")
        if not path.exists():
            with hold_table(path):
                if not path.exists():
                    self.table.save(path)
        self.predictor = fit_host_predictor(self.table, self.precision)
        return self.predictor


def plan(specs: Sequence[ArchSpec], precision: str = "fp32", backend: Backend | None = None) -> FirstUse:
    """What must be measured before the host prices `specs` (see the module's docstring)."""
    predictor = saved_host_predictor(precision)
    if predictor is not None and is_calibrated(predictor):
        return FirstUse(precision, LatencyTable(TableMetadata("host")), predictor=predictor)
    path, metadata = host_table_path(precision), (backend or HostBackend()).metadata(precision)
    table = load_host_table(precision) if path.exists() else LatencyTable(metadata)
    try:
        check_resumable(table, metadata, path)
    except TableError as exc:
        raise TableError(f"{exc}: delete it to measure this machine's table again") from None
    missing = table.coverage(distinct_blocks(specs, precision)).missing
    if predictor is not None and not missing:
        return FirstUse(precision, table, predictor=predictor)
    if len(table) + len(missing) < MIN_ROWS:
        wanted = {block.key for block in missing}
        missing += [
            b for b in table.coverage(distinct_blocks(starter_specs(), precision)).missing if b.key not in wanted
        ]
    return FirstUse(precision, table, missing)


def host_predictor(
    specs: Sequence[ArchSpec], precision: str = "fp32", console: Console | None = None, backend: Backend | None = None
) -> LatencyPredictor:
    """The host predictor, ready to price `specs`: when blocks must be measured first, one line
    says what and how long, and a progress bar follows (both on `console`, default stderr)."""
    backend = backend or HostBackend()
    first_use = plan(specs, precision, backend)
    if not first_use.missing:
        return first_use.fitted()
    console = console or Console(stderr=True)
    console.print(first_use.message(), highlight=False, soft_wrap=True)
    with block_progress(console, len(first_use.missing)) as on_block:
        first_use.measure(backend, on_block)
    return first_use.fitted()
