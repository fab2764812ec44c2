"""Stacks: M independent small MLPs trained together in one batched computation.

Model ``i`` of a stack is, up to floating-point rounding, the same network as a lone
``torch.nn.Sequential`` of ``nn.Linear`` layers initialised with
``init_mlp(sizes, seeds[i])``, fed the data order of ``data_generator(seeds[i])`` and
trained with ``torch.optim.SGD`` / ``torch.optim.Adam`` at learning rate ``lr[i]``.
Batching the M models turns M x (many tiny kernel launches) into one launch per layer,
which is what makes sweeps over seeds and learning rates of small networks cheap.

Shapes used throughout: ``M`` models, ``B`` samples in a batch, ``N`` samples in the
dataset, ``L`` layers (``len(sizes) - 1``), ``C`` classes (``sizes[-1]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

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


def _identity(h: Tensor) -> Tensor:
    return h


#: Hidden-layer activations by name; the output layer is always linear (logits).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": _identity,
    "identity": _identity,
    "elu": F.elu,
    "gelu": F.gelu,
}

#: Derivative of each hidden activation written from its output ``a``: ``g -> g * act'(z)``.
#: The training loop's hand-written backward pass uses these; an activation missing here
#: (elu, gelu: their derivative needs the pre-activation) trains through autograd.
_BACKWARD_FROM_OUTPUT: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "tanh": torch.ops.aten.tanh_backward,
    "sigmoid": torch.ops.aten.sigmoid_backward,
    "relu": lambda g, a: torch.ops.aten.threshold_backward(g, a, 0),
    "linear": lambda g, a: g,
    "identity": lambda g, a: g,
}


def _affine_act(b: Tensor, w_t: Tensor, a: Tensor, activation: str | None) -> Tensor:
    """``act(b + w_t @ a)`` for biases (M, out), weights transposed (M, out, in) and
    inputs (M, in, B), or (in, B) shared by all models (one (M * out, in) @ (in, B) GEMM
    instead of M copies of the input); returns (M, out, B).  ``activation=None`` leaves
    the affine map (the logits).

    Without autograd (grad mode off) on CPU, tanh is computed in place as
    ``2 sigmoid(2 z) - 1`` with the factor 2 folded into the GEMM: torch's CPU tanh costs
    about twice its sigmoid per element (4.8 vs 2.2 ns on the 2-core EPYC CI machine, 1
    thread), and tanh is the largest single cost of an IB training step.  The two agree
    to float rounding in absolute terms (about 1e-7 in float32, 1e-16 in float64); near
    0 the relative error is larger than torch.tanh's.
    """
    fast_tanh = (activation == "tanh" and a.device.type == "cpu"
                 and not torch.is_grad_enabled())
    scale = 2.0 if fast_tanh else 1.0
    m, out = w_t.shape[0], w_t.shape[1]
    if a.dim() == 2:  # shared input: one (M * out, in) @ (in, B) GEMM
        z = torch.addmm(b.reshape(m * out, 1), w_t.reshape(m * out, -1), a,
                        beta=scale, alpha=scale).view(m, out, -1)
    else:
        z = torch.baddbmm(b.unsqueeze(2), w_t, a, beta=scale, alpha=scale)
    if fast_tanh:
        torch.sigmoid_(z)
        return torch.add(z.new_tensor(-1.0), z, alpha=2.0, out=z)
    return z if activation is None else ACTIVATIONS[activation](z)


def _hand_backward(
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    x_t: Tensor,
    y: Tensor,
    activation: str,
    grad_weights: Sequence[Tensor],
    grad_biases: Sequence[Tensor],
) -> Tensor:
    """One forward and backward pass of the summed per-model mean cross-entropy, written
    out by hand; returns the per-sample losses (M, b) and writes the gradients into
    ``grad_weights`` (M, in_l, out_l) and ``grad_biases`` (M, out_l) in place.

    ``x_t`` is the feature-major input (M, in, b), or (in, b) shared by all models;
    ``y`` (M, b).  Autograd would compute the same numbers (to rounding) with a graph,
    a log-softmax over a strided axis and one more pass per layer; on CPU this is about
    a quarter faster for the IB stack (benchmarks/stacks.py).
    """
    last = len(weights) - 1
    acts = [x_t]
    for l, (w, b) in enumerate(zip(weights, biases)):
        acts.append(_affine_act(b, w.transpose(1, 2), acts[-1], activation if l < last else None))
    z = acts.pop()  # logits (M, C, b)
    n = z.shape[2]
    # Cross-entropy: loss = log sum_c exp(z_c) - z_y; its gradient is softmax - onehot.
    top = z.amax(dim=1, keepdim=True)
    e = torch.sub(z, top).exp_()
    total = e.sum(dim=1, keepdim=True)
    target = y.unsqueeze(1)  # (M, 1, b)
    z_y = z.gather(1, target)
    loss = total.log().add_(top).sub_(z_y).squeeze(1)
    dz = e.div_(total).scatter_add_(1, target, torch.full_like(z_y, -1.0)).div_(n)
    derivative = _BACKWARD_FROM_OUTPUT[activation]
    for l in range(last, -1, -1):
        a = acts[l]
        # (The gradient views are strided across models; bmm(out=view) would fall back
        # to one GEMM per model, so the result is computed contiguous and copied.)
        if a.dim() == 2:  # shared input (in, b): dW[i] = a @ dz[i]^T
            grad_weights[l].copy_(torch.matmul(a, dz.transpose(1, 2)))
        elif l == 0:  # the input is a transposed (M, b, in) gather: dW^T = dz @ x
            grad_weights[l].copy_(torch.bmm(dz, a.transpose(1, 2)).transpose(1, 2))
        else:
            grad_weights[l].copy_(torch.bmm(a, dz.transpose(1, 2)))
        torch.sum(dz, dim=2, out=grad_biases[l])
        if l:
            dz = derivative(torch.bmm(weights[l], dz), a)
    return loss


def _flat_views(flat: Tensor, shapes: Sequence[torch.Size]) -> list[Tensor]:
    """Views of consecutive column ranges of ``flat`` (M, P) with the given (M, ...) shapes."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape[1:])
        views.append(flat[:, offset : offset + size].view(shape))
        offset += size
    return views


