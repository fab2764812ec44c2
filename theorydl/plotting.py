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


def save_figure(fig, path: str | Path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` atomically (temp name, then rename: a crash never leaves half a PNG),
    readable by all like any other output, and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        tmp.replace(path)
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)
    return path
