"""Array-level building blocks shared by the supernet and the plain per-spec model: activations,
SAME padding as TensorFlow/TFLite define it, and a depthwise convolution chosen per backend.

Why per backend (measured on this 2-core x86 machine, see nas/README.md): on XLA:CPU a depthwise conv written with
`feature_group_count` is 5-38x slower in forward+backward than the same conv written as a sum
of k*k shifted slices; on GPU/TPU the grouped conv is the fast one. Both give identical outputs.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

# "portable": grouped depthwise and every convolution as a convolution, which TensorFlow's
# converter lowers to TFLite ops (the cross-check of nas/export/tf_crosscheck.py)
DEPTHWISE_IMPLS = ("slices", "grouped", "portable")


def activation(name: str, x: jax.Array) -> jax.Array:
    if name == "none":
        return x
    if name == "relu":
        return jax.nn.relu(x)
    if name == "relu6":
        return jax.nn.relu6(x)
    if name == "hswish":
        return x * jax.nn.relu6(x + 3.0) / 6.0
    if name == "swish":
        return jax.nn.silu(x)
    raise ValueError(f"unknown activation {name!r}")


def gate(name: str, x: jax.Array) -> jax.Array:
    """The squeeze-excite gate: MobileNetV3's hard sigmoid, or the logistic one."""
    if name == "hsigmoid":
        return jax.nn.relu6(x + 3.0) / 6.0
    if name == "sigmoid":
        return jax.nn.sigmoid(x)
    raise ValueError(f"unknown SE gate {name!r}")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME: out = ceil(size / stride), the odd pixel of padding goes after. This is
    what the TFLite emitter uses, so exported weights see the same borders as in training."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def default_depthwise_impl() -> str:
    return "slices" if jax.default_backend() == "cpu" else "grouped"


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1, impl: str | None = None) -> jax.Array:
    """Depthwise kxk convolution, SAME padding, NHWC input, kernel [k, k, C]."""
    impl = impl or default_depthwise_impl()
    if impl in ("grouped", "portable"):
        return lax.conv_general_dilated(
            x,
            kernel[:, :, None, :],
            (stride, stride),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=x.shape[-1],
        )
    if impl != "slices":
        raise ValueError(f"unknown depthwise implementation {impl!r} (known: {', '.join(DEPTHWISE_IMPLS)})")
    return _dw_slices(x, _vary_like(kernel, x), stride)


def _varying(x: jax.Array) -> frozenset:
    manual = getattr(jax.typeof(x), "manual_axis_type", None)  # None outside shard_map
    return frozenset(manual.varying) if manual is not None else frozenset()


def _vary_like(kernel: jax.Array, x: jax.Array) -> jax.Array:
    """Under shard_map, mark a replicated kernel as varying over the axes the input varies over.
    A custom gradient rule must return a cotangent of its input's type, and the kernel gradient
    of one shard varies; the cast's own transpose then sums it over the mesh, as autodiff would."""
    axes = tuple(_varying(x) - _varying(kernel))
    return lax.pcast(kernel, axes, to="varying") if axes else kernel


def elastic_depthwise(x: jax.Array, kernels: tuple[jax.Array, ...], index: jax.Array, stride: int = 1) -> jax.Array:
    """Depthwise conv with one of several kernels (of different sizes) picked by a traced index.

    Only the picked kernel's k*k shifted slices run, forward and backward (`lax.switch`), so on
    XLA:CPU a 3x3 subnet costs a fifth of a 7x7 one and changing the index never recompiles."""
    return _elastic_dw(x, tuple(_vary_like(kernel, x) for kernel in kernels), index, stride)


def _windows(xp: jax.Array, k: int, stride: int, out_hw: tuple[int, int]):
    """The k*k strided windows of a padded input that a SAME depthwise conv multiplies."""
    n, _, _, c = xp.shape
    oh, ow = out_hw
    for i in range(k):
        for j in range(k):
            limit = (n, i + (oh - 1) * stride + 1, j + (ow - 1) * stride + 1, c)
            yield i, j, lax.slice(xp, (0, i, j, 0), limit, (1, stride, stride, 1))


def _pad_same(x: jax.Array, k: int, stride: int) -> jax.Array:
    _, h, w, _ = x.shape
    return jnp.pad(x, ((0, 0), same_padding(h, k, stride), same_padding(w, k, stride), (0, 0)))


