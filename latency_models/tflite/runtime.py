"""The TFLite interpreter: ai_edge_litert (maintained, numpy 2 compatible), falling back to
tflite_runtime where only that is installed (the two share the Interpreter API)."""

from __future__ import annotations

from collections import Counter

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
except ImportError:  # pragma: no cover
    from tflite_runtime.interpreter import Interpreter, OpResolverType  # type: ignore[no-redef]


def make_interpreter(
    model: bytes, threads: int = 1, keep_intermediates: bool = False, default_delegates: bool = True
) -> Interpreter:
    """`default_delegates=False` runs TFLite's builtin kernels only, without the XNNPACK delegate
    the runtime applies by default (what the latency tables time)."""
    resolver = OpResolverType.AUTO if default_delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(
        model_content=model,
        num_threads=threads,
        experimental_preserve_all_tensors=keep_intermediates,
        experimental_op_resolver_type=resolver,
    )
    interpreter.allocate_tensors()
    return interpreter


def op_counts(model: bytes) -> tuple[Counter, int]:
    """The model's builtin ops by name, and how many pieces of its graph the default (XNNPACK)
    delegate took: each op it leaves out cuts the graph once more."""
    ops = Counter(op["op_name"] for op in make_interpreter(model)._get_ops_details())
    return ops, ops.pop("DELEGATE", 0)


def run(model: bytes, images: np.ndarray, threads: int = 1, default_delegates: bool = True) -> np.ndarray:
    """Run a batch-1 model over N images one at a time; returns [N, ...] float outputs."""
    interpreter = make_interpreter(model, threads, default_delegates=default_delegates)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[np.newaxis].astype(np.float32))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(results)
