"""The TFLite interpreter: ai_edge_litert (maintained, numpy 2 compatible), falling back to
tflite_runtime where only that is installed (the two share the Interpreter API)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Interface:
    """A model's input or output tensor as its caller sees it: float32, or int8 (an int8 model
    with integer input and output) holding real values as scale * (q - zero_point)."""

    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def of(cls, details: dict[str, Any]) -> Interface:
        dtype = np.dtype(details["dtype"]).name
        if dtype == "float32":
            return cls(dtype)
        scale, zero_point = details["quantization"]
        return cls(dtype, float(scale), int(zero_point))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Real values as this tensor holds them."""
        if self.scale is None:
            return np.asarray(x, np.float32)
        limits = np.iinfo(self.dtype)
        v = np.asarray(x, np.float64) / self.scale
        # half away from zero, as TFLite's QUANTIZE rounds (std::round), not numpy's half to even
        q = np.trunc(v + np.copysign(0.5, v)) + self.zero_point
        return np.clip(q, limits.min, limits.max).astype(self.dtype)

    def decode(self, q: np.ndarray) -> np.ndarray:
        """This tensor's contents as real values (float32), a copy: the interpreter reuses its own."""
        if self.scale is None:
            return np.array(q, np.float32)
        return ((np.asarray(q, np.float32) - self.zero_point) * self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        if self.scale is None:
            return {"dtype": self.dtype}
        return {"dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}


def interface(model: bytes) -> tuple[Interface, Interface]:
    """(input, output) of a model with one of each."""
    interpreter = make_interpreter(model)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    return Interface.of(inp), Interface.of(out)


def run(model: bytes, images: np.ndarray, threads: int = 1, default_delegates: bool = True) -> np.ndarray:
    """Run a batch-1 model over N images one at a time; returns [N, ...] float outputs. A model
    with integer input and output is fed the images quantised and its outputs dequantised, with
    its own scales and zero points, so every model is compared on real values."""
    interpreter = make_interpreter(model, threads, default_delegates=default_delegates)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    given, returned = Interface.of(inp), Interface.of(out)
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], given.encode(image[np.newaxis]))
        interpreter.invoke()
        results.append(returned.decode(interpreter.get_tensor(out["index"])[0]))
    return np.stack(results)
