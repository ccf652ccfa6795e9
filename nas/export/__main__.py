"""`python -m nas.export`: a searched architecture as a deployable model, with trained weights.

  python -m nas.export --arch arch.json --supernet runs/NAME --format tflite [--int8 [--integer-io]] [--calib N] \
      --out model.tflite
  python -m nas.export --arch arch.json --supernet runs/NAME --format flax --out DIR
  python -m nas.export --arch arch.json --supernet runs/NAME --format spec --out spec.json
  python -m nas.export --verify model.tflite --arch arch.json --supernet runs/NAME
  python -m nas.export --arch SPEC.json --format tflite --random-weights [--int8 [--integer-io]] --out model.tflite

The subnet's weights come out of the supernet with batch norm recalibrated for it (as
`nas.evaluate` does), folded into the convolutions, and go through the same emitter that
builds the measured latency-table blocks, so what is timed is what ships. The network exported
is the one the supernet trains: its proxy form at the data's resolution (a search result's
deployable spec names which subnet). Its input is normalised images: `OUT.json` beside a
.tflite says how (per-channel mean and std of 0..1 pixels), the classes and the provenance.
int8 is post-training quantisation, activation ranges calibrated on --calib training images; it
takes and gives float tensors unless --integer-io: then int8 ones, as a microcontroller feeds it
pixels (OUT.json gives their scales and zero points).
A .tflite is verified after export (see nas/export/verify.py) unless --no-verify; exit 1 when a check fails.
--tf-crosscheck (the `tf` extra) also converts the subnet with TensorFlow's converter (int8 with
--int8, calibrated on the same images) and compares the two (see nas/export/tf_crosscheck.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.cli import ArgumentParser, UserError, positive_int, run, seed_int
from common.files import check_new_folder, write_atomic
from latency_models.footprint.costs import deployment_name
from latency_models.tflite.emit import emit_spec
from nas.export import tf_crosscheck
from nas.export.extract import extract
from nas.export.to_flax import save as save_flax
from nas.export.to_tflite import emit, int8_calibration, sidecar
from nas.export.verify import describe, verify
from nas.options import add_calib_images, add_cpu_devices, add_supernet
from nas.training.xla import configure_cpu_devices
from search_spaces.arch_spec import ArchSpec

PROG = "python -m nas.export"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Export a searched architecture as a deployable model.")
    p.add_argument("--arch", required=True, help="architecture spec JSON (a search result, a spec, a zoo export)")
    add_supernet(p, required=False, purpose="the trained weights come from it")
    p.add_argument("--format", default="tflite", choices=["tflite", "flax", "spec"], help="(default: tflite)")
    p.add_argument("--int8", action="store_true", help="full-int8 .tflite (per-channel weights)")
    p.add_argument(
        "--integer-io", action="store_true", help="with --int8: int8 input and output tensors (default: float)"
    )
    p.add_argument("--calib", type=positive_int, default=256, help="training images calibrating int8 activations (256)")
    add_calib_images(p)
    p.add_argument("--step", type=int, help="supernet checkpoint step (default: the latest)")
    p.add_argument(
        "--out",
        help="where to write (atomically): a .tflite (and OUT.json beside it) or a .json (spec), replacing a file "
        "there; a folder that is absent or empty (flax): one that holds anything is refused",
    )
    p.add_argument("--verify", metavar="MODEL", help="verify an exported .tflite against --arch and --supernet")
    p.add_argument("--no-verify", action="store_true", help="skip verification after a .tflite export")
    p.add_argument("--no-latency", action="store_true", help="verification without timing on this machine")
    p.add_argument(
        "--tf-crosscheck", action="store_true", help="also convert with TensorFlow (jax2tf) and compare (`tf` extra)"
    )
    p.add_argument("--random-weights", action="store_true", help="random weights (to measure or inspect a model)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of random weights and of int8 calibration images")
    add_cpu_devices(p)
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
    _check_out(args)
    if args.integer_io and args.format != "tflite":
        raise UserError("--integer-io applies to --format tflite only")
    if args.integer_io and not args.int8:
        raise UserError("--integer-io needs --int8: only an int8 model has int8 input and output")
    if args.random_weights:
        if args.format != "tflite":
            raise UserError("--random-weights exports only --format tflite")
        return
    if not args.supernet:
        raise UserError("trained weights come from a supernet: pass --supernet runs/NAME (or --random-weights)")
    if args.tf_crosscheck:
        try:
            import tensorflow  # noqa: F401  (deferred: the optional 1.3 GB `tf` extra, asked for by this flag only)
        except ImportError:
            raise UserError("--tf-crosscheck needs TensorFlow: pip install -e '.[tf]'") from None
    if args.int8 and args.format != "tflite":
        raise UserError("--int8 applies to --format tflite only")


def _check_out(args) -> None:
    """Refused before any work: a Flax export goes into a new or empty folder, a .tflite (and
    its OUT.json) or a spec replaces a file, never a folder."""
    if args.format == "flax":
        check_new_folder(args.out, UserError, "a Flax export")
        return
    for path in [args.out, f"{args.out}.json"] if args.format == "tflite" else [args.out]:
        if Path(path).is_dir():
            raise UserError(f"{path} is a folder: --format {args.format} writes a file there")


def _random_weights(args) -> int:
    spec = ArchSpec.load(args.arch)
    precision = "int8" if args.int8 else "fp32"
    model = emit_spec(spec, precision=precision, seed=args.seed, integer_io=args.integer_io)
    write_atomic(args.out, model)
    deployment = deployment_name(precision, args.integer_io)
    print(f"wrote {args.out} ({len(model) / 1e6:.2f} MB, {deployment}, random weights)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    if args.random_weights:
        return _random_weights(args)
    configure_cpu_devices(args.cpu_devices)
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
        save_flax(extracted, args.out)
        print(f"wrote {args.out}/ (spec.json, export.json, checkpoint/)", file=sys.stderr)
        return 0
    calibration = int8_calibration(extracted, args.calib, args.seed) if args.int8 else None
    model, float_model = emit(extracted, calibration, args.integer_io)
    precision = "int8" if args.int8 else "fp32"
    write_atomic(args.out, model)
    described = sidecar(extracted, model, Path(args.out).name, precision, args.calib)
    write_atomic(f"{args.out}.json", json.dumps(described, indent=2) + "\n")
    deployment = deployment_name(precision, args.integer_io)
    print(f"wrote {args.out} ({len(model) / 1e6:.3f} MB, {deployment}) and {args.out}.json", file=sys.stderr)
    passed = True
    if not args.no_verify:
        report = verify(model, extracted, float_model if args.int8 else None, latency=not args.no_latency)
        print("\n".join(describe(report)))
        passed = report["passed"]
    if args.tf_crosscheck:
        comparison = tf_crosscheck.crosscheck(extracted, model, not args.no_latency, calibration)
        print("\n".join(tf_crosscheck.describe(comparison)))
    return 0 if passed else 1


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
