"""Benchmark: M networks trained stacked, by the torch.func recipe, one by one, one Ray task each.

Two families, each trained every way on the same models (seeds 0..M-1, the same
initialisation) with the same data orders (``theorydl.nn.data_generator``). The final
weights are compared with the one-at-a-time run's as a check that the work is the same
(float32 rounding differs between batched and lone kernels, and Adam's steps amplify it:
about 1e-7 for ib, 1e-4 to 1e-3 for cnn, the same for stacked and for the recipe).

* ``ib``: the Information-Bottleneck networks 12-10-7-5-4-3-2 with tanh on minibatches
  of 256 from the 4096 12-bit patterns of ``theorydl.studies.ib.dataset`` (``--data random``:
  random patterns with a fixed label rule), ``--epochs`` epochs (15).
* ``cnn``: a small CNN, an ``nn.Sequential`` (conv 3x3 1->8, ReLU, max-pool 2, conv 3x3
  8->16, ReLU, max-pool 2, flatten, linear 64->10; 1,898 parameters) on minibatches of 64 from the 1,198 training
  images of scikit-learn's 8x8 digits (``theorydl.data.vision.load_digits``),
  ``--cnn-epochs`` epochs (5).

Both train with Adam (lr 4e-4 for ib, the IB experiment's default and the original
code's; 1e-3 for cnn) or plain SGD (``--optimizer sgd``: lr 0.01 for ib, 0.05 for cnn).
The ways:

  stacked: all M models in one ``theorydl.nn`` family trained by the engine
      (``theorydl.nn.train``): the MLP family ``init_stack`` (its hand-written
      backward pass) for ib, the generic ``init_modules`` for cnn (any ``nn.Module``;
      a plain ``nn.Sequential`` of standard layers like this one takes the folded path,
      the models in the channel axis of one channels-last tensor, instead of ``vmap``);
  torch.func recipe: what a PyTorch user writes instead, PyTorch's model-ensembling
      tutorial trained: ``torch.func.stack_module_state`` over the M ``nn.Module``s, a
      ``vmap(functional_call)`` forward pass on each model's own minibatch, the sum of
      the models' mean losses, ``.backward()``, one ``torch.optim`` optimiser (default
      settings) over the stacked parameters;
  one at a time: ``nn.Module`` + ``torch.optim`` per model, one model after the other;
  one Ray task each: one Ray task per model doing the one-at-a-time loop for its model,
      on ``os.cpu_count()`` local workers. Ray is started and its workers warmed (torch
      and theorydl imported) once, before timing; Ray always runs on CPU. ``--no-ray``
      skips it.

Every way is warmed up (one untimed epoch; for Ray, one task a worker) before it is
timed. Stacked and the recipe, the two ways compared closely, are timed ``--repeats``
times (3) in turn and the best time counts; the others once.

Threads: stacked and the recipe use ``--threads`` torch threads, by default the fastest
for the family's stacked path on a 2-core machine, measured with a little other work on
the cores: 1 for ib (50 networks, 15 epochs: 0.37-0.47 s with 1 thread, 0.66-1.01 s with
2: its kernels are too small to share), 2 for cnn (50 CNNs, 5 epochs: 2.22-2.62 s with 2
threads, 3.44-3.71 s with 1). Each family's header says the counts used. One at a time
uses ``--lone-threads`` (default 1): a lone model's kernels are below torch's parallel
grain size, so extra threads only add synchronisation. Each Ray task uses 1 thread
because the tasks themselves occupy all cores. ``OMP_WAIT_POLICY`` defaults to PASSIVE
(see below).

Memory: by default glibc's malloc behaves as in every run of the project: memory freed
after a step goes back to the OS and is faulted in again, page by page, at the next
(30,000-90,000 minor page faults an epoch for the 50 CNNs, in every in-process way).
``--keep-freed-memory`` keeps it in the process (``mallopt``; the Ray workers get the
same settings as ``MALLOC_*`` environment variables): no faults after the first epoch,
and the CNNs' epochs in stacked and the recipe 7-15 % faster and steadier.

Prints, per family, each way's seconds and model-epochs/s, the speed ratios of stacked
over the others and the weight differences; the last line printed is ``speedup:
<stacked over one at a time, first family>x``. A default run took 60-71 s on 2 shared
cores; ``--quick`` is a smoke run (defaults 10 models, 2 epochs per family, 1 repeat,
no Ray; about 10 s). From the repository root:

    python benchmarks/stacks.py [--families ib cnn] [--threads N] [--optimizer sgd] [--no-ray]
                                [--keep-freed-memory] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a 2-core
# box shared with other processes, spinning threads made the stack with 2 threads 4x
# slower than with 1; sleeping ones made it faster than with 1.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.func import functional_call, stack_module_state, vmap  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from theorydl.nn import (
    SGD,
    Adam,
    Arrays,
    data_generator,
    init_mlp,
    init_modules,
    init_stack,
    resolve_device,
    seeded,
    train,
)

IB_SIZES = (12, 10, 7, 5, 4, 3, 2)
IB_SAMPLES = 4096

State = dict[str, Tensor]  # one model's parameters by name, as its nn.Module names them
STACKED, LONE = "stacked (theorydl)", "one at a time"  # the rows the ratios refer to


# ----------------------------------------------------------------------------- families


@dataclass(frozen=True, eq=False)
class Bench:
    """One benchmarked family: its data, its models and how the stacked way builds them."""

    name: str
    #: What is trained, printed above the family's rows.
    title: str
    X: Tensor
    y: Tensor
    batch: int
    epochs: int
    #: Learning rate by optimiser name.
    lr: dict[str, float]
    #: Model ``seed`` as a plain ``nn.Module`` (on CPU), initialised as the stack's model is.
    lone: Callable[[int], nn.Module]
    #: The theorydl family of the given seeds on a device.
    stacked: Callable[[Sequence[int], torch.device], object]
    #: Each model's parameters from a trained stacked family, named as ``lone``'s.
    states: Callable[[object], list[State]]
    #: Torch threads for stacked and the recipe unless ``--threads`` says otherwise: the
    #: fastest for the stacked path on a 2-core machine (see the module docstring).
    threads: int


def ib_data(kind: str = "ib", seed: int = 0) -> tuple[Tensor, Tensor]:
    """X (4096, 12) float32 {0,1} patterns; y (4096,) int64 labels.

    ``kind="ib"``: the IB task's patterns and labels from ``theorydl.studies.ib.dataset``.
    ``kind="random"``: random patterns, y = 1 iff the pattern, mapped to {-1,+1}, has a
    projection onto a fixed Gaussian direction above the median projection (balanced
    classes, learnable but not trivially: a linear threshold with random weights).
    """
    if kind == "ib":
        from theorydl.studies.ib import dataset as ib

        X = ib.all_patterns()
        return torch.from_numpy(X), torch.from_numpy(ib.labels(X)[0])
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (IB_SAMPLES, IB_SIZES[0]), generator=gen).float()
    score = (2 * X - 1) @ torch.randn(IB_SIZES[0], generator=gen)
    return X, (score > score.median()).long()


def ib_lone(seed: int) -> nn.Sequential:
    """The plain-PyTorch twin of stack member ``seed``: nn.Linear + nn.Tanh layers."""
    layers: list[nn.Module] = []
    params = init_mlp(IB_SIZES, seed)
    for l, (w, b) in enumerate(params):
        lin = nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(b)
        layers.append(lin)
        if l < len(params) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def ib_states(stack) -> list[State]:
    """The stack's models named as ``ib_lone``'s (Linear l is module 2 l)."""
    return [
        {k: v for l, (w, b) in enumerate(stack.member(i))
         for k, v in ((f"{2 * l}.weight", w.T.cpu()), (f"{2 * l}.bias", b.cpu()))}
        for i in range(stack.n_models)
    ]


def ib_bench(data: str, epochs: int, device: torch.device) -> Bench:
    X, y = ib_data(data)
    return Bench(
        "ib",
        f"IB networks {'-'.join(map(str, IB_SIZES))} tanh, {IB_SAMPLES} samples ({data} data)",
        X.to(device), y.to(device), 256, epochs, {"sgd": 0.01, "adam": 4e-4}, ib_lone,
        lambda seeds, dev: init_stack(IB_SIZES, seeds, activation="tanh", device=dev),
        ib_states, threads=1,
    )


def digits_cnn() -> nn.Sequential:
    """Conv 3x3 (1 -> 8 channels, padding 1) - ReLU - max-pool 2 - conv 3x3 (8 -> 16) -
    ReLU - max-pool 2 - linear (64 -> 10): a small CNN for 1x8x8 images, written as the
    plain ``nn.Sequential`` a PyTorch user would write (the stack takes its folded path:
    models in the channel axis; the recipe vmaps it)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
    )


