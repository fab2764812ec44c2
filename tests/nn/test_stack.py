"""Stacked MLPs against lone torch.nn / torch.optim references, model by model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from theorydl.nn import (
    ACTIVATIONS,
    SGD,
    Adam,
    data_generator,
    init_mlp,
    init_stack,
    max_stack_size,
    resolve_device,
    train_stack,
)
from theorydl.nn.stack import _BACKWARD_FROM_OUTPUT, _affine_act

F64 = torch.float64
SIZES = (5, 8, 6, 3)
SEEDS = (0, 1, 2, 3)
N, BATCH, EPOCHS = 40, 16, 3  # 3 steps per epoch, the last one of 8 samples

MODULES = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "linear": nn.Identity,
    "identity": nn.Identity,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1234)
    X = torch.randn(N, SIZES[0], generator=gen, dtype=F64)
    y = torch.randint(0, SIZES[-1], (N,), generator=gen)
    return X, y


def lone_net(seed: int, activation: str = "tanh", sizes=SIZES) -> nn.Sequential:
    layers: list[nn.Module] = []
    params = init_mlp(sizes, seed, dtype=F64)
    for l, (w, b) in enumerate(params):
        lin = nn.Linear(*w.shape, dtype=F64)
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(b)
        layers.append(lin)
        if l < len(params) - 1:
            layers.append(MODULES[activation]())
    return nn.Sequential(*layers)


def train_lone(net, X, y, opt, epochs, batch_size, seed, record_epochs=()):
    """Plain training loop; returns per-epoch losses and, per recorded epoch
    (1-based, "epochs completed"), the list of per-step weight gradients (in, out)."""
    # The documented data order, written out here rather than via data_generator.
    gen = torch.Generator().manual_seed((seed + 2**31) % 2**32)
    n = X.shape[0]
    losses, grads = [], {}
    for epoch in range(epochs):
        if batch_size is None:
            batches = [torch.arange(n)]
        else:
            perm = torch.randperm(n, generator=gen)
            batches = [perm[s : s + batch_size] for s in range(0, n, batch_size)]
        total = 0.0
        for idx in batches:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(X[idx]), y[idx])
            loss.backward()
            if epoch + 1 in record_epochs:
                lins = [m for m in net if isinstance(m, nn.Linear)]
                grads.setdefault(epoch + 1, []).append([m.weight.grad.T.numpy().copy() for m in lins])
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / n)
    return torch.tensor(losses, dtype=F64), grads


def assert_same_as_lone(stack, result, lone_nets, lone_losses):
    for i, net in enumerate(lone_nets):
        lins = [m for m in net if isinstance(m, nn.Linear)]
        for l, lin in enumerate(lins):
            torch.testing.assert_close(stack.weights[l][i].detach(), lin.weight.detach().T, rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(stack.biases[l][i].detach(), lin.bias.detach(), rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(result.loss[i], lone_losses[i], rtol=1e-9, atol=1e-11)


OPTIMISERS = {
    "sgd-momentum": (
        lambda lrs: SGD(lrs, momentum=0.9),
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
        (0.05, 0.1, 0.02, 0.2),
    ),
    "sgd-weight-decay": (
        lambda lrs: SGD(lrs, weight_decay=0.01),
        lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=0.01),
        (0.05, 0.1, 0.02, 0.2),
    ),
    "adam": (
        lambda lrs: Adam(lrs),
        lambda p, lr: torch.optim.Adam(p, lr=lr),
        (1e-3, 3e-3, 1e-2, 5e-4),
    ),
    "adam-custom": (
        lambda lrs: Adam(lrs, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
        lambda p, lr: torch.optim.Adam(p, lr=lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
        (1e-3, 3e-3, 1e-2, 5e-4),
    ),
}


@pytest.mark.parametrize("batch_size", [BATCH, None], ids=["minibatch", "full-batch"])
@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_stack_training_matches_lone_models(data, name, batch_size):
    X, y = data
    stacked_opt, torch_opt, lrs = OPTIMISERS[name]
    stack = init_stack(SIZES, SEEDS, activation="tanh", dtype=F64)
    result = train_stack(stack, X, y, stacked_opt(torch.tensor(lrs, dtype=F64)), EPOCHS, batch_size=batch_size)

    lone_nets, lone_losses = [], []
    for seed, lr in zip(SEEDS, lrs):
        net = lone_net(seed)
        losses, _ = train_lone(net, X, y, torch_opt(net.parameters(), lr), EPOCHS, batch_size, seed)
        lone_nets.append(net)
        lone_losses.append(losses)
    assert result.loss.shape == (len(SEEDS), EPOCHS)
    assert_same_as_lone(stack, result, lone_nets, lone_losses)
    # Training moved the weights, so the comparison above was not of initial values.
    assert not torch.allclose(stack.weights[0][0].detach(), init_mlp(SIZES, SEEDS[0], dtype=F64)[0][0])


def test_relu_stack_matches_lone_models(data):
    X, y = data
    lrs = (0.05, 0.1, 0.02, 0.2)
    stack = init_stack(SIZES, SEEDS, activation="relu", dtype=F64)
    result = train_stack(stack, X, y, SGD(lrs, momentum=0.9), EPOCHS, batch_size=BATCH)
    nets, losses = [], []
    for seed, lr in zip(SEEDS, lrs):
        net = lone_net(seed, "relu")
        loss, _ = train_lone(net, X, y, torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9), EPOCHS, BATCH, seed)
        nets.append(net)
        losses.append(loss)
    assert_same_as_lone(stack, result, nets, losses)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("batch_size", [BATCH, None], ids=["minibatch", "full-batch"])
def test_every_activation_trains_like_lone_models(data, activation, batch_size):
    # tanh, relu, sigmoid and linear train through the hand-written backward pass on flat
    # parameter buffers; elu and gelu through autograd: both must equal torch.nn.
    assert (activation in _BACKWARD_FROM_OUTPUT) == (activation not in ("elu", "gelu"))
    X, y = data
    lrs = (0.05, 0.1, 0.02, 0.2)
    stack = init_stack(SIZES, SEEDS, activation=activation, dtype=F64)
    result = train_stack(stack, X, y, SGD(lrs, momentum=0.9), EPOCHS, batch_size=batch_size)
    nets, losses = [], []
    for seed, lr in zip(SEEDS, lrs):
        net = lone_net(seed, activation)
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        loss, _ = train_lone(net, X, y, opt, EPOCHS, batch_size, seed)
        nets.append(net)
        losses.append(loss)
    assert_same_as_lone(stack, result, nets, losses)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 3e-7), (F64, 1e-15)])
def test_cpu_tanh_through_sigmoid_agrees_with_torch_tanh(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    w_t = torch.randn(3, 4, 5, generator=gen, dtype=dtype) * 3
    b = torch.randn(3, 4, generator=gen, dtype=dtype)
    a = torch.randn(3, 5, 64, generator=gen, dtype=dtype)
    z = torch.baddbmm(b.unsqueeze(2), w_t, a)
    fast = _affine_act(b, w_t, a, "tanh")
    assert (fast - torch.tanh(z)).abs().max() <= tol
    assert fast.abs().max() <= 1.0
    # The shared-input form (one GEMM for all models) gives the same values.
    shared = _affine_act(b, w_t, a[0], "tanh")
    expected = torch.tanh(torch.baddbmm(b.unsqueeze(2), w_t, a[0].expand(3, -1, -1)))
    assert (shared - expected).abs().max() <= tol


def test_data_generator_is_the_documented_one():
    a = torch.randperm(20, generator=data_generator(7))
    b = torch.randperm(20, generator=torch.Generator().manual_seed((7 + 2**31) % 2**32))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.randperm(20, generator=data_generator(8)))
    # The data stream is not the init stream of the same seed.
    assert not torch.equal(a, torch.randperm(20, generator=torch.Generator().manual_seed(7)))


@pytest.mark.parametrize("batch_size", [BATCH, None], ids=["minibatch", "full-batch"])
def test_gradient_statistics_match_brute_force(data, batch_size):
    X, y = data
    lrs = (0.05, 0.1, 0.02, 0.2)
    reported = (0, 2, 3)
    stack = init_stack(SIZES, SEEDS, dtype=F64)
    result = train_stack(
        stack, X, y, SGD(lrs, momentum=0.9), EPOCHS, batch_size=batch_size, callback_epochs=reported, grad_stats=True
    )
    n_layers = len(SIZES) - 1
    assert result.callback_epochs == reported
    assert result.grad_mean_norm.shape == result.grad_std_norm.shape == (len(reported), n_layers, len(SEEDS))
    assert torch.isnan(result.grad_mean_norm[0]).all() and torch.isnan(result.grad_std_norm[0]).all()

    for i, (seed, lr) in enumerate(zip(SEEDS, lrs)):
        net = lone_net(seed)
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        _, grads = train_lone(net, X, y, opt, EPOCHS, batch_size, seed, record_epochs={2, 3})
        for k, epoch in enumerate(reported[1:], start=1):
            for l in range(n_layers):
                g = np.stack([step[l] for step in grads[epoch]])  # (S, in, out)
                mean_norm = np.linalg.norm(g.mean(axis=0))
                std_norm = np.linalg.norm(g.std(axis=0))
                assert result.grad_mean_norm[k, l, i].item() == pytest.approx(mean_norm, rel=1e-9, abs=1e-12)
                assert result.grad_std_norm[k, l, i].item() == pytest.approx(std_norm, rel=1e-7, abs=1e-12)
    if batch_size is None:
        assert torch.all(result.grad_std_norm[1:] == 0)
    else:
        assert torch.all(result.grad_std_norm[1:] > 0)


def test_gradient_moments_survive_large_mean_in_float32():
    # |mean| / std = 1e5: the unshifted sum-of-squares formula loses every digit of the
    # variance in float32; the shifted one must not.
    from theorydl.nn.engine import _GradMoments

    gen = torch.Generator().manual_seed(0)
    steps = 100 + torch.randn(16, 2, 3, 4, generator=gen, dtype=F64) * 1e-3
    moments = _GradMoments()
    for g in steps.float():
        moments.add([g])
    mean_norm, std_norm = moments.norms()
    assert mean_norm.shape == std_norm.shape == (1, 2)
    exact = steps.float().double()
    for i in range(2):
        assert mean_norm[0, i].item() == pytest.approx(exact[:, i].mean(0).norm().item(), rel=1e-6)
        assert std_norm[0, i].item() == pytest.approx(exact[:, i].std(0, correction=0).norm().item(), rel=1e-3)


def test_callback_fires_exactly_at_requested_epochs(data):
    X, y = data
    stack = init_stack(SIZES, SEEDS, dtype=F64)
    init_w = stack.weights[0].detach().clone()
    seen = []

    def callback(epoch, s):
        assert s is stack
        assert not torch.is_grad_enabled()
        logits, hidden = s(X, return_hidden=True)
        seen.append((epoch, logits.shape, [h.shape for h in hidden], s.weights[0].detach().clone()))

    result = train_stack(
        stack, X, y, SGD(0.1), 6, batch_size=BATCH, callback=callback, callback_epochs=[6, 0, 3, 3, 1]
    )
    assert [e for e, *_ in seen] == [0, 1, 3, 6]
    assert result.callback_epochs == (0, 1, 3, 6)
    assert result.grad_mean_norm is None and result.grad_std_norm is None
    m = len(SEEDS)
    for _, logits_shape, hidden_shapes, _ in seen:
        assert logits_shape == (m, N, SIZES[-1])
        assert hidden_shapes == [(m, N, u) for u in SIZES[1:-1]]
    assert torch.equal(seen[0][3], init_w)  # epoch 0 is before any training step
    assert not torch.equal(seen[1][3], init_w)
    with pytest.raises(ValueError):
        train_stack(stack, X, y, SGD(0.1), 6, callback=callback, callback_epochs=[7])


def test_training_loop_never_reads_device_values(data, monkeypatch):
    X, y = data
    stack = init_stack(SIZES, SEEDS, dtype=F64)

    def forbidden(*args, **kwargs):
        raise AssertionError("host read of a tensor value inside the training loop")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    result = train_stack(stack, X, y, Adam(1e-3), 3, batch_size=BATCH, callback_epochs=[1, 3], grad_stats=True)
    monkeypatch.undo()
    assert torch.isfinite(result.loss).all()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_matches_lone_models_and_shared_input_agrees(data, activation):
    X, _ = data
    sizes = (5, 7, 4, 6, 3)
    stack = init_stack(sizes, (10, 11, 12), activation=activation, dtype=F64)
    shared = stack(X)
    per_model, hidden = stack(X.expand(3, *X.shape).clone(), return_hidden=True)
    assert shared.shape == (3, N, 3)
    assert [h.shape for h in hidden] == [(3, N, u) for u in sizes[1:-1]]
    torch.testing.assert_close(shared, per_model, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # the graph-free path (fast CPU tanh) gives the same values
        torch.testing.assert_close(stack(X), shared, rtol=1e-12, atol=1e-12)
        _, hidden_ng = stack(X.expand(3, *X.shape).clone(), return_hidden=True)
        for a, b in zip(hidden_ng, hidden):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for i, seed in enumerate((10, 11, 12)):
        torch.testing.assert_close(per_model[i], lone_net(seed, activation, sizes)(X), rtol=1e-12, atol=1e-12)
    # Hidden activations are post-activation outputs of the first layers.
    expected_h0 = MODULES[activation]()(X @ stack.weights[0][1] + stack.biases[0][1])
    torch.testing.assert_close(hidden[0][1], expected_h0)


def test_init_mlp_is_deterministic_and_linear_like():
    sizes = (200, 100, 3)
    state = torch.get_rng_state()
    a, b = init_mlp(sizes, 5), init_mlp(sizes, 5)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG was not touched
    assert [(w.shape, bb.shape) for w, bb in a] == [((200, 100), (100,)), ((100, 3), (3,))]
    for (wa, ba), (wb, bb) in zip(a, b):
        assert torch.equal(wa, wb) and torch.equal(ba, bb)
    assert not torch.equal(a[0][0], init_mlp(sizes, 6)[0][0])
    for (w, bias), fan_in in zip(a, sizes[:-1]):
        bound = 1 / math.sqrt(fan_in)
        assert w.abs().max() <= bound and bias.abs().max() <= bound
    # Uniform on [-bound, bound]: the big layer reaches close to both ends, std bound/sqrt(3).
    w0 = a[0][0]
    assert w0.max() > 0.99 / math.sqrt(200) and w0.min() < -0.99 / math.sqrt(200)
    assert w0.std().item() == pytest.approx(1 / math.sqrt(3 * 200), rel=0.02)
    # float32 and float64 models of one seed agree up to rounding.
    w64 = init_mlp(sizes, 5, dtype=F64)[0][0]
    assert w0.dtype == torch.float32 and w64.dtype == F64
    torch.testing.assert_close(w64.float(), w0, rtol=0, atol=0)


def test_stack_members_are_lone_models():
    stack = init_stack(SIZES, (3, 9), dtype=F64)
    assert stack.n_models == 2 and stack.n_layers == 3
    assert [tuple(w.shape) for w in stack.weights] == [(2, 5, 8), (2, 8, 6), (2, 6, 3)]
    assert [tuple(b.shape) for b in stack.biases] == [(2, 8), (2, 6), (2, 3)]
    for i, seed in enumerate((3, 9)):
        for (w, b), (w_ref, b_ref) in zip(stack.member(i), init_mlp(SIZES, seed, dtype=F64)):
            assert torch.equal(w, w_ref) and torch.equal(b, b_ref)
    with pytest.raises(ValueError):
        init_stack(SIZES, (1,), activation="swish")
    with pytest.raises(ValueError):
        SGD([0.1, 0.2, 0.3]).init(stack.params)  # 3 learning rates for 2 models


def test_max_stack_size_is_monotone_and_at_least_one():
    sizes = (12, 10, 7, 5, 4, 3, 2)
    budgets = [0, 10**3, 10**5, 10**6, 10**7, 10**8, 10**9, 10**10]
    fits = [max_stack_size(sizes, 4096, 256, b) for b in budgets]
    assert fits[0] == 1 and all(f >= 1 for f in fits)
    assert fits == sorted(fits) and fits[-1] > 1000
    # Bigger batches and wider dtypes cost memory.
    assert max_stack_size(sizes, 4096, None, 10**9) < max_stack_size(sizes, 4096, 256, 10**9)
    assert max_stack_size(sizes, 4096, 256, 10**9, dtype_bytes=8) < fits[-2]


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
