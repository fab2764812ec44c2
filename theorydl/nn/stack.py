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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# Re-exported here, where they lived before the engine: the data order, the gradient
# moments and the optimisers are the engine's (theorydl.nn.engine, theorydl.nn.optim).
from theorydl.nn.engine import (
    DATA_SEED_OFFSET,
    Arrays,
    Hook,
    Period,
    data_generator,
    epoch_permutation,
    train,
)
from theorydl.nn.losses import Loss, get_loss, loss_backward
from theorydl.nn.optim import SGD, Adam, OptimizerState  # noqa: F401

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
    "mlp_bytes",
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


def _affine_act(b: Tensor, w_t: Tensor, a: Tensor, activation: str | None,
                fast_tanh: bool = True) -> Tensor:
    """``act(b + w_t @ a)`` for biases (M, out), weights transposed (M, out, in) and
    inputs (M, in, B), or (in, B) shared by all models (one (M * out, in) @ (in, B) GEMM
    instead of M copies of the input); returns (M, out, B).  ``activation=None`` leaves
    the affine map (the logits).

    Without autograd (grad mode off) on CPU, tanh is computed in place as
    ``2 sigmoid(2 z) - 1`` with the factor 2 folded into the GEMM: torch's CPU tanh costs
    about twice its sigmoid per element (4.8 vs 2.2 ns on the 2-core EPYC CI machine, 1
    thread), and tanh is the largest single cost of an IB training step.  The two agree
    to float rounding in absolute terms (about 1e-7 in float32, 1e-16 in float64); near
    0 the relative error is larger than torch.tanh's.  ``fast_tanh=False`` uses
    ``torch.tanh`` there too, as on every other device (the same network, bit for bit
    up to the GEMMs, on CPU and GPU: see ``Stack.fast_tanh``).
    """
    fast_tanh = (fast_tanh and activation == "tanh" and a.device.type == "cpu"
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
        return torch.add(_MINUS_ONE, z, alpha=2.0, out=z)
    if activation in _IN_PLACE and not torch.is_grad_enabled():
        return _IN_PLACE[activation](z)  # z is this call's own tensor: no new allocation
    return z if activation is None else ACTIVATIONS[activation](z)


#: -1 as a 0-dim CPU tensor (made once: a tensor from a Python number per call would be
#: a host copy on every step).
_MINUS_ONE = torch.tensor(-1.0)

#: In-place forms of the activations, for passes without autograd (same values).
_IN_PLACE: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu_, "sigmoid": torch.sigmoid_, "tanh": torch.tanh_}


def _forward_fm(weights: Sequence[Tensor], biases: Sequence[Tensor], h: Tensor,
                activation: str, dropout: tuple[float, torch.Generator] | None = None,
                hidden: list[Tensor] | None = None, fast_tanh: bool = True) -> Tensor:
    """Feature-major forward pass from ``h`` (M, in, b), or (in, b) shared by all models:
    logits (M, C, b). ``dropout=(p, generator)`` applies inverted dropout to every hidden
    layer (masks (M, units, b) drawn in layer order); ``hidden`` collects the hidden
    layers (M, units, b) when given."""
    last = len(weights) - 1
    for l, (w, b) in enumerate(zip(weights, biases)):
        h = _affine_act(b, w.transpose(1, 2), h, activation if l < last else None, fast_tanh)
        if l < last:
            if dropout is not None:
                p, gen = dropout
                keep = torch.empty_like(h).bernoulli_(1.0 - p, generator=gen)
                h = h * keep / (1.0 - p)
            if hidden is not None:
                hidden.append(h)
    return h