def cnn_bench(epochs: int, device: torch.device) -> Bench:
    from theorydl.data.vision import load_digits

    digits = load_digits(seed=0)
    X = torch.from_numpy(digits.x_train).view(-1, *digits.image_shape)
    y = torch.from_numpy(digits.y_train)
    with torch.device("meta"):  # counted without values (and without the global RNG)
        size = sum(p.numel() for p in digits_cnn().parameters())
    return Bench(
        "cnn",
        f"small CNNs (conv-pool-conv-pool-linear, {size:,} parameters), {X.shape[0]} 8x8 digits",
        X.to(device), y.to(device), 64, epochs, {"sgd": 0.05, "adam": 1e-3},
        lambda seed: seeded(digits_cnn, seed),
        lambda seeds, dev: init_modules(digits_cnn, seeds, device=dev),
        lambda fam: [{k: v.cpu() for k, v in fam.member(i).items()} for i in range(fam.n_models)],
        threads=2,
    )


# --------------------------------------------------------------------------------- ways


def run_stacked(bench: Bench, models: int, optimizer: str, epochs: int) -> list[State]:
    """Stacked: all models in one theorydl family, trained by the engine."""
    family = bench.stacked(range(models), bench.X.device)
    lr = bench.lr[optimizer]
    train(family, Arrays(bench.X, bench.y), SGD(lr) if optimizer == "sgd" else Adam(lr), epochs,
          batch_size=bench.batch)
    return bench.states(family)


