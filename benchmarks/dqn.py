"""Benchmark: DQN (theorydl.rl) on MinAtar breakout — speed on this machine, and a learning curve.

  python benchmarks/dqn.py speed [--learn-steps 2000] [--threads 1 2] [--device cpu]
      Environment steps per second of ``train_dqn`` with the DQNConfig defaults (MinAtar
      paper), separately for the replay warm-up (5000 random steps, no updates) and the
      learning phase (one update of batch 32 per step), for each thread count. The
      learning steps right after the warm-up act with ε close to 1, so they rarely run the
      network to act (a 5M run acts greedily on 90 % of its steps: see ``breakdown``).

  python benchmarks/dqn.py breakdown [--learn-steps 2000] [--profile-steps 300] [--device cpu]
      Where the time of a learning step goes, from one run of the real training loop
      (``train_dqn(timers=...)``, DQNConfig defaults but ε = eps_end = 0.1 from the first
      learning step on, as for 98 % of a 5M-step run): the parts that stay on the CPU on
      any device (ε-greedy draws, MinAtar step, replay insertion, replay sampling and batch
      building) against the network work (greedy forward, batch-32 update, target sync);
      the aten ops per learning step (torch.profiler; those that would launch a kernel
      on a GPU, and the optimizer's share); then, for 5M steps, the measured cost on this
      device, the CPU-bound floor (5M x the CPU part: no device can go below it), and an
      estimated GPU cost = floor + launches per step x an assumed per-launch latency (an
      assumption, printed, not a measurement). With ``--device cuda`` the profiler also
      counts the CUDA kernels actually launched, and the measured cost is the GPU's.

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

from theorydl.rl import (
    TIMER_PARTS,
    DQNConfig,
    epsilon_at,
    record_policy,
    save_checkpoint,
    train_dqn,
)

PAPER_STEPS = 5_000_000
#: Parts of a learning step that run on the CPU whatever the device (``TIMER_PARTS``).
CPU_PARTS = ("act_cpu", "env", "replay_add", "replay_sample")
#: Parts that are network work (on a GPU: kernels, mostly launch latency at these sizes).
NET_PARTS = ("act_net", "update", "target_sync")
assert set(CPU_PARTS) | set(NET_PARTS) == set(TIMER_PARTS)
#: Assumed host-side cost per kernel launch on a GPU (dispatch + launch), in microseconds.
LAUNCH_US = (5.0, 10.0)
#: Leaf aten ops that only make or reshape tensor metadata (no kernel on a GPU).
NO_KERNEL_OPS = frozenset({
    "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::view", "aten::as_strided",
    "aten::t", "aten::transpose", "aten::unsqueeze", "aten::squeeze", "aten::expand", "aten::reshape",
    "aten::_reshape_alias", "aten::detach", "aten::detach_", "aten::alias", "aten::permute",
    "aten::select", "aten::slice", "aten::resize_", "aten::lift_fresh", "aten::_unsafe_view",
    "aten::result_type", "aten::numpy_T", "aten::flatten", "aten::contiguous", "aten::is_nonzero",
    "aten::_has_compatible_shallow_copy_type", "aten::set_", "aten::zeros_like", "aten::clone",
    "aten::to", "aten::_to_copy", "aten::resolve_conj", "aten::resolve_neg", "aten::as_strided_",
    "aten::_nnpack_available", "aten::broadcast_tensors", "aten::conj", "aten::_conj", "aten::expand_as",
    "aten::view_as", "aten::chunk", "aten::split", "aten::unbind", "aten::narrow", "aten::item",
    "aten::select_backward",
})
#: Aten ops that only dispatch to other aten ops (their kernels are counted there).
WRAPPER_OPS = frozenset({
    "aten::conv2d", "aten::convolution", "aten::_convolution", "aten::thnn_conv2d", "aten::linear",
    "aten::relu", "aten::mean", "aten::rsub", "aten::gather_backward", "aten::new_zeros", "aten::new_empty",
    "aten::ones_like", "aten::zeros", "aten::empty_permuted", "aten::lift_fresh", "aten::squeeze_",
    "aten::unsqueeze_", "aten::squeeze", "aten::unsqueeze",
})


def _is_kernel(ev) -> bool:
    """Whether a profiled aten op would launch a kernel of its own on a GPU (a heuristic: not
    a metadata op or a wrapper, not a copy of a 0-dim scalar, not nested in an op of its name)."""
    if ev.name in NO_KERNEL_OPS or ev.name in WRAPPER_OPS:
        return False
    if ev.name == "aten::copy_" and all(len(s) == 0 for s in ev.input_shapes if isinstance(s, list)):
        return False  # a python scalar wrapped as a tensor: a kernel argument on a GPU
    return ev.cpu_parent is None or ev.cpu_parent.name != ev.name


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cpus"


def speed(args: argparse.Namespace) -> None:
    base = DQNConfig(game=args.game)
    cfg = dataclasses.replace(base, total_steps=base.learning_starts + args.learn_steps)
    train_dqn(dataclasses.replace(cfg, total_steps=50, learning_starts=10), seed=0, device=args.device,
              num_threads=1)  # warm-up imports
    print(f"device {args.device}", flush=True)
    for threads in args.threads:
        before = _load()
        out = train_dqn(cfg, seed=0, device=args.device, num_threads=threads)
        warm = base.learning_starts / out.extra["warmup_wall_s"]
        print(f"threads={threads}: warm-up {warm:8.1f} steps/s (random actions, no updates); "
              f"learning {out.extra['learning_steps_per_second']:6.1f} steps/s (1 update/step, batch "
              f"{cfg.batch_size}); overall {out.steps_per_second:6.1f} steps/s over {cfg.total_steps} steps "
              f"[{before} -> {_load()}]", flush=True)


def _aten_counts(cfg: DQNConfig, device: str, threads: int, cuda: bool) -> dict[str, float]:
    """Profile ``train_dqn(cfg)``; counts of aten ops (all, top-level, kernel-like, and
    kernel-like inside the optimizer step) and, with ``cuda``, CUDA kernels."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        train_dqn(cfg, seed=0, device=device, num_threads=threads)
    counts = {"aten": 0, "top_level": 0, "kernel_like": 0, "optimizer_kernel_like": 0, "cuda_kernels": 0}
    names: dict[str, int] = {}  # kernel-like ops by name
    for ev in prof.events():
        if getattr(ev, "device_type", DeviceType.CPU) == DeviceType.CUDA:
            counts["cuda_kernels"] += 1
            continue
        if not ev.name.startswith("aten::"):
            continue
        counts["aten"] += 1
        parent, under_aten, in_opt = ev.cpu_parent, False, False
        while parent is not None:
            under_aten |= parent.name.startswith("aten::")
            in_opt |= parent.name.startswith("Optimizer.step")
            parent = parent.cpu_parent
        counts["top_level"] += not under_aten
        if _is_kernel(ev):
            counts["kernel_like"] += 1
            counts["optimizer_kernel_like"] += in_opt
            names[ev.name] = names.get(ev.name, 0) + 1
    counts["names"] = names  # type: ignore[assignment]
    return counts


