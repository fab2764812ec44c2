"""theorydl.nn: stacks of small MLPs trained together in one batched computation.

Public (all from ``theorydl.nn.stack``):

* ``init_mlp`` - deterministic per-seed initialisation of one MLP, ``[(W (in, out), b (out,))]``;
* ``Stack``, ``init_stack`` - M models with parameters W_l (M, in_l, out_l), b_l (M, out_l)
  and a forward ``stack(x) -> logits (M, B, C)`` (optionally with hidden activations;
  ``stack.forward_t`` gives the feature-major (M, C, B) layout the training loop uses);
* ``ACTIVATIONS`` - the hidden-layer activations by name;
* ``SGD``, ``Adam``, ``OptimizerState`` - stacked optimisers with per-model learning rates,
  matching ``torch.optim.SGD`` / ``torch.optim.Adam`` model by model;
* ``train_stack``, ``TrainResult`` - cross-entropy training with per-model data order,
  callbacks at chosen epochs and gradient signal-to-noise statistics;
* ``data_generator``, ``epoch_permutation``, ``DATA_SEED_OFFSET`` - the per-model data
  order, so a lone reference run can reproduce it;
* ``max_stack_size`` - how many models fit in a memory budget;
* ``resolve_device`` - ``"auto" | "cpu" | "cuda"`` to a ``torch.device``.

From ``theorydl.nn.pathsgd`` and ``theorydl.nn.norms`` (the width sweeps' measures):

* ``PathSGD`` - Path-SGD (Neyshabur, Salakhutdinov & Srebro 2015) as a stacked optimiser;
  ``path_scales``, ``unit_scales``, ``bias_scales``, ``path_norm``;
* ``frobenius_norms``, ``spectral_norms``, ``l2_path_norm``, ``margin``, ``error_rate``.
"""

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
    resolve_device,
    train_stack,
)

__all__ = [
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
    "resolve_device",
    "train_stack",
]
