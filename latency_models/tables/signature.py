"""Canonical block signatures: the key every latency table row is stored under.

A block is one IR layer plus the tensor it receives plus the numeric precision it runs at.
The key spells out every field that changes the computation, so a row measured for one
search space serves every other space (or zoo model) that contains the same block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from search_spaces.arch_spec import MAX_CHANNELS, MAX_RESOLUTION, ArchSpec, Layer, layer_from_dict, layer_to_dict
from search_spaces.space import ChoiceSpace

PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class Block:
    """One measurable unit: a layer, the NHWC shape it receives (batch 1) and its precision."""

    layer: Layer
    in_shape: tuple[int, int, int]
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: unknown value {self.precision!r} (allowed: {', '.join(PRECISIONS)})")
        shape = tuple(int(x) for x in self.in_shape)
        h, w, c = shape  # ValueError unless three sizes
        if not (0 < h <= MAX_RESOLUTION and 0 < w <= MAX_RESOLUTION and 0 < c <= MAX_CHANNELS):
            raise ValueError(
                f"in_shape: {str(list(shape))[:60]} is no tensor a network has "
                f"(at most {MAX_RESOLUTION} px, {MAX_CHANNELS} channels)"
            )
        object.__setattr__(self, "in_shape", shape)

    @property
    def key(self) -> str:
        return block_key(self.layer, self.in_shape, self.precision)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": layer_to_dict(self.layer), "in_shape": list(self.in_shape), "precision": self.precision}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        return cls(layer_from_dict(data["layer"], "block.layer"), tuple(data["in_shape"]), data["precision"])


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def block_key(layer: Layer, in_shape: tuple[int, int, int], precision: str) -> str:
    """e.g. 'mbconv 56x56x24 out_ch=32 kernel=5 stride=2 expansion=3 mid_ch=72 se_ch=0
    activation=relu groups=1 expand_conv=true fp32'. Fields that cannot matter are left out
    (the SE gate when there is no SE), so equal computations get equal keys."""
    h, w, c = in_shape
    parts = [layer.op, f"{h}x{w}x{c}"]
    for f in dataclasses.fields(layer):
        if f.name in ("in_ch", "channels"):
            continue  # the input shape carries it
        if f.name == "se_gate" and not getattr(layer, "se_ch", 0):
            continue
        parts.append(f"{f.name}={_format(getattr(layer, f.name))}")
    parts.append(precision)
    return " ".join(parts)


def spec_blocks(spec: ArchSpec, precision: str = "fp32") -> list[Block]:
    """Every layer of the spec (stem, body, head, classifier) as a block, in order."""
    return [Block(s.layer, s.in_shape, precision) for s in spec.shapes]


def space_blocks(
    space: ChoiceSpace,
    resolution: int | None = None,
    precision: str = "fp32",
    where: dict[str, Any] | None = None,
    proxy: bool = False,
) -> list[Block]:
    """Every distinct block of the space, its networks built at `resolution` (default: each
    choice's own) and in proxy form if asked, in a stable order. `where` keeps only the choices
    with those values, e.g. {"width": 1.2} for the blocks of Once-for-All's w1.2 supernet."""
    blocks: dict[str, Block] = {}
    for choices in space.covering_choices():
        values = space.values(choices)
        if all(values[name] == value for name, value in (where or {}).items()):
            for block in spec_blocks(space.materialize(choices, resolution=resolution, proxy=proxy), precision):
                blocks.setdefault(block.key, block)
    return list(blocks.values())