def torch_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    return (torch.optim.SGD if name == "sgd" else torch.optim.Adam)(params, lr=lr)


def run_recipe(bench: Bench, models: int, optimizer: str, epochs: int) -> list[State]:
    """The torch.func recipe (PyTorch's model-ensembling tutorial, trained)."""
    X, y, batch = bench.X, bench.y, bench.batch
    nets = [bench.lone(seed).to(X.device) for seed in range(models)]
    params, buffers = stack_module_state(nets)  # leaves (M, ...) that require grad
    base = copy.deepcopy(nets[0]).to("meta")

    def fmodel(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    opt = torch_optimizer(optimizer, params.values(), bench.lr[optimizer])
    generators = [data_generator(seed) for seed in range(models)]
    n = X.shape[0]
    for _ in range(epochs):
        perm = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(X.device)
        for start in range(0, n, batch):
            idx = perm[:, start : start + batch]  # (M, b): each model's own minibatch
            logits = vmap(fmodel)(params, buffers, X[idx])  # (M, b, C)
            # The sum of the models' batch-mean losses: each model gets its own gradient.
            loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten()) * models
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [{k: v[i].detach().cpu() for k, v in params.items()} for i in range(models)]


def train_lone(bench: Bench, seed: int, optimizer: str, epochs: int, X: Tensor, y: Tensor) -> State:
    """Train model ``seed`` alone the ordinary way; returns its final parameters on CPU."""
    net = bench.lone(seed).to(X.device)
    opt = torch_optimizer(optimizer, net.parameters(), bench.lr[optimizer])
    gen = data_generator(seed)
    n = X.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(X.device)
        for start in range(0, n, bench.batch):
            idx = perm[start : start + bench.batch]
            opt.zero_grad()
            F.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
    return {k: v.detach().cpu() for k, v in net.named_parameters()}


