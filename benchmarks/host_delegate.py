"""Benchmark: latency on this machine under the XNNPACK delegate the TFLite runtime applies by
default (what host latency tables time) and under TFLite's builtin kernels alone.

Why: an int8 export runs several times slower than its float form here. Given .tflite files it
times each whole model both ways and counts the graph pieces the delegate took (it takes only
ops it supports: each op left out cuts the graph once more); given a spec (`--spec`, e.g. the
`spec.json` of a `--format flax` export) it times each of the spec's blocks both ways, the way
latency tables measure them, to show which blocks the time goes to.

    python benchmarks/host_delegate.py MODEL.tflite [MODEL.tflite ...]
    python benchmarks/host_delegate.py --spec spec.json [--precision int8]
"""

import argparse
from pathlib import Path

from latency_models.measurement.host import HostBackend
from latency_models.tables.signature import spec_blocks
from latency_models.tflite.emit import emit_block
from latency_models.tflite.runtime import op_counts
from search_spaces.arch_spec import ArchSpec


def both_ways(model: bytes, threads: int) -> tuple[float, float]:
    """(median ms under XNNPACK, median ms with builtin kernels alone), timed back to back."""
    delegated = HostBackend(threads=threads).time_bytes(model).median_ms
    return delegated, HostBackend(threads=threads, xnnpack=False).time_bytes(model).median_ms


def time_models(paths: list[Path], threads: int) -> None:
    for path in paths:
        model = path.read_bytes()
        nodes, pieces = op_counts(model)
        delegated, builtin = both_ways(model, threads)
        print(f"{path}: {sum(nodes.values())} ops ({', '.join(f'{k} {v}' for k, v in sorted(nodes.items()))})")
        print(f"  XNNPACK took {pieces} piece(s) of the graph: {delegated:.3f} ms (median, {threads} thread)")
        print(f"  builtin kernels alone: {builtin:.3f} ms; XNNPACK / builtin = {delegated / builtin:.2f}")


def time_blocks(spec_path: str, precision: str, threads: int) -> None:
    totals = [0.0, 0.0]
    print(f"{'XNNPACK ms':>10} {'builtin ms':>10} {'ratio':>6}  block ({precision}, random weights)")
    for block in spec_blocks(ArchSpec.load(spec_path), precision):
        delegated, builtin = both_ways(emit_block(block), threads)
        totals[0] += delegated
        totals[1] += builtin
        print(f"{delegated:10.3f} {builtin:10.3f} {delegated / builtin:6.2f}  {block.key[:100]}")
    print(f"{totals[0]:10.3f} {totals[1]:10.3f} {totals[0] / totals[1]:6.2f}  sum of the blocks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--spec", help="time each block of this spec instead of whole models")
    parser.add_argument("--precision", default="int8", choices=["fp32", "int8"], help="of --spec's blocks")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.spec:
        time_blocks(args.spec, args.precision, args.threads)
    else:
        time_models(args.models, args.threads)


if __name__ == "__main__":
    main()
