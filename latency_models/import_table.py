"""`python -m latency_models.import_table`: bring another project's latency lookup table over.

ofa PATH... --out T.jsonl          Once-for-All `<res>_lookup_table.yaml` files (Note10 by default)
proxyless PATH... --out T.jsonl    ProxylessNAS `mobile_trim.yaml`-style tables (Pixel 1 by default)
hwnasbench PATH --out T.jsonl      HW-NAS-Bench `fbnet_cached_metrics.json`, one device per table

The table is written atomically; a summary says how much of the matching search space it covers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from common.cli import ArgumentParser, UserError, positive_int, run
from latency_models.tables.latency_table import LatencyTable
from latency_models.tables.other_projects import (
    HWNASBENCH_DEVICES,
    ImportFormatError,
    import_hwnasbench,
    import_ofa,
    import_proxyless,
)
from latency_models.tables.signature import Block, space_blocks, spec_blocks
from search_spaces import FBNetSpace, MobileNetV3Space, ProxylessSpace
from search_spaces.zoo import get as zoo_model

PROG = "python -m latency_models.import_table"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Convert another project's per-block latency lookup table into this project's table format "
        "(JSONL), with its device metadata, so `LatencyTable.spec_latency` prices our specs with it.",
    )
    formats = parser.add_subparsers(dest="format", required=True, metavar="{ofa,proxyless,hwnasbench}")
    commands = {
        "ofa": (
            "Once-for-All lookup tables (YAML, one file per input resolution; a block found in several "
            "files keeps the highest-resolution file's row, as OFA prices a network from its own resolution's file)",
            "+",
            "note10",
        ),
        "proxyless": (
            "ProxylessNAS lookup tables (YAML; `expand` is the ratio; the Logits entry, which times global "
            "pooling and the classifier together, becomes the dense row plus a 0 ms global_pool row)",
            "+",
            "pixel1",
        ),
        "hwnasbench": (
            "HW-NAS-Bench FBNet table (JSON; latency only; the ImageNet and CIFAR blocks differ in shape, so "
            "one table holds both configurations)",
            None,
            "pixel3",
        ),
    }
    for name, (help_text, nargs, default_device) in commands.items():
        sub = formats.add_parser(name, help=help_text, description=help_text)
        if nargs:
            sub.add_argument("paths", nargs=nargs, metavar="PATH", help="table file(s); all go into one table")
        else:
            sub.add_argument("paths", nargs=1, metavar="PATH", help="the fbnet_cached_metrics.json file")
        sub.add_argument("--out", required=True, help="latency table to write (JSONL; replaced atomically)")
        if name == "hwnasbench":
            device_help = f"which device's figures to import: {', '.join(HWNASBENCH_DEVICES)} (default: pixel3)"
        else:
            device_help = (
                f"device the table was measured on (default: {default_device}, the published table, whose "
                "known metadata is filled in; any other name imports your own table with only that name)"
            )
        sub.add_argument("--device", help=device_help)
        sub.add_argument("--soc", help="record this SoC or CPU model in the metadata (default: what the source says)")
        sub.add_argument("--runtime", help="record this runtime, e.g. tflite (default: what the source says)")
        sub.add_argument("--threads", type=positive_int, help="record this thread count (default: unknown)")
    return parser


def load_source(args) -> LatencyTable:
    try:
        if args.format == "hwnasbench":
            table = import_hwnasbench(args.paths[0], args.device or "pixel3")
        else:
            importer = import_ofa if args.format == "ofa" else import_proxyless
            published = {"ofa": "note10", "proxyless": "pixel1"}[args.format]
            table = importer(args.paths, None if args.device in (None, published) else args.device)
    except ImportFormatError as exc:
        raise UserError(str(exc)) from None
    overrides = {name: getattr(args, name) for name in ("soc", "runtime", "threads") if getattr(args, name)}
    table.metadata = dataclasses.replace(table.metadata, **overrides)
    return table


def coverage_lines(fmt: str, table: LatencyTable) -> list[str]:
    """How much of the search space (and zoo models) matching the format the table covers."""

    def count(blocks: Iterable[Block]) -> str:
        cov = table.coverage(blocks)
        return f"{len(cov.needed) - len(cov.missing)}/{len(cov.needed)}"

    def line(label: str, blocks: Iterable[Block]) -> str:
        cov = table.coverage(blocks)
        text = f"  {label}: {len(cov.needed) - len(cov.missing)}/{len(cov.needed)} blocks"
        return text + (f" (first missing: {cov.missing[0].key})" if cov.missing else "")

    if fmt == "ofa":
        # The stems' input sizes are the resolutions the table was measured at.
        resolutions = sorted({row.block.in_shape[0] for row in table.rows.values() if row.block.in_shape[2] == 3})
        space = MobileNetV3Space()
        top = space.dimensions[0].options[-1]  # choices at one resolution: the spec is rebuilt at each size
        return [
            f"  mbv3 width {w}: "
            + ", ".join(
                f"{r} px {count(space_blocks(space, r, where={'width': w, 'resolution': top}))}" for r in resolutions
            )
            + " blocks"
            for w in (1.2, 1.0)
        ]
    if fmt == "proxyless":
        return [
            line("proxyless at 224 px", space_blocks(ProxylessSpace())),
            line("zoo proxylessnas_mobile", spec_blocks(zoo_model("proxylessnas_mobile"))),
        ]
    return [line(f"{FBNetSpace(c).name} ({c})", space_blocks(FBNetSpace(c))) for c in ("imagenet", "cifar")]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.device is not None and not args.device.strip():
        raise UserError("--device: must not be empty")
    table = load_source(args)
    try:
        table.save(args.out)
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"wrote {args.out}: {len(table)} rows, device {table.metadata.device}, {len(args.paths)} file(s)")
    print("coverage:")
    print("\n".join(coverage_lines(args.format, table)))
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
