"""Timing blocks into a latency table file, one row at a time: each block is emitted as a .tflite
model, timed on a backend, added to the table, and the table saved (atomically) before the next
block starts, so a killed run keeps every row measured and a rerun measures only what is missing.

`latency_models.measure` (the command) and the host's first use (`latency_models.measurement.first_use`)
both measure through `measure_into`.
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from common.locks import Lock, hold
from common.progress import progress_bar
from latency_models.measurement.backends import Backend, BlockError, Timing
from latency_models.tables.latency_table import LatencyRow, LatencyTable, TableError, TableMetadata
from latency_models.tables.signature import Block
from latency_models.tflite.emit import emit_block

# Metadata that must agree before a run may add rows to an existing table.
RESUME_FIELDS = ("device", "runtime", "soc", "threads", "delegate", "precision")


def hold_table(path: Path) -> Lock:
    """The table file's writer lock (`common.locks`): hold it from reading the table to its last
    save, so a second run on the same table is refused (exit 2, naming the holder) instead of
    both saving what each measured over the other's rows."""
    return hold(path, "latency table")


def check_resumable(table: LatencyTable, metadata: TableMetadata, path: Path) -> None:
    """TableError naming the first field where `table` (at `path`) was measured otherwise than
    `metadata` says this run measures."""
    for name in RESUME_FIELDS:
        theirs, ours = getattr(table.metadata, name), getattr(metadata, name)
        if theirs != ours:
            raise TableError(f"{path} was measured with {name}={theirs!r}, this run has {name}={ours!r}")


def measure_into(
    backend: Backend,
    todo: Sequence[Block],
    table: LatencyTable,
    out: Path,
    on_block: Callable[[Block, str | None], None] = lambda block, error: None,
    passes: int = 1,
    seed: int = 0,
) -> list[tuple[Block, str]]:
    """Time each block of `todo` on `backend`, adding its row to `table` and saving the table to
    `out` after every row; `on_block(block, error)` follows each timing (error: why the block
    could not be timed, else None), after its row is on disk. Returns the blocks that failed (with
    why); a DeviceError, or anything `on_block` raises, propagates with every row so far on disk.

    With `passes` > 1, every block is timed once per pass, each pass after the first in a new
    random order (`seed`), and its row is its passes pooled (`pooled`): a machine whose speed
    drifts for half a minute then skews one of a block's timings, not a run of neighbouring
    blocks. A run killed between passes keeps rows of fewer passes (their `count` says so)."""
    failed: dict[str, tuple[Block, str]] = {}
    timings: dict[str, list[Timing]] = {}
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as scratch:
        for turn in range(passes):
            order = list(todo) if turn == 0 else rng.sample(list(todo), len(todo))
            for number, block in enumerate(order):
                if block.key in failed:
                    continue
                model_path = Path(scratch) / f"block{number:04d}.tflite"
                model_path.write_bytes(emit_block(block))
                error = None
                try:
                    timing = backend.time_model(model_path)
                except BlockError as exc:
                    error = str(exc)
                    failed[block.key] = (block, error)
                else:
                    timings.setdefault(block.key, []).append(timing)
                    table.add(pooled(block, timings[block.key]))
                    table.save(out)  # every row is on disk before the next timing starts
                finally:
                    model_path.unlink()
                on_block(block, error)
    return list(failed.values())


def pooled(block: Block, timings: Sequence[Timing]) -> LatencyRow:
    """One row from a block's timings in several passes: the median of their medians (the
    statistic lookups use, so one drifted pass of three moves nothing), and the mean, standard
    deviation and count of all their runs together."""
    if len(timings) == 1:
        t = timings[0]
        return LatencyRow(block, t.mean_ms, t.median_ms, t.std_ms, t.count)
    count = sum(t.count for t in timings)
    mean = sum(t.mean_ms * t.count for t in timings) / count
    spread = sum(t.count * ((t.std_ms or 0.0) ** 2 + (t.mean_ms - mean) ** 2) for t in timings) / count
    median = statistics.median(t.median_ms if t.median_ms is not None else t.mean_ms for t in timings)
    return LatencyRow(block, mean, median, math.sqrt(spread), count)


@contextmanager
def block_progress(console: Console, total: int) -> Iterator[Callable[[Block, str | None], None]]:
    """A progress bar over `total` blocks on `console`; yields the `on_block` callback for
    `measure_into`, which advances it and prints each block that could not be timed."""
    with progress_bar(console, elapsed=True) as progress:
        task = progress.add_task("measuring", total=total)

        def advance(block: Block, error: str | None) -> None:
            if error is not None:
                progress.console.print(f"[yellow]skipped[/] {block.key}: {error}")
            progress.advance(task)

        yield advance
