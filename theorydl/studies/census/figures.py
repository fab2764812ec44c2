"""Figures of the census: counts against N, and what formulas of size s reach."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from theorydl.plotting import figure, legend_outside, save_figure

__all__ = ["census_figure", "draw", "formula_figure"]


def census_figure(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """log2(number of realizable functions) against N, beside 2^N (log2 of all 2^(2^N)
    functions).

    ``rows``: one per (architecture, N) with ``n_realizable`` and optional ``published``.
    The N^2 curve is the known asymptotic growth of log2 of the threshold-function count.
    """
    import math

    fig, ax = figure(height=3.8)
    ns = sorted({r["n_inputs"] for r in rows})
    # The y axis is log2 of a count: all 2^(2^N) functions are at log2 = 2^N.
    ax.plot(ns, [2.0 ** n for n in ns], "k-", marker="s",
            label="all $2^{2^N}$ functions ($\\log_2 = 2^N$)")
    drawn = set()  # published series already marked (net-1 shares threshold's A000609)
    for arch in sorted({r["architecture"] for r in rows}):
        mine = sorted((r for r in rows if r["architecture"] == arch), key=lambda r: r["n_inputs"])
        ax.plot([r["n_inputs"] for r in mine], [math.log2(r["n_realizable"]) for r in mine],
                marker="o", label=f"{arch} (computed)")
        pub = [r for r in mine if r.get("published")]
        series = tuple((r["n_inputs"], r["published"]) for r in pub)
        if pub and not set(series) <= drawn:
            drawn.update(series)
            ax.plot([r["n_inputs"] for r in pub], [math.log2(r["published"]) for r in pub],
                    ls="none", marker="x", ms=9, color="tab:red", label="OEIS A000609 (one unit)")
    if len(ns) > 1:
        ax.plot(ns, [n * n for n in ns], ":", color="gray", label="$N^2$ (asymptotic)")
    ax.set_xlabel("N (inputs)")
    ax.set_ylabel("log2(number of functions) (bits)")
    ax.set_xticks(ns)
    ax.set_title("Boolean functions an N-input machine expresses")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)


def formula_figure(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Functions of N inputs with an AND/OR/NOT formula of at most s gates, against s.

    ``rows``: census rows named ``formulas<=s`` with ``n_inputs`` and ``n_realizable``.
    One curve per N, each ending where every 2^(2^N) function is reached (dotted line).
    """
    import math

    fig, ax = figure(height=3.8)
    for n in sorted({r["n_inputs"] for r in rows}):
        mine = sorted(((int(r["architecture"].split("<=")[1]), r["n_realizable"])
                       for r in rows if r["n_inputs"] == n))
        line, = ax.plot([s for s, _ in mine], [math.log2(c) for _, c in mine], marker="o",
                        ms=3, label=f"N = {n}")
        ax.axhline(2.0 ** n, color=line.get_color(), ls=":", lw=0.8,
                   label=f"all {2 ** 2 ** n} functions of N = {n}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("formula size s (AND/OR gates; NOT free)")
    ax.set_ylabel("log2(functions with a formula\nof at most s gates) (bits)")
    ax.set_title("X-forms: what formulas of size s reach")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """The census figures of an analysis (:func:`theorydl.studies.census.analysis.analyze`):
    the counts against N, and the formula curves where formulas were counted."""
    frames, paths = result.frames, cfg.paths
    census_figure(frames["machines"], paths.figure)
    if frames["formulas"]:
        formula_figure(frames["formulas"], paths.formula_figure)
