"""Published numbers of Malach & Shalev-Shwartz (2019), digitised from the vector
coordinates of the authors' PDFs (about +-0.002; see docs in the study's README), and
the metric keys that both the experiment's claims and the analysis use."""

from __future__ import annotations

__all__ = ["CIFAR_WIDTHS", "DEPTH_WIDTH", "DEPTH_WIDTH_WIDTHS", "FIG5", "SOURCE",
           "train_key"]

SOURCE = "Malach & Shalev-Shwartz 2019 (arXiv:1903.03488)"

#: Figure 5: 2-D Cantor dust of 5 levels, the best depth-5 network per curve; test
#: accuracy by curve degree (the curve <-> degree match is by its (P(3), P(4))).
FIG5 = {0: 0.992, 12: 0.965, 11: 0.910, 5: 0.932, 9: 0.757, 10: 0.776}

#: The depth x width figure on the Cantor dust (poster): accuracy per width for five
#: depths, in plot order (the depth labels are not in the public material; read as
#: increasing).
DEPTH_WIDTH_WIDTHS = (10, 20, 50, 100, 200, 400)
DEPTH_WIDTH = (
    (0.613, 0.693, 0.725, 0.727, 0.724, 0.739),
    (0.722, 0.810, 0.824, 0.857, 0.859, 0.872),
    (0.778, 0.836, 0.878, 0.924, 0.931, 0.932),
    (0.823, 0.865, 0.915, 0.954, 0.972, 0.972),
    (0.806, 0.866, 0.950, 0.969, 0.992, 0.983),
)

#: Figure 6 (CIFAR-10): widths of the five depth lines.
CIFAR_WIDTHS = (8, 16, 32, 64, 128)


def train_key(depth: int, width: int) -> str:
    """The metrics key of a (depth, width) network: ``t<depth>_k<width>``."""
    return f"t{depth}_k{width}"
