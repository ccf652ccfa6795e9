"""The supernet training loop: batches and subnets by step, the compiled step, checkpoints,
progress and the per-epoch check. The command line is nas/train.py."""

from __future__ import annotations

import sys
import time

import jax
import numpy as np
from rich.console import Console

from common.progress import progress_bar
from nas.supernet.supernet import Layout, Subnet, Supernet, stack_subnets
from nas.training.data import Batches, Dataset
from nas.training.evaluation import Evaluator, calibration_images, eval_batch
from nas.training.run import Run
from nas.training.step import (
    TrainState,
    init_state,
    learning_rate,
    make_mesh,
    make_optimizer,
    make_train_step,
    shard_batch,
    split,
)


class Sandwich:
    """The subnets of one step, as a pure function of (seed, step): largest, smallest, then
    `random` subnets drawn uniformly from the space."""

    def __init__(self, layout: Layout, seed: int, random: int):
        self.layout, self.seed, self.random = layout, seed, random
        self.largest = layout.subnet(layout.largest_choices)
        self.smallest = layout.subnet(layout.smallest_choices)

    def __call__(self, step: int) -> Subnet:
        rng = np.random.default_rng([self.seed, step, 2])
        drawn = [self.layout.subnet(self.layout.space.sample(rng)) for _ in range(self.random)]
        return stack_subnets([self.largest, self.smallest, *drawn])


class Trainer:
    def __init__(self, run: Run, data: Dataset, checkpoint_every: int, log_every: int, eval_images: int, calib: int):
        self.run, self.data = run, data
        self.checkpoint_every, self.log_every, self.eval_images = checkpoint_every, log_every, eval_images
        config = run.config
        t = config.train
        self.layout = Layout(config.supernet)
        self.mesh = make_mesh()
        self.batches = Batches(data, t.batch_size, t.seed, t.augmentation, config.normalizer)
        self.steps_per_epoch = self.batches.steps_per_epoch
        self.optim = t.optim(self.steps_per_epoch)
        self.total_steps = self.optim.total_steps
        model = Supernet(config.supernet, seed=t.seed)
        self.graphdef, params, self.stats = split(model)
        self.tx = make_optimizer(self.optim)
        self.schedule = learning_rate(self.optim)
        self.state = init_state(params, self.tx, self.mesh)
        self.step_fn = make_train_step(self.graphdef, self.stats, self.tx, self.mesh, self.optim, data.num_classes)
        self.sandwich = Sandwich(self.layout, t.seed, t.random_subnets)
        batch = eval_batch(self.mesh, len(data.train_y))
        self.evaluator = Evaluator(
            self.graphdef,
            self.stats,
            self.mesh,
            config.normalizer,
            calibration_images(data.train_x, max(calib, batch), t.seed),
            data.test_x,
            data.test_y,
            batch_size=batch,
        )
        # on several hosts, process 0 alone logs, prints and writes metrics (all of them save
        # checkpoints: Orbax coordinates the hosts)
        self.primary = jax.process_index() == 0
        self.console = Console(stderr=True, quiet=not self.primary)

    def fit(self) -> dict | None:
        start = self._restore()
        if start >= self.total_steps:
            final = self._final_record()
            if final is None:  # stopped between its last checkpoint and its final evaluation
                return self._final()
            self.run.close()
            if self.primary:
                print(f"{self.run.path}: already trained ({self.total_steps} steps), nothing to do", file=sys.stderr)
                self._report(final["eval"])
            return final["eval"]
        t = self.run.config.train
        self.console.print(
            f"supernet {self.layout.space.name} proxy {self.run.config.supernet.resolution}px on {self.data.name}: "
            f"{len(self.data.train_y)} images, {self.steps_per_epoch} steps/epoch x {t.epochs} epochs, batch "
            f"{t.batch_size} on {self.mesh.size} {jax.devices()[0].platform} device(s), sandwich of "
            f"{2 + t.random_subnets}" + (f", resuming at step {start}" if start else "")
        )
        with progress_bar(self.console, status=True, disable=not self.primary) as progress:
            task = progress.add_task("[bold]train", total=self.total_steps, completed=start, status="compiling")
            mark, mark_step = time.perf_counter(), start
            for step in range(start, self.total_steps):
                images, labels = shard_batch(self.mesh, *self.batches.batch(step))
                self.state, metrics = self.step_fn(self.state, images, labels, self.sandwich(step))
                done = step + 1
                epoch_end = done % self.steps_per_epoch == 0
                if done % self.log_every == 0 or epoch_end or done == self.total_steps:
                    metrics = jax.device_get(metrics)
                    now = time.perf_counter()
                    rate = (done - mark_step) * t.batch_size / max(now - mark, 1e-9)
                    mark, mark_step = now, done
                    losses = [float(v) for v in metrics["loss"]]
                    record = {
                        "step": done,
                        "epoch": done / self.steps_per_epoch,
                        "loss": losses,
                        "accuracy": float(metrics["accuracy"]),
                        "learning_rate": float(self.schedule(step)),
                        "images_per_second": rate,
                    }
                    self._log(record)
                    progress.update(
                        task,
                        completed=done,
                        status=f"epoch {done / self.steps_per_epoch:.2f} loss {losses[0]:.3f} "
                        f"acc {record['accuracy']:.1%} {rate:.0f} img/s",
                    )
                if done % self.checkpoint_every == 0 or epoch_end or done == self.total_steps:
                    self.run.save(done, self.state.params, self.state.opt_state)
                if epoch_end and self.eval_images and done != self.total_steps:
                    self._evaluate(done, self.eval_images, progress.console)
                    mark = time.perf_counter()
        self.run.wait()
        return self._final()

    def _restore(self) -> int:
        """The step to start from: that of the newest intact checkpoint, whose parameters and
        optimiser state then replace the initial ones (0 where there is none)."""
        step, params, opt_state = self.run.restore_latest(self.state.params, self.state.opt_state)
        if step is None:
            return 0
        self.state = TrainState(params, opt_state)
        if step < self.total_steps:
            self.run.delete_after(step)  # damaged checkpoints, saved again on the way
        if self.primary:
            self.run.truncate_metrics(step)
        return step

    def _final_record(self) -> dict | None:
        """The final evaluation of a finished run, where its metrics hold one."""
        records = [r for r in self.run.metrics() if r.get("step") == self.total_steps and "eval" in r]
        return records[-1] if records else None

    def _evaluate(self, step: int, limit: int | None, console: Console) -> dict:
        began = time.perf_counter()
        result = {
            "largest": self.evaluator.top1(self.state.params, self.sandwich.largest, limit),
            "smallest": self.evaluator.top1(self.state.params, self.sandwich.smallest, limit),
        }
        images = min(limit or len(self.data.test_y), len(self.data.test_y))
        self._log({"step": step, "epoch": step / self.steps_per_epoch, "eval": result, "test_images": images})
        console.print(
            f"epoch {step / self.steps_per_epoch:.0f}: top-1 on {images} test images: largest {result['largest']:.2%}, "
            f"smallest {result['smallest']:.2%} ({time.perf_counter() - began:.0f} s)"
        )
        return result

    def _log(self, record: dict) -> None:
        if self.primary:
            self.run.log(record)

    def _final(self) -> dict:
        result = self._evaluate(self.total_steps, None, self.console)
        self.run.close()
        if self.primary:
            self._report(result)
        return result

    def _report(self, result: dict) -> None:
        print(
            f"{self.run.path}: largest {result['largest']:.2%}, smallest {result['smallest']:.2%} top-1 on "
            f"{len(self.data.test_y)} test images",
            file=sys.stdout,
        )
