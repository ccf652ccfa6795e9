"""The emitter's public face: ArchSpecs and blocks to .tflite bytes."""

from __future__ import annotations

import numpy as np

from latency_models.tables.signature import Block
from latency_models.tflite.lower import lower_block, lower_spec
from latency_models.tflite.quantize import quantize
from latency_models.tflite.weights import Weights, check_weights, random_weights
from search_spaces.arch_spec import ArchSpec

CALIBRATION_IMAGES = 8


def random_images(shape: tuple[int, ...], count: int, seed: int = 0) -> np.ndarray:
    """Standard-normal images: calibration input when only latency matters."""
    return np.random.default_rng(seed).normal(size=(count, *shape)).astype(np.float32)


def emit_spec(
    spec: ArchSpec,
    weights: Weights | None = None,
    precision: str = "fp32",
    seed: int = 0,
    calibration: np.ndarray | None = None,
    integer_io: bool = False,
) -> bytes:
    """A whole network as .tflite bytes (batch 1; float input and output unless an int8 model
    is asked for with `integer_io`). Without `weights` they are drawn at random from `seed`;
    int8 calibrates on `calibration` images (random ones when none are given, which is right
    for timing and wrong for accuracy)."""
    if weights is None:
        weights = random_weights(spec, seed)
    check_weights(spec, weights)
    graph = lower_spec(spec, weights)
    if precision == "fp32":
        if integer_io:
            raise ValueError("integer input and output need precision int8")
        return graph.to_flatbuffer()
    if precision != "int8":
        raise ValueError(f"precision: unknown value {precision!r} (allowed: fp32, int8)")
    if calibration is None:
        calibration = random_images((spec.resolution, spec.resolution, spec.in_channels), CALIBRATION_IMAGES, seed)
    return quantize(graph, calibration, integer_io)


def emit_block(block: Block, seed: int = 0) -> bytes:
    """One block with random weights at the block's precision: a latency-table measurement."""
    graph = lower_block(block, seed)
    if block.precision == "fp32":
        return graph.to_flatbuffer()
    return quantize(graph, random_images(block.in_shape, CALIBRATION_IMAGES, seed))
