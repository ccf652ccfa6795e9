"""Every concern that treats layer types differently accounts for every layer type of the IR: a
handler registered for it, or an explicit refusal with its reason (see "Where to add a layer
type" in search_spaces/README.md)."""

from __future__ import annotations

import re

import pytest

from latency_models.predictor.features import OPS, WORK_TERMS
from latency_models.tflite.lower import LOWERING
from latency_models.tflite.reference import REFERENCE
from latency_models.tflite.weights import WEIGHT_SHAPES
from nas.export.fold import FOLDING
from nas.supernet.model import SPEC_NET_LAYERS
from search_spaces.arch_spec import LAYER_TYPES, OUTPUT_SHAPES, Conv, Pool
from search_spaces.graph import LAYER_COSTS
from search_spaces.layer_registry import LayerRegistry, LayerTypeRefused

CONCERNS = {
    str(registry): registry
    for registry in (
        OUTPUT_SHAPES,
        LAYER_COSTS,
        WORK_TERMS,
        LOWERING,
        WEIGHT_SHAPES,
        REFERENCE,
        SPEC_NET_LAYERS,
        FOLDING,
    )
}


@pytest.mark.parametrize("concern", sorted(CONCERNS))
def test_every_layer_type_is_registered_or_refused(concern):
    registry = CONCERNS[concern]
    missing = registry.unaccounted(LAYER_TYPES)
    assert not missing, f"{concern}: layer type(s) {', '.join(missing)} neither registered nor refused"
    unknown = registry.unknown(LAYER_TYPES)
    assert not unknown, f"{concern}: registers {', '.join(unknown)}, which is not a layer type of the IR"


def test_a_refusal_says_why_and_a_registration_is_unique():
    registry = LayerRegistry("a concern", __name__)
    registry.register("conv")(lambda layer: "conv handled")
    registry.refuse("pool", "pooling is not modelled")
    assert registry.handler(Conv(3, 8, 3))(None) == "conv handled"
    with pytest.raises(LayerTypeRefused, match="pool layers are not supported by a concern: pooling is not modelled"):
        registry.handler(Pool(8))
    with pytest.raises(
        TypeError, match=rf"a concern \({re.escape(__name__)}\): no registration for layer type 'dense'"
    ):
        registry.handler(LAYER_TYPES["dense"](8, 2))
    with pytest.raises(ValueError, match="'pool' is registered twice"):
        registry.register("pool")(lambda layer: None)
    assert registry.unaccounted(["conv", "pool", "dense"]) == ["dense"]
    assert registry.unknown(["conv"]) == ["pool"]


def test_the_descriptor_has_a_kind_for_every_layer_type():
    """The predictor's descriptor one-hot encodes the layer type; a type missing there would look
    like no type at all to the correction network."""
    lacking = sorted(set(LAYER_TYPES) - set(OPS))
    assert set(OPS) == set(LAYER_TYPES), f"latency_models.predictor.features.OPS lacks {lacking}"
