"""The TensorFlow cross-check (needs the `tf` extra): the same Flax subnet converted by jax2tf and
TFLite's own converter, compared with the project's emitter on ops, outputs and latency.

Two independent routes from one set of weights to a .tflite should agree: if they do, the
emitter's lowering (batch-norm folding, SAME padding, h-swish, squeeze-excite) is what TensorFlow
would have produced, and the latency tables time what TensorFlow users ship.
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from latency_models.measurement.host import HostBackend
from latency_models.tflite import runtime
from nas.export.extract import Extracted
from nas.supernet.layers import Mode


def tensorflow_tflite(extracted: Extracted, calibration: np.ndarray | None = None) -> bytes:
    """The Flax subnet (eval mode, every convolution as a convolution) through jax2tf and
    tf.lite.TFLiteConverter, TFLite builtin ops only; full int8 (float input and output, as the
    emitter's) when normalised `calibration` images are given, calibrated on those images."""
    # deferred: TensorFlow is the optional 1.3 GB `tf` extra (jax2tf imports it too)
    import tensorflow as tf
    from jax.experimental import jax2tf

    graphdef, state = nnx.split(extracted.model)

    def forward(x):
        return nnx.merge(graphdef, state)(x, Mode("eval"), impl="portable")

    spec = extracted.spec
    signature = [tf.TensorSpec([1, spec.resolution, spec.resolution, spec.in_channels], tf.float32)]
    function = tf.function(jax2tf.convert(forward, with_gradient=False), input_signature=signature, autograph=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    if calibration is None:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[np.newaxis]] for image in calibration)
    return converter.convert()


def crosscheck(extracted: Extracted, ours: bytes, latency: bool = True, calibration: np.ndarray | None = None) -> dict:
    """Both models over the test split: max abs difference, top-1 agreement and each one's
    top-1, op counts, sizes and (with `latency`) the median host latency of each, timed alike in
    one run. With `calibration` (the images `ours` was quantised with) TensorFlow's is int8 too."""
    theirs = tensorflow_tflite(extracted, calibration)
    data = extracted.data
    x = extracted.normalizer(data.test_x)
    a, b = runtime.run(ours, x), runtime.run(theirs, x)
    report = {
        "precision": "fp32" if calibration is None else "int8",
        "images": len(x),
        "max_abs_diff": float(np.abs(a - b).max()),
        "top1_agree": int((a.argmax(-1) == b.argmax(-1)).sum()),
        "top1_ours": float((a.argmax(-1) == data.test_y).mean()),
        "top1_tensorflow": float((b.argmax(-1) == data.test_y).mean()),
        "ops_ours": dict(runtime.op_counts(ours)[0]),
        "ops_tensorflow": dict(runtime.op_counts(theirs)[0]),
        "bytes_ours": len(ours),
        "bytes_tensorflow": len(theirs),
    }
    if latency:
        for name, model in (("ours", ours), ("tensorflow", theirs)):
            report[f"ms_{name}"] = HostBackend().time_bytes(model).median_ms
    return report


def describe(report: dict) -> list[str]:
    def ops(counts: dict) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))

    lines = [
        f"TensorFlow cross-check ({report['precision']}) on {report['images']} test images: "
        f"max |diff| {report['max_abs_diff']:.2e}, same top-1 on {report['top1_agree']}/{report['images']}",
        f"  top-1: ours {report['top1_ours']:.2%}, TensorFlow's {report['top1_tensorflow']:.2%}",
        f"  ops, ours:       {ops(report['ops_ours'])} ({report['bytes_ours'] / 1e6:.3f} MB)",
        f"  ops, TensorFlow: {ops(report['ops_tensorflow'])} ({report['bytes_tensorflow'] / 1e6:.3f} MB)",
    ]
    if "ms_ours" in report:
        lines.append(
            f"  host latency: ours {report['ms_ours']:.3f} ms, TensorFlow's {report['ms_tensorflow']:.3f} ms "
            f"(ratio {report['ms_ours'] / report['ms_tensorflow']:.3f})"
        )
    return lines
