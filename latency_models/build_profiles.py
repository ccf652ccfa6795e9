"""`python -m latency_models.build_profiles [--data data/latency-data]`: regenerate the bundled
device profiles (latency_models/profiles/*.json) from the published measurements in the
repository's data/latency-data (see data/README.md). Which device comes from which data, and
how, is latency_models/profiles/bundled.py.
"""

from __future__ import annotations

from pathlib import Path

from common.cli import ArgumentParser, UserError, run
from latency_models.profiles.bundled import BUILDERS, DATA
from latency_models.profiles.registry import PROFILES
from latency_models.tables.other_projects import ImportFormatError

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
    parser.add_argument(
        "--out",
        default=str(PROFILES),
        help="folder to write <device>-<precision>.json into, each replaced atomically; other files there are "
        "left alone (default: the bundled profiles)",
    )
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
