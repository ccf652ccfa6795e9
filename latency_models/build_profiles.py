"""`python -m latency_models.build_profiles [--data data/latency-data]`: regenerate the bundled
device profiles (latency_models/profiles/*.json) from the published measurements in the
repository's data/latency-data (see data/README.md); the builders are
latency_models/bundled_profiles.py.

  note10   Once-for-All's per-block table of a Samsung Galaxy Note10 (w1.2 MobileNetV3 space)
  pixel1   ProxylessNAS's per-block table of a Pixel 1 (MobileNetV2-style space)
  pixel3   HW-NAS-Bench's FBNet per-block table of a Pixel 3
  pixel4   whole-network Pixel 4 CPU figures (1 thread, Cortex-A76 prime core), transferred from
           the Note10 predictor (see latency_models/pixel4_profile.py)

Each profile records the files and figures it was fitted on.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import ArgumentParser, UserError, run
from latency_models.bundled_profiles import BUILDERS, DATA
from latency_models.device_profiles import PROFILES
from latency_models.importers import ImportFormatError

PROG = "python -m latency_models.build_profiles"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description="Regenerate the bundled device profiles from published data.")
    parser.add_argument(
        "--data",
        default=str(DATA),
        help="folder with the published latency data (default: the repository's data/latency-data)",
    )
    parser.add_argument(
        "--device", choices=sorted(BUILDERS), action="append", help="profile to rebuild (repeatable; default: all)"
    )
    parser.add_argument("--out", default=str(PROFILES), help="folder to write <device>-<precision>.json into")
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        raise UserError(f"--data: no folder {data} (it holds the published measurements, see its README)")
    for device in args.device or sorted(BUILDERS):
        try:
            predictors = BUILDERS[device](data)
        except (ImportFormatError, FileNotFoundError) as exc:
            raise UserError(f"{device}: {exc}") from None
        for precision, predictor in predictors.items():
            path = Path(args.out) / f"{device}-{precision}.json"
            predictor.save(path)
            print(f"wrote {path}: {predictor.metadata.get('fit')}")
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
