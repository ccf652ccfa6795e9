"""Per-layer-type registries: how each concern finds its code for a layer of the IR.

Every concern that treats the layer types of `search_spaces.arch_spec` differently (the output
shape, MACs and params, the latency predictor's work terms, the TFLite lowering and weights, the
numpy reference, the plain Flax model, batch-norm folding) keeps one `LayerRegistry` in the module
that owns it: for each layer type (its `op` name) a handler, or a refusal saying why the concern
does not handle that type. The concern looks the handler up by the layer's `op` instead of
testing its class, so adding a layer type is one registration per concern, and
tests/test_layer_types.py names the concern and the layer type when one is missing (see "Where
to add a layer type" in search_spaces/README.md).

Keys are `op` names rather than classes because search_spaces.graph, which registers the costs,
is imported by arch_spec itself and cannot import the classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

Handler = TypeVar("Handler", bound=Callable[..., Any])


class LayerTypeRefused(NotImplementedError):
    """A concern was asked for a layer type it deliberately does not handle."""


class LayerRegistry(Generic[Handler]):
    """One concern's handler for each layer type, or its reason for refusing the type."""

    def __init__(self, concern: str, module: str):
        """`concern`: what the handlers compute; `module`: where they are registered (`__name__`)."""
        self.concern = concern
        self.module = module
        self._handlers: dict[str, Handler] = {}
        self._refusals: dict[str, str] = {}

    def register(self, *ops: str) -> Callable[[Handler], Handler]:
        """Decorator: the handler of the layer types named `ops`."""

        def add(handler: Handler) -> Handler:
            for op in ops:
                self._claim(op)
                self._handlers[op] = handler
            return handler

        return add

    def refuse(self, op: str, reason: str) -> None:
        """Declare that this concern does not handle layer type `op`, and why; looking it up raises
        LayerTypeRefused with the reason."""
        self._claim(op)
        self._refusals[op] = reason

    def __str__(self) -> str:
        return f"{self.concern} ({self.module})"

    def _claim(self, op: str) -> None:
        if op in self._handlers or op in self._refusals:
            raise ValueError(f"{self}: layer type {op!r} is registered twice")

    def handler(self, layer: Any) -> Handler:
        """The handler of `layer`'s type."""
        op = getattr(layer, "op", type(layer).__name__)
        if op in self._handlers:
            return self._handlers[op]
        if op in self._refusals:
            raise LayerTypeRefused(f"{op} layers are not supported by {self.concern}: {self._refusals[op]}")
        raise TypeError(f"{self}: no registration for layer type {op!r}")

    @property
    def refusals(self) -> dict[str, str]:
        """The refused layer types, each with its reason."""
        return dict(self._refusals)

    def unaccounted(self, ops: Iterable[str]) -> list[str]:
        """The layer types among `ops` that are neither registered nor refused."""
        return [op for op in ops if op not in self._handlers and op not in self._refusals]

    def unknown(self, ops: Iterable[str]) -> list[str]:
        """The registered or refused names that are not among the layer types `ops` (typos, or a
        layer type since removed)."""
        known = set(ops)
        return sorted(op for op in {**self._handlers, **self._refusals} if op not in known)
