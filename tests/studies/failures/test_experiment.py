"""The failures experiment: its tasks against theory (gradient variance over parities,
cond(W), the straight-through gradient, line labels), params errors, and the test
profile's trials through the analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from theorydl.nn.modules import straight_through
from theorydl.params import load_params
from theorydl.spine.claims import as_metrics
from theorydl.spine.config import ConfigError, read_yaml
from theorydl.spine.store.rows import build_table
from theorydl.studies.failures import learners, tasks
from theorydl.studies.failures.experiment import Failures
from theorydl.studies.failures.learners import ExpectedReward, TupleHinge, _StepNet


def _params_with(repo_root, **failures):
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    profile["failures"].update(failures)
    return load_params(repo_root / "params.yaml", profile)


@pytest.mark.parametrize("change, needle", [
    ({"families": ["parity", "xor"]}, "failures.families"),
    ({"parity": {"dims": [4, 4]}}, "failures.parity.dims"),
    ({"conditioning": {"ns": [5]}}, "failures.conditioning.ns"),
    ({"flat": {"methods": ["isotron"]}}, "failures.flat.methods"),
    ({"lines": {"lr": -1.0}}, "failures.lines.lr"),
    ({"parity": {"n_log": 50000}}, "n_log"),
    ({"parityy": {}}, "parityy"),
])
def test_bad_params_are_named(repo_root, change, needle):
    with pytest.raises(ConfigError, match=needle):
        _params_with(repo_root, **change)


# --------------------------------------------------------------------- theory


def test_parity_gradient_variance_enumerated_equals_closed_form():
    """Every x and every parity S enumerated, gradients from autograd on an nn.Module,
    against Var = G²/2^d - ||∇p(1)||²/4^d (which is below Theorem 1's bound G²/2^d)."""
    d, h = 5, 13
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, 1)).double()
    params = list(net.parameters())

    def jac(x):  # per-sample gradients of p by autograd, (2^d, P)
        rows = []
        for xi in x:
            grads = torch.autograd.grad(net(xi[None])[0, 0], params)
            rows.append(torch.cat([g.flatten() for g in grads]))
        return torch.stack(rows)

    enumerated = tasks.parity_grad_variance_enumerated(jac, d)
    w1, b1 = net[0].weight.detach().T, net[0].bias.detach()
    w2 = net[2].weight.detach().T
    closed = tasks.parity_grad_variance(w1, b1, w2, exact=True)
    assert closed["variance"] == pytest.approx(enumerated, rel=1e-10)
    assert closed["variance"] < closed["bound"]
    # The analytic Jacobian (the pipeline's) agrees with autograd's, column order aside.
    x = tasks.all_signs(d)
    assert tasks.parity_jacobian(x, w1, b1, w2).square().sum(1) == pytest.approx(
        jac(x).square().sum(1), rel=1e-10)
    # Sampled E_x: unbiased, near the exact value with many samples.
    sampled = tasks.parity_grad_variance(w1, b1, w2, exact=False, samples=20000,
                                         generator=torch.Generator().manual_seed(1))
    assert sampled["g2"] == pytest.approx(closed["g2"], rel=0.05)


def test_parity_variance_of_an_input_blind_gradient():
    """Where ∇p(x) is the same vector J for every x (zero input weights and positive
    biases: only the bias terms move; ||J||² depends on x through ||x||² = d alone), only
    the constant parity correlates with it: Var = ||J||² (2^-d - 4^-d) exactly."""
    for d in (3, 6, 9):
        w1 = torch.zeros(d, 3)
        v = tasks.parity_grad_variance(w1, torch.ones(3), torch.ones(3, 1), exact=True)
        assert v["variance"] == pytest.approx(v["g2"] * (2.0**-d - 4.0**-d), rel=1e-12)
        assert v["log2_bound"] == pytest.approx(math.log2(v["g2"]) - d)


def test_pwl_condition_against_a_direct_computation():
    for n in (3, 5, 12):
        w = np.array([[max(0, i - j + 1) for j in range(n)] for i in range(n)], float)
        assert np.array_equal(tasks.pwl_matrix(n), w)
        assert tasks.pwl_condition(n) == pytest.approx(np.linalg.cond(w), rel=1e-9)
    # W p gives the curve; the second difference [1, -2, 1] gives p back.
    f, p = tasks.pwl_sampler(30)(torch.Generator().manual_seed(0), 4)
    assert torch.allclose(tasks.patches(f) @ torch.tensor([1.0, -2.0, 1.0]), p, atol=1e-4)