def _hand_backward(
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    x_t: Tensor,
    y: Tensor,
    activation: str,
    loss: Loss,
    grad_weights: Sequence[Tensor],
    grad_biases: Sequence[Tensor],
    fast_tanh: bool = True,
) -> Tensor:
    """One forward and backward pass of the summed per-model batch-mean ``loss``, written
    out by hand; returns the per-sample losses (M, b) and writes the gradients into
    ``grad_weights`` (M, in_l, out_l) and ``grad_biases`` (M, out_l) in place.

    ``x_t`` is the feature-major input (M, in, b), or (in, b) shared by all models;
    ``y`` the targets the loss takes.  Autograd would compute the same numbers (to
    rounding) with a graph and one more pass per layer; on CPU this is about a quarter
    faster for the IB stack (benchmarks/stacks.py).
    """
    last = len(weights) - 1
    acts = [x_t]
    for l, (w, b) in enumerate(zip(weights, biases)):
        acts.append(_affine_act(b, w.transpose(1, 2), acts[-1],
                                activation if l < last else None, fast_tanh))
    z = acts.pop()  # outputs (M, C, b)
    per_sample, dz = loss(z, y)
    dz = dz.div_(z.shape[2])
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
    return per_sample


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
    #: On CPU without autograd, tanh as 2 sigmoid(2 z) - 1 (about twice as fast; equal
    #: to float rounding, ~1e-7 in float32, but rounding compounds over long training:
    #: see the README on parity). False: torch.tanh, as on every other device.
    fast_tanh: bool = True

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
        h = x.T if x.dim() == 2 else x.transpose(1, 2)  # (in, B) shared, or (M, in, B)
        h = _forward_fm(self.weights, self.biases, h, self.activation,
                        hidden=hidden if return_hidden else None, fast_tanh=self.fast_tanh)
        return h, hidden

    # ---------------------------------------------------- the engine's Family protocol
    @property
    def stat_params(self) -> tuple[int, ...]:
        """The weights W_l (gradient statistics track them, not the biases)."""
        return tuple(range(0, 2 * self.n_layers, 2))

    def bind(self, params: Sequence[Tensor], models: Sequence[int]) -> "Stack":
        """The models ``models`` (indices into this stack) holding ``params`` (W_0, b_0, ...)."""
        return Stack(self.sizes, tuple(self.seeds[i] for i in models), self.activation,
                     tuple(params[0::2]), tuple(params[1::2]), self.fast_tanh)

    @torch.no_grad()
    def load(self, params: Sequence[Tensor]) -> None:
        """Copy ``params`` (W_0, b_0, ...) into this stack's tensors."""
        torch._foreach_copy_(self.params, list(params))

    def prepare(self, X: Tensor) -> Tensor:
        """The feature-major (in, N) copy of a full-batch input shared by all models."""
        return X.T.contiguous()

    def outputs_t(self, x: Tensor) -> Tensor:
        """Logits (M, C, b) for ``x`` (b, in) shared by all models."""
        return self.forward_t(x)[0]

    def value_and_grad(self, x: Tensor, y: Tensor, loss: Loss, grads: Sequence[Tensor], *,
                       shared: bool, dropout: tuple[float, torch.Generator] | None = None
                       ) -> Tensor:
        """Per-sample losses (M, b); the gradients of each model's batch-mean loss go into
        ``grads`` (W_0, b_0, ...). ``x``: (M, b, in), or with ``shared`` the prepared
        (in, N). Tanh, ReLU, sigmoid and linear layers take the hand-written backward
        pass (``_hand_backward``); elu, gelu and dropout go through autograd, from the
        same loss gradient."""
        x_t = x if shared else x.transpose(1, 2)
        if self.activation in _BACKWARD_FROM_OUTPUT and dropout is None:
            with torch.no_grad():
                return _hand_backward(self.weights, self.biases, x_t, y, self.activation,
                                      loss, grads[0::2], grads[1::2], self.fast_tanh)
        params = [p.detach().requires_grad_() for p in self.params]
        with torch.enable_grad():
            z = _forward_fm(params[0::2], params[1::2], x_t, self.activation, dropout)
        return loss_backward(z, params, y, loss, list(grads))


def init_stack(
    sizes: Sequence[int],
    seeds: Sequence[int],
    *,
    activation: str = "tanh",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    fast_tanh: bool = True,
) -> Stack:
    """Build a ``Stack`` whose model ``i`` is ``init_mlp(sizes, seeds[i], dtype=dtype)``.

    Parameters land on ``device`` as W_l (M, in_l, out_l) and b_l (M, out_l).
    ``fast_tanh``: see ``Stack.fast_tanh`` (CPU only).
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
    return Stack(sizes, seeds, activation, tuple(weights), tuple(biases), fast_tanh)


# ------------------------------------------------------------------------- training


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What ``train_stack`` returns (all tensors on the stack's device).

    ``loss`` (M, E): column e is model i's mean per-sample loss over the minibatches of
    epoch e (0-based), measured at the parameters each minibatch saw.
    ``callback_epochs``: the K sorted epochs at which the callback fired and gradient
    statistics were taken (in "epochs completed" units, 0..E).
    ``grad_mean_norm`` and ``grad_std_norm`` (K, L, M), or None when not requested:
    see ``train_stack`` for the definitions.
    """

    loss: Tensor
    callback_epochs: tuple[int, ...]
    grad_mean_norm: Tensor | None = None
    grad_std_norm: Tensor | None = None


