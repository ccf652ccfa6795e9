"""Benchmark: the size costs predicted from an ArchSpec (latency_models.footprint) against the
emitted .tflite and TensorFlow Lite Micro itself (issue #27), and the batch path's throughput.

Each network is emitted (random weights; int8 calibrated on random images), its file measured
and TFLM asked for its arena (head, tail, the smallest arena it accepts); `footprint` predicts
the flash and the arena's head from the spec alone. Networks: random subnets of every space at
several resolutions (and both widths of mbv3), the Fashion-MNIST proxy form (28 px, one channel,
10 classes), and every zoo network at its own resolution, at 96 px and at 16 px. A space sample is
deployed one way (fp32, int8, int8 with integer input and output, in turn), a zoo network all
three ways. The batch path (SpaceFlash, SpaceArena, priced over the whole space) is checked on
the space samples: its arena is a lower bound of TFLM's head, equal where the greedy planner
leaves no gap. Throughput: SpaceFlash and SpaceArena together over --batch sampled mbv3 choices
(int8, integer io), best of --repeats, against the issue's 100,000 networks/s, and the exact
path (`footprint`, one network at a time). For the timings pin it to a quiet core (the default
run takes about 15 minutes on the 2-core development machine; docs/results.md has its figures):

    taskset -c 1 python benchmarks/memory_fidelity.py [--samples 50] [--out memory_fidelity.json]
    python benchmarks/memory_fidelity.py --quick   # 6 subnets a space, every 6th zoo network: 3 minutes
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from common.files import write_atomic
from latency_models.footprint.batch import SpaceArena, SpaceFlash
from latency_models.footprint.costs import DEPLOYMENTS, deployment_name, footprint, lowered
from latency_models.footprint.planner import live_peak, planned_buffers
from latency_models.footprint.tflm import ArenaUse, TFLMError, arena_use
from latency_models.tflite.emit import emit_spec
from search_spaces import FBNetSpace, MobileNetV3Space, ProxylessSpace, get_space, zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.space import Choices, ChoiceSpace, Dimension, ProxyFormSpace

TARGET_PER_S = 100_000
TOLERANCE = 0.01  # the "within 1%"
# the zoo's second and third resolutions: a small one, and one so small that the MEAN's scratch
# buffers are what sets the head of some int8 networks (at 24 px and above they never do)
ZOO_RESOLUTIONS = (96, 16)


class AtResolutions(ChoiceSpace):
    """`base` built at one of `resolutions`: a shared decision put in front of its own (FBNet's
    space has no resolution decision; a batch metric needs one to price several)."""

    def __init__(self, base: ChoiceSpace, resolutions: tuple[int, ...]):
        self.base, self.name = base, base.name
        shifted = tuple(
            Dimension(d.name, d.options, None if d.gate is None else (d.gate[0] + 1, d.gate[1]), d.shared)
            for d in base.dimensions
        )
        self.dimensions = (Dimension("resolution", resolutions, shared=True), *shifted)

    def materialize(self, choices: Choices, resolution: int | None = None, proxy: bool = False) -> ArchSpec:
        choices = self.check(choices)
        return self.base.materialize(choices[1:], resolution or self.dimensions[0].options[choices[0]], proxy)


@dataclass
class Group:
    """Networks sampled from one space: sample k is deployed DEPLOYMENTS[k % 3] and takes the
    (k // 3)-th combination of the shared decisions (resolution, width), in turn."""

    name: str
    space: ChoiceSpace

    def choices(self, count: int, seed: int) -> list[tuple[Choices, tuple[str, bool]]]:
        rng = np.random.default_rng(seed)
        dims = self.space.dimensions
        shared = [i for i, d in enumerate(dims) if d.shared]
        combos = list(itertools.product(*(range(len(dims[i].options)) for i in shared)))
        found = []
        for k in range(count):
            sampled = list(self.space.sample(rng))
            for i, v in zip(shared, combos[(k // len(DEPLOYMENTS)) % len(combos)]):
                sampled[i] = v
            found.append((self.space.check(sampled), DEPLOYMENTS[k % len(DEPLOYMENTS)]))
        return found


def space_groups() -> list[Group]:
    return [
        Group("mbv3", MobileNetV3Space()),  # 128..224 px, width 1.0 and 1.2
        Group("proxyless", ProxylessSpace(resolutions=(128, 160, 192, 224))),
        Group("fbnet", AtResolutions(FBNetSpace(), (128, 176, 224))),
        Group("fbnet_cifar", AtResolutions(get_space("fbnet_cifar"), (32, 64))),
        # nas.search's Fashion-MNIST space (nas/search/preparation.py): the resolution decision
        # decides nothing there, so one is kept
        Group(
            "mbv3 proxy 28px",
            ProxyFormSpace(MobileNetV3Space(num_classes=10, in_channels=1, resolutions=(128,)), {}, 28),
        ),
    ]


class TFLM:
    """TFLM's arena use, measured in a process of its own: a model that crashes TFLM is one
    failure of the run, not its end."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, model: bytes) -> ArenaUse:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self._pool.submit(arena_use, model).result()
        except BrokenProcessPool:
            self._pool.shutdown()
            self._pool = None
            raise TFLMError("TFLM crashed the process measuring the model") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def measure(tflm: TFLM, spec: ArchSpec, precision: str, integer_io: bool) -> dict:
    """One network in one deployment: predicted and measured, or the error that stopped it."""
    row = {
        "network": spec.name,
        "resolution": spec.resolution,
        "deployment": deployment_name(precision, integer_io),
        "error": None,
    }
    try:
        graph = lowered(spec)
        predicted = footprint(spec, precision, integer_io, graph)
        row.update(
            flash_bytes=predicted.flash_bytes,
            arena_bytes=predicted.arena_bytes,
            live_peak=live_peak(planned_buffers(graph, precision, integer_io)),
            mcunet_peak_bytes=predicted.mcunet_peak_bytes,
        )
        model = emit_spec(spec, precision=precision, integer_io=integer_io)
        row["file_bytes"] = len(model)
        use = tflm(model)
        row.update(tflm_head=use.head, tflm_tail=use.tail, tflm_smallest=use.smallest)
    except Exception as exc:  # a network TFLM (or the emitter) cannot take is reported, not fatal
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    return row


def error(predicted: float, measured: float) -> float:
    return (predicted - measured) / measured


def summary(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["error"] is None]
    n = len(rows)
    arena = [error(r["arena_bytes"], r["tflm_head"]) for r in ok]
    flash = [error(r["flash_bytes"], r["file_bytes"]) for r in ok]
    mcunet = [r["mcunet_peak_bytes"] / r["tflm_head"] for r in ok]

    def worst(errors: list[float]) -> dict | None:
        if not errors:
            return None
        k = int(np.argmax(np.abs(errors)))
        return {
            "error": errors[k],
            "network": ok[k]["network"],
            "resolution": ok[k]["resolution"],
            "deployment": ok[k]["deployment"],
        }

    return {
        "networks": len({(r["network"], r["resolution"]) for r in rows}),
        "cases": n,
        "failed": n - len(ok),
        "arena_exact": sum(e == 0 for e in arena) / n if n else 0.0,
        "arena_within": sum(abs(e) <= TOLERANCE for e in arena) / n if n else 0.0,
        "flash_exact": sum(e == 0 for e in flash) / n if n else 0.0,
        "flash_within": sum(abs(e) <= TOLERANCE for e in flash) / n if n else 0.0,
        "arena_worst": worst(arena),
        "flash_worst": worst(flash),
        "mcunet_over_head": [float(np.min(mcunet)), float(np.median(mcunet)), float(np.max(mcunet))] if ok else None,
    }


def batch_summary(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["error"] is None and "batch_arena" in r]
    gap = [error(r["batch_arena"], r["tflm_head"]) for r in ok]
    flash = [error(r["batch_flash"], r["file_bytes"]) for r in ok]
    return {
        "cases": len(ok),
        "arena_equal_head": sum(g == 0 for g in gap) / len(ok) if ok else 0.0,
        "arena_equal_live_peak": sum(r["batch_arena"] == r["live_peak"] for r in ok) / len(ok) if ok else 0.0,
        "arena_above_head": sum(g > 0 for g in gap),
        "arena_worst_gap": min(gap, default=0.0),
        "flash_worst": max(flash, key=abs, default=0.0),
        "flash_mean_abs": float(np.mean(np.abs(flash))) if flash else 0.0,
    }


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def signed(x: float) -> str:
    return f"{100 * x:+.3f}%"


def percent3(x: float) -> str:
    return f"{100 * x:.3f}%"


def print_fidelity(title: str, rows_by: dict[str, list[dict]]) -> None:
    print(
        f"\n{title:<18} {'nets':>5} {'cases':>5} {'fail':>4} {'arena =':>8} {'<=1%':>6} {'flash =':>8} {'<=1%':>6}"
        f" {'worst arena':>12} {'worst flash':>12}  MCUNet/head min med max"
    )
    for name, rows in rows_by.items():
        s = summary(rows)
        worst_arena = signed(s["arena_worst"]["error"]) if s["arena_worst"] else "-"
        worst_flash = signed(s["flash_worst"]["error"]) if s["flash_worst"] else "-"
        ratio = " ".join(f"{x:.2f}" for x in s["mcunet_over_head"]) if s["mcunet_over_head"] else "-"
        print(
            f"{name:<18} {s['networks']:>5} {s['cases']:>5} {s['failed']:>4} {percent(s['arena_exact']):>8}"
            f" {percent(s['arena_within']):>6} {percent(s['flash_exact']):>8} {percent(s['flash_within']):>6}"
            f" {worst_arena:>12} {worst_flash:>12}  {ratio}"
        )


def throughput(batch: int, repeats: int, exact_count: int) -> dict:
    """Networks/s of the batch path (SpaceFlash and SpaceArena on one batch of mbv3 choices) and
    of the exact path (materialize and `footprint`, one network at a time), int8 integer io."""
    space = get_space("mbv3")
    start = time.perf_counter()
    flash, arena = SpaceFlash(space, "int8", True), SpaceArena(space, "int8", True)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(1)
    choices = np.array([space.sample(rng) for _ in range(batch)])
    flash(choices[:10]), arena(choices[:10])  # compile
    flash(choices), arena(choices)  # and the batch's own shape
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        flash(choices), arena(choices)
        times.append(time.perf_counter() - start)
    exact_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for c in choices[:exact_count]:
            footprint(space.materialize(tuple(int(x) for x in c)), "int8", True)
        exact_times.append(time.perf_counter() - start)
    return {
        "space": "mbv3",
        "deployment": deployment_name("int8", True),
        "tables_built_s": build_s,
        "batch": batch,
        "batch_per_s": batch / min(times),
        "exact_networks": exact_count,
        "exact_per_s": exact_count / min(exact_times),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=50, help="random subnets of each space group")
    parser.add_argument("--zoo", choices=["all", "none"], default="all", help="the zoo networks, or none")
    parser.add_argument("--batch", type=int, default=100_000, help="mbv3 choices the batch path is timed on")
    parser.add_argument("--exact", type=int, default=100, help="networks the exact path is timed on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="6 samples a group, every 6th zoo network, small timings")
    parser.add_argument("--out", help="write every network's figures and the summaries as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.batch, args.exact, args.repeats = 6, 10_000, 20, 2
    cores = len(os.sched_getaffinity(0))
    started = time.perf_counter()

    tflm = TFLM()
    rows_by_group: dict[str, list[dict]] = {}
    for group in space_groups():
        rows = []
        sampled = group.choices(args.samples, args.seed)
        for deployment in DEPLOYMENTS:
            picked = [(k, c) for k, (c, d) in enumerate(sampled) if d == deployment]
            if not picked:
                continue
            metrics = SpaceFlash(group.space, *deployment), SpaceArena(group.space, *deployment)
            batch = np.array([c for _, c in picked])
            flash, arena = (np.asarray(m(batch)) for m in metrics)
            for j, (k, c) in enumerate(picked):
                spec = group.space.materialize(c)
                row = measure(tflm, spec.with_name(f"{group.name} #{k}"), *deployment)
                row.update(
                    choices=group.space.values(c),
                    batch_flash=float(flash[j]),
                    batch_arena=float(arena[j]),
                )
                rows.append(row)
        rows_by_group[group.name] = sorted(rows, key=lambda r: int(r["network"].split("#")[1]))
        print(
            f"{group.name}: {len(rows)} networks ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True
        )
    if args.zoo == "all":
        names = zoo.names()[:: 6 if args.quick else 1]
        for title, resolution in (("zoo", None), *((f"zoo {r}px", r) for r in ZOO_RESOLUTIONS)):
            rows = []
            for name in names:
                spec = zoo.get(name, resolution=resolution)
                rows += [measure(tflm, spec, *deployment) for deployment in DEPLOYMENTS]
            rows_by_group[title] = rows
            print(f"{title}: {len(rows)} cases ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    tflm.close()
    measured_s = time.perf_counter() - started
    every = [r for rows in rows_by_group.values() for r in rows]
    by_deployment = {
        deployment_name(*d): [r for r in every if r["deployment"] == deployment_name(*d)] for d in DEPLOYMENTS
    }

    print(
        "Predicted flash and arena head (latency_models.footprint) against the emitted .tflite and TFLM's "
        f"head; '=' exact, '<=1%' within 1%; errors (predicted - measured) / measured; {measured_s:.0f} s"
    )
    print_fidelity("group", rows_by_group)
    print_fidelity("deployment", by_deployment)
    print_fidelity("all", {"all": every})
    overall = summary(every)
    for what in ("arena", "flash"):
        w = overall[f"{what}_worst"]
        if w and w["error"] != 0:
            print(f"worst {what}: {w['network']} {w['resolution']}px ({w['deployment']}) {signed(w['error'])}")
        elif w:
            print(f"worst {what}: none off, every one exact")
    ok = [r for r in every if r["error"] is None]
    if ok:
        over = [r["tflm_smallest"] - r["tflm_head"] - r["tflm_tail"] for r in ok]
        beyond = [(o, r) for o, r in zip(over, ok) if o > 64]
        line = f"TFLM's smallest arena: head + tail (within 64 bytes) for {len(ok) - len(beyond)} of {len(ok)}"
        if beyond:
            most, where = max(beyond, key=lambda x: x[0])
            kinds = sorted({r["deployment"] for _, r in beyond})
            line += (
                f"; more for {len(beyond)} ({', '.join(kinds)}), at most {most:,} bytes more "
                f"({where['network']} {where['resolution']}px, head {where['tflm_head']:,})"
            )
        tails = [r["tflm_tail"] for r in ok]
        print(f"{line}; the tail (not predicted) {min(tails):,} to {max(tails):,} bytes")
    misses = [
        r
        for r in every
        if r["error"] is None
        and (
            abs(error(r["arena_bytes"], r["tflm_head"])) > TOLERANCE
            or abs(error(r["flash_bytes"], r["file_bytes"])) > TOLERANCE
        )
    ]
    for r in misses:
        print(
            f"MISS {r['network']} {r['resolution']}px ({r['deployment']}): arena {r['arena_bytes']} vs TFLM "
            f"{r['tflm_head']} (live peak {r['live_peak']}), flash {r['flash_bytes']} vs file {r['file_bytes']}"
        )
    for r in every:
        if r["error"] is not None:
            print(f"FAILED {r['network']} {r['resolution']}px ({r['deployment']}): {r['error']}")

    print(
        "\nBatch path (SpaceFlash, SpaceArena over the whole space) against the same networks: the arena "
        "bound equal to TFLM's head, to the live peak, its worst gap (never above the head); the flash's error"
    )
    print(
        f"{'group':<18} {'cases':>5} {'= head':>7} {'= live':>7} {'above':>5} {'worst gap':>10}"
        f" {'flash worst':>12} {'mean |err|':>10}"
    )
    batch_summaries = {}
    for name, rows in rows_by_group.items():
        if not any("batch_arena" in r for r in rows):
            continue
        b = batch_summaries[name] = batch_summary(rows)
        print(
            f"{name:<18} {b['cases']:>5} {percent(b['arena_equal_head']):>7} {percent(b['arena_equal_live_peak']):>7}"
            f" {b['arena_above_head']:>5} {signed(b['arena_worst_gap']):>10} {signed(b['flash_worst']):>12}"
            f" {percent3(b['flash_mean_abs']):>10}"
        )
    b = batch_summaries["all"] = batch_summary(every)
    print(
        f"{'all':<18} {b['cases']:>5} {percent(b['arena_equal_head']):>7} {percent(b['arena_equal_live_peak']):>7}"
        f" {b['arena_above_head']:>5} {signed(b['arena_worst_gap']):>10} {signed(b['flash_worst']):>12}"
        f" {percent3(b['flash_mean_abs']):>10}"
    )

    t = throughput(args.batch, args.repeats, args.exact)
    print(
        f"\nThroughput, {t['space']} ({t['deployment']}), on {cores} core(s): tables built in "
        f"{t['tables_built_s']:.1f} s; SpaceFlash + SpaceArena on {t['batch']:,} choices: "
        f"{t['batch_per_s']:,.0f} networks/s (best of {t['repeats']}); exact (`footprint`, one by one, "
        f"{t['exact_networks']} networks): {t['exact_per_s']:,.1f} networks/s"
    )
    print(
        f"batch/target = {t['batch_per_s'] / TARGET_PER_S:.1f}x; "
        f"batch/exact = {t['batch_per_s'] / t['exact_per_s']:,.0f}x"
    )
    if args.out:
        document = {
            "settings": {**vars(args), "cores": cores},
            "groups": {name: summary(rows) for name, rows in rows_by_group.items()},
            "deployments": {name: summary(rows) for name, rows in by_deployment.items()},
            "all": overall,
            "batch": batch_summaries,
            "throughput": t,
            "networks": every,
        }
        write_atomic(args.out, json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