def test_straight_through_gradient_on_a_hand_checked_case():
    """u = staircase with steps at 0, 1, 2: forward u(r) = floor on [0, 3), backward 1.
    r = w x + b with w = 0.7, b = 0.1, x = 2: r = 1.5, u = 1; for the loss (u - 3)²
    the gradient is 2 (u - 3) * 1 * x = -8 for w and -4 for b (u' taken as 1)."""
    z = torch.tensor([0.0, 1.0, 2.0])
    w = torch.tensor(0.7, requires_grad=True)
    b = torch.tensor(0.1, requires_grad=True)
    r = (w * 2.0 + b).reshape(1, 1)
    u = straight_through(lambda t: tasks.staircase(t, z), r)
    assert u.item() == pytest.approx(1.0)
    ((u - 3.0) ** 2).sum().backward()
    assert w.grad.item() == pytest.approx(-8.0)
    assert b.grad.item() == pytest.approx(-4.0)
    # The same through the forward-only learner's module.
    net = _StepNet(1, 3, "forward_only", 5.0, 10.0)
    net.z.copy_(z)
    with torch.no_grad():
        net.lin.weight.fill_(0.7)
        net.lin.bias.fill_(0.1)
    out = net(torch.tensor([[2.0]]))
    ((out - 3.0) ** 2).sum().backward()
    assert out.item() == pytest.approx(1.0)
    assert net.lin.weight.grad.item() == pytest.approx(-8.0)


def test_staircase_and_its_classes():
    z = torch.tensor([-1.0, 0.0, 0.5, 2.0])
    r = torch.tensor([-0.5, 0.0, 0.49, 0.5, 3.0])
    assert tasks.staircase(r[:, None], z)[:, 0].tolist() == [-1.0, 0.0, 0.0, 0.5, 2.0]
    assert tasks.stair_classes(r, z).tolist() == [0, 1, 1, 2, 3]


