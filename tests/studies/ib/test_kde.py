"""Pairwise-distance (KL / Bhattacharyya) bounds against closed forms and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from theorydl.studies.ib.kde import KDEBounds, kde_information

F64 = torch.float64


def _h_y_bits(y: torch.Tensor) -> float:
    p = torch.bincount(y).double() / len(y)
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


def _random_stack(seed: int, m: int, n: int, units: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    acts = torch.tanh(2.0 * torch.randn(m, n, units, generator=g, dtype=F64))
    y = torch.randint(0, 2, (n,), generator=g)
    return acts, y


def test_two_separated_clusters_closed_form():
    # h takes two values a, b (N/2 each), D = |a - b|^2.  Every row sum is
    # (N/2)(1 + exp(-D / c)), so I = log2(2 / (1 + exp(-D / c))) with c = 2 sigma^2
    # (upper, KL) or 8 sigma^2 (lower, Bhattacharyya).
    n = 64
    acts = torch.zeros(1, n, 3, dtype=F64)
    acts[0, n // 2 :, 0] = 1.0  # D = 1
    cluster = (torch.arange(n) >= n // 2).long()
    for var in (0.01, 0.1, 0.3, 1.0, 10.0):
        upper = math.log2(2 / (1 + math.exp(-1 / (2 * var))))
        lower = math.log2(2 / (1 + math.exp(-1 / (8 * var))))
        r = kde_information(acts, cluster, var)
        assert r.i_xt_upper.item() == pytest.approx(upper, abs=1e-12)
        assert r.i_xt_lower.item() == pytest.approx(lower, abs=1e-12)
        # y = cluster: within a class the mixture is one Gaussian, I(X;T|Y) = 0.
        assert r.i_ty_upper.item() == pytest.approx(upper, abs=1e-12)
        assert r.i_ty_lower.item() == pytest.approx(lower, abs=1e-12)
        # y independent of the cluster (half of each in each class): I(T;Y) = 0.
        r0 = kde_information(acts, torch.arange(n) % 2, var)
        assert abs(r0.i_ty_upper.item()) < 1e-12 and abs(r0.i_ty_lower.item()) < 1e-12
    # Small sigma: both bounds ~ 1 bit.
    r = kde_information(acts.float(), cluster, 1e-3)
    assert r.i_xt_lower.item() == pytest.approx(1.0, abs=1e-6)
    assert r.i_xt_upper.item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_order_and_range_on_random_layers(seed):
    rng = np.random.default_rng(seed)
    m, n, units = int(rng.integers(1, 4)), int(rng.integers(2, 200)), int(rng.integers(1, 6))
    acts, y = _random_stack(seed, m, n, units)
    acts = acts.float() if seed % 2 else acts
    var = float(10.0 ** rng.uniform(-4, 2))
    r = kde_information(acts, y, var, chunk_size=2)
    tol = 1e-4 if acts.dtype == torch.float32 else 1e-10
    assert all(t.shape == (m,) and t.dtype == F64 for t in r)
    assert torch.all(r.i_xt_lower <= r.i_xt_upper)
    assert torch.all(r.i_xt_lower >= -tol) and torch.all(r.i_xt_upper <= math.log2(n) + tol)
    # Each I(T;Y) estimate is mean_i log2(S_own / S_all * N / N_y) <= H(Y), as S_own <= S_all.
    assert torch.all(r.i_ty_upper <= _h_y_bits(y) + tol)
    assert torch.all(r.i_ty_lower <= _h_y_bits(y) + tol)


def test_small_sigma_limit_is_log2_n():
    acts, y = _random_stack(1, 3, 300, 4)
    r = kde_information(acts, y, 1e-8)
    for t in (r.i_xt_lower, r.i_xt_upper):
        torch.testing.assert_close(t, torch.full((3,), math.log2(300), dtype=F64))
    for t in (r.i_ty_lower, r.i_ty_upper):
        torch.testing.assert_close(t, torch.full((3,), _h_y_bits(y), dtype=F64))


def test_large_sigma_limit_is_zero():
    acts, y = _random_stack(2, 3, 300, 4)
    r = kde_information(acts, y, 1e6)
    for t in r:
        assert torch.all(t.abs() < 1e-5)
    # Second-order expansion: U ~ mean_ij |h_i - h_j|^2 / (2 sigma^2 ln 2) and L is 4x
    # smaller.
    d2 = torch.cdist(acts, acts).square().mean(dim=(1, 2))
    torch.testing.assert_close(r.i_xt_upper, d2 / (2e6 * math.log(2)), rtol=1e-4, atol=0)
    torch.testing.assert_close(r.i_xt_lower, d2 / (8e6 * math.log(2)), rtol=1e-4, atol=0)


def test_monotone_in_sigma():
    acts, y = _random_stack(3, 2, 200, 3)
    prev = None
    for var in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0):
        r = kde_information(acts, y, var)
        if prev is not None:
            assert torch.all(r.i_xt_upper <= prev.i_xt_upper + 1e-12)
            assert torch.all(r.i_xt_lower <= prev.i_xt_lower + 1e-12)
        prev = r


def _direct(h: torch.Tensor, y: torch.Tensor, var: float) -> list[float]:
    """Textbook transcription (float64 logsumexp) for one model, in bits."""
    n = h.shape[0]
    d2 = ((h[:, None, :] - h[None, :, :]) ** 2).sum(-1)

    def mi(block: torch.Tensor, c: float) -> float:
        k = len(block)
        return float(math.log(k) - torch.logsumexp(-block / c, dim=1).mean())

    out = []
    for c in (8 * var, 2 * var):
        xt = mi(d2, c)
        cond = sum(
            (y == k).sum().item() / n * mi(d2[y == k][:, y == k], c) for k in torch.unique(y)
        )
        out.append((xt / math.log(2), (xt - cond) / math.log(2)))
    (xt_lo, ty_lo), (xt_up, ty_up) = out
    return [xt_lo, xt_up, ty_lo, ty_up]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_batched_and_chunked_equal_per_model_direct_formula(n_classes):
    g = torch.Generator().manual_seed(7)
    m, n = 5, 150
    acts = torch.tanh(torch.randn(m, n, 4, generator=g, dtype=F64))
    y = torch.randint(0, n_classes, (n,), generator=g)
    var = 0.05
    full = kde_information(acts, y, var, chunk_size=m)
    for chunk in (1, 2, 3):
        chunked = kde_information(acts, y, var, chunk_size=chunk)
        for a, b in zip(full, chunked):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for k in range(m):
        single = kde_information(acts[k : k + 1], y, var)
        expect = _direct(acts[k], y, var)
        for a, b, e in zip(full, single, expect):
            assert a[k].item() == pytest.approx(b.item(), abs=1e-12)
            assert a[k].item() == pytest.approx(e, abs=1e-10)


def test_float32_close_to_float64():
    acts, y = _random_stack(4, 2, 500, 5)
    r64 = kde_information(acts, y, 0.1)
    r32 = kde_information(acts.float(), y, 0.1)
    for a, b in zip(r64, r32):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_rejects_nonpositive_variance():
    with pytest.raises(ValueError):
        kde_information(torch.zeros(1, 4, 2), torch.zeros(4, dtype=torch.long), 0.0)


def test_returns_named_bounds():
    r = kde_information(torch.zeros(2, 4, 2), torch.tensor([0, 0, 1, 1]), 1.0)
    assert isinstance(r, KDEBounds)
    for t in r:  # all points equal: no information at all
        assert torch.all(t.abs() < 1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    acts, y = _random_stack(5, 4, 1000, 6)
    cpu = kde_information(acts.float(), y, 0.1)
    gpu = kde_information(acts.float().cuda(), y.cuda(), 0.1, chunk_size=2)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(b.cpu(), a, rtol=0, atol=1e-4)


def test_no_graph_on_live_activations():
    acts = torch.randn(2, 30, 3, requires_grad=True)
    r = kde_information(acts, torch.arange(30) % 2, 0.1)
    assert not any(t.requires_grad for t in r)


@pytest.mark.parametrize("n_classes", [1, 2, 3])
def test_blocked_and_indicator_paths_equal_direct_formula(monkeypatch, n_classes):
    # CPU: class-sorted strips above the diagonal (forced small here, so that every class
    # has several strips and models go in groups with a shorter last one); other
    # devices: indicator sums.
    from theorydl.studies.ib import kde

    g = torch.Generator().manual_seed(11)
    m, n = 3, 97
    acts = torch.tanh(torch.randn(m, n, 3, generator=g, dtype=F64))
    y = torch.randint(0, n_classes, (n,), generator=g)
    monkeypatch.setattr(kde, "_CPU_STRIP_ELEMENTS", 200)
    monkeypatch.setattr(kde, "_CPU_BLOCK_ELEMENTS", 400)
    blocked = kde_information(acts, y, 0.05)
    monkeypatch.setattr(kde, "_on_host", lambda device: False)
    indicator = kde_information(acts, y, 0.05, chunk_size=2)
    for k in range(m):
        expect = _direct(acts[k], y, 0.05)
        for a, b, e in zip(blocked, indicator, expect):
            assert a[k].item() == pytest.approx(e, abs=1e-10)
            assert b[k].item() == pytest.approx(e, abs=1e-10)


def _host_and_indicator(monkeypatch, acts, y, var, strip, block):
    """The CPU strip path with the given strip and block sizes, and the indicator path."""
    from theorydl.studies.ib import kde

    with monkeypatch.context() as mp:
        mp.setattr(kde, "_CPU_STRIP_ELEMENTS", strip)
        mp.setattr(kde, "_CPU_BLOCK_ELEMENTS", block)
        host = kde_information(acts, y, var)
    with monkeypatch.context() as mp:
        mp.setattr(kde, "_on_host", lambda device: False)
        indicator = kde_information(acts, y, var, chunk_size=3)
    return host, indicator


@pytest.mark.parametrize("seed", range(16))
def test_strips_equal_indicator_path_in_float32(monkeypatch, seed):
    # Random stacks in float32: odd and tiny N, up to 5 classes (some absent, some with
    # one member), strips of 1 row up to whole classes, model groups with a shorter last
    # one, and noise from tiny (the log-kernel clamp is needed) to wide (it is skipped).
    rng = np.random.default_rng(100 + seed)
    m, n = int(rng.integers(1, 8)), int(rng.integers(1, 260))
    units = int(rng.integers(1, 11))
    acts = torch.from_numpy(np.tanh(2 * rng.standard_normal((m, n, units))).astype(np.float32))
    if seed % 4 == 0:  # saturated: many exact duplicates
        acts = torch.sign(acts)
    y = torch.from_numpy(rng.integers(0, int(rng.integers(1, 6)), n))
    var = float(10.0 ** rng.uniform(-4, 2)) if seed > 2 else (1e-4, 0.1, 10.0)[seed]
    strip = int(rng.choice([1, 37, 500, 1 << 14]))
    block = int(rng.choice([1, 300, 5000, 1 << 18]))
    host, indicator = _host_and_indicator(monkeypatch, acts, y, var, strip, block)
    for a, b in zip(host, indicator):
        assert a.shape == (m,) and a.dtype == F64 and not torch.isnan(a).any()
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # and the float64 textbook formula, to float32 precision
    for k in range(m):
        for a, e in zip(host, _direct(acts[k].double(), y, var)):
            assert a[k].item() == pytest.approx(e, abs=1e-4)


def test_edge_cases_of_the_strip_path(monkeypatch):
    # One input; two inputs of two classes; all inputs equal; N not a multiple of the
    # strips; a class of one member.
    for acts, y in [
        (torch.randn(2, 1, 3), torch.tensor([1])),
        (torch.tensor([[[0.0], [1.0]]]), torch.tensor([0, 1])),
        (torch.full((3, 50, 2), 0.7), torch.arange(50) % 3),
        (torch.randn(4, 101, 5), (torch.arange(101) > 99).long()),
    ]:
        host, indicator = _host_and_indicator(monkeypatch, acts, y, 0.1, 64, 300)
        for a, b in zip(host, indicator):
            assert not torch.isnan(a).any()
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    r = kde_information(torch.full((3, 50, 2), 0.7), torch.arange(50) % 3, 0.1)
    assert all(torch.all(t.abs() < 1e-6) for t in r)


def test_workspaces_are_reused_without_stale_state(monkeypatch):
    # Later calls of a shape reuse its buffers and views: results must not depend on
    # what an earlier call left there, nor on whether the workspace was cached.
    from theorydl.studies.ib import kde

    g = torch.Generator().manual_seed(5)
    a, b = (torch.tanh(torch.randn(6, 300, 4, generator=g)) for _ in range(2))
    y = torch.randint(0, 3, (300,), generator=g)
    first = kde_information(a, y, 0.1)
    other = kde_information(b, y, 0.1)
    again = kde_information(a, y, 0.1)
    for p, q in zip(first, again):
        assert torch.equal(p, q)
    monkeypatch.setattr(kde, "_WORKSPACE_CACHE_BYTES", 0)  # keeps only the newest
    kde_information(a[:, :200], y[:200], 0.1)
    fresh = kde_information(b, y, 0.1)
    for p, q in zip(other, fresh):
        assert torch.equal(p, q)


def test_workspaces_made_in_inference_mode_serve_later_calls(monkeypatch):
    # A workspace built under torch.inference_mode must still take in-place writes from
    # a later call outside it (and the other way round).
    import threading

    from theorydl.studies.ib import kde

    monkeypatch.setattr(kde, "_WORKSPACES", threading.local())  # none cached yet
    acts, y = torch.rand(3, 50, 4), torch.arange(50) % 2
    with torch.inference_mode():
        inside = kde_information(acts, y, 0.1)
    outside = kde_information(acts, y, 0.1)
    with torch.inference_mode():
        again = kde_information(acts, y, 0.1)
    for p, q, r in zip(inside, outside, again):
        assert torch.equal(p, q) and torch.equal(p, r)
