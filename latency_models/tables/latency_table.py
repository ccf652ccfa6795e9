"""Latency lookup tables: measured once, saved with their metadata, reused by any search space
whose blocks they cover.

File format (text, one JSON object per line, schema-versioned):

    {"schema_version": 1, "kind": "platform-nas/latency-table", "metadata": {...}}  <- header
    {"key": "...", "block": {...}, "mean_ms": ..., "median_ms": ..., "std_ms": ..., "count": ...}
    ...

Rows are keyed by the canonical block signature (latency_models.tables.signature). The header holds
where and how the rows were measured (device, CPU, runtime and version, threads, delegate,
precision, date, protocol, source). Every save rewrites the file atomically, so a reader or a
crash never sees a half-written table.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import InputError
from common.files import check_document, parse_json_lines, read_text, write_atomic
from common.values import is_number
from latency_models.tables.signature import Block, spec_blocks
from search_spaces.arch_spec import ArchSpec, SpecError

SCHEMA_VERSION = 1
KIND = "platform-nas/latency-table"
EARLIER_KINDS = ("latency_table",)  # tables written before the kinds were named alike, still read


class TableError(InputError):
    """A latency table file that cannot be used (malformed, wrong version, conflicting merge)."""


@dataclass(frozen=True)
class TableMetadata:
    device: str
    runtime: str = "tflite"
    runtime_version: str = ""
    soc: str = ""  # SoC or CPU model
    threads: int | None = None
    delegate: str = "none"  # e.g. none, xnnpack, gpu
    precision: str = "fp32"
    date: str = ""
    protocol: str = ""  # how each row was timed (warm-up, repeats, statistic)
    source: str = ""  # provenance: who measured it, or which file it was imported from
    notes: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableMetadata:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise TableError(f"metadata: unknown field {unknown[0]!r}")
        if "device" not in data:
            raise TableError("metadata.device: missing")
        return cls(**data)


@dataclass(frozen=True)
class LatencyRow:
    block: Block
    mean_ms: float
    median_ms: float | None = None
    std_ms: float | None = None
    count: int | None = None

    @property
    def key(self) -> str:
        return self.block.key

    @property
    def ms(self) -> float:
        """The statistic lookups use: the median where it was recorded, else the mean."""
        return self.median_ms if self.median_ms is not None else self.mean_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "block": self.block.to_dict(),
            "mean_ms": self.mean_ms,
            "median_ms": self.median_ms,
            "std_ms": self.std_ms,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyRow:
        if not isinstance(data, dict):
            raise TableError(f"row: expected a JSON object, got {type(data).__name__}")
        try:
            block = Block.from_dict(data["block"])
        except (KeyError, TypeError, ValueError, SpecError) as exc:
            raise TableError(f"row: bad block ({exc})") from None
        if data.get("key") not in (None, block.key):
            raise TableError(f"row: key {data['key']!r} does not match its block ({block.key!r})")
        mean = data.get("mean_ms")
        if not _latency(mean):
            raise TableError(f"row {block.key!r}: mean_ms must be a finite non-negative number, got {mean!r}")
        for name in ("median_ms", "std_ms"):
            if data.get(name) is not None and not _latency(data[name]):
                raise TableError(f"row {block.key!r}: {name} must be a finite non-negative number, got {data[name]!r}")
        count = data.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise TableError(f"row {block.key!r}: count must be a non-negative integer, got {count!r}")
        return cls(block, float(mean), data.get("median_ms"), data.get("std_ms"), count)


def _latency(value: Any) -> bool:
    """A timing a table can hold: a finite number >= 0."""
    return is_number(value) and value >= 0


@dataclass
class Coverage:
    """Which distinct blocks a table has, out of those a spec or a space needs."""

    needed: list[Block]
    missing: list[Block] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def share(self) -> float:
        return 1.0 - len(self.missing) / len(self.needed) if self.needed else 1.0


class LatencyTable:
    def __init__(self, metadata: TableMetadata, rows: Iterable[LatencyRow] = ()):
        self.metadata = metadata
        self.rows: dict[str, LatencyRow] = {}
        for row in rows:
            self.add(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, row: LatencyRow) -> None:
        self.rows[row.key] = row

    def get(self, block: Block) -> LatencyRow | None:
        return self.rows.get(block.key)

    # --- files ---------------------------------------------------------------------------

    def to_text(self) -> str:
        header = {"schema_version": SCHEMA_VERSION, "kind": KIND, "metadata": dataclasses.asdict(self.metadata)}
        lines = [json.dumps(header)] + [json.dumps(self.rows[key].to_dict()) for key in sorted(self.rows)]
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        write_atomic(path, self.to_text())

    @classmethod
    def from_text(cls, text: str, origin: str = "table") -> LatencyTable:
        records = parse_json_lines(text, TableError, origin).records
        if not records:
            raise TableError(f"{origin}: empty file, not a latency table")
        first, rows = records[0][1], records[1:]
        header = check_document(
            first, KIND, SCHEMA_VERSION, TableError, f"{origin} (line 1)", "a latency table", EARLIER_KINDS
        )
        table = cls(TableMetadata.from_dict(header.get("metadata") or {}))
        for number, data in rows:
            try:
                table.add(LatencyRow.from_dict(data))
            except TableError as exc:
                raise TableError(f"{origin}: line {number}: {exc}") from None
        return table

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        return cls.from_text(read_text(path, TableError, "JSON lines"), origin=str(path))

    # --- combining and querying -----------------------------------------------------------

    def merge(self, other: LatencyTable, prefer: str = "error") -> LatencyTable:
        """A new table with both tables' rows. Tables from different devices, runtimes,
        threads, delegates or precisions are never merged. For a key present in both,
        `prefer` decides: "error", "self", "other", or "count" (the row with more runs)."""
        for name in ("device", "runtime", "threads", "delegate", "precision"):
            mine, theirs = getattr(self.metadata, name), getattr(other.metadata, name)
            if mine != theirs:
                raise TableError(f"cannot merge tables measured with different {name}: {mine!r} vs {theirs!r}")
        merged = LatencyTable(self.metadata, self.rows.values())
        for key, row in other.rows.items():
            if key in merged.rows and merged.rows[key] != row:
                if prefer == "error":
                    raise TableError(f"both tables measure {key!r} (choose which to keep)")
                if prefer == "self" or (prefer == "count" and (merged.rows[key].count or 0) >= (row.count or 0)):
                    continue
            merged.add(row)
        return merged

    def coverage(self, blocks: Iterable[Block]) -> Coverage:
        needed = list({block.key: block for block in blocks}.values())
        return Coverage(needed, [block for block in needed if block.key not in self.rows])

    def spec_latency(self, spec: ArchSpec, precision: str | None = None) -> float:
        """The plain table sum over the spec's blocks, in ms; KeyError naming the first block
        the table lacks (see `coverage` for all of them)."""
        total = 0.0
        for block in spec_blocks(spec, precision or self.metadata.precision):
            row = self.rows.get(block.key)
            if row is None:
                raise KeyError(f"no row for block {block.key!r}")
            total += row.ms
        return total
