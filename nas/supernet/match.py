"""Which subnet of the supernet an ArchSpec is, if any.

A spec matches when it is exactly what the space materialises for some choices, either in the
proxy form the supernet trains (at the supernet's resolution) or in the deployable form at one
of the space's resolutions (any input channels and classes: a spec from `spec sample` or a
search result). Either way the subnet is evaluated in its proxy form. Otherwise the error names
the first layer that differs and how.
"""

from __future__ import annotations

from common.errors import InputError
from nas.supernet.supernet import Layout
from search_spaces import ArchSpec, MBConv, get_space
from search_spaces.space import Choices

FIELDS_IN_ORDER = ("op", "in_ch", "out_ch", "kernel", "stride", "expansion", "mid_ch", "se_ch", "activation")


class NotASubnet(InputError):
    pass


def match_spec(layout: Layout, spec: ArchSpec) -> Choices:
    config = layout.config
    proxy = spec.resolution == config.resolution
    if proxy:
        space = layout.space

        def build(choices: Choices) -> ArchSpec:
            return layout.materialize(choices)
    else:
        args = {**config.space_args, "num_classes": spec.num_classes, "in_channels": spec.in_channels}
        space = get_space(config.space, **args)

        def build(choices: Choices) -> ArchSpec:
            return space.materialize(choices)

    dims = {d.name: d for d in space.dimensions}
    values: dict = {}
    if not proxy:
        options = dims["resolution"].options
        if spec.resolution not in options:
            raise NotASubnet(
                f"resolution {spec.resolution} is neither the supernet's {config.resolution} nor one of the "
                f"space's ({', '.join(map(str, options))})"
            )
        values["resolution"] = spec.resolution
    errors = []
    for width in dims["width"].options:
        try:
            return _parse(layout, space, build, spec, {**values, "width": width})
        except NotASubnet as exc:
            errors.append((exc, width))
    # report against the width whose stem matches the spec's, else the first
    for exc, width in errors:
        stem = build(space.from_values({**_largest(layout, values), "width": width})).stem
        if spec.stem and stem and spec.stem[0].out_ch == stem[0].out_ch:
            raise exc
    raise errors[0][0]


def _largest(layout: Layout, values: dict) -> dict:
    return {**layout.space.values(layout.largest_choices), **values}


def _parse(layout: Layout, space, build, spec: ArchSpec, values: dict) -> Choices:
    reference = build(space.from_values(_largest(layout, values)))
    stage_widths = [
        layer.out_ch
        for layer, (_, b) in zip(layout.slot_layers(reference, [layout.max_depth] * len(layout.stages)), layout.slots)
        if b == 0
    ]
    dims = {d.name: d for d in space.dimensions}
    body, i = spec.layers, 1
    problem = None  # (index into layers, message): the first block the space cannot express
    for s, stage in enumerate(layout.stages):
        depth = 0
        while problem is None and i < len(body) and isinstance(body[i], MBConv) and body[i].out_ch == stage_widths[s]:
            if depth == layout.max_depth:
                problem = (i, f"layers[{i}] (mbconv): stage {s} has more than {layout.max_depth} blocks")
                break
            for name, value in (("kernel", body[i].kernel), ("expansion", body[i].expansion)):
                options = dims[f"{stage}.block{depth}.{name}"].options
                if value not in options:
                    allowed = ", ".join(map(str, options))
                    problem = (i, f"layers[{i}] (mbconv): {name} is {value:g}, the space allows {allowed}")
                    break
                values[f"{stage}.block{depth}.{name}"] = value
            else:
                depth += 1
                i += 1
        if problem is None and depth < layout.min_depth:
            where = f"layers[{i}] ({body[i].op}, out_ch {body[i].out_ch})" if i < len(body) else "layers"
            problem = (
                i,
                f"{where}: stage {s} needs at least {layout.min_depth} mbconv blocks of width {stage_widths[s]}, "
                f"found {depth}",
            )
        values[f"{stage}.depth"] = max(depth, layout.min_depth)
        if problem is not None:
            break
    if problem is None and i < len(body):
        problem = (
            i,
            f"layers[{i}] ({body[i].op}, out_ch {body[i].out_ch}): a block after the space's last stage "
            f"(width {stage_widths[-1]})",
        )
    choices = space.from_values(values)
    # a layer before the problem that differs (stride, SE, activation ...) is reported first
    _compare(spec, build(choices), None if problem is None else problem[0])
    if problem is not None:
        raise NotASubnet(problem[1])
    return choices


def _compare(spec: ArchSpec, expected: ArchSpec, before: int | None = None) -> None:
    """Raise on the first layer that differs (only the stem and layers[:before] if given)."""
    if spec.in_channels != expected.in_channels:
        raise NotASubnet(f"the input has {spec.in_channels} channels, the supernet's {expected.in_channels}")
    mine, theirs = spec.located_layers(), expected.located_layers()
    if before is not None:
        keep = len(spec.stem) + before
        mine, theirs = mine[:keep], theirs[:keep]
    for (path, layer), (_, want) in zip(mine, theirs):
        if layer == want:
            continue
        for name in FIELDS_IN_ORDER + tuple(f for f in vars(want) if f not in FIELDS_IN_ORDER):
            got, wanted = getattr(layer, name, None), getattr(want, name, None)
            if got != wanted:
                raise NotASubnet(f"{path} ({layer.op}): {name} is {got}, the supernet's is {wanted}")
        raise NotASubnet(f"{path} ({layer.op}): differs from the supernet's {want}")
    if before is None and len(mine) != len(theirs):
        path = mine[len(theirs)][0] if len(mine) > len(theirs) else theirs[len(mine)][0]
        raise NotASubnet(f"{path}: the spec has {len(mine)} layers, the supernet's subnet {len(theirs)}")
