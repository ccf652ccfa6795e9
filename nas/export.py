"""`python -m nas.export`: a searched architecture as a deployable model, with trained weights.

  python -m nas.export --arch arch.json --supernet runs/NAME --format tflite [--int8] [--calib N] --out model.tflite
  python -m nas.export --arch arch.json --supernet runs/NAME --format flax --out DIR
  python -m nas.export --arch arch.json --supernet runs/NAME --format spec --out spec.json
  python -m nas.export --verify model.tflite --arch arch.json --supernet runs/NAME
  python -m nas.export --arch SPEC.json --format tflite --random-weights [--int8] --out model.tflite

The subnet's weights come out of the supernet with batch norm recalibrated for it (as
`nas.evaluate` does), folded into the convolutions, and go through the same emitter that
builds the measured latency-table blocks, so what is timed is what ships. The network exported
is the one the supernet trains: its proxy form at the data's resolution (a search result's
deployable spec names which subnet). Its input is normalised images: `OUT.json` beside a
.tflite says how (per-channel mean and std of 0..1 pixels), the classes and the provenance.
int8 is post-training quantisation, activation ranges calibrated on --calib training images.
A .tflite is verified after export (see nas/verify.py) unless --no-verify; exit 1 when a check fails.
--tf-crosscheck (the `tf` extra) also converts the subnet with TensorFlow's converter (int8 with
--int8, calibrated on the same images) and compares the two (see nas/tf_crosscheck.py).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from common.cli import ArgumentParser, UserError, run
from common.files import write_atomic
from search_spaces.arch_spec import ArchSpec

PROG = "python -m nas.export"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Export a searched architecture as a deployable model.")
    p.add_argument("--arch", required=True, help="architecture spec JSON (a search result, a spec, a zoo export)")
    p.add_argument("--supernet", help="run folder of the trained supernet the weights come from")
    p.add_argument("--format", default="tflite", choices=["tflite", "flax", "spec"], help="(default: tflite)")
    p.add_argument("--int8", action="store_true", help="full-int8 .tflite (per-channel weights)")
    p.add_argument("--calib", type=int, default=256, help="training images calibrating int8 activations (256)")
    p.add_argument("--calib-images", type=int, default=2000, help="training images recalibrating batch norm (2000)")
    p.add_argument("--step", type=int, help="supernet checkpoint step (default: the latest)")
    p.add_argument("--out", help="where to write (atomically): a .tflite, a folder (flax) or a .json (spec)")
    p.add_argument("--verify", metavar="MODEL", help="verify an exported .tflite against --arch and --supernet")
    p.add_argument("--no-verify", action="store_true", help="skip verification after a .tflite export")
    p.add_argument("--no-latency", action="store_true", help="verification without timing on this machine")
    p.add_argument(
        "--tf-crosscheck", action="store_true", help="also convert with TensorFlow (jax2tf) and compare (`tf` extra)"
    )
    p.add_argument("--random-weights", action="store_true", help="random weights (to measure or inspect a model)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights and of int8 calibration images")
    p.add_argument("--cpu-devices", default="1", help="XLA devices on a CPU-only machine (default: 1)")
    return p


def _check(args) -> None:
    if args.verify is not None:
        if not args.supernet:
            raise UserError("--verify needs --supernet (the weights to compare against)")
        if not Path(args.verify).is_file():
            raise UserError(f"--verify {args.verify}: no such file")
        return
    if not args.out:
        raise UserError("--out is required")
    if args.random_weights:
        if args.format != "tflite":
            raise UserError("--random-weights exports only --format tflite")
        return
    if not args.supernet:
        raise UserError("trained weights come from a supernet: pass --supernet runs/NAME (or --random-weights)")
    if args.tf_crosscheck:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            raise UserError("--tf-crosscheck needs TensorFlow: pip install -e '.[tf]'") from None
    if args.int8 and args.format != "tflite":
        raise UserError("--int8 applies to --format tflite only")
    for flag in ("calib", "calib_images"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')}: must be >= 1, got {getattr(args, flag)}")


def _random_weights(args) -> int:
    from latency_models.tflite.emit import emit_spec

    spec = ArchSpec.load(args.arch)
    precision = "int8" if args.int8 else "fp32"
    model = emit_spec(spec, precision=precision, seed=args.seed)
    write_atomic(args.out, model)
    print(f"wrote {args.out} ({len(model) / 1e6:.2f} MB, {precision}, random weights)", file=sys.stderr)
    return 0


def int8_calibration(extracted, count: int, seed: int):
    """`count` normalised training images that calibrate int8 activation ranges."""
    from nas.accuracy import calibration_images

    return extracted.normalizer(calibration_images(extracted.data.train_x, count, seed))


def emit(extracted, calibration=None) -> tuple[bytes, bytes]:
    """(the model, its float form): int8 when `calibration` images are given; the float form
    sizes an int8 model in verification."""
    from latency_models.tflite.emit import emit_spec
    from nas.fold import inference_weights

    weights = inference_weights(extracted.spec, extracted.model)
    float_model = emit_spec(extracted.spec, weights)
    if calibration is None:
        return float_model, float_model
    return emit_spec(extracted.spec, weights, "int8", calibration=calibration), float_model


def _sidecar(extracted, args, precision: str) -> dict:
    data = extracted.data
    return {
        "kind": "platform-nas/tflite-export",
        "schema_version": 1,
        "model": Path(args.out).name,
        "precision": precision,
        "int8_calibration_images": args.calib if precision == "int8" else None,
        "input": {
            "shape": [1, extracted.spec.resolution, extracted.spec.resolution, extracted.spec.in_channels],
            "preprocess": "x / 255, then (x - mean) / std per channel",
            **dataclasses.asdict(extracted.normalizer),
        },
        "classes": list(data.classes),
        "spec": extracted.spec.to_dict(),
        "provenance": extracted.provenance,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    if args.random_weights:
        return _random_weights(args)
    from nas.train import configure_cpu_devices

    configure_cpu_devices(args.cpu_devices)
    from nas.extract import extract
    from nas.verify import describe, verify

    extracted = extract(args.supernet, args.arch, args.calib_images, args.step)
    if args.verify is not None:
        model = Path(args.verify).read_bytes()
        report = verify(model, extracted, latency=not args.no_latency)
        print("\n".join(describe(report)))
        return 0 if report["passed"] else 1
    if args.format == "spec":
        write_atomic(args.out, extracted.spec.to_json() + "\n")
        print(f"wrote {args.out} ({extracted.spec.name})", file=sys.stderr)
        return 0
    if args.format == "flax":
        from nas.flax_export import save

        save(extracted, args.out)
        print(f"wrote {args.out}/ (spec.json, export.json, checkpoint/)", file=sys.stderr)
        return 0
    calibration = int8_calibration(extracted, args.calib, args.seed) if args.int8 else None
    model, float_model = emit(extracted, calibration)
    precision = "int8" if args.int8 else "fp32"
    write_atomic(args.out, model)
    write_atomic(f"{args.out}.json", json.dumps(_sidecar(extracted, args, precision), indent=2) + "\n")
    print(f"wrote {args.out} ({len(model) / 1e6:.3f} MB, {precision}) and {args.out}.json", file=sys.stderr)
    passed = True
    if not args.no_verify:
        report = verify(model, extracted, float_model if args.int8 else None, latency=not args.no_latency)
        print("\n".join(describe(report)))
        passed = report["passed"]
    if args.tf_crosscheck:
        from nas.tf_crosscheck import crosscheck
        from nas.tf_crosscheck import describe as describe_crosscheck

        print("\n".join(describe_crosscheck(crosscheck(extracted, model, not args.no_latency, calibration))))
    return 0 if passed else 1


if __name__ == "__main__":
    run(main, PROG)
