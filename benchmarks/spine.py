"""Benchmark: the spine (trial cache, driver, Ray) at cluster scale, side by side in one run.

    python benchmarks/spine.py [--quick | --smoke] [--no-s3] [--trials N] [--files N]
                               [--units N] [--gpus N] [--cluster-units N]
                               [--median SECONDS] [--bare actors|tasks|none]
                               [--parts lookup,driver,cluster]

Three measurements, each printed beside its reference:

* lookup: a store of ``--trials`` trials (4 long-form rows each, 1 % with a second
  attempt) in ``--files`` part files; the time to plan a sweep of the same trials against it
  (``Store.latest_status`` + ``plan_trials``; building the specs is timed apart). Then the
  same after ``Store.compact`` where the store has one, and the same store on an S3 server
  (moto, on 127.0.0.1) behind a counting proxy, with the number of HTTP requests;
* driver overhead: ``--units`` one-trial units of no work through ``execute_units`` against
  the same number of bare Ray tasks in the same Ray (2 CPUs), per unit;
* a simulated GPU cluster: an embedded Ray node that advertises ``--gpus`` GPUs it does not
  have, and ``--cluster-units`` units of one GPU each that sleep for a lognormal duration
  (median 0.5 s, sigma 0.6: most units near the median, a long tail of slow ones). Reported:
  the share of GPU slots busy while units still wait for one, the driver's RSS over the run,
  the time from the last unit's end to ``execute_units``' return, and the driver's CPU time
  per unit; beside them, the same durations as bare Ray work (no store, no driver logic):
  by default a pool of one-GPU actors fed by ``ray.util.ActorPool``, what a user would
  write; ``--bare tasks`` gives one-GPU tasks instead, each in a single-use worker (Ray's
  default for GPU tasks), whose ~1.4 s worker start per unit caps a slot's use (on 2 CPUs
  they cannot keep 64 slots fed at all: use ``--gpus 4 --cluster-units 200 --median 2``).
  GPU units run on the executor's pool of GPU-slot actors (``theorydl.spine.sweep.slots``).
  Slot use counts from the moment every slot's worker has started a unit (the actors'
  start-up, 64 processes importing theorydl on 2 CPUs here, is reported apart: both
  sides pay it) to the last unit's start.

Timings depend on what else runs on the machine: the load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from theorydl.spine.config import RayConfig, Section  # noqa: E402
from theorydl.spine.experiment import Experiment, Unit, run_each  # noqa: E402
from theorydl.spine.spec import TrialSpec  # noqa: E402
from theorydl.spine.store.store import Store  # noqa: E402
from theorydl.spine.sweep.planner import plan_trials  # noqa: E402

EXPERIMENT = "spinebench"
ROWS_PER_TRIAL = 4


class SleepConfig(Section):
    durations: list[float] = []
    """Seconds each trial sleeps (one trial per value; 0: no work)."""


class SleepExperiment(Experiment):
    """Trials that sleep for a given time and return a few rows: the driver's load only."""

    name = EXPERIMENT
    version = 1
    section = SleepConfig

    def __init__(self, num_gpus: float = 0.0) -> None:
        self.num_gpus = num_gpus

    def trials(self, cfg: SleepConfig) -> list[TrialSpec]:
        return [TrialSpec(self.name, self.version, {"i": i, "duration": d}, swept=("i",))
                for i, d in enumerate(cfg.durations)]

    def units(self, trials, cfg: SleepConfig) -> list[Unit]:
        return [Unit((t,), num_cpus=1, num_gpus=self.num_gpus, label=str(t.config["i"]))
                for t in trials]

    def run_unit(self, unit: Unit, cfg: SleepConfig):
        def one(spec: TrialSpec):
            if spec.config["duration"]:
                time.sleep(spec.config["duration"])
            return [{"step": 0, "y": 1.0, "pid": os.getpid()}]

        return run_each(unit, one)

    def trials_path(self, cfg: SleepConfig) -> Path:
        return Path("unused.parquet")

    def analyze(self, table, cfg, params) -> dict:
        return {}


# --- lookup -----------------------------------------------------------------------------

