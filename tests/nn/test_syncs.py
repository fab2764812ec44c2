"""Host synchronisations, counted on CPU with theorydl.nn.syncs: the training step makes
none, the estimators' device paths make none, and one sampled IB epoch makes none."""

from __future__ import annotations

import pytest
import torch

from theorydl.nn import SGD, Adam, Arrays, Stream, init_modules, init_stack, train, train_stack
from theorydl.nn.syncs import count_host_syncs
from theorydl.studies.ib import binning, kde
from theorydl.studies.ib.binning import adaptive_edges, binned_information, fixed_edges
from theorydl.studies.ib.kde import kde_information


def test_counter_sees_each_kind_of_sync():
    x = torch.arange(6.0)
    with count_host_syncs() as syncs:
        x.sum().item()
        bool(x.max() > 2)
        x.tolist()
        x[x > 2]
        torch.tensor([1.0, 2.0])
        torch.nonzero(x)
    assert syncs["aten._local_scalar_dense.default"] == 2
    assert syncs["Tensor.tolist"] == 1
    assert syncs["aten.index.Tensor (boolean mask)"] == 1
    assert syncs["aten.lift_fresh.default"] == 1
    assert syncs["aten.nonzero.default"] == 1
    with count_host_syncs() as none:
        (x * 2 + 1).exp().sum(0)
        x[torch.arange(3)]
    assert sum(none.values()) == 0


def _blobs(n=96, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return X, (X[:, 0] > 0).long()


def _step_syncs(run) -> int:
    """Syncs of the steps alone: a 3-period run minus a 1-period run (setup cancels)."""
    with count_host_syncs() as one:
        run(1)
    with count_host_syncs() as three:
        run(3)
    return sum(three.values()) - sum(one.values())


@pytest.mark.parametrize("batch_size", [None, 32])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_mlp_training_step_makes_no_sync(batch_size, opt):
    X, y = _blobs()

    def run(epochs):
        stack = init_stack([6, 8, 5, 2], seeds=range(4), activation="tanh")
        optimizer = SGD(0.1, momentum=0.9) if opt == "sgd" else Adam(1e-3)
        train_stack(stack, X, y, optimizer, epochs, batch_size=batch_size)

    assert _step_syncs(run) == 0


def test_module_and_stream_steps_make_no_sync():
    X, y = _blobs()

    def modules(epochs):
        family = init_modules(lambda: torch.nn.Sequential(
            torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)), seeds=range(3))
        train(family, Arrays(X, y), Adam([1e-3] * 3), epochs, batch_size=32)

    def sample(g, b):
        x = torch.randint(0, 2, (b, 6), generator=g).float() * 2 - 1
        return x, (x[:, 0] > 0).long()

    def stream(periods):
        stack = init_stack([6, 8, 2], seeds=range(3), activation="relu")
        train(stack, Stream(sample, steps_per_period=4), SGD(0.01), periods, batch_size=16)

    assert _step_syncs(modules) == 0
    assert _step_syncs(stream) == 0


@pytest.fixture
def device_paths(monkeypatch):
    """The estimators' off-CPU code paths, run on CPU tensors."""
    monkeypatch.setattr(binning, "_on_host", lambda device: False)
    monkeypatch.setattr(kde, "_on_host", lambda device: False)


@pytest.mark.parametrize("units", [3, 14])  # float64 codes; int64 words
def test_estimators_device_paths_make_no_sync(device_paths, units):
    acts = torch.tanh(torch.randn(4, 64, units))
    y = (torch.arange(64) % 2)
    edges = fixed_edges(29)
    with count_host_syncs() as syncs:
        for convention in ("clip", "idnns"):
            binned_information(acts, y, edges, convention=convention)
        binned_information(acts, y, adaptive_edges(acts, 30))
        kde_information(acts, y, 0.1)
    assert dict(syncs) == {}


def test_ib_sampled_epoch_makes_no_sync(device_paths, monkeypatch):
    import theorydl.nn as nn_pkg
    from theorydl.studies.ib.experiment import IB, IBConfig

    counts: list[dict] = []
    real = nn_pkg.train_stack

    def counted(*args, callback=None, **kwargs):
        def wrapped(e, st):
            with count_host_syncs() as syncs:
                callback(e, st)
            counts.append(dict(syncs))
        return real(*args, callback=wrapped, **kwargs)

    monkeypatch.setattr(nn_pkg, "train_stack", counted)
    cfg = IBConfig(hidden=[[4, 3]], activations=["tanh"], epochs=3, n_log_epochs=3,
                   n_seeds=2, estimators={"kde_samples": 64})
    exp = IB()
    trials = [t for t in exp.trials(cfg)]
    out = exp.run_stack(trials, cfg, torch.device("cpu"))
    assert [status for status, _ in out] == ["ok", "ok"]
    assert len(counts) == 3 and counts == [{}, {}, {}]
    # Every row says the CPU tanh shortcut computed it (the default, on CPU).
    assert {row["fast_tanh"] for _, rows in out for row in rows} == {True}
