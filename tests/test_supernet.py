"""The supernet's masks compute exactly what each subnet's own network computes; new subnets
never recompile; the hand-written gradients equal autodiff; specs map back to choices."""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nas.supernet import ops
from nas.supernet.layers import Mode, batch_norm
from nas.supernet.match import NotASubnet, match_spec
from nas.supernet.subnet import subnet_model
from nas.supernet.supernet import Layout, Supernet, SupernetConfig
from search_spaces import get_space, zoo

TINY = SupernetConfig(space_args={"num_classes": 4, "in_channels": 1, "stages": 2}, resolution=12)
# tests compile without LLVM optimisation: a third less compile time, and speed does not matter
fast_jit = partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _perturbed(config, seed=1):
    """A supernet whose kernel transforms, BN scales and zero-initialised parts are all
    non-trivial, so every mask and slice is exercised."""
    graphdef, params, stats = nnx.split(Supernet(config), nnx.Param, nnx.BatchStat)
    leaves, tree = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    leaves = [leaf + 0.2 * rng.standard_normal(leaf.shape).astype(np.float32) for leaf in leaves]
    return nnx.merge(graphdef, jax.tree.unflatten(tree, leaves), stats)


@pytest.fixture(scope="module")
def tiny():
    layout = Layout(TINY)
    rng = np.random.default_rng(0)
    choices = [layout.largest_choices, layout.smallest_choices, layout.space.sample(rng)]
    images = jnp.asarray(rng.standard_normal((6, 12, 12, 1)), jnp.float32)
    return layout, _perturbed(TINY), choices, images


@pytest.mark.parametrize("impl", ["slices", "grouped"])
def test_masked_supernet_equals_the_subnets_own_network(tiny, impl):
    layout, net, choices, images = tiny
    graphdef, state = nnx.split(net)

    @fast_jit
    def masked(state, sub, x):
        model = nnx.merge(graphdef, state)
        model(x, sub, Mode("calibrate"), impl)  # stores this subnet's batch statistics of x
        return model(x, sub, Mode("train"), impl), nnx.state(model)

    # the CPU path on all three; the GPU/TPU path (grouped convolution) on the random one
    for choice in choices if impl == "slices" else choices[2:]:
        train, calibrated = masked(state, layout.subnet(choice), images)
        nnx.update(net, calibrated)
        spec, plain = subnet_model(net, layout, choice)
        plain_graph, plain_state = nnx.split(plain)
        # evaluated with the statistics of the same batch, the extracted network must give what
        # the masked supernet gives in training mode: this checks the masks and the extraction
        reference = fast_jit(lambda s, x, g=plain_graph: nnx.merge(g, s)(x, Mode("eval"), impl))
        np.testing.assert_allclose(reference(plain_state, images), train, rtol=1e-4, atol=1e-4)
    # sampling new subnets never recompiles: the choices are data
    rng = np.random.default_rng(3)
    for _ in range(20):
        jax.block_until_ready(masked(state, layout.subnet(layout.space.sample(rng)), images))
    assert masked._cache_size() == 1


def test_a_stage_s_first_block_has_a_shortcut_only_when_widths_meet(tiny):
    layout = tiny[0]
    largest, smallest = layout.subnet(layout.largest_choices), layout.subnet(layout.smallest_choices)
    # proxy widths: stem 16 (w1.2) or 8 (w1.0), stage 0 16 either way, stage 0 at stride 2
    assert not largest.residual[0] and not smallest.residual[0]
    assert largest.active.all() and smallest.active.sum() == 4
    assert (largest.kernel == 2).all() and (smallest.kernel[smallest.active] == 0).all()


@pytest.mark.parametrize("stride, size", [(1, 5), (2, 8)])
def test_depthwise_gradients_equal_the_grouped_convolution(stride, size):
    rng = np.random.default_rng(size * stride)
    x = jnp.asarray(rng.standard_normal((3, size, size + 1, 5)), jnp.float32)
    kernels = tuple(jnp.asarray(rng.standard_normal((k, k, 5)), jnp.float32) for k in (3, 5, 7))
    target = jnp.asarray(rng.standard_normal((3, -(-size // stride), -(-(size + 1) // stride), 5)), jnp.float32)

    @fast_jit
    def grads(x, kernels):
        out = []
        for index, kernel in enumerate(kernels):
            for impl in ("grouped", "slices"):
                out.append(
                    jax.grad(lambda x, k, impl=impl: (ops.depthwise_conv(x, k, stride, impl) * target).sum(), (0, 1))(
                        x, kernel
                    )
                )
            elastic = jax.grad(
                lambda x, ks, i=index: (ops.elastic_depthwise(x, ks, jnp.int32(i), stride) * target).sum(), (0, 1)
            )
            out.append(elastic(x, kernels))
        return out

    results = grads(x, kernels)
    for index in range(3):
        want, got, (dx, dks) = results[3 * index : 3 * index + 3]
        for a, b in ((got[0], want[0]), (got[1], want[1]), (dx, want[0]), (dks[index], want[1])):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
        assert all(not np.any(dk) for i, dk in enumerate(dks) if i != index)


def test_batch_norm_gradient_equals_autodiff():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((4, 5, 5, 6)) * 3 + 1, jnp.float32)
    scale, bias = jnp.asarray(rng.standard_normal(6), jnp.float32), jnp.asarray(rng.standard_normal(6), jnp.float32)
    w = jnp.asarray(rng.standard_normal(x.shape), jnp.float32)

    def reference(x, scale, bias):
        mean = x.mean((0, 1, 2))
        return (x - mean) * jax.lax.rsqrt(jnp.square(x - mean).mean((0, 1, 2)) + 1e-5) * scale + bias

    def gradients(f):
        return fast_jit(jax.grad(lambda *a: (f(*a) * w).sum() + (f(*a) ** 2).sum(), (0, 1, 2)))(x, scale, bias)

    want, got = gradients(reference), gradients(lambda x, s, b: batch_norm(x, s, b, 1e-5, None))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_specs_map_back_to_their_choices():
    layout = Layout(TINY)
    deployable = get_space("mbv3", num_classes=1000, in_channels=3, stages=2)
    rng = np.random.default_rng(5)
    for _ in range(20):
        choices = layout.space.sample(rng)
        proxy = layout.materialize(choices)
        assert layout.materialize(match_spec(layout, proxy)) == proxy
        # a deployable spec of the same architecture (any resolution of the space) maps too
        assert layout.materialize(match_spec(layout, deployable.materialize(choices))) == proxy


def test_a_spec_outside_the_supernet_names_the_first_differing_layer():
    layout = Layout(SupernetConfig())
    with pytest.raises(NotASubnet, match=r"layers\[7\] \(mbconv\): expansion is 2.5, the space allows 3, 4, 6"):
        match_spec(layout, zoo.get("mobilenet_v3_large_1.0"))
    with pytest.raises(NotASubnet, match=r"^stem\[0\] \(conv\): out_ch is 32"):
        match_spec(layout, zoo.get("mobilenet_v2_1.0"))
    spec = layout.materialize(layout.largest_choices)
    layers = list(spec.layers)
    layers[3] = dataclasses.replace(layers[3], se_ch=8)
    with pytest.raises(NotASubnet, match=r"layers\[3\] \(mbconv\): se_ch is 8, the supernet's is 0"):
        match_spec(layout, dataclasses.replace(spec, layers=tuple(layers)))
