"""The training engine: one loop that trains a stack of M models of any family.

Every experiment that trains networks goes through :func:`train`. What varies between
studies plugs into it; nothing forks it:

* a **family** (the models: ``theorydl.nn.Stack`` for MLPs with their hand-written
  backward pass, ``theorydl.nn.ModuleStack`` for any ``torch.nn.Module`` through
  ``torch.func``; see :class:`Family`);
* a **loss** (``theorydl.nn.losses``: cross-entropy, binary and multi-class hinge,
  squared error);
* an **optimiser** (``SGD`` with momentum, ``Adam``, ``PathSGD``; weight decay is theirs);
* the **data**: :class:`Arrays` (epochs over a fixed set, full batch or minibatches in a
  per-model order) or :class:`Stream` (iterations, a fresh minibatch drawn every step
  from each model's own generator);
* **hooks** at chosen periods (epochs, or blocks of iterations): recording
  measurements, gradient statistics over a period's minibatches (``grad_stats``), and
  per-model stopping (``Period.stop``), after which the stopped models leave the
  batched computation (compaction) while the others keep their optimiser state;
* dropout (a family that supports it, the MLP).

Model i of a stack trains exactly as it would alone, up to floating-point rounding: its
initialisation comes from its seed, its data order from ``data_generator(seed)``, its
learning rate from the optimiser's i-th entry, and models share no parameters, so the
gradient of the sum of the models' batch-mean losses is each model's own gradient. The
tests check this model by model against ``torch.nn`` + ``torch.optim``.

Time is counted in *periods*: an epoch for :class:`Arrays`, ``Stream.steps_per_period``
iterations for a stream. Period 0 is the initialisation; hooks see period t after the
t-th period's last step.

The step loop never reads a device value on the host (losses accumulate on the device),
so on CUDA kernels queue without synchronising; only hooks that decide something (a
stopping rule) read values, at the periods they fire.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from theorydl.nn.losses import Loss, get_loss

__all__ = [
    "DATA_SEED_OFFSET",
    "Arrays",
    "Family",
    "Hook",
    "Period",
    "Stream",
    "Trained",
    "data_generator",
    "epoch_permutation",
    "evaluate",
    "flat_views",
    "train",
]

#: Added to a model's seed (mod 2**32) to seed its data-order generator. torch's CPU
#: generator only uses the low 32 bits of a seed, so an offset of 2**32 would be a no-op;
#: with 2**31, init seeds below 2**31 and their data seeds in [2**31, 2**32) never meet.
DATA_SEED_OFFSET = 2**31


def data_generator(seed: int) -> torch.Generator:
    """The CPU generator that fixes a model's data order (or data stream):
    ``torch.Generator().manual_seed((seed + DATA_SEED_OFFSET) % 2**32)``, offset 2**31.

    A lone reference run reproduces model ``i``'s order by creating
    ``g = data_generator(seeds[i])`` once before training and, at the start of every
    epoch, taking ``torch.randperm(N, generator=g)``; minibatch k is
    ``perm[k * batch_size:(k + 1) * batch_size]`` (the last one may be smaller). For a
    :class:`Stream`, step s's batch is the s-th call ``sample(g, batch_size)``.
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


