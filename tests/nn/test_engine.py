"""The training engine, model by model against torch.nn + torch.optim: the MLP fast path
and the generic torch.func path (a CNN, a gated network, a network with weights tied
across patches), every loss, every optimiser, stopping rules, fresh-data streams."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from theorydl.nn import SGD, Adam, FitRule, Hook, PathSGD, init_mlp, init_stack, train
from theorydl.nn.engine import Arrays, Stream, data_generator, evaluate
from theorydl.nn.losses import LOSSES
from theorydl.nn.modules import init_modules, module_bytes, seeded, straight_through

F64 = torch.float64
N, BATCH, EPOCHS = 24, 10, 3  # 3 steps an epoch, the last of 4 samples

# ------------------------------------------------------------------ references


def reference_loss(name: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The batch-mean loss as a PyTorch user writes it; z (b, C)."""
    if name == "cross_entropy":
        return F.cross_entropy(z, y)
    if name == "multi_hinge":
        return F.multi_margin_loss(z, y)
    if name == "hinge":
        return torch.clamp(1 - y * z[:, 0], min=0).mean()
    if name == "squared":
        return F.mse_loss(z[:, 0], y) if y.dim() == 1 else F.mse_loss(z, y)
    raise KeyError(name)


def targets(name: str, n: int, classes: int, gen: torch.Generator) -> torch.Tensor:
    if name in ("cross_entropy", "multi_hinge"):
        return torch.randint(0, classes, (n,), generator=gen)
    if name == "hinge":
        return torch.randint(0, 2, (n,), generator=gen).to(F64) * 2 - 1
    return torch.randn(n, generator=gen, dtype=F64)


def outputs_for(name: str, classes: int) -> int:
    return 1 if name in ("hinge", "squared") else classes


def lone_train(net, X, y, loss, opt, epochs, batch_size, seed):
    """A plain loop: model i's documented data order, one torch.optim step a minibatch.
    Returns the per-epoch mean losses."""
    gen = data_generator(seed)
    n, losses = X.shape[0], []
    for _ in range(epochs):
        if batch_size is None or batch_size >= n:
            batches = [torch.arange(n)]
        else:
            perm = torch.randperm(n, generator=gen)
            batches = [perm[s:s + batch_size] for s in range(0, n, batch_size)]
        total = 0.0
        for idx in batches:
            opt.zero_grad()
            value = reference_loss(loss, net(X[idx]), y[idx])
            value.backward()
            opt.step()
            total += value.item() * len(idx)
        losses.append(total / n)
    return torch.tensor(losses, dtype=F64)


OPTIMISERS = {
    "sgd-momentum": (lambda lrs: SGD(lrs, momentum=0.9),
                     lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)),
    "sgd-weight-decay": (lambda lrs: SGD(lrs, weight_decay=0.05),
                         lambda p, lr: torch.optim.SGD(p, lr=lr, weight_decay=0.05)),
    "adam": (lambda lrs: Adam(lrs, weight_decay=0.01),
             lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=0.01)),
}
LRS = {"sgd-momentum": (0.05, 0.02, 0.1), "sgd-weight-decay": (0.05, 0.02, 0.1),
       "adam": (3e-3, 1e-3, 1e-2)}


# ----------------------------------------------------------------- families


