"""The stacked-experiment base: grouping by shape, sizing by memory, cost order, rows."""

from __future__ import annotations

import pytest
from pydantic import Field

from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import StackedExperiment, StackResources, log_spaced


class ToyConfig(StackResources):
    widths: list[int] = Field(default_factory=lambda: [2, 8])
    lrs: list[float] = Field(default_factory=lambda: [0.1, 0.2])
    seeds: int = 3
    fail_width: int | None = None


class Toy(StackedExperiment):
    name = "toy_stacked"
    version = 1
    section = ToyConfig
    per_model_keys = ("lr",)

    def trials(self, cfg):
        return [TrialSpec(self.name, self.version, {"width": w, "lr": lr}, seed=s,
                          swept=("width", "lr"))
                for w in cfg.widths for lr in cfg.lrs for s in range(cfg.seeds)]

    def model_bytes(self, trial, cfg):
        return trial.config["width"] * 2**20  # a width-8 model takes 8 MiB

    def shared_bytes(self, trial, cfg):
        return 2**20

    def stack_cost(self, trial, cfg):
        return trial.config["width"]

    def stack_label(self, trial):
        return f"w{trial.config['width']}"

    def run_stack(self, trials, cfg, device):
        if trials[0].config["width"] == cfg.fail_width:
            raise RuntimeError("broken stack")
        # The model with lr 0.2 and seed 2 "diverges".
        return [("diverged" if (t.config["lr"] == 0.2 and t.seed == 2) else "ok",
                 [{"width": t.config["width"], "lr": t.config["lr"]}]) for t in trials]

    def analyze(self, table, cfg, params):
        return {}


def test_stacks_group_by_shape_fit_the_budget_and_run_costliest_first():
    exp, cfg = Toy(), ToyConfig(stack_memory_mb=33, gpus_per_stack=0.5)
    units = exp.units(exp.trials(cfg), cfg)
    # Width 8: (33 - 1) MiB / 8 MiB = 4 models a stack, 6 trials (lrs share a stack): 4 + 2.
    # Width 2: 16 models fit, all 6 in one stack.
    assert [len(u.trials) for u in units] == [4, 2, 6]
    assert [u.label for u in units] == ["w8-0", "w8-4", "w2-0"]
    assert all(u.num_gpus == 0.5 and u.num_cpus == 1 for u in units)
    # A CPU stack asks for no GPU share: it would only wait for GPU slots.
    cpu = ToyConfig(stack_memory_mb=33, gpus_per_stack=0.5, device="cpu")
    assert all(u.num_gpus == 0 for u in exp.units(exp.trials(cpu), cpu))
    for u in units:
        assert len({t.config["width"] for t in u.trials}) == 1
    assert {t.config["lr"] for t in units[-1].trials} == {0.1, 0.2}


def test_a_broken_stack_fails_its_trials_only_and_divergence_is_per_model():
    exp, cfg = Toy(), ToyConfig(fail_width=8, device="cpu")
    results = [r for u in exp.units(exp.trials(cfg), cfg) for r in exp.run_unit(u, cfg)]
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    assert by_status == {"failed": 6, "ok": 5, "diverged": 1}
    failed = [r for r in results if r.status == "failed"]
    assert all("broken stack" in r.error for r in failed)
    assert all(r.device == "cpu" for r in results if r.status != "failed")


@pytest.mark.parametrize("epochs, count", [(10, 11), (1500, 40), (8000, 270), (5, 2)])
def test_log_spaced_epochs_are_distinct_sorted_and_span_the_run(epochs, count):
    chosen = log_spaced(epochs, count)
    assert len(chosen) == len(set(chosen)) == count
    assert chosen == sorted(chosen) and chosen[0] == 0 and chosen[-1] == epochs


def test_worker_device_never_falls_back_to_cpu_on_a_granted_gpu(monkeypatch):
    import torch

    from theorydl.spine import stacked

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(stacked, "_ray_gpu_ids", lambda: [3])  # Ray gave this task GPU 3
    for name in ("auto", "cuda"):
        with pytest.raises(RuntimeError, match="Ray gave this unit GPU 3 but torch .* cannot use CUDA"):
            stacked.worker_device(name)
    assert stacked.worker_device("cpu") == torch.device("cpu")  # asked for: no surprise
    monkeypatch.setattr(stacked, "_ray_gpu_ids", lambda: [])  # a CPU-only task
    assert stacked.worker_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert stacked.worker_device("auto") == torch.device("cpu")  # no GPU granted: CPU
    monkeypatch.setattr(stacked, "_ray_gpu_ids", lambda: [0])
    assert stacked.worker_device("auto") == torch.device("cuda")


def test_a_unit_without_usable_cuda_is_stored_failed_with_the_reason(monkeypatch):
    import torch

    from theorydl.spine import stacked

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(stacked, "_ray_gpu_ids", lambda: [0])
    exp, cfg = Toy(), ToyConfig()
    unit = exp.units(exp.trials(cfg), cfg)[0]
    results = exp.run_unit(unit, cfg)
    assert {r.status for r in results} == {"failed"}
    assert all("cannot use CUDA" in r.error for r in results)