def run_one_at_a_time(bench: Bench, models: int, optimizer: str, epochs: int) -> list[State]:
    return [train_lone(bench, seed, optimizer, epochs, bench.X, bench.y) for seed in range(models)]


class RayPool:
    """Ray on this machine, started once (with warmed workers) and shut down on ``close``."""

    def __init__(self, env: dict[str, str]) -> None:
        import ray

        # Workers import theorydl from the repository, like this script does.
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        t0 = time.perf_counter()
        from theorydl.spine.sweep.executor import init_loopback

        init_loopback(num_cpus=os.cpu_count(), log_to_driver=False,
                      runtime_env={"env_vars": env} if env else None)
        self.ray = ray

        @ray.remote(num_cpus=1)
        def warm() -> int:
            importlib.import_module("theorydl.nn")  # what the tasks import, not timed

            torch.set_num_threads(1)
            return torch.get_num_threads()

        ray.get([warm.remote() for _ in range(os.cpu_count() or 1)])
        self.startup = time.perf_counter() - t0

    def run(self, bench: Bench, models: int, optimizer: str, epochs: int
            ) -> tuple[list[State], float]:
        """One task per model; returns each model's parameters and the seconds."""
        ray = self.ray

        @ray.remote(num_cpus=1)
        def task(bench_: Bench, seed: int, epochs_: int, X_: Tensor, y_: Tensor) -> State:
            torch.set_num_threads(1)  # one task per core
            return train_lone(bench_, seed, optimizer, epochs_, X_, y_)

        # The data travels once through the object store, not with every task's bench.
        X_ref, y_ref = ray.put(bench.X.cpu()), ray.put(bench.y.cpu())
        light = ray.put(dataclasses.replace(bench, X=bench.X[:0].cpu(), y=bench.y[:0].cpu()))
        # Warm-up, as for the other ways: one epoch of one model per worker, not timed.
        ray.get([task.remote(light, seed, 1, X_ref, y_ref) for seed in range(os.cpu_count() or 1)])
        t0 = time.perf_counter()
        states = ray.get([task.remote(light, seed, epochs, X_ref, y_ref) for seed in range(models)])
        return states, time.perf_counter() - t0

    def close(self) -> None:
        self.ray.shutdown()


# ----------------------------------------------------------------------------- measure

#: glibc's malloc settings of ``--keep-freed-memory``: no trimming of the heap's top, and
#: blocks up to 32 MiB (a CNN stack's activations) from the heap, not fresh mmaps.
MALLOC_KEEP = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 25)}


def keep_freed_memory() -> None:
    """Apply ``MALLOC_KEEP`` to this process (glibc's ``mallopt``), so that memory freed
    after a step is reused by the next instead of going back to the OS and being faulted
    in again page by page."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    ok = libc.mallopt(m_trim_threshold, int(MALLOC_KEEP["MALLOC_TRIM_THRESHOLD_"]))
    ok &= libc.mallopt(m_mmap_threshold, int(MALLOC_KEEP["MALLOC_MMAP_THRESHOLD_"]))
    if not ok:
        raise RuntimeError("mallopt refused the settings of --keep-freed-memory")



def timed(fn, device: torch.device, *args):
    """Run ``fn(*args)``, waiting for queued device work; returns (result, seconds)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def max_difference(a: list[State], b: list[State]) -> float:
    return max((x[k] - y[k]).abs().max().item() for x, y in zip(a, b, strict=True) for k in x)


