"""`python -m nas.search --target=DEVICE`: the most accurate architecture within a latency budget.

  python -m nas.search --target=pixel4                          # budget: MobileNetV2-1.0 on pixel4
  python -m nas.search --target=pixel4,note10 --latency-ms 20   # one architecture per device
  python -m nas.search --target=pixel4 --supernet runs/default  # re-score the finalists for real

Per device: the device's latency predictor prices every candidate (exactly, in batches, from
latency_models.batch); the accuracy estimator (an MLP fitted on supernet-evaluated subnets,
nas.fit_accuracy; one for Fashion-MNIST ships with the package) scores it. Two searches run side
by side from the same seed: aging evolution for the most accurate network within the budget, and
NSGA-II for the front of accuracy against latency under the same budget. The budget is a filter
around both, not code inside them. After every generation the state is saved, so a killed search
continues with --resume and ends where an uninterrupted one would.

The supernet (and so the estimator) sees one proxy resolution; the input resolution the network
is deployed at is therefore not searched but fixed (--resolution), and the network is priced at
that resolution with 3 input channels and 1000 classes, the shape of the published models and
of the latency tables.

Writes OUT/DEVICE/arch.json (the ArchSpec with its predicted latency, estimated accuracy, MACs,
params, device profile, predictor and estimator provenance, seed), pareto.json, pareto.png and
report.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.cli import ArgumentParser, UserError, run
from common.files import write_atomic

PROG = "python -m nas.search"
SEARCH_RESULT_KIND = "platform-nas/search-result"  # arch.json: a spec with what the search knows of it
ESTIMATORS = Path(__file__).resolve().parent / "estimators"
DEFAULT_ESTIMATOR = ESTIMATORS / "mbv3-fashion-mnist.json"
STATE = "search-state.json"
BASELINE = "mobilenet_v2_1.0"
SPACES = ("mbv3",)
RESCORE = 16  # finalists re-scored with the supernet: the best by estimate (about 3 s each on one core)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Latency-constrained evolutionary architecture search.")
    p.add_argument("--target", default="pixel4", help="device profile(s), comma separated (default: pixel4)")
    p.add_argument("--latency-ms", type=float, help="latency budget (default: the device's MobileNetV2-1.0)")
    p.add_argument("--space", default="mbv3", help="search space (default: mbv3)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "int8"), help="deployed precision (fp32)")
    p.add_argument("--resolution", type=int, default=224, help="input resolution deployed at (default: 224)")
    p.add_argument("--population", type=int, default=100, help="population of each search (default: 100)")
    p.add_argument("--generations", type=int, default=30, help="generations (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same search (default: 0)")
    p.add_argument("--estimator", help="accuracy predictor JSON (default: the bundled Fashion-MNIST one)")
    p.add_argument("--supernet", help="run folder of a trained supernet: re-score the finalists with it")
    p.add_argument("--out", default="search-out", help="output folder; one subfolder per device (search-out)")
    p.add_argument("--resume", action="store_true", help="continue the searches saved in --out")
    return p


class DeviceSearch:
    """Everything one device's search needs, and its two strategies."""

    def __init__(self, args, target: str, space, estimator, estimator_path: Path):
        from latency_models.batch import SpaceCost, SpaceLatency
        from latency_models.devices import UnknownTarget, load_predictor
        from latency_models.predictor import PredictorError
        from nas.evolution import NSGA2, AgingEvolution, Budget
        from search_spaces import zoo

        try:
            self.predictor = load_predictor(target, args.precision)
        except (UnknownTarget, PredictorError) as exc:
            raise UserError(str(exc)) from None
        self.target, self.args, self.space = target, args, space
        # identities of the two models, hashed once: the state saved every generation names them
        self.estimator_sha256 = hashlib.sha256(estimator_path.read_bytes()).hexdigest()
        self.predictor_sha256 = hashlib.sha256(json.dumps(self.predictor.to_dict()).encode()).hexdigest()
        self.latency = SpaceLatency(self.predictor, space, args.precision)
        self.macs, self.params = SpaceCost(space, "macs"), SpaceCost(space, "params")
        self.accuracy = estimator.scorer(space)
        self.estimator, self.estimator_path = estimator, estimator_path
        if args.latency_ms is not None:
            self.budget, self.budget_source = args.latency_ms, "given with --latency-ms"
        else:
            baseline = zoo.get(BASELINE, resolution=args.resolution)
            self.budget = self.predictor.spec_ms(baseline, args.precision)
            self.budget_source = f"{BASELINE} at {args.resolution} px on {target}, predicted"
        dims = space.dimensions
        self.smallest = space.check([self._smallest_option(i, d) for i, d in enumerate(dims)])
        fastest = float(self.latency(np.array([self.smallest]))[0])
        if self.budget < fastest:
            raise UserError(
                f"budget {self.budget:.2f} ms on {target} is below the fastest architecture of {args.space} at "
                f"{args.resolution} px ({fastest:.2f} ms, every choice at its smallest)"
            )
        constraints = [Budget("latency", self.latency, self.budget)]
        common = dict(population=args.population, seed=args.seed, seeds=[self.smallest])
        self.evolution = AgingEvolution(space, self.accuracy, constraints, **common)
        self.pareto = NSGA2(space, [self.accuracy, lambda c: -self.latency(c)], constraints, **common)

    def _smallest_option(self, i, dim) -> int:
        if i in self.space.pinned:
            return self.space.pinned[i]
        return min(range(len(dim.options)), key=lambda k: dim.options[k])

    def settings(self) -> dict[str, Any]:
        """What must match for a saved search to be continued."""
        a = self.args
        return {
            "target": self.target,
            "precision": a.precision,
            "space": a.space,
            "resolution": a.resolution,
            "budget_ms": round(self.budget, 6),
            "population": a.population,
            "seed": a.seed,
            "estimator_sha256": self.estimator_sha256,
            "predictor_sha256": self.predictor_sha256,
        }

    def state(self, seconds: float) -> dict[str, Any]:
        return {
            "settings": self.settings(),
            "seconds": seconds,
            "evolution": self.evolution.state(),
            "pareto": self.pareto.state(),
        }

    def load_state(self, state: dict[str, Any], where: Path) -> float:
        theirs, ours = state.get("settings", {}), self.settings()
        for key, value in ours.items():
            if theirs.get(key) != value:
                raise UserError(
                    f"{where}: saved with {key} {theirs.get(key)!r}, this run has {value!r}; "
                    "--resume continues a search with its own settings"
                )
        self.evolution.load_state(state["evolution"])
        self.pareto.load_state(state["pareto"])
        return float(state.get("seconds", 0.0))

    # --- results -----------------------------------------------------------------------

    def describe(self, choices: list[tuple]) -> list[dict[str, Any]]:
        batch = np.array(choices)
        latency, top1 = self.latency(batch), self.accuracy(batch)
        macs, params = self.macs(batch), self.params(batch)
        return [
            {
                "choices": self.space.values(c),
                "predicted_latency_ms": float(latency[i]),
                "estimated_top1": float(top1[i]),
                "macs": int(round(macs[i])),
                "params": int(round(params[i])),
                "_choices": c,
            }
            for i, c in enumerate(choices)
        ]

    def candidates(self) -> list[tuple]:
        """Every distinct feasible candidate the two searches hold: evolution's whole history
        and NSGA-II's final population."""
        return list(dict.fromkeys([c for c, _ in self.evolution.history] + self.pareto.members))

    def front(self, described: list[dict]) -> list[dict]:
        from nas.evolution import pareto_front

        points = np.array([[d["estimated_top1"], -d["predicted_latency_ms"]] for d in described])
        front = [described[i] for i in pareto_front(points)]
        return sorted(front, key=lambda d: d["predicted_latency_ms"])

    def baselines(self) -> list[dict[str, Any]]:
        from search_spaces import zoo
        from search_spaces.graph import count_macs, count_params

        out = []
        for name in zoo.names():
            spec = zoo.get(name)
            out.append(
                {
                    "name": name,
                    "resolution": spec.resolution,
                    "predicted_latency_ms": self.predictor.spec_ms(spec, self.args.precision),
                    "macs": count_macs(spec),
                    "params": count_params(spec),
                }
            )
        return out


