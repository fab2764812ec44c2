"""Benchmark: M Information-Bottleneck networks trained stacked vs one by one vs one Ray task each.

The networks are the IB architecture 12-10-7-5-4-3-2 with tanh, trained with Adam
(lr 4e-4, the IB experiment's default and the original code's) or plain SGD (lr 0.01,
``--optimizer sgd``) on minibatches of 256 from the 4096 12-bit patterns of
``theorydl.data.ib`` (``--data random``: random patterns with a fixed label rule).
Every way trains the same models (seeds 0..M-1) with the same data order
(``theorydl.nn.data_generator``), and the final weights are compared as a check that
the work is the same.

  (a) stacked: all M models in one ``theorydl.nn`` stack;
  (b) one at a time in this process: ``nn.Sequential`` + ``torch.optim`` per model;
  (c) one Ray task per model, each doing (b) for its model, on ``os.cpu_count()`` local
      workers. Workers are started and warmed (torch imported) before timing; Ray always
      runs on CPU.

Threads: (a) uses ``--threads`` torch threads (default ``os.cpu_count()``): its kernels
are big enough for intra-op parallelism. (b) uses ``--lone-threads`` (default 1): a lone
model's kernels are below torch's parallel grain size, so extra threads only add BLAS
thread synchronisation (measured: never faster, and several times slower when the cores
are shared with other processes). Each Ray task uses 1 thread because the tasks
themselves occupy all cores. ``OMP_WAIT_POLICY`` defaults to PASSIVE (see below).
The last line printed is ``speedup: <(a) over (b)>x``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a 2-core
# box shared with other processes, spinning threads made (a) with 2 threads 4x slower
# than with 1; sleeping ones made it faster than with 1.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from theorydl.nn import SGD, Adam, data_generator, init_mlp, init_stack, resolve_device, train_stack  # noqa: E402

SIZES = (12, 10, 7, 5, 4, 3, 2)
N_SAMPLES = 4096
BATCH = 256
LEARNING_RATES = {"sgd": 0.01, "adam": 4e-4}


def make_data(kind: str = "random", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """X (4096, 12) float32 random {0,1} patterns; y (4096,) int64 labels.

    Label rule: y = 1 iff the pattern, mapped to {-1,+1}, has a projection onto a fixed
    Gaussian direction above the median projection (balanced classes, learnable but not
    trivially: it is a linear threshold with random weights). ``kind="ib"``: the IB task's
    patterns and labels from ``theorydl.data.ib``.
    """
    if kind == "ib":
        from theorydl.data import ib

        X = ib.all_patterns()
        return torch.from_numpy(X), torch.from_numpy(ib.labels(X)[0])
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (N_SAMPLES, SIZES[0]), generator=gen).float()
    score = (2 * X - 1) @ torch.randn(SIZES[0], generator=gen)
    return X, (score > score.median()).long()


def lone_model(seed: int, device: torch.device) -> nn.Sequential:
    """The plain-PyTorch twin of stack member ``seed``: nn.Linear + nn.Tanh layers."""
    layers: list[nn.Module] = []
    params = init_mlp(SIZES, seed)
    for l, (w, b) in enumerate(params):
        lin = nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(b)
        layers.append(lin)
        if l < len(params) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).to(device)


def train_lone(seed: int, optimizer: str, epochs: int, X: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Train model ``seed`` alone the ordinary way; returns its final weights, each (in, out), on CPU."""
    device = X.device
    net = lone_model(seed, device)
    opt_cls = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = opt_cls(net.parameters(), lr=LEARNING_RATES[optimizer])
    gen = data_generator(seed)
    n = X.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, BATCH):
            idx = perm[start : start + BATCH]
            opt.zero_grad()
            nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
    return [m.weight.detach().T.cpu() for m in net if isinstance(m, nn.Linear)]


def run_stacked(models: int, optimizer: str, epochs: int, X, y) -> list[torch.Tensor]:
    """Way (a); returns the final stacked weights, each (M, in, out), on CPU."""
    stack = init_stack(SIZES, range(models), activation="tanh", device=X.device)
    opt = SGD(LEARNING_RATES[optimizer]) if optimizer == "sgd" else Adam(LEARNING_RATES[optimizer])
    train_stack(stack, X, y, opt, epochs, batch_size=BATCH)
    return [w.detach().cpu() for w in stack.weights]


def run_one_at_a_time(models: int, optimizer: str, epochs: int, X, y) -> list[list[torch.Tensor]]:
    """Way (b); returns each model's final weights."""
    return [train_lone(seed, optimizer, epochs, X, y) for seed in range(models)]


