"""Plotting shared by every study: one headless pyplot, one figure size and font scale,
and one atomic PNG writer.

Figures are drawn from analysis results only (never from live training state), by each
study's ``figures`` module. Every figure is :data:`FULL_WIDTH` wide (:func:`figure`), so
that at :data:`DPI` it fits the report's column (about 1200 px) unshrunk and its text keeps
the sizes :func:`pyplot` sets (ticks at 9 pt: 16 px high).
"""

from __future__ import annotations

import uuid
from pathlib import Path

__all__ = ["DPI", "FONT", "FULL_WIDTH", "ROW_HEIGHT", "figure", "legend_below",
           "legend_outside", "pyplot", "save_figure"]

#: One resolution for every figure of the report.
DPI = 130

#: One width for every figure, in inches: FULL_WIDTH * DPI = 1144 px, plus the saved
#: margin about 1160 px, inside the report's column (about 1200 px), so no figure is
#: scaled down there and one point is DPI / 72 = 1.8 px in every figure.
FULL_WIDTH = 8.8

#: Height of one row of panels, in inches (:func:`figure`'s default height per row).
ROW_HEIGHT = 3.3

#: Font sizes (points) of every figure, set once by :func:`pyplot`; the smallest, 8 pt,
#: is 14 px at DPI. Figures set no smaller size of their own.
FONT = {"font.size": 10.0, "axes.titlesize": 10.5, "axes.labelsize": 10.0,
        "xtick.labelsize": 9.0, "ytick.labelsize": 9.0, "legend.fontsize": 8.5,
        "legend.title_fontsize": 9.0, "figure.titlesize": 11.5}


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (stages run headless, on clusters too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(FONT)
    plt.rcParams["legend.framealpha"] = 0.85  # a legend left inside an axes lets data show
    return plt


def figure(nrows: int = 1, ncols: int = 1, *, height: float | None = None, **kwargs):
    """``(fig, axes)`` of ``plt.subplots(nrows, ncols)`` at the report's one width
    (:data:`FULL_WIDTH`), ``height`` inches tall (default :data:`ROW_HEIGHT` per row), in
    constrained layout: legends placed outside an axes (:func:`legend_outside`) or below
    the panels (:func:`legend_below`) take their room inside that width. ``kwargs`` go to
    ``subplots`` (``squeeze``, ``sharey``, ...)."""
    plt = pyplot()
    height = ROW_HEIGHT * nrows if height is None else height
    return plt.subplots(nrows, ncols, figsize=(FULL_WIDTH, height), layout="constrained",
                        **kwargs)


def legend_outside(ax, **kwargs):
    """The legend of ``ax`` to the right of it, off the data (constrained layout of
    :func:`figure` makes room for it); ``kwargs`` go to ``ax.legend``."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     **kwargs)


def legend_below(fig, axes=None, *, ncols: int = 4, **kwargs):
    """One legend for the whole figure, below its panels, of the labelled artists of
    ``axes`` (default every axes), each label once; ``kwargs`` go to ``fig.legend``."""
    seen: dict[str, object] = {}
    for ax in fig.axes if axes is None else axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if not seen:
        return None
    return fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                      ncols=min(ncols, len(seen)), **kwargs)


def _palette_png(path: Path) -> None:
    """Rewrite the PNG at ``path`` with a 256-colour palette (about a third of the bytes of
    matplotlib's RGBA, with no change to see in line plots and heat maps)."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def save_figure(fig, path: str | Path) -> Path:
    """Save ``fig`` atomically (temp name, then rename: a crash never leaves half a PNG),
    mode 0644 (readable by all) like any other output, and close it; returns the path. A PNG is
    written with a 256-colour palette, at :data:`DPI` (one resolution for every figure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        fmt = path.suffix.lstrip(".") or "png"
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format=fmt, facecolor="white")
        if fmt == "png":
            _palette_png(tmp)
        # 0644 whatever the umask and whoever wrote the file (a worker, a folder output):
        # every figure of the report is readable by all, as the other outputs are.
        tmp.chmod(0o644)
        tmp.replace(path)
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)
    return path