def rescore(described: list[dict], supernet: str, estimator) -> None:
    """Adds `supernet_top1` to each candidate: its top-1 on the trained supernet, measured as
    the estimator's training data was (same validation and recalibration images)."""
    from nas.evaluate import open_evaluator
    from nas.run import Run

    samples = estimator.info.get("samples", {})
    run_folder = Run.open(supernet)
    trained, evaluator, _ = open_evaluator(run_folder, samples.get("calib_images", 1000))
    for d in described:
        sub = trained.layout.subnet(d["_choices"])
        d["supernet_top1"] = evaluator.top1(trained.params, sub, samples.get("val_images", 2000))
    run_folder.close()


def finish(search: DeviceSearch, out: Path, seconds: float) -> dict[str, Any]:
    from nas.report import markdown, plot_front

    args = search.args
    described = search.describe(search.candidates())
    front = search.front(described)
    best = max(described, key=lambda d: d["estimated_top1"])
    if args.supernet:
        finalists = sorted(described, key=lambda d: -d["estimated_top1"])[:RESCORE]
        rescore(finalists, args.supernet, search.estimator)
        best = max(finalists, key=lambda d: (d["supernet_top1"], d["estimated_top1"]))
    spec = search.space.materialize(best["_choices"], resolution=args.resolution)
    spec = dataclasses.replace(spec, name=f"{args.space}-{search.target}-{search.budget:.1f}ms")
    info = search.predictor.metadata
    estimator = search.estimator.info
    result = {
        "kind": SEARCH_RESULT_KIND,
        "schema_version": 1,
        "spec": spec.to_dict(),
        "spec_hash": spec.content_hash(),
        "space": args.space,
        "choices": best["choices"],
        "resolution": args.resolution,
        "predicted_latency_ms": best["predicted_latency_ms"],
        "estimated_top1": best["estimated_top1"],
        **({"supernet_top1": best["supernet_top1"]} if "supernet_top1" in best else {}),
        "macs": best["macs"],
        "params": best["params"],
        "budget_ms": search.budget,
        "budget_source": search.budget_source,
        "seed": args.seed,
        "target": {
            "name": search.target,
            "precision": args.precision,
            "description": info.get("description", search.target),
            "source": info.get("source", ""),
            "predictor_fitted": info.get("fitted", ""),
            "predictor_sha256": search.predictor_sha256,
        },
        "estimator": {
            "file": str(search.estimator_path),
            "sha256": search.estimator_sha256,
            "data": estimator.get("supernet", {}).get("data", {}).get("name", "?"),
            "summary": _estimator_summary(estimator),
        },
        "search": {
            "population": args.population,
            "generations": search.evolution.generation,
            "evaluated": len(described),
            "seconds": seconds,
        },
    }
    public = [{k: v for k, v in d.items() if k != "_choices"} for d in front]
    baselines = search.baselines()
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "arch.json", json.dumps(result, indent=2) + "\n")
    pareto = {"kind": "platform-nas/pareto-front", "schema_version": 1, "target": result["target"], "front": public}
    write_atomic(out / "pareto.json", json.dumps(pareto, indent=2) + "\n")
    plot_front(out / "pareto.png", result, public, baselines)
    write_atomic(out / "report.md", markdown(result, public, baselines))
    return result


