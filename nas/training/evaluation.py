"""Top-1 of a subnet with inherited weights, after batch-norm recalibration.

Weight-shared training keeps no batch-norm statistics that fit any one subnet, so, as in
Once-for-All, each subnet's statistics are recomputed on a fixed set of training images (the
average of per-batch means and variances, without augmentation) before it is evaluated. Both
the recalibration and the evaluation are compiled once for all subnets (the subnet enters as
arrays) and run data parallel over the same mesh as training.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from nas.supernet.layers import Mode
from nas.supernet.supernet import Subnet
from nas.training.data import Dataset, Normalizer, load_dataset
from nas.training.run import Run, RunError, TrainedSupernet, load_supernet
from nas.training.step import AXIS, make_mesh, shard_batch
from nas.training.xla import use_compilation_cache


def supernet_forward(model, images, sub, mode):
    return model(images, sub, mode)


def plain_forward(model, images, sub, mode):
    """For a plain SpecNet (no subnet argument): stand-alone trained networks."""
    return model(images, mode)


EVAL_BATCH = 250  # images per evaluation step


def eval_batch(mesh: Mesh, train_images: int | None = None) -> int:
    """EVAL_BATCH, or fewer where there are only `train_images` to recalibrate on (every
    recalibration batch is full), rounded down to a multiple of the mesh size (at least one
    image per device)."""
    batch = EVAL_BATCH if train_images is None else min(EVAL_BATCH, train_images)
    return max(mesh.size, batch // mesh.size * mesh.size)


class Evaluator:
    """Accuracy of subnets of one supernet (or of plain networks, with `forward=plain_forward`
    and sub=None) on one data set. `calib_images`: training images (uint8) for recalibration;
    `batch_size` must be a multiple of the mesh size."""

    def __init__(
        self,
        graphdef: nnx.GraphDef,
        stats: Any,
        mesh: Mesh,
        normalizer: Normalizer,
        calib_images: np.ndarray,
        test_images: np.ndarray,
        test_labels: np.ndarray,
        batch_size: int = EVAL_BATCH,
        forward=supernet_forward,
    ):
        self.mesh, self.normalizer, self.batch_size = mesh, normalizer, batch_size
        usable = len(calib_images) // batch_size * batch_size
        if usable == 0:
            raise ValueError(f"need at least {batch_size} calibration images, got {len(calib_images)}")
        self.calib = calib_images[:usable]
        self.test_images, self.test_labels = test_images, test_labels
        self.stats_template = stats

        def calibrate(params, stats, images, sub):
            model = nnx.merge(graphdef, params, stats)
            forward(model, images, sub, Mode("calibrate", AXIS))
            return _moment_sums(nnx.state(model, nnx.BatchStat).to_pure_dict())

        def correct(params, stats, images, labels, valid, sub):
            logits = forward(nnx.merge(graphdef, params, stats), images, sub, Mode("eval", AXIS))
            # a count, summed over the mesh: the same on every host, nothing gathered
            return jax.lax.psum(((logits.argmax(-1) == labels) & valid).sum(), AXIS)

        self._calibrate = jax.jit(jax.shard_map(calibrate, mesh=mesh, in_specs=(P(), P(), P(AXIS), P()), out_specs=P()))
        batch_specs = (P(), P(), P(AXIS), P(AXIS), P(AXIS), P())
        self._correct = jax.jit(jax.shard_map(correct, mesh=mesh, in_specs=batch_specs, out_specs=P()))

    def recalibrate(self, params: Any, sub: Subnet | None) -> Any:
        """Batch-norm statistics of `sub` over the calibration images: per-batch means and
        variances averaged (law of total variance), all batches being the same size."""
        total = None
        for start in range(0, len(self.calib), self.batch_size):
            (images,) = shard_batch(self.mesh, self.normalizer(self.calib[start : start + self.batch_size]))
            sums = jax.device_get(self._calibrate(params, self.stats_template, images, sub))
            total = sums if total is None else jax.tree.map(np.add, total, sums)
        count = len(self.calib) // self.batch_size
        stats = jax.tree.map(lambda x: x, self.stats_template)  # a copy to fill
        nnx.replace_by_pure_dict(stats, _finish(total, count))
        return stats

    def top1(self, params: Any, sub: Subnet | None, limit: int | None = None) -> float:
        """Top-1 (fraction) on the first `limit` test images (all by default), after
        recalibration. The last batch is padded to full size, so nothing recompiles."""
        stats = self.recalibrate(params, sub)
        images, labels = self.test_images[:limit], self.test_labels[:limit]
        correct = 0
        for start in range(0, len(labels), self.batch_size):
            chunk, truth = images[start : start + self.batch_size], labels[start : start + self.batch_size]
            real = len(chunk)
            valid = np.arange(self.batch_size) < real
            if real < self.batch_size:
                chunk = np.concatenate([chunk, np.zeros((self.batch_size - real, *chunk.shape[1:]), chunk.dtype)])
                truth = np.concatenate([truth, np.zeros(self.batch_size - real, truth.dtype)])
            batch = shard_batch(self.mesh, self.normalizer(chunk), truth, valid)
            correct += int(self._correct(params, stats, *batch, sub))
        return correct / len(labels)


def calibration_images(train_images: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """A fixed random subset of the training images (the same for every subnet)."""
    order = np.random.default_rng([seed, 7]).permutation(len(train_images))[:count]
    return train_images[np.sort(order)]


def _moment_sums(tree: dict) -> dict:
    """Each batch norm's {mean, var} as {mean, E[x^2]}, which add up across batches."""
    if set(tree) == {"mean", "var"}:
        return {"mean": tree["mean"], "var": tree["var"] + jnp.square(tree["mean"])}
    return {key: _moment_sums(value) for key, value in tree.items()}


def _finish(tree: dict, count: int) -> dict:
    if set(tree) == {"mean", "var"}:
        mean = tree["mean"] / count
        return {"mean": jnp.asarray(mean), "var": jnp.asarray(np.maximum(tree["var"] / count - mean**2, 0.0))}
    return {key: _finish(value, count) for key, value in tree.items()}


def open_evaluator(
    run_folder: Run, calib_images: int, step: int | None = None
) -> tuple[TrainedSupernet, Evaluator, Dataset]:
    """(trained supernet, Evaluator, data set) for a run folder: its checkpoint at `step` (the
    latest by default), its data set (checked to be the one it was trained on) and the fixed
    `calib_images` training images for recalibration."""
    use_compilation_cache(run_folder.path)  # training compiled the same evaluation programs
    config = run_folder.config
    data = load_dataset(config.train.data).subset(config.train.train_images, config.train.seed)
    if data.describe() != config.data:
        raise RunError(f"{config.train.data}: the data set differs from the one {run_folder.path} was trained on")
    mesh = make_mesh()
    trained = load_supernet(run_folder, mesh, step)
    batch = eval_batch(mesh, len(data.train_y))
    calib = calibration_images(data.train_x, max(calib_images, batch), config.train.seed)
    evaluator = Evaluator(
        trained.graphdef, trained.stats, mesh, config.normalizer, calib, data.test_x, data.test_y, batch_size=batch
    )
    return trained, evaluator, data
