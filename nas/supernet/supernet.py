"""The weight-sharing supernet over the `mbv3` space (Flax NNX), Once-for-All style.

One set of weights holds the largest network; a subnet is a choice of
  - depth: a stage's trailing blocks are skipped (`lax.cond` on a 0/1 flag: the identity
    branch costs nothing, and the flag is data, so another depth never recompiles);
  - kernel: the largest kernel's centre, through Once-for-All's learned kernel transforms
    (7x7 -> centre 5x5 -> 25x25 matrix; that 5x5 -> centre 3x3 -> 9x9 matrix). On XLA:CPU the
    depthwise conv switches (`lax.switch`) between the k*k-slice convolutions so a 3x3 subnet
    pays for 9 taps, not 49; on GPU/TPU the picked kernel is zero-padded to the largest size
    and run as one grouped convolution;
  - expansion and width: the first n channels of every tensor (a 0/1 mask applied after each
    batch norm and activation). A masked channel is exactly zero, so the next convolution sees
    what the subnet's narrower convolution would, and batch norm statistics are per channel, so
    masking after it equals the subnet's own batch norm.
Choices enter the compiled step only as the integer arrays of `Subnet` (channel counts, kernel
index, block on/off), so sampling another subnet never recompiles.

Everything is derived from the space's own `materialize`: the supernet's weights have the
shapes of the largest proxy network, and a subnet's arrays are read off its materialised
ArchSpec, so the masks, the exported spec and the latency tables cannot disagree.

Batch norm has no running averages during training (each subnet needs its own statistics):
`recalibrate` computes them for one subnet on training images before it is evaluated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

from nas.supernet import ops
from nas.supernet.layers import (
    BN_EPS,
    TRAIN,
    BatchNorm,
    Mode,
    eye,
    he_param,
    init_squeeze_excite,
    mask,
    small_param,
    zeros,
)
from search_spaces import ArchSpec, MBConv, get_space
from search_spaces.space import Choices, ChoiceSpace


@dataclass(frozen=True)
class SupernetConfig:
    """What the supernet is: a space (with its constructor arguments), the proxy resolution it
    trains at and the batch-norm epsilon. Stored in a run folder as JSON."""

    space: str = "mbv3"
    space_args: dict[str, Any] = dataclasses.field(default_factory=lambda: {"num_classes": 10, "in_channels": 1})
    resolution: int = 28
    bn_eps: float = BN_EPS

    def build_space(self) -> ChoiceSpace:
        return get_space(self.space, **self.space_args)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupernetConfig:
        return cls(**data)


class Subnet(NamedTuple):
    """A subnet as arrays (what the compiled step receives). Per elastic block slot: its
    expanded width `mid`, squeeze width `se`, output width `out`, kernel option index, whether
    it runs and whether it has an identity shortcut (a stage's first block has one only when
    the width makes its input and output equal); plus the stem width and the two head widths."""

    stem: Any
    mid: Any
    se: Any
    out: Any
    kernel: Any
    active: Any
    residual: Any
    final: Any
    last: Any


def stack_subnets(subnets: list[Subnet]) -> Subnet:
    return Subnet(*(np.stack(field) for field in zip(*subnets)))


class Layout:
    """The slots of the supernet for a space: stage s, block b, for every block the deepest
    subnet has; and how a subnet's ArchSpec maps onto them."""

    def __init__(self, config: SupernetConfig):
        self.config = config
        self.space = config.build_space()
        dims = {d.name: d for d in self.space.dimensions}
        self.stages = [name.split(".")[0] for name in dims if name.endswith(".depth")]
        self.kernels: tuple[int, ...] = tuple(dims[f"{self.stages[0]}.block0.kernel"].options)
        depth_options = dims[f"{self.stages[0]}.depth"].options
        self.max_depth, self.min_depth = max(depth_options), min(depth_options)
        self.largest_choices = self.space.from_values({d.name: max(d.options) for d in self.space.dimensions})
        self.smallest_choices = self.space.from_values({d.name: min(d.options) for d in self.space.dimensions})
        self.largest = self.materialize(self.largest_choices)
        self.slots = [(s, b) for s in range(len(self.stages)) for b in range(self.max_depth)]

    def materialize(self, choices: Choices) -> ArchSpec:
        return self.space.materialize(choices, resolution=self.config.resolution, proxy=True)

    def depths(self, choices: Choices) -> list[int]:
        values = self.space.values(choices)
        return [values[f"{stage}.depth"] for stage in self.stages]

    def slot_layers(self, spec: ArchSpec, depths: list[int]) -> list[MBConv | None]:
        """The spec's elastic blocks by slot (None where the stage is shallower)."""
        body = iter(spec.layers[1:])
        return [next(body) if b < depths[s] else None for s, b in self.slots]

    def subnet(self, choices: Choices) -> Subnet:
        spec = self.materialize(choices)
        per_slot = self.slot_layers(spec, self.depths(choices))
        fill = [(0, 0, 0, 0, False, False) if layer is None else self._block(layer) for layer in per_slot]
        mid, se, out, kernel, active, residual = (np.asarray(column) for column in zip(*fill))
        return Subnet(
            stem=np.int32(spec.stem[0].out_ch),
            mid=mid.astype(np.int32),
            se=se.astype(np.int32),
            out=out.astype(np.int32),
            kernel=kernel.astype(np.int32),
            active=active.astype(bool),
            residual=residual.astype(bool),
            final=np.int32(spec.head[0].out_ch),
            last=np.int32(spec.head[2].out_ch),
        )

    def _block(self, layer: MBConv) -> tuple[int, int, int, int, bool, bool]:
        return layer.mid_ch, layer.se_ch, layer.out_ch, self.kernels.index(layer.kernel), True, layer.has_residual


