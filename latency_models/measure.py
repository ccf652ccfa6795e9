"""`python -m latency_models.measure`: build a latency table for a device, block by block.

Every distinct block the search space can produce at the given resolution (stem and head
included) is emitted as a .tflite model and timed on the target: this machine's interpreter
(`--target host`) or an Android phone over adb (`--target adb:SERIAL`, TFLite's benchmark_model).
Each row is saved (atomically) as soon as it is measured, so a killed run loses nothing and
`--resume` carries on where it stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from common.cli import ArgumentParser, UserError, positive_int, run
from latency_models.measurement.adb import AdbBackend
from latency_models.measurement.backends import Backend, DeviceError
from latency_models.measurement.block_timing import block_progress, check_resumable, hold_table, measure_into
from latency_models.measurement.host import HostBackend
from latency_models.options import add_form_arguments, add_precision, form_space
from latency_models.tables.latency_table import LatencyTable, TableError
from latency_models.tables.signature import space_blocks
from search_spaces import SPACES

PROG = "python -m latency_models.measure"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument(
        "--target",
        required=True,
        help="'host' (this machine's TFLite interpreter) or 'adb:SERIAL' (a phone, see `adb devices`)",
    )
    parser.add_argument("--space", default="mbv3", choices=sorted(SPACES), help="search space whose blocks to measure")
    parser.add_argument(
        "--resolution", type=positive_int, default=224, help="input resolution of the networks (default 224)"
    )
    add_precision(parser, "float32 or full-int8 blocks")
    parser.add_argument("--threads", type=positive_int, default=1, help="interpreter threads (default 1)")
    parser.add_argument(
        "--out",
        help="table file to write (default: TARGET-SPACE-RESOLUTION-PRECISION-tTHREADS.jsonl); held by OUT.lock "
        "while measuring: a second writer is refused (exit 2, naming the holder)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue an existing --out table: measure only the blocks it lacks"
    )
    parser.add_argument(
        "--limit", type=positive_int, help="measure at most this many new blocks (then stop; resumable)"
    )
    parser.add_argument(
        "--block-passes",
        type=positive_int,
        default=1,
        help="time every block this many times, in separate passes in shuffled orders, and keep the median "
        "(default 1; 3 rides out a machine whose speed drifts for a while, at three times the time)",
    )
    add_form_arguments(parser)
    phone = parser.add_argument_group("adb targets")
    phone.add_argument("--adb", default="adb", help="the adb executable (default: adb on PATH)")
    phone.add_argument(
        "--benchmark-binary",
        default="/data/local/tmp/benchmark_model",
        help="path of TFLite's benchmark_model on the phone",
    )
    phone.add_argument("--cpu-mask", help="hex CPU affinity mask for taskset on the phone, e.g. 80 = CPU 7")
    phone.add_argument("--use-xnnpack", action="store_true", help="run benchmark_model with the XNNPACK delegate")
    return parser


def make_backend(args) -> Backend:
    if args.target == "host":
        return HostBackend(threads=args.threads)
    if args.target.startswith("adb:"):
        try:
            return AdbBackend.from_target(
                args.target,
                binary=args.benchmark_binary,
                threads=args.threads,
                cpu_mask=args.cpu_mask,
                use_xnnpack=args.use_xnnpack,
                adb=args.adb,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
    raise UserError(f"--target: expected 'host' or 'adb:SERIAL', got {args.target!r}")


def open_table(path: Path, resume: bool, backend: Backend, precision: str) -> LatencyTable:
    metadata = backend.metadata(precision)
    if not path.exists():
        return LatencyTable(metadata)
    if not resume:
        raise UserError(f"{path} exists: pass --resume to continue it, or choose another --out")
    try:
        table = LatencyTable.load(path)
    except TableError as exc:
        raise UserError(str(exc)) from None
    try:
        check_resumable(table, metadata, path)
    except TableError as exc:
        raise UserError(str(exc)) from None
    return table


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    backend = make_backend(args)
    space = form_space(args)
    form = f"{args.space}{'-proxy' if args.proxy else ''}"
    default_name = f"{args.target.replace(':', '_')}-{form}-{args.resolution}-{args.precision}-t{args.threads}"
    out = Path(args.out or f"{default_name}.jsonl")
    console = Console(stderr=True)
    try:
        with hold_table(out):
            table = open_table(out, args.resume, backend, args.precision)
            blocks = space_blocks(space, args.resolution, args.precision, proxy=args.proxy)
            missing = [block for block in blocks if block.key not in table]
            todo = missing[: args.limit]
            console.print(
                f"{form} @ {args.resolution}px {args.precision}: {len(blocks)} distinct blocks, "
                f"{len(blocks) - len(missing)} already in {out}, measuring {len(todo)}"
            )
            with block_progress(console, len(todo) * args.block_passes) as on_block:
                failed = measure_into(backend, todo, table, out, on_block, passes=args.block_passes)
            if not out.exists():
                table.save(out)
    except DeviceError as exc:
        kept = f" ({len(LatencyTable.load(out))} rows kept in {out}; rerun with --resume)" if out.exists() else ""
        print(f"{PROG}: error: {exc}{kept}", file=sys.stderr)
        return 1
    finally:
        getattr(backend, "close", lambda: None)()
    covered = len(blocks) - len(table.coverage(blocks).missing)
    console.print(f"{out}: {len(table)} rows; {covered}/{len(blocks)} blocks of {form} covered")
    for block, reason in failed:
        console.print(f"[red]failed[/] {block.key}: {reason}")
    return 1 if failed else 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