def test_line_images_labels_follow_their_angles():
    g = torch.Generator().manual_seed(3)
    images, theta, bit = tasks.line_images(g, 400)
    assert images.shape == (400, 28, 28) and set(images.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(bit, torch.where(theta < math.pi / 2, 1.0, -1.0))
    assert (images.sum((1, 2)) >= 2).all()  # length >= 5: at least the centre and a neighbour
    # The drawn pixels lie on the line: their spread is along (cos θ, sin θ).
    for i in range(20):
        pts = images[i].nonzero().double()
        if len(pts) < 6:
            continue
        evals, evecs = torch.linalg.eigh(torch.cov(pts.T))
        axis = evecs[:, -1]
        assert abs(axis[0] * math.cos(theta[i]) + axis[1] * math.sin(theta[i])) > 0.95
    # Tuple labels: +1 exactly when an odd number of bits are +1.
    x, y = tasks.lines_sampler(3)(torch.Generator().manual_seed(4), 64)
    odd = (y[:, 1:] > 0).sum(1) % 2 == 1
    assert torch.equal(y[:, 0], torch.where(odd, 1.0, -1.0))


def test_tuple_hinge_matches_autograd():
    z = torch.randn(2, 4, 5, requires_grad=True)
    y = torch.randint(0, 2, (2, 5, 4)).float() * 2 - 1
    for weight in (0.0, 1.0):
        per, dz = TupleHinge(weight)(z.detach(), y)
        yt = y.transpose(1, 2)
        h = torch.relu(1 - yt * z)
        ref = h[:, 0] + weight * h[:, 1:].mean(1)
        assert torch.allclose(per, ref)
        (g,) = torch.autograd.grad(ref.sum(), z)
        assert torch.allclose(dz, g)


def test_expected_reward_matches_autograd():
    z = torch.randn(2, 5, 3, requires_grad=True)
    y = torch.randn(2, 3, 5)
    per, dz = ExpectedReward()(z.detach(), y)
    ref = -(torch.softmax(z, 1) * y.transpose(1, 2)).sum(1)
    assert torch.allclose(per, ref)
    (g,) = torch.autograd.grad(ref.sum(), z)
    assert torch.allclose(dz, g, atol=1e-6)


def test_stocks_targets_have_the_decomposition_as_mean():
    """E[z | x] is the one-hot of the best stock: the two losses share their expected
    gradient."""
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    x1, z = tasks.stocks_sampler(3, 4, False)(g1, 20000)
    x2, hot = tasks.stocks_sampler(3, 4, True)(g2, 1)
    best = tasks.draw_stocks(torch.Generator().manual_seed(0), 3, 4)
    for i in range(3):
        rows = z[x1[:, i] > 0]
        expected = torch.nn.functional.one_hot(best[i], 4).float()
        assert torch.allclose(rows.mean(0), expected, atol=0.05)


def test_whitened_convolution_learns_the_second_difference():
    c = {"size": 20, "iterations": 300, "method": "whitened", "lr": 0.01,
         "batch_size": 50, "whitening_samples": 500, "eval_samples": 100, "n_log": 3}
    rows = learners.train_conditioning(c, [0], torch.device("cpu"))[0]
    taps = [r for r in rows if r["kind"] == "filter"][0]
    assert [taps[f"tap{j}"] for j in range(3)] == pytest.approx([1.0, -2.0, 1.0], abs=0.02)
    curve = [r["eval_error"] for r in rows if r["kind"] == "curve"]
    assert curve[0] == pytest.approx(1.0) and curve[-1] < 1e-3  # zero init: error 1 at start


def test_a_model_sees_the_same_target_and_stream_in_a_stack_as_alone():
    """The parity's v* is the head of the model's own stream: seed 1 trains the same in a
    stack with seed 0 as alone."""
    c = {"size": 4, "iterations": 30, "hidden_factor": 3, "lr": 0.05, "batch_size": 16,
         "n_log": 3, "eval_samples": 64}
    both = learners.train_parity(c, [0, 1], torch.device("cpu"))[1]
    alone = learners.train_parity(c, [1], torch.device("cpu"))[0]
    assert [r["accuracy"] for r in both] == [r["accuracy"] for r in alone]
    assert both[0]["train_loss"] is None  # period 0: before any step
    assert [r["train_loss"] for r in both[1:]] == pytest.approx(
        [r["train_loss"] for r in alone[1:]], rel=1e-5)


# -------------------------------------------------------------------- pipeline


def _cfg_at(cfg, folder):
    """``cfg`` with every path under ``folder``, on the CPU."""
    paths = {k: str(folder / v) for k, v in cfg.paths.model_dump().items()}
    return cfg.model_copy(update={"paths": cfg.paths.model_copy(update=paths), "device": "cpu"})


@pytest.fixture(scope="module")
def trained(repo_root, tmp_path_factory):
    """The test profile's trials, run in-process: (params, cfg, the train table)."""
    params = load_params(repo_root / "params.yaml",
                         read_yaml(repo_root / "profiles" / "test.yaml"))
    cfg = _cfg_at(params.failures, tmp_path_factory.mktemp("failures"))
    exp = Failures()
    specs = exp.trials(cfg)
    units = exp.units(specs, cfg)
    # One stack per (family, size, method), the seeds together.
    assert len(units) == len({exp.stack_key(s) for s in specs})
    assert all(len(u.trials) == cfg.n_seeds for u in units)
    results = [r for u in units for r in exp.run_unit(u, cfg)]
    assert all(r.status == "ok" for r in results), [r.error for r in results if r.error][:1]
    return params, cfg, build_table(specs, results, {"git_sha": None})


def test_test_profile_trains_and_analyzes(trained, figures_fit):
    params, cfg, table = trained
    exp = Failures()
    metrics = exp.write_analysis(exp.analyze(table, cfg, params), cfg)
    on_disk = {"claims": json.loads(open(cfg.paths.claims).read())}
    assert on_disk["claims"]["parity_variance_one_bit_per_dimension"]["verdict"] == "reproduced"
    assert metrics["parity"]["variance_within_bound"] is True
    assert set(metrics["conditioning"]["filter"]) == {"conv", "whitened"}
    slope = metrics["conditioning"]["cond_squared_loglog_slope"]
    assert 3.5 < slope < 4.5
    assert set(metrics["flat"]["final_error"]) == set(cfg.flat.methods)
    assert set(metrics["lines"]["log10_snr"]) == set(cfg.lines.methods)
    assert on_disk["claims"]["stocks_moment_ratio_grows_like_k"]["verdict"] == "reproduced"
    for claim in ("parity_d30_fails", "lines_end_to_end_fails_k3", "whitened_conv_orders_faster"):
        assert on_disk["claims"][claim]["verdict"] == "not checkable at this scale"
    for key in ("figure_parity", "figure_conditioning", "figure_flat", "figure_lines",
                "figure_stocks", "parity_plot", "variance_plot", "conditioning_plot",
                "flat_plot", "lines_plot", "stocks_plot"):
        assert Path(getattr(cfg.paths, key)).exists(), key
    figures_fit(Path(cfg.paths.figure_parity).parent)
    assert on_disk["claims"] == metrics["claims"]
    assert json.loads(open(cfg.paths.metrics).read()) == {
        **metrics, "claims": as_metrics(metrics["claims"])}


def test_analysis_writes_nothing(trained, tmp_path):
    """The analysis is pure: the spine writes its plot data, figures and metrics."""
    from theorydl.studies.failures import analysis

    params, cfg, table = trained
    result = analysis.analyze(table, _cfg_at(params.failures, tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert set(result.plots) == {k for k in cfg.paths.model_dump() if k.endswith("_plot")}
    assert set(result.frames) == set(result.metrics["families"]) == set(cfg.families)
