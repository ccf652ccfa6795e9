"""TensorFlow Lite for Microcontrollers run here, through PyPI's `tflite-micro` (its own
interpreter, reference kernels, the arena planner a board runs): the ground truth for the arena
`costs.footprint` predicts, and a second runtime for an exported int8 model.

TFLM prints what it allocated rather than returning it, from C++, to the process's standard
output and error: both are caught at the file descriptors while it runs. The smallest arena is
searched for in a process of its own (tflm_probe.py says why).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime

ALLOCATIONS = re.compile(r"Arena allocation (head|tail) (\d+) bytes")
LARGE_ARENA = 1 << 28  # room for any network here while the needed arena is found (untouched pages cost nothing)
PROBE = Path(__file__).with_name("tflm_probe.py")


@dataclass(frozen=True)
class ArenaUse:
    """What TFLM allocated for a model: the head (the planned activations and scratch buffers)
    and the tail (what persists: op data such as per-channel quantisation, node and tensor
    structs); `smallest` is the least arena_size it accepts (head + tail, give or take the
    buffer's alignment; a few KB more for some small int8 models, which need more room while
    being set up than in the end), found by bisection."""

    head: int
    tail: int
    smallest: int


class TFLMError(RuntimeError):
    """TFLM refused the model (an op it lacks, an arena too small)."""


def _quiet(call):
    """Run `call()` with file descriptors 1 and 2 caught; returns (its result, what it printed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 1)
        os.dup2(caught.fileno(), 2)
        try:
            result = call()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        caught.seek(0)
        return result, caught.read().decode("utf-8", "replace")


def _interpreter(model: bytes, arena_size: int):
    try:
        interpreter, _ = _quiet(lambda: runtime.Interpreter.from_bytes(model, arena_size=arena_size))
    except RuntimeError as exc:
        raise TFLMError(f"TFLM cannot run the model with a {arena_size}-byte arena: {exc}") from None
    return interpreter


def head_and_tail(model: bytes) -> tuple[int, int]:
    """The head and tail TFLM allocates for `model` (arena_use without the search for the
    smallest arena, a process of its own and some twenty forks)."""
    interpreter = _interpreter(model, LARGE_ARENA)
    _, printed = _quiet(interpreter.print_allocations)
    found = dict((name, int(value)) for name, value in ALLOCATIONS.findall(printed))
    if set(found) != {"head", "tail"}:
        raise TFLMError(f"TFLM printed no arena allocation: {printed[:200]!r}")
    return found["head"], found["tail"]


def arena_use(model: bytes) -> ArenaUse:
    """The head and tail TFLM allocates for `model`, and the smallest arena it accepts."""
    head, tail = head_and_tail(model)
    # the least size that works mostly lies under the needed bytes plus the buffer's alignment
    # (the probe searches above where it does not)
    high = head + tail + 64
    probe = subprocess.run([sys.executable, str(PROBE), str(high)], input=model, capture_output=True, check=False)
    if probe.returncode != 0 or not probe.stdout.strip().isdigit():
        reason = (probe.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise TFLMError(f"the search for TFLM's smallest arena failed (exit {probe.returncode}): {reason}")
    return ArenaUse(head, tail, int(probe.stdout))


def run(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """`model` run by TFLM on each of `inputs` (already in the model's input type), one at a
    time; their outputs stacked."""
    interpreter = _interpreter(model, LARGE_ARENA)
    outputs = []
    for x in inputs:
        interpreter.set_input(x[np.newaxis], 0)
        _quiet(interpreter.invoke)
        outputs.append(np.array(interpreter.get_output(0))[0])
    return np.stack(outputs)
