"""GaLU least squares against a generic solver and against theory; gates all on against
a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorydl.studies.gating.galu import GatedNet, galu_design, galu_least_squares


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
