"""A supernet run folder: everything needed to use a trained supernet without its command line.

runs/NAME/config.json     schema-versioned: the supernet (space, its arguments, proxy
                          resolution), the data (source, shape, classes, normalisation), the
                          training settings and seed
runs/NAME/checkpoints/    Orbax checkpoints by step: parameters and optimiser state
runs/NAME/metrics.jsonl   one JSON object per line: training progress and evaluations
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from common.errors import InputError
from common.files import parse_json, read_json_lines, read_text, write_atomic
from common.locks import Lock, hold
from common.values import is_number
from nas.supernet.supernet import Layout, Supernet, SupernetConfig
from nas.training.data import Normalizer
from nas.training.step import OptimConfig, split


class RunError(InputError):
    """A run folder that cannot be used: missing, damaged, or already holding another run."""


SCHEMA_VERSION = 1
CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that shapes the result of training (so a resumed run repeats it)."""

    data: str = "fashion-mnist"
    epochs: int = 4  # fits the hour on 2 CPU cores: see nas/README.md
    batch_size: int = 64
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 4e-5
    warmup_epochs: float = 0.3
    label_smoothing: float = 0.1
    random_subnets: int = 1
    augmentation: str = "flip"
    seed: int = 0
    train_images: int | None = None  # use only the first N (after a seeded shuffle): quick runs

    def optim(self, steps_per_epoch: int, epochs: int | None = None):
        """The optimiser settings for `epochs` (default: this run's) of `steps_per_epoch`."""
        return OptimConfig(
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            warmup_steps=round(self.warmup_epochs * steps_per_epoch),
            total_steps=(self.epochs if epochs is None else epochs) * steps_per_epoch,
            label_smoothing=self.label_smoothing,
        )


