"""`python -m nas.train`: train the weight-sharing supernet.

  python -m nas.train --data fashion-mnist --out runs/NAME [--epochs N] [--resume]

Each step trains the largest subnet on the labels, and the smallest and random subnets on the
largest's predictions (sandwich rule with in-place distillation), with SGD + Nesterov momentum,
linear warm-up and cosine decay, label smoothing. Checkpoints go to runs/NAME/checkpoints every
--checkpoint-every steps and at the end of each epoch; `--resume` continues from the latest with
the same step, optimiser state, data order and random subnets, so a killed run loses at most the
steps since its last checkpoint and then ends exactly where an uninterrupted run would. A
damaged newest checkpoint is passed over (one line says so) for the newest intact one; a torn
last line of metrics.jsonl is dropped with a warning; resuming a finished run changes nothing.
Every input is checked before OUT/config.json is written, so a refused start leaves no run.

On a CPU-only machine every core becomes one XLA device (--cpu-devices) and the batch is split
across them (data parallel over all local devices, jax.sharding); on several hosts, see
nas/README.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import jax

from common.cli import (
    ArgumentParser,
    UserError,
    float_in,
    int_at_least,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run,
    seed_int,
)
from common.files import check_new_folder
from nas.options import add_calib_images, add_cpu_devices
from nas.supernet.supernet import SupernetConfig
from nas.training.data import AUGMENTATIONS, Dataset, Normalizer, load_dataset
from nas.training.run import Run, RunConfig, TrainConfig, hold_run
from nas.training.trainer import Trainer
from nas.training.xla import configure_cpu_devices, use_compilation_cache

PROG = "python -m nas.train"
DEFAULT_CHECKPOINT_EVERY = 250
DEFAULT_EVAL_IMAGES = 1000


def build_parser() -> ArgumentParser:
    d = TrainConfig()
    p = ArgumentParser(
        prog=PROG,
        description="Train the weight-sharing supernet (sandwich rule, in-place distillation).",
        epilog="Settings that shape the result are stored in OUT/config.json; --resume reuses them.",
    )
    p.add_argument(
        "--data", help=f"fashion-mnist or a path: idx files, .npz, CIFAR-10 batches, image folder ({d.data})"
    )
    p.add_argument(
        "--out",
        required=True,
        help="run folder: config.json, checkpoints/, metrics.jsonl; a new run starts only in a new or empty "
        "folder; held by OUT.lock while training: a second writer is refused (exit 2, naming the holder)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--epochs", type=positive_int, help=f"passes over the training images (default: {d.epochs})")
    p.add_argument(
        "--batch-size", type=positive_int, help=f"global batch, split across devices (default: {d.batch_size})"
    )
    p.add_argument("--lr", type=positive_float, help=f"peak learning rate after warm-up (default: {d.learning_rate})")
    p.add_argument(
        "--weight-decay", type=non_negative_float, help=f"on conv and dense kernels (default: {d.weight_decay})"
    )
    p.add_argument(
        "--warmup-epochs", type=non_negative_float, help=f"linear warm-up length (default: {d.warmup_epochs})"
    )
    p.add_argument(
        "--label-smoothing", type=float_in(0.0, 1.0), help=f"for the largest subnet (default: {d.label_smoothing})"
    )
    p.add_argument(
        "--random-subnets",
        type=non_negative_int,
        help=f"random subnets per step, besides largest and smallest ({d.random_subnets})",
    )
    p.add_argument("--augment", choices=AUGMENTATIONS, help=f"training augmentation (default: {d.augmentation})")
    p.add_argument("--seed", type=seed_int, help=f"initial weights, data order, subnets (default: {d.seed})")
    p.add_argument("--train-images", type=int_at_least(2), help="train on only this many images (quick runs)")
    p.add_argument("--stages", type=positive_int, help="keep only the first N stages of the space (quick runs, tests)")
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=DEFAULT_CHECKPOINT_EVERY,
        help=f"steps between checkpoints, besides each epoch's end (default: {DEFAULT_CHECKPOINT_EVERY})",
    )
    p.add_argument("--log-every", type=positive_int, default=10, help="steps between progress updates (default: 10)")
    p.add_argument(
        "--eval-images",
        type=non_negative_int,
        default=DEFAULT_EVAL_IMAGES,
        help=f"test images for the per-epoch check of largest and smallest, 0: none ({DEFAULT_EVAL_IMAGES})",
    )
    add_calib_images(p)
    add_cpu_devices(p)
    multi = p.add_argument_group("multi-host (run the same command on every host, --out on a shared file system)")
    multi.add_argument("--coordinator", help="HOST:PORT of process 0, for jax.distributed.initialize")
    multi.add_argument("--num-processes", type=positive_int, help="number of processes (hosts) in the job")
    multi.add_argument("--process-id", type=non_negative_int, help="this process's index, 0 .. num-processes - 1")
    return p


def start_distributed(args) -> None:
    """jax.distributed across hosts: explicit flags, or none of them (single host). The global
    mesh then spans every host's devices and each host feeds its slice of every batch."""
    given = [args.coordinator is not None, args.num_processes is not None, args.process_id is not None]
    if not any(given):
        return
    if not all(given):
        raise UserError("multi-host needs --coordinator, --num-processes and --process-id together")
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


