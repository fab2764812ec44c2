"""Benchmark: DQN (theorydl.rl) on MinAtar breakout — speed on this machine, and a learning curve.

  python benchmarks/dqn.py speed [--learn-steps 2000] [--threads 1 2]
      Environment steps per second of ``train_dqn`` with the DQNConfig defaults (MinAtar
      paper), separately for the replay warm-up (5000 random steps, no updates) and the
      learning phase (one update of batch 32 per step), for each thread count.

  python benchmarks/dqn.py curve --steps 60000 [--eps-decay-steps N] [--window 5000]
      One training run (defaults except total_steps and, optionally, the ε decay), printing
      the mean training return per window of steps as it goes, then evaluating the final
      network with ε = 0.01 and a uniformly random policy for --eval-steps steps each
      (``record_policy``). Optionally saves the checkpoint (--save PATH).

Timings depend on what else runs on the machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from theorydl.rl import DQNConfig, epsilon_at, record_policy, save_checkpoint, train_dqn  # noqa: E402


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cpus"


def speed(args: argparse.Namespace) -> None:
    base = DQNConfig(game=args.game)
    cfg = dataclasses.replace(base, total_steps=base.learning_starts + args.learn_steps)
    train_dqn(dataclasses.replace(cfg, total_steps=50, learning_starts=10), seed=0, num_threads=1)  # warm-up imports
    for threads in args.threads:
        before = _load()
        out = train_dqn(cfg, seed=0, device="cpu", num_threads=threads)
        warm = base.learning_starts / out.extra["warmup_wall_s"]
        print(f"threads={threads}: warm-up {warm:8.1f} steps/s (random actions, no updates); "
              f"learning {out.extra['learning_steps_per_second']:6.1f} steps/s (1 update/step, batch "
              f"{cfg.batch_size}); overall {out.steps_per_second:6.1f} steps/s over {cfg.total_steps} steps "
              f"[{before} -> {_load()}]", flush=True)


def curve(args: argparse.Namespace) -> None:
    threads = args.threads[0]
    cfg = DQNConfig(game=args.game, total_steps=args.steps)
    if args.eps_decay_steps is not None:
        cfg = dataclasses.replace(cfg, eps_decay_steps=args.eps_decay_steps)
    print(f"config: {cfg}\n{_load()}", flush=True)
    window: dict = {"end": args.window, "returns": []}
    t0 = time.perf_counter()

    def print_window(eps: float) -> None:
        r = window["returns"]
        start = (window["end"] - 1) // args.window * args.window
        print(f"steps {start:>7}-{min(window['end'], cfg.total_steps):<7} episodes {len(r):4d} "
              f"mean return {np.mean(r) if r else float('nan'):6.2f} (max {max(r) if r else float('nan'):5.1f}) "
              f"eps {eps:.3f}  {time.perf_counter() - t0:6.0f}s", flush=True)
        window["end"] += args.window
        window["returns"] = []

    def report(info: dict) -> None:  # episodes are binned by the step at which they end
        while info["step"] > window["end"]:
            print_window(info["epsilon"])
        window["returns"].append(info["return"])

    out = train_dqn(cfg, seed=args.seed, device="cpu", progress_cb=report, num_threads=threads)
    if window["returns"]:
        print_window(epsilon_at(cfg.total_steps - 1, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps,
                                cfg.learning_starts))
    print(f"trained {cfg.total_steps} steps in {out.wall_time_s:.0f}s ({out.steps_per_second:.1f} steps/s); "
          f"{len(out.episode_returns)} episodes; {_load()}", flush=True)
    if args.save:
        save_checkpoint(out.state_dict, cfg, args.save, meta={"seed": args.seed})
    for label, eps in (("trained, eps=0.01", 0.01), ("random policy", 1.0)):
        rec = record_policy(out.state_dict, cfg, args.eval_steps, eps, seed=10_000 + args.seed, device="cpu",
                            num_threads=threads)
        ends = np.flatnonzero(rec.episode_end)
        rets = [float(rec.reward[rec.episode_index == i].sum()) for i in range(len(ends))]
        print(f"eval {label}: {len(rets)} finished episodes in {args.eval_steps} steps, mean return "
              f"{np.mean(rets) if rets else float('nan'):.2f} (std {np.std(rets) if rets else float('nan'):.2f}, "
              f"max {max(rets) if rets else float('nan'):.0f}); mean max-Q {rec.value.mean():.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("speed", "curve"))
    parser.add_argument("--game", default="breakout")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads: each one for speed, the first for curve")
    parser.add_argument("--learn-steps", type=int, default=2000, help="speed: steps after the warm-up")
    parser.add_argument("--steps", type=int, default=60_000, help="curve: total training steps")
    parser.add_argument("--eps-decay-steps", type=int, default=None, help="curve: override the ε decay")
    parser.add_argument("--window", type=int, default=5000, help="curve: steps per reported window")
    parser.add_argument("--eval-steps", type=int, default=5000, help="curve: steps per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="curve: checkpoint path")
    args = parser.parse_args()
    speed(args) if args.mode == "speed" else curve(args)


if __name__ == "__main__":
    main()
