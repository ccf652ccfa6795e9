"""`python -m nas.train`: train the weight-sharing supernet.

  python -m nas.train --data fashion-mnist --out runs/NAME [--epochs N] [--resume]

Each step trains the largest subnet on the labels, and the smallest and random subnets on the
largest's predictions (sandwich rule with in-place distillation), with SGD + Nesterov momentum,
linear warm-up and cosine decay, label smoothing. Checkpoints go to runs/NAME/checkpoints every
--checkpoint-every steps and at the end of each epoch; `--resume` continues from the latest with
the same step, optimiser state, data order and random subnets, so a killed run loses at most the
steps since its last checkpoint and then ends exactly where an uninterrupted run would.

On a CPU-only machine every core becomes one XLA device (--cpu-devices) and the batch is split
across them (data parallel over all local devices, jax.sharding); on several hosts, see
nas/README.md.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from common.cli import ArgumentParser, UserError, run

PROG = "python -m nas.train"
DEFAULT_CHECKPOINT_EVERY = 250
DEFAULT_EVAL_IMAGES = 1000
DEFAULT_CALIB_IMAGES = 2000


def build_parser() -> ArgumentParser:
    from nas.data import AUGMENTATIONS
    from nas.run import TrainConfig

    d = TrainConfig()
    p = ArgumentParser(
        prog=PROG,
        description="Train the weight-sharing supernet (sandwich rule, in-place distillation).",
        epilog="Settings that shape the result are stored in OUT/config.json; --resume reuses them.",
    )
    p.add_argument(
        "--data", help=f"fashion-mnist or a path: idx files, .npz, CIFAR-10 batches, image folder ({d.data})"
    )
    p.add_argument("--out", required=True, help="run folder: config.json, checkpoints/, metrics.jsonl")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--epochs", type=int, help=f"passes over the training images (default: {d.epochs})")
    p.add_argument("--batch-size", type=int, help=f"global batch, split across devices (default: {d.batch_size})")
    p.add_argument("--lr", type=float, help=f"peak learning rate after warm-up (default: {d.learning_rate})")
    p.add_argument("--weight-decay", type=float, help=f"on conv and dense kernels (default: {d.weight_decay})")
    p.add_argument("--warmup-epochs", type=float, help=f"linear warm-up length (default: {d.warmup_epochs})")
    p.add_argument("--label-smoothing", type=float, help=f"for the largest subnet (default: {d.label_smoothing})")
    p.add_argument(
        "--random-subnets", type=int, help=f"random subnets per step, besides largest and smallest ({d.random_subnets})"
    )
    p.add_argument("--augment", choices=AUGMENTATIONS, help=f"training augmentation (default: {d.augmentation})")
    p.add_argument("--seed", type=int, help=f"initial weights, data order, subnets (default: {d.seed})")
    p.add_argument("--train-images", type=int, help="train on only this many images (quick runs)")
    p.add_argument("--stages", type=int, help="keep only the first N stages of the space (quick runs, tests)")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=DEFAULT_CHECKPOINT_EVERY,
        help=f"steps between checkpoints, besides each epoch's end (default: {DEFAULT_CHECKPOINT_EVERY})",
    )
    p.add_argument("--log-every", type=int, default=10, help="steps between progress updates (default: 10)")
    p.add_argument(
        "--eval-images",
        type=int,
        default=DEFAULT_EVAL_IMAGES,
        help=f"test images for the per-epoch check of largest and smallest, 0: none ({DEFAULT_EVAL_IMAGES})",
    )
    p.add_argument(
        "--calib-images",
        type=int,
        default=DEFAULT_CALIB_IMAGES,
        help=f"training images for batch-norm recalibration (default: {DEFAULT_CALIB_IMAGES})",
    )
    p.add_argument(
        "--cpu-devices",
        default="auto",
        help="XLA devices on a CPU-only machine: a number, or auto (one per usable core)",
    )
    multi = p.add_argument_group("multi-host (run the same command on every host, --out on a shared file system)")
    multi.add_argument("--coordinator", help="HOST:PORT of process 0, for jax.distributed.initialize")
    multi.add_argument("--num-processes", type=int, help="number of processes (hosts) in the job")
    multi.add_argument("--process-id", type=int, help="this process's index, 0 .. num-processes - 1")
    return p


def start_distributed(args) -> None:
    """jax.distributed across hosts: explicit flags, or none of them (single host). The global
    mesh then spans every host's devices and each host feeds its slice of every batch."""
    given = [args.coordinator is not None, args.num_processes is not None, args.process_id is not None]
    if not any(given):
        return
    if not all(given):
        raise UserError("multi-host needs --coordinator, --num-processes and --process-id together")
    import jax

    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)


FLAG_FIELDS = {
    "data": "data",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "weight_decay": "weight_decay",
    "warmup_epochs": "warmup_epochs",
    "label_smoothing": "label_smoothing",
    "random_subnets": "random_subnets",
    "augment": "augmentation",
    "seed": "seed",
    "train_images": "train_images",
}