def flat_views(flat: Tensor, shapes: Sequence[torch.Size]) -> list[Tensor]:
    """Views of consecutive column ranges of ``flat`` (M, P) with the given (., ...) shapes
    (their leading size is ``flat``'s M)."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape[1:])
        views.append(flat[:, offset : offset + size].view(flat.shape[0], *shape[1:]))
        offset += size
    return views


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class Arrays:
    """A fixed training set, visited in epochs: ``X`` (N, ...) inputs, ``y`` (N,) or
    (N, C) targets (int64 class indices or floats, as the loss wants). Every model sees
    the same set, each in its own order. With ``per_model``, ``y`` has a leading model
    axis, (M, N) or (M, N, C): model i fits the same inputs to its own targets ``y[i]``
    (many target functions trained in one stack)."""

    X: Tensor
    y: Tensor
    per_model: bool = False


@dataclass(frozen=True, eq=False)
class Stream:
    """Fresh data every step: ``sample(generator, batch_size) -> (x (b, ...), y (b, ...))``
    draws one model's minibatch from that model's generator (``data_generator(seed)``),
    so model i sees the same stream in a stack as alone. A period is
    ``steps_per_period`` steps. (M calls per step: a sampler that is cheap to call.)"""

    sample: Callable[[torch.Generator, int], tuple[Tensor, Tensor]]
    steps_per_period: int = 1


# -------------------------------------------------------------------------- families


@runtime_checkable
class Family(Protocol):
    """What the engine needs of a stack of M models (``Stack``, ``ModuleStack``).

    A family object holds its models' parameters as tensors with a leading model axis;
    the engine copies them into one flat (M, P) buffer for the run, ``bind``s views of
    it (the active models) to the family, and writes the trained values back at the end
    with ``load``.
    """

    seeds: tuple[int, ...]

    @property
    def params(self) -> list[Tensor]:
        """The parameters, each (M, ...), in the order optimisers see them."""

    @property
    def stat_params(self) -> tuple[int, ...]:
        """Indices into ``params`` whose gradients ``grad_stats`` tracks (the weights)."""

    def bind(self, params: Sequence[Tensor], models: Sequence[int]) -> "Family":
        """The models ``models`` (indices into this family) holding ``params`` (views the
        engine owns); whatever else is per model (seeds, fixed tensors) follows them."""

    def load(self, params: Sequence[Tensor]) -> None:
        """Copy ``params`` (same shapes) into this family's own tensors."""

    def prepare(self, X: Tensor) -> Tensor:
        """The form of a full-batch input shared by every model (computed once a run)."""

    def value_and_grad(self, x: Tensor, y: Tensor, loss: Loss, grads: Sequence[Tensor], *,
                       shared: bool, dropout: tuple[float, torch.Generator] | None
                       ) -> Tensor:
        """One forward and backward pass: per-sample losses (M, b); the gradients of
        each model's batch-mean loss are written into ``grads`` (the ``params``' shapes).
        ``x`` is (M, b, ...) or, with ``shared``, ``prepare(X)`` for every model."""

    def outputs_t(self, x: Tensor) -> Tensor:
        """Outputs (M, C, b) for an input (b, ...) shared by every model, without a graph."""


# --------------------------------------------------------------------------- hooks


