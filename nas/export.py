"""`python -m nas.export`: write a deployable model for an architecture spec.

  python -m nas.export --arch SPEC.json --format tflite --random-weights [--int8] --out model.tflite

The .tflite is emitted by the same code that builds the measured latency-table blocks, so what
is timed is what ships. Trained weights arrive with the export issue (#6); until then only
--random-weights is accepted (enough to measure or inspect a model).
"""

from __future__ import annotations

import sys
from pathlib import Path

from latency_models.tflite.emit import emit_spec
from search_spaces.cli import ArgumentParser, UserError, read_spec, run, write_atomic

PROG = "python -m nas.export"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description="Export an architecture spec as a deployable model.")
    parser.add_argument(
        "--arch", required=True, help="architecture spec JSON (from the search, the zoo or `spec sample`)"
    )
    parser.add_argument("--format", default="tflite", choices=["tflite"], help="output format (default: tflite)")
    parser.add_argument("--random-weights", action="store_true", help="use random weights (for latency measurement)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and int8 calibration images")
    parser.add_argument(
        "--int8", action="store_true", help="full-int8 model (per-channel weights, calibrated activations)"
    )
    parser.add_argument("--out", required=True, help="where to write the model (atomically)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = read_spec(args.arch)
    if not args.random_weights:
        raise UserError("trained weights are not supported yet (issue #6): pass --random-weights")
    precision = "int8" if args.int8 else "fp32"
    model = emit_spec(spec, precision=precision, seed=args.seed)
    out = Path(args.out)
    write_atomic(out, model)
    print(f"wrote {out} ({len(model) / 1e6:.2f} MB, {precision}, {spec.name or spec.content_hash()})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, PROG)
