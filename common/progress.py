"""The one progress bar every long command shows: what is being done, the bar, done of total,
then optionally a status the caller updates, the time elapsed and the time remaining."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    console: Console,
    *,
    status: bool = False,
    elapsed: bool = False,
    remaining: bool = True,
    disable: bool = False,
) -> Progress:
    """A rich Progress on `console` (a command's stderr, usually). Tasks are added with a
    description; with `status`, each task also carries a `status` field the caller updates
    (`progress.update(task, status=...)`), shown after the count."""
    columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    if elapsed:
        columns.append(TimeElapsedColumn())
    if remaining:
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=console, disable=disable)
