"""The least arena TensorFlow Lite Micro accepts for a model, found by bisection in a process of
its own; run by `tflm.arena_use` (`python tflm_probe.py HIGH < model.tflite` prints the size),
not by people.

Each size is tried in a forked child because on some sizes too small TFLM crashes (a segfault,
after 'All temp buffers must be freed before calling ResetTempAllocations()') instead of refusing
the model: the crash must read as 'too small', not end the caller. The forks happen here, in a
fresh process that holds nothing but TFLM, since forking the caller (JAX's threads) is unsafe.
"""

from __future__ import annotations

import os
import sys

from tflite_micro.python.tflite_micro import runtime


def accepts(model: bytes, arena_size: int) -> bool:
    """Whether TFLM sets `model` up in an arena of `arena_size` bytes."""
    pid = os.fork()
    if pid == 0:
        silent = os.open(os.devnull, os.O_WRONLY)  # TFLM prints each failed allocation
        os.dup2(silent, 1)
        os.dup2(silent, 2)
        try:
            runtime.Interpreter.from_bytes(model, arena_size=arena_size)
        except RuntimeError:
            os._exit(1)
        os._exit(0)  # no destructors: only whether it was set up matters
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def smallest(model: bytes, high: int) -> int:
    """The least size in 1..`high` that TFLM accepts (`high` must be accepted)."""
    low = 1
    while low < high:
        middle = (low + high) // 2
        if accepts(model, middle):
            high = middle
        else:
            low = middle + 1
    return low


if __name__ == "__main__":
    print(smallest(sys.stdin.buffer.read(), int(sys.argv[1])))
