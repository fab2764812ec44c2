"""Benchmark: the cost of the IB information estimates relative to training, one stack.

Trains the same stack of IB networks twice in one run: with the estimates at the paper's
sampling density (270 log-spaced epochs of 8000, every layer, binning fixed and
adaptive on all 4096 inputs, KDE bounds on ``--kde-samples`` inputs) and with the
estimates at only the two epochs the experiment always samples (0 and the last, whose
cost is then taken out of the training time), and prints both times and the overhead
(sampled epochs also collect the gradient statistics, counted as estimate time).
The default is the paper's density on a tenth of its length (800 epochs, 27 samples), so
the ratio is the paper's and the run takes minutes, not hours; ``--epochs 8000
--samples 270`` is the full scale.

    python benchmarks/ib_estimates.py [--models 50] [--device auto] [--kde-samples 512]

The estimates are also timed directly, inside the full run (the experiment's callback,
wrapped): the difference of two minute-long runs moves by +-200 ms per sample when the
load changes between them, the direct timing does not. The last line is the direct one.

Also prints the seconds per 800 epochs of training and the extrapolation of this one
stack to paper scale (8000 epochs, 270 sampled epochs).  The paper profile trains two
such stacks (tanh and ReLU); on a 2-core Ray node they run side by side, one torch
thread each (``--threads 1`` measures that setting; other load on the machine skews
both sides, so compare runs taken together).  Last line:
``estimate_overhead: <percent of training time>%``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/stacks.py

import torch  # noqa: E402

import theorydl.nn  # noqa: E402
from theorydl.params import load_params  # noqa: E402
from theorydl.studies.ib.experiment import IB, train_ib_stack  # noqa: E402

_train_stack = theorydl.nn.train_stack
_callback_seconds = [0.0]


def _timed_train_stack(*args, callback=None, **kwargs):
    """train_stack with its callback (the estimates) timed from inside the run."""
    def timed(e, stack):
        t0 = time.perf_counter()
        callback(e, stack)
        _callback_seconds[0] += time.perf_counter() - t0
    return _train_stack(*args, callback=None if callback is None else timed, **kwargs)


# train_ib_stack imports train_stack from theorydl.nn when it is called.
theorydl.nn.train_stack = _timed_train_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=800)
    parser.add_argument("--samples", type=int, default=27)
    parser.add_argument("--kde-samples", type=int, default=512)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    base = load_params("params.yaml").ib
    cfg = base.model_copy(update={
        "hidden": [[10, 7, 5, 4, 3]], "activations": [args.activation], "n_seeds": args.models,
        "epochs": args.epochs, "n_log_epochs": args.samples, "device": args.device,
        "estimators": base.estimators.model_copy(update={"kde_samples": args.kde_samples})})
    specs = IB().trials(cfg)
    quiet = cfg.model_copy(update={"n_log_epochs": 2})
    train_ib_stack(specs, quiet.model_copy(update={"epochs": 2}))  # warm-up: imports, allocator

    t0 = time.perf_counter()
    _, device = train_ib_stack(specs, quiet)
    t_train = time.perf_counter() - t0
    _callback_seconds[0] = 0.0
    t0 = time.perf_counter()
    train_ib_stack(specs, cfg)
    t_both = time.perf_counter() - t0
    t_inside = _callback_seconds[0]
    # The quiet run still estimates at its 2 sampled epochs (0 and the last): take them
    # out of its time and count all of the full run's samples as estimate time.
    quiet_samples = quiet.n_log_epochs
    per_sample = (t_both - t_train) / (args.samples - quiet_samples)
    t_train_only = t_train - quiet_samples * per_sample
    overhead = 100.0 * args.samples * per_sample / t_train_only
    print(f"device {device}, {args.models} models, {args.epochs} epochs, {args.samples} sampled "
          f"epochs, KDE on {args.kde_samples} inputs, load {os.getloadavg()[0]:.1f}")
    print(f"training, 2 samples     {t_train:8.1f} s")
    print(f"training + estimates    {t_both:8.1f} s")
    print(f"estimates per sample    {per_sample * 1e3:8.1f} ms (difference of the two runs)")
    # Timed inside the full run: the estimate callbacks against the rest of the same run.
    # Unlike the difference above, load that changes between the two runs cannot move it.
    # (The gradient statistics of the sampled epochs count as training here.)
    inside_per_sample = t_inside / args.samples
    overhead_inside = 100.0 * t_inside / (t_both - t_inside)
    print(f"estimates per sample    {inside_per_sample * 1e3:8.1f} ms (timed inside the full run; "
          f"{overhead_inside:.0f} % of its training)")
    # Paper scale for this stack: 8000 epochs, 270 sampled epochs (linear in both), from
    # the full run's own split (the same sampling density as the paper's).
    t_rest = t_both - t_inside
    paper_train = t_rest * 8000 / args.epochs
    print(f"s per 800 epochs        {t_rest * 800 / args.epochs:8.1f} s (training, full run; "
          f"{t_train_only * 800 / args.epochs:.1f} s in the quiet run)")
    print(f"paper scale, one stack  {paper_train / 60:8.1f} min training, "
          f"{(paper_train + 270 * inside_per_sample) / 60:.1f} min with estimates "
          f"({args.threads} torch thread{'s' if args.threads > 1 else ''})")
    print(f"estimate_overhead (difference of the two runs): {overhead:.0f}%")
    print(f"estimate_overhead: {overhead_inside:.0f}%")


if __name__ == "__main__":
    main()
