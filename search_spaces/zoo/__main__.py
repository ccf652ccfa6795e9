"""`python -m search_spaces.zoo`: list the published architectures, or show one.

list [--json]                           names, families, resolution, MACs, params and published top-1;
                                        then pytorchcv's networks with published latencies (not in --json)
show NAME [--resolution R] [--json]     layers with shapes, MACs, params (JSON: the spec too)
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from common.cli import ArgumentParser, UserError, positive_int, run
from search_spaces.graph import count_macs, count_params
from search_spaces.summary import describe, print_summary
from search_spaces.zoo import PYTORCHCV, ZOO, get, pytorchcv_names

PROG = "python -m search_spaces.zoo"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="Published architectures as ArchSpecs.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser(
        "list", help="list every model with its MACs, params and published top-1, then pytorchcv's networks"
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    show = commands.add_parser("show", help="show one model layer by layer")
    show.add_argument("name", help="model name, as `list` prints it (e.g. mobilenet_v2_1.0)")
    show.add_argument("--resolution", type=positive_int, help="input resolution (default: the published one)")
    show.add_argument("--num-classes", type=positive_int, default=1000, help="classifier outputs (default: 1000)")
    show.add_argument("--json", action="store_true", help="print the spec plus MACs, params and shapes as JSON")
    return parser


def _described(name: str, family: str, **more) -> dict:
    """A `list` row: the model's name, family, published resolution, MACs and params, and `more`."""
    spec = get(name)
    return {
        "name": name,
        "family": family,
        "resolution": spec.resolution,
        "macs": count_macs(spec),
        "params": count_params(spec),
        **more,
    }


def _print_table(title: str, rows: list[dict], last: str, last_cell, last_is_number: bool) -> None:
    """Rows as a table: name, family, resolution, MMACs, params and the column `last` (numbers
    right-aligned)."""
    table = Table(title=title)
    numbers = ("resolution", "MMACs", "params (M)", *((last,) if last_is_number else ()))
    for column in ("name", "family", "resolution", "MMACs", "params (M)", last):
        table.add_column(column, justify="right" if column in numbers else "left")
    for row in rows:
        table.add_row(
            row["name"],
            row["family"],
            str(row["resolution"]),
            f"{row['macs'] / 1e6:.1f}",
            f"{row['params'] / 1e6:.3f}",
            last_cell(row),
        )
    Console(width=None if Console().is_terminal else 120).print(table)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        rows = [_described(e.name, e.family, top1=e.top1, top1_source=e.top1_source) for e in ZOO.values()]
        if args.json:  # the zoo's rows only: callers iterate them as zoo.names()
            print(json.dumps(rows, indent=2))
            return 0
        extra = [
            _described(name, PYTORCHCV[name].family, description=PYTORCHCV[name].description)
            for name in pytorchcv_names()
        ]
        # as published: 74.96 keeps its 2 decimals
        _print_table(
            f"{len(rows)} published architectures",
            rows,
            "top-1 (published)",
            lambda row: "-" if row["top1"] is None else str(row["top1"]),
            True,
        )
        _print_table(
            f"{len(extra)} more pytorchcv (osmr/imgclsmob) networks with published latencies",
            extra,
            "what it is",
            lambda row: row["description"],
            False,
        )
        return 0
    if args.name not in ZOO and args.name not in PYTORCHCV:
        raise UserError(f"unknown model {args.name!r} (see `{PROG} list`)")
    spec = get(args.name, resolution=args.resolution, num_classes=args.num_classes)
    if args.json:
        print(json.dumps(describe(spec), indent=2))
    else:
        print_summary(spec)
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