def _estimator_summary(info: dict[str, Any]) -> str:
    held = info.get("held_out", {})
    samples = info.get("samples", {})
    supernet = info.get("supernet", {})
    data = supernet.get("data", {}).get("name", "?")
    rmse, tau = held.get("rmse_points", float("nan")), held.get("kendall_tau", float("nan"))
    return (
        f"MLP fitted on {info.get('fit', {}).get('subnets', '?')} subnets of a supernet trained on {data} "
        f"(top-1 on the first {samples.get('val_images', '?')} test images); held-out RMSE {rmse:.2f} points, "
        f"Kendall tau {tau:.3f} "
        f"({info.get('made_by', '')}, {info.get('date', '')})."
    )


def prepare(target, args, space, estimator, estimator_path, out: Path) -> tuple[DeviceSearch, float]:
    """A device's search, restored from `out` with --resume; everything that can be wrong with
    the input is found here, before any progress is drawn."""
    search = DeviceSearch(args, target, space, estimator, estimator_path)
    state_path = out / STATE
    if args.resume and state_path.exists():
        try:
            return search, search.load_state(json.loads(state_path.read_text()), state_path)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{state_path}: cannot resume from it ({exc})") from None
    if not args.resume and (state_path.exists() or (out / "arch.json").exists()):
        raise UserError(f"{out} already holds a search: pass --resume to continue it, or choose another --out")
    return search, 0.0


