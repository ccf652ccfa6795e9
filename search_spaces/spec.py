"""`python -m search_spaces.spec`: inspect an architecture spec file, or sample one from a space.

show FILE [--json]          validate FILE and print its layers, shapes, MACs and params
sample --space mbv3 [...]   draw a random architecture and write it as spec JSON
"""

from __future__ import annotations

import json
import sys

import numpy as np

from common.cli import ArgumentParser, positive_int, run, seed_int
from common.files import write_atomic
from search_spaces import SPACES, get_space
from search_spaces.arch_spec import ArchSpec
from search_spaces.summary import describe, print_summary

PROG = "python -m search_spaces.spec"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="validate a spec file and summarise it")
    show.add_argument("file", help="architecture spec JSON (as written by `sample`, the zoo or the search)")
    show.add_argument("--json", action="store_true", help="print the spec with MACs, params and shapes as JSON")
    sample = commands.add_parser("sample", help="write a random architecture from a search space")
    sample.add_argument("--space", default="mbv3", choices=sorted(SPACES), help="search space (default: mbv3)")
    sample.add_argument("--seed", type=seed_int, default=0, help="random seed; the same seed gives the same spec")
    sample.add_argument("--resolution", type=positive_int, help="input resolution (default: the space's choice)")
    sample.add_argument("--proxy", action="store_true", help="small-image variant (8x downsampling, 32 px)")
    sample.add_argument("--num-classes", type=int, help="classifier outputs (default: the space's)")
    sample.add_argument("--out", help="write here instead of standard output (atomically)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "show":
        spec = ArchSpec.load(args.file)
        if args.json:
            print(json.dumps(describe(spec), indent=2))
        else:
            print_summary(spec)
        return 0
    kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
    space = get_space(args.space, **kwargs)
    choices = space.sample(np.random.default_rng(args.seed))
    spec = space.materialize(choices, resolution=args.resolution, proxy=args.proxy)
    spec = spec.with_name(f"{spec.name}-seed{args.seed}")
    if args.out:
        write_atomic(args.out, spec.to_json() + "\n")
        print(f"wrote {args.out} ({spec.content_hash()})", file=sys.stderr)
    else:
        print(spec.to_json())
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
