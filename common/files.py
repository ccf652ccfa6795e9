"""Files the project writes and reads: atomic writes, one reader for its JSON files, and a
size-bounded reader for binary files handed over by users."""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


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


def write_figure(path: str | os.PathLike, figure, dpi: int | None = None) -> None:
    """A matplotlib figure as a PNG, written atomically like every other output."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    write_atomic(path, buffer.getvalue())


def check_new_folder(path: str | os.PathLike, error: type[Exception], made_by: str) -> None:
    """Refuse with `error` an output folder that already holds anything (or is a file). A command
    that makes a folder of its own (`made_by` says what it makes) writes it only where there was
    nothing, an absent or empty folder, so no file it did not write is replaced or deleted."""
    path = Path(path)
    if path.is_dir():
        try:
            holds_files = any(path.iterdir())
        except OSError as exc:
            raise error(f"cannot read {path}: {exc.strerror}") from None
        if holds_files:
            raise error(f"{path} is not empty: {made_by} goes into a new or empty folder (nothing there is replaced)")
    elif path.exists() or path.is_symlink():
        raise error(f"{path} is a file, not a folder: {made_by} goes into a new or empty folder")


def read_bounded(path: str | os.PathLike, max_bytes: int, error: type[Exception]) -> bytes:
    """A file's bytes, refused with `error` (a one-line reason, without the path) when it is
    larger than `max_bytes` or cannot be read: a bound on what a damaged file makes us load."""
    try:
        if Path(path).stat().st_size > max_bytes:
            raise error(f"larger than {max_bytes >> 20} MiB")
        return Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read ({exc.strerror})") from None


def read_text(path: str | os.PathLike, error: type[Exception], kind: str = "JSON") -> str:
    """A UTF-8 text file's contents; a file that cannot be read or is not UTF-8 raises `error`
    with a one-line reason naming it (`kind`: what the text should be, for that reason)."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text ({kind}) file") from None


def parse_json(text: str, error: type[Exception], origin: str, what: str = "one of this program's files") -> Any:
    """`text` parsed as JSON; malformed, nested too deeply (for `what`, the document expected) or
    holding a number too long for Python raises `error` with a one-line reason naming `origin`.
    Values (finite numbers, ranges) are the caller's to check, field by field."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{origin}: not JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise error(f"{origin}: JSON nested too deeply to be {what}") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise error(f"{origin}: not readable JSON ({exc})") from None


def read_json(path: str | os.PathLike, error: type[Exception], what: str = "one of this program's files") -> Any:
    """The parsed contents of a JSON file; an unreadable or malformed file raises `error` with
    a one-line reason. `check_document` then checks a versioned file's kind and version."""
    return parse_json(read_text(path, error), error, str(path), what)


@dataclass(frozen=True)
class JsonLines:
    """The records of a JSON-lines text: (line number, value) of each non-blank line, and, where
    a torn last line was allowed and dropped, its number and why (None when there was none)."""

    records: list[tuple[int, Any]]
    torn: tuple[int, str] | None = None


def parse_json_lines(text: str, error: type[Exception], origin: str, torn_last_line: bool = False) -> JsonLines:
    """Each non-blank line of `text` parsed as JSON (`parse_json`, the reason naming `origin` and
    the line). With `torn_last_line`, a last line that does not parse (cut short by a kill while it
    was appended) is dropped and its reason returned instead."""
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    records = []
    for index, (number, line) in enumerate(lines):
        try:
            records.append((number, parse_json(line, error, f"{origin}: line {number}")))
        except error as exc:
            if torn_last_line and index == len(lines) - 1:
                return JsonLines(records, (number, str(exc).removeprefix(f"{origin}: line {number}: ")))
            raise
    return JsonLines(records)


def read_json_lines(path: str | os.PathLike, error: type[Exception], torn_last_line: bool = False) -> JsonLines:
    """A JSON-lines file's records (`parse_json_lines`), read as `read_text` reads."""
    return parse_json_lines(read_text(path, error, "JSON lines"), error, str(path), torn_last_line)


def check_document(
    data: object,
    kind: str,
    version: int,
    error: type[Exception],
    origin: str,
    what: str,
    earlier_kinds: tuple[str, ...] = (),
) -> dict:
    """`data` as one of the project's versioned documents: a JSON object whose "kind" is `kind`
    (every kind is "platform-nas/NAME"; `earlier_kinds`: names files of earlier versions carry,
    still read) and whose "schema_version" is the `version` this program reads; otherwise
    `error` naming `origin` (the file) and `what` was expected there (e.g. "a latency predictor")."""
    if not isinstance(data, dict) or data.get("kind") not in (kind, *earlier_kinds):
        raise error(f"{origin}: not {what} (kind {kind!r} expected)")
    if data.get("schema_version") != version:
        raise error(f"{origin}: schema_version {data.get('schema_version')!r}, this program reads {version}")
    return data
