"""Benchmark: the cost of the IB information estimates relative to training, one stack.

Trains the same stack of IB networks twice in one run: with the estimates at the paper's
sampling density (270 log-spaced epochs of 8000, every layer, binning fixed and
adaptive on all 4096 inputs, KDE bounds on ``--kde-samples`` inputs) and with the
estimates switched off (two sampled epochs), and prints both times and the overhead.
The default is the paper's density on a tenth of its length (800 epochs, 27 samples), so
the ratio is the paper's and the run takes minutes, not hours; ``--epochs 8000
--samples 270`` is the full scale.

    python benchmarks/ib_estimates.py [--models 50] [--device auto] [--kde-samples 512]

Last line: ``estimate_overhead: <percent of training time>%``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/stacks.py

import torch  # noqa: E402

from theorydl.config import load_params  # noqa: E402
from theorydl.experiments.ib import IB, train_ib_stack  # noqa: E402


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
    t0 = time.perf_counter()
    train_ib_stack(specs, cfg)
    t_both = time.perf_counter() - t0
    overhead = 100.0 * (t_both - t_train) / t_train
    print(f"device {device}, {args.models} models, {args.epochs} epochs, {args.samples} sampled "
          f"epochs, KDE on {args.kde_samples} inputs, load {os.getloadavg()[0]:.1f}")
    print(f"training alone          {t_train:8.1f} s")
    print(f"training + estimates    {t_both:8.1f} s")
    print(f"estimates per sample    {(t_both - t_train) / args.samples * 1e3:8.1f} ms")
    print(f"estimate_overhead: {overhead:.0f}%")


if __name__ == "__main__":
    main()
