"""theorydl.nn: stacks of small models trained together in one batched computation.

The training engine (``theorydl.nn.engine``), the one loop every experiment trains with:

* ``train``, ``Trained`` - train a family's M models: per-model seeds, data orders and
  learning rates; epochs over ``Arrays`` or iterations over a fresh ``Stream``;
* ``Hook``, ``Period`` - what runs at chosen periods (recording, gradient statistics,
  per-model stopping with compaction); ``evaluate`` - error and loss of every model;
* ``FitRule`` (``theorydl.nn.fit``) - stop each model when it fits, or diverges;
* losses (``theorydl.nn.losses``): ``CrossEntropy``, ``MultiHinge``, ``Hinge``,
  ``Squared``, ``LOSSES`` by name;
* optimisers (``theorydl.nn.optim``): ``SGD`` (momentum), ``Adam``; ``PathSGD``;
* the generic family (``theorydl.nn.modules``): ``ModuleStack``, ``init_modules`` - M
  copies of any ``torch.nn.Module`` through ``torch.func``; ``seeded``,
  ``straight_through``, ``module_bytes``.

The MLP family (``theorydl.nn.stack``):

* ``init_mlp`` - deterministic per-seed initialisation of one MLP, ``[(W (in, out), b (out,))]``;
* ``Stack``, ``init_stack`` - M models with parameters W_l (M, in_l, out_l), b_l (M, out_l)
  and a forward ``stack(x) -> logits (M, B, C)`` (optionally with hidden activations;
  ``stack.forward_t`` gives the feature-major (M, C, B) layout the training loop uses);
* ``ACTIVATIONS`` - the hidden-layer activations by name;
* ``SGD``, ``Adam``, ``OptimizerState`` - stacked optimisers with per-model learning rates,
  matching ``torch.optim.SGD`` / ``torch.optim.Adam`` model by model;
* ``train_stack``, ``TrainResult`` - the engine with a callback at chosen epochs and
  gradient signal-to-noise statistics (the IB form);
* ``data_generator``, ``epoch_permutation``, ``DATA_SEED_OFFSET`` - the per-model data
  order, so a lone reference run can reproduce it;
* ``mlp_bytes``, ``max_stack_size`` - an MLP stack's memory, how many models fit a budget;
* ``resolve_device`` - ``"auto" | "cpu" | "cuda"`` to a ``torch.device``.

From ``theorydl.nn.pathsgd`` and ``theorydl.nn.norms`` (the width sweeps' measures):

* ``PathSGD`` - Path-SGD (Neyshabur, Salakhutdinov & Srebro 2015) as a stacked optimiser;
  ``path_scales``, ``unit_scales``, ``bias_scales``, ``path_norm``;
* ``frobenius_norms``, ``spectral_norms``, ``l2_path_norm``, ``margin``, ``error_rate``.
"""

from theorydl.nn.engine import Arrays, Hook, Period, Stream, Trained, evaluate, train
from theorydl.nn.fit import FitRule, fit_stack
from theorydl.nn.losses import LOSSES, CrossEntropy, Hinge, MultiHinge, Squared
from theorydl.nn.modules import ModuleStack, init_modules, module_bytes, seeded, straight_through
from theorydl.nn.norms import error_rate, frobenius_norms, l2_path_norm, margin, spectral_norms
from theorydl.nn.pathsgd import PathSGD, bias_scales, path_norm, path_scales, unit_scales
from theorydl.nn.stack import (
    ACTIVATIONS,
    DATA_SEED_OFFSET,
    SGD,
    Adam,
    OptimizerState,
    Stack,
    TrainResult,
    data_generator,
    epoch_permutation,
    init_mlp,
    init_stack,
    max_stack_size,
    mlp_bytes,
    resolve_device,
    train_stack,
)

__all__ = [
    "Arrays",
    "CrossEntropy",
    "FitRule",
    "Hinge",
    "Hook",
    "LOSSES",
    "ModuleStack",
    "MultiHinge",
    "Period",
    "Squared",
    "Stream",
    "Trained",
    "evaluate",
    "fit_stack",
    "init_modules",
    "module_bytes",
    "seeded",
    "straight_through",
    "train",
    "PathSGD",
    "bias_scales",
    "error_rate",
    "frobenius_norms",
    "l2_path_norm",
    "margin",
    "path_norm",
    "path_scales",
    "spectral_norms",
    "unit_scales",
    "ACTIVATIONS",
    "DATA_SEED_OFFSET",
    "SGD",
    "Adam",
    "OptimizerState",
    "Stack",
    "TrainResult",
    "data_generator",
    "epoch_permutation",
    "init_mlp",
    "init_stack",
    "max_stack_size",
    "mlp_bytes",
    "resolve_device",
    "train_stack",
]
