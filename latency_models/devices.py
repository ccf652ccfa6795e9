"""`python -m latency_models.devices [--json]`: list the device profiles latency can be predicted
for (the registry itself is latency_models/profiles/registry.py)."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from common.cli import ArgumentParser, run
from latency_models.profiles.registry import describe_profiles

PROG = "python -m latency_models.devices"
COLUMNS = ("target", "precision", "device", "soc / cpu", "runtime", "threads", "fidelity", "source")


def fidelity(row: dict) -> str:
    """How well the profile predicts networks it was not fitted on, where its fit measured that:
    the whole-network profiles' leave-one-family-out share within +-10% and RMSPE."""
    held_out = row.get("report", {}).get("leave_one_family_out")
    if not held_out:
        return ""
    within = round(held_out["within_10pct"] * held_out["count"])
    return f"leave-one-family-out {within}/{held_out['count']} within +-10%, RMSPE {held_out['rmspe']:.1%}"


def _text(value) -> str:
    """A metadata value as a cell: empty where the profile does not say (a table may record None)."""
    return "" if value is None else str(value)


def print_table(rows: list[dict]) -> None:
    table = Table(title="device profiles")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["target"],
            row["precision"],
            _text(row.get("device")),
            _text(row.get("soc")),
            _text(row.get("runtime")),
            _text(row.get("threads")),
            fidelity(row),
            _text(row.get("source", row.get("status"))),
        )
    Console(width=None if Console().is_terminal else 160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description="List the device profiles latency can be predicted for.")
    parser.add_argument("--json", action="store_true", help="print the profiles and their metadata as JSON")
    args = parser.parse_args(argv)
    rows = describe_profiles()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print_table(rows)
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
