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
"""

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
