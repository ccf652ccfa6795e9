"""Size costs from the ArchSpec (latency_models.footprint): the arena head and flash predicted
for small networks are what TensorFlow Lite Micro plans and the emitter writes; the greedy
planner on hand-made buffers; the batch path against the exact one; deployments refused by
name. benchmarks/memory_fidelity.py checks the same over some 300 networks."""

import subprocess
import sys

import numpy as np
import pytest

from latency_models.footprint.batch import SpaceArena, SpaceFlash
from latency_models.footprint.costs import check_deployment, footprint, footprints, lowered
from latency_models.footprint.planner import Buffer, arena_head, live_peak, planned_buffers
from latency_models.footprint.tflm import arena_use, head_and_tail
from latency_models.tflite.emit import emit_spec
from search_spaces import FBNetSpace, MobileNetV3Space
from search_spaces.space import PinnedSpace, ProxyFormSpace
from search_spaces.zoo import get

DEPLOYMENTS = [("fp32", False), ("int8", False), ("int8", True)]
# An fbnet network at 64 px whose greedy plan leaves a gap: TFLM's head (524,288 bytes in fp32)
# is above the most bytes alive at once (491,520).
GAPPED_FBNET = (6, 3, 2, 8, 2, 2, 6, 5, 0, 0, 3, 7, 3, 7, 2, 2, 7, 7, 0, 0, 6, 3)
# An int8 file's zero points recur where the calibration makes them equal, and the emitter writes
# a repeated quantisation vector once: which ones recur depends on the data (every ReLU output's
# is -128, an h-swish's or a linear projection's is not), so the int8 flash prediction is a few
# hundred bytes short of the file (0.01-0.06% in benchmarks/memory_fidelity.py).
INT8_FLASH_RTOL = 1e-3


def networks():
    gapped = FBNetSpace().materialize(GAPPED_FBNET, resolution=64)
    proxy = ProxyFormSpace(MobileNetV3Space(num_classes=10, in_channels=1), {}, 28)
    return {
        "mobilenet_v3_small_0.35 at 64 px": get("mobilenet_v3_small_0.35", resolution=64),
        # its head is the MEAN's int32 sums and index scratch buffers (7,712 int8 bytes; 3,840 without)
        "mobilenet_v2_0.35 at 16 px": get("mobilenet_v2_0.35", resolution=16, num_classes=10),
        # two whose head turns on the order of equal sizes (see the planner's tie test)
        "mobilenet_v1_0.25 at 32 px": get("mobilenet_v1_0.25", resolution=32, num_classes=10),
        "mnasnet_b1 at 32 px": get("mnasnet_b1", resolution=32, num_classes=10),
        "fbnet at 64 px, greedy above the live peak": gapped,
        "the Fashion-MNIST proxy at 28 px": proxy.materialize(proxy.sample(np.random.default_rng(3))),
    }


NETWORKS = networks()


