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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        rows = []
        for entry in ZOO.values():
            spec = get(entry.name)
            rows.append(
                {
                    "name": entry.name,
                    "family": entry.family,
                    "resolution": spec.resolution,
                    "macs": count_macs(spec),
                    "params": count_params(spec),
                    "top1": entry.top1,
                    "top1_source": entry.top1_source,
                }
            )
        if args.json:  # the zoo's rows only: callers iterate them as zoo.names()
            print(json.dumps(rows, indent=2))
            return 0
        extra = []
        for name in pytorchcv_names():
            spec = get(name)
            extra.append(
                {
                    "name": name,
                    "family": PYTORCHCV[name].family,
                    "resolution": spec.resolution,
                    "macs": count_macs(spec),
                    "params": count_params(spec),
                    "description": PYTORCHCV[name].description,
                }
            )
        width = None if Console().is_terminal else 120
        table = Table(title=f"{len(rows)} published architectures")
        for column in ("name", "family", "resolution", "MMACs", "params (M)", "top-1 (published)"):
            table.add_column(column, justify="left" if column in ("name", "family") else "right")
        for row in rows:
            table.add_row(
                row["name"],
                row["family"],
                str(row["resolution"]),
                f"{row['macs'] / 1e6:.1f}",
                f"{row['params'] / 1e6:.3f}",
                "-" if row["top1"] is None else str(row["top1"]),  # as published: 74.96 keeps its 2 decimals
            )
        Console(width=width).print(table)
        table = Table(title=f"{len(extra)} more pytorchcv (osmr/imgclsmob) networks with published latencies")
        for column in ("name", "family", "resolution", "MMACs", "params (M)", "what it is"):
            table.add_column(column, justify="right" if column in ("resolution", "MMACs", "params (M)") else "left")
        for row in extra:
            table.add_row(
                row["name"],
                row["family"],
                str(row["resolution"]),
                f"{row['macs'] / 1e6:.1f}",
                f"{row['params'] / 1e6:.3f}",
                row["description"],
            )
        Console(width=width).print(table)
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
