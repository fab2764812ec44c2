"""theorydl.expressivity: which Boolean functions can an N-input, 1-output machine express.

The census enumerates all 2^(2^N) Boolean functions of N inputs (truth table k:
bit j of k is f(x_j), x_j the j-th point of {0,1}^N in counting order, input i =
bit i of j) in shards, and counts per architecture those the machine realises.
Only the single linear-threshold unit is implemented so far (`threshold`); its
full-range counts are OEIS A000609 (`KNOWN_COUNTS`).

Exports: `count_realizable` / `ARCHITECTURES` (dispatch by architecture name),
`count_threshold` and `ThresholdCount` (one shard), `is_threshold` (exact decision
for one function), `threshold_mask` (many functions), `is_unate` (vectorised
pre-filter), `truth_tables`, `input_patterns`, `n_functions`, `MAX_N`,
`KNOWN_COUNTS`, and the brute-force cross-check `threshold_tables_by_weights`.

Threshold networks (``net-k1-...-kL``) and AND/OR/NOT formulas are counted exactly in
:mod:`theorydl.expressivity.networks` (N <= 4).
"""

from theorydl.expressivity.threshold import (
    ARCHITECTURES,
    KNOWN_COUNTS,
    MAX_N,
    ThresholdCount,
    count_realizable,
    count_threshold,
    input_patterns,
    is_threshold,
    is_unate,
    n_functions,
    threshold_mask,
    threshold_tables_by_weights,
    truth_tables,
)

__all__ = [
    "ARCHITECTURES",
    "KNOWN_COUNTS",
    "MAX_N",
    "ThresholdCount",
    "count_realizable",
    "count_threshold",
    "input_patterns",
    "is_threshold",
    "is_unate",
    "n_functions",
    "threshold_mask",
    "threshold_tables_by_weights",
    "truth_tables",
]
