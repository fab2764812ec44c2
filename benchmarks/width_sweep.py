"""Benchmark: the width sweep's trials, stacked against one model at a time.

    python benchmarks/width_sweep.py [--params params.yaml] [--profile test]
                                     [--widths 16 256 1024] [--seeds N] [--device cpu]

Takes the final-sweep trials of the params' ``width`` section (the small default
profile: digits), optionally restricted to some widths and seeds, and trains them twice
in this process on one device:

* stacked: the experiment's own units (every seed, learning rate and init of one width
  in one stack, each model stopping at zero training error);
* one at a time: each trial alone in a stack of one, the same code path and stopping rule.

Learning rates come from the search output (``paths.best_lr``) where it exists, else
from ``width.lr``. Prints both throughputs in trials per hour, whether every trial's
stopping epoch agrees between the two runs, and last ``speedup: <ratio>x``.
Timings depend on what else runs on the machine: the load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from theorydl.params import load_params  # noqa: E402
from theorydl.spine.config import read_yaml  # noqa: E402
from theorydl.studies.width.experiment import Width, train_width_stack  # noqa: E402


def _final_epochs(measured) -> list[int]:
    return [[r for r in rows if r["kind"] == "final"][0]["epoch"] for _, rows in measured]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    ap.add_argument("--profile", help="a profile in profiles/ merged over the params")
    ap.add_argument("--widths", type=int, nargs="*", help="only these widths")
    ap.add_argument("--seeds", type=int, help="seeds per grid point (default: params)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (Ray workers use 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    overrides = read_yaml(REPO / "profiles" / f"{args.profile}.yaml") if args.profile else {}
    cfg = load_params(args.params, overrides).width
    update = {"device": args.device}
    if args.seeds:
        update["n_seeds"] = args.seeds
    if args.widths:
        update["widths"] = args.widths
    if not Path(cfg.paths.best_lr).exists():
        update["search"] = cfg.search.model_copy(update={"enabled": False})
    cfg = cfg.model_copy(update=update)
    exp = Width()
    if not Path(cfg.paths.data).exists():
        exp.data(None, cfg)
    specs = exp.trials(cfg)
    units = exp.units(specs, cfg)
    print(f"{len(specs)} trials of widths {cfg.widths}, optimizers {cfg.optimizers}, "
          f"inits {cfg.inits}, {cfg.n_seeds} seeds, on {args.device} with {args.threads} "
          f"thread(s); {len(units)} stacks; learning rates from "
          f"{'the search output' if cfg.search.enabled else 'params'}", flush=True)

    t0 = time.perf_counter()
    stacked: dict[str, int] = {}
    for unit in units:
        measured, _ = train_width_stack(unit.trials, cfg)
        stacked.update(zip([t.id for t in unit.trials], _final_epochs(measured)))
    t_stacked = time.perf_counter() - t0
    print(f"stacked:        {t_stacked:8.1f} s  {3600 * len(specs) / t_stacked:10.0f} trials/h",
          flush=True)

    t0 = time.perf_counter()
    alone: dict[str, int] = {}
    for spec in sorted(specs, key=lambda s: -s.config["width"]):
        measured, _ = train_width_stack([spec], cfg)
        alone[spec.id] = _final_epochs(measured)[0]
    t_alone = time.perf_counter() - t0
    print(f"one at a time:  {t_alone:8.1f} s  {3600 * len(specs) / t_alone:10.0f} trials/h")
    same = sum(stacked[k] == alone[k] for k in stacked)
    print(f"stopping epochs equal in both runs: {same}/{len(specs)} "
          f"(float32 sums in another order may move a model by an epoch)")
    print("load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
          + f" on {os.cpu_count()} cpus")
    print(f"speedup: {t_alone / t_stacked:.1f}x")


if __name__ == "__main__":
    main()