#: Added to a model's seed (mod 2**32) to seed its data-order generator. torch's CPU
#: generator only uses the low 32 bits of a seed, so an offset of 2**32 would be a no-op;
#: with 2**31, init seeds below 2**31 and their data seeds in [2**31, 2**32) never meet.
DATA_SEED_OFFSET = 2**31


# --------------------------------------------------------------------------- devices


def resolve_device(name: str | torch.device) -> torch.device:
    """Map ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a ``torch.device``) to a device.

    ``"auto"`` is CUDA when available, else CPU. CUDA without a usable CUDA device raises
    ``ValueError`` rather than failing later inside the first kernel.
    """
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not (name == "cuda" or name.startswith("cuda:")):
        raise ValueError(f"unknown device {name!r}; expected 'auto', 'cpu' or 'cuda'")
    if name != "cpu" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} was requested but CUDA is not available "
            f"(torch {torch.__version__}); use 'cpu' or 'auto'"
        )
    return torch.device(name)


# ------------------------------------------------------------------ initialisation


def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must hold >= 2 positive layer widths, got {sizes}")
    return sizes


def init_mlp(
    sizes: Sequence[int], seed: int, *, dtype: torch.dtype = torch.float32
) -> list[tuple[Tensor, Tensor]]:
    """Initialise one MLP deterministically from ``torch.Generator().manual_seed(seed)``.

    Same distribution as ``torch.nn.Linear``'s default (kaiming-uniform with
    a=sqrt(5)): weights and biases of layer l are U(-1/sqrt(in_l), 1/sqrt(in_l)).
    Draw order: W_0, b_0, W_1, b_1, ... from one CPU generator; values are drawn in
    float64 and then cast, so a float32 and a float64 model of the same seed agree up
    to rounding. The global RNG is neither used nor advanced. (torch's CPU generator
    uses only the low 32 bits of ``seed``.)

    Returns ``[(W_l, b_l)]`` with ``W_l`` of shape (in_l, out_l) (note: the transpose of
    ``nn.Linear.weight``) and ``b_l`` of shape (out_l,), on CPU.
    """
    sizes = _check_sizes(sizes)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = torch.rand(fan_in, fan_out, generator=gen, dtype=torch.float64)
        b = torch.rand(fan_out, generator=gen, dtype=torch.float64)
        layers.append(((w * 2 - 1) * bound, (b * 2 - 1) * bound))
    return [(w.to(dtype), b.to(dtype)) for w, b in layers]


# --------------------------------------------------------------------------- stacks


