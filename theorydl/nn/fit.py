"""Train a stack until each model fits its training set: per-model stopping in one stack.

The width sweeps (Neyshabur, Tomioka & Srebro 2015) train every network "to zero training
error" and then measure it. In a stack the models get there at different epochs. The
:class:`FitRule` hook of the training engine checks the full training error of every
active model after each epoch (every ``check_every`` epochs), stops a model the epoch it
reaches the stopping criterion (or its loss stops being finite), and the engine takes it
out of the batched computation, so the last slow model does not drag the whole stack's
cost along; the optimiser state of the models that stay is kept, so a model's trajectory
does not depend on when the others stopped.

Per model ``i`` this is exactly ``theorydl.nn.train_stack``'s training (the same loop,
the same data order from ``data_generator(seeds[i])``, the same optimiser update), with
the stopping rule on top. Dropout masks are the exception: they come from one generator
per stack (``dropout_seed``), so a model trained with dropout depends on its stack-mates'
positions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from theorydl.nn.engine import Arrays, Family, Hook, Period, evaluate, train
from theorydl.nn.losses import Loss, get_loss
from theorydl.nn.stack import Stack

__all__ = ["FitResult", "FitRule", "fit_stack", "evaluate_stack", "MEASURES"]

#: What ``FitRule`` records per model.
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
    measure of ``MEASURES`` at those epochs, NaN after a model stopped (and for the
    error of a regression loss).
    ``final[name]`` (M,): each measure at the model's stopping epoch.
    """

    epochs_run: np.ndarray
    fit_epoch: np.ndarray
    status: np.ndarray
    record_epochs: tuple[int, ...]
    curves: dict[str, np.ndarray]
    final: dict[str, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def evaluate_stack(stack: Family, X: Tensor, y: Tensor, *, chunk: int = 8192,
                   loss: str | Loss = "cross_entropy") -> tuple[Tensor, Tensor]:
    """Error rate and mean loss (cross-entropy by default) of every model on (X (N, in),
    y (N,)): two (M,) float64 tensors on the stack's device (``engine.evaluate``)."""
    return evaluate(stack, X, y, loss, chunk=chunk)


class FitRule(Hook):
    """Stop each model when it fits: the engine hook behind ``fit_stack``, for any family
    and loss.

    After period 0 and every ``check_every``-th period (and any recorded one, and the
    last), the active models are evaluated on the full training set (X, y): a model
    stops with reason "fit" when its error is <= ``stop_error`` or its loss is <=
    ``stop_loss`` (either may be None: off), "diverged" when its loss is not finite,
    "max_epochs" at the last period. The test set (``X_test``, ``y_test``, optional) is
    evaluated only where something is recorded: at ``record`` periods, and at a stop.
    The results accumulate in ``result()``. ``on_period(t, active)`` is called after
    every period (a progress hook). A check reads the (M,) measures on the host, once.
    """

    def __init__(self, n_models: int, X: Tensor, y: Tensor, *, loss: str | Loss = "cross_entropy",
                 X_test: Tensor | None = None, y_test: Tensor | None = None,
                 record: Iterable[int] = (), periods: int, stop_error: float | None = 0.0,
                 stop_loss: float | None = None, check_every: int = 1, chunk: int = 8192,
                 on_period: Callable[[int, int], None] | None = None) -> None:
        if check_every < 1:
            raise ValueError("check_every must be >= 1")
        self.X, self.y, self.loss = X, y, get_loss(loss)
        self.test = (X_test, y_test) if X_test is not None and y_test is not None else None
        self.record = tuple(sorted({int(e) for e in record if 0 <= int(e) <= periods}))
        self.slot = {e: k for k, e in enumerate(self.record)}
        self.stop_error, self.stop_loss = stop_error, stop_loss
        self.check_every, self.chunk, self.on_period = check_every, chunk, on_period
        m = n_models
        self.curves = {k: np.full((len(self.record), m), math.nan) for k in MEASURES}
        self.final = {k: np.full(m, math.nan) for k in MEASURES}
        self.fit_epoch = np.full(m, -1, dtype=np.int64)
        self.status = np.array(["max_epochs"] * m, dtype=object)

    def at(self, t: int, periods: int) -> bool:
        return (t == 0 or t % self.check_every == 0 or t in self.slot or t == periods
                or self.on_period is not None)

    def _measure(self, family: Family, X: Tensor, y: Tensor, prefix: str) -> dict[str, np.ndarray]:
        err, loss = evaluate(family, X, y, self.loss, chunk=self.chunk)
        # One transfer per check: the host needs these values to decide who stops.
        err_np = np.full(loss.shape[0], math.nan) if err is None else err.cpu().numpy()
        return {f"{prefix}_error": err_np, f"{prefix}_loss": loss.cpu().numpy()}

    def __call__(self, period: Period) -> None:
        t, periods = period.t, period.periods
        if t == 0 or t % self.check_every == 0 or t in self.slot or t == periods:
            self._check(period)
        if self.on_period is not None and t > 0:
            self.on_period(t, len(period.models) - len(period.stops))

    def _check(self, period: Period) -> None:
        t, active = period.t, period.models
        values = self._measure(period.family, self.X, self.y, "train")
        stop = []
        for j, i in enumerate(active):
            err, loss = values["train_error"][j], values["train_loss"][j]
            if not math.isfinite(loss):
                self.status[i] = "diverged"
            else:
                if err == 0.0 and self.fit_epoch[i] < 0:
                    self.fit_epoch[i] = t
                hit = ((self.stop_error is not None and err <= self.stop_error)
                       or (self.stop_loss is not None and loss <= self.stop_loss))
                if not (hit or t == period.periods):
                    continue
                self.status[i] = "fit" if hit else "max_epochs"
            stop.append(j)
        if self.test is not None and (t in self.slot or stop):
            values.update(self._measure(period.family, *self.test, "test"))
        if t in self.slot:
            for k, v in values.items():
                self.curves[k][self.slot[t], active] = v
        for j in stop:
            for k, v in values.items():
                self.final[k][active[j]] = v[j]
        period.stop(stop, "fit-rule")

    def result(self, periods_run: np.ndarray) -> FitResult:
        return FitResult(periods_run, self.fit_epoch, self.status, self.record, self.curves,
                         self.final)


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
    weight_decay: float | None = None,
    dropout: float = 0.0,
    dropout_seed: int = 0,
    eval_chunk: int = 8192,
    on_epoch: Callable[[int, int], None] | None = None,
    loss: str | Loss = "cross_entropy",
    hooks: Sequence[Hook] = (),
) -> tuple[FitResult, Stack]:
    """Train each model of ``stack`` on (X, y) until it meets the stopping rule or has run
    ``max_epochs`` epochs; returns the measures and the trained models (a new ``Stack`` in
    the original order; ``stack`` itself is left as it was).

    Stopping rule (:class:`FitRule`), checked on the full training set after every
    ``check_every``-th epoch (and after the last): training error <= ``stop_error``
    (0.0: every sample right), or training loss <= ``stop_loss``; either criterion may be
    None (off). With both off, every model runs ``max_epochs``. ``optimizer`` is an
    ``SGD``, ``Adam`` or ``PathSGD`` of ``theorydl.nn`` (per-model learning rates
    allowed); ``weight_decay``, when given, replaces the optimiser's own (L2, applied by
    the optimiser), ``dropout`` is the drop probability of hidden units during training.
    ``on_epoch(epoch, active_models)`` is called after each epoch (a progress hook);
    ``hooks`` run after the stopping rule at the epochs they choose (a model the rule
    stops at an epoch is still active for them at that epoch).
    Epochs count completed epochs: 0 is the initialisation.
    """
    if max_epochs < 0 or not 0.0 <= dropout < 1.0:
        raise ValueError("need max_epochs >= 0 and 0 <= dropout < 1")
    if weight_decay is not None:
        optimizer = dataclasses.replace(optimizer, weight_decay=weight_decay)
    device, dtype = stack.device, stack.dtype
    X = X.to(device=device, dtype=dtype)
    if X_test is not None:
        X_test = X_test.to(device=device, dtype=dtype)
    rule = FitRule(stack.n_models, X, y, loss=loss, X_test=X_test, y_test=y_test,
                   record=record_epochs, periods=max_epochs, stop_error=stop_error,
                   stop_loss=stop_loss, check_every=check_every, chunk=eval_chunk,
                   on_period=on_epoch)
    fitted = stack.bind([p.detach().clone().requires_grad_() for p in stack.params],
                        range(stack.n_models))
    trained = train(fitted, Arrays(X, y), optimizer, max_epochs, loss=loss,
                    batch_size=batch_size, hooks=[rule, *hooks], dropout=dropout,
                    dropout_seed=dropout_seed)
    return rule.result(trained.periods_run), fitted
