"""Reads the CIFAR-10 python batches (cifar-10-batches-py) without running anything from them.

Each batch is a protocol-2 pickle of a dict with bytes keys: b"data" a uint8 numpy array, b"labels"
a list of ints, b"batch_label" and b"filenames" bytes (batches.meta: b"label_names" and two
ints). A pickle calls whatever globals it names, so `pickle.load` on a crafted data_batch_1 runs
its payload before anything can check it. The unpickler here admits only the globals this format
names, each answered by a function of this module rather than the real one (Python's pickle
documentation, "Restricting Globals"):
  numpy(._core|.core).multiarray._reconstruct, numpy.ndarray, numpy.dtype
                         how numpy pickles an array; rebuilt here from its shape, dtype and bytes
  _codecs.encode, __builtin__.bytes
                         how Python 3 writes bytes at protocol 2 (Python 2 wrote plain strings)
BUILD, the one opcode that sets state on what the others made, is admitted only on an array or
dtype being rebuilt, and a dtype must be a plain number type, so an object array (whose
elements would be nested pickles) is refused. The array is allocated from bytes already in the
file, so nothing larger than the file is made.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import read_bounded

MAX_BYTES = 1 << 30  # a real batch is 30 MiB; a bound on what is read into memory
NUMBER_KINDS = "biuf"  # bool, signed, unsigned, float: plain bytes, no Python objects inside


class CifarFileError(InputError):
    """A file that is not a CIFAR-10 python batch, or asks for anything else to be run."""


_NDARRAY = object()  # stands for numpy.ndarray, which a pickle only passes to _reconstruct


class _PendingArray:
    """What `_reconstruct` returns: an array whose shape, dtype and bytes come with BUILD."""


def _reconstruct(cls, shape, typecode) -> _PendingArray:
    if cls is not _NDARRAY:
        raise CifarFileError("an array of a class other than numpy.ndarray")
    return _PendingArray()


def _dtype(spec, align=False, copy=False) -> np.dtype:
    if isinstance(spec, bytes):  # Python 2 wrote 'u1' as a string, read back as bytes
        spec = spec.decode("ascii", "replace")
    # only a short type code such as 'u1' or 'f8' reaches numpy: no field lists, no objects
    if not (isinstance(spec, str) and spec.isalnum() and len(spec) <= 4):
        raise CifarFileError(f"a dtype that is not a number type: {str(spec)[:40]}")
    try:
        dtype = np.dtype(spec)
    except TypeError:
        raise CifarFileError(f"an unknown dtype {spec}") from None
    if dtype.kind not in NUMBER_KINDS:
        raise CifarFileError(f"a dtype that is not a number type: {spec} (an object array would run nested pickles)")
    return dtype


def _encode(text, encoding="latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CifarFileError("an _codecs.encode that is not how pickle writes bytes")
    return text.encode("latin1")


def _bytes(*args) -> bytes:
    if args:  # pickle writes only empty bytes this way
        raise CifarFileError("a bytes() call with arguments")
    return b""


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # numpy 1 (the files as shipped)
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("__builtin__", "bytes"): _bytes,
    ("builtins", "bytes"): _bytes,
}


def _array_from_state(state) -> np.ndarray:
    # numpy's ndarray.__reduce__ state: (version, shape, dtype, is_fortran, bytes); old numpy left out the version
    if isinstance(state, tuple) and len(state) == 5:
        state = state[1:]
    if not (isinstance(state, tuple) and len(state) == 4):
        raise CifarFileError("an array with a malformed state")
    shape, dtype, fortran, raw = state
    if not isinstance(dtype, np.dtype) or dtype.kind not in NUMBER_KINDS:
        raise CifarFileError("an array without a number dtype")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise CifarFileError("an array with a malformed shape")
    expected = int(np.prod(shape)) * dtype.itemsize
    if not isinstance(raw, bytes) or len(raw) != expected:
        raise CifarFileError(f"an array of shape {shape} and dtype {dtype} whose data is not {expected} bytes")
    return np.frombuffer(raw, dtype).reshape(shape, order="F" if fortran else "C").copy()


def _dtype_from_state(dtype: np.dtype, state) -> np.dtype:
    # numpy's dtype state: (version, byte order, subarray, names, fields, ...); a number type has none of the last three
    if not (isinstance(state, tuple) and len(state) >= 5 and state[2:5] == (None, None, None)):
        raise CifarFileError("a dtype with fields or a subarray")
    order = state[1].decode("ascii", "replace") if isinstance(state[1], bytes) else state[1]
    if order not in ("<", ">", "|", "="):
        raise CifarFileError(f"a dtype with byte order {str(order)[:8]}")
    return dtype.newbyteorder(order) if order in "<>" else dtype


class _Unpickler(pickle._Unpickler):  # the Python implementation: its opcode table can be changed
    def load_build(self) -> None:
        state = self.stack.pop()
        target = self.stack[-1]
        if type(target) is _PendingArray:
            built = _array_from_state(state)
        elif isinstance(target, np.dtype):
            built = _dtype_from_state(target, state)
        else:
            raise CifarFileError(f"refuses to set state on {type(target).__name__}")
        # the pending object may already be memoized; every later reference must see the built one
        self.stack[-1] = built
        for key, value in list(self.memo.items()):
            if value is target:
                self.memo[key] = built

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise CifarFileError(f"refuses the global {module}.{name} (a CIFAR-10 batch needs only numpy arrays)")
        return ALLOWED[(module, name)]


def read_batch(path: str | Path):
    """The unpickled contents of one CIFAR-10 python batch (or batches.meta); bytes stay bytes."""
    data = read_bounded(path, MAX_BYTES, CifarFileError)
    try:
        return _Unpickler(io.BytesIO(data), encoding="bytes").load()
    except CifarFileError:
        raise
    except Exception as exc:  # pickle raises many kinds on damaged data; none of them runs code here
        raise CifarFileError(f"not a CIFAR-10 python batch ({type(exc).__name__}: {exc})"[:200]) from None
