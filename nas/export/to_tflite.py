"""An extracted subnet as a .tflite: batch norm folded into the convolutions, emitted by the same
emitter that builds the latency-table blocks (float, or full int8 calibrated on training
images, with a float or an int8 interface), with the sidecar JSON a deployment needs (input
normalisation and quantisation, classes, provenance)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from latency_models.tflite.emit import emit_spec
from latency_models.tflite.runtime import interface
from nas.export.extract import Extracted
from nas.export.fold import inference_weights
from nas.training.evaluation import calibration_images

# How a caller maps real values to an int8 interface and back (TFLite's affine quantisation).
_QUANTISE = {"quantise": "q = clip(round(x / scale) + zero_point, -128, 127) of the preprocessed x"}
_DEQUANTISE = {"dequantise": "logit = (q - zero_point) * scale"}


def int8_calibration(extracted: Extracted, count: int, seed: int) -> np.ndarray:
    """`count` normalised training images that calibrate int8 activation ranges."""
    return extracted.normalizer(calibration_images(extracted.data.train_x, count, seed))


def emit(extracted: Extracted, calibration: np.ndarray | None = None, integer_io: bool = False) -> tuple[bytes, bytes]:
    """(the model, its float form): int8 when `calibration` images are given, with int8 input
    and output if `integer_io`; the float form sizes an int8 model in verification."""
    weights = inference_weights(extracted.spec, extracted.model)
    float_model = emit_spec(extracted.spec, weights)
    if calibration is None:
        if integer_io:
            raise ValueError("integer input and output need an int8 model (calibration images)")
        return float_model, float_model
    return emit_spec(extracted.spec, weights, "int8", calibration=calibration, integer_io=integer_io), float_model


def sidecar(
    extracted: Extracted, model: bytes, model_name: str, precision: str, calibration_images: int
) -> dict[str, Any]:
    """What `model_name.json` says beside the model: how to feed it, how to read its output and
    where it came from. The input and output types, scales and zero points are read from the
    model itself, so the sidecar cannot disagree with it."""
    spec = extracted.spec
    given, returned = interface(model)
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
            **given.to_dict(),
            **(_QUANTISE if given.scale is not None else {}),
        },
        "output": {
            "shape": [1, spec.num_classes],
            "values": "logits",
            **returned.to_dict(),
            **(_DEQUANTISE if returned.scale is not None else {}),
        },
        "classes": list(extracted.data.classes),
        "spec": spec.to_dict(),
        "provenance": extracted.provenance,
    }
