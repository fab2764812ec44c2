"""Losses of the training engine, each with its gradient written out.

A loss takes a stack's outputs in the feature-major layout ``z`` (M, C, b) (M models, C
outputs, b samples) and targets ``y``, and returns ``(per_sample, dz)``: the per-sample
losses (M, b) and their derivatives with respect to ``z`` (M, C, b), sample by sample
(the engine divides by b for the batch mean). Every family's backward pass starts from
``dz``: the MLP's hand-written one, and the generic one (``torch.autograd.grad`` of the
outputs with ``dz`` as the output gradient), so a loss never needs a graph of its own.

Targets and what each loss equals, per model, in ``torch.nn.functional`` terms:

* ``CrossEntropy``: ``y`` (M, b) int64 class indices; ``F.cross_entropy``.
* ``MultiHinge``: ``y`` (M, b) int64; ``F.multi_margin_loss`` (p=1, margin 1: the
  Weston-Watkins hinge sum_{j != y} max(0, 1 - z_y + z_j), divided by C).
* ``Hinge``: C = 1 output, ``y`` (M, b) floats in {-1, +1}; max(0, 1 - y z) (what
  ``F.hinge_embedding_loss`` is not: this is the classification hinge of the SVM).
* ``Squared``: ``y`` (M, b) floats for C = 1, or (M, b, C); ``F.mse_loss`` per sample
  (mean over the C outputs of (z - y)^2).

``errors(z, y)`` gives a per-sample 0/1 mistake indicator (M, b), or None for a
regression loss: the engine's evaluation and stopping rules count mistakes with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["LOSSES", "CrossEntropy", "Hinge", "Loss", "MultiHinge", "Squared", "class_argmax",
           "get_loss", "loss_backward"]


class Loss:
    """Base of the engine's losses: ``loss(z, y) -> (per_sample (M, b), dz (M, C, b))``."""

    name: str = ""
    #: dtype the targets are converted to (int64 class indices, or the model's float).
    integer_targets: bool = True

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def errors(self, z: Tensor, y: Tensor) -> Tensor | None:
        """Per-sample mistakes (M, b) as 0/1 in z's dtype; None where undefined. A sample
        is wrong when ``argmax`` over its outputs (the first maximal class) is not y."""
        return (class_argmax(z) != y).to(z.dtype)


def class_argmax(z: Tensor) -> Tensor:
    """``z.argmax(1)`` for feature-major outputs (M, C, b), the same indices, computed on a
    sample-major copy: torch's CPU argmax over the strided class axis costs about 7 times
    the copy plus a contiguous argmax (939 against 140 us for (6, 10, 1198), 1 thread,
    torch 2.13), while ``amax`` over it is cheap."""
    return z.transpose(1, 2).contiguous().argmax(2)


@dataclass(frozen=True)
class CrossEntropy(Loss):
    """Softmax cross-entropy: loss = logsumexp(z) - z_y, dz = softmax(z) - onehot(y)."""

    name = "cross_entropy"

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        top = z.amax(dim=1, keepdim=True)
        e = torch.sub(z, top).exp_()
        total = e.sum(dim=1, keepdim=True)
        target = y.unsqueeze(1)  # (M, 1, b)
        z_y = z.gather(1, target)
        loss = total.log().add_(top).sub_(z_y).squeeze(1)
        dz = e.div_(total).scatter_add_(1, target, torch.full_like(z_y, -1.0))
        return loss, dz


@dataclass(frozen=True)
class MultiHinge(Loss):
    """Weston-Watkins multi-class hinge, as ``F.multi_margin_loss(z, y)`` (margin 1, p 1):
    (1/C) sum_{j != y} max(0, 1 - z_y + z_j)."""

    name = "multi_hinge"
    margin: float = 1.0

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        c = z.shape[1]
        target = y.unsqueeze(1)
        z_y = z.gather(1, target)
        slack = torch.sub(z, z_y).add_(self.margin)  # (M, C, b); the true class: margin
        active = (slack > 0).to(z.dtype).scatter_(1, target, 0.0)
        loss = (slack.clamp_min_(0.0) * active).sum(1) / c
        dz = active.scatter_(1, target, -active.sum(1, keepdim=True)).div_(c)
        return loss, dz


@dataclass(frozen=True)
class Hinge(Loss):
    """Binary hinge on one output: max(0, 1 - y z) with y in {-1, +1}; dz = -y where
    y z < 1 (the subgradient 0 at the kink, as autograd takes it)."""

    name = "hinge"
    integer_targets = False

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if z.shape[1] != 1:
            raise ValueError(f"the binary hinge needs one output, got {z.shape[1]}")
        yz = y.unsqueeze(1) * z  # (M, 1, b)
        slack = torch.rsub(yz, 1.0)
        loss = slack.clamp_min(0.0).squeeze(1)
        dz = torch.where(slack > 0, -y.unsqueeze(1), torch.zeros_like(z))
        return loss, dz

    def errors(self, z: Tensor, y: Tensor) -> Tensor:
        # A zero output is a mistake: the margin is not positive.
        return (y * z[:, 0] <= 0).to(z.dtype)


@dataclass(frozen=True)
class Squared(Loss):
    """Squared error, mean over outputs: (1/C) sum_c (z_c - y_c)^2; dz = 2 (z - y) / C."""

    name = "squared"
    integer_targets = False

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        target = y.unsqueeze(1) if y.dim() == 2 else y.transpose(1, 2)  # (M, C, b)
        diff = z - target
        c = z.shape[1]
        return diff.square().sum(1).div_(c), diff.mul_(2.0 / c)

    def errors(self, z: Tensor, y: Tensor) -> None:
        return None


def loss_backward(z: Tensor, params: list[Tensor], y: Tensor, loss: Loss,
                  grads: list[Tensor]) -> Tensor:
    """The autograd half of a family's step: ``z`` (M, C, b) are outputs computed with a
    graph back to ``params``; the loss's own gradient (divided by b: each model's batch
    mean) is pulled back through it into ``grads`` in place. Returns the per-sample
    losses (M, b)."""
    per_sample, dz = loss(z.detach(), y)
    torch._foreach_copy_(list(grads), torch.autograd.grad(z, params, dz.div_(z.shape[2])))
    return per_sample


#: Losses by the name params use.
LOSSES: dict[str, Loss] = {
    loss.name: loss for loss in (CrossEntropy(), MultiHinge(), Hinge(), Squared())}


def get_loss(name: str | Loss) -> Loss:
    """A loss by name (or the loss itself)."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None
