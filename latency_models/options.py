"""Flags the latency commands (and the search) share: the precision a network is priced at, and
which form of a space's networks a tool builds."""

from __future__ import annotations

import argparse

from common.cli import positive_int
from latency_models.tables.signature import PRECISIONS
from search_spaces import get_space
from search_spaces.space import SearchSpace

DEFAULT_PRECISION = "fp32"


def add_precision(parser: argparse.ArgumentParser, purpose: str = "the precision networks are priced at") -> None:
    parser.add_argument(
        "--precision", choices=PRECISIONS, default=DEFAULT_PRECISION, help=f"{purpose} ({DEFAULT_PRECISION})"
    )


def add_form_arguments(parser: argparse.ArgumentParser) -> None:
    """--proxy, --in-channels, --classes: which networks of a space a latency tool builds (the
    deployable ones by default; with --proxy the small-image form a supernet trains)."""
    form = parser.add_argument_group("network form")
    form.add_argument("--proxy", action="store_true", help="the small-image form a supernet trains")
    form.add_argument("--in-channels", type=positive_int, help="input channels (default: the space's, 3)")
    form.add_argument("--classes", type=positive_int, help="classifier outputs (default: the space's, 1000)")


def form_space(args: argparse.Namespace) -> SearchSpace:
    """The space named by --space with the --in-channels and --classes of `add_form_arguments`."""
    kwargs = {}
    if args.in_channels is not None:
        kwargs["in_channels"] = args.in_channels
    if args.classes is not None:
        kwargs["num_classes"] = args.classes
    return get_space(args.space, **kwargs)