def _sweep_specs(n: int) -> list[TrialSpec]:
    widths = [4 * 2 ** k for k in range(10)]
    return [TrialSpec(EXPERIMENT, 1, {"width": widths[i % 10], "lr": 0.01, "point": i // 10},
                      seed=i % 7, swept=("width", "point")) for i in range(n)]


def _part_table(ids: list[str], rng: np.random.Generator, t0: float) -> pa.Table:
    """The rows of ``ids`` as a train stage would store them: identity, config, rows, provenance."""
    n = len(ids) * ROWS_PER_TRIAL
    tid = np.repeat(np.array(ids, dtype=object), ROWS_PER_TRIAL)
    attempts = np.repeat(np.array([os.urandom(16).hex() for _ in ids], dtype=object),
                         ROWS_PER_TRIAL)
    ended = np.repeat(t0 + rng.uniform(0, 3600, len(ids)), ROWS_PER_TRIAL)
    status = np.where(rng.random(n) < 0.02, "failed", "ok").astype(object)
    status = np.repeat(status[::ROWS_PER_TRIAL], ROWS_PER_TRIAL)
    ts = pa.array((ended * 1e6).astype("int64"), pa.timestamp("us", tz="UTC"))
    return pa.table({
        "experiment": pa.array([EXPERIMENT] * n, pa.string()),
        "trial_id": pa.array(tid, pa.string()), "attempt_id": pa.array(attempts, pa.string()),
        "seed": pa.array(rng.integers(0, 7, n), pa.int64()),
        "status": pa.array(status, pa.string()), "error": pa.nulls(n, pa.string()),
        "config_json": pa.array(['{"lr":0.01,"point":1,"width":64}'] * n, pa.string()),
        "width": pa.array(rng.integers(4, 2048, n)), "point": pa.array(rng.integers(0, 1e4, n)),
        "step": pa.array(np.tile(np.arange(ROWS_PER_TRIAL), len(ids))),
        "train_loss": pa.array(rng.random(n)), "test_error": pa.array(rng.random(n)),
        "git_sha": pa.array(["0" * 40] * n, pa.string()),
        "git_dirty": pa.array([False] * n), "theorydl_version": pa.array(["0.1"] * n),
        "torch_version": pa.array(["2.13"] * n), "ray_version": pa.array(["2.60"] * n),
        "python_version": pa.array(["3.12"] * n), "hostname": pa.array(["node-0"] * n),
        "node_id": pa.array(["a" * 56] * n), "device": pa.array(["cuda:0"] * n),
        "started_at": ts, "ended_at": ts, "duration_s": pa.array(rng.random(n)),
    })


def build_store(root: str, specs: list[TrialSpec], n_files: int, seed: int = 0) -> None:
    """Write ``specs``' trials (1 % twice: a re-run attempt) into ``n_files`` part files."""
    rng = np.random.default_rng(seed)
    ids = [s.id for s in specs]
    again = [ids[i] for i in rng.choice(len(ids), len(ids) // 100, replace=False)]
    all_ids = ids + again
    order = rng.permutation(len(all_ids))
    folder = Path(root) / EXPERIMENT
    folder.mkdir(parents=True, exist_ok=True)
    for k, chunk in enumerate(np.array_split(order, n_files)):
        table = _part_table([all_ids[i] for i in chunk], rng, 1.7e9)
        pq.write_table(table, folder / f"part-20260101T000000{k:06d}-{k:012x}.parquet")


def time_lookup(store: Store, specs: list[TrialSpec], repeat: int = 3) -> tuple[float, int]:
    """The best of ``repeat`` plans of ``specs`` against ``store``: (seconds, trials to run)."""
    best, todo = float("inf"), -1
    for _ in range(repeat):
        t = time.perf_counter()
        plan = plan_trials(specs, store.latest_status(EXPERIMENT), "failed")
        best = min(best, time.perf_counter() - t)
        todo = len(plan.todo)
    return best, todo


# --- S3 (moto behind a request-counting proxy) ------------------------------------------

COUNTING_SERVER = """
import sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
count = [0]
lock = threading.Lock()
app = DomainDispatcherApplication(create_backend_app)
def counting(environ, start_response):
    if environ.get("PATH_INFO") == "/__requests":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(count[0]).encode()]
    with lock:
        count[0] += 1
    return app(environ, start_response)
make_server("127.0.0.1", int(sys.argv[1]), counting, threaded=True).serve_forever()
"""


class CountingS3:
    """A moto S3 server on loopback that counts the requests it serves."""

    def __init__(self) -> None:
        import socket

        import boto3

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        for key, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            os.environ[key] = value
        self.proc = subprocess.Popen([sys.executable, "-c", COUNTING_SERVER, str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.create_bucket(Bucket="cache")
                break
            except Exception:  # noqa: BLE001 - still starting
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.2)
        self.url = (f"s3://cache/theorydl?endpoint_override=127.0.0.1:{self.port}"
                    f"&scheme=http&region=us-east-1")

    def requests(self) -> int:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__requests") as r:
            return int(r.read())

    def upload(self, local_root: str) -> None:
        folder = Path(local_root) / EXPERIMENT
        for path in sorted(folder.glob("*.parquet")):
            self.client.upload_file(str(path), "cache", f"theorydl/{EXPERIMENT}/{path.name}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


# --- driver overhead ----------------------------------------------------------------------

def _bare(i: int) -> int:
    return i


def time_overhead(n_units: int, workdir: str) -> tuple[float, float, float, float]:
    """Seconds per unit through ``execute_units`` and per bare Ray task, in one Ray: wall
    time, then the driver process's CPU time (all its threads)."""
    import ray

    from theorydl.spine.sweep.executor import ensure_ray, execute_units

    ensure_ray(RayConfig(num_cpus=2))
    remote = ray.remote(_bare).options(num_cpus=1)
    ray.get([remote.remote(i) for i in range(200)])  # warm the workers
    t, c = time.perf_counter(), time.process_time()
    ray.get([remote.remote(i) for i in range(n_units)])
    bare = (time.perf_counter() - t) / n_units
    bare_cpu = (time.process_time() - c) / n_units

    exp = SleepExperiment()
    cfg = SleepConfig(durations=[0.0] * n_units)
    ray_cfg = RayConfig(num_cpus=2)
    warm = SleepConfig(durations=[0.0] * 200)  # as many as the bare tasks had
    execute_units(exp, warm, exp.units(exp.trials(warm), warm), Store(f"{workdir}/warm"),
                  {}, ray_cfg, progress="off")
    units = exp.units(exp.trials(cfg), cfg)
    t, c = time.perf_counter(), time.process_time()
    execute_units(exp, cfg, units, Store(f"{workdir}/overhead"), {}, ray_cfg, progress="off")
    ours = (time.perf_counter() - t) / n_units
    ours_cpu = (time.process_time() - c) / n_units
    return ours, bare, ours_cpu, bare_cpu


# --- simulated cluster --------------------------------------------------------------------

def _rss_sampler(stop: threading.Event, out: list[tuple[float, int]]) -> None:
    import psutil

    me = psutil.Process()
    while not stop.is_set():
        out.append((time.monotonic(), me.memory_info().rss))
        stop.wait(0.25)


def _occupy(duration: float) -> tuple[float, float, int]:
    start = time.time()
    time.sleep(duration)
    return start, time.time(), os.getpid()


def _utilisation(start: np.ndarray, end: np.ndarray, slots: int,
                 worker: np.ndarray | None = None) -> tuple[float, float, float]:
    """Busy share of ``slots`` while units still wait: (share, window s, ramp s).

    The window ends at the last unit's start. It begins when every slot has started a
    unit: with ``worker`` (the process of each unit, where slots are long-lived workers),
    when the last of them started its first unit; otherwise at the ``slots``-th start.
    The ramp is the time from the first start to the window's beginning.
    """
    order = np.sort(start)
    lo = order[min(slots, len(order)) - 1]
    workers = np.unique(worker) if worker is not None else ()
    if len(workers) >= slots:
        lo = max(lo, max(start[worker == w].min() for w in workers))
    hi = order[-1]
    busy = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None).sum()
    window = max(hi - lo, 1e-9)
    return float(busy / (slots * window)), float(window), float(lo - order[0])


class _Occupier:
    """The bare reference's GPU slot: an actor that sleeps on request."""

    def run(self, duration: float) -> tuple[float, float, int]:
        return _occupy(duration)


def bare_reference(kind: str, durations: list[float], gpus: int) -> tuple[float, np.ndarray]:
    """The same durations as bare Ray work, no store, no driver logic: (wall s, spans).

    ``actors``: ``gpus`` one-GPU actors fed by ``ray.util.ActorPool.map_unordered``, what a
    user would write for a pool of GPU slots. ``tasks``: one-GPU tasks, each in a
    single-use worker (Ray's own default for a function declared with GPUs).
    """
    import ray
    from ray.util import ActorPool

    t = time.time()
    if kind == "actors":
        actors = [ray.remote(num_gpus=1, num_cpus=1)(_Occupier).remote() for _ in range(gpus)]
        spans = list(ActorPool(actors).map_unordered(lambda a, d: a.run.remote(d), durations))
        wall = time.time() - t
        for actor in actors:
            ray.kill(actor)
    else:
        fresh = ray.remote(num_gpus=1, num_cpus=1)(_occupy)
        spans = ray.get([fresh.remote(d) for d in durations])
        wall = time.time() - t
    return wall, np.array(spans)


def _gaps_ms(start: np.ndarray, end: np.ndarray, worker: np.ndarray) -> tuple[float, float]:
    """Median and mean idle time of a slot worker between two consecutive units, in ms."""
    gaps = []
    for w in np.unique(worker):
        mine = np.argsort(start[worker == w])
        s, e = start[worker == w][mine], end[worker == w][mine]
        gaps.append(s[1:] - e[:-1])
    gaps = np.concatenate(gaps) if gaps else np.array([np.nan])
    return float(np.median(gaps) * 1e3), float(np.mean(gaps) * 1e3)


def simulate_cluster(n_units: int, gpus: int, workdir: str, median: float = 0.5,
                     seed: int = 0, bare: str = "actors") -> dict:
    """Run ``n_units`` sleeping one-GPU units on a Ray node that advertises ``gpus`` GPUs,
    beside the ``bare`` reference (``actors``, ``tasks`` or ``none``)."""
    import ray

    from theorydl.spine.sweep.executor import execute_units, init_loopback

    rng = np.random.default_rng(seed)
    durations = np.round(rng.lognormal(np.log(median), 0.6, n_units), 4).tolist()
    init_loopback(num_cpus=gpus + 2, num_gpus=gpus, logging_level="WARNING")
    try:
        bare_wall, bare_util, bare_ramp = float("nan"), float("nan"), float("nan")
        bare_gaps = (float("nan"), float("nan"))
        if bare != "none":
            bare_wall, spans = bare_reference(bare, durations, gpus)
            bare_util, _, bare_ramp = _utilisation(spans[:, 0], spans[:, 1], gpus,
                                                   spans[:, 2] if bare == "actors" else None)
            if bare == "actors":
                bare_gaps = _gaps_ms(spans[:, 0], spans[:, 1], spans[:, 2])
        exp = SleepExperiment(num_gpus=1)
        cfg = SleepConfig(durations=durations)
        units = exp.units(exp.trials(cfg), cfg)
        store = Store(f"{workdir}/cluster")
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_rss_sampler, args=(stop, samples), daemon=True)
        sampler.start()
        wall0, cpu0 = time.time(), time.process_time()
        execute_units(exp, cfg, units, store, {}, RayConfig(), progress="off")
        wall1 = time.time()
        cpu = time.process_time() - cpu0
        stop.set()
        sampler.join()
    finally:
        ray.shutdown()
    table = store.read(EXPERIMENT, columns=["started_at", "ended_at", "pid"])
    start = pc_seconds(table["started_at"])
    end = pc_seconds(table["ended_at"])
    pids = table["pid"].to_numpy()
    utilisation, window, ramp = _utilisation(start, end, gpus, pids)
    gaps = _gaps_ms(start, end, pids)
    rss = np.array([r for _, r in samples]) / 2 ** 20
    return {
        "units": n_units, "gpus": gpus, "work_s": float(np.sum(durations)),
        "ideal_s": float(np.sum(durations)) / gpus, "wall_s": wall1 - wall0,
        "utilisation": utilisation, "window_s": window, "first_start_s": start.min() - wall0,
        "ramp_s": ramp, "workers": len(np.unique(pids)),
        "bare": bare, "bare_wall_s": bare_wall, "bare_utilisation": bare_util,
        "bare_ramp_s": bare_ramp, "gaps_ms": gaps, "bare_gaps_ms": bare_gaps,
        "tail_s": wall1 - float(end.max()), "driver_cpu_ms": cpu / n_units * 1e3,
        "rss_mib": (float(rss[0]), float(rss.max()), float(rss[-1])) if len(rss) else (0, 0, 0),
        # RSS at each tenth of the run: flat, or growing with the units done?
        "rss_tenths_mib": [float(rss[min(len(rss) - 1, k * len(rss) // 10)])
                           for k in range(11)] if len(rss) else [],
    }


def pc_seconds(column) -> np.ndarray:
    """A timestamp column as float seconds since the epoch."""
    return column.cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6


# --- main ---------------------------------------------------------------------------------

def _lookup_part(size: dict, s3: bool, work: str) -> dict:
    """Plan against a store of many small files: local, on S3, then both compacted."""
    out: dict = {}
    t = time.perf_counter()
    specs = _sweep_specs(size["trials"])
    spec_s = time.perf_counter() - t
    build_store(f"{work}/lookup", specs, size["files"])
    store = Store(f"{work}/lookup")
    lookup, todo = time_lookup(store, specs)
    out["lookup_s"], out["specs_s"] = lookup, spec_s
    print(f"lookup: {size['trials']} trials in {size['files']} files: plan {lookup:.3f} s "
          f"({todo} to run); building the specs {spec_s:.3f} s")
    if s3:
        server = CountingS3()
        try:
            server.upload(f"{work}/lookup")
            remote = Store(server.url)
            before = server.requests()
            remote_s, _ = time_lookup(remote, specs, repeat=1)
            out["s3_lookup_s"] = remote_s
            out["s3_requests"] = server.requests() - before
            print(f"lookup on S3 (moto): {remote_s:.3f} s, {out['s3_requests']} requests")
            if hasattr(remote, "compact"):
                remote.compact(EXPERIMENT)
                before = server.requests()
                remote_s, _ = time_lookup(remote, specs, repeat=1)
                out["s3_compacted_lookup_s"] = remote_s
                out["s3_compacted_requests"] = server.requests() - before
                print(f"lookup on S3 after compaction: {remote_s:.3f} s, "
                      f"{out['s3_compacted_requests']} requests")
        finally:
            server.close()
    if hasattr(store, "compact"):
        t = time.perf_counter()
        store.compact(EXPERIMENT)
        out["compact_s"] = time.perf_counter() - t
        out["compacted_lookup_s"], todo_after = time_lookup(store, specs)
        assert todo_after == todo, (todo_after, todo)
        print(f"lookup after compaction ({len(store.files(EXPERIMENT))} files, compaction "
              f"{out['compact_s']:.2f} s): plan {out['compacted_lookup_s']:.3f} s")
    return out


def _driver_part(size: dict, work: str) -> dict:
    """Per-unit cost of execute_units against bare Ray tasks."""
    import ray

    out: dict = {}
    ours, bare, ours_cpu, bare_cpu = time_overhead(size["units"], work)
    ray.shutdown()
    out["unit_ms"], out["bare_ms"] = ours * 1e3, bare * 1e3
    out["unit_cpu_ms"], out["bare_cpu_ms"] = ours_cpu * 1e3, bare_cpu * 1e3
    print(f"driver: {size['units']} one-trial units, execute_units {ours * 1e3:.2f} ms "
          f"per unit, bare Ray tasks {bare * 1e3:.2f} ms: {ours / bare:.1f}x; driver CPU "
          f"{ours_cpu * 1e3:.2f} against {bare_cpu * 1e3:.2f} ms per unit")
    return out


def _cluster_part(size: dict, work: str) -> dict:
    """Slot use, tail and driver memory on a simulated GPU cluster, beside bare Ray."""
    sim = simulate_cluster(size["cluster_units"], size["gpus"], work, size["median"],
                           bare=size["bare"])
    bare = f"bare Ray {sim['bare']}"
    print(f"cluster: {sim['units']} units on {sim['gpus']} simulated GPUs, "
          f"{sim['work_s']:.0f} s of work ({sim['ideal_s']:.1f} s ideal):\n"
          f"  wall {sim['wall_s']:.1f} s ({bare} {sim['bare_wall_s']:.1f} s), of which "
          f"{sim['first_start_s']:.1f} s to the first unit's start and {sim['ramp_s']:.1f} s "
          f"until all {sim['workers']} slot workers ran one ({bare} {sim['bare_ramp_s']:.1f} s)\n"
          f"  slots busy while work remains, once all ran one: "
          f"{100 * sim['utilisation']:.1f} % of {sim['window_s']:.1f} s ({bare} "
          f"{100 * sim['bare_utilisation']:.1f} %); a slot worker's idle time between two "
          f"units, median/mean {sim['gaps_ms'][0]:.1f}/{sim['gaps_ms'][1]:.1f} ms ({bare} "
          f"{sim['bare_gaps_ms'][0]:.1f}/{sim['bare_gaps_ms'][1]:.1f} ms)\n"
          f"  tail (last unit's end to return) {sim['tail_s']:.2f} s; driver CPU "
          f"{sim['driver_cpu_ms']:.2f} ms per unit; driver RSS start/peak/end "
          f"{sim['rss_mib'][0]:.0f}/{sim['rss_mib'][1]:.0f}/{sim['rss_mib'][2]:.0f} MiB; "
          f"at each tenth of the run "
          f"{' '.join(f'{r:.0f}' for r in sim['rss_tenths_mib'])} MiB")
    return sim


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no S3 (the test)")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 lookup")
    parser.add_argument("--trials", type=int)
    parser.add_argument("--files", type=int)
    parser.add_argument("--units", type=int)
    parser.add_argument("--gpus", type=int)
    parser.add_argument("--cluster-units", type=int)
    parser.add_argument("--median", type=float, help="median unit duration, seconds (0.5)")
    parser.add_argument("--bare", choices=["actors", "tasks", "none"], default="actors",
                        help="the cluster's bare-Ray reference: a pool of one-GPU actors "
                             "(default), single-use one-GPU tasks, or none")
    parser.add_argument("--parts", default="lookup,driver,cluster",
                        help="which measurements to run, comma-separated")
    args = parser.parse_args(argv)
    if __name__ != "spine":
        # Ray workers import the benchmark's experiment by name, as they would a real one
        # (pickling the class by value would cost every task its unpickling).
        import importlib

        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "benchmarks"), *filter(None, [os.environ.get("PYTHONPATH")])])
        sys.path.insert(0, str(REPO / "benchmarks"))
        return importlib.import_module("spine").main(argv)
    size = ({"trials": 1000, "files": 20, "units": 20, "gpus": 2, "cluster_units": 16,
             "median": 0.05}
            if args.smoke else
            {"trials": 10_000, "files": 200, "units": 300, "gpus": 16, "cluster_units": 1000,
             "median": 0.5}
            if args.quick else
            {"trials": 100_000, "files": 2000, "units": 1000, "gpus": 64,
             "cluster_units": 10_000, "median": 0.5})
    size["bare"] = args.bare
    for key in size:
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    s3 = not (args.smoke or args.no_s3)
    parts = set(args.parts.split(","))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    out: dict = {}
    work = tempfile.mkdtemp(prefix="spinebench-")
    try:
        if "lookup" in parts:
            out.update(_lookup_part(size, s3, work))
        if "driver" in parts:
            out.update(_driver_part(size, work))
        if "cluster" in parts:
            out["cluster"] = _cluster_part(size, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
