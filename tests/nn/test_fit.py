"""fit_stack: per-model stopping in one stack, equal model by model to train_stack."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorydl.nn import SGD, Adam, PathSGD, init_stack, train_stack
from theorydl.nn.fit import evaluate_stack, fit_stack


def _data(n=96, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, c, generator=g, dtype=torch.float64)
    y = (X @ w).argmax(1)
    return X, y


def _assert_same_models(a, b, i, j, tol=1e-10):
    for wa, wb in zip(a.weights, b.weights):
        torch.testing.assert_close(wa[i], wb[j], atol=tol, rtol=0)
    for ba, bb in zip(a.biases, b.biases):
        torch.testing.assert_close(ba[i], bb[j], atol=tol, rtol=0)


@pytest.mark.parametrize("opt", [SGD([0.1, 0.3, 0.05], momentum=0.9), Adam([1e-2, 3e-3, 1e-3]),
                                 PathSGD([0.05, 0.1, 0.02])])
def test_without_stopping_equals_train_stack(opt):
    X, y = _data()
    sizes, seeds = [6, 16, 3], [0, 1, 2]
    a = init_stack(sizes, seeds, activation="relu", dtype=torch.float64)
    b = init_stack(sizes, seeds, activation="relu", dtype=torch.float64)
    res, fitted = fit_stack(a, X, y, opt, 7, batch_size=20, stop_error=None)
    train_stack(b, X, y, opt, 7, batch_size=20)
    assert list(res.epochs_run) == [7, 7, 7]
    assert list(res.status) == ["max_epochs"] * 3
    for i in range(3):
        _assert_same_models(fitted, b, i, i)


def test_each_model_stops_at_its_own_epoch_and_matches_a_lone_run():
    X, y = _data(n=60)
    sizes, seeds = [6, 32, 3], [3, 4, 5, 6]
    lrs = [0.5, 0.2, 0.05, 1e-4]  # the last one cannot fit in the epochs allowed
    stack = init_stack(sizes, seeds, activation="relu", dtype=torch.float64)
    res, fitted = fit_stack(stack, X, y, SGD(lrs), 60, batch_size=16, X_test=X[:20],
                            y_test=y[:20], record_epochs=[0, 1, 5, 60])
    assert res.status[-1] == "max_epochs" and res.epochs_run[-1] == 60
    fit = [i for i in range(4) if res.status[i] == "fit"]
    assert fit, "some model should fit the training set"
    assert len(set(res.epochs_run[fit])) > 1 or len(fit) == 1
    for i in range(4):
        lone = init_stack(sizes, [seeds[i]], activation="relu", dtype=torch.float64)
        train_stack(lone, X, y, SGD(lrs[i]), int(res.epochs_run[i]), batch_size=16)
        _assert_same_models(fitted, lone, i, 0)
        err, _ = evaluate_stack(lone, X, y)
        if res.status[i] == "fit":
            assert err.item() == 0.0 and res.fit_epoch[i] == res.epochs_run[i]
            assert res.final["train_error"][i] == 0.0
            # Nothing is recorded after the model stopped.
            later = [k for k, e in enumerate(res.record_epochs) if e > res.epochs_run[i]]
            assert np.isnan(res.curves["train_error"][later, i]).all()
        else:
            assert err.item() > 0 and res.fit_epoch[i] == -1
    assert not np.isnan(res.curves["test_error"][0]).any()


def test_loss_threshold_and_divergence():
    X, y = _data(n=40)
    stack = init_stack([6, 8, 3], [0, 1], activation="tanh", dtype=torch.float64)
    res, _ = fit_stack(stack, X, y, SGD([0.5, 1e6]), 30, batch_size=None, stop_error=None,
                       stop_loss=0.5)
    assert res.status[1] == "diverged" or res.final["train_loss"][1] > 0.5
    assert res.status[0] == "fit" and res.final["train_loss"][0] <= 0.5


def test_divergence_is_reported():
    X, y = _data(n=40)
    X = X * 1e3
    stack = init_stack([6, 8, 3], [0, 1], activation="relu", dtype=torch.float32)
    res, _ = fit_stack(stack, X, y, SGD([1e-3, 1e30]), 20, batch_size=None)
    assert res.status[1] == "diverged"
    assert res.epochs_run[1] < 20
    assert res.status[0] != "diverged"


def test_evaluate_stack_chunks_agree():
    X, y = _data(n=50)
    stack = init_stack([6, 5, 3], [0, 1], dtype=torch.float64)
    e1, l1 = evaluate_stack(stack, X, y, chunk=7)
    e2, l2 = evaluate_stack(stack, X, y, chunk=1000)
    torch.testing.assert_close(e1, e2)
    torch.testing.assert_close(l1, l2)


def test_dropout_and_weight_decay_run_and_change_the_result():
    X, y = _data(n=40)
    base = dict(activation="relu", dtype=torch.float64)
    plain, _ = fit_stack(init_stack([6, 8, 3], [0], **base), X, y, SGD(0.1), 5,
                         batch_size=10, stop_error=None)
    _, a = fit_stack(init_stack([6, 8, 3], [0], **base), X, y, SGD(0.1), 5, batch_size=10,
                     stop_error=None)
    _, b = fit_stack(init_stack([6, 8, 3], [0], **base), X, y, SGD(0.1), 5, batch_size=10,
                     stop_error=None, weight_decay=0.1)
    _, c = fit_stack(init_stack([6, 8, 3], [0], **base), X, y, SGD(0.1), 5, batch_size=10,
                     stop_error=None, dropout=0.5)
    assert not torch.allclose(a.weights[0], b.weights[0])
    assert not torch.allclose(a.weights[0], c.weights[0])
    with pytest.raises(ValueError):
        fit_stack(init_stack([6, 8, 3], [0], **base), X, y, SGD(0.1), 5, dropout=1.0)
