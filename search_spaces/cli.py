"""What every command line of the project shares: a user mistake is one line on stderr and
exit code 2, never a traceback; files are written atomically."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from search_spaces.arch_spec import ArchSpec, SpecError

EXIT_USAGE = 2
SEARCH_RESULT_KIND = "platform-nas/search-result"  # what nas.search writes as arch.json
_UMASK = os.umask(0)
os.umask(_UMASK)


class UserError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (the usage stays available via --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def run(main: Callable[[list[str] | None], int], prog: str, argv: list[str] | None = None) -> None:
    """Run a CLI entry point, turning user errors into one line on stderr and exit 2."""
    try:
        code = main(argv)
    except (UserError, SpecError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def read_spec(path: str) -> ArchSpec:
    """Load an ArchSpec from a JSON file; any problem becomes a one-line UserError."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return ArchSpec.from_json(_unwrap_search_result(text))
    except SpecError as exc:
        raise UserError(f"{path}: {exc}") from None


def _unwrap_search_result(text: str) -> str:
    """A search's arch.json carries the spec under "spec", next to its predicted latency and
    estimated accuracy: read as a spec, it is that spec."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text  # ArchSpec.from_json says what is wrong
    if isinstance(data, dict) and data.get("kind") == SEARCH_RESULT_KIND and "spec" in data:
        return json.dumps(data["spec"])
    return text


def read_json(path: str | os.PathLike, error: type[Exception]) -> object:
    """The parsed contents of a JSON file; an unreadable or malformed file raises `error` with
    a one-line reason."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None


def write_atomic(path: str | os.PathLike, content: str | bytes) -> None:
    """Write `content` to `path` via a temporary file in the same folder and a rename, so a
    reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide the file from other users
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_form_arguments(parser: argparse.ArgumentParser) -> None:
    """--proxy, --in-channels, --classes: which networks of a space a latency tool builds (the
    deployable ones by default; with --proxy the small-image form a supernet trains)."""
    form = parser.add_argument_group("network form")
    form.add_argument("--proxy", action="store_true", help="the small-image form a supernet trains")
    form.add_argument("--in-channels", type=int, help="input channels (default: the space's, 3)")
    form.add_argument("--classes", type=int, help="classifier outputs (default: the space's, 1000)")


def form_space(args: argparse.Namespace):
    """The space with the --in-channels and --classes of `add_form_arguments`."""
    from search_spaces import get_space

    kwargs = {}
    for flag, name in (("in_channels", "in_channels"), ("classes", "num_classes")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise UserError(f"--{flag.replace('_', '-')}: must be positive, got {value}")
            kwargs[name] = value
    return get_space(args.space, **kwargs)
