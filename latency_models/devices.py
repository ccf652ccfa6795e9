"""`python -m latency_models.devices`: the device profiles latency can be predicted for (bundled,
yours under $NAS_HOME/profiles, and this machine's `host`), from latency_models.device_profiles."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from common.cli import ArgumentParser, run
from latency_models.device_profiles import describe_profiles

PROG = "python -m latency_models.devices"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description="List the device profiles latency can be predicted for.")
    parser.add_argument("--json", action="store_true", help="print the profiles and their metadata as JSON")
    args = parser.parse_args(argv)
    rows = describe_profiles()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    table = Table(title="device profiles")
    for column in ("target", "precision", "device", "soc / cpu", "runtime", "threads", "source"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["target"],
            row["precision"],
            str(row.get("device", "")),
            str(row.get("soc", "")),
            str(row.get("runtime", "")),
            str(row.get("threads", "")),
            str(row.get("source", row.get("status", ""))),
        )
    Console(width=None if Console().is_terminal else 160).print(table)
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
