"""`python -m nas.search --target=DEVICE`: latency-constrained evolutionary search.

Not built yet: the search lands with issue #7 ([search]), after the latency tables (#3), the
latency predictor (#4) and the supernet (#5). Until then this command says so and points at
what already works, so the README's set-up command runs end to end.
"""

from __future__ import annotations

import sys

from search_spaces.cli import ArgumentParser, run

PROG = "python -m nas.search"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description="Latency-constrained architecture search (not built yet).")
    parser.add_argument("--target", default="pixel4", help="device profile to search for (default: pixel4)")
    parser.parse_args(argv)
    print(
        "nas.search: not built yet (the search arrives with issue #7). Available now:\n"
        "  python -m search_spaces.zoo list            published architectures\n"
        "  python -m search_spaces.zoo show NAME       layers, shapes, MACs, params\n"
        "  python -m search_spaces.spec sample --space mbv3 --seed 0",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    run(main, PROG)
