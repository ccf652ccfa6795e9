"""Device profiles: a named device is a fitted latency predictor per precision.

Bundled profiles live in latency_models/profiles/<device>-<precision>.json (regenerated from the
published measurements by `python -m latency_models.build_profiles`); profiles users make with
`python -m latency_models.calibrate` live in $NAS_HOME/profiles (default ~/.cache/platform-nas)
and take precedence. The `host` profile is this machine: it is fitted from a table measured here,
kept (with its CPU model in the name) under $NAS_HOME; latency_models.measurement.first_use measures the
blocks that table lacks on first use. `python -m latency_models.devices` lists
them all (`describe_profiles`).
"""

from __future__ import annotations

import re
from pathlib import Path

from common.errors import InputError
from common.home import nas_home
from common.locks import hold
from latency_models.measurement.host import cpu_model
from latency_models.predictor.latency_predictor import LatencyPredictor, PredictorError, fit
from latency_models.tables.latency_table import LatencyTable, TableError

PROFILES = Path(__file__).resolve().parent


class UnknownTarget(InputError):
    """No profile by that name, or the host has no measured table yet; the message says what to do."""


def cpu_slug() -> str:
    return re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-") or "cpu"


def host_table_path(precision: str = "fp32") -> Path:
    return nas_home() / "tables" / f"host-{cpu_slug()}-{precision}-t1.jsonl"


def host_predictor_path(precision: str = "fp32") -> Path:
    return nas_home() / "predictors" / f"host-{cpu_slug()}-{precision}.json"


def user_profiles_dir() -> Path:
    return nas_home() / "profiles"


def measure_command(
    out: Path, precision: str = "fp32", space: str = "mbv3", resolution: int = 224, form_flags: str = ""
) -> str:
    """The command that measures a host table at `out` (`form_flags`: e.g. ' --proxy --classes 10')."""
    return (
        f"python -m latency_models.measure --target host --space {space} --resolution {resolution}{form_flags} "
        f"--precision {precision} --out {out}"
    )


def bundled() -> dict[tuple[str, str], Path]:
    """(device, precision) -> predictor file: the bundled ones, then the user's own."""
    out = {}
    for folder in (PROFILES, user_profiles_dir()):
        for path in sorted(folder.glob("*.json")):
            device, _, precision = path.stem.rpartition("-")
            out[(device, precision)] = path
    return out


def known_targets() -> list[str]:
    return sorted({device for device, _ in bundled()} | {"host"})


def load_predictor(target: str, precision: str = "fp32") -> LatencyPredictor:
    """The predictor of a target; UnknownTarget with the fix when there is none."""
    if target == "host":
        return _host_predictor(precision)
    profiles = bundled()
    if (target, precision) in profiles:
        return LatencyPredictor.load(profiles[(target, precision)])
    if any(device == target for device, _ in profiles):
        have = ", ".join(p for d, p in profiles if d == target)
        raise UnknownTarget(f"target {target!r} has no {precision} profile (it has: {have})")
    raise UnknownTarget(f"unknown target {target!r} (known: {', '.join(known_targets())})")


def _host_predictor(precision: str) -> LatencyPredictor:
    """The calibrated host predictor if `latency_models.evaluate` made one, else one fitted now
    from the host table (and kept), else an error naming the commands that measure the table."""
    predictor = saved_host_predictor(precision)
    if predictor is not None:
        return predictor
    table_path = host_table_path(precision)
    if not table_path.exists():
        raise UnknownTarget(
            f"no latency table for this CPU ({cpu_model()}) at {table_path}; `python -m latency_models.predict "
            f"--target host` measures what it needs on first use, or measure the whole space with: "
            + measure_command(table_path, precision)
        )
    return fit_host_predictor(load_host_table(precision), precision)


def saved_host_predictor(precision: str) -> LatencyPredictor | None:
    """The host predictor kept under $NAS_HOME, or None (none yet, or made by another version)."""
    path = host_predictor_path(precision)
    if path.exists():
        try:
            return LatencyPredictor.load(path)
        except PredictorError:
            pass  # made by another version: to be refitted
    return None


def load_host_table(precision: str) -> LatencyTable:
    """This machine's table (UnknownTarget, saying what to do, if it cannot be read)."""
    try:
        return LatencyTable.load(host_table_path(precision))
    except TableError as exc:
        raise UnknownTarget(f"{exc} (measure it again with --resume, or delete it)") from None


def fit_host_predictor(table: LatencyTable, precision: str) -> LatencyPredictor:
    """The host predictor fitted on this machine's table alone, kept as the host profile."""
    predictor = fit(
        table,
        metadata={
            "device": "host",
            "precision": precision,
            "soc": cpu_model(),
            "source": f"fitted on {host_table_path(precision)} (no whole-network calibration)",
        },
    )
    save_host_predictor(predictor, precision)
    return predictor


def save_host_predictor(predictor: LatencyPredictor, precision: str) -> None:
    """Keep `predictor` as this machine's host profile, under the file's writer lock (a second
    process writing it at the same moment is refused, naming the first)."""
    path = host_predictor_path(precision)
    with hold(path, "host predictor"):
        predictor.save(path)


def is_calibrated(predictor: LatencyPredictor) -> bool:
    """Fitted on whole networks as well as blocks (`latency_models.evaluate`'s host predictor)."""
    return predictor.metadata.get("fit", {}).get("networks", 0) > 0


def describe_profiles() -> list[dict]:
    """One row per profile: the bundled and user ones with their metadata, then the host's per
    precision with whether its table is measured (and the command that measures it if not)."""
    rows = []
    for (device, precision), path in bundled().items():
        try:
            meta = LatencyPredictor.load(path).metadata
        except PredictorError as exc:  # reported in its row; every other profile still listed
            rows.append({"target": device, "precision": precision, "file": str(path), "status": f"damaged: {exc}"})
            continue
        rows.append({"target": device, "precision": precision, "file": str(path), **meta})
    for precision in ("fp32", "int8"):
        table = host_table_path(precision)
        rows.append(
            {
                "target": "host",
                "precision": precision,
                "soc": cpu_model(),
                "status": "ready"
                if table.exists()
                else "not measured yet: `predict` or `nas.search` with --target host measures what it needs on "
                f"first use (or the whole space: {measure_command(table, precision)})",
            }
        )
    return rows
