"""The shared plotting: one width, one font scale, PNGs readable by all."""

from __future__ import annotations

import os
import stat

from PIL import Image

from theorydl.plotting import (DPI, FONT, FULL_WIDTH, figure, legend_below, legend_outside,
                               pyplot, save_figure)


def _width(path) -> int:
    with Image.open(path) as img:
        return img.size[0]


def test_one_width_whatever_the_panels_and_legends(tmp_path):
    widths = []
    for n, place in ((1, "outside"), (2, "below"), (3, "inside")):
        fig, axes = figure(1, n, squeeze=False)
        for ax in axes.ravel():
            ax.plot([1, 2], [3, 4], label="a label as long as a real one, or longer")
            ax.set_xlabel("x (unit)")
        if place == "outside":
            legend_outside(axes[0][0])
        elif place == "below":
            legend_below(fig)
        else:
            axes[0][0].legend(loc="best")
        widths.append(_width(save_figure(fig, tmp_path / f"{n}.png")))
    # The saved margin adds a little to FULL_WIDTH * DPI; a legend takes room inside it.
    assert all(FULL_WIDTH * DPI * 0.97 <= w <= FULL_WIDTH * DPI + 30 for w in widths), widths
    assert max(widths) <= 1200  # the report's column: never scaled down there


def test_pyplot_sets_one_font_scale_readable_at_dpi():
    plt = pyplot()
    assert all(plt.rcParams[k] == v for k, v in FONT.items())
    # the smallest text, in pixels at DPI, reads at 9 px or more
    assert min(FONT.values()) * DPI / 72 >= 9


def test_a_png_is_0644_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        fig, _ = figure()
        path = save_figure(fig, tmp_path / "f.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
