"""theorydl.pooling: the pooling-geometry study of Cohen & Shashua (ICLR 2017).

* ``blobs`` - the blob images, their closedness and symmetry scores, the 40/20/40 labels;
* ``networks`` - the ConvAC in log space and the ReLU nets, square or mirror pooling;
* ``ranks`` - exact separation ranks of random ConvACs on small grids;
* ``analysis``, ``figures`` - the experiment's metrics and figures.

The experiment itself is :mod:`theorydl.experiments.pooling`.
"""

from theorydl.pooling.blobs import closedness, extreme_labels, make_blobs, symmetry
from theorydl.pooling.networks import ConvAC, ReLUNet, build_network, mirror_permute
from theorydl.pooling.ranks import PARTITIONS, convac_ranks, grid_tensor, separation_rank

__all__ = ["ConvAC", "PARTITIONS", "ReLUNet", "build_network", "closedness", "convac_ranks",
           "extreme_labels", "grid_tensor", "make_blobs", "mirror_permute",
           "separation_rank", "symmetry"]
