"""Post-training int8 quantisation: activation ranges come from running the float model over a
calibration batch (every intermediate tensor kept), as TFLite's calibrator does."""

from __future__ import annotations

import warnings

import numpy as np

from latency_models.tflite.graph import ACTIVATION, Graph
from latency_models.tflite.runtime import make_interpreter


def calibrate(graph: Graph, images: np.ndarray) -> dict[int, tuple[float, float]]:
    """Min and max of every activation tensor over `images` ([N, H, W, C], fed one at a time)."""
    with warnings.catch_warnings():  # the runtime warns that keeping every tensor costs memory: intended
        warnings.simplefilter("ignore", UserWarning)
        interpreter = make_interpreter(graph.to_flatbuffer(), keep_intermediates=True)
    (inp,) = interpreter.get_input_details()
    activations = [t.index for t in graph.tensors if t.role == ACTIVATION]
    low = {t: np.inf for t in activations}
    high = {t: -np.inf for t in activations}
    for image in images:
        interpreter.set_tensor(inp["index"], image[np.newaxis].astype(np.float32))
        interpreter.invoke()
        for t in activations:
            value = interpreter.get_tensor(t)
            low[t] = min(low[t], float(value.min()))
            high[t] = max(high[t], float(value.max()))
    return {t: (low[t], high[t]) for t in activations}


def quantize(graph: Graph, calibration_images: np.ndarray, integer_io: bool = False) -> bytes:
    return graph.to_flatbuffer(calibrate(graph, calibration_images), integer_io=integer_io)
