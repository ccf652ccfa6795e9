"""One writer at a time for a file or folder a command writes over time (a latency table, a
profile, a search's output folder, a training run): `hold(thing, what)` creates `<thing>.lock`
atomically (O_CREAT | O_EXCL), holding who writes (pid, host, command, since when), and removes it
when the writing is done.

A second writer is refused, not made to wait: `LockedError` (an InputError, so a command exits 2)
names the holder in one line. A lock whose process is gone (killed: its pid no longer runs on
this host) or whose file is unreadable or garbled is stale, and is taken over atomically.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from common.errors import InputError

SUFFIX = ".lock"


class LockedError(InputError):
    """The thing is being written by another live process (or by this one, elsewhere)."""


def lock_path(thing: str | os.PathLike) -> Path:
    thing = Path(thing)
    return thing.with_name(thing.name + SUFFIX)


def _command() -> str:
    argv = list(sys.argv)
    if not argv:
        return "python"
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:  # python -m package.module
        name = spec.name.removesuffix(".__main__")
        return " ".join(["python -m", name, *argv[1:]])
    return " ".join(["python", *argv])


def _record(what: str) -> str:
    return json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "command": _command(), "what": what, "started": time.time()}
    )


def _read(path: Path) -> dict | None:
    """The lock's record; None when the file is unreadable or garbled (a stale lock)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int) or data["pid"] <= 0:
        return None
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_live(record: dict | None) -> bool:
    if record is None:
        return False
    if record.get("host") not in (None, socket.gethostname()):
        return True  # a process on another host: cannot tell, so it counts as live
    return _alive(record["pid"])


def describe(thing: Path, record: dict) -> str:
    started = record.get("started")
    since = time.strftime("%H:%M", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    host = record.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    command = record.get("command") or "?"
    return (
        f"{thing} is being written by pid {record['pid']}{where} ({command}, since {since}); "
        "wait for it or stop it (a second writer is refused)"
    )


class UnwritableError(InputError):
    """The place a command would write to cannot be written (a file where a folder must be, no
    permission): found when its lock is taken, before any work."""


class Lock:
    """A held `<thing>.lock`; `release()` (or leaving the `with` block) removes it."""

    def __init__(self, thing: str | os.PathLike, what: str):
        self.thing = Path(thing)
        self.path = lock_path(self.thing)
        self.what = what
        self.held = False
        self._acquire()

    def _acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnwritableError(f"{self.thing}: cannot write there ({exc.strerror}: {exc.filename})") from None
        record = _record(self.what)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pass
            except OSError as exc:
                raise UnwritableError(f"{self.thing}: cannot write there ({exc.strerror}: {exc.filename})") from None
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(record)
                self._mark_held(record)
                return
            try:
                holder = _read(self.path)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if holder is None:
                # Garbled, or written this instant by a process between its O_EXCL open and its write.
                time.sleep(0.05)
                try:
                    holder = _read(self.path)
                except FileNotFoundError:
                    continue
            if _is_live(holder):
                raise LockedError(describe(self.thing, holder))
            if self._take_over(holder, record):
                return
        raise LockedError(f"{self.thing}: cannot take its lock {self.path} (other processes keep taking it)")

    def _take_over(self, stale: dict | None, record: str) -> bool:
        """Replace a stale lock with ours atomically; False when another process got there first."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(record)
            try:  # re-check: only a lock still as stale as the one seen is replaced
                if _read(self.path) != stale:
                    return False
            except FileNotFoundError:
                return False
            os.replace(tmp, self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        try:  # two takers may both have replaced it: the one whose record stayed holds it
            if self.path.read_text() != record:
                return False
        except OSError:
            return False
        self._mark_held(record)
        return True

    def _mark_held(self, record: str) -> None:
        self.held = True
        self._record = record

    def release(self) -> None:
        """Remove the lock (once; only while it is still ours)."""
        if not self.held:
            return
        self.held = False
        try:
            if self.path.read_text() == self._record:
                self.path.unlink()
        except OSError:
            pass

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def hold(thing: str | os.PathLike, what: str) -> Lock:
    """Take the lock of `thing` (a file or folder; `what` says what it is, e.g. "latency table"):
    use as `with hold(path, "latency table"):`. LockedError when a live process holds it."""
    return Lock(thing, what)