@dataclass(frozen=True)
class RunConfig:
    supernet: SupernetConfig
    train: TrainConfig
    data: dict[str, Any]  # the data set as trained on: name, sizes, shape, classes
    normalizer: Normalizer

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "supernet": self.supernet.to_dict(),
                "train": dataclasses.asdict(self.train),
                "data": self.data,
                "normalizer": dataclasses.asdict(self.normalizer),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str, where: str) -> RunConfig:
        raw = parse_json(text, RunError, where)
        try:
            if raw.get("schema_version") != SCHEMA_VERSION:
                raise RunError(
                    f"{where}: schema_version {raw.get('schema_version')!r}, this program reads {SCHEMA_VERSION}"
                )
            normalizer = raw["normalizer"]
            config = cls(
                supernet=SupernetConfig.from_dict(raw["supernet"]),
                train=TrainConfig(**raw["train"]),
                data=raw["data"],
                normalizer=Normalizer(tuple(normalizer["mean"]), tuple(normalizer["std"])),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RunError(f"{where}: not a supernet run config ({type(exc).__name__}: {exc})") from None
        problem = _config_problem(config)
        if problem:
            raise RunError(f"{where}: {problem}")
        return config


def _config_problem(config: RunConfig) -> str | None:
    """What in a read run config no training writes (None: nothing). A zero normaliser spread, for
    one, made every image infinite and a trained supernet evaluate at chance."""
    mean, std = config.normalizer.mean, config.normalizer.std
    numbers = [*mean, *std]
    if not mean or len(mean) != len(std) or not all(is_number(x) for x in numbers):
        return "normalizer: mean and std must be equally long lists of finite numbers"
    if min(std) <= 0:
        return f"normalizer.std: must be positive, got {min(std)}"
    train = config.train
    for name in ("epochs", "batch_size", "random_subnets"):
        value = getattr(train, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"train.{name}: must be a positive integer, got {value!r}"
    if not (isinstance(train.seed, int) and not isinstance(train.seed, bool) and train.seed >= 0):
        return f"train.seed: must be a non-negative integer, got {train.seed!r}"
    if train.train_images is not None and (not isinstance(train.train_images, int) or train.train_images < 1):
        return f"train.train_images: must be a positive integer or null, got {train.train_images!r}"
    for name, low, high in (
        ("learning_rate", 0, math.inf),
        ("momentum", 0, 1),
        ("weight_decay", 0, math.inf),
        ("warmup_epochs", 0, math.inf),
        ("label_smoothing", 0, 1),
    ):
        value = getattr(train, name)
        if not (is_number(value) and low <= value < high):
            return f"train.{name}: must be a number in [{low}, {high}), got {value!r}"
    return None


def hold_run(path: str | os.PathLike) -> Lock:
    """The run folder's writer lock (`common.locks`, PATH.lock beside it), held while a run is
    started or trained: a second trainer on the same folder is refused (RunError naming the
    holder), and "already holds a run" is checked under it. A lock of a killed run is taken over."""
    if Path(path).exists() and not Path(path).is_dir():
        raise RunError(f"{path}: a file, not a run folder (choose another --out)")
    try:
        return hold(path, "training run")
    except InputError as exc:
        raise RunError(str(exc)) from None


class Run:
    def __init__(self, path: str | os.PathLike, config: RunConfig):
        self.path = Path(path)
        self.config = config
        self._manager: ocp.CheckpointManager | None = None

    @classmethod
    def create(cls, path: str | os.PathLike, config: RunConfig) -> Run:
        return cls(path, config).write_config()

    def write_config(self) -> Run:
        """Start the run folder: config.json, refused where one already is. Call it once every
        input is checked, so a start that fails leaves no folder behind to refuse a rerun."""
        if (self.path / CONFIG).exists():
            raise RunError(f"{self.path} already holds a run: pass --resume to continue it, or choose another --out")
        write_atomic(self.path / CONFIG, self.config.to_json() + "\n")
        return self

    @classmethod
    def open(cls, path: str | os.PathLike) -> Run:
        path = Path(path)
        config_path = path / CONFIG
        if not config_path.is_file():
            raise RunError(f"{path}: not a supernet run (no {CONFIG}; train one with python -m nas.train)")
        return cls(path, RunConfig.from_json(read_text(config_path, RunError), str(config_path)))

    # --- checkpoints ----------------------------------------------------------------------

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
            self._manager = ocp.CheckpointManager(
                (self.path / CHECKPOINTS).absolute(), item_names=("params", "opt_state"), options=options
            )
        return self._manager

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def steps(self) -> list[int]:
        """The kept checkpoint steps, newest first."""
        return sorted(self.manager.all_steps(), reverse=True)

    def save(self, step: int, params: Any, opt_state: Any) -> None:
        """Asynchronous: training goes on while the files are written. A save interrupted by a
        kill leaves only a temporary folder, which Orbax ignores on restore."""
        self.manager.save(
            step,
            args=ocp.args.Composite(params=ocp.args.StandardSave(params), opt_state=ocp.args.StandardSave(opt_state)),
        )

    def restore(self, step: int, params: Any, opt_state: Any | None = None) -> tuple[Any, Any]:
        """Restore into the structure, shapes and shardings of the given (template) trees;
        without `opt_state` only the parameters are read."""
        items = {"params": ocp.args.StandardRestore(_abstract(params))}
        if opt_state is not None:
            items["opt_state"] = ocp.args.StandardRestore(_abstract(opt_state))
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as exc:  # Orbax and tensorstore raise many kinds on damaged files
            raise DamagedCheckpoint(f"{self.path / CHECKPOINTS / str(step)}: damaged ({_reason(exc)})") from exc
        return restored["params"], restored.get("opt_state") if opt_state is not None else None

    def restore_latest(self, params: Any, opt_state: Any | None = None) -> tuple[int | None, Any, Any]:
        """(step, params, opt_state) of the newest checkpoint that reads back, as `restore`;
        (None, params, opt_state) unchanged where there is none. A damaged one is passed over
        with one line on stderr; none intact is a RunError."""
        steps = self.steps()
        for newer, step in enumerate(steps):
            try:
                restored = self.restore(step, params, opt_state)
            except DamagedCheckpoint as exc:
                older = steps[newer + 1] if newer + 1 < len(steps) else None
                if older is not None:
                    print(
                        f"checkpoint step {step} is damaged ({_reason(exc.__cause__)}); using step {older}",
                        file=sys.stderr,
                    )
                continue
            return step, *restored
        if steps:
            raise RunError(
                f"{self.path / CHECKPOINTS}: no intact checkpoint (steps {', '.join(map(str, steps))} are damaged)"
            )
        return None, params, opt_state

    def delete_after(self, step: int) -> None:
        """Remove the checkpoints newer than `step` (damaged ones a resumed run saves again)."""
        for newer in self.steps():
            if newer > step:
                self.manager.delete(newer)

    def wait(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    # --- metrics --------------------------------------------------------------------------

    def log(self, record: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        """The records of metrics.jsonl. A last line that does not parse (torn by a kill while
        it was written) is ignored with a warning on stderr; a bad line before it is a RunError."""
        path = self.path / METRICS
        if not path.exists():
            return []
        lines = read_json_lines(path, RunError, torn_last_line=True)
        if lines.torn is not None:
            number, reason = lines.torn
            print(f"{path}: line {number} is torn ({reason}): ignored", file=sys.stderr)
        for number, record in lines.records:
            if not isinstance(record, dict):
                raise RunError(f"{path}: line {number} is not a metrics record (a JSON {type(record).__name__})")
        return [record for _, record in lines.records]

    def truncate_metrics(self, step: int) -> None:
        """Drop the records of steps after `step` (a resumed run repeats them, and the log then
        reads as one uninterrupted run) and a torn last line: the file is rewritten atomically,
        and only if that changes it."""
        path = self.path / METRICS
        if path.exists():
            kept = "".join(json.dumps(r) + "\n" for r in self.metrics() if r.get("step", 0) <= step)
            if kept != path.read_text():
                write_atomic(path, kept)


class DamagedCheckpoint(RunError):
    """A checkpoint whose files do not read back."""


def _reason(exc: BaseException | None) -> str:
    """An exception as a short line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)


@dataclass(frozen=True)
class TrainedSupernet:
    """A supernet loaded from a run folder: its layout, NNX graph, parameters (replicated on
    `mesh`), the batch-statistics template and the checkpoint step."""

    layout: Any
    graphdef: Any
    params: Any
    stats: Any
    step: int


def load_supernet(run: Run, mesh, step: int | None = None) -> TrainedSupernet:
    """The supernet at checkpoint `step`, by default the newest intact one (see
    Run.restore_latest)."""
    if step is None and not run.steps():
        raise RunError(f"{run.path}: no checkpoint yet (training has not saved one)")
    layout = Layout(run.config.supernet)
    graphdef, params, stats = split(Supernet(run.config.supernet, seed=0))
    params = jax.device_put(params, NamedSharding(mesh, P()))
    if step is None:
        step, params, _ = run.restore_latest(params)
    else:
        if step not in run.steps():
            kept = ", ".join(map(str, sorted(run.steps()))) or "none"
            raise RunError(f"{run.path}: no checkpoint at step {step} (kept: {kept})")
        params, _ = run.restore(step, params)
    return TrainedSupernet(layout, graphdef, params, stats, step)
