"""Binning estimator against information-theoretic facts and the np.unique reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from theorydl.studies.ib.binning import (
    adaptive_edges,
    bin_indices,
    binned_information,
    binned_information_reference,
    fixed_edges,
)
from theorydl.studies.ib.dataset import all_patterns, binary_entropy_bits, labels

X = torch.from_numpy(all_patterns())  # (4096, 12) in {0, 1}
Y_NP, _ = labels(all_patterns())
Y = torch.from_numpy(Y_NP)
H_Y = binary_entropy_bits(float(Y_NP.mean()))
N = X.shape[0]


def _h_bits(p: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


@pytest.mark.parametrize("edges", [fixed_edges(), adaptive_edges(X[None])])
def test_identity_layer_keeps_all_information(edges):
    # 0 and 1 land in different bins, so binned T = X: I(X;T) = log2 4096, I(T;Y) = H(Y).
    i_xt, i_ty = binned_information(X[None], Y, edges)
    assert i_xt.dtype == torch.float64 and i_xt.shape == (1,)
    assert i_xt.item() == pytest.approx(12.0, abs=1e-12)
    assert i_ty.item() == pytest.approx(H_Y, abs=1e-12)


@pytest.mark.parametrize("value", [0.3, -5.0, 7.0])
def test_constant_layer_has_no_information(value):
    acts = torch.full((3, N, 4), value)
    for edges in (fixed_edges(), adaptive_edges(acts)):
        i_xt, i_ty = binned_information(acts, Y, edges)
        assert torch.all(i_xt.abs() < 1e-12) and torch.all(i_ty.abs() < 1e-12)


def test_layer_of_the_label_carries_exactly_h_y():
    # T = Y: I(X;T) = H(T) = H(Y) and I(T;Y) = H(Y).
    acts = (2.0 * Y.float() - 1.0)[None, :, None] * torch.ones(2, 1, 3)
    i_xt, i_ty = binned_information(acts, Y, fixed_edges())
    torch.testing.assert_close(i_xt, torch.full((2,), H_Y, dtype=torch.float64))
    torch.testing.assert_close(i_ty, torch.full((2,), H_Y, dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 4, 11])
def test_bits_independent_of_the_label_carry_none_of_it(k):
    # y = last input bit, T = first k bits: independent under uniform X, so I(T;Y) = 0
    # while I(X;T) = k bits.
    y_last = X[:, -1].long()
    i_xt, i_ty = binned_information(X[None, :, :k], y_last, fixed_edges())
    assert i_xt.item() == pytest.approx(k, abs=1e-12)
    assert i_ty.item() == pytest.approx(0.0, abs=1e-12)


def _random_case(rng: np.random.Generator):
    m = int(rng.integers(1, 5))
    n = int(rng.integers(2, 300))
    units = int(rng.integers(1, 8))
    n_bins = int(rng.integers(1, 40))
    n_classes = int(rng.integers(1, 4))
    scale = float(10.0 ** rng.uniform(-2, 1))
    acts = torch.from_numpy(np.tanh(scale * rng.standard_normal((m, n, units))).astype(np.float32))
    # Coarse rounding makes ties between rows (and bins) common.
    if rng.random() < 0.5:
        acts = torch.round(acts * 4) / 4
    y = torch.from_numpy(rng.integers(0, n_classes, n))
    edges = fixed_edges(n_bins) if rng.random() < 0.5 else adaptive_edges(acts, n_bins)
    return acts, y, edges, n_classes


def test_bounds_and_reference_on_many_random_layers():
    rng = np.random.default_rng(1234)
    for _ in range(150):
        acts, y, edges, n_classes = _random_case(rng)
        i_xt, i_ty = binned_information(acts, y, edges, n_classes=n_classes)
        h_y = _h_bits(np.bincount(y.numpy(), minlength=n_classes))
        assert torch.all(i_xt >= -1e-12) and torch.all(i_xt <= math.log2(acts.shape[1]) + 1e-9)
        assert torch.all(i_ty >= -1e-9) and torch.all(i_ty <= h_y + 1e-9)
        assert torch.all(i_ty <= i_xt + 1e-9)
        ref_xt, ref_ty = binned_information_reference(acts.numpy(), y.numpy(), edges.numpy())
        np.testing.assert_allclose(i_xt.numpy(), ref_xt, atol=1e-9)
        np.testing.assert_allclose(i_ty.numpy(), ref_ty, atol=1e-9)


def test_entropy_bounded_by_occupied_cells():
    # Two units, <= 30 bins each: H(T) <= log2(#occupied cells of the 30 x 30 grid).
    rng = np.random.default_rng(5)
    for _ in range(8):
        acts = torch.from_numpy(rng.standard_normal((4, 1000, 2)).astype(np.float32) * 0.4)
        edges = fixed_edges(30)
        i_xt, _ = binned_information(acts, torch.zeros(1000, dtype=torch.long), edges)
        cells = bin_indices(acts, edges).numpy()
        for m in range(4):
            occupied = len(np.unique(cells[m], axis=0))
            assert occupied <= 900
            assert i_xt[m].item() <= math.log2(occupied) + 1e-12


def test_coarser_nested_bins_lose_information():
    # Data processing: with nested edges (4 | 8 | 16 bins on [-1, 1], exact in binary)
    # the coarse binning is a function of the fine one, so H cannot increase.
    rng = np.random.default_rng(9)
    acts = torch.from_numpy(np.tanh(rng.standard_normal((6, N, 3))).astype(np.float32))
    results = [binned_information(acts, Y, fixed_edges(b)) for b in (4, 8, 16)]
    for (xt_c, ty_c), (xt_f, ty_f) in zip(results, results[1:]):
        assert torch.all(xt_c <= xt_f + 1e-12)
        assert torch.all(ty_c <= ty_f + 1e-12)


def test_fixed_and_adaptive_bins_on_a_relu_layer():
    # One ReLU-like unit uniform on [0, 5).  Fixed tanh bins (30 on [-1, 1], width 1/15):
    # 14 bins of mass 1/75 on [0, 14/15) and everything >= 14/15 saturating in the last
    # bin (mass 61/75).  Adaptive bins (30 on [0, max]): nearly uniform, log2 30.
    t = (5.0 * torch.arange(N, dtype=torch.float64) / N)[None, :, None]
    expected_fixed = _h_bits(np.array([1 / 75] * 14 + [61 / 75]))
    i_fixed, _ = binned_information(t, Y, fixed_edges(dtype=torch.float64))
    i_adaptive, _ = binned_information(t, Y, adaptive_edges(t))
    assert i_fixed.item() == pytest.approx(expected_fixed, abs=5e-3)
    assert i_adaptive.item() == pytest.approx(math.log2(30), abs=5e-3)
    assert i_fixed.item() < i_adaptive.item() - 2.0


def test_adaptive_edges_span_each_models_range():
    acts = torch.stack([torch.linspace(-2, 3, 40), torch.linspace(0, 1, 40)])[:, :, None]
    edges = adaptive_edges(acts, n_bins=5)
    torch.testing.assert_close(edges[0], torch.linspace(-2, 3, 6))
    torch.testing.assert_close(edges[1], torch.linspace(0, 1, 6))
    idx = bin_indices(acts, edges)
    assert idx.min() == 0 and idx.max() == 4
    assert torch.all(torch.bincount(idx[0, :, 0]) == 8)


def test_batched_equals_reference_for_every_model_with_many_words_and_classes():
    # 25 units x 30 bins x 3 classes needs three int64 words: exercises the lexsort.
    rng = np.random.default_rng(3)
    acts = torch.from_numpy(np.tanh(rng.standard_normal((5, 600, 25))).astype(np.float32))
    # Duplicate some rows so that multi-word ties occur.
    acts[:, 300:] = acts[:, :300]
    acts[:, 300:450, -1] = 0.99  # differ only in the last unit (the last word)
    y = torch.from_numpy(rng.integers(0, 3, 600))
    for edges in (fixed_edges(), adaptive_edges(acts)):
        i_xt, i_ty = binned_information(acts, y, edges, n_classes=3)
        ref_xt, ref_ty = binned_information_reference(acts.numpy(), y.numpy(), edges.numpy())
        np.testing.assert_allclose(i_xt.numpy(), ref_xt, atol=1e-9)
        np.testing.assert_allclose(i_ty.numpy(), ref_ty, atol=1e-9)


def test_invariant_to_permuting_units():
    rng = np.random.default_rng(11)
    acts = torch.from_numpy(np.tanh(2 * rng.standard_normal((4, N, 6))).astype(np.float32))
    perm = torch.from_numpy(rng.permutation(6))
    for edges in (fixed_edges(), adaptive_edges(acts)):
        a = binned_information(acts, Y, edges)
        b = binned_information(acts[:, :, perm], Y, edges)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_weights_equal_duplicated_samples():
    # p(x) proportional to multiplicities == uniform over the duplicated sample set.
    rng = np.random.default_rng(2)
    n = 200
    acts = torch.from_numpy(np.tanh(rng.standard_normal((3, n, 2))).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, n))
    mult = torch.from_numpy(rng.integers(1, 5, n))
    dup = torch.repeat_interleave(torch.arange(n), mult)
    edges = fixed_edges(8)
    weighted = binned_information(acts, y, edges, weights=mult.double())
    duplicated = binned_information(acts[:, dup], y[dup], edges)
    torch.testing.assert_close(weighted, duplicated, rtol=0, atol=1e-12)
    ref = binned_information_reference(acts.numpy(), y.numpy(), edges.numpy(), weights=mult.numpy())
    np.testing.assert_allclose(weighted[0].numpy(), ref[0], atol=1e-12)
    np.testing.assert_allclose(weighted[1].numpy(), ref[1], atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(4)
    acts = torch.from_numpy(np.tanh(rng.standard_normal((8, N, 5))).astype(np.float32))
    cpu = binned_information(acts, Y, adaptive_edges(acts))
    acts_cuda, y_cuda = acts.cuda(), Y.cuda()
    gpu = binned_information(acts_cuda, y_cuda, adaptive_edges(acts_cuda))
    torch.testing.assert_close((gpu[0].cpu(), gpu[1].cpu()), cpu, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n_bins", [3, 7, 30, 100])
def test_values_on_and_just_below_edges(n_bins):
    # e_k <= t < e_{k+1}: an edge value opens its bin, the float just below closes the
    # previous one; both ends saturate.
    edges = torch.stack([fixed_edges(n_bins), fixed_edges(n_bins, -0.3, 2.9)])
    below = torch.nextafter(edges, torch.tensor(-math.inf))
    acts = torch.cat([edges, below, edges - 10, edges + 10], dim=1)[..., None]
    idx = bin_indices(acts, edges)[..., 0]
    k = torch.arange(n_bins + 1)
    expect_on = k.clamp(max=n_bins - 1)
    expect_below = (k - 1).clamp(min=0)
    for m in range(2):
        row = idx[m].split(n_bins + 1)
        torch.testing.assert_close(row[0], expect_on)
        torch.testing.assert_close(row[1], expect_below)
        assert torch.all(row[2] == 0) and torch.all(row[3] == n_bins - 1)


def test_no_graph_on_live_activations():
    acts = torch.randn(2, 30, 3, requires_grad=True)
    y = torch.arange(30) % 2
    for edges in (fixed_edges(), adaptive_edges(acts)):
        assert not edges.requires_grad
        assert not any(t.requires_grad for t in binned_information(acts, y, edges))


def _adversarial_case(rng: np.random.Generator, dtype: torch.dtype):
    """Activations on, just below and just above the edges, saturated values, exact
    zeros and random values; fixed edges or per-model edges far from zero (where the
    quotient (t - lo) / width loses most digits)."""
    m, units = 3, 4
    n_bins = int(rng.integers(2, 40))
    if rng.random() < 0.5:
        edges = fixed_edges(n_bins, dtype=dtype)
    else:
        lo = torch.from_numpy(rng.uniform(-1e3, 1e3, m)).to(dtype)
        span = torch.from_numpy(10.0 ** rng.uniform(-3, 2, m)).to(dtype)
        edges = adaptive_edges(torch.stack([lo, lo + span], dim=1)[:, :, None], n_bins)
    e = edges.expand(m, -1)
    inf = torch.tensor(math.inf, dtype=dtype)
    pieces = [e, torch.nextafter(e, -inf), torch.nextafter(e, inf), e - 1, e + 1,
              torch.zeros_like(e), torch.ones_like(e), -torch.ones_like(e)]
    lo, hi = e[:, :1], e[:, -1:]
    pieces.append(lo + (hi - lo) * torch.from_numpy(rng.random((m, 200))).to(dtype))
    flat = torch.cat(pieces, dim=1)
    n = flat.shape[1] // units * units
    acts = flat[:, torch.from_numpy(rng.permutation(flat.shape[1])[:n])].reshape(m, -1, units)
    return acts, edges


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_bins_equal_exact_edge_comparison(monkeypatch, dtype):
    # The CPU fast path (arithmetic bin, exact check only near edges) against the
    # one-step correction of every value against the actual edges.
    from theorydl.studies.ib import binning

    rng = np.random.default_rng(21)
    for _ in range(40):
        acts, edges = _adversarial_case(rng, dtype)
        fast = bin_indices(acts, edges)
        with monkeypatch.context() as mp:
            mp.setattr(binning, "_on_host", lambda device: False)
            exact = bin_indices(acts, edges)
        torch.testing.assert_close(fast, exact, rtol=0, atol=0)
        ref = np.stack([np.digitize(acts[k].numpy(), edges.expand(3, -1)[k, 1:-1].numpy())
                        for k in range(3)])
        np.testing.assert_array_equal(fast.numpy(), ref)


def test_host_and_device_paths_agree(monkeypatch):
    # numpy sort and run lengths (CPU) against torch.sort and scatter_add (other devices).
    from theorydl.studies.ib import binning

    rng = np.random.default_rng(8)
    for _ in range(30):
        acts, y, edges, n_classes = _random_case(rng)
        host = binned_information(acts, y, edges, n_classes=n_classes)
        with monkeypatch.context() as mp:
            mp.setattr(binning, "_on_host", lambda device: False)
            device = binned_information(acts, y, edges, n_classes=n_classes)
        torch.testing.assert_close(host, device, rtol=0, atol=1e-12)


def _layouts(acts: torch.Tensor) -> list[torch.Tensor]:
    """The same activations as contiguous, feature-major (a transposed view, as the
    stack's forward pass makes them) and model-minor (another strided view)."""
    feature_major = acts.transpose(1, 2).contiguous().transpose(1, 2)
    model_minor = acts.permute(1, 0, 2).contiguous().permute(1, 0, 2)
    return [acts, feature_major, model_minor]


@pytest.mark.parametrize("convention", ["clip", "idnns"])
@pytest.mark.parametrize("chunk", [1, 700, 1 << 17])
def test_host_codes_equal_reference_in_any_layout(monkeypatch, chunk, convention):
    # The CPU path (chunks of models, codes by matrix-vector products, flagged values
    # fixed per row) against the np.unique reference and the device path, on random
    # and adversarial (on / just off the edges) layers: codes below 2**24 (float32),
    # below 2**31 (int32 sort) and above (float64); one, several and a partial last
    # chunk of models.
    from theorydl.studies.ib import binning

    monkeypatch.setattr(binning, "_CPU_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(31)
    cases = [_random_case(rng) for _ in range(25)]
    for dtype in (torch.float32, torch.float64):
        for _ in range(6):
            acts, edges = _adversarial_case(rng, dtype)
            cases.append((acts, torch.from_numpy(rng.integers(0, 3, acts.shape[1])), edges, 3))
    for acts, y, edges, n_classes in cases:
        ref_xt, ref_ty = binned_information_reference(acts.numpy(), y.numpy(), edges.numpy(),
                                                      convention=convention)
        with monkeypatch.context() as mp:
            mp.setattr(binning, "_on_host", lambda device: False)
            device = binned_information(acts, y, edges, n_classes=n_classes,
                                        convention=convention)
        for view in _layouts(acts):
            i_xt, i_ty = binned_information(view, y, edges, n_classes=n_classes,
                                            convention=convention)
            np.testing.assert_allclose(i_xt.numpy(), ref_xt, atol=1e-9)
            np.testing.assert_allclose(i_ty.numpy(), ref_ty, atol=1e-9)
            torch.testing.assert_close((i_xt, i_ty), device, rtol=0, atol=1e-12)


@pytest.mark.parametrize("distinct", [3, 500, 10_000])
def test_run_entropies_from_starts_or_repeats(distinct):
    # Few distinct codes (counted from the run starts) and mostly distinct ones (from
    # the repeats), int32 and float64 codes, against np.unique counts.
    from theorydl.studies.ib.binning import _sorted_run_entropies

    rng = np.random.default_rng(distinct)
    codes = np.sort(rng.integers(0, distinct, (5, 1001)) * 3 + rng.integers(0, 3, (5, 1001)),
                    axis=1)
    for typed in (codes.astype(np.int32), codes.astype(np.float64)):
        h_t, h_ty = _sorted_run_entropies(typed, 3)
        for m in range(5):
            _, c_ty = np.unique(codes[m], return_counts=True)
            _, c_t = np.unique(codes[m] // 3, return_counts=True)
            assert h_ty[m] == pytest.approx(_h_bits(c_ty), abs=1e-12)
            assert h_t[m] == pytest.approx(_h_bits(c_t), abs=1e-12)


def test_bins_and_adaptive_edges_of_strided_views():
    rng = np.random.default_rng(13)
    acts = torch.from_numpy(np.tanh(rng.standard_normal((4, 300, 5))).astype(np.float32))
    cases = [(acts, fixed_edges()), (acts, adaptive_edges(acts))]
    cases += [_adversarial_case(rng, torch.float32) for _ in range(10)]
    for acts, edges in cases:
        for view in _layouts(acts)[1:]:
            assert not view.is_contiguous()
            torch.testing.assert_close(adaptive_edges(view), adaptive_edges(acts), rtol=0, atol=0)
            torch.testing.assert_close(bin_indices(view, edges), bin_indices(acts, edges),
                                       rtol=0, atol=0)


# ---------------------------------------------------------------- the IDNNs convention


def _idnns_reference(acts: np.ndarray, y: np.ndarray, n_edges: int = 30):
    """I(X;T), I(T;Y) in bits of one model's layer (N, units), binned as the original IB
    code (ravidziv/IDNNs, get_information) does, written here from its documented
    behaviour: edges ``np.linspace(-1, 1, n_edges)`` cast to float32, each value replaced
    by ``edges[np.digitize(t, edges) - 1]`` (so values below -1 and values >= 1 both
    become the last edge's value), distinct rows counted, X uniform over the rows."""
    edges = np.linspace(-1, 1, n_edges).astype(np.float32)
    digitized = edges[np.digitize(acts.reshape(-1), edges) - 1].reshape(len(acts), -1)

    def entropy(rows: np.ndarray) -> float:
        _, counts = np.unique(rows, axis=0, return_counts=True)
        return _h_bits(counts)

    h_t = entropy(digitized)
    h_t_given_y = sum((y == c).mean() * entropy(digitized[y == c]) for c in np.unique(y))
    return h_t, h_t - h_t_given_y


def _idnns_cases(rng: np.random.Generator) -> list[np.ndarray]:
    """float32 layers (N, units) where the conventions differ: exactly -1 and 1, beyond
    them, on the original's float32 edges and the floats around them, and tanh units
    saturating (in float32, tanh of a large input is exactly +-1)."""
    edges = np.linspace(-1, 1, 30).astype(np.float32)
    around = np.concatenate([edges, np.nextafter(edges, np.float32(-2)),
                             np.nextafter(edges, np.float32(2)),
                             np.float32([-1, 1, -1.5, 1.5, -7, 7, 0, -0.0])])
    cases = []
    for units in (1, 3, 5):
        n = 600
        picks = rng.choice(around, size=(n, units)).astype(np.float32)
        saturated = np.tanh(rng.standard_normal((n, units)) * 30).astype(np.float32)
        mixed = np.where(rng.random((n, units)) < 0.5, picks, saturated)
        relu = np.maximum(rng.standard_normal((n, units)) * 2, 0).astype(np.float32)
        cases += [picks, saturated, mixed.astype(np.float32), relu]
    return cases


def test_idnns_convention_equals_the_original_binning():
    rng = np.random.default_rng(16)
    edges = fixed_edges(29)  # np.linspace(-1, 1, 30) in float64, cast to float32
    np.testing.assert_array_equal(edges.numpy(), np.linspace(-1, 1, 30).astype(np.float32))
    differ = 0
    for acts in _idnns_cases(rng):
        y = rng.integers(0, 2, len(acts))
        ref_xt, ref_ty = _idnns_reference(acts, y)
        t = torch.from_numpy(acts)[None]
        i_xt, i_ty = binned_information(t, torch.from_numpy(y), edges, convention="idnns")
        assert i_xt.item() == pytest.approx(ref_xt, abs=1e-9)
        assert i_ty.item() == pytest.approx(ref_ty, abs=1e-9)
        # The same through the general path (int64 words, with weights).
        w_xt, w_ty = binned_information(t, torch.from_numpy(y), edges, convention="idnns",
                                        weights=torch.ones(len(acts)))
        assert w_xt.item() == pytest.approx(ref_xt, abs=1e-9)
        assert w_ty.item() == pytest.approx(ref_ty, abs=1e-9)
        # Per value: the original's digitize - 1, with its -1 (below the first edge) the
        # same category as the last edge's (at or above 1).
        idx = bin_indices(t, edges, convention="idnns")[0].numpy()
        np.testing.assert_array_equal(idx, (np.digitize(acts, edges.numpy()) - 1) % 30)
        clip_xt, _ = binned_information(t, torch.from_numpy(y), fixed_edges(30))
        differ += abs(clip_xt.item() - ref_xt) > 1e-6
    assert differ >= len(_idnns_cases(np.random.default_rng(0))) // 2  # the cases matter


@pytest.mark.parametrize("n_bins", [3, 29, 100])
def test_idnns_values_on_and_beyond_the_end_edges(n_bins):
    # e_k <= t < e_{k+1} inside; every value below e_0 or at or above e_n is category
    # n_bins, which clip would have put in bins 0 and n_bins - 1.
    edges = torch.stack([fixed_edges(n_bins), fixed_edges(n_bins, -0.3, 2.9)])
    below = torch.nextafter(edges, torch.tensor(-math.inf))
    acts = torch.cat([edges, below, edges - 10, edges + 10], dim=1)[..., None]
    idx = bin_indices(acts, edges, convention="idnns")[..., 0]
    k = torch.arange(n_bins + 1)
    expect_below = torch.where(k == 0, n_bins, k - 1)
    for m in range(2):
        row = idx[m].split(n_bins + 1)
        torch.testing.assert_close(row[0], k)  # e_n itself: the overflow
        torch.testing.assert_close(row[1], expect_below)
        assert torch.all(row[2] == n_bins) and torch.all(row[3] == n_bins)


def test_a_unit_saturated_at_one_is_set_apart_only_by_idnns():
    # Half the inputs at exactly 1.0, half just below: the original puts them in two
    # categories (1 bit); clip puts them in one bin (0 bits).
    t = torch.full((1, N, 1), 1.0)
    t[0, ::2] = torch.nextafter(torch.tensor(1.0), torch.tensor(0.0))
    y = torch.zeros(N, dtype=torch.long)
    idnns, _ = binned_information(t, y, fixed_edges(29), convention="idnns")
    clip, _ = binned_information(t, y, fixed_edges(30))
    assert idnns.item() == pytest.approx(1.0, abs=1e-12)
    assert clip.item() == pytest.approx(0.0, abs=1e-12)


def test_unknown_convention_is_an_error():
    with pytest.raises(ValueError, match="bin convention"):
        binned_information(torch.zeros(1, 4, 1), torch.zeros(4, dtype=torch.long),
                           fixed_edges(), convention="numpy")


def test_fixed_edges_are_numpys_float64_linspace_cast():
    # torch.linspace in float32 puts the centre edge of [-1, 1] at -5.2e-8, not 0.
    for n_bins, dtype in [(30, torch.float32), (29, torch.float32), (30, torch.float64)]:
        want = np.linspace(-1, 1, n_bins + 1).astype(torch.empty(0, dtype=dtype).numpy().dtype)
        np.testing.assert_array_equal(fixed_edges(n_bins, dtype=dtype).numpy(), want)
    assert fixed_edges(30)[15].item() == 0.0


# ------------------------------------------------------------------ device safety


@pytest.mark.parametrize("host", [True, False])
@pytest.mark.parametrize("convention", ["clip", "idnns"])
def test_non_finite_activations_get_in_range_bins(convention, host, monkeypatch):
    # A diverged model's NaN (or inf) activations: in-range indices on every path (on
    # CUDA an out-of-range index is a device-side assert that poisons the worker), and
    # the values binned as the dtype's extremes.
    from theorydl.studies.ib import binning

    if not host:
        monkeypatch.setattr(binning, "_on_host", lambda device: False)
    g = torch.Generator().manual_seed(3)
    acts = torch.tanh(torch.randn(3, 40, 4, generator=g))
    acts[0, 1, 2], acts[1, 5, 0], acts[2, 7, 3] = math.nan, math.inf, -math.inf
    edges = fixed_edges(29)
    idx = bin_indices(acts, edges, convention=convention)
    top = 29 if convention == "idnns" else 28
    assert 0 <= int(idx.min()) and int(idx.max()) <= top
    assert int(idx[0, 1, 2]) == top and int(idx[1, 5, 0]) == top
    assert int(idx[2, 7, 3]) == (29 if convention == "idnns" else 0)
    y = torch.arange(40) % 2
    big = torch.finfo(acts.dtype).max
    finite = torch.nan_to_num(acts, nan=big, posinf=big, neginf=-big)
    want = binned_information_reference(finite.numpy(), y.numpy(), edges.numpy(),
                                        convention=convention)
    got = binned_information(acts, y, edges, convention=convention)
    np.testing.assert_allclose(got[0].numpy(), want[0], atol=1e-9)
    np.testing.assert_allclose(got[1].numpy(), want[1], atol=1e-9)


@pytest.mark.parametrize("units", [3, 20])  # float64 codes; int64 words
def test_estimators_follow_the_activations_device(units):
    # The non-CPU branches on torch's meta device: edges made on the CPU (the default of
    # fixed_edges) move to the activations' device, and every helper tensor is made
    # there (a CPU tensor among meta ones fails the op).
    from theorydl.studies.ib.kde import kde_information

    acts = torch.empty(4, 32, units, device="meta")
    y = torch.empty(32, dtype=torch.int64, device="meta")
    for convention in ("clip", "idnns"):
        assert bin_indices(acts, fixed_edges(29), convention=convention).device.type == "meta"
        i_xt, i_ty = binned_information(acts, y, fixed_edges(29), convention=convention)
        assert i_xt.device.type == i_ty.device.type == "meta" and i_xt.shape == (4,)
    i_xt, _ = binned_information(acts, y, adaptive_edges(acts, 30))
    assert i_xt.device.type == "meta"
    assert kde_information(acts, y, 0.1).i_xt_upper.device.type == "meta"
