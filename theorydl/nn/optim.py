"""Stacked optimisers: one update for M models, with per-model learning rates.

Each is a frozen description (``lr``, hyperparameters) with ``init(params) ->
OptimizerState`` and ``step(params, grads, state)``; parameters carry a leading model
axis M, and ``lr`` is a float or M floats. Model by model, ``SGD`` and ``Adam`` equal
``torch.optim.SGD`` / ``torch.optim.Adam``; ``theorydl.nn.pathsgd.PathSGD`` follows the
same protocol. Weight decay (L2: ``g + wd * p``) is a field of every optimiser and is
applied in one place, :func:`decayed`, by the optimiser's own step.

The training engine may hand an elementwise optimiser (``SGD``, ``Adam``) one flat
(M, P) buffer holding every parameter, so that each operation is one call; the state
then has one buffer per flat tensor. ``OptimizerState.subset`` keeps the rows of chosen
models, which is how the engine drops a model that stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["SGD", "Adam", "OptimizerState", "decayed"]


def decayed(grads: Sequence[Tensor], params: Sequence[Tensor], weight_decay: float
            ) -> Sequence[Tensor]:
    """``g + weight_decay * p`` for every pair (new tensors), or ``grads`` when it is 0:
    the one place where L2 weight decay enters any optimiser."""
    if not weight_decay:
        return grads
    return torch._foreach_add(grads, [p.detach() for p in params], alpha=weight_decay)


@dataclass(eq=False)
class OptimizerState:
    """Per-run optimiser state; mutable because the step counter advances every step.

    ``lr`` holds one view of the (M,) learning rates per parameter, shaped to broadcast
    against it ((M, 1, 1) for weights, (M, 1) for biases); ``buffers`` maps a buffer
    name to one tensor per parameter (same shapes as the parameters).
    """

    lr: list[Tensor]
    buffers: dict[str, list[Tensor]] = field(default_factory=dict)
    step: int = 0

    def subset(self, keep: Tensor) -> "OptimizerState":
        """The state of the models ``keep`` (an index tensor on the parameters' device)."""
        return OptimizerState(
            lr=[v.index_select(0, keep) for v in self.lr],
            buffers={k: [b.index_select(0, keep) for b in v] for k, v in self.buffers.items()},
            step=self.step,
        )


def _lr_views(lr: float | Sequence[float] | Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    m = params[0].shape[0]
    lr_t = torch.as_tensor(lr, dtype=params[0].dtype, device=params[0].device).flatten()
    if lr_t.numel() == 1:
        lr_t = lr_t.expand(m)
    if lr_t.shape != (m,):
        raise ValueError(f"lr must be a scalar or have shape ({m},), got {tuple(lr_t.shape)}")
    lr_t = lr_t.contiguous()
    return [lr_t.view(m, *([1] * (p.dim() - 1))) for p in params]


@dataclass(frozen=True, eq=False)
class SGD:
    """Stacked SGD, equal per model to ``torch.optim.SGD(lr=lr[i], momentum, weight_decay)``
    with dampening 0 and nesterov False.

    Per step: g <- g + wd * p; buf <- momentum * buf + g; p <- p - lr * buf (without
    momentum, p <- p - lr * g). ``buf`` starts at zero, which gives exactly PyTorch's
    ``buf = g`` on the first step. ``lr`` is a float or M floats (one per model).
    """

    #: Updates every element independently: the engine may pass one flat buffer.
    elementwise = True

    lr: float | Sequence[float] | Tensor
    momentum: float = 0.0
    weight_decay: float = 0.0

    def init(self, params: Sequence[Tensor]) -> OptimizerState:
        """State for ``params`` (each with leading model axis M)."""
        bufs = {"momentum": [torch.zeros_like(p) for p in params]} if self.momentum else {}
        return OptimizerState(_lr_views(self.lr, params), bufs)

    @torch.no_grad()
    def step(self, params: Sequence[Tensor], grads: Sequence[Tensor], state: OptimizerState) -> None:
        """Update ``params`` in place from ``grads`` (same shapes); ``grads`` are not modified."""
        state.step += 1
        grads = decayed(grads, params, self.weight_decay)
        if self.momentum:
            bufs = state.buffers["momentum"]
            torch._foreach_mul_(bufs, self.momentum)
            torch._foreach_add_(bufs, grads)
            grads = bufs
        # p <- p - lr * g in one fused call; the lr views broadcast over each parameter.
        torch._foreach_addcmul_(params, grads, state.lr, value=-1.0)


@dataclass(frozen=True, eq=False)
class Adam:
    """Stacked Adam, equal per model to ``torch.optim.Adam(lr=lr[i], betas, eps, weight_decay)``
    (L2-style weight decay, no amsgrad).

    Per step t: g <- g + wd * p; m <- lerp(m, g, 1 - beta1); v <- beta2 v + (1 - beta2) g^2;
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
    ``lr`` is a float or M floats (one per model).
    """

    elementwise = True

    lr: float | Sequence[float] | Tensor
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0

    def init(self, params: Sequence[Tensor]) -> OptimizerState:
        """State for ``params`` (each with leading model axis M)."""
        bufs = {
            "exp_avg": [torch.zeros_like(p) for p in params],
            "exp_avg_sq": [torch.zeros_like(p) for p in params],
        }
        return OptimizerState(_lr_views(self.lr, params), bufs)

    @torch.no_grad()
    def step(self, params: Sequence[Tensor], grads: Sequence[Tensor], state: OptimizerState) -> None:
        """Update ``params`` in place from ``grads`` (same shapes); ``grads`` are not modified."""
        state.step += 1
        beta1, beta2 = self.betas
        # The step counter is a Python int, so bias corrections cost no device sync.
        bias1 = 1 - beta1**state.step
        bias2_sqrt = math.sqrt(1 - beta2**state.step)
        grads = decayed(grads, params, self.weight_decay)
        exp_avg, exp_avg_sq = state.buffers["exp_avg"], state.buffers["exp_avg_sq"]
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - beta2)
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(exp_avg, denom)
        torch._foreach_mul_(update, state.lr)
        torch._foreach_add_(params, update, alpha=-1.0 / bias1)
