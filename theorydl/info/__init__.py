"""theorydl.info: batched information estimators for the Information Bottleneck study.

All estimators take the activations of one layer for a stack of ``M`` models on the
same ``N`` inputs, shaped ``(M, N, units)``, run in torch on the activations' device
without host synchronisation and without tracking gradients (they are measurements,
safe to call on live activations during training), and return ``(M,)`` float64
tensors in bits.

Binning (``theorydl.info.binning``; Shwartz-Ziv & Tishby 2017, Saxe et al. 2018):
    fixed_edges(n_bins=30, lo=-1.0, hi=1.0, *, dtype, device) -> (n_bins + 1,)
    adaptive_edges(acts, n_bins=30) -> (M, n_bins + 1)
    bin_indices(acts, edges, *, convention="clip") -> (M, N, units) int64
    binned_information(acts, y, edges, *, n_classes=2, weights=None, convention="clip")
        -> (i_xt, i_ty)
    binned_information_reference(acts, y, edges, *, weights=None, convention="clip")
        numpy reference
    CONVENTIONS: "clip" (values outside the edges into the end bins) and "idnns" (into
        one overflow category, as the original IB code)

Pairwise-distance bounds for Gaussian-noise layers (``theorydl.info.kde``;
Kolchinsky & Tracey 2017 as used by Saxe et al. 2018):
    kde_information(acts, y, noise_variance, *, chunk_size=8) -> KDEBounds
    KDEBounds(i_xt_lower, i_xt_upper, i_ty_lower, i_ty_upper)

Gradient signal-to-noise and the drift/diffusion transition (``theorydl.info.snr``;
host-side numpy on logged norms):
    snr_ratio(mean_norm, std_norm) -> ndarray
    fit_change_point(epochs, snr, *, min_segment=3) -> ChangePoint
    drift_diffusion_epoch(epochs, snr, *, min_segment=3, min_drop_decades=0.5,
                          min_explained=0.5) -> int | None (or a list per layer)
"""

from theorydl.info.binning import (
    CONVENTIONS,
    adaptive_edges,
    bin_indices,
    binned_information,
    binned_information_reference,
    fixed_edges,
)
from theorydl.info.kde import KDEBounds, kde_information
from theorydl.info.snr import ChangePoint, drift_diffusion_epoch, fit_change_point, snr_ratio

__all__ = [
    "CONVENTIONS",
    "ChangePoint",
    "KDEBounds",
    "adaptive_edges",
    "bin_indices",
    "binned_information",
    "binned_information_reference",
    "drift_diffusion_epoch",
    "fit_change_point",
    "fixed_edges",
    "kde_information",
    "snr_ratio",
]
