"""Training and what it needs: data sets, the compiled data-parallel step, the run folder
(config, Orbax checkpoints, metrics), the trainer, stand-alone training, XLA device set-up,
and evaluating a subnet with inherited weights (the trainer's per-epoch check uses it)."""
