"""An extracted subnet as a .tflite: batch norm folded into the convolutions, emitted by the same
emitter that builds the latency-table blocks (float, or full int8 calibrated on training
images), with the sidecar JSON a deployment needs (input normalisation, classes, provenance)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from latency_models.tflite.emit import emit_spec
from nas.export.extract import Extracted
from nas.export.fold import inference_weights
from nas.training.evaluation import calibration_images


def int8_calibration(extracted: Extracted, count: int, seed: int) -> np.ndarray:
    """`count` normalised training images that calibrate int8 activation ranges."""
    return extracted.normalizer(calibration_images(extracted.data.train_x, count, seed))


def emit(extracted: Extracted, calibration: np.ndarray | None = None) -> tuple[bytes, bytes]:
    """(the model, its float form): int8 when `calibration` images are given; the float form
    sizes an int8 model in verification."""
    weights = inference_weights(extracted.spec, extracted.model)
    float_model = emit_spec(extracted.spec, weights)
    if calibration is None:
        return float_model, float_model
    return emit_spec(extracted.spec, weights, "int8", calibration=calibration), float_model


def sidecar(extracted: Extracted, model_name: str, precision: str, calibration_images: int) -> dict[str, Any]:
    """What `model_name.json` says beside the model: how to feed it and where it came from."""
    spec = extracted.spec
    return {
        "kind": "platform-nas/tflite-export",
        "schema_version": 1,
        "model": model_name,
        "precision": precision,
        "int8_calibration_images": calibration_images if precision == "int8" else None,
        "input": {
            "shape": [1, spec.resolution, spec.resolution, spec.in_channels],
            "preprocess": "x / 255, then (x - mean) / std per channel",
            **dataclasses.asdict(extracted.normalizer),
        },
        "classes": list(extracted.data.classes),
        "spec": spec.to_dict(),
        "provenance": extracted.provenance,
    }