def search_device(search: DeviceSearch, spent: float, out: Path, progress) -> dict[str, Any]:
    """Runs the remaining generations, saving the state after each, then writes the results."""
    began = time.perf_counter()
    generations = search.args.generations
    task = progress.add_task(search.target, total=generations, completed=search.evolution.generation, best="")
    out.mkdir(parents=True, exist_ok=True)
    while search.evolution.generation < generations:
        search.evolution.step()
        search.pareto.step()
        write_atomic(out / STATE, json.dumps(search.state(spent + time.perf_counter() - began)))
        best = search.evolution.result()
        label = f"best {best.best_score:.2%} of {best.evaluated}" if best.best is not None else "none feasible"
        progress.update(task, advance=1, best=label)
    if not search.evolution.members:
        raise UserError(
            f"no architecture of {search.args.space} found within {search.budget:.2f} ms on {search.target}"
        )
    return finish(search, out, round(spent + time.perf_counter() - began, 2))


def load_estimator(args):
    from nas.accuracy_predictor import AccuracyPredictor, EstimatorError

    path = Path(args.estimator) if args.estimator else DEFAULT_ESTIMATOR
    if not args.estimator and not path.exists():
        raise UserError(f"the bundled accuracy estimator is missing ({path}); reinstall, or pass --estimator")
    try:
        return AccuracyPredictor.load(path), path
    except EstimatorError as exc:
        raise UserError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    checks = [
        (bool(targets), "--target: name at least one device"),
        (len(set(targets)) == len(targets), "--target: a device is named twice"),
        (args.latency_ms is None or args.latency_ms > 0, f"--latency-ms: must be > 0, got {args.latency_ms}"),
        (args.space in SPACES, f"--space: no accuracy estimator for {args.space!r} (have: {', '.join(SPACES)})"),
        (args.population >= 4, f"--population: must be >= 4, got {args.population}"),
        (args.generations >= 1, f"--generations: must be >= 1, got {args.generations}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)

    from latency_models.devices import known_targets
    from search_spaces.mbv3 import RESOLUTIONS, MobileNetV3Space
    from search_spaces.space import PinnedSpace

    if args.resolution not in RESOLUTIONS:
        raise UserError(f"--resolution: {args.resolution} is not one of {list(RESOLUTIONS)}")
    unknown = [t for t in targets if t not in known_targets()]
    if unknown:
        raise UserError(f"unknown target {unknown[0]!r} (known: {', '.join(known_targets())})")
    estimator, estimator_path = load_estimator(args)
    space = PinnedSpace(MobileNetV3Space(), {"resolution": args.resolution})
    try:
        estimator.encoder(space)
    except ValueError as exc:
        raise UserError(str(exc)) from None

    if args.supernet:
        from nas.run import Run

        run_folder = Run.open(args.supernet)
        theirs = [(d.name, d.options) for d in run_folder.config.supernet.build_space().dimensions]
        run_folder.close()
        if theirs != [(d.name, d.options) for d in space.dimensions]:
            raise UserError(f"{args.supernet}: its supernet is not over the whole {args.space} space")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    outs = {target: Path(args.out) / target for target in targets}
    searches = {target: prepare(target, args, space, estimator, estimator_path, outs[target]) for target in targets}
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        results = {target: search_device(*searches[target], outs[target], progress) for target in targets}

    title = f"{args.space} at {args.resolution} px, {args.precision}, seed {args.seed}"
    if args.supernet:
        title += " (top-1: estimated / on the supernet)"
    table = Table(title=title)
    for column in ("device", "budget (ms)", "latency (ms)", "est. top-1", "MMACs", "params (M)"):
        table.add_column(column, justify="left" if column == "device" else "right")
    for target, r in results.items():
        top1 = f"{100 * r['estimated_top1']:.2f}%"
        if "supernet_top1" in r:
            top1 += f" / {100 * r['supernet_top1']:.2f}%"
        table.add_row(
            target,
            f"{r['budget_ms']:.2f}",
            f"{r['predicted_latency_ms']:.2f}",
            top1,
            f"{r['macs'] / 1e6:.1f}",
            f"{r['params'] / 1e6:.2f}",
        )
    Console().print(table)
    for target, r in results.items():
        budget = f"budget {r['budget_ms']:.2f} ms = {r['budget_source']}; " if args.latency_ms is None else ""
        print(f"{target}: {budget}wrote {outs[target]}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, PROG)
