"""The pooling networks: log-space product pooling and 1x1 convolutions against direct
products and sums, the mirror permutation's windows, and the stacked forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorydl.nn import init_modules, seeded
from theorydl.studies.pooling.networks import (
    ConvAC,
    ReLUNet,
    build_network,
    log_conv1x1,
    log_product_pool,
    mirror_input_order,
    mirror_permute,
    mirror_windows,
)
from theorydl.studies.pooling.ranks import grid_tensor

F64 = torch.float64


def test_log_product_pool_is_the_log_of_window_products():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 6, generator=g, dtype=F64) + 0.1
    direct = x.unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2).prod(-1)  # (2, 3, 2, 3)
    torch.testing.assert_close(torch.exp(log_product_pool(torch.log(x))), direct)


def test_log_conv_is_the_log_of_a_positive_weighted_sum_and_stays_finite():
    g = torch.Generator().manual_seed(1)
    h = torch.rand(2, 3, 2, 2, generator=g, dtype=F64) * 4 - 2
    w = torch.rand(5, 3, generator=g, dtype=F64) * 2 - 1
    direct = torch.einsum("gc,bchw->bghw", torch.exp(w), torch.exp(h))
    torch.testing.assert_close(torch.exp(log_conv1x1(h, w)), direct)
    # logs far outside exp's float range: the direct form overflows, this one does not
    big = h * 1e4
    out = log_conv1x1(big, w)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.logsumexp(big[:, None] + w[None, :, :, None, None],
                                                    dim=2))


@pytest.mark.parametrize("geometry", ["square", "mirror"])
def test_convac_is_the_linear_convac_with_exp_weights(geometry):
    """The log-space network's score on every 4x4 binary image is the log of the
    linear-space network's (direct products and sums) with weights exp(W)."""
    net = seeded(lambda: ConvAC(4, 3, geometry), 0, dtype=F64)
    weights = [torch.exp(net.first).detach().numpy(),
               *[torch.exp(w).detach().numpy() for w in net.hidden],
               torch.exp(net.out[0]).detach().numpy()]
    direct = grid_tensor(4, 2, weights, geometry, "deep", normalise=False)
    codes = np.arange(2**16)
    images = ((codes[:, None] >> np.arange(15, -1, -1)) & 1).reshape(-1, 1, 4, 4)
    with torch.no_grad():
        logs = net(torch.as_tensor(images, dtype=F64))[:, 0].numpy()
    np.testing.assert_allclose(logs, np.log(direct.ravel()), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("size", [4, 8, 16])
def test_mirror_windows_gather_reflections(size):
    windows = mirror_windows(size)
    assert len(windows) == (size // 2) ** 2
    seen = set()
    for window in windows:
        assert len(window) == 4
        (r, c) = min(window)
        # the window is a position with its left-right, top-bottom and central reflections
        assert window == {(r, c), (r, size - 1 - c), (size - 1 - r, c),
                          (size - 1 - r, size - 1 - c)}
        seen |= window
    assert len(seen) == size * size  # a permutation: every position in exactly one window


def test_mirror_permutation_at_every_level_of_a_network():
    """Pooling the permuted map pairs reflections again at the next level: a map that is
    symmetric under both reflections stays so after mirror pooling (square pooling does
    not keep it)."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 1, 8, 8, generator=g, dtype=F64)
    sym = x + x.flip(-1) + x.flip(-2) + x.flip(-1, -2)
    pooled = torch.nn.functional.avg_pool2d(mirror_permute(sym), 2)
    # each window holds 4 equal values (one orbit of the reflections)
    cells = mirror_permute(sym).unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)
    torch.testing.assert_close(cells.amax(-1), cells.amin(-1))
    assert pooled.shape == (1, 1, 4, 4)


@pytest.mark.parametrize("network", ["convac", "relu_avg", "relu_max"])
def test_stacked_forward_matches_each_lone_network(network):
    stack = init_modules(lambda: build_network(network, 8, 4, "mirror"), (0, 1), dtype=F64)
    x = torch.randint(0, 2, (5, 1, 8, 8), generator=torch.Generator().manual_seed(3)).to(F64)
    out = stack.outputs_t(x)  # (M, C, b)
    for i, seed in enumerate((0, 1)):
        alone = seeded(lambda: build_network(network, 8, 4, "mirror"), seed, dtype=F64)
        with torch.no_grad():
            torch.testing.assert_close(out[i].T, alone(x))


def test_geometry_changes_the_function_but_not_the_parameters():
    x = torch.randint(0, 2, (4, 1, 8, 8), generator=torch.Generator().manual_seed(4)).float()
    a, b = seeded(lambda: ReLUNet(8, 4, "square"), 0), seeded(lambda: ReLUNet(8, 4, "mirror"), 0)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.allclose(a(x), b(x))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="power of 2"):
        ConvAC(12, 4)
    with pytest.raises(ValueError, match="unknown network"):
        build_network("tanh", 8, 4, "square")


def _reference_relu(net: ReLUNet, x):
    """The ReLU net as its definition reads: channels-first 1x1 convolutions, then the
    mirror permutation of each level's map before 2x2 average or max pooling."""
    f = torch.nn.functional
    h = f.one_hot(x[:, 0].long(), net.templates).permute(0, 3, 1, 2).to(F64)
    pool = f.avg_pool2d if net.pool == "avg" else f.max_pool2d
    for conv in net.convs:
        h = torch.relu(conv(h))
        if net.geometry == "mirror":
            h = mirror_permute(h)
        h = pool(h, 2)
    return net.out(h.flatten(1))


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("geometry", ["square", "mirror"])
def test_relu_net_is_its_definition_outputs_and_gradients(pool, geometry):
    net = seeded(lambda: ReLUNet(8, 3, geometry, pool=pool), 5, dtype=F64)
    x = torch.randint(0, 2, (16, 1, 8, 8), generator=torch.Generator().manual_seed(6)).to(F64)
    ours, ref = net(x), _reference_relu(net, x)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    params = list(net.parameters())
    g_ours = torch.autograd.grad(ours.square().sum(), params)
    g_ref = torch.autograd.grad(ref.square().sum(), params)
    for a, b in zip(g_ours, g_ref):  # max pooling's ties share their gradient, with the same sum
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [2, 4, 8, 16])
def test_the_mirror_order_is_every_level_s_mirror_permutation(size):
    """Square pooling of the reordered pixels, level after level, forms exactly the groups
    of input pixels that mirror pooling forms (the same tree of windows: the maps in
    between hold them in another order)."""
    order = mirror_input_order(size)
    assert sorted(order.tolist()) == list(range(size * size))
    # track each map position as the set of input pixels it pools
    mirror = [[{(r, c)} for c in range(size)] for r in range(size)]
    square = [[{divmod(int(order[r * size + c]), size)} for c in range(size)]
              for r in range(size)]
    while len(mirror) > 1:
        n = len(mirror)
        index = mirror_permute(torch.arange(n * n).view(n, n)).flatten().tolist()
        flat = [mirror[i // n][i % n] for i in index]
        mirror = [[flat[(2 * a) * n + 2 * b] | flat[(2 * a) * n + 2 * b + 1]
                   | flat[(2 * a + 1) * n + 2 * b] | flat[(2 * a + 1) * n + 2 * b + 1]
                   for b in range(n // 2)] for a in range(n // 2)]
        square = [[square[2 * a][2 * b] | square[2 * a][2 * b + 1] | square[2 * a + 1][2 * b]
                   | square[2 * a + 1][2 * b + 1] for b in range(n // 2)] for a in range(n // 2)]
        groups = lambda m: {frozenset(g) for row in m for g in row}  # noqa: E731
        assert groups(mirror) == groups(square)