class ElasticMBConv(nnx.Module):
    """An MBConv at its largest (the layer given) whose width, kernel and expansion are chosen
    per call; `kernels` lists the kernel options, smallest first. `residual`: "always" (a
    stage's later blocks), "never" (stride 2) or "maybe" (a stage's first block at stride 1:
    it has a shortcut only when the subnet's width makes its input and output widths equal)."""

    def __init__(self, layer: MBConv, kernels: tuple[int, ...], eps: float, rng: np.random.Generator, residual: str):
        self.in_ch, self.mid_ch, self.out_ch, self.se_ch = layer.in_ch, layer.mid_ch, layer.out_ch, layer.se_ch
        self.stride, self.act, self.se_gate = layer.stride, layer.activation, layer.se_gate
        self.kernels = kernels
        self.residual = residual
        self.has_expand = bool(layer.expand_conv)
        if self.has_expand:
            self.expand = he_param(rng, (1, 1, self.in_ch, self.mid_ch), self.mid_ch)
            self.expand_bn = BatchNorm(self.mid_ch, eps)
        k = max(kernels)
        self.dw = he_param(rng, (k, k, self.mid_ch), k * k)
        # Once-for-All's kernel transformation matrices, identity at start: transforms[i] maps
        # the centre of the next larger kernel to kernels[i].
        self.transforms = nnx.List([nnx.Param(eye(s * s)) for s in kernels[:-1]])
        self.dw_bn = BatchNorm(self.mid_ch, eps)
        if self.se_ch:
            init_squeeze_excite(self, rng, self.mid_ch, self.se_ch)
        self.project = he_param(rng, (1, 1, self.mid_ch, self.out_ch), self.out_ch)
        self.project_bn = BatchNorm(self.out_ch, eps, zero_init=residual == "always")

    def depthwise_kernels(self) -> tuple[jax.Array, ...]:
        """The effective kernel of every option, smallest first (what a subnet exports)."""
        out = [self.dw[...]]
        for i in range(len(self.kernels) - 2, -1, -1):
            larger, k = out[0], self.kernels[i]
            start = (larger.shape[0] - k) // 2
            centre = larger[start : start + k, start : start + k].reshape(k * k, -1)
            out.insert(0, (self.transforms[i][...] @ centre).reshape(k, k, -1))
        return tuple(out)

    def __call__(self, x, mid, se, out, kernel, residual, mode: Mode, impl: str):
        mid_mask = mask(mid, self.mid_ch)
        y = x
        if self.has_expand:
            y = ops.conv(y, self.expand[...])
            y = ops.activation(self.act, self.expand_bn(y, mode)) * mid_mask
        kernels = self.depthwise_kernels()
        if len(kernels) == 1:
            y = ops.depthwise_conv(y, kernels[0], self.stride, impl)
        elif impl == "slices":
            y = ops.elastic_depthwise(y, kernels, kernel, self.stride)
        else:
            k = max(self.kernels)
            padded = [jnp.pad(w, [((k - w.shape[0]) // 2,) * 2] * 2 + [(0, 0)]) for w in kernels]
            y = ops.depthwise_conv(y, jnp.stack(padded)[kernel], self.stride, impl)
        y = ops.activation(self.act, self.dw_bn(y, mode)) * mid_mask
        if self.se_ch:
            s = y.mean((1, 2))
            s = jax.nn.relu(s @ self.se_reduce[...] + self.se_reduce_bias[...]) * mask(se, self.se_ch)
            s = ops.gate(self.se_gate, s @ self.se_expand[...] + self.se_expand_bias[...])
            y = y * s[:, None, None, :]
        y = self.project_bn(ops.conv(y, self.project[...]), mode) * mask(out, self.out_ch)
        if self.residual == "always":
            return x + y
        if self.residual == "maybe":
            # widths equal: x's channels past `out` are already zero; crop or pad to y's size
            x = (
                x[..., : self.out_ch]
                if self.in_ch >= self.out_ch
                else jnp.pad(x, [(0, 0)] * 3 + [(0, self.out_ch - self.in_ch)])
            )
            return y + x * residual
        return y


class Supernet(nnx.Module):
    def __init__(self, config: SupernetConfig, seed: int = 0):
        rng = np.random.default_rng(seed)
        layout = Layout(config)
        spec = layout.largest
        eps = self.bn_eps = config.bn_eps
        stem = spec.stem[0]
        self.stem_stride, self.stem_act, self.stem_ch = stem.stride, stem.activation, stem.out_ch
        self.stem = he_param(rng, (stem.kernel, stem.kernel, stem.in_ch, stem.out_ch), stem.kernel**2 * stem.out_ch)
        self.stem_bn = BatchNorm(stem.out_ch, eps)
        self.first = ElasticMBConv(spec.layers[0], (spec.layers[0].kernel,), eps, rng, "always")
        largest_blocks = layout.slot_layers(spec, layout.depths(layout.largest_choices))
        self.blocks = nnx.List(
            [
                ElasticMBConv(layer, layout.kernels, eps, rng, _residual(layer, b))
                for layer, (_, b) in zip(largest_blocks, layout.slots)
            ]
        )
        self.skippable = tuple(b >= layout.min_depth for _, b in layout.slots)
        final, pool, last = spec.head
        self.final_ch, self.last_ch = final.out_ch, last.out_ch
        self.final_act, self.last_act = final.activation, last.activation
        self.head = he_param(rng, (1, 1, final.in_ch, final.out_ch), final.out_ch)
        self.head_bn = BatchNorm(final.out_ch, eps)
        self.feature = he_param(rng, (last.in_ch, last.out_ch), last.out_ch)
        cls = spec.classifier
        self.classifier = small_param(rng, (cls.in_ch, cls.out_ch))
        self.classifier_bias = nnx.Param(zeros(cls.out_ch))

    def __call__(self, x: jax.Array, sub: Subnet, mode: Mode = TRAIN, impl: str | None = None) -> jax.Array:
        impl = impl or ops.default_depthwise_impl()
        x = ops.conv(x, self.stem[...], self.stem_stride)
        x = ops.activation(self.stem_act, self.stem_bn(x, mode)) * mask(sub.stem, self.stem_ch)
        x = self.first(x, sub.stem, 0, sub.stem, 0, True, mode, impl)
        for slot, block in enumerate(self.blocks):
            args = (sub.mid[slot], sub.se[slot], sub.out[slot], sub.kernel[slot], sub.residual[slot], mode, impl)
            if not self.skippable[slot]:
                x = block(x, *args)
            elif mode.kind == "calibrate":
                # batch-norm statistics are stored from inside the block, which a lax.cond
                # branch may not do; calibration needs no gradient, so a select is as good.
                x = jnp.where(sub.active[slot], block(x, *args), x)
            else:
                x = lax.cond(sub.active[slot], lambda x, block=block, args=args: block(x, *args), lambda x: x, x)
        x = self.head_bn(ops.conv(x, self.head[...]), mode)
        x = ops.activation(self.final_act, x) * mask(sub.final, self.final_ch)
        x = x.mean((1, 2))
        x = ops.activation(self.last_act, x @ self.feature[...]) * mask(sub.last, self.last_ch)
        return x @ self.classifier[...] + self.classifier_bias[...]


def _residual(layer: MBConv, block: int) -> str:
    if layer.stride != 1:
        return "never"
    return "always" if block > 0 else "maybe"
