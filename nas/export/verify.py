"""Is the exported .tflite the network the supernet promised? Checked, not assumed:

- agreement: its outputs against the Flax subnet's on the first test images (float: max abs
  difference within FLOAT_TOLERANCE and the same top-1 on every image);
- top-1 on the whole test split, next to the Flax subnet's (int8: at most INT8_MAX_DROP points
  lost);
- size on disk (int8: next to the float model of the same weights);
- int8: the model run by TensorFlow Lite Micro on the agreement images, its outputs against the
  TFLite interpreter's (reported: the two runtimes' kernels round apart by a step or so), and
  the arena TFLM allocates and the file's size against latency_models.footprint's predictions:
  the arena's head must equal the prediction (it is TFLM's to the byte) and the size lie within
  FLASH_TOLERANCE of it (the count is a few hundred bytes off an int8 file);
- latency measured on this machine's TFLite interpreter next to the `host` predictor's
  prediction for the same spec (reported, not enforced: this machine is shared and noisy).

A model with int8 input and output is fed the images quantised with its input's scale and zero
point, and its outputs are dequantised with its output's, before anything is compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from latency_models.footprint import tflm
from latency_models.footprint.costs import deployment_name, footprint
from latency_models.measurement.host import HostBackend
from latency_models.profiles.registry import UnknownTarget, load_predictor
from latency_models.tflite import runtime
from nas.export.extract import Extracted

FLOAT_TOLERANCE = 1e-4
INT8_MAX_DROP = 0.01
AGREEMENT_IMAGES = 256
FLASH_TOLERANCE = 0.01


def is_int8(model: bytes) -> bool:
    interpreter = runtime.make_interpreter(model)
    return any(t["dtype"] == np.int8 for t in interpreter.get_tensor_details())


def tflite_outputs(model: bytes, extracted: Extracted, images: np.ndarray) -> np.ndarray:
    """Real-valued outputs for uint8 images (quantised in and out for an integer interface)."""
    return runtime.run(model, extracted.normalizer(images))


def micro(
    model: bytes,
    interface: tuple[runtime.Interface, runtime.Interface],
    extracted: Extracted,
    images: np.ndarray,
    tflite_out: np.ndarray,
) -> dict:
    """TFLM's run of an int8 model (its input and output `interface`) on `images` against the
    interpreter's outputs for them (`tflite_out`), and its arena and the file's size against the
    predicted footprint."""
    given, returned = interface
    predicted = footprint(extracted.spec, "int8", integer_io=given.scale is not None)
    report: dict[str, Any] = {
        "images": len(images),
        "predicted_arena_bytes": predicted.arena_bytes,
        "flash_bytes": len(model),
        "predicted_flash_bytes": predicted.flash_bytes,
        "flash_error": len(model) / predicted.flash_bytes - 1,
    }
    try:
        got = returned.decode(tflm.run(model, given.encode(extracted.normalizer(images))))
        arena = tflm.arena_use(model)
    except tflm.TFLMError as exc:  # an op TFLM lacks: the model cannot be deployed, nor its arena checked
        return {**report, "error": str(exc), "passed": False}
    report.update(
        max_abs_diff=float(np.abs(got - tflite_out).max()),
        top1_agree=int((got.argmax(-1) == tflite_out.argmax(-1)).sum()),
        arena_head=arena.head,
        arena_tail=arena.tail,
        arena_smallest=arena.smallest,
    )
    report["passed"] = arena.head == predicted.arena_bytes and abs(report["flash_error"]) <= FLASH_TOLERANCE
    return report


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
    given, returned = runtime.interface(model)
    count = min(AGREEMENT_IMAGES, len(data.test_y))
    flax_out = extracted.logits(data.test_x)
    exported_out = tflite_outputs(model, extracted, data.test_x)
    reference, got = flax_out[:count], exported_out[:count]  # agreement: the first test images
    flax_top1 = float((flax_out.argmax(-1) == data.test_y).mean())
    exported_top1 = float((exported_out.argmax(-1) == data.test_y).mean())
    report: dict[str, Any] = {
        "precision": precision,
        "deployment": deployment_name(precision, integer_io=given.scale is not None),
        "input": given.to_dict(),
        "output": returned.to_dict(),
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
        report["tflm"] = micro(model, (given, returned), extracted, data.test_x[:count], got)
        report["passed"] = flax_top1 - exported_top1 <= INT8_MAX_DROP and report["tflm"]["passed"]
        if float_model is not None:
            report["float_bytes"] = len(float_model)
    if latency:
        report["host"] = host_latency(model, extracted.spec, precision)
    return report


def _against_float(report: dict) -> str:
    if "float_bytes" not in report:
        return ""
    return f", {report['float_bytes'] / report['bytes']:.2f}x smaller than float ({report['float_bytes'] / 1e6:.3f} MB)"


def _quantisation(io: dict) -> str:
    return f"scale {io['scale']:.6g} zero point {io['zero_point']}"


def _describe_micro(micro: dict) -> list[str]:
    n = micro["images"]
    if "error" in micro:
        lines = [f"TensorFlow Lite Micro: {micro['error']}"]
    else:
        head, predicted = micro["arena_head"], micro["predicted_arena_bytes"]
        lines = [
            f"TensorFlow Lite Micro on {n} test images: max |diff| {micro['max_abs_diff']:.2e} from the TFLite "
            f"interpreter, same top-1 on {micro['top1_agree']}/{n}",
            f"TFLM arena: head {head} bytes, predicted {predicted} ("
            + ("exact" if head == predicted else f"{head - predicted:+d} bytes; must be exact")
            + f"); tail {micro['arena_tail']} bytes; smallest arena accepted {micro['arena_smallest']} bytes",
        ]
    return [
        *lines,
        f"flash: {micro['flash_bytes']} bytes, predicted {micro['predicted_flash_bytes']} "
        f"({100 * micro['flash_error']:+.3f}%; limit {100 * FLASH_TOLERANCE:g}%)",
    ]


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
        f"size {report['bytes'] / 1e6:.3f} MB ({report['deployment']})" + _against_float(report),
    ]
    if report["input"].get("scale") is not None:
        lines.append(f"int8 input {_quantisation(report['input'])}, int8 output {_quantisation(report['output'])}")
    if "tflm" in report:
        lines += _describe_micro(report["tflm"])
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
