"""The weight-sharing proxy: tied gradients against an untied copy under autograd, the
teacher's moments and targets on a hand-checked case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from theorydl.nn import Squared, init_modules
from theorydl.studies.sharing.teacher import PatchNet, Teacher, feature_moments


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
