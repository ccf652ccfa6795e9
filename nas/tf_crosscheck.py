"""The TensorFlow cross-check (needs the `tf` extra): the same Flax subnet converted by jax2tf and
TFLite's own converter, compared with the project's emitter on ops, outputs and latency.

Two independent routes from one set of weights to a .tflite should agree: if they do, the
emitter's lowering (batch-norm folding, SAME padding, h-swish, squeeze-excite) is what TensorFlow
would have produced, and the latency tables time what TensorFlow users ship.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from latency_models.tflite import runtime
from nas.extract import Extracted
from nas.layers import Mode


def tensorflow_tflite(extracted: Extracted) -> bytes:
    """The Flax subnet (eval mode, every convolution as a convolution) through jax2tf and
    tf.lite.TFLiteConverter, TFLite builtin ops only."""
    import tensorflow as tf
    from flax import nnx
    from jax.experimental import jax2tf

    graphdef, state = nnx.split(extracted.model)

    def forward(x):
        return nnx.merge(graphdef, state)(x, Mode("eval"), impl="portable")

    spec = extracted.spec
    signature = [tf.TensorSpec([1, spec.resolution, spec.resolution, spec.in_channels], tf.float32)]
    function = tf.function(jax2tf.convert(forward, with_gradient=False), input_signature=signature, autograph=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def op_counts(model: bytes) -> Counter:
    interpreter = runtime.make_interpreter(model)
    return Counter(op["op_name"] for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE")


def crosscheck(extracted: Extracted, ours: bytes, images: np.ndarray, latency: bool = True) -> dict:
    """Both models on the same uint8 `images`: max abs difference, top-1 agreement, op counts,
    and (with `latency`) the median host latency of each, timed alike in one run."""
    theirs = tensorflow_tflite(extracted)
    x = extracted.normalizer(images)
    a, b = runtime.run(ours, x), runtime.run(theirs, x)
    report = {
        "images": len(images),
        "max_abs_diff": float(np.abs(a - b).max()),
        "top1_agree": int((a.argmax(-1) == b.argmax(-1)).sum()),
        "ops_ours": dict(op_counts(ours)),
        "ops_tensorflow": dict(op_counts(theirs)),
        "bytes_ours": len(ours),
        "bytes_tensorflow": len(theirs),
    }
    if latency:
        from latency_models.host import HostBackend

        for name, model in (("ours", ours), ("tensorflow", theirs)):
            report[f"ms_{name}"] = HostBackend().time_bytes(model).median_ms
    return report


def describe(report: dict) -> list[str]:
    def ops(counts: dict) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))

    lines = [
        f"TensorFlow cross-check on {report['images']} test images: max |diff| {report['max_abs_diff']:.2e}, "
        f"same top-1 on {report['top1_agree']}/{report['images']}",
        f"  ops, ours:       {ops(report['ops_ours'])} ({report['bytes_ours'] / 1e6:.3f} MB)",
        f"  ops, TensorFlow: {ops(report['ops_tensorflow'])} ({report['bytes_tensorflow'] / 1e6:.3f} MB)",
    ]
    if "ms_ours" in report:
        lines.append(
            f"  host latency: ours {report['ms_ours']:.3f} ms, TensorFlow's {report['ms_tensorflow']:.3f} ms "
            f"(ratio {report['ms_ours'] / report['ms_tensorflow']:.3f})"
        )
    return lines