def _foreach_optimizer_ops(cfg: DQNConfig) -> int:
    """Top-level aten ops of one optimizer step with ``foreach=True`` (the CUDA default, one
    multi-tensor kernel per op), for the network of ``cfg``, profiled on the CPU."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from theorydl.rl import build_network
    from theorydl.rl.dqn import _make_optimizer

    net = build_network(cfg, (4, 10, 10), 3)
    opt = _make_optimizer(cfg, net.parameters())
    opt = type(opt)(net.parameters(), **{**opt.defaults, "foreach": True})
    for _ in range(2):  # the first step creates the state
        opt.zero_grad(set_to_none=True)
        net(torch.zeros(2, 4, 10, 10)).sum().backward()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            opt.step()
    n = 0
    for ev in prof.events():
        if not ev.name.startswith("aten::") or ev.name in NO_KERNEL_OPS:
            continue
        parent, under_aten = ev.cpu_parent, False
        while parent is not None:
            under_aten |= parent.name.startswith("aten::")
            parent = parent.cpu_parent
        n += not under_aten
    return n


def breakdown(args: argparse.Namespace) -> None:
    threads = args.threads[0]
    base = DQNConfig(game=args.game)
    # ε = eps_end from the first learning step on: what 98 % of a 5M-step run does.
    cfg = dataclasses.replace(base, eps_decay_steps=0, total_steps=base.learning_starts + args.learn_steps)
    cuda = args.device.startswith("cuda")
    train_dqn(dataclasses.replace(cfg, total_steps=60, learning_starts=40), seed=0, device=args.device,
              num_threads=threads)  # warm-up imports and kernels
    print(f"device {args.device}, {threads} torch thread(s), {args.game}; DQNConfig defaults (replay "
          f"{cfg.replay_capacity}, batch {cfg.batch_size}, 1 update/step, target every {cfg.target_update}, "
          f"conv {cfg.conv_channels}x{cfg.conv_kernels[0]}x{cfg.conv_kernels[0]} -> {cfg.hidden} ReLU -> Q) "
          f"but eps = {cfg.eps_end} from step {cfg.learning_starts}; timing {args.learn_steps} learning steps "
          f"after {cfg.learning_starts} warm-up steps", flush=True)
    before = _load()
    timers: dict = {}
    out = train_dqn(cfg, seed=args.seed, device=args.device, num_threads=threads, timers=timers)
    n = timers["steps"]
    learn_wall = n / out.extra["learning_steps_per_second"]
    us = {k: 1e6 * timers[k] / n for k in TIMER_PARTS}
    cpu_us = sum(us[k] for k in CPU_PARTS)
    net_us = sum(us[k] for k in NET_PARTS)
    step_us = 1e6 * learn_wall / n
    print(f"[{before} -> {_load()}]")
    print(f"{n} learning steps in {learn_wall:.2f}s ({n / learn_wall:.1f} steps/s): "
          f"{timers['greedy_steps']} greedy actions, {timers['updates']} updates, "
          f"{timers['target_syncs']} target syncs")
    print(f"{'part':<15}{'us/step':>10}{'share':>8}")
    for group, parts in (("CPU-bound", CPU_PARTS), ("network", NET_PARTS)):
        for k in parts:
            print(f"  {k:<13}{us[k]:>10.1f}{us[k] / step_us:>8.1%}   ({group})")
    print(f"{'CPU-bound':<15}{cpu_us:>10.1f}{cpu_us / step_us:>8.1%}   env + eps-greedy draws + replay add/sample")
    print(f"{'network':<15}{net_us:>10.1f}{net_us / step_us:>8.1%}   greedy forward + update + target sync")
    print(f"{'unattributed':<15}{step_us - cpu_us - net_us:>10.1f}{(step_us - cpu_us - net_us) / step_us:>8.1%}"
          f"   loop bookkeeping and timer calls")
    print(f"{'total':<15}{step_us:>10.1f}", flush=True)

    # aten ops per learning step: a run of L + P steps minus a run of the L warm-up steps alone
    warm = 200
    pcfg = dataclasses.replace(cfg, learning_starts=warm, total_steps=warm + args.profile_steps)
    full = _aten_counts(pcfg, args.device, threads, cuda)
    pre = _aten_counts(dataclasses.replace(pcfg, total_steps=warm), args.device, threads, cuda)
    per = {k: (full[k] - pre[k]) / args.profile_steps for k in full if k != "names"}
    opt_foreach = _foreach_optimizer_ops(cfg)
    launches_loop = per["kernel_like"]
    launches_foreach = per["kernel_like"] - per["optimizer_kernel_like"] + opt_foreach
    print(f"aten ops per learning step (torch.profiler, {args.profile_steps} steps): {per['aten']:.1f} in all, "
          f"{per['top_level']:.1f} called from Python, {per['kernel_like']:.1f} kernel-like "
          f"(of which {per['optimizer_kernel_like']:.1f} in the optimizer step, per-parameter loop as on CPU; "
          f"with foreach=True, the CUDA default, the optimizer step is {opt_foreach} multi-tensor ops -> "
          f"{launches_foreach:.1f} launches per step)")
    top = sorted(full["names"].items(), key=lambda kv: -kv[1])[:12]
    print("  most frequent kernel-like ops per step: " + ", ".join(
        f"{k[6:]} {(v - pre['names'].get(k, 0)) / args.profile_steps:.1f}" for k, v in top))
    if cuda:
        print(f"  CUDA kernels per learning step (measured): {per['cuda_kernels']:.1f}")

    hours = PAPER_STEPS / 3600e6
    print(f"\n{PAPER_STEPS:,} steps (the MinAtar paper's run), per agent:")
    print(f"  measured on {args.device}: {step_us * hours:6.1f} h ({step_us:.0f} us/step)")
    print(f"  CPU-bound floor on any device: {cpu_us * hours:6.1f} h ({cpu_us:.0f} us/step measured here; "
          f"a GPU does not speed up MinAtar, the eps-greedy draws or replay indexing)")
    lo = cpu_us + launches_foreach * LAUNCH_US[0]
    hi = cpu_us + launches_loop * LAUNCH_US[1]
    print(f"  estimated on a GPU: {lo * hours:.1f}-{hi * hours:.1f} h ({lo:.0f}-{hi:.0f} us/step) = floor + "
          f"{launches_foreach:.0f}-{launches_loop:.0f} launches/step x {LAUNCH_US[0]:.0f}-{LAUNCH_US[1]:.0f} us")
    print(f"  ASSUMPTION (not measured): at batch {cfg.batch_size} on 10x10 boards every GPU kernel is "
          f"launch-bound, {LAUNCH_US[0]:.0f}-{LAUNCH_US[1]:.0f} us of host time per launch (dispatch + "
          f"cudaLaunchKernel), kernels overlap with the host except at the one sync per greedy action "
          f"(.item()); a GPU's compute time is hidden behind that. Measure it: "
          f"python benchmarks/dqn.py breakdown --device cuda", flush=True)


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

    out = train_dqn(cfg, seed=args.seed, device=args.device, progress_cb=report, num_threads=threads)
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
    parser.add_argument("mode", choices=("speed", "breakdown", "curve"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (networks and batches)")
    parser.add_argument("--game", default="breakout")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads: each one for speed, the first for curve")
    parser.add_argument("--learn-steps", type=int, default=2000,
                        help="speed, breakdown: steps after the warm-up")
    parser.add_argument("--profile-steps", type=int, default=300,
                        help="breakdown: learning steps profiled to count aten ops")
    parser.add_argument("--steps", type=int, default=60_000, help="curve: total training steps")
    parser.add_argument("--eps-decay-steps", type=int, default=None, help="curve: override the ε decay")
    parser.add_argument("--window", type=int, default=5000, help="curve: steps per reported window")
    parser.add_argument("--eval-steps", type=int, default=5000, help="curve: steps per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="curve: checkpoint path")
    args = parser.parse_args()
    {"speed": speed, "breakdown": breakdown, "curve": curve}[args.mode](args)


if __name__ == "__main__":
    main()
