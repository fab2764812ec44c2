"""The gating and sharing experiments: the GaLU least squares against a generic solver and
against theory, gates all on against a linear model, tied gradients against an untied
copy under autograd, the targets on a hand-checked case, params errors, the choice on
validation, and both test profiles end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from theorydl.config import ConfigError, read_yaml
from theorydl.experiments.gating import Gating, generalise_arrays
from theorydl.experiments.gating_analysis import generalise_choice
from theorydl.experiments.sharing import Sharing
from theorydl.gating import (GatedNet, PatchNet, Teacher, feature_moments, galu_design,
                             galu_least_squares)
from theorydl.nn import Squared, init_modules
from theorydl.params import load_params
from theorydl.store.rows import build_table


# ------------------------------------------------------------------ GaLU least squares


@pytest.mark.parametrize("n, d, k", [(40, 3, 4), (12, 3, 6)])  # tall (p < n) and wide
def test_closed_form_matches_a_generic_least_squares_solver(n, d, k):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(n, d, generator=g), torch.randn(n, generator=g)
    U = torch.randn(3, k, d, generator=g)
    w, loss = galu_least_squares(X.double(), y.double(), U.double())
    for i in range(3):
        # The design built by hand, neuron by neuron, and numpy's SVD solver.
        phi = np.concatenate([X.numpy() * (X.numpy() @ U[i, j].numpy() >= 0)[:, None]
                              for j in range(k)], axis=1)
        ref, *_ = np.linalg.lstsq(phi.astype(np.float64), y.numpy().astype(np.float64),
                                  rcond=None)
        np.testing.assert_allclose(w[i].reshape(-1).numpy(), ref, atol=1e-8)
        np.testing.assert_allclose(loss[i].item(), np.mean((phi @ ref - y.numpy()) ** 2),
                                   atol=1e-10)
        np.testing.assert_array_equal(galu_design(X, U)[i].numpy(), phi)


def test_least_squares_loss_follows_one_minus_kd_over_m():
    # For a generic design independent of y ~ N(0, 1), the residual's expected mean square
    # is (m - p) / m: here p = kd = m / 2, averaged over 40 gate draws and data sets.
    m, d, k, losses = 64, 4, 8, []
    for s in range(40):
        g = torch.Generator().manual_seed(s)
        X, y = torch.randn(m, d, generator=g), torch.randn(m, generator=g)
        _, loss = galu_least_squares(X, y, torch.randn(1, k, d, generator=g))
        losses.append(loss.item() / y.square().mean().item())
    assert abs(np.mean(losses) - (1 - k * d / m)) < 0.05


def test_gates_all_on_is_the_linear_model():
    # A zero filter opens every gate (1[0 >= 0] = 1).
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(30, 5, generator=g), torch.randn(30, generator=g)
    _, loss = galu_least_squares(X, y, torch.zeros(1, 3, 5))
    ref, *_ = np.linalg.lstsq(X.double().numpy(), y.double().numpy(), rcond=None)
    assert loss.item() == pytest.approx(np.mean((X.double().numpy() @ ref
                                                 - y.double().numpy()) ** 2), abs=1e-6)
    for depth in (1, 2):
        torch.manual_seed(3)
        galu = GatedNet(5, 7, 2, network="galu", depth=depth)
        torch.manual_seed(3)
        linear = GatedNet(5, 7, 2, network="linear", depth=depth)
        galu.filters.zero_()
        assert torch.equal(galu.hidden[0].weight, linear.hidden[0].weight)
        torch.testing.assert_close(galu(X), linear(X))
        galu.gate = "sigmoid"  # a sigmoid gate at 0 is 1/2 per layer, not 1
        torch.testing.assert_close(galu(X), linear(X) * 0.5 ** depth, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------ weight sharing


def test_shared_weight_gets_the_summed_gradient_of_its_tied_positions():
    n, seeds = 4, [0, 1]
    stack = init_modules(lambda: PatchNet(n, shared=True, hidden=5), seeds)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 16, n, n, generator=g), torch.randn(2, 16, generator=g)
    grads = [torch.zeros_like(p) for p in stack.params]
    stack.value_and_grad(x, y, Squared(), grads, shared=False)
    first = stack.names.index("first")
    for i, s in enumerate(seeds):
        untied = PatchNet(n, shared=False, hidden=5)
        state = stack.member(i)
        state["first"] = state["first"].expand(n, n).clone()  # W_ij = w_j for every patch i
        untied.load_state_dict(state)
        loss = (untied(x[i]).squeeze(-1) - y[i]).square().mean()
        loss.backward()
        torch.testing.assert_close(grads[first][i], untied.first.grad.sum(0))
        assert not torch.allclose(untied.first.grad[0], untied.first.grad[1])  # really tied


def test_targets_on_a_hand_checked_case():
    t = Teacher(np.array([1.0, -2.0]), sigma="relu", beta=3.0)
    mean, std = 3 / math.sqrt(2 * math.pi), math.sqrt(5 * (0.5 - 0.5 / math.pi))
    assert t.moments == pytest.approx((mean, std))
    # Patch 1 = (0.5, -1): f_1 = relu(0.5) + relu(2) = 2.5; patch 2 = (-1, 0.25): f_2 = 0.
    x = torch.tensor([[[0.5, -1.0], [-1.0, 0.25]]], dtype=torch.float64)
    z1, z2 = (2.5 - mean) / std, (0.0 - mean) / std
    assert t.target(x, "low").item() == pytest.approx(z1)
    high = math.cos(3 * z1) + math.cos(3 * z2)  # sqrt(2 / n) = 1 for n = 2
    assert t.target(x, "high").item() == pytest.approx(high)
    assert t.target(x, "mixed", 0.5).item() == pytest.approx(high + 0.5 * z1)


def test_feature_moments_of_tanh_match_sampling_and_targets_have_unit_scale():
    w = np.array([0.3, -1.5, 2.0])
    mean, std = feature_moments(w, "tanh")
    x = np.random.default_rng(0).standard_normal((400_000, 3))
    f = np.tanh(x * w).sum(1)
    assert mean == pytest.approx(f.mean(), abs=0.01) and std == pytest.approx(f.std(), rel=0.01)
    t = Teacher.random(6, 0, "tanh", 4.0)
    z = t.features(torch.randn(20_000, 6, 6, generator=torch.Generator().manual_seed(0),
                               dtype=torch.float64))
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    # The high part barely correlates with the low one: it is high-frequency.
    x = torch.randn(20_000, 6, 6, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    low, high = t.target(x, "low"), t.target(x, "high")
    assert abs(torch.corrcoef(torch.stack([low, high]))[0, 1]) < 0.05


# ------------------------------------------------------------------ params, analysis


def _params(repo_root, **sections):
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    for name, change in sections.items():
        for key, value in change.items():
            if isinstance(value, dict):
                profile[name].setdefault(key, {}).update(value)
            else:
                profile[name][key] = value
    return load_params(repo_root / "params.yaml", profile)


@pytest.mark.parametrize("sections, needle", [
    ({"gating": {"memorise": {"ratios": [0.3]}}}, "gating.memorise"),
    ({"gating": {"memorise": {"networks": ["tanh"]}}}, "gating.memorise.networks"),
    ({"gating": {"generalise": {"lrs": [0.0]}}}, "gating.generalise.lrs"),
    ({"gating": {"generalise": {"widhts": [3]}}}, "widhts"),
    ({"sharing": {"log_every": 7}}, "log_every"),
    ({"sharing": {"targets": ["low", "low"]}}, "sharing.targets"),
])
def test_bad_params_are_named(repo_root, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        _params(repo_root, **sections)


def test_lr_and_alpha_are_chosen_on_validation_never_test():
    rows = [  # the candidate with the best validation error has the worse test error
        {"lr": 0.1, "alpha": 1.0, "validation_error": 0.10, "test_error": 0.30},
        {"lr": 0.01, "alpha": 1.0, "validation_error": 0.20, "test_error": 0.05},
        {"lr": 0.1, "alpha": 10.0, "validation_error": 0.15, "test_error": 0.01},
    ]
    df = pd.DataFrame([{"study": "generalise", "kind": "final", "status": "ok",
                        "network": "galu", "k": 8, "train_error": 0.0, **r} for r in rows])
    best = generalise_choice(df)
    assert len(best) == 1
    assert (best.lr[0], best.alpha[0], best.test_error[0]) == (0.1, 1.0, 0.30)


def _run(exp, params, tmp_path):
    base = getattr(params, exp.name)
    cfg = base.model_copy(update={"paths": base.paths.model_copy(update={
        k: str(tmp_path / v) for k, v in base.paths.model_dump().items()})})
    if "data" in exp.pipeline():
        exp.data(params, cfg)
        exp.check_data(cfg)
    specs = exp.trials(cfg)
    results = [r for u in exp.units(specs, cfg) for r in exp.run_unit(u, cfg)]
    assert all(r.status == "ok" for r in results), [r.error for r in results][:1]
    table = build_table(specs, results, {"git_sha": None})
    metrics = exp.record_claims(exp.analyze(table, cfg, params), cfg)
    for key, path in cfg.paths.model_dump().items():
        assert (tmp_path / path).exists() or path.startswith(str(tmp_path)), key
    return cfg, metrics


def test_gating_test_profile_end_to_end(repo_root, tmp_path):
    params = _params(repo_root)
    cfg, metrics = _run(Gating(), params, tmp_path)
    assert set(metrics["memorise"]) == {"galu_ls", "galu", "relu", "linear"}
    # Closed form: at kd/m = 1 nearly interpolates (a gate open on fewer than d of the
    # 32 points costs rank), well below kd/m = 1/2.
    ls = metrics["memorise"]["galu_ls"]
    assert ls["kd_m_100"] < 0.05 < ls["kd_m_050"]
    assert set(metrics["generalise"]) == {"relu", "galu"}
    assert metrics["generalise"]["galu"]["k8"]["alpha"] == 1.0
    claims = json.loads(open(cfg.paths.metrics).read())["claims"]
    assert claims["mnist_k96_relu"]["verdict"] == "not checkable at this scale"
    arrays = generalise_arrays(cfg)  # PCA: whitened on the training set
    x = np.concatenate([arrays["x_fit"], arrays["x_val"]])
    np.testing.assert_allclose(x.std(0), 1.0, rtol=1e-3)
    assert x.shape[1] == 8


def test_sharing_test_profile_end_to_end(repo_root, tmp_path):
    params = _params(repo_root)
    cfg, metrics = _run(Sharing(), params, tmp_path)
    assert set(metrics) >= {"low", "high", "mixed_c1", "claims"}
    assert metrics["mixed_c1"]["shared_over_unshared"] > 0
    curve = open(cfg.paths.final_plot).read().splitlines()
    assert curve[0] == "c,shared,unshared" and len(curve) == 2
