"""One prepared GPU check: every number the project wants from a GPU, in one run.

    python benchmarks/gpu_check.py [--out gpu_check.json]    # on the GPU, < 10 minutes
    python benchmarks/gpu_check.py --smoke                    # anywhere, seconds (CPU)

Sections, each written to the JSON file as soon as it is done (a run cut short keeps
what it measured) and printed as a line or two:

- ``environment``: torch, CUDA, cuDNN, the device, and the precision flags (TF32 of
  matmuls and convolutions, float32 matmul precision, deterministic algorithms).
- ``parity``: equal inputs on the CPU and the device. IB stacks made on the CPU (same
  weights) and trained on both, with ``fast_tanh`` off: the largest weight difference
  after 1 and after ``--parity-epochs`` epochs; the binned estimates of the same
  activations on both (they should agree exactly); the DQN network's Q-values with
  TF32 off and on, against the CPU's.
- ``host_syncs``: ``theorydl.nn.syncs.count_host_syncs`` over one IB training step and
  one sampled epoch (estimators included), and on CUDA the warnings of
  ``torch.cuda.set_sync_debug_mode`` over the same step.
- ``ib_scaling``: seconds per IB training epoch (the 12-10-7-5-4-3-2 network, batch
  256, 3482 samples) against the number of stacked models, beside one model at a time
  (the lone epoch time times M), and the speedup.
- ``ib_paper``: the paper-scale IB stack (50 tanh models, ``--paper-epochs`` epochs
  of 8000 by default, the estimates at ``n_log_epochs`` scaled alike), through the
  experiment's own stack function: training and the estimates timed apart.
- ``width``: seconds per epoch of the width sweep's network (784-H-10, batch 100) on
  synthetic MNIST-sized data (60,000 x 784), for each width and optimiser (SGD,
  Path-SGD, Adam), 4 models a stack.
- ``dqn``: the DQN step breakdown (``train_dqn``'s timers: acting, environment,
  replay, update, target sync), milliseconds per step.

``--smoke`` runs every section at toy sizes on the CPU (``tests/test_benchmarks.py``
runs it, so the script stays in working order); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/stacks.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

IB_SIZES = [12, 10, 7, 5, 4, 3, 2]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of ``fn()`` with the device's queue drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def ib_data(device: torch.device):
    from theorydl.studies.ib.dataset import make_ib_dataset

    ds = make_ib_dataset(0.85, 0, 1)
    X, y = torch.tensor(ds.X), torch.tensor(ds.y)
    train = torch.tensor(ds.train_idx)
    return X.to(device), y.to(device), X[train].to(device), y[train].to(device)


# ------------------------------------------------------------------------ sections


def environment(device: torch.device, args) -> dict:
    info = {
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "device": str(device), "cpu_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "smoke": args.smoke,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version())
    return info


def parity(device: torch.device, args) -> dict:
    from theorydl.nn import Adam, init_stack, train_stack
    from theorydl.rl.dqn import DQNConfig, allow_tf32, build_network
    from theorydl.studies.ib.binning import binned_information, fixed_edges

    X, y, Xt, yt = ib_data(torch.device("cpu"))
    out: dict[str, Any] = {}
    for epochs in (1, args.parity_epochs):
        stacks = []
        for where in (torch.device("cpu"), device):
            st = init_stack(IB_SIZES, range(4), fast_tanh=False, device=where)
            train_stack(st, Xt.to(where), yt.to(where), Adam(4e-4), epochs, batch_size=256)
            stacks.append([p.detach().cpu() for p in st.params])
        a, b = stacks
        out[f"max_weight_diff_after_{epochs}_epochs"] = max(
            float((p - q).abs().max()) for p, q in zip(a, b))
    # The same activations on both sides: the estimates must agree exactly.
    acts = torch.tanh(torch.randn(8, X.shape[0], 5, generator=torch.Generator().manual_seed(0)))
    edges = fixed_edges(29)
    cpu = binned_information(acts, y, edges, convention="idnns")
    dev = binned_information(acts.to(device), y.to(device), edges, convention="idnns")
    out["binning_max_diff_bits"] = max(float((c - d.cpu()).abs().max()) for c, d in zip(cpu, dev))
    # The DQN network on one batch of boards, TF32 off and on, against the CPU.
    cfg = DQNConfig()
    net = build_network(cfg, (4, 10, 10), 6, 1.0, 0)
    boards = (torch.rand(256, 4, 10, 10, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    with torch.no_grad():
        ref = net(boards)
        dnet = build_network(cfg, (4, 10, 10), 6, 1.0, 0).to(device)
        for allowed in (False, True):
            with allow_tf32(allowed):
                q = dnet(boards.to(device)).cpu()
            out[f"dqn_q_max_diff_tf32_{'on' if allowed else 'off'}"] = float((q - ref).abs().max())
    return out


def host_syncs(device: torch.device, args) -> dict:
    import theorydl.nn
    from theorydl.nn import Adam, init_stack, train_stack
    from theorydl.nn.syncs import count_host_syncs
    from theorydl.studies.ib.experiment import IBConfig, train_ib_stack

    _, _, Xt, yt = ib_data(device)

    def run(epochs):
        st = init_stack(IB_SIZES, range(4), device=device)
        train_stack(st, Xt, yt, Adam(4e-4), epochs, batch_size=256)

    run(1)  # warm up
    with count_host_syncs() as one:
        run(1)
    with count_host_syncs() as two:
        run(2)
    steps = -(-Xt.shape[0] // 256)
    out: dict[str, Any] = {"per_training_step": (sum(two.values()) - sum(one.values())) / steps}
    if device.type == "cuda":
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run(1)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        out["cuda_sync_warnings_one_epoch_run"] = len(caught)
    sampled: list[int] = []
    real = theorydl.nn.train_stack

    def counting(*a, callback=None, **kw):
        def wrapped(e, st):
            with count_host_syncs() as c:
                callback(e, st)
            sampled.append(sum(c.values()))
        return real(*a, callback=wrapped, **kw)

    from theorydl.studies.ib.experiment import IB

    cfg = IBConfig(hidden=[IB_SIZES[1:-1]], activations=["tanh"], epochs=2, n_log_epochs=2,
                   n_seeds=4, device=device.type, estimators={"kde_samples": 256})
    theorydl.nn.train_stack = counting
    try:
        train_ib_stack(IB().trials(cfg), cfg, device)
    finally:
        theorydl.nn.train_stack = real
    out["per_sampled_epoch"] = sampled
    if not device.type == "cuda":
        out["note"] = ("off CUDA the estimators take their host paths, whose reads cost "
                       "nothing and are counted here; on CUDA a sampled epoch should count 0")
    return out


def ib_scaling(device: torch.device, args) -> dict:
    from theorydl.nn import Adam, init_stack, train_stack

    _, _, Xt, yt = ib_data(device)

    def epoch_seconds(m: int) -> float:
        st = init_stack(IB_SIZES, range(m), device=device)
        train_stack(st, Xt, yt, Adam(4e-4), 1, batch_size=256)  # warm up
        seconds, _ = timed(device, lambda: train_stack(st, Xt, yt, Adam(4e-4), args.scaling_epochs,
                                                       batch_size=256))
        return seconds / args.scaling_epochs

    lone = epoch_seconds(1)
    rows = []
    for m in args.models:
        stacked = epoch_seconds(m)
        rows.append({"models": m, "stacked_s_per_epoch": stacked,
                     "one_at_a_time_s_per_epoch": lone * m, "speedup": lone * m / stacked})
        print(f"  ib_scaling: {m} models: {stacked * 1e3:.1f} ms/epoch stacked, "
              f"{lone * m * 1e3:.1f} ms one at a time ({lone * m / stacked:.1f}x)", flush=True)
    return {"lone_s_per_epoch": lone, "rows": rows}


def ib_paper(device: torch.device, args) -> dict:
    import theorydl.nn
    from theorydl.studies.ib.experiment import IB, IBConfig, train_ib_stack

    estimate_seconds = [0.0]
    real = theorydl.nn.train_stack

    def timing(*a, callback=None, **kw):
        def wrapped(e, st):
            t0 = time.perf_counter()
            callback(e, st)
            sync(device)
            estimate_seconds[0] += time.perf_counter() - t0
        return real(*a, callback=wrapped, **kw)

    epochs = args.paper_epochs
    samples = max(2, min(epochs + 1, round(270 * epochs / 8000)))
    cfg = IBConfig(hidden=[IB_SIZES[1:-1]], activations=["tanh"], epochs=epochs,
                   n_log_epochs=samples, n_seeds=args.paper_models, device=device.type)
    theorydl.nn.train_stack = timing
    try:
        total, _ = timed(device, lambda: train_ib_stack(IB().trials(cfg), cfg, device))
    finally:
        theorydl.nn.train_stack = real
    return {"models": args.paper_models, "epochs": epochs, "sampled_epochs": samples,
            "total_s": total, "estimates_s": estimate_seconds[0],
            "training_s": total - estimate_seconds[0],
            "training_s_extrapolated_to_8000_epochs": (total - estimate_seconds[0]) * 8000 / epochs}


def width(device: torch.device, args) -> dict:
    from theorydl.nn import SGD, Adam, PathSGD, init_stack, train_stack

    g = torch.Generator().manual_seed(0)
    n = args.width_samples
    X = torch.rand(n, 784, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    make = {"sgd": lambda: SGD(0.01), "pathsgd": lambda: PathSGD(0.01), "adam": lambda: Adam(1e-3)}
    rows = []
    for h in args.widths:
        for name, opt in make.items():
            st = init_stack([784, h, 10], range(args.width_models), activation="relu", device=device)
            seconds, _ = timed(device, lambda: train_stack(st, X, y, opt(), 1, batch_size=100))
            rows.append({"width": h, "optimizer": name, "models": args.width_models,
                         "s_per_epoch": seconds})
            print(f"  width: H={h} {name}: {seconds:.2f} s/epoch ({args.width_models} models)",
                  flush=True)
    return {"samples": n, "rows": rows}


def dqn(device: torch.device, args) -> dict:
    from theorydl.rl.dqn import TIMER_COUNTS, TIMER_PARTS, DQNConfig, train_dqn

    steps = args.dqn_steps
    warmup = min(1000, steps)
    cfg = DQNConfig(total_steps=steps + warmup, learning_starts=warmup,
                    replay_capacity=steps + warmup, eps_decay_steps=steps, target_update=1000)
    timers = {k: 0.0 for k in (*TIMER_PARTS, *TIMER_COUNTS)}
    seconds, _ = timed(device, lambda: train_dqn(cfg, 0, device=device, num_threads=1,
                                                 timers=timers))
    n = max(1.0, timers.get("steps", steps))
    return {"steps_timed": n, "total_s": seconds,
            "ms_per_step": {k: 1e3 * timers[k] / n for k in TIMER_PARTS},
            "counts": {k: timers[k] for k in TIMER_COUNTS}}


SECTIONS = {"environment": environment, "parity": parity, "host_syncs": host_syncs,
            "ib_scaling": ib_scaling, "ib_paper": ib_paper, "width": width, "dqn": dqn}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes on the CPU, seconds")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 100, 1000, 5000])
    parser.add_argument("--scaling-epochs", type=int, default=3)
    parser.add_argument("--parity-epochs", type=int, default=300)
    parser.add_argument("--paper-models", type=int, default=50)
    parser.add_argument("--paper-epochs", type=int, default=2000,
                        help="of the paper's 8000 (training is extrapolated)")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 512, 2048, 8192])
    parser.add_argument("--width-samples", type=int, default=60_000)
    parser.add_argument("--width-models", type=int, default=4)
    parser.add_argument("--dqn-steps", type=int, default=3000)
    args = parser.parse_args(argv)
    if args.smoke:
        args.device = "cpu"
        args.models, args.scaling_epochs, args.parity_epochs = [1, 3], 1, 2
        args.paper_models, args.paper_epochs = 2, 3
        args.widths, args.width_samples, args.width_models = [8, 16], 300, 2
        args.dqn_steps = 60
    from theorydl.nn import resolve_device

    device = resolve_device(args.device)
    results: dict[str, Any] = {}
    out = Path(args.out)
    for name in args.sections:
        t0 = time.perf_counter()
        results[name] = SECTIONS[name](device, args)
        results[name + "_seconds"] = time.perf_counter() - t0
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2, default=_jsonable))
        os.replace(tmp, out)  # a run cut short keeps every finished section
        summary = {k: v for k, v in results[name].items() if not isinstance(v, (list, dict))}
        print(f"{name} ({results[name + '_seconds']:.1f} s): {summary}", flush=True)
    print(f"wrote {out}")
    return results


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


if __name__ == "__main__":
    main()
