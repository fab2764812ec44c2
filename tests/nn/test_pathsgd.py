"""Path-SGD and the l2 path norm against brute-force path sums and the theory's invariances."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from theorydl.nn.pathsgd import PathSGD, bias_scales, path_norm, path_scales, unit_scales
from theorydl.nn.stack import SGD, init_stack, train_stack

F64 = torch.float64
SIZES = (3, 4, 3, 2)
SEEDS = (0, 1)


def _stack(activation: str = "relu"):
    return init_stack(SIZES, SEEDS, activation=activation, dtype=F64)


def _brute_force(weights, biases, i):
    """Model i by explicit enumeration of every source -> output path.

    A path starts at an input unit (layer 0) or at the bias unit feeding layer s >= 1, then
    visits one unit per layer up to the output. Returns (edge scales, sum of path products),
    where the scale of an edge is the sum, over the paths through it, of the product of the
    squared weights of the path's *other* edges (= gamma_in(u)^2 gamma_out(v)^2).
    """
    n_layers = len(weights)
    w = [x[i].detach() for x in weights]
    b = None if biases is None else [x[i].detach() for x in biases]
    scale: dict[tuple, float] = {}
    total = 0.0
    starts = [0] if b is None else range(n_layers + 1)
    for s in starts:
        for units in itertools.product(*(range(n) for n in SIZES[s:])):
            # Edges of the path as (key, value); units[k] lives in layer s + k.
            edges = [] if s == 0 else [(("b", s - 1, units[0]), b[s - 1][units[0]].item())]
            for k in range(len(units) - 1):
                l = s + k
                edges.append((("W", l, units[k], units[k + 1]), w[l][units[k], units[k + 1]].item()))
            total += math.prod(v * v for _, v in edges)
            for j, (key, _) in enumerate(edges):
                others = math.prod(v * v for jj, (_, v) in enumerate(edges) if jj != j)
                scale[key] = scale.get(key, 0.0) + others
    return scale, total


@pytest.mark.parametrize("with_biases", [False, True])
def test_scales_and_path_norm_match_brute_force(with_biases):
    stack = _stack()
    biases = stack.biases if with_biases else None
    kappa = path_scales(stack.weights, biases)
    kappa_b = bias_scales(stack.weights)
    norms = path_norm(stack.weights, biases)
    assert norms.shape == (len(SEEDS),)
    for i in range(len(SEEDS)):
        scale, total = _brute_force(stack.weights, biases, i)
        assert norms[i].item() == pytest.approx(math.sqrt(total), rel=1e-12)
        for l, k in enumerate(kappa):
            assert k.shape == (len(SEEDS), SIZES[l], SIZES[l + 1])
            for u, v in itertools.product(range(SIZES[l]), range(SIZES[l + 1])):
                assert k[i, u, v].item() == pytest.approx(scale[("W", l, u, v)], rel=1e-12)
            if with_biases:
                for v in range(SIZES[l + 1]):
                    assert kappa_b[l][i, v].item() == pytest.approx(scale[("b", l, v)], rel=1e-12)


def test_path_norm_from_inputs_equals_from_outputs_without_biases():
    stack = _stack()
    g_in, g_out = unit_scales(stack.weights)
    assert [g.shape for g in g_in] == [(len(SEEDS), n) for n in SIZES]
    torch.testing.assert_close(g_in[-1].sum(1), g_out[0].sum(1))
    torch.testing.assert_close(g_in[0], torch.ones(len(SEEDS), SIZES[0], dtype=F64))
    torch.testing.assert_close(g_out[-1], torch.ones(len(SEEDS), SIZES[-1], dtype=F64))


def _rescaled(stack):
    """A copy of ``stack`` with hidden units rescaled by c > 0 (incoming weights and bias
    times c, outgoing weights times 1/c), different c per model; a ReLU net's function and
    path products are unchanged."""
    w = [x.detach().clone() for x in stack.weights]
    b = [x.detach().clone() for x in stack.biases]
    c = torch.tensor([7.0, 0.125], dtype=F64)
    for l, unit in ((0, 1), (0, 3), (1, 2)):  # (layer of incoming weights, hidden unit)
        w[l][:, :, unit] *= c[:, None]
        b[l][:, unit] *= c
        w[l + 1][:, unit, :] /= c[:, None]
    new = _stack()
    with torch.no_grad():
        for dst, src in zip(new.params, [p for wb in zip(w, b) for p in wb]):
            dst.copy_(src)
    return new


def _one_step(stack, optimizer, x, y):
    params = stack.params
    state = optimizer.init(params)
    loss = F.cross_entropy(stack(x).transpose(1, 2), y.expand(len(SEEDS), -1))
    optimizer.step(params, torch.autograd.grad(loss, params), state)
    with torch.no_grad():
        return stack(x)


def test_rescaling_invariance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, SIZES[0], generator=gen, dtype=F64)
    y = torch.randint(0, SIZES[-1], (16,), generator=gen)
    original, rescaled = _stack(), _rescaled(_stack())
    assert not torch.allclose(original.weights[0], rescaled.weights[0])
    with torch.no_grad():
        torch.testing.assert_close(original(x), rescaled(x))
    for biases in (None, "with"):
        torch.testing.assert_close(
            path_norm(original.weights, biases and original.biases),
            path_norm(rescaled.weights, biases and rescaled.biases),
        )
    lr = 0.5
    out_path = _one_step(original, PathSGD(lr), x, y)
    out_path_rescaled = _one_step(rescaled, PathSGD(lr), x, y)
    torch.testing.assert_close(out_path, out_path_rescaled, rtol=1e-10, atol=1e-10)
    # Plain SGD is not invariant: the same rescaling changes the function after one step.
    out_sgd = _one_step(_stack(), SGD(lr), x, y)
    out_sgd_rescaled = _one_step(_rescaled(_stack()), SGD(lr), x, y)
    assert (out_sgd - out_sgd_rescaled).abs().max() > 1e-3
    # And the Path-SGD step really moved the function.
    with torch.no_grad():
        assert (out_path - _stack()(x)).abs().max() > 1e-3


def test_step_divides_by_scales():
    stack = _stack()
    params = stack.params
    before = [p.detach().clone() for p in params]
    kappa, kappa_b = path_scales(stack.weights, stack.biases), bias_scales(stack.weights)
    opt = PathSGD([0.1, 0.3])
    state = opt.init(params)
    opt.step(params, [torch.ones_like(p) for p in params], state)
    lr = torch.tensor([0.1, 0.3], dtype=F64)
    for l in range(len(SIZES) - 1):
        torch.testing.assert_close(before[2 * l] - params[2 * l].detach(), lr[:, None, None] / kappa[l])
        torch.testing.assert_close(before[2 * l + 1] - params[2 * l + 1].detach(), lr[:, None] / kappa_b[l])
    assert state.step == 1


def test_train_stack_decreases_loss_and_per_model_lr():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, SIZES[0], generator=gen, dtype=F64)
    y = (x[:, 0] + x[:, 1] > 0).long()
    stack = _stack()
    frozen = [p[1].detach().clone() for p in stack.params]
    result = train_stack(stack, x, y, PathSGD([0.05, 0.0]), epochs=20, batch_size=16)
    assert result.loss[0, -1] < 0.8 * result.loss[0, 0]
    for p, p0 in zip(stack.params, frozen):
        torch.testing.assert_close(p[1].detach(), p0, rtol=0, atol=0)


def test_lr_shape_is_checked():
    with pytest.raises(ValueError):
        PathSGD([0.1, 0.2, 0.3]).init(_stack().params)