def configure_cpu_devices(value: str) -> None:
    """One host device per core, set before JAX starts its backend. A CPU-only XLA runs each
    device's step on its own thread, so data parallel over devices uses every core."""
    if value == "auto":
        count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    else:
        try:
            count = int(value)
        except ValueError:
            raise UserError(f"--cpu-devices: expected a number or auto, got {value!r}") from None
        if count < 1:
            raise UserError(f"--cpu-devices: must be >= 1, got {count}")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def use_compilation_cache(out: Path) -> None:
    """Keep compiled steps in the run folder (unless JAX_COMPILATION_CACHE_DIR says where), so
    a resumed run starts in seconds instead of recompiling for a minute or two."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str((out / "xla-cache").absolute()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _train_config(args, stored=None):
    from nas.run import TrainConfig

    given = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if stored is None:
        return dataclasses.replace(TrainConfig(), **given)
    for field, value in given.items():
        if getattr(stored, field) != value:
            flag = next(f for f, name in FLAG_FIELDS.items() if name == field).replace("_", "-")
            raise UserError(
                f"--{flag} {value} differs from the run's {getattr(stored, field)}: --resume continues a run "
                "with its own settings"
            )
    return stored


def _check(config) -> None:
    t = config
    checks = [
        (t.epochs >= 1, f"--epochs: must be >= 1, got {t.epochs}"),
        (t.batch_size >= 1, f"--batch-size: must be >= 1, got {t.batch_size}"),
        (t.learning_rate > 0, f"--lr: must be > 0, got {t.learning_rate}"),
        (t.random_subnets >= 0, f"--random-subnets: must be >= 0, got {t.random_subnets}"),
        (0 <= t.label_smoothing < 1, f"--label-smoothing: must be in [0, 1), got {t.label_smoothing}"),
        (t.warmup_epochs >= 0, f"--warmup-epochs: must be >= 0, got {t.warmup_epochs}"),
        (t.train_images is None or t.train_images >= 2, f"--train-images: must be >= 2, got {t.train_images}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_cpu_devices(args.cpu_devices)
    start_distributed(args)
    for name in ("checkpoint_every", "log_every", "calib_images"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}")
    if args.eval_images < 0:
        raise UserError(f"--eval-images: must be >= 0, got {args.eval_images}")

    from nas.data import Normalizer, load_dataset
    from nas.run import Run, RunConfig
    from nas.supernet import SupernetConfig

    out = Path(args.out)
    use_compilation_cache(out)
    if args.resume:
        run_folder = Run.open(out)
        if args.stages is not None and run_folder.config.supernet.space_args.get("stages", 5) != args.stages:
            raise UserError("--stages differs from the run's: --resume continues a run with its own settings")
        config = run_folder.config
        _train_config(args, config.train)
        data = _subset(load_dataset(config.train.data), config.train)
        if data.describe() != config.data:
            raise UserError(f"{config.train.data}: the data set differs from the one {out} was trained on")
    else:
        train = _train_config(args)
        _check(train)
        data = _subset(load_dataset(train.data), train)
        space_args = {"num_classes": data.num_classes, "in_channels": data.channels}
        if args.stages is not None:
            space_args["stages"] = args.stages
        supernet = SupernetConfig(space_args=space_args, resolution=data.resolution)
        try:
            supernet.build_space()
        except ValueError as exc:
            raise UserError(str(exc)) from None
        config = RunConfig(supernet, train, data.describe(), Normalizer.fit(data.train_x))
        if (out / "config.json").exists():
            raise UserError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
        _check_trainable(config, data)
        run_folder = Run.create(out, config) if _primary() else Run(out, config)

    from nas.trainer import Trainer

    trainer = Trainer(run_folder, data, args.checkpoint_every, args.log_every, args.eval_images, args.calib_images)
    trainer.fit()
    return 0


def _primary() -> bool:
    import jax

    return jax.process_index() == 0


def _subset(data, train):
    """The first `train_images` of a seeded shuffle of the training split (quick runs)."""
    import numpy as np

    from nas.data import Dataset

    if train.train_images is None or train.train_images >= len(data.train_y):
        return data
    keep = np.sort(np.random.default_rng([train.seed, 3]).permutation(len(data.train_y))[: train.train_images])
    return Dataset(
        f"{data.name}[:{train.train_images}]",
        data.train_x[keep],
        data.train_y[keep],
        data.test_x,
        data.test_y,
        data.classes,
    )


def _check_trainable(config, data) -> None:
    import jax

    devices = jax.device_count()
    if config.train.batch_size % devices:
        raise UserError(f"--batch-size {config.train.batch_size} must be a multiple of the {devices} devices")
    if config.train.batch_size > len(data.train_y):
        raise UserError(f"--batch-size {config.train.batch_size} exceeds the {len(data.train_y)} training images")


if __name__ == "__main__":
    run(main, PROG)
