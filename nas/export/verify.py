"""Is the exported .tflite the network the supernet promised? Checked, not assumed:

- agreement: its outputs against the Flax subnet's on the first test images (float: max abs
  difference within FLOAT_TOLERANCE and the same top-1 on every image);
- top-1 on the whole test split, next to the Flax subnet's (int8: at most INT8_MAX_DROP points
  lost);
- size on disk (int8: next to the float model of the same weights);
- latency measured on this machine's TFLite interpreter next to the `host` predictor's
  prediction for the same spec (reported, not enforced: this machine is shared and noisy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latency_models.measurement.host import HostBackend
from latency_models.profiles.registry import UnknownTarget, load_predictor
from latency_models.tflite import runtime
from nas.export.extract import Extracted

FLOAT_TOLERANCE = 1e-4
INT8_MAX_DROP = 0.01
AGREEMENT_IMAGES = 256


def is_int8(model: bytes) -> bool:
    interpreter = runtime.make_interpreter(model)
    return any(t["dtype"] == np.int8 for t in interpreter.get_tensor_details())


def tflite_outputs(model: bytes, extracted: Extracted, images: np.ndarray) -> np.ndarray:
    return runtime.run(model, extracted.normalizer(images))


def host_latency(model: bytes, spec, precision: str) -> dict[str, Any]:
    """Measured median latency (1 thread) and the host predictor's, or why there is none."""
    measured = HostBackend().time_bytes(model).median_ms
    try:
        predicted = load_predictor("host", precision).spec_ms(spec, precision)
    except UnknownTarget as exc:
        return {"measured_ms": measured, "predicted_ms": None, "no_prediction": str(exc)}
    return {"measured_ms": measured, "predicted_ms": predicted, "ratio": measured / predicted}


def verify(model: bytes, extracted: Extracted, float_model: bytes | None = None, latency: bool = True) -> dict:
    """The checks above; `float_model` (the float export of the same weights) sizes an int8
    model against. Returns the figures and `passed`."""
    data = extracted.data
    precision = "int8" if is_int8(model) else "fp32"
    count = min(AGREEMENT_IMAGES, len(data.test_y))
    flax_out = extracted.logits(data.test_x)
    exported_out = tflite_outputs(model, extracted, data.test_x)
    reference, got = flax_out[:count], exported_out[:count]  # agreement: the first test images
    flax_top1 = float((flax_out.argmax(-1) == data.test_y).mean())
    exported_top1 = float((exported_out.argmax(-1) == data.test_y).mean())
    report: dict[str, Any] = {
        "precision": precision,
        "agreement_images": count,
        "max_abs_diff": float(np.abs(got - reference).max()),
        "top1_agree": int((got.argmax(-1) == reference.argmax(-1)).sum()),
        "test_images": len(data.test_y),
        "top1": exported_top1,
        "flax_top1": flax_top1,
        "bytes": len(model),
    }
    if precision == "fp32":
        report["passed"] = report["max_abs_diff"] <= FLOAT_TOLERANCE and report["top1_agree"] == count
    else:
        report["passed"] = flax_top1 - exported_top1 <= INT8_MAX_DROP
        if float_model is not None:
            report["float_bytes"] = len(float_model)
    if latency:
        report["host"] = host_latency(model, extracted.spec, precision)
    return report


def _against_float(report: dict) -> str:
    if "float_bytes" not in report:
        return ""
    return f", {report['float_bytes'] / report['bytes']:.2f}x smaller than float ({report['float_bytes'] / 1e6:.3f} MB)"


def describe(report: dict) -> list[str]:
    """The report as lines for people."""
    n = report["agreement_images"]
    lines = [
        f"agreement with the Flax subnet on {n} test images: max |diff| {report['max_abs_diff']:.2e}, "
        f"same top-1 on {report['top1_agree']}/{n}"
        + (f" (float: limit {FLOAT_TOLERANCE:g} and all)" if report["precision"] == "fp32" else ""),
        f"top-1 on {report['test_images']} test images: exported {report['top1']:.2%}, "
        f"Flax subnet {report['flax_top1']:.2%} ({100 * (report['top1'] - report['flax_top1']):+.2f} points"
        + (f"; int8: at most -{100 * INT8_MAX_DROP:g})" if report["precision"] == "int8" else ")"),
        f"size {report['bytes'] / 1e6:.3f} MB ({report['precision']})" + _against_float(report),
    ]
    host = report.get("host")
    if host is not None:
        if host["predicted_ms"] is None:
            lines.append(f"host latency {host['measured_ms']:.3f} ms measured; no prediction: {host['no_prediction']}")
        else:
            lines.append(
                f"host latency {host['measured_ms']:.3f} ms measured (median, 1 thread), {host['predicted_ms']:.3f} ms "
                f"predicted by the host predictor: ratio {host['ratio']:.3f}"
            )
    lines.append("verification " + ("passed" if report["passed"] else "FAILED"))
    return lines