def _train_config(args, stored: TrainConfig | None = None) -> TrainConfig:
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


def _resume(args, out: Path) -> tuple[Run, Dataset]:
    run_folder = Run.open(out)
    if args.stages is not None and run_folder.config.supernet.space_args.get("stages", 5) != args.stages:
        raise UserError("--stages differs from the run's: --resume continues a run with its own settings")
    config = run_folder.config
    _train_config(args, config.train)
    data = load_dataset(config.train.data).subset(config.train.train_images, config.train.seed)
    if data.describe() != config.data:
        raise UserError(f"{config.train.data}: the data set differs from the one {out} was trained on")
    return run_folder, data


def _start(args, out: Path) -> tuple[Run, Dataset]:
    if (out / "config.json").exists():
        raise UserError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    if jax.process_index() == 0:  # the first process checks, before any process writes there
        check_new_folder(out, UserError, "a new run")
    train = _train_config(args)
    data = load_dataset(train.data).subset(train.train_images, train.seed)
    space_args = {"num_classes": data.num_classes, "in_channels": data.channels}
    if args.stages is not None:
        space_args["stages"] = args.stages
    supernet = SupernetConfig(space_args=space_args, resolution=data.resolution)
    try:
        supernet.build_space()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    config = RunConfig(supernet, train, data.describe(), Normalizer.fit(data.train_x))
    _check_trainable(config, data)
    return Run(out, config), data  # config.json is written once the trainer is built (main)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_cpu_devices(args.cpu_devices)
    start_distributed(args)
    out = Path(args.out)
    # one writer per run folder: the first process holds its lock (other hosts share the folder)
    with hold_run(out) if jax.process_index() == 0 else contextlib.nullcontext():
        use_compilation_cache(out)
        run_folder, data = _resume(args, out) if args.resume else _start(args, out)
        trainer = Trainer(run_folder, data, args.checkpoint_every, args.log_every, args.eval_images, args.calib_images)
        if not args.resume and jax.process_index() == 0:
            run_folder.write_config()  # only now: a start refused above leaves nothing to refuse a rerun
        trainer.fit()
    return 0


def _check_trainable(config: RunConfig, data: Dataset) -> None:
    devices = jax.device_count()
    if config.train.batch_size % devices:
        raise UserError(f"--batch-size {config.train.batch_size} must be a multiple of the {devices} devices")
    if config.train.batch_size > len(data.train_y):
        raise UserError(f"--batch-size {config.train.batch_size} exceeds the {len(data.train_y)} training images")


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