def run_ray(models: int, optimizer: str, epochs: int, X, y) -> tuple[list[list[torch.Tensor]], float, float]:
    """Way (c); returns each model's final weights, the start-up seconds and the training seconds."""
    import ray

    # Workers import theorydl from the repository, like this script does.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def task(seed: int, X_: torch.Tensor, y_: torch.Tensor) -> list[torch.Tensor]:
        torch.set_num_threads(1)  # one task per core
        return train_lone(seed, optimizer, epochs, X_, y_)

    @ray.remote(num_cpus=1)
    def warm() -> int:
        torch.set_num_threads(1)
        return torch.get_num_threads()

    try:
        ray.get([warm.remote() for _ in range(os.cpu_count() or 1)])
        X_ref, y_ref = ray.put(X.cpu()), ray.put(y.cpu())
        startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        weights = ray.get([task.remote(seed, X_ref, y_ref) for seed in range(models)])
        return weights, startup, time.perf_counter() - t1
    finally:
        ray.shutdown()


def timed(fn, device: torch.device, *args):
    """Run ``fn(*args)``, waiting for queued device work; returns (result, seconds)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    # Defaults: the networks as the IB experiment trains them (params.yaml ib.optimizer is
    # adam, the original code's choice; the paper's SGD is --optimizer sgd) on its dataset.
    parser.add_argument("--optimizer", default="adam", choices=sorted(LEARNING_RATES))
    parser.add_argument("--data", default="ib", choices=["random", "ib"])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads for (a)")
    parser.add_argument("--lone-threads", type=int, default=1, help="torch threads for (b)")
    parser.add_argument("--no-ray", action="store_true", help="skip way (c)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    load_before = os.getloadavg()
    X, y = (t.to(device) for t in make_data(args.data, 0))
    work = args.models * args.epochs
    print(
        f"{args.models} IB networks {'-'.join(map(str, SIZES))} tanh, {args.optimizer} "
        f"lr {LEARNING_RATES[args.optimizer]}, batch {BATCH}, {N_SAMPLES} samples, "
        f"{args.epochs} epochs, {args.data} data, device {device}, torch threads: "
        f"(a) {args.threads}, (b) {args.lone_threads}, (c) 1 per task; {os.cpu_count()} cores"
    )
    # Warm-up of both in-process ways: first kernels and lazy initialisation are not timed.
    torch.set_num_threads(args.threads)
    run_stacked(2, args.optimizer, 1, X, y)
    stacked, t_stack = timed(run_stacked, device, args.models, args.optimizer, args.epochs, X, y)
    torch.set_num_threads(args.lone_threads)
    run_one_at_a_time(1, args.optimizer, 1, X, y)
    lone, t_lone = timed(run_one_at_a_time, device, args.models, args.optimizer, args.epochs, X, y)
    rows = [("(a) stacked", t_stack), ("(b) one at a time", t_lone)]
    if not args.no_ray:
        ray_weights, t_ray_start, t_ray = run_ray(args.models, args.optimizer, args.epochs, X, y)
        rows.append(("(c) one Ray task each", t_ray))

    for name, seconds in rows:
        print(f"{name:24s} {seconds:8.2f} s  {work / seconds:10.1f} model-epochs/s")
    if not args.no_ray:
        print(f"    (Ray start-up and worker warm-up, not included above: {t_ray_start:.2f} s)")
    print(f"speed ratio (a) over (b): {t_lone / t_stack:.1f}x")
    if not args.no_ray:
        print(f"speed ratio (a) over (c): {t_ray / t_stack:.1f}x")
        print(f"speed ratio (c) over (b): {t_lone / t_ray:.1f}x")
    # Other processes on the machine skew all of the above; the load average says how much.
    print("load average (1, 5, 15 min) before / after: " + " / ".join(
        ", ".join(f"{v:.1f}" for v in load) for load in (load_before, os.getloadavg())
    ))

    diff = max(
        (stacked[l][i] - lone[i][l]).abs().max().item() for i in range(args.models) for l in range(len(SIZES) - 1)
    )
    print(f"max |weight difference| (a) vs (b): {diff:.2e}")
    if not args.no_ray:
        diff_ray = max(
            (ray_weights[i][l] - lone[i][l]).abs().max().item()
            for i in range(args.models)
            for l in range(len(SIZES) - 1)
        )
        print(f"max |weight difference| (c) vs (b): {diff_ray:.2e}")
    print(f"speedup: {t_lone / t_stack:.1f}x")


if __name__ == "__main__":
    main()