class SmallCNN(nn.Module):
    """Conv (3x3, 4 channels) - ReLU - average pooling - linear: a small CNN."""

    def __init__(self, out: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(4 * 2 * 2, out)

    def forward(self, x):
        h = F.avg_pool2d(torch.relu(self.conv(x)), 2)
        return self.head(h.flatten(1))


class Gated(nn.Module):
    """GaLU: (w^T x) * 1[u^T x > 0] with gates u fixed at random (a buffer), summed by
    a trained linear read-out."""

    def __init__(self, d: int, k: int, out: int):
        super().__init__()
        self.register_buffer("gates", torch.randn(d, k))
        self.w = nn.Linear(d, k)
        self.readout = nn.Linear(k, out)

    def forward(self, x):
        return self.readout(self.w(x) * (x @ self.gates > 0).to(x.dtype))


class Tied(nn.Module):
    """One filter tied across the non-overlapping patches of a 1-D input (unfold), then a
    linear layer: weight sharing written out."""

    def __init__(self, d: int, patch: int, out: int):
        super().__init__()
        self.patch = patch
        self.filter = nn.Parameter(torch.randn(patch, 3) / math.sqrt(patch))
        self.head = nn.Linear(3 * (d // patch), out)

    def forward(self, x):
        patches = x.unflatten(-1, (-1, self.patch))  # (b, d / patch, patch)
        return self.head(torch.tanh(patches @ self.filter).flatten(-2))


def seq_cnn(out: int) -> nn.Sequential:
    """A CNN as a plain Sequential: the folded path (models in the channel axis)."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, stride=1, groups=2), nn.Tanh(), nn.AvgPool2d(1),
                         nn.Flatten(), nn.Linear(6, 5), nn.Sigmoid(), nn.Linear(5, out))


def family_case(kind: str, out: int):
    """(build, X) for a family kind."""
    gen = torch.Generator().manual_seed(7)
    if kind == "seqcnn":
        return (lambda: seq_cnn(out)), torch.randn(N, 1, 6, 6, generator=gen, dtype=F64)
    if kind == "seqmlp":
        return ((lambda: nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, out))),
                torch.randn(N, 5, generator=gen, dtype=F64))
    if kind == "cnn":
        return (lambda: SmallCNN(out)), torch.randn(N, 1, 6, 6, generator=gen, dtype=F64)
    if kind == "gated":
        return (lambda: Gated(5, 6, out)), torch.randn(N, 5, generator=gen, dtype=F64)
    if kind == "tied":
        return (lambda: Tied(8, 4, out)), torch.randn(N, 8, generator=gen, dtype=F64)
    raise KeyError(kind)


def assert_modules_equal(stack, i, net, tol=1e-9):
    state = stack.member(i)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(state[name], value, rtol=tol, atol=1e-11, msg=name)


# --------------------------------------------------------------------- losses


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_values_and_gradients_match_torch(name):
    gen = torch.Generator().manual_seed(0)
    m, b, c = 3, 7, 4
    out = outputs_for(name, c)
    z = torch.randn(m, out, b, generator=gen, dtype=F64)
    y = torch.stack([targets(name, b, c, gen) for _ in range(m)])
    per_sample, dz = LOSSES[name](z.clone(), y)
    for i in range(m):
        zi = z[i].T.clone().requires_grad_()  # (b, C)
        ref = reference_loss(name, zi, y[i])
        (g,) = torch.autograd.grad(ref, zi)
        torch.testing.assert_close(per_sample[i].mean(), ref.detach())
        torch.testing.assert_close(dz[i].T / b, g)


def test_squared_loss_takes_several_outputs():
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(2, 3, 5, generator=gen, dtype=F64)
    y = torch.randn(2, 5, 3, generator=gen, dtype=F64)
    per_sample, dz = LOSSES["squared"](z, y)
    zi = z[1].T.clone().requires_grad_()
    ref = F.mse_loss(zi, y[1])
    (g,) = torch.autograd.grad(ref, zi)
    torch.testing.assert_close(per_sample[1].mean(), ref.detach())
    torch.testing.assert_close(dz[1].T / 5, g)


# ------------------------------------------------------------ MLP fast path


def lone_mlp(sizes, seed, activation="tanh"):
    layers = []
    for l, (w, b) in enumerate(init_mlp(sizes, seed, dtype=F64)):
        lin = nn.Linear(*w.shape, dtype=F64)
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(b)
        layers.append(lin)
        if l < len(sizes) - 2:
            layers.append({"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}[activation]())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])  # elu: the autograd path
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_mlp_every_loss_trains_like_lone_models(loss, activation):
    gen = torch.Generator().manual_seed(3)
    classes, seeds, lrs = 3, (0, 1, 2), LRS["adam"]
    sizes = (5, 7, outputs_for(loss, classes))
    X = torch.randn(N, 5, generator=gen, dtype=F64)
    y = targets(loss, N, classes, gen)
    stack = init_stack(sizes, seeds, activation=activation, dtype=F64)
    res = train(stack, Arrays(X, y), Adam(lrs, weight_decay=0.01), EPOCHS, loss=loss,
                batch_size=BATCH)
    for i, seed in enumerate(seeds):
        net = lone_mlp(sizes, seed, activation)
        losses = lone_train(net, X, y, loss,
                            torch.optim.Adam(net.parameters(), lr=lrs[i], weight_decay=0.01),
                            EPOCHS, BATCH, seed)
        lins = [mod for mod in net if isinstance(mod, nn.Linear)]
        for l, lin in enumerate(lins):
            torch.testing.assert_close(stack.weights[l][i], lin.weight.detach().T,
                                       rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(stack.biases[l][i], lin.bias.detach(),
                                       rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(res.loss[i], losses, rtol=1e-9, atol=1e-11)


# --------------------------------------------------------------- generic path


@pytest.mark.parametrize("opt", sorted(OPTIMISERS))
@pytest.mark.parametrize("kind", ["cnn", "gated", "tied", "seqcnn", "seqmlp"])
def test_module_families_train_like_lone_models_under_every_optimiser(kind, opt):
    stacked_opt, torch_opt = OPTIMISERS[opt]
    self_check_family(kind, "cross_entropy", stacked_opt, torch_opt, LRS[opt])


@pytest.mark.parametrize("loss", ["multi_hinge", "hinge", "squared"])
@pytest.mark.parametrize("kind", ["cnn", "gated", "tied", "seqcnn", "seqmlp"])
def test_module_families_train_like_lone_models_under_every_loss(kind, loss):
    stacked_opt, torch_opt = OPTIMISERS["sgd-momentum"]
    self_check_family(kind, loss, stacked_opt, torch_opt, LRS["sgd-momentum"])


def self_check_family(kind, loss, stacked_opt, torch_opt, lrs, batch_size=BATCH):
    gen = torch.Generator().manual_seed(11)
    classes, seeds = 3, (4, 5, 6)
    build, X = family_case(kind, outputs_for(loss, classes))
    y = targets(loss, N, classes, gen)
    stack = init_modules(build, seeds, dtype=F64)
    res = train(stack, Arrays(X, y), stacked_opt(list(lrs)), EPOCHS, loss=loss,
                batch_size=batch_size)
    for i, seed in enumerate(seeds):
        net = seeded(build, seed, dtype=F64)
        losses = lone_train(net, X, y, loss, torch_opt(net.parameters(), lrs[i]), EPOCHS,
                            batch_size, seed)
        assert_modules_equal(stack, i, net)
        torch.testing.assert_close(res.loss[i], losses, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["cnn", "seqcnn", "seqmlp"])
def test_full_batch_generic_path(kind):
    stacked_opt, torch_opt = OPTIMISERS["adam"]
    self_check_family(kind, "cross_entropy", stacked_opt, torch_opt, LRS["adam"],
                      batch_size=None)


@pytest.mark.parametrize("kind", ["seqcnn", "seqmlp"])
def test_folded_path_equals_vmap_path(kind):
    build, X = family_case(kind, 3)
    y = torch.randint(0, 3, (N,), generator=torch.Generator().manual_seed(1))
    folded = init_modules(build, (0, 1, 2), dtype=F64)
    plain = init_modules(build, (0, 1, 2), dtype=F64, fold=False)
    assert folded.folded and not plain.folded
    assert not init_modules(lambda: SmallCNN(3), (0,)).folded  # a custom forward: vmap
    torch.testing.assert_close(folded.outputs_t(X), plain.outputs_t(X))
    per_model = X.expand(3, *X.shape)
    grads = [[torch.empty_like(p) for p in s.params] for s in (folded, plain)]
    from theorydl.nn.losses import LOSSES
    for s, g in zip((folded, plain), grads):
        s.value_and_grad(per_model, y.expand(3, N), LOSSES["cross_entropy"], g, shared=False)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_fixed_gates_stay_fixed_and_differ_by_seed():
    build, X = family_case("gated", 2)
    stack = init_modules(build, (0, 1), dtype=F64)
    gates = stack.constants["gates"].clone()
    assert not torch.equal(gates[0], gates[1])
    train(stack, Arrays(X, torch.zeros(N, dtype=torch.long)), SGD(0.1), 2)
    assert torch.equal(stack.constants["gates"], gates)
    assert "gates" not in stack.names


# -------------------------------------------------------------- stopping rules


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_each_model_stops_at_its_own_epoch_and_equals_a_lone_run(kind):
    gen = torch.Generator().manual_seed(5)
    seeds, lrs = (0, 1, 2, 3), [0.5, 0.2, 0.05, 1e-5]  # the last cannot fit in time
    if kind == "mlp":
        X = torch.randn(N, 4, generator=gen, dtype=F64)
        y = (X[:, 0] > 0).long()

        def make(s):
            return init_stack((4, 16, 2), s, activation="relu", dtype=F64)
    else:
        _, X = family_case("cnn", 2)
        y = (X.mean((1, 2, 3)) > 0).long()

        def make(s):
            return init_modules(lambda: SmallCNN(2), s, dtype=F64)
    stack = make(seeds)
    rule = FitRule(len(seeds), X, y, periods=40, record=[0, 5, 40])
    res = train(stack, Arrays(X, y), SGD(lrs, momentum=0.9), 40, batch_size=8, hooks=[rule])
    out = rule.result(res.periods_run)
    assert out.status[-1] == "max_epochs" and res.periods_run[-1] == 40
    fit = [i for i in range(4) if out.status[i] == "fit"]
    assert fit and len(set(res.periods_run[fit])) > 1
    for i in range(4):
        lone = make([seeds[i]])
        train(lone, Arrays(X, y), SGD([lrs[i]], momentum=0.9), int(res.periods_run[i]),
              batch_size=8)
        for a, b in zip(stack.params, lone.params):
            torch.testing.assert_close(a[i], b[0], rtol=0, atol=1e-10)
        err, _ = evaluate(lone, X, y)
        if out.status[i] == "fit":
            assert err.item() == 0.0 and out.fit_epoch[i] == res.periods_run[i]
        # NaN after the stop; the losses before it are each model's own.
        assert torch.isnan(res.loss[i, int(res.periods_run[i]):]).all()


def test_pathsgd_with_stopping_and_repeated_seeds():
    gen = torch.Generator().manual_seed(9)
    X = torch.randn(N, 4, generator=gen, dtype=F64)
    y = (X[:, 1] > 0).long()
    seeds, lrs = (0, 0, 1), [0.05, 1e-6, 0.05]  # same seed, different lr
    stack = init_stack((4, 8, 2), seeds, activation="relu", dtype=F64)
    rule = FitRule(3, X, y, periods=30)
    res = train(stack, Arrays(X, y), PathSGD(lrs), 30, batch_size=8, hooks=[rule])
    for i in range(3):
        lone = init_stack((4, 8, 2), [seeds[i]], activation="relu", dtype=F64)
        train(lone, Arrays(X, y), PathSGD([lrs[i]]), int(res.periods_run[i]), batch_size=8)
        for a, b in zip(stack.params, lone.params):
            torch.testing.assert_close(a[i], b[0], rtol=0, atol=1e-10)


def test_divergence_stops_a_model_and_spares_the_others():
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(N, 4, generator=gen, dtype=F64)
    y = torch.randn(N, generator=gen, dtype=F64)
    stack = init_stack((4, 8, 1), (0, 1), activation="relu", dtype=F64)
    rule = FitRule(2, X, y, loss="squared", periods=30, stop_error=None)
    res = train(stack, Arrays(X, y), SGD([1e-2, 1e3]), 30, loss="squared", hooks=[rule])
    out = rule.result(res.periods_run)
    assert list(out.status) == ["max_epochs", "diverged"]
    assert res.periods_run[0] == 30 and res.periods_run[1] < 30
    assert torch.isfinite(stack.weights[0][0]).all()


# ------------------------------------------------------------------ streams


def test_stream_of_fresh_data_trains_like_lone_models():
    def sample(g: torch.Generator, b: int):
        x = torch.randint(0, 2, (b, 6), generator=g).to(F64) * 2 - 1
        return x, x[:, :3].prod(1)  # a parity of 3 bits, in {-1, +1}

    seeds, lrs, steps = (0, 1), [0.05, 0.1], 7
    stack = init_stack((6, 12, 1), seeds, activation="relu", dtype=F64)
    res = train(stack, Stream(sample, steps_per_period=steps), SGD(lrs), 2, loss="hinge",
                batch_size=5)
    assert res.loss.shape == (2, 2)
    for i, seed in enumerate(seeds):
        net = lone_mlp((6, 12, 1), seed, "relu")
        opt = torch.optim.SGD(net.parameters(), lr=lrs[i])
        g, total = data_generator(seed), []
        for _ in range(2 * steps):
            x, y = sample(g, 5)
            opt.zero_grad()
            value = reference_loss("hinge", net(x), y)
            value.backward()
            opt.step()
            total.append(value.item())
        lins = [mod for mod in net if isinstance(mod, nn.Linear)]
        torch.testing.assert_close(stack.weights[0][i], lins[0].weight.detach().T,
                                   rtol=1e-9, atol=1e-11)
        assert res.loss[i, 1].item() == pytest.approx(sum(total[steps:]) / steps, rel=1e-9)


# --------------------------------------------------------- hooks, backward rules


def test_gradient_statistics_reach_hooks_for_a_module_family():
    build, X = family_case("tied", 2)
    y = (X[:, 0] > 0).long()
    seen = {}

    class Probe(Hook):
        grad_stats = True

        def at(self, t, periods):
            return t in (0, 2)

        def __call__(self, period):
            seen[period.t] = (period.grad_mean_norm, period.grad_std_norm)
            if period.t:
                torch.testing.assert_close(period.grad_snr,
                                           period.grad_mean_norm / period.grad_std_norm)

    stack = init_modules(build, (0, 1), dtype=F64)
    train(stack, Arrays(X, y), SGD(0.1), 2, batch_size=BATCH, hooks=[Probe()])
    assert seen[0] == (None, None)
    mean, std = seen[2]
    weights = [n for n in stack.names if n.endswith("weight")]
    assert mean.shape == std.shape == (len(weights), 2)
    assert (mean > 0).all() and (std > 0).all()


def test_straight_through_gradient_by_hand():
    x = torch.tensor([0.2, 1.7, -0.6], requires_grad=True)
    step = straight_through(torch.floor, x)
    assert step.tolist() == [0.0, 1.0, -1.0]
    (g,) = torch.autograd.grad((step * torch.tensor([1.0, 2.0, 3.0])).sum(), x)
    assert g.tolist() == [1.0, 2.0, 3.0]  # floor' = 0 everywhere; the rule passes 1


def test_module_with_straight_through_trains_in_a_stack():
    class Staircase(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def forward(self, x):
            return straight_through(torch.floor, self.lin(x))

    gen = torch.Generator().manual_seed(4)
    X = torch.randn(N, 3, generator=gen, dtype=F64)
    y = torch.floor(X @ torch.tensor([1.0, -2.0, 0.5], dtype=F64))
    stack = init_modules(Staircase, (0, 1), dtype=F64)
    before = stack.tensors[0].clone()
    res = train(stack, Arrays(X, y), SGD(0.01), 20, loss="squared")
    assert not torch.equal(before, stack.tensors[0])
    assert (res.loss[:, -1] < res.loss[:, 0]).all()


def test_module_bytes_grows_with_batch_and_width():
    small = module_bytes(lambda: SmallCNN(3), (1, 6, 6), 8, 64)
    assert module_bytes(lambda: SmallCNN(3), (1, 6, 6), 64, 64) > small
    assert module_bytes(lambda: Gated(5, 60, 3), (5,), 8, 64) > module_bytes(
        lambda: Gated(5, 6, 3), (5,), 8, 64)


def test_bad_input_is_refused_clearly():
    stack = init_stack((3, 4, 2), (0,))
    X, y = torch.randn(5, 3), torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match="loss"):
        train(stack, Arrays(X, y), SGD(0.1), 1, loss="l7")
    with pytest.raises(ValueError, match="batch_size"):
        train(stack, Stream(lambda g, b: (X[:b], y[:b])), SGD(0.1), 1)
    with pytest.raises(ValueError, match="samples"):
        train(stack, Arrays(X, y[:4]), SGD(0.1), 1)
    with pytest.raises(ValueError, match="dropout"):
        train(init_modules(lambda: nn.Linear(3, 2), (0,)), Arrays(X, y), SGD(0.1), 1,
              dropout=0.5)


def test_class_argmax_is_argmax_over_outputs_ties_included():
    from theorydl.nn.losses import class_argmax

    gen = torch.Generator().manual_seed(8)
    z = torch.randint(0, 3, (4, 5, 33), generator=gen).to(F64)  # many ties
    assert torch.equal(class_argmax(z), z.argmax(1))


class _StopAt(Hook):
    """Stops original model i after period ``at[i]`` (forces compaction mid-run)."""

    def __init__(self, at):
        self.stop_at = at

    def at(self, t, periods):
        return t > 0

    def __call__(self, period):
        period.stop([j for j, i in enumerate(period.models) if self.stop_at[i] == period.t],
                    "scheduled")


@pytest.mark.parametrize("batch_size", [None, 8])
def test_per_model_targets_train_each_model_on_its_own_labels(batch_size):
    gen = torch.Generator().manual_seed(11)
    seeds, stops = (0, 1, 2), (3, 9, 12)
    X = torch.randn(N, 4, generator=gen, dtype=F64)
    ys = torch.randint(0, 2, (len(seeds), N), generator=gen)
    stack = init_stack((4, 6, 2), seeds, activation="tanh", dtype=F64)
    res = train(stack, Arrays(X, ys, per_model=True), SGD([0.3] * 3, momentum=0.5), 12,
                batch_size=batch_size, hooks=[_StopAt(stops)])
    assert list(res.periods_run) == [3, 9, 12]
    for i, seed in enumerate(seeds):
        lone = init_stack((4, 6, 2), [seed], activation="tanh", dtype=F64)
        alone = train(lone, Arrays(X, ys[i]), SGD([0.3], momentum=0.5), stops[i],
                      batch_size=batch_size)
        for a, b in zip(stack.params, lone.params):
            torch.testing.assert_close(a[i], b[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(res.loss[i, :stops[i]], alone.loss[0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="per-model targets"):
        train(stack, Arrays(X, ys[:2], per_model=True), SGD(0.1), 1)