class _GradMoments:
    """Running first and second moments of per-step gradients over one period.

    Uses the shifted-data formulas with the period's first gradient as the shift, so the
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


@dataclass(eq=False)
class Period:
    """What a hook sees after period ``t`` (0: the initialisation).

    ``family``: the active models, bound to their current parameters (read them; do not
    write them). ``models``: the original index (position in the stack the run started
    with) of each active model. ``loss`` (k,): each active model's mean training loss
    over the period's steps (None at t = 0). ``grad_mean_norm`` and ``grad_std_norm``
    (S, k): for S = ``len(family.stat_params)`` tracked parameters, the norms of the mean
    and of the elementwise standard deviation (ddof 0) of the per-step gradients over
    the period (only when a hook firing now asked for ``grad_stats``; else None).
    """

    t: int
    periods: int
    family: Family
    models: np.ndarray
    loss: Tensor | None = None
    grad_mean_norm: Tensor | None = None
    grad_std_norm: Tensor | None = None
    stops: dict[int, str] = field(default_factory=dict)

    @property
    def grad_snr(self) -> Tensor | None:
        """(S, k) gradient signal-to-noise ratios: ``grad_mean_norm / grad_std_norm``
        (inf where the spread is zero, as in full-batch training)."""
        if self.grad_mean_norm is None:
            return None
        return self.grad_mean_norm / self.grad_std_norm

    def stop(self, positions: Iterable[int], reason: str) -> None:
        """Take the active models at ``positions`` (indices into ``models``) out of the
        run after this period, with a reason that ``Trained.reason`` reports."""
        for j in positions:
            self.stops.setdefault(int(j), reason)


class Hook:
    """Something the loop does at chosen periods. Subclass and override ``at`` and
    ``__call__``; set ``grad_stats = True`` to get gradient statistics in ``Period``."""

    grad_stats: bool = False

    def at(self, t: int, periods: int) -> bool:
        """Fire after period ``t`` (0 = before training, ``periods`` = the last)?"""
        return False

    def __call__(self, period: Period) -> None:
        """Runs under ``torch.no_grad()``; may call ``period.stop``."""


@dataclass(frozen=True, eq=False)
class Trained:
    """What :func:`train` returns.

    ``family``: the trained models in the original order (the input family, whose
    tensors were overwritten with each model's parameters at its stop). ``loss`` (M, T):
    each model's mean training loss per period, NaN after it stopped (on the device).
    ``periods_run`` (M,): the periods each model trained. ``reason`` (M,): why it stopped
    (a hook's reason; "" for a model that ran every period).
    """

    family: Family
    loss: Tensor
    periods_run: np.ndarray
    reason: np.ndarray


# ---------------------------------------------------------------------------- train


def train(
    family: Family,
    data: Arrays | Stream,
    optimizer,
    periods: int,
    *,
    loss: str | Loss = "cross_entropy",
    batch_size: int | None = None,
    hooks: Sequence[Hook] = (),
    dropout: float = 0.0,
    dropout_seed: int = 0,
) -> Trained:
    """Train every model of ``family`` for ``periods`` periods (or until a hook stops it).

    ``data``: :class:`Arrays` (epochs; ``batch_size`` None or >= N: full batch, one step
    an epoch, no shuffling; else ceil(N / batch_size) steps in model i's order from
    ``data_generator(seeds[i])``, the last one possibly smaller) or :class:`Stream`
    (``batch_size`` fresh samples a step). ``optimizer``: ``SGD``, ``Adam`` or
    ``PathSGD`` (per-model learning rates allowed). Elementwise optimisers update the
    flat (M, P) parameter buffer in one call per operation. ``dropout``: drop
    probability of hidden units (masks from one generator seeded ``dropout_seed``, so
    they depend on the stack's make-up; families without dropout refuse it).

    Hooks fire in order under ``torch.no_grad()`` after each period they choose (and at
    0); models they stop leave the batched computation before the next period. Returns
    :class:`Trained`; the family's tensors hold the trained parameters.
    """
    loss = get_loss(loss)
    if periods < 0 or (batch_size is not None and batch_size < 1):
        raise ValueError("periods must be >= 0 and batch_size >= 1 (or None)")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    params0 = family.params
    m, device, dtype = len(family.seeds), params0[0].device, params0[0].dtype
    stream = isinstance(data, Stream)
    if stream:
        if batch_size is None:
            raise ValueError("a Stream needs a batch_size")
        if data.steps_per_period < 1:
            raise ValueError("Stream.steps_per_period must be >= 1")
        n, full_batch, bs = data.steps_per_period * batch_size, False, batch_size
        steps: Sequence[int] = range(data.steps_per_period)
        X = y = None
        per_model = False
    else:
        X = data.X.to(device=device, dtype=dtype)
        y = data.y.to(device=device, dtype=torch.int64 if loss.integer_targets else dtype)
        n = X.shape[0]
        per_model = data.per_model
        if per_model and (y.dim() < 2 or y.shape[0] != m):
            raise ValueError(f"per-model targets need y of shape (M={m}, N, ...), "
                             f"got {tuple(y.shape)}")
        if y.shape[1 if per_model else 0] != n:
            raise ValueError(f"X has {n} samples but y has {y.shape[1 if per_model else 0]}")
        full_batch = batch_size is None or batch_size >= n
        bs = n if full_batch else batch_size
        steps = range(0, n, bs)

    # Parameters (and gradients) live in one flat (M, P) buffer for the run; the family
    # computes on views of it, and elementwise optimisers update it in one call each.
    shapes = [p.shape for p in params0]
    flat = torch.cat([p.detach().reshape(m, -1) for p in params0], dim=1)
    flat_grad = torch.zeros_like(flat)
    out = flat.clone()  # each model's parameters at its stop, original order
    elementwise = bool(getattr(optimizer, "elementwise", False))
    active = list(range(m))
    active_idx = torch.arange(m, device=device)

    def bind():
        views, gviews = flat_views(flat, shapes), flat_views(flat_grad, shapes)
        fam = family.bind(views, list(active))
        return fam, gviews, ([flat] if elementwise else views), ([flat_grad] if elementwise else gviews)

    current, grads, opt_params, opt_grads = bind()
    state = optimizer.init(opt_params)
    generators = [] if full_batch else [data_generator(s) for s in family.seeds]
    shared_x = current.prepare(X) if full_batch else None
    y_full = (y if per_model else y.expand(m, *y.shape)) if full_batch else None
    drop = None
    if dropout:
        drop = (dropout, torch.Generator(device=device).manual_seed(dropout_seed))
    stat = list(current.stat_params)
    history = torch.full((m, periods), math.nan, device=device, dtype=dtype)
    periods_run = np.full(m, periods, dtype=np.int64)
    reason = np.array([""] * m, dtype=object)

    def fire(t: int, total: Tensor | None, moments: _GradMoments | None) -> dict[int, str]:
        firing = [h for h in hooks if h.at(t, periods)]
        if not firing:
            return {}
        period = Period(t, periods, current, np.asarray(active), total)
        if moments is not None:
            period.grad_mean_norm, period.grad_std_norm = moments.norms()
        with torch.no_grad():
            for hook in firing:
                hook(period)
        return period.stops

    stops = fire(0, None, None)
    t = 0
    while active and t < periods:
        if stops:
            # Compaction: the stopped models' parameters go to ``out``; the rest form a
            # smaller stack, with their optimiser state and data generators.
            keep = [j for j in range(len(active)) if j not in stops]
            gone = torch.as_tensor([active[j] for j in stops], device=device)
            out.index_copy_(0, gone, flat.index_select(0, torch.as_tensor(list(stops), device=device)))
            for j, why in stops.items():
                periods_run[active[j]], reason[active[j]] = t, why
            if not keep:
                active = []
                break
            keep_t = torch.as_tensor(keep, device=device)
            flat, flat_grad = flat.index_select(0, keep_t), flat_grad.index_select(0, keep_t)
            state = state.subset(keep_t)
            generators = [generators[j] for j in keep] if generators else []
            active = [active[j] for j in keep]
            active_idx = active_idx.index_select(0, keep_t)
            if per_model:
                y = y.index_select(0, keep_t)
                y_full = y if full_batch else None
            elif y_full is not None:
                y_full = y_full[: len(active)]
            current, grads, opt_params, opt_grads = bind()
        t += 1
        k = len(active)
        want_stats = any(h.grad_stats and h.at(t, periods) for h in hooks)
        moments = _GradMoments() if want_stats else None
        order = None if (full_batch or stream) else epoch_permutation(generators, n, device)
        total = torch.zeros(k, device=device, dtype=dtype)
        for start in steps:
            if full_batch:
                xb, yb = shared_x, y_full
            elif stream:
                xb, yb = _draw(data.sample, generators, bs, device, dtype, loss)
            else:
                # index_select on the flattened (M * b) indices: several times faster
                # on CPU than advanced indexing with the (M, b) index tensor.
                idx = order[:, start : start + bs].flatten()
                if per_model:
                    rows = torch.arange(k, device=device).repeat_interleave(order[:, start : start + bs].shape[1])
                    yb = y[rows, idx].view(k, -1, *y.shape[2:])
                else:
                    yb = y.index_select(0, idx).view(k, -1, *y.shape[1:])
                xb = X.index_select(0, idx).view(k, yb.shape[1], *X.shape[1:])
            per_sample = current.value_and_grad(xb, yb, loss, grads, shared=full_batch,
                                                dropout=drop)
            total.add_(per_sample.sum(1))
            if moments is not None:
                moments.add([grads[i] for i in stat])
            optimizer.step(opt_params, opt_grads, state)
        total.div_(n)
        if k == m:
            history[:, t - 1] = total
        else:
            history[:, t - 1].index_copy_(0, active_idx, total)
        stops = fire(t, total, moments)
    if stops and active:  # stops requested after the last period
        for j, why in stops.items():
            reason[active[j]] = why
    if active:
        out.index_copy_(0, torch.as_tensor(active, device=device), flat)
    with torch.no_grad():
        family.load(flat_views(out, shapes))
    return Trained(family, history, periods_run, reason)


def _draw(sample, generators, bs, device, dtype, loss):
    """One fresh minibatch per model from its own generator: (M, b, ...) inputs and targets."""
    xs, ys = zip(*(sample(g, bs) for g in generators))
    x = torch.stack(xs).to(device=device, dtype=dtype)
    y = torch.stack(ys).to(device=device, dtype=torch.int64 if loss.integer_targets else dtype)
    return x, y


# ------------------------------------------------------------------------ evaluate


@torch.no_grad()
def evaluate(family: Family, X: Tensor, y: Tensor, loss: str | Loss = "cross_entropy", *,
             chunk: int = 8192) -> tuple[Tensor | None, Tensor]:
    """Error rate (None for a regression loss) and mean loss of every model on (X, y):
    (M,) float64 tensors on the family's device. The forward pass runs in chunks of
    ``chunk`` samples, so a wide stack never holds (M, width, N) activations at once."""
    loss = get_loss(loss)
    params = family.params
    m, device, dtype = len(family.seeds), params[0].device, params[0].dtype
    X = X.to(device=device, dtype=dtype)
    y = y.to(device=device, dtype=torch.int64 if loss.integer_targets else dtype)
    n = X.shape[0]
    errors = torch.zeros(m, device=device, dtype=torch.float64)
    total = torch.zeros(m, device=device, dtype=torch.float64)
    regression = False
    for start in range(0, n, chunk):
        z = family.outputs_t(X[start:start + chunk])  # (M, C, b)
        yb = y[start:start + chunk]
        yb = yb.expand(m, *yb.shape)
        per_sample, _ = loss(z, yb)
        total += per_sample.double().sum(1)
        wrong = loss.errors(z, yb)
        if wrong is None:
            regression = True
        else:
            errors += wrong.double().sum(1)
    return (None if regression else errors / n), total / n