@dataclass(frozen=True, eq=False)
class Stack:
    """M MLPs with identical architecture, parameters stacked along a leading model axis.

    ``weights[l]`` has shape (M, in_l, out_l) and ``biases[l]`` shape (M, out_l); both
    are leaf tensors with ``requires_grad=True`` that the optimisers update in place
    (the dataclass is frozen: the tensors, not the fields, change). Build with
    ``init_stack``.
    """

    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    activation: str
    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, ...]

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        m = len(self.seeds)
        for l, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.shape != (m, self.sizes[l], self.sizes[l + 1]) or b.shape != (m, self.sizes[l + 1]):
                raise ValueError(f"layer {l}: shapes {tuple(w.shape)}, {tuple(b.shape)} do not match sizes")

    @property
    def n_models(self) -> int:
        """M, the number of models."""
        return len(self.seeds)

    @property
    def n_layers(self) -> int:
        """L, the number of affine layers (hidden layers + output layer)."""
        return len(self.weights)

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.weights[0].dtype

    @property
    def params(self) -> list[Tensor]:
        """Parameters in the order W_0, b_0, W_1, b_1, ... (the optimisers' order)."""
        return [p for wb in zip(self.weights, self.biases) for p in wb]

    def member(self, i: int) -> list[tuple[Tensor, Tensor]]:
        """Model ``i`` as detached copies ``[(W_l (in_l, out_l), b_l (out_l,))]``."""
        return [(w[i].detach().clone(), b[i].detach().clone()) for w, b in zip(self.weights, self.biases)]

    def __call__(
        self, x: Tensor, *, return_hidden: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Forward pass of all M models.

        ``x`` is (B, in) fed to every model, or (M, B, in) with one batch per model.
        Returns logits (M, B, C); with ``return_hidden=True`` also the list of the
        L - 1 post-activation hidden layers, each (M, B, units_l). The results are
        transposed views of feature-major tensors (see ``forward_t``), so they are not
        contiguous; ``.contiguous()`` them if an estimator needs that.
        """
        logits, hidden = self.forward_t(x, return_hidden=return_hidden)
        logits = logits.transpose(1, 2)
        if return_hidden:
            return logits, [h.transpose(1, 2) for h in hidden]
        return logits

    def forward_t(self, x: Tensor, *, return_hidden: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Feature-major forward pass: ``x`` as in ``__call__``; returns contiguous logits
        (M, C, B) and the hidden layers (M, units_l, B) (an empty list unless
        ``return_hidden``).

        Why feature-major: with widths of 2-12 units, (M, B, in) @ (M, in, out) gives
        GEMMs whose output rows are a few floats wide, which CPU BLAS runs several
        times slower than (M, out, in) @ (M, in, B), whose rows are B wide; the
        cross-entropy over (M, C, B) likewise beats (M * B, C) for small C.

        Under ``torch.no_grad()`` a CPU tanh goes through the sigmoid, as in the training
        loop (``_affine_act``: equal to float rounding).
        """
        hidden: list[Tensor] = []
        last = self.n_layers - 1
        h = x.T if x.dim() == 2 else x.transpose(1, 2)  # (in, B) shared, or (M, in, B)
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = _affine_act(b, w.transpose(1, 2), h, self.activation if l < last else None)
            if l < last and return_hidden:
                hidden.append(h)
        return h, hidden


def init_stack(
    sizes: Sequence[int],
    seeds: Sequence[int],
    *,
    activation: str = "tanh",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Stack:
    """Build a ``Stack`` whose model ``i`` is ``init_mlp(sizes, seeds[i], dtype=dtype)``.

    Parameters land on ``device`` as W_l (M, in_l, out_l) and b_l (M, out_l).
    """
    sizes = _check_sizes(sizes)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("a stack needs at least one seed")
    members = [init_mlp(sizes, s, dtype=dtype) for s in seeds]
    weights, biases = [], []
    for l in range(len(sizes) - 1):
        weights.append(torch.stack([m[l][0] for m in members]).to(device).requires_grad_())
        biases.append(torch.stack([m[l][1] for m in members]).to(device).requires_grad_())
    return Stack(sizes, seeds, activation, tuple(weights), tuple(biases))


# ----------------------------------------------------------------------- optimisers


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
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
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
        if self.weight_decay:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
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


# ------------------------------------------------------------------------- training


def data_generator(seed: int) -> torch.Generator:
    """The CPU generator that fixes a model's data order:
    ``torch.Generator().manual_seed((seed + DATA_SEED_OFFSET) % 2**32)``, offset 2**31.

    A lone reference run reproduces model ``i``'s order by creating
    ``g = data_generator(seeds[i])`` once before training and, at the start of every
    epoch, taking ``torch.randperm(N, generator=g)``; minibatch k is
    ``perm[k * batch_size:(k + 1) * batch_size]`` (the last one may be smaller).
    """
    return torch.Generator(device="cpu").manual_seed((seed + DATA_SEED_OFFSET) % 2**32)


def epoch_permutation(generators: Sequence[torch.Generator], n: int, device: torch.device) -> Tensor:
    """One epoch's data order for every model: (M, n) int64 on ``device``, row i from ``generators[i]``.

    Permutations are always drawn on CPU (so the order does not depend on the device)
    and, for CUDA, copied once per epoch from pinned memory without blocking the host.
    """
    perm = torch.stack([torch.randperm(n, generator=g) for g in generators])
    if device.type == "cuda":
        return perm.pin_memory().to(device, non_blocking=True)
    return perm.to(device)


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What ``train_stack`` returns (all tensors on the stack's device).

    ``loss`` (M, E): column e is model i's mean per-sample cross-entropy over the
    minibatches of epoch e (0-based), measured at the parameters each minibatch saw.
    ``callback_epochs``: the K sorted epochs at which the callback fired and gradient
    statistics were taken (in "epochs completed" units, 0..E).
    ``grad_mean_norm`` and ``grad_std_norm`` (K, L, M), or None when not requested:
    see ``train_stack`` for the definitions.
    """

    loss: Tensor
    callback_epochs: tuple[int, ...]
    grad_mean_norm: Tensor | None = None
    grad_std_norm: Tensor | None = None


class _GradMoments:
    """Running first and second moments of per-step weight gradients over one epoch.

    Uses the shifted-data formulas with the epoch's first gradient as the shift, so the
    variance does not cancel catastrophically when |mean| >> std (common late in
    training). Accumulators stay on device.
    """

    def __init__(self) -> None:
        self.shift: list[Tensor] = []
        self.s1: list[Tensor] = []
        self.s2: list[Tensor] = []
        self.n = 0

    def add(self, grads: list[Tensor]) -> None:
        if self.n == 0:
            self.shift = [g.detach().clone() for g in grads]
            self.s1 = [torch.zeros_like(g) for g in grads]
            self.s2 = [torch.zeros_like(g) for g in grads]
        else:
            d = torch._foreach_sub(grads, self.shift)
            torch._foreach_add_(self.s1, d)
            torch._foreach_addcmul_(self.s2, d, d)
        self.n += 1

    def norms(self) -> tuple[Tensor, Tensor]:
        """(L, M) norms of the mean gradient and of the elementwise std."""
        mean_d = torch._foreach_div(self.s1, self.n)
        mean = torch._foreach_add(self.shift, mean_d)
        var = torch._foreach_sub(torch._foreach_div(self.s2, self.n), torch._foreach_mul(mean_d, mean_d))
        std = torch._foreach_sqrt(torch._foreach_clamp_min(var, 0.0))
        mean_norm = torch.stack([torch.linalg.vector_norm(t.flatten(1), dim=1) for t in mean])
        std_norm = torch.stack([torch.linalg.vector_norm(t.flatten(1), dim=1) for t in std])
        return mean_norm, std_norm


def _check_callback_epochs(epochs_: Iterable[int], epochs: int) -> tuple[int, ...]:
    chosen = tuple(sorted({int(e) for e in epochs_}))
    if chosen and (chosen[0] < 0 or chosen[-1] > epochs):
        raise ValueError(f"callback epochs must lie in [0, {epochs}], got {chosen}")
    return chosen


def train_stack(
    stack: Stack,
    X: Tensor,
    y: Tensor,
    optimizer: SGD | Adam,
    epochs: int,
    *,
    batch_size: int | None = None,
    callback: Callable[[int, Stack], None] | None = None,
    callback_epochs: Iterable[int] = (),
    grad_stats: bool = False,
) -> TrainResult:
    """Train every model of ``stack`` on (X (N, in), y (N,) int64 labels) with cross-entropy.

    Minibatch mode (``batch_size < N``): each epoch, model i visits the data in the order
    ``torch.randperm(N, generator=data_generator(seeds[i]))`` (one generator per model,
    created when this call starts, advanced once per epoch; see ``data_generator``),
    in ceil(N / batch_size) steps, the last one possibly smaller. Permutations are drawn
    on CPU even for a CUDA stack and copied to the device once per epoch
    (``epoch_permutation``), so the data order does not depend on the device. Full-batch mode
    (``batch_size`` None or >= N): one step per epoch on the whole dataset, no shuffling.

    Gradients are those of the sum over models of each model's mean minibatch loss:
    parameters of different models never interact, so the sum's gradient w.r.t. model
    i's slice is exactly model i's own gradient, and one backward pass serves all M
    models. For tanh, ReLU, sigmoid and linear layers the backward pass is written out
    by hand (``_hand_backward``; no graph, cross-entropy and its gradient fused) on
    parameters held in one flat (M, P) buffer during the call, so SGD and Adam update
    every layer in one call per operation; for elu and gelu it is
    ``torch.autograd.grad``. (``torch.func.vmap(grad)`` would compute the same thing
    with more dispatch overhead per step.) On CPU, tanh is evaluated through the
    sigmoid (see ``_affine_act``).

    ``callback(e, stack)`` runs under ``torch.no_grad()`` for each e in
    ``callback_epochs``, where e counts completed epochs (0 = before training,
    E = after the last epoch), with the stack's tensors holding the current
    parameters; nothing per epoch is stored on its behalf.

    ``grad_stats=True`` records, for each callback epoch e >= 1, each layer l's weight
    W_l and each model i, over the S minibatch steps of the epoch just completed (the
    e-th, column e - 1 of ``loss``), with g_s the gradient at step s:
    ``grad_mean_norm[k, l, i] = || (1/S) sum_s g_s ||_F`` and
    ``grad_std_norm[k, l, i] = || sqrt((1/S) sum_s (g_s - mean)^2) ||_F`` (elementwise
    population std, ddof=0; every step weighs the same, the smaller last one too).
    Entries for e = 0 are NaN (no steps yet). The sum and sum of squares accumulate on
    device, only during the epochs that are reported, shifted by the epoch's first
    gradient so that the variance does not cancel catastrophically in float32.

    The step loop never reads device values on the host (losses accumulate into an
    (M,) device tensor), so on CUDA kernels queue without per-step synchronisation.
    Returns a ``TrainResult``; the stack's parameters are trained in place.
    """
    m, device = stack.n_models, stack.device
    X = X.to(device=device, dtype=stack.dtype)
    y = y.to(device=device)
    n = X.shape[0]
    if X.dim() != 2 or X.shape[1] != stack.sizes[0]:
        raise ValueError(f"X must be (N, {stack.sizes[0]}), got {tuple(X.shape)}")
    if y.shape != (n,) or y.dtype != torch.int64:
        raise ValueError(f"y must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}")
    if epochs < 0 or (batch_size is not None and batch_size < 1):
        raise ValueError("epochs must be >= 0 and batch_size >= 1 (or None)")
    chosen = _check_callback_epochs(callback_epochs, epochs)
    slot = {e: k for k, e in enumerate(chosen)}

    full_batch = batch_size is None or batch_size >= n
    bs = n if full_batch else batch_size
    starts = range(0, n, bs)
    # Activations whose derivative is known from their output train with the
    # hand-written backward pass (``_hand_backward``), on parameters and gradients held
    # as views of two flat (M, P) buffers, so that an elementwise optimiser (SGD, Adam)
    # updates all layers in one call per operation; the stack's own tensors get the
    # values before every callback and at the end.  Others (elu, gelu) use autograd.
    hand = stack.activation in _BACKWARD_FROM_OUTPUT
    if hand:
        shapes = [p.shape for p in stack.params]
        flat = torch.cat([p.detach().reshape(m, -1) for p in stack.params], dim=1)
        flat_grad = torch.zeros_like(flat)
        params, grads = _flat_views(flat, shapes), _flat_views(flat_grad, shapes)
        elementwise = type(optimizer) in (SGD, Adam)
        opt_params, opt_grads = ([flat], [flat_grad]) if elementwise else (params, grads)
        X_t = X.T.contiguous() if full_batch else None  # shared feature-major input
    else:
        params = opt_params = stack.params
    weight_grads = slice(0, None, 2)  # params alternate W_0, b_0, W_1, ...
    state = optimizer.init(opt_params)
    generators = [] if full_batch else [data_generator(s) for s in stack.seeds]
    y_full = y.expand(m, n) if full_batch else None  # every model sees all targets

    loss = torch.empty(m, epochs, device=device, dtype=stack.dtype)
    shape = (len(chosen), stack.n_layers, m)
    mean_norm = torch.full(shape, math.nan, device=device, dtype=stack.dtype) if grad_stats else None
    std_norm = torch.full(shape, math.nan, device=device, dtype=stack.dtype) if grad_stats else None

    def sync() -> None:
        if hand:
            with torch.no_grad():
                torch._foreach_copy_(stack.params, params)

    def report(e: int) -> None:
        if callback is not None and e in slot:
            sync()
            with torch.no_grad():
                callback(e, stack)

    report(0)
    for epoch in range(epochs):
        moments = _GradMoments() if grad_stats and epoch + 1 in slot else None
        order = None if full_batch else epoch_permutation(generators, n, device)
        total = torch.zeros(m, device=device, dtype=stack.dtype)
        for start in starts:
            if order is None:
                xb, yb = X, y_full
            else:
                # index_select on the flattened (M * b) indices: several times faster
                # on CPU than advanced indexing with the (M, b) index tensor; rows of
                # X gather 4x faster than columns of X^T.
                idx = order[:, start : start + bs].flatten()
                yb = y.index_select(0, idx).view(m, -1)
                xb = X.index_select(0, idx).view(m, yb.shape[1], -1)  # (M, b, in)
            if hand:
                x_t = X_t if order is None else xb.transpose(1, 2)  # feature-major
                with torch.no_grad():
                    per_sample = _hand_backward(params[0::2], params[1::2], x_t, yb,
                                                stack.activation, grads[0::2], grads[1::2])
            else:
                logits, _ = stack.forward_t(xb)  # (M, C, b)
                per_sample = F.cross_entropy(logits, yb, reduction="none")  # (M, b)
                # One backward for all models: they share no parameters (see docstring).
                grads = opt_grads = torch.autograd.grad(per_sample.sum() / yb.shape[1], params)
                per_sample = per_sample.detach()
            total.add_(per_sample.sum(1))
            if moments is not None:
                moments.add(list(grads[weight_grads]))
            optimizer.step(opt_params, opt_grads, state)
        loss[:, epoch] = total / n
        if moments is not None:
            mean_norm[slot[epoch + 1]], std_norm[slot[epoch + 1]] = moments.norms()
        report(epoch + 1)
    sync()
    return TrainResult(loss, chosen, mean_norm, std_norm)


# --------------------------------------------------------------------------- memory

#: Multiplier on the estimate for allocator rounding, fragmentation and temporaries.
_MEMORY_SLACK = 1.5


def max_stack_size(
    sizes: Sequence[int],
    n_samples: int,
    batch_size: int | None,
    budget_bytes: int,
    dtype_bytes: int = 4,
) -> int:
    """Estimate how many models of layer widths ``sizes`` fit in ``budget_bytes`` (at least 1).

    Shared, paid once: the dataset X (N x in, dtype) and labels (N, int64).
    Per model, in ``dtype_bytes`` units unless noted, with P = number of parameters,
    b = batch_size (N when None), H = sum of the widths after the input:
      * 7 P: parameters, gradients, two optimiser buffers (Adam; SGD momentum uses one)
        and three gradient-statistics accumulators (counted on all parameters, a slight
        overestimate since only weights are tracked);
      * b (in + 3 H): the gathered minibatch plus, per layer, the pre-activation,
        post-activation and its gradient kept or built during backward;
      * N H: the full-dataset forward a callback runs (every hidden layer + logits);
      * 8 (N + 2 b) bytes: the epoch permutation, minibatch indices and targets (int64).
    The sum is multiplied by 1.5 for allocator slack and temporaries.
    """
    sizes = _check_sizes(sizes)
    b = n_samples if batch_size is None else min(batch_size, n_samples)
    n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
    width = sum(sizes[1:])
    per_model = (
        dtype_bytes * (7 * n_params + b * (sizes[0] + 3 * width) + n_samples * width)
        + 8 * (n_samples + 2 * b)
    ) * _MEMORY_SLACK
    shared = dtype_bytes * n_samples * sizes[0] + 8 * n_samples
    return max(1, int((budget_bytes - shared) // per_model))
