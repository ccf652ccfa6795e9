"""A human- and machine-readable summary of an ArchSpec (used by the zoo and spec CLIs)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from search_spaces.arch_spec import ArchSpec, MBConv
from search_spaces.graph import graph_cost, spec_to_graph


def _attributes(op: str, attrs: dict[str, Any]) -> str:
    if op == "mbconv":
        text = f"k{attrs['kernel']} e{attrs['expansion']:g} mid {attrs['mid_ch']}"
        if attrs["se_ch"]:
            text += f" se {attrs['se_ch']}"
        if attrs["groups"] > 1:
            text += f" g{attrs['groups']}"
        return text + (" +res" if attrs["residual"] else "")
    parts = [f"k{attrs['kernel']}"] if "kernel" in attrs else []
    if attrs.get("groups", 1) > 1:
        parts.append(f"g{attrs['groups']}")
    if attrs.get("kind"):
        parts.append(attrs["kind"])
    return " ".join(parts)


def describe(spec: ArchSpec) -> dict[str, Any]:
    """The spec's JSON plus what is derived from it: hash, MACs, params, per-layer shapes."""
    graph = spec_to_graph(spec)
    cost = graph_cost(graph)
    layers = [
        {
            "path": node,
            "op": data["op"],
            "in_shape": list(data["in_shape"]),
            "out_shape": list(data["out_shape"]),
            "macs": data["macs"],
            "params": data["params"],
        }
        for node, data in graph.nodes(data=True)
        if node != "input"
    ]
    return {
        "spec": spec.to_dict(),
        "content_hash": spec.content_hash(),
        "macs": cost.macs,
        "params": cost.params,
        "layers": layers,
    }


def print_summary(spec: ArchSpec, console: Console | None = None) -> None:
    # Piped output gets rich's 80 columns otherwise, which folds every row.
    console = console or Console(width=None if Console().is_terminal else 132)
    graph = spec_to_graph(spec)
    cost = graph_cost(graph)
    table = Table(title=f"{spec.name or 'spec'} @ {spec.resolution}px  (hash {spec.content_hash()})")
    for column in ("layer", "op", "in", "out", "activation", "details", "MMACs", "params"):
        table.add_column(column, justify="right" if column in ("MMACs", "params") else "left", no_wrap=True)
    for node, data in graph.nodes(data=True):
        if node == "input":
            continue
        h, w, c = data["in_shape"]
        ho, wo, co = data["out_shape"]
        table.add_row(
            node,
            data["op"] + (f"/s{data['attrs']['stride']}" if data["attrs"].get("stride", 1) > 1 else ""),
            f"{h}x{w}x{c}",
            f"{ho}x{wo}x{co}",
            data["attrs"].get("activation", ""),
            _attributes(data["op"], data["attrs"]),
            f"{data['macs'] / 1e6:.2f}",
            f"{data['params']:,}",
        )
    console.print(table)
    blocks = sum(isinstance(layer, MBConv) for layer in spec.layers)
    console.print(f"MACs {cost.macs / 1e6:.1f} M   params {cost.params / 1e6:.3f} M   MBConv blocks {blocks}")
