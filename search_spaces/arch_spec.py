"""ArchSpec: the one intermediate representation of a network.

Every part of the framework speaks ArchSpec: search spaces produce it; the latency tables,
the supernet, the exporter and the zoo consume it. An ArchSpec is an explicit, ordered list
of layers (stem, body, head) plus a classifier and the input resolution. Values are frozen
dataclasses; a spec that exists has passed validation, so consumers never re-check it.

Tensor layout is NHWC. Spatial sizes use SAME padding: out = ceil(in / stride), which equals
PyTorch's `padding = kernel // 2` for the odd kernels allowed here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from common.errors import InputError
from common.files import parse_json, read_json
from common.values import is_number
from search_spaces.graph import spec_to_graph
from search_spaces.layer_registry import LayerRegistry

if TYPE_CHECKING:
    import networkx as nx

SCHEMA_VERSION = 1

ACTIVATIONS = ("none", "relu", "relu6", "hswish", "swish")
SE_GATES = ("hsigmoid", "sigmoid")
SE_SITES = ("output", "middle")  # where a residual block's squeeze-excite sits (ResBlock)
POOL_KINDS = ("avg", "max")


class SpecError(InputError):
    """An invalid architecture: the message names the offending field (and layer)."""


# What a real network can have: larger values are typing mistakes or damaged files, and would
# make shape inference, counting or emitting run for minutes or allocate without bound.
MAX_RESOLUTION = 4096
MAX_CHANNELS = 65536
MAX_KERNEL = 31
MAX_LAYERS = 2000


def _check_int(owner: str, name: str, value: Any, minimum: int = 1, maximum: int = MAX_CHANNELS) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{owner}.{name}: expected an integer, got {str(value)[:40]!r}")
    if value < minimum:
        raise SpecError(f"{owner}.{name}: must be >= {minimum}, got {value}")
    if value > maximum:
        raise SpecError(f"{owner}.{name}: must be <= {maximum}, got {str(value)[:40]}")


def _check_choice(owner: str, name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise SpecError(f"{owner}.{name}: unknown value {value!r} (allowed: {', '.join(map(str, allowed))})")


def _check_bool(owner: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{owner}.{name}: expected true or false, got {value!r}")


def _check_kernel_stride(owner: str, kernel: Any, stride: Any) -> None:
    _check_int(owner, "kernel", kernel, maximum=MAX_KERNEL)
    if kernel % 2 == 0:
        raise SpecError(f"{owner}.kernel: must be odd (SAME padding), got {kernel}")
    _check_int(owner, "stride", stride)
    if stride not in (1, 2):
        raise SpecError(f"{owner}.stride: must be 1 or 2, got {stride}")


def _check_expansion(layer: Any) -> None:
    """A nominal expansion ratio >= 1, stored as a float: a float field must stay a float so JSON
    round-trips compare equal."""
    value = layer.expansion
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{layer.op}.expansion: expected a number, got {value!r}")
    if not is_number(value) or value < 1:
        raise SpecError(f"{layer.op}.expansion: must be >= 1, got {value}")
    object.__setattr__(layer, "expansion", float(value))


@dataclass(frozen=True)
class Conv:
    """Plain convolution, optionally grouped, followed by batch norm and an activation."""

    op: ClassVar[str] = "conv"
    in_ch: int
    out_ch: int
    kernel: int
    stride: int = 1
    groups: int = 1
    activation: str = "relu"
    batch_norm: bool = True
    bias: bool = False

    def __post_init__(self) -> None:
        _check_int(self.op, "in_ch", self.in_ch)
        _check_int(self.op, "out_ch", self.out_ch)
        _check_kernel_stride(self.op, self.kernel, self.stride)
        _check_int(self.op, "groups", self.groups)
        if self.in_ch % self.groups or self.out_ch % self.groups:
            raise SpecError(
                f"{self.op}.groups: {self.groups} does not divide in_ch {self.in_ch} and out_ch {self.out_ch}"
            )
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)
        _check_bool(self.op, "batch_norm", self.batch_norm)
        _check_bool(self.op, "bias", self.bias)


@dataclass(frozen=True)
class DWSeparable:
    """MobileNetV1 block: depthwise conv + BN + act, then pointwise conv + BN + act."""

    op: ClassVar[str] = "dwsep"
    in_ch: int
    out_ch: int
    kernel: int = 3
    stride: int = 1
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_int(self.op, "in_ch", self.in_ch)
        _check_int(self.op, "out_ch", self.out_ch)
        _check_kernel_stride(self.op, self.kernel, self.stride)
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class MBConv:
    """Inverted residual block (MobileNetV2/V3, MnasNet, ProxylessNAS, FBNet, EfficientNet).

    expand 1x1 (absent when expansion == 1) -> depthwise kxk -> optional squeeze-excite ->
    linear project 1x1; identity shortcut when stride == 1 and in_ch == out_ch.
    `mid_ch` is explicit because published networks round it differently (MobileNetV3 uses
    72 = 24 * 3 but 184 = 80 * 2.3); `expansion` is the nominal ratio a search space chose and
    latency tables key on. `se_ch` is the squeeze width (0: no SE), again explicit because
    MobileNetV3 derives it from mid_ch and MnasNet/EfficientNet from in_ch. `groups` groups
    both 1x1 convs (FBNet's g2 ops). `expand_conv` defaults to "expansion != 1"; FBNet's e1
    blocks keep a 1x1 conv at expansion 1, so it can be set explicitly.
    """

    op: ClassVar[str] = "mbconv"
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    expansion: float
    mid_ch: int
    se_ch: int = 0
    activation: str = "relu6"
    se_gate: str = "hsigmoid"
    groups: int = 1
    expand_conv: bool | None = None

    def __post_init__(self) -> None:
        _check_int(self.op, "in_ch", self.in_ch)
        _check_int(self.op, "out_ch", self.out_ch)
        _check_kernel_stride(self.op, self.kernel, self.stride)
        _check_expansion(self)
        _check_int(self.op, "mid_ch", self.mid_ch)
        if self.expand_conv is None:
            object.__setattr__(self, "expand_conv", self.expansion != 1)
        _check_bool(self.op, "expand_conv", self.expand_conv)
        if not self.expand_conv and self.expansion != 1:
            raise SpecError(f"{self.op}.expand_conv: must be true when expansion is {self.expansion}")
        if self.expansion == 1 and self.mid_ch != self.in_ch:
            raise SpecError(f"{self.op}.mid_ch: must equal in_ch {self.in_ch} when expansion is 1, got {self.mid_ch}")
        _check_int(self.op, "se_ch", self.se_ch, minimum=0)
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)
        _check_choice(self.op, "se_gate", self.se_gate, SE_GATES)
        _check_int(self.op, "groups", self.groups)
        for name in ("in_ch", "mid_ch", "out_ch"):
            if getattr(self, name) % self.groups:
                raise SpecError(f"{self.op}.groups: {self.groups} does not divide {name} {getattr(self, name)}")

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


@dataclass(frozen=True)
class ResBlock:
    """Residual block of the ResNet family (ResNet, PreResNet, SE-ResNet, ResNeXt, RegNet).

    basic:      kxk conv (in -> mid, stride) -> kxk conv (mid -> out)
    bottleneck: 1x1 conv (in -> mid) -> kxk conv (mid -> mid, stride, `groups`) -> 1x1 conv (mid -> out)
    Each conv has batch norm; all but the last have `activation`. The stride sits in the first
    kxk conv (torchvision's "ResNet v1.5", pytorchcv's `conv1_stride=False`), as in every
    measured model this block builds. The shortcut is the identity, or a 1x1 conv (stride, BN,
    no activation) when the block strides or changes width: a projection shortcut.

    `se_ch` > 0 adds squeeze-excite (ReLU, then the `se_gate`) of width se_ch on the body's
    output before the add (`se_site="output"`, SE-ResNet) or on the kxk conv's output
    (`se_site="middle"`, RegNetY). Post-activation (`preact=False`): `activation` after the add.
    Pre-activation (`preact=True`, PreResNet): batch norm + `activation` on the block's input
    first, which the body and a projection shortcut read, and nothing after the add; only an
    identity shortcut reads the raw input.
    """

    op: ClassVar[str] = "resblock"
    in_ch: int
    out_ch: int
    stride: int
    mid_ch: int
    bottleneck: bool = False
    kernel: int = 3
    groups: int = 1
    se_ch: int = 0
    se_site: str = "output"
    se_gate: str = "sigmoid"
    preact: bool = False
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_int(self.op, "in_ch", self.in_ch)
        _check_int(self.op, "out_ch", self.out_ch)
        _check_int(self.op, "mid_ch", self.mid_ch)
        _check_bool(self.op, "bottleneck", self.bottleneck)
        _check_kernel_stride(self.op, self.kernel, self.stride)
        _check_int(self.op, "groups", self.groups)
        if not self.bottleneck and self.groups != 1:
            raise SpecError(f"{self.op}.groups: must be 1 in a basic block (no grouped conv), got {self.groups}")
        if self.mid_ch % self.groups:
            raise SpecError(f"{self.op}.groups: {self.groups} does not divide mid_ch {self.mid_ch}")
        _check_int(self.op, "se_ch", self.se_ch, minimum=0)
        _check_choice(self.op, "se_site", self.se_site, SE_SITES)
        _check_choice(self.op, "se_gate", self.se_gate, SE_GATES)
        _check_bool(self.op, "preact", self.preact)
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)

    @property
    def projects(self) -> bool:
        """Whether the shortcut is a 1x1 conv (the block strides or changes width)."""
        return self.stride != 1 or self.in_ch != self.out_ch

    @property
    def se_width(self) -> int:
        """The channels the squeeze-excite gates."""
        return self.mid_ch if self.se_site == "middle" else self.out_ch


@dataclass(frozen=True)
class FusedMBConv:
    """Fused inverted residual block (EfficientNet-EdgeTPU, EfficientNetV2): a kxk conv
    (in -> mid, BN, activation) in place of MBConv's 1x1 expand + depthwise pair, optional
    squeeze-excite on its output (as MBConv's), then a linear 1x1 projection (mid -> out, BN).

    The stride sits in the kxk conv, or in the projection when `project_stride` is set:
    pytorchcv's EfficientNet-EdgeTPU (efficientnetedge.py, EffiEdgeResUnit) puts it there, so
    its kxk conv runs at the input's resolution, and the measured models are built that way.
    `residual`: an identity shortcut; by default when stride == 1 and in_ch == out_ch, and it
    can be switched off (EdgeTPU's first stage has none). `expansion` is the nominal ratio,
    `mid_ch` the width actually built."""

    op: ClassVar[str] = "fused_mbconv"
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    expansion: float
    mid_ch: int
    se_ch: int = 0
    activation: str = "relu"
    se_gate: str = "sigmoid"
    project_stride: bool = False
    residual: bool | None = None

    def __post_init__(self) -> None:
        _check_int(self.op, "in_ch", self.in_ch)
        _check_int(self.op, "out_ch", self.out_ch)
        _check_kernel_stride(self.op, self.kernel, self.stride)
        _check_expansion(self)
        _check_int(self.op, "mid_ch", self.mid_ch)
        _check_int(self.op, "se_ch", self.se_ch, minimum=0)
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)
        _check_choice(self.op, "se_gate", self.se_gate, SE_GATES)
        _check_bool(self.op, "project_stride", self.project_stride)
        shapes_match = self.stride == 1 and self.in_ch == self.out_ch
        if self.residual is None:
            object.__setattr__(self, "residual", shapes_match)
        _check_bool(self.op, "residual", self.residual)
        if self.residual and not shapes_match:
            raise SpecError(f"{self.op}.residual: an identity shortcut needs stride 1 and in_ch == out_ch")

    @property
    def has_residual(self) -> bool:
        return self.residual

    @property
    def kxk_stride(self) -> int:
        """The stride of the kxk conv (1 when the projection strides)."""
        return 1 if self.project_stride else self.stride


class _KeepsChannels:
    """Layers that pass their `channels` through unchanged."""

    channels: int

    @property
    def in_ch(self) -> int:
        return self.channels

    @property
    def out_ch(self) -> int:
        return self.channels


@dataclass(frozen=True)
class Pool(_KeepsChannels):
    """Local pooling window (kernel, stride) over `channels` channels."""

    op: ClassVar[str] = "pool"
    channels: int
    kind: str = "max"
    kernel: int = 3
    stride: int = 2

    def __post_init__(self) -> None:
        _check_int(self.op, "channels", self.channels)
        _check_choice(self.op, "kind", self.kind, POOL_KINDS)
        _check_kernel_stride(self.op, self.kernel, self.stride)


@dataclass(frozen=True)
class GlobalPool(_KeepsChannels):
    """Global average pooling to 1x1 (keeps the channel dimension)."""

    op: ClassVar[str] = "global_pool"
    channels: int

    def __post_init__(self) -> None:
        _check_int(self.op, "channels", self.channels)


@dataclass(frozen=True)
class Norm(_KeepsChannels):
    """A batch norm of its own, then an activation: the pre-activation networks' last
    BN + ReLU before pooling. Nothing to fold it into, so it runs as a per-channel scale and
    shift."""

    op: ClassVar[str] = "norm"
    channels: int
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_int(self.op, "channels", self.channels)
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)


@dataclass(frozen=True)
class Identity(_KeepsChannels):
    """A no-op layer: a searched "skip" that keeps the shape. It computes nothing, but it stays
    in the spec because measured tables (HW-NAS-Bench's FBNet one) time it as an op."""

    op: ClassVar[str] = "identity"
    channels: int

    def __post_init__(self) -> None:
        _check_int(self.op, "channels", self.channels)


@dataclass(frozen=True)
class Dense:
    """Fully connected layer on a 1x1 feature map (the classifier, or an MLP head)."""

    op: ClassVar[str] = "dense"
    in_ch: int
    out_ch: int
    activation: str = "none"
    bias: bool = True

    def __post_init__(self) -> None:
        _check_int(self.op, "in_ch", self.in_ch)
        _check_int(self.op, "out_ch", self.out_ch)
        _check_choice(self.op, "activation", self.activation, ACTIVATIONS)
        _check_bool(self.op, "bias", self.bias)


Layer = Conv | DWSeparable | MBConv | FusedMBConv | ResBlock | Pool | GlobalPool | Norm | Identity | Dense
LAYER_TYPES: dict[str, type] = {
    cls.op: cls for cls in (Conv, DWSeparable, MBConv, FusedMBConv, ResBlock, Pool, GlobalPool, Norm, Identity, Dense)
}
SECTIONS = ("stem", "layers", "head")


@dataclass(frozen=True)
class LayerShape:
    """Where a layer sits and the NHWC tensor shapes (batch omitted) it consumes and produces."""

    path: str
    layer: Layer
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]


# Each layer type's output shape: (layer, NHWC input shape without the batch) -> output shape.
OUTPUT_SHAPES: LayerRegistry[Callable[[Layer, tuple[int, int, int]], tuple[int, int, int]]] = LayerRegistry(
    "the output shape", __name__
)


def layer_output_shape(layer: Layer, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    return OUTPUT_SHAPES.handler(layer)(layer, in_shape)


@OUTPUT_SHAPES.register("conv", "dwsep", "mbconv", "fused_mbconv", "resblock", "pool")
def _strided_shape(
    layer: Conv | DWSeparable | MBConv | FusedMBConv | ResBlock | Pool, in_shape: tuple[int, int, int]
) -> tuple[int, int, int]:
    h, w, _ = in_shape
    stride = layer.stride
    return (-(-h // stride), -(-w // stride), layer.out_ch)


@OUTPUT_SHAPES.register("global_pool", "dense")
def _pooled_shape(layer: GlobalPool | Dense, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    return (1, 1, layer.out_ch)


@OUTPUT_SHAPES.register("identity", "norm")
def _same_shape(layer: Identity | Norm, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    return in_shape


@dataclass(frozen=True)
class ArchSpec:
    """A whole classification network at one input resolution.

    `name` is a label only: it is excluded from `content_hash`, so two specs describing the
    same computation hash alike whatever they are called.
    """

    resolution: int
    stem: tuple[Layer, ...]
    layers: tuple[Layer, ...]
    head: tuple[Layer, ...]
    classifier: Dense
    in_channels: int = 3
    name: str = ""
    _shapes: tuple[LayerShape, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_int("spec", "resolution", self.resolution, maximum=MAX_RESOLUTION)
        _check_int("spec", "in_channels", self.in_channels)
        if not isinstance(self.name, str):
            raise SpecError(f"spec.name: expected a string, got {self.name!r}")
        for section in SECTIONS:
            value = getattr(self, section)
            if isinstance(value, list):
                object.__setattr__(self, section, tuple(value))
            elif not isinstance(value, tuple):
                raise SpecError(f"spec.{section}: expected a list of layers, got {type(value).__name__}")
            if len(getattr(self, section)) > MAX_LAYERS:
                raise SpecError(f"spec.{section}: more than {MAX_LAYERS} layers")
            for i, layer in enumerate(getattr(self, section)):
                if type(layer) not in LAYER_TYPES.values():
                    raise SpecError(f"{section}[{i}]: not a layer: {layer!r}")
        if not isinstance(self.classifier, Dense):
            raise SpecError(f"classifier: must be a dense layer, got {self.classifier!r}")
        if not self.layers:
            raise SpecError("layers: a network needs at least one layer")
        object.__setattr__(self, "_shapes", self._infer_shapes())

    def located_layers(self) -> list[tuple[str, Layer]]:
        """Every layer in execution order with its path, e.g. ('layers[3]', MBConv(...))."""
        out = [(f"{s}[{i}]", layer) for s in SECTIONS for i, layer in enumerate(getattr(self, s))]
        out.append(("classifier", self.classifier))
        return out

    def _infer_shapes(self) -> tuple[LayerShape, ...]:
        shape = (self.resolution, self.resolution, self.in_channels)
        shapes = []
        for path, layer in self.located_layers():
            if layer.in_ch != shape[2]:
                raise SpecError(
                    f"{path} ({layer.op}).in_ch: {layer.in_ch} does not match the {shape[2]} channels it receives"
                )
            if isinstance(layer, Dense) and shape[:2] != (1, 1):
                raise SpecError(
                    f"{path} (dense): needs a 1x1 input (add a global_pool before it), got {shape[0]}x{shape[1]}"
                )
            out = layer_output_shape(layer, shape)
            shapes.append(LayerShape(path, layer, shape, out))
            shape = out
        return tuple(shapes)

    @property
    def shapes(self) -> tuple[LayerShape, ...]:
        return self._shapes

    @property
    def num_classes(self) -> int:
        return self.classifier.out_ch

    def with_name(self, name: str) -> ArchSpec:
        return dataclasses.replace(self, name=name)

    def with_in_channels(self, in_channels: int) -> ArchSpec:
        """The same network fed `in_channels` input channels (its first layer's input changed)."""
        first, *rest = self.stem
        return dataclasses.replace(
            self, in_channels=in_channels, stem=(dataclasses.replace(first, in_ch=in_channels), *rest)
        )

    # --- serialisation -------------------------------------------------------------------

    def to_dict(self, include_name: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        if include_name:
            out["name"] = self.name
        out["resolution"] = self.resolution
        out["in_channels"] = self.in_channels
        for section in SECTIONS:
            out[section] = [layer_to_dict(layer) for layer in getattr(self, section)]
        out["classifier"] = layer_to_dict(self.classifier)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        if not isinstance(data, dict):
            raise SpecError(f"spec: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SpecError(f"schema_version: this program reads version {SCHEMA_VERSION}, got {version!r}")
        known = {"schema_version", "name", "resolution", "in_channels", "classifier", *SECTIONS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"spec: unknown field {unknown[0]!r}")
        for required in ("resolution", "classifier", *SECTIONS):
            if required not in data:
                raise SpecError(f"{required}: missing")
        sections = {}
        for section in SECTIONS:
            items = data[section]
            if not isinstance(items, list):
                raise SpecError(f"{section}: expected a list of layers, got {type(items).__name__}")
            if len(items) > MAX_LAYERS:
                raise SpecError(f"{section}: more than {MAX_LAYERS} layers")
            sections[section] = tuple(layer_from_dict(item, f"{section}[{i}]") for i, item in enumerate(items))
        classifier = layer_from_dict(data["classifier"], "classifier")
        return cls(
            resolution=data["resolution"],
            in_channels=data.get("in_channels", 3),
            name=data.get("name", ""),
            classifier=classifier,
            **sections,
        )

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        return cls.from_dict(parse_json(text, SpecError, "spec", "a spec"))

    @classmethod
    def load(cls, path: str | Path) -> ArchSpec:
        """The spec in a JSON file: a spec itself, or a document that carries one under "spec"
        beside its "kind" (a search's arch.json, with its predicted latency and estimated
        accuracy, reads as its spec). Any problem is a SpecError naming the file."""
        data = read_json(path, SpecError, "a spec")
        if isinstance(data, dict) and "kind" in data and isinstance(data.get("spec"), dict):
            data = data["spec"]
        try:
            return cls.from_dict(data)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None

    def content_hash(self) -> str:
        """A stable hash of the computation (name excluded): same network, same hash."""
        canonical = json.dumps(self.to_dict(include_name=False), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_graph(self) -> nx.DiGraph:
        """The spec as a networkx graph with each layer's shapes, MACs and params (search_spaces.graph)."""
        return spec_to_graph(self)


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    out: dict[str, Any] = {"op": layer.op}
    out.update({f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)})
    return out


def layer_from_dict(data: Any, path: str) -> Layer:
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a JSON object, got {type(data).__name__}")
    op = data.get("op")
    if not isinstance(op, str) or op not in LAYER_TYPES:
        raise SpecError(f"{path}.op: unknown layer type {op!r} (allowed: {', '.join(LAYER_TYPES)})")
    cls = LAYER_TYPES[op]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - {"op"})
    if unknown:
        raise SpecError(f"{path} ({op}): unknown field {unknown[0]!r}")
    try:
        return cls(**{k: v for k, v in data.items() if k != "op"})
    except SpecError as exc:
        # Layer checks say "mbconv.kernel: ..."; say where the layer is instead.
        message = str(exc)
        prefix = f"{op}."
        raise SpecError(
            f"{path}.{message[len(prefix) :]}" if message.startswith(prefix) else f"{path}: {message}"
        ) from None
    except TypeError as exc:
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data and f.default is dataclasses.MISSING]
        if missing:
            raise SpecError(f"{path}.{missing[0]}: missing") from None
        raise SpecError(f"{path}: {exc}") from None