@pytest.mark.parametrize("precision, integer_io", DEPLOYMENTS, ids=["fp32", "int8", "int8 integer io"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_arena_head_and_flash_are_tflms_and_the_files(name, precision, integer_io):
    spec = NETWORKS[name]
    predicted = footprint(spec, precision, integer_io)
    model = emit_spec(spec, precision=precision, integer_io=integer_io)
    assert predicted.arena_bytes == head_and_tail(model)[0]
    if precision == "fp32":
        assert predicted.flash_bytes == len(model)
    else:
        assert predicted.flash_bytes == pytest.approx(len(model), rel=INT8_FLASH_RTOL)
        assert predicted.flash_bytes <= len(model)


def test_the_smallest_arena_is_the_least_tflm_accepts():
    """A small int8 network needs more room while TFLM sets it up than its plan in the end: 496
    bytes over head + tail for this one, where the search once stopped at head + tail + 64."""
    model = emit_spec(NETWORKS["the Fashion-MNIST proxy at 28 px"], precision="int8", integer_io=True)
    use = arena_use(model)
    assert use.smallest > use.head + use.tail + 64
    tried = subprocess.run(  # in a process of its own, as arena_use tries sizes (tflm_probe.py)
        [sys.executable, "-c", TRY_SIZES, str(use.smallest), str(use.smallest - 1)],
        input=model,
        capture_output=True,
        check=True,
    )
    assert tried.stdout.split() == [b"True", b"False"]


TRY_SIZES = """import sys
from latency_models.footprint.tflm_probe import accepts
model = sys.stdin.buffer.read()
print(*(accepts(model, int(size)) for size in sys.argv[1:]))
"""


def test_the_gapped_network_is_one():
    buffers = planned_buffers(lowered(NETWORKS["fbnet at 64 px, greedy above the live peak"]), "fp32")
    assert (arena_head(buffers), live_peak(buffers)) == (524_288, 491_520)


def test_footprints_cover_every_deployment_alike():
    spec = NETWORKS["mobilenet_v3_small_0.35 at 64 px"]
    every = footprints(spec)
    assert [(f.precision, f.integer_io) for f in every] == DEPLOYMENTS
    assert every == [footprint(spec, *deployment) for deployment in DEPLOYMENTS]
    fp32, _, int8 = every
    assert fp32.arena_bytes == 4 * int8.arena_bytes  # the same plan, four bytes an element
    assert 3 * int8.flash_bytes < fp32.flash_bytes < 4 * int8.flash_bytes
    assert fp32.mcunet_peak_bytes == 4 * int8.mcunet_peak_bytes
    assert fp32.params == int8.params and fp32.macs == int8.macs


def test_the_greedy_planner_can_leave_a_gap():
    """Largest first: the 64 and the 48 at offset 0 (never alive together), the 32 above the 48,
    and the 16, alive with the 64 and the 32, above both: 96 bytes, where 80 at most are alive."""
    buffers = [Buffer(48, 1, 1), Buffer(64, 3, 3), Buffer(16, 2, 3), Buffer(32, 1, 2)]
    assert arena_head(buffers) == 96
    assert live_peak(buffers) == 80


def test_the_greedy_planner_fills_a_gap_below_a_placed_buffer():
    """The 48 goes above the 64 (alive together at time 0); the 32 and the 16, alive at time 1
    with the 48 alone, go below it, at 0 and 32: the head stays the 112 alive at time 0 (above
    every placed buffer they would make it 160)."""
    buffers = [Buffer(64, 0, 0), Buffer(48, 0, 1), Buffer(32, 1, 1), Buffer(16, 1, 1)]
    assert arena_head(buffers) == live_peak(buffers) == 112


def test_among_equal_sizes_the_later_buffer_is_placed_first():
    """As the tflite-micro wheel does: here the last buffer goes to 0, the first to 16, and the
    head is the live peak, 32; placed in the order they were added, the head would be 48."""
    buffers = [Buffer(16, 2, 3), Buffer(16, 1, 3), Buffer(16, 0, 0), Buffer(16, 0, 1)]
    assert arena_head(buffers) == live_peak(buffers) == 32
    assert arena_head(buffers[::-1]) == 48


def test_an_empty_graph_plans_nothing():
    assert arena_head([]) == live_peak([]) == 0


@pytest.fixture(scope="module")
def small_space():
    """Two mbv3 stages at one resolution, width pinned: the tables have two shared groups."""
    return PinnedSpace(MobileNetV3Space(num_classes=10, stages=2, resolutions=(128,)), {"width": 1.0})


@pytest.mark.parametrize("precision, integer_io", DEPLOYMENTS, ids=["fp32", "int8", "int8 integer io"])
def test_batch_arena_is_the_live_peak_and_batch_flash_close(small_space, precision, integer_io):
    rng = np.random.default_rng(4)
    choices = [small_space.sample(rng) for _ in range(12)]
    arena = SpaceArena(small_space, precision, integer_io)(np.array(choices))
    flash = SpaceFlash(small_space, precision, integer_io)(np.array(choices))
    for c, bound, estimate in zip(choices, arena, flash):
        spec = small_space.materialize(c)
        graph = lowered(spec)
        exact = footprint(spec, precision, integer_io, graph)
        assert bound == live_peak(planned_buffers(graph, precision, integer_io)) <= exact.arena_bytes
        assert estimate == pytest.approx(exact.flash_bytes, rel=0.01)


def test_batch_flash_is_exact_for_the_network_it_is_built_from(small_space):
    reference = small_space.covering_choices()[0]
    flash = SpaceFlash(small_space, "fp32")(np.array([reference]))
    assert flash[0] == footprint(small_space.materialize(reference)).flash_bytes


@pytest.mark.parametrize("precision", ["fp16", "int4", "INT8"])
def test_an_unknown_precision_is_refused_by_name(precision):
    with pytest.raises(ValueError, match=f"not '{precision}'"):
        check_deployment(precision)
    with pytest.raises(ValueError, match="precision"):
        footprint(NETWORKS["mobilenet_v3_small_0.35 at 64 px"], precision)


def test_integer_io_is_refused_for_fp32():
    with pytest.raises(ValueError, match="integer input and output: only an int8 model"):
        check_deployment("fp32", integer_io=True)
    with pytest.raises(ValueError, match="integer input and output"):
        SpaceArena(MobileNetV3Space(stages=1, resolutions=(128,)), "fp32", integer_io=True)
