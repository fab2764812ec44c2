"""Plotting shared by every study: one headless pyplot and one atomic PNG writer.

Figures are drawn from analysis results only (never from live training state), by each
study's ``figures`` module.
"""

from __future__ import annotations

import uuid
from pathlib import Path

__all__ = ["DPI", "pyplot", "save_figure"]

#: One resolution for every figure of the report.
DPI = 130


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (stages run headless, on clusters too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _palette_png(path: Path) -> None:
    """Rewrite the PNG at ``path`` with a 256-colour palette (about a third of the bytes of
    matplotlib's RGBA, with no change to see in line plots and heat maps)."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def save_figure(fig, path: str | Path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` atomically (temp name, then rename: a crash never leaves half a PNG),
    readable by all like any other output, and close it; returns the path. A PNG is
    written with a 256-colour palette."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        fmt = path.suffix.lstrip(".") or "png"
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt, facecolor="white")
        if fmt == "png":
            _palette_png(tmp)
        tmp.replace(path)
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)
    return path
