"""theorydl.gating: the models and data of the TheoryDL gating and weight-sharing studies.

* ``theorydl.gating.galu`` - GaLU neurons (Fiat, Malach & Shalev-Shwartz 2019): the gated
  design matrix and its least-squares fit in closed form (``galu_least_squares``), and
  ``GatedNet``, ReLU / GaLU / linear networks as one ``torch.nn.Module`` for the engine's
  module family (gates are buffers: per-model constants);
* ``theorydl.gating.sharing`` - the weight-sharing proxy (Shalev-Shwartz, Shamir &
  Shammah 2017): ``PatchNet`` (first layer h_i = sum_j sigma(W_ij x_ij), shared or not),
  the teacher's patch features and the low, high and mixed targets.
"""

from theorydl.gating.galu import GatedNet, galu_design, galu_least_squares, step_gate
from theorydl.gating.sharing import PatchNet, Teacher, feature_moments

__all__ = ["GatedNet", "PatchNet", "Teacher", "feature_moments", "galu_design",
           "galu_least_squares", "step_gate"]