def _out_hw(x: jax.Array, stride: int) -> tuple[int, int]:
    return -(-x.shape[1] // stride), -(-x.shape[2] // stride)


def _correlate(xp: jax.Array, kernel: jax.Array, stride: int, out_hw: tuple[int, int]) -> jax.Array:
    k = kernel.shape[0]
    out = None
    for i, j, window in _windows(xp, k, stride, out_hw):
        term = window * kernel[i, j]
        out = term if out is None else out + term
    return out


def _dw_forward(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return _correlate(_pad_same(x, kernel.shape[0], stride), kernel, stride, _out_hw(x, stride))


def _dw_input_grad(g: jax.Array, kernel: jax.Array, stride: int, in_hw: tuple[int, int]) -> jax.Array:
    """The input gradient as one correlation of the flipped kernel with the output gradient,
    spread out by the stride (zeros between its pixels) and padded so the borders line up.
    Autodiff's k*k transposed strided slices were 10x slower than the forward on XLA:CPU."""
    k = kernel.shape[0]
    pads = [(0, 0, 0)]
    for size in in_hw:
        before = same_padding(size, k, stride)[0]
        out = -(-size // stride)
        # dilated length (out - 1) * stride + 1, placed k - 1 - before from the left so that
        # the result has `size` pixels; a negative pad crops
        pads.append((k - 1 - before, size + before - (out - 1) * stride - 1, stride - 1))
    pads.append((0, 0, 0))
    gp = lax.pad(g, jnp.zeros((), g.dtype), pads)
    return _correlate(gp, kernel[::-1, ::-1], 1, in_hw)


# XLA:CPU chunk of the batch for the kernel gradient: the k*k products and reductions re-read the
# same input chunk, so it should stay in the L2 cache (measured: 4-5x faster than whole-batch
# reductions at 14x14x192 and 7x7x576; 300-400 KB chunks were best).
_CHUNK_BYTES = 384 * 1024


def _dw_kernel_grad(x: jax.Array, g: jax.Array, k: int, stride: int) -> jax.Array:
    n, h, w, c = x.shape
    per_image = h * w * c * x.dtype.itemsize
    chunk = max(1, min(n, _CHUNK_BYTES // max(per_image, 1)))
    while n % chunk:
        chunk -= 1
    out_hw = g.shape[1:3]

    def body(_, xg):
        xc, gc = xg
        taps = [(window * gc).sum((0, 1, 2)) for _, _, window in _windows(_pad_same(xc, k, stride), k, stride, out_hw)]
        return None, jnp.stack(taps).reshape(k, k, c)

    # Per-chunk sums are stacked and added afterwards rather than carried: a carry would need
    # its device-variance declared under shard_map, and the stack is small.
    if chunk == n:  # one chunk: no loop (smaller programs compile faster)
        return body(None, (x, g))[1]
    xs = x.reshape(n // chunk, chunk, h, w, c)
    gs = g.reshape(n // chunk, chunk, *g.shape[1:])
    return lax.scan(body, None, (xs, gs))[1].sum(0)


def _dw_backward(x: jax.Array, kernel: jax.Array, g: jax.Array, stride: int) -> tuple[jax.Array, jax.Array]:
    dx = _dw_input_grad(g, kernel, stride, x.shape[1:3])
    return dx, _dw_kernel_grad(x, g, kernel.shape[0], stride)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _dw_slices(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return _dw_forward(x, kernel, stride)


def _dw_slices_fwd(x, kernel, stride):
    return _dw_forward(x, kernel, stride), (x, kernel)


def _dw_slices_bwd(stride, residuals, g):
    x, kernel = residuals
    return _dw_backward(x, kernel, g, stride)


_dw_slices.defvjp(_dw_slices_fwd, _dw_slices_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _elastic_dw(x, kernels, index, stride):
    branches = [partial(_dw_forward, kernel=kernel, stride=stride) for kernel in kernels]
    return lax.switch(index, branches, x)


def _elastic_dw_fwd(x, kernels, index, stride):
    return _elastic_dw(x, kernels, index, stride), (x, kernels, index)


def _elastic_dw_bwd(stride, residuals, g):
    # A custom rule keeps one copy of the input as residual (autodiff through lax.switch would
    # keep one per branch, zero-filled when the branch is not taken).
    x, kernels, index = residuals
    kmax = max(kernel.shape[0] for kernel in kernels)

    def branch(kernel):
        def grads(x, g):
            dx, dk = _dw_backward(x, kernel, g, stride)
            pad = (kmax - kernel.shape[0]) // 2
            # every branch returns the same shapes: the kernel gradient centred in the largest
            return dx, jnp.pad(dk, ((pad, pad), (pad, pad), (0, 0)))

        return grads

    dx, dk = lax.switch(index, [branch(kernel) for kernel in kernels], x, g)
    dks = []
    for i, kernel in enumerate(kernels):
        start = (kmax - kernel.shape[0]) // 2
        centre = dk[start : start + kernel.shape[0], start : start + kernel.shape[0]]
        dks.append(jnp.where(index == i, centre, 0.0))
    return dx, tuple(dks), None


_elastic_dw.defvjp(_elastic_dw_fwd, _elastic_dw_bwd)


def conv(x: jax.Array, kernel: jax.Array, stride: int = 1, groups: int = 1, impl: str | None = None) -> jax.Array:
    """Dense (or grouped) convolution, SAME padding, kernel [k, k, in/groups, out]. A 1x1
    stride-1 convolution is written as a matrix product, which XLA:CPU runs fastest, except
    with impl "portable" (TFLite's converter cannot lower that rank-4 product)."""
    if impl != "portable" and kernel.shape[0] == 1 and stride == 1 and groups == 1:
        return jnp.einsum("nhwc,cd->nhwd", x, kernel[0, 0])
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups
    )
