"""The data-parallel step over two devices computes what the single-device step computes.

Two CPU devices need XLA_FLAGS before JAX starts, so the check runs in a subprocess: it sets up
training exactly as the tiny run of test_train.py was set up (same config, data, seed), on two
devices, and its first steps must reproduce the losses that run logged on one device."""

import json
import subprocess
import sys

from tests.test_train import REPO, compile_cache, environment, tiny_run

SCRIPT = """
import json, sys
import jax
from nas.training.data import load_dataset
from nas.training.run import Run
from nas.training.step import shard_batch
from nas.training.trainer import Trainer

assert jax.device_count() == 2, jax.devices()
config = Run.open(sys.argv[1]).config
run = Run.create(sys.argv[2], config)
data = load_dataset(config.train.data).subset(config.train.train_images, config.train.seed)
trainer = Trainer(run, data, 1000, 1, 0, 32)
assert trainer.mesh.size == 2
losses = []
for step in range(3):
    images, labels = shard_batch(trainer.mesh, *trainer.batches.batch(step))
    trainer.state, metrics = trainer.step_fn(trainer.state, images, labels, trainer.sandwich(step))
    losses.append([float(v) for v in metrics["loss"]])
print(json.dumps(losses))
"""


def test_two_devices_give_the_single_device_loss(tmp_path_factory, tmp_path, pytestconfig):
    basetemp = tmp_path_factory.getbasetemp()
    cache = compile_cache(pytestconfig, basetemp)
    single = tiny_run(basetemp, cache)
    env = environment(cache)
    # three steps only: compiling without LLVM optimisation is the faster trade here
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=2"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(single), str(tmp_path / "two")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    two = json.loads(result.stdout.splitlines()[-1])
    logged = [json.loads(line) for line in (single / "metrics.jsonl").read_text().splitlines()][:3]
    assert [r["step"] for r in logged] == [1, 2, 3]
    for step, record in zip(two, logged, strict=True):  # three steps of the sandwich: largest, smallest, random
        for a, b in zip(step, record["loss"], strict=True):
            assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), (step, record["loss"])
