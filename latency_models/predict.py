"""`python -m latency_models.predict --target pixel4 (--arch SPEC.json | --zoo NAME)`: the
predicted latency of one network on one device, in ms (per block with --json), with its costs:
params, MACs and, deployed as fp32, int8 and int8 with integer input and output, the .tflite's
bytes (flash), TensorFlow Lite Micro's activation arena (peak SRAM) and MCUNet's peak activation
(latency_models.footprint; bytes with --json). With `--target host`, the blocks this machine's
table lacks are measured first (once; see latency_models.measurement.first_use)."""

from __future__ import annotations

import json

from common.cli import ArgumentParser, UserError, positive_int, run
from latency_models.footprint.costs import Footprint, footprints
from latency_models.measurement.first_use import host_predictor
from latency_models.options import add_precision
from latency_models.predictor.latency_predictor import PredictorError
from latency_models.profiles.registry import UnknownTarget, load_predictor
from search_spaces.arch_spec import ArchSpec
from search_spaces.zoo import ZOO
from search_spaces.zoo import get as zoo_model

PROG = "python -m latency_models.predict"
KB = 1024  # microcontrollers' SRAM and flash are quoted in these


def costs_json(costs: list[Footprint]) -> dict:
    return {
        "params": costs[0].params,
        "macs": costs[0].macs,
        "deployments": [
            {
                "deployment": c.deployment,
                "precision": c.precision,
                "integer_io": c.integer_io,
                "flash_bytes": c.flash_bytes,
                "arena_bytes": c.arena_bytes,
                "mcunet_peak_bytes": c.mcunet_peak_bytes,
            }
            for c in costs
        ],
    }


def costs_lines(costs: list[Footprint]) -> list[str]:
    lines = [
        f"{costs[0].params / 1e6:.3g} M params, {costs[0].macs / 1e6:.4g} M MACs",
        f"{'':16}{'flash (KB)':>12}{'TFLM arena (KB)':>17}{'MCUNet peak (KB)':>18}",
    ]
    for c in costs:
        lines.append(
            f"{c.deployment:16}{c.flash_bytes / KB:12.1f}{c.arena_bytes / KB:17.1f}{c.mcunet_peak_bytes / KB:18.1f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description="Predict a network's latency on a device.")
    parser.add_argument("--target", required=True, help="device profile (see `python -m latency_models.devices`)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", help="architecture spec JSON")
    which.add_argument("--zoo", help="a published model by name (see `python -m search_spaces.zoo list`)")
    parser.add_argument(
        "--resolution", type=positive_int, help="with --zoo: input resolution (default: the published one)"
    )
    add_precision(parser, "float32 or int8 model")
    parser.add_argument("--json", action="store_true", help="print the prediction with a per-block breakdown as JSON")
    args = parser.parse_args(argv)
    if args.zoo is not None and args.zoo not in ZOO:
        raise UserError(f"unknown zoo model {args.zoo!r} (see `python -m search_spaces.zoo list`)")
    spec = ArchSpec.load(args.arch) if args.arch else zoo_model(args.zoo, resolution=args.resolution)
    try:
        # host: measures the blocks this machine's table lacks first (once), saying so on stderr
        predictor = (
            host_predictor([spec], args.precision)
            if args.target == "host"
            else load_predictor(args.target, args.precision)
        )
    except (UnknownTarget, PredictorError) as exc:
        raise UserError(str(exc)) from None
    ms = predictor.spec_ms(spec, args.precision)
    costs = footprints(spec)
    if args.json:
        print(
            json.dumps(
                {
                    "target": args.target,
                    "precision": args.precision,
                    "arch": spec.name or spec.content_hash(),
                    "content_hash": spec.content_hash(),
                    "predicted_ms": ms,
                    "network_overhead_ms": predictor.network_overhead_ms,
                    "blocks": predictor.breakdown(spec, args.precision),
                    "costs": costs_json(costs),
                    "profile": predictor.metadata,
                },
                indent=2,
            )
        )
    else:
        print(f"{ms:.2f} ms  ({spec.name or spec.content_hash()} on {args.target}, {args.precision})")
        print("\n".join(costs_lines(costs)))
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
