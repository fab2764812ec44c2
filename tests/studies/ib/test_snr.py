"""Drift -> diffusion change-point detection on synthetic SNR series."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.ib.snr import ChangePoint, drift_diffusion_epoch, fit_change_point, snr_ratio

# 275 distinct log-spaced epochs out of 8000, like the IB experiment's sampling.
EPOCHS = np.unique(np.round(np.logspace(0, np.log10(8000), 400)).astype(int))


def _series(change: int, before: float, after: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.where(np.arange(len(EPOCHS)) < change, before, after)
    return 10.0 ** (level + noise * rng.standard_normal(len(EPOCHS)))


@pytest.mark.parametrize("change", [15, 40, 90, 150, 240, 260])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_change_point_found_within_one_sample(change, seed):
    snr = _series(change, before=1.0, after=-0.5, noise=0.25, seed=seed)
    epoch = drift_diffusion_epoch(EPOCHS, snr)
    assert epoch is not None
    found = int(np.searchsorted(EPOCHS, epoch))
    assert abs(found - change) <= 1


def test_noiseless_step_is_exact():
    snr = _series(100, before=0.5, after=-1.0, noise=0.0, seed=0)
    cp = fit_change_point(EPOCHS, snr)
    assert cp == ChangePoint(100, int(EPOCHS[100]), 0.5, -1.0, 1.0)


def test_flat_series_has_no_transition():
    assert drift_diffusion_epoch(EPOCHS, np.full(len(EPOCHS), 3.0)) is None
    assert fit_change_point(EPOCHS, np.full(len(EPOCHS), 3.0)).explained == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_pure_noise_has_no_transition(seed):
    snr = _series(0, before=0.0, after=0.0, noise=0.3, seed=seed)
    assert drift_diffusion_epoch(EPOCHS, snr) is None


def test_rise_is_not_a_drop():
    snr = _series(120, before=-1.0, after=1.0, noise=0.1, seed=0)
    assert drift_diffusion_epoch(EPOCHS, snr) is None


def test_small_drop_below_threshold_is_ignored():
    snr = _series(120, before=0.2, after=0.0, noise=0.02, seed=0)
    assert drift_diffusion_epoch(EPOCHS, snr) is None  # 0.2 decades < 0.5
    assert drift_diffusion_epoch(EPOCHS, snr, min_drop_decades=0.1) == EPOCHS[120]


def test_per_layer_input_and_snr_ratio():
    mean_norm = np.stack([_series(60, 0.0, -1.5, 0.1, 0), _series(200, 0.0, -1.5, 0.1, 1)])
    std_norm = np.full_like(mean_norm, 0.5)
    snr = snr_ratio(mean_norm, std_norm)
    np.testing.assert_allclose(snr, mean_norm / 0.5)
    flat = np.ones((1, len(EPOCHS)))
    got = drift_diffusion_epoch(EPOCHS, np.concatenate([snr, flat]))
    assert got == [EPOCHS[60], EPOCHS[200], None]


def test_invalid_inputs_raise():
    with pytest.raises(ValueError):
        snr_ratio([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError):
        snr_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        fit_change_point(EPOCHS[:5], np.ones(5))  # cannot hold two segments of 3
    with pytest.raises(ValueError):
        fit_change_point(EPOCHS[:8], -np.ones(8))
