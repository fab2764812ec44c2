"""Path-SGD (Neyshabur, Salakhutdinov & Srebro, "Path-SGD: Path-Normalized Optimization in
Deep Neural Networks", NeurIPS 2015) and the l2 path norm, batched over the M models of a
``Stack``.

Notation: a stack's layers are W_l (M, n_l, n_{l+1}) and b_l (M, n_{l+1}) for
l = 0..L-1, units of layer l are indexed by u (n_l of them; layer 0 is the input, layer L
the output). For a unit u, gamma_in(u)^2 is the sum over all paths from a source to u of the
product of the squared weights along the path, and gamma_out(v)^2 the same sum over all
paths from v to an output unit. Path-SGD divides the gradient of the edge u -> v by
kappa(u -> v) = gamma_in(u)^2 * gamma_out(v)^2, the diagonal of the path-regulariser's
metric (the paper's p = 2 update).

Bias convention: a bias is the weight of an edge from a constant unit of value 1, which is
an extra *source* of the network (the paper's "constant unit"). So
  * gamma_in(u)^2 of a hidden or output unit also counts the paths starting at every
    upstream bias unit: gamma_in^2 of layer l+1 = gamma_in^2 of layer l @ W_l^2 + b_l^2;
  * the scale of bias b_l[v] is gamma_in(1)^2 * gamma_out(v)^2 = gamma_out(v)^2 (a bias
    unit has no incoming paths, so gamma_in^2 = 1), which does not depend on any bias;
  * the path norm with biases sums over the paths from every source, bias units included.
Under this convention Path-SGD stays exactly invariant to the node rescalings of a ReLU
network *with* biases (unit v's incoming weights and bias times c > 0,
its outgoing weights times 1/c): the rescaling maps the network to the same function and
every path product to itself, and the Path-SGD step commutes with it. (Plain SGD on biases,
the other common choice, breaks that invariance.) Functions that take ``biases=None``
describe the bias-free network of the paper's main text.

Path-SGD is defined for any activation, but the invariance (and the motivation) holds only
for positively homogeneous ones (ReLU, linear).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from theorydl.nn.optim import OptimizerState, _lr_views, decayed

__all__ = ["PathSGD", "bias_scales", "path_norm", "path_scales", "unit_scales"]


def unit_scales(
    weights: Sequence[Tensor], biases: Sequence[Tensor] | None = None
) -> tuple[list[Tensor], list[Tensor]]:
    """gamma_in^2 and gamma_out^2 of every unit of every model.

    ``weights[l]`` is (M, n_l, n_{l+1}); ``biases[l]`` (M, n_{l+1}) or ``biases=None``
    for a bias-free network. Returns ``(gamma_in_sq, gamma_out_sq)``, two lists of L + 1
    tensors, entry l of shape (M, n_l) (layer 0 = inputs, layer L = outputs).

    gamma_in^2 comes from one forward pass of the squared weights (and squared biases,
    i.e. constant units) from an all-ones input: a linear network whose edges carry w^2
    sums, at each unit, the products of squared weights over all paths into it.
    gamma_out^2 comes from one backward pass of the squared weights from all-ones at the
    outputs. Both are batched over the M models with ``bmm``.
    """
    m = weights[0].shape[0]
    sq = [w.square() for w in weights]
    # (M, 1, n_l) row vectors, so each layer is one (M, 1, n_l) @ (M, n_l, n_{l+1}) bmm.
    g_in = [weights[0].new_ones(m, 1, weights[0].shape[1])]
    for l, w2 in enumerate(sq):
        if biases is None:
            g_in.append(torch.bmm(g_in[-1], w2))
        else:
            g_in.append(torch.baddbmm(biases[l].square().unsqueeze(1), g_in[-1], w2))
    # (M, n_l, 1) column vectors for the backward pass.
    g_out = [weights[-1].new_ones(m, weights[-1].shape[2], 1)]
    for w2 in reversed(sq):
        g_out.append(torch.bmm(w2, g_out[-1]))
    g_out.reverse()
    return [g.squeeze(1) for g in g_in], [g.squeeze(2) for g in g_out]


def path_scales(weights: Sequence[Tensor], biases: Sequence[Tensor] | None = None) -> list[Tensor]:
    """Per-edge Path-SGD scales kappa(u -> v) = gamma_in(u)^2 * gamma_out(v)^2.

    Returns one (M, n_l, n_{l+1}) tensor per weight matrix ``weights[l]``. With ``biases``
    (list of (M, n_{l+1})), gamma_in^2 also counts the paths from the bias units (see the
    module docstring); the scales of the biases themselves are ``bias_scales(weights)``.
    """
    g_in, g_out = unit_scales(weights, biases)
    return [g_in[l].unsqueeze(2) * g_out[l + 1].unsqueeze(1) for l in range(len(weights))]


def bias_scales(weights: Sequence[Tensor]) -> list[Tensor]:
    """Path-SGD scales of the biases: for b_l[v], gamma_out(v)^2 (a bias unit's gamma_in^2
    is 1). One (M, n_{l+1}) tensor per layer; biases do not enter (they are sources)."""
    _, g_out = unit_scales(weights)
    return g_out[1:]


def path_norm(weights: Sequence[Tensor], biases: Sequence[Tensor] | None = None) -> Tensor:
    """l2 path norm of every model, (M,): sqrt(sum over all source -> output paths of the
    product of the squared weights along the path).

    Sources are the inputs (and, with ``biases``, the bias units). The sum over paths is the
    total gamma_in^2 at the outputs, from the same forward pass as ``unit_scales`` (without
    biases it also equals the sum of gamma_out^2 at the inputs).
    """
    g_in, _ = unit_scales(weights, biases)
    return g_in[-1].sum(1).sqrt()


@dataclass(frozen=True, eq=False)
class PathSGD:
    """Stacked Path-SGD, the optimiser protocol of ``theorydl.nn.stack`` (``init`` /
    ``step``, usable with ``train_stack``).

    Per step, with the scales recomputed from the current parameters before any of them
    changes: W_l[u, v] <- W_l[u, v] - lr * g / max(gamma_in(u)^2 gamma_out(v)^2, eps) and
    b_l[v] <- b_l[v] - lr * g / max(gamma_out(v)^2, eps) (biases as weights from a constant
    unit; see the module docstring), with ``g`` the gradient plus ``weight_decay * p`` (L2).
    ``params`` are W_0, b_0, W_1, b_1, ... as in
    ``Stack.params``. ``lr`` is a float or M floats (one per model). ``eps`` only guards
    against a zero scale (a unit cut off from every source or output); clamping rather
    than adding leaves every non-degenerate scale, and so the rescaling invariance, exact.
    """

    lr: float | Sequence[float] | Tensor
    eps: float = 1e-12
    weight_decay: float = 0.0

    def init(self, params: Sequence[Tensor]) -> OptimizerState:
        """State for ``params`` (each with leading model axis M); Path-SGD keeps no buffers."""
        if len(params) % 2:
            raise ValueError("params must alternate W_0, b_0, W_1, b_1, ... (an even count)")
        return OptimizerState(_lr_views(self.lr, params))

    @torch.no_grad()
    def step(self, params: Sequence[Tensor], grads: Sequence[Tensor], state: OptimizerState) -> None:
        """Update ``params`` in place from ``grads`` (same shapes); ``grads`` are not modified."""
        state.step += 1
        weights, biases = params[0::2], params[1::2]
        g_in, g_out = unit_scales(weights, biases)
        scales = []
        for l in range(len(weights)):
            scales.append(g_in[l].unsqueeze(2) * g_out[l + 1].unsqueeze(1))
            scales.append(g_out[l + 1])
        torch._foreach_clamp_min_(scales, self.eps)
        update = torch._foreach_div(decayed(grads, params, self.weight_decay), scales)
        torch._foreach_addcmul_(params, update, state.lr, value=-1.0)