def _check_callback_epochs(epochs_: Iterable[int], epochs: int) -> tuple[int, ...]:
    chosen = tuple(sorted({int(e) for e in epochs_}))
    if chosen and (chosen[0] < 0 or chosen[-1] > epochs):
        raise ValueError(f"callback epochs must lie in [0, {epochs}], got {chosen}")
    return chosen


class _Callback(Hook):
    """``train_stack``'s callback and gradient statistics as an engine hook: the stack's
    own tensors get the current values, then ``callback(e, stack)`` runs."""

    def __init__(self, stack: Stack, callback, chosen: tuple[int, ...], grad_stats: bool):
        self.stack, self.callback, self.grad_stats = stack, callback, grad_stats
        self.slot = {e: k for k, e in enumerate(chosen)}
        shape = (len(chosen), stack.n_layers, stack.n_models)
        nan = torch.full(shape, math.nan, device=stack.device, dtype=stack.dtype)
        self.mean_norm = nan if grad_stats else None
        self.std_norm = nan.clone() if grad_stats else None

    def at(self, t: int, periods: int) -> bool:
        return t in self.slot

    def __call__(self, period: Period) -> None:
        if self.grad_stats and period.grad_mean_norm is not None:
            self.mean_norm[self.slot[period.t]] = period.grad_mean_norm
            self.std_norm[self.slot[period.t]] = period.grad_std_norm
        if self.callback is not None:
            self.stack.load(period.family.params)
            self.callback(period.t, self.stack)


def train_stack(
    stack: Stack,
    X: Tensor,
    y: Tensor,
    optimizer,
    epochs: int,
    *,
    batch_size: int | None = None,
    callback: Callable[[int, Stack], None] | None = None,
    callback_epochs: Iterable[int] = (),
    grad_stats: bool = False,
    loss: str | Loss = "cross_entropy",
) -> TrainResult:
    """Train every model of ``stack`` on (X (N, in), y (N,)) for ``epochs`` epochs: the
    engine's loop (``theorydl.nn.engine.train``) with a callback at chosen epochs.

    Minibatch mode (``batch_size < N``): each epoch, model i visits the data in the order
    ``torch.randperm(N, generator=data_generator(seeds[i]))`` (see ``data_generator``),
    in ceil(N / batch_size) steps, the last one possibly smaller. Full-batch mode
    (``batch_size`` None or >= N): one step per epoch on the whole dataset, no shuffling.
    ``loss``: cross-entropy (y int64 labels) by default; see ``theorydl.nn.losses``.

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
    Entries for e = 0 are NaN (no steps yet).

    Returns a ``TrainResult``; the stack's parameters are trained in place.
    """
    X = X.to(device=stack.device, dtype=stack.dtype)
    if X.dim() != 2 or X.shape[1] != stack.sizes[0]:
        raise ValueError(f"X must be (N, {stack.sizes[0]}), got {tuple(X.shape)}")
    n = X.shape[0]
    if y.shape != (n,) or (get_loss(loss).integer_targets and y.dtype != torch.int64):
        raise ValueError(f"y must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}")
    if epochs < 0:
        raise ValueError("epochs must be >= 0")
    chosen = _check_callback_epochs(callback_epochs, epochs)
    hook = _Callback(stack, callback, chosen, grad_stats)
    trained = train(stack, Arrays(X, y), optimizer, epochs, loss=loss, batch_size=batch_size,
                    hooks=[hook])
    return TrainResult(trained.loss, chosen, hook.mean_norm, hook.std_norm)


# --------------------------------------------------------------------------- memory

#: Multiplier on the estimate for allocator rounding, fragmentation and temporaries.
_MEMORY_SLACK = 1.5


def mlp_bytes(sizes: Sequence[int], n_samples: int, batch_size: int | None,
              dtype_bytes: int = 4) -> tuple[int, int]:
    """Estimated memory of an MLP stack in bytes: ``(per_model, shared)``.

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
    The per-model sum is multiplied by 1.5 for allocator slack and temporaries.
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
    return int(per_model), int(shared)


def max_stack_size(
    sizes: Sequence[int],
    n_samples: int,
    batch_size: int | None,
    budget_bytes: int,
    dtype_bytes: int = 4,
) -> int:
    """How many models of layer widths ``sizes`` fit in ``budget_bytes`` (at least 1), by
    the estimate of :func:`mlp_bytes`."""
    per_model, shared = mlp_bytes(sizes, n_samples, batch_size, dtype_bytes)
    return max(1, int((budget_bytes - shared) // per_model))
