"""What every command line shares: a user mistake is one line on stderr and exit code 2, never
a traceback, and argparse types that say what a flag accepts. The flags several commands of one
package share live beside them, each defined once with its one default: nas.options,
latency_models.options."""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable

from common.errors import InputError

EXIT_USAGE = 2


class UserError(InputError):
    """A mistake found by a command module itself (a flag combination, a missing file)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the usage stays available via --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def run(main: Callable[[list[str] | None], int], prog: str, argv: list[str] | None = None) -> None:
    """Run a command's entry point, turning user errors into one line on stderr and exit 2."""
    try:
        code = main(argv)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except OSError as exc:
        if not _users_filesystem(exc):
            raise
        # e.g. --out names a path under a file, a read-only folder, a full disk
        print(f"{prog}: error: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _users_filesystem(exc: OSError) -> bool:
    """Whether an OSError is the state of the user's files (not a bug): paths that are files where
    folders must be and the reverse, permissions, a full or read-only disk."""
    kinds = (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)
    return isinstance(exc, kinds) or exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT)


# argparse types: a value outside the range is a one-line usage error naming the flag.


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer >= `low` (and <= `high`, a bound on work a user can ask for by mistake)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text[:40]!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high:,}, got {value:,}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def float_in(low: float, high: float = float("inf"), *, low_open: bool = False, high_open: bool = True):
    """A finite float in the interval from `low` to `high` (closed at `low` unless `low_open`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below) or value != value:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            raise argparse.ArgumentTypeError(f"must be in {left}{low:g}, {high:g}{right}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
seed_int = int_at_least(0, 2**32 - 1)  # numpy's generators take non-negative seeds; 32 bits name plenty
positive_float = float_in(0.0, low_open=True)
non_negative_float = float_in(0.0)
