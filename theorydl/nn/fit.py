"""Train a stack until each model fits its training set: per-model stopping in one stack.

The width sweeps (Neyshabur, Tomioka & Srebro 2015) train every network "to zero training
error" and then measure it. In a stack the models get there at different epochs; this
loop checks the full training error of every active model after each epoch (every
``check_every`` epochs), takes a model out of the stack the epoch it reaches the stopping
criterion (or its loss stops being finite), and goes on with the rest. Taking models out
shrinks the batched computation, so the last slow model does not drag the whole stack's
cost along; the optimiser state of the models that stay is kept, so a model's trajectory
does not depend on when the others stopped.

Per model ``i`` this is exactly ``theorydl.nn.train_stack``'s training (same data order
from ``data_generator(seeds[i])``, same optimiser update), with the stopping rule on top.
Dropout masks are the exception: they come from one generator per stack (``dropout_seed``),
so a model trained with dropout depends on its stack-mates' positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from theorydl.nn.stack import (ACTIVATIONS, OptimizerState, Stack, data_generator,
                               epoch_permutation)

__all__ = ["FitResult", "fit_stack", "evaluate_stack", "MEASURES"]

#: What ``evaluate_stack`` returns per model, and what ``FitResult`` records.
MEASURES = ("train_error", "train_loss", "test_error", "test_loss")


@dataclass(frozen=True, eq=False)
class FitResult:
    """What ``fit_stack`` measured, in the stack's model order (numpy, on the host).

    ``epochs_run`` (M,): epochs each model trained (its stopping epoch).
    ``fit_epoch`` (M,): the first checked epoch at which the training error was zero, or
    -1 if it never was (with ``check_every > 1`` this is a multiple of it).
    ``status`` (M,): "fit" (met the stopping rule), "max_epochs" (ran out of epochs) or
    "diverged" (non-finite training loss at a check; it stops there).
    ``record_epochs``: the K sorted epochs asked for; ``curves[name]`` (K, M) holds each
    measure of ``MEASURES`` at those epochs, NaN after a model stopped.
    ``final[name]`` (M,): each measure at the model's stopping epoch.
    """

    epochs_run: np.ndarray
    fit_epoch: np.ndarray
    status: np.ndarray
    record_epochs: tuple[int, ...]
    curves: dict[str, np.ndarray]
    final: dict[str, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def evaluate_stack(stack: Stack, X: Tensor, y: Tensor, *, chunk: int = 8192) -> tuple[Tensor, Tensor]:
    """Error rate and mean cross-entropy of every model on (X (N, in), y (N,)): two (M,)
    tensors on the stack's device. The forward pass runs in chunks of ``chunk`` samples,
    so a wide stack never holds (M, width, N) activations at once."""
    m, n = stack.n_models, X.shape[0]
    errors = torch.zeros(m, device=stack.device, dtype=torch.float64)
    loss = torch.zeros(m, device=stack.device, dtype=torch.float64)
    for start in range(0, n, chunk):
        xb, yb = X[start:start + chunk], y[start:start + chunk]
        logits, _ = stack.forward_t(xb)  # (M, C, b)
        yb_m = yb.expand(m, -1)
        loss += F.cross_entropy(logits, yb_m, reduction="none").double().sum(1)
        errors += (logits.argmax(1) != yb_m).double().sum(1)
    return errors / n, loss / n


def _forward_dropout(stack: Stack, x: Tensor, p: float, gen: torch.Generator) -> Tensor:
    """``stack.forward_t`` in training mode with inverted dropout on every hidden layer."""
    act = ACTIVATIONS[stack.activation]
    if x.dim() == 2:
        x = x.expand(stack.n_models, -1, -1)
    h = x.transpose(1, 2)  # (M, in, b)
    last = stack.n_layers - 1
    for l, (w, b) in enumerate(zip(stack.weights, stack.biases)):
        h = torch.baddbmm(b.unsqueeze(2), w.transpose(1, 2), h)
        if l < last:
            h = act(h)
            keep = torch.empty_like(h).bernoulli_(1.0 - p, generator=gen)
            h = h * keep / (1.0 - p)
    return h


def _subset(stack: Stack, keep: Sequence[int]) -> Stack:
    """The models ``keep`` of ``stack`` as a new stack of fresh leaf tensors."""
    idx = torch.as_tensor(list(keep), device=stack.device)
    weights = tuple(w.detach().index_select(0, idx).requires_grad_() for w in stack.weights)
    biases = tuple(b.detach().index_select(0, idx).requires_grad_() for b in stack.biases)
    return Stack(stack.sizes, tuple(stack.seeds[i] for i in keep), stack.activation,
                 weights, biases)


def _subset_state(state: OptimizerState, keep: Sequence[int], device: torch.device) -> OptimizerState:
    idx = torch.as_tensor(list(keep), device=device)
    return OptimizerState(
        lr=[v.index_select(0, idx) for v in state.lr],
        buffers={k: [b.index_select(0, idx) for b in v] for k, v in state.buffers.items()},
        step=state.step,
    )


def fit_stack(
    stack: Stack,
    X: Tensor,
    y: Tensor,
    optimizer,
    max_epochs: int,
    *,
    batch_size: int | None = None,
    X_test: Tensor | None = None,
    y_test: Tensor | None = None,
    record_epochs: Iterable[int] = (),
    stop_error: float | None = 0.0,
    stop_loss: float | None = None,
    check_every: int = 1,
    weight_decay: float = 0.0,
    dropout: float = 0.0,
    dropout_seed: int = 0,
    eval_chunk: int = 8192,
    on_epoch: Callable[[int, int], None] | None = None,
) -> tuple[FitResult, Stack]:
    """Train each model of ``stack`` on (X, y) until it meets the stopping rule or has run
    ``max_epochs`` epochs; returns the measures and the trained models (a new ``Stack`` in
    the original order).

    Stopping rule, checked on the full training set after every ``check_every``-th epoch
    (and after the last): training error <= ``stop_error`` (0.0: every sample right), or
    training loss <= ``stop_loss``; either criterion may be None (off). With both off,
    every model runs ``max_epochs``. ``optimizer`` is an ``SGD``, ``Adam`` or ``PathSGD``
    of ``theorydl.nn`` (per-model learning rates allowed); ``weight_decay`` adds
    ``wd * p`` to every gradient (L2), ``dropout`` is the drop probability of hidden
    units during training. ``on_epoch(epoch, active_models)`` is called after each epoch
    (a progress hook). Epochs count completed epochs: 0 is the initialisation.
    """
    if max_epochs < 0 or check_every < 1 or not 0.0 <= dropout < 1.0:
        raise ValueError("need max_epochs >= 0, check_every >= 1 and 0 <= dropout < 1")
    m, device, dtype = stack.n_models, stack.device, stack.dtype
    X = X.to(device=device, dtype=dtype)
    y = y.to(device=device)
    has_test = X_test is not None and y_test is not None
    if has_test:
        X_test = X_test.to(device=device, dtype=dtype)
        y_test = y_test.to(device=device)
    n = X.shape[0]
    chosen = tuple(sorted({int(e) for e in record_epochs if 0 <= int(e) <= max_epochs}))
    slot = {e: k for k, e in enumerate(chosen)}
    curves = {k: np.full((len(chosen), m), math.nan) for k in MEASURES}
    final = {k: np.full(m, math.nan) for k in MEASURES}
    epochs_run = np.zeros(m, dtype=np.int64)
    fit_epoch = np.full(m, -1, dtype=np.int64)
    status = np.array(["max_epochs"] * m, dtype=object)
    out_w = [w.detach().clone() for w in stack.weights]
    out_b = [b.detach().clone() for b in stack.biases]

    full_batch = batch_size is None or batch_size >= n
    bs = n if full_batch else batch_size
    active = list(range(m))  # original indices of the models still training
    current = _subset(stack, active)
    state = optimizer.init(current.params)
    generators = [] if full_batch else [data_generator(s) for s in stack.seeds]
    gen = None
    if dropout:
        gen = torch.Generator(device=device).manual_seed(dropout_seed)

    def measure(st: Stack, X_: Tensor, y_: Tensor, prefix: str) -> dict[str, np.ndarray]:
        err, loss = evaluate_stack(st, X_, y_, chunk=eval_chunk)
        # One transfer per check: the host needs these values to decide who stops.
        return {f"{prefix}_error": err.cpu().numpy(), f"{prefix}_loss": loss.cpu().numpy()}

    def check(e: int) -> list[int]:
        """Measure the active models after epoch e; return the positions that stop."""
        values = measure(current, X, y, "train")
        stop = []
        for j, i in enumerate(active):
            err, loss = values["train_error"][j], values["train_loss"][j]
            if not math.isfinite(loss):
                status[i] = "diverged"
            else:
                if err == 0.0 and fit_epoch[i] < 0:
                    fit_epoch[i] = e
                hit = ((stop_error is not None and err <= stop_error)
                       or (stop_loss is not None and loss <= stop_loss))
                if not (hit or e == max_epochs):
                    continue
                status[i] = "fit" if hit else "max_epochs"
            stop.append(j)
        # The test set is measured only where something is recorded: a sampled epoch,
        # or a model's stop.
        if has_test and (e in slot or stop):
            values.update(measure(current, X_test, y_test, "test"))
        for j, i in enumerate(active):
            if e in slot:
                for k, v in values.items():
                    curves[k][slot[e], i] = v[j]
        for j in stop:
            for k, v in values.items():
                final[k][active[j]] = v[j]
        return stop

    def retire(stopped: list[int], e: int) -> None:
        nonlocal current, state, active, generators
        for j in stopped:
            i = active[j]
            epochs_run[i] = e
            for l in range(current.n_layers):
                out_w[l][i] = current.weights[l][j].detach()
                out_b[l][i] = current.biases[l][j].detach()
        keep = [j for j in range(len(active)) if j not in set(stopped)]
        if keep and len(keep) < len(active):
            current = _subset(current, keep)
            state = _subset_state(state, keep, device)
            generators = [generators[j] for j in keep] if generators else []
        active = [active[j] for j in keep]

    # Epoch 0: measure the initialisation (a model may already meet the rule).
    retire(check(0), 0)
    epoch = 0
    while active and epoch < max_epochs:
        params = current.params
        k = len(active)
        order = None if full_batch else epoch_permutation(generators, n, device)
        for start in range(0, n, bs):
            if order is None:
                xb, yb = X, y.expand(k, -1)  # a 2-D input is shared by all models
            else:
                idx = order[:, start:start + bs].flatten()
                yb = y.index_select(0, idx).view(k, -1)
                xb = X.index_select(0, idx).view(k, yb.shape[1], -1)
            if dropout:
                logits = _forward_dropout(current, xb, dropout, gen)
            else:
                logits, _ = current.forward_t(xb)
            loss = F.cross_entropy(logits, yb, reduction="none").mean(1).sum()
            grads = torch.autograd.grad(loss, params)
            if weight_decay:
                grads = torch._foreach_add(grads, [p.detach() for p in params],
                                           alpha=weight_decay)
            optimizer.step(params, grads, state)
        epoch += 1
        if epoch % check_every == 0 or epoch in slot or epoch == max_epochs:
            retire(check(epoch), epoch)
        if on_epoch is not None:
            on_epoch(epoch, len(active))

    assert not active, "the check at max_epochs retires every model"
    trained = Stack(stack.sizes, stack.seeds, stack.activation,
                    tuple(w.requires_grad_() for w in out_w),
                    tuple(b.requires_grad_() for b in out_b))
    return FitResult(epochs_run, fit_epoch, status, chosen, curves, final), trained