def measure(bench: Bench, args, ray: RayPool | None) -> float:
    """Train ``bench`` every way and print the rows; returns stacked over one at a time."""
    m, epochs, device = args.models, bench.epochs, bench.X.device
    threads = args.threads or bench.threads
    print(f"\n== {bench.name}: {m} {bench.title}, batch {bench.batch}, {args.optimizer} lr "
          f"{bench.lr[args.optimizer]}, {epochs} epochs")
    print(f"   torch threads: stacked and recipe {threads}, one at a time {args.lone_threads}; "
          f"stacked and recipe: best of {args.repeats} runs")
    times: dict[str, float] = {}
    states: dict[str, list[State]] = {}
    # Warm-up: first kernels and lazy initialisation (oneDNN primitives for each shape)
    # are not timed. Stacked and the recipe, the two ways compared closely, then run
    # --repeats times in turn, and the best time counts (others' work on the cores only
    # ever slows a run down).
    torch.set_num_threads(threads)
    batched = {STACKED: run_stacked, "torch.func recipe": run_recipe}
    for fn in batched.values():
        fn(bench, m, args.optimizer, 1)
    for _ in range(args.repeats):
        for name, fn in batched.items():
            states[name], seconds = timed(fn, device, bench, m, args.optimizer, epochs)
            times[name] = min(times.get(name, math.inf), seconds)
    torch.set_num_threads(args.lone_threads)
    run_one_at_a_time(bench, 1, args.optimizer, 1)
    states[LONE], times[LONE] = timed(run_one_at_a_time, device, bench, m, args.optimizer, epochs)
    if ray is not None:
        states["one Ray task each"], times["one Ray task each"] = ray.run(
            bench, m, args.optimizer, epochs)

    for name, seconds in times.items():
        print(f"{name:24s} {seconds:8.2f} s  {m * epochs / seconds:10.1f} model-epochs/s")
    stacked, reference = times[STACKED], states[LONE]
    print("speed ratio, stacked over: " + ", ".join(
        f"{name} {seconds / stacked:.2f}x" for name, seconds in times.items() if name != STACKED))
    print("max |weight difference| from one at a time: " + ", ".join(
        f"{name} {max_difference(s, reference):.1e}" for name, s in states.items() if name != LONE))
    return times[LONE] / stacked


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["ib", "cnn"], choices=["ib", "cnn"])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=15, help="epochs of the ib family")
    parser.add_argument("--cnn-epochs", type=int, default=5, help="epochs of the cnn family")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    # Default: Adam, as the IB experiment trains (params.yaml ib.optimizer is adam, the
    # original code's choice; the paper's SGD is --optimizer sgd).
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--data", default="ib", choices=["random", "ib"], help="ib family's data")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for stacked and the recipe (default: per family, "
                             "the fastest on 2 cores: 1 for ib, 2 for cnn)")
    parser.add_argument("--lone-threads", type=int, default=1,
                        help="torch threads for one at a time")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of stacked and of the recipe (the best counts)")
    parser.add_argument("--no-ray", action="store_true", help="skip one Ray task each")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc malloc keeps freed memory (this process and the Ray "
                             "workers): no page faults for every step's fresh activations")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: defaults 10 models, 2 epochs per family, 1 repeat, no Ray")
    args = parser.parse_args(argv)
    if args.quick:  # new defaults; options given explicitly still win
        parser.set_defaults(models=10, epochs=2, cnn_epochs=2, repeats=1, no_ray=True)
        args = parser.parse_args(argv)

    device = resolve_device(args.device)
    if args.keep_freed_memory:
        keep_freed_memory()
    load_before = os.getloadavg()
    build = {"ib": lambda: ib_bench(args.data, args.epochs, device),
             "cnn": lambda: cnn_bench(args.cnn_epochs, device)}
    benches = [build[name]() for name in args.families]
    print(f"device {device}; {os.cpu_count()} cores; Ray tasks 1 torch thread each; "
          f"torch {torch.__version__}; freed memory "
          f"{'kept (--keep-freed-memory)' if args.keep_freed_memory else 'as glibc defaults'}")
    ray = None if args.no_ray else RayPool(MALLOC_KEEP if args.keep_freed_memory else {})
    try:
        speedups = [measure(bench, args, ray) for bench in benches]
    finally:
        if ray is not None:
            ray.close()
    if ray is not None:
        print(f"\n(Ray start-up and worker warm-up, not included above: {ray.startup:.2f} s)")
    # Other processes on the machine skew all of the above; the load average says how much.
    print("load average (1, 5, 15 min) before / after: " + " / ".join(
        ", ".join(f"{v:.1f}" for v in load) for load in (load_before, os.getloadavg())
    ))
    print(f"speedup: {speedups[0]:.1f}x")


if __name__ == "__main__":
    main()
