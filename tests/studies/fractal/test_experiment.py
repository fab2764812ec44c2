"""The fractal study end to end on the test profile, and its params checks."""

from __future__ import annotations

import pytest
import torch

from theorydl.spine.config import ConfigError
from theorydl.studies.fractal.experiment import Fractal
from theorydl.studies.fractal.nets import (
    cifar_cnn,
    fractal_data,
    init_fractal_stack,
    layerwise_init,
    train_layerwise,
)


@pytest.mark.parametrize("sections, needle", [
    ({"fractal": {"train": {"steps": 3}}}, "steps"),
    ({"fractal": {"fractal": "vicsek", "dim": 3}}, "2-D only"),
    ({"fractal": {"gradient": {"curves": [0, 0]}}}, "repeated"),
    ({"fractal": {"train": {"layer_steps": 3}}}, "layer_steps"),
    ({"fractal": {"train": {"methods": ["layerwise", "layerwise"]}}}, "repeated"),
    ({"fractal": {"train": {"methods": ["greedy"]}}}, "methods"),
])
def test_bad_params_are_named(study_params, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        study_params(**sections)


def test_fractal_test_profile_end_to_end(study_params, run_study):
    cfg, metrics = run_study(Fractal(), study_params())
    assert metrics["construction"]["errors"] == 0
    assert set(metrics["curves"]) == {"pdeg0", "pdeg10"}
    assert metrics["curves"]["pdeg10"]["analytic"] == [0.5, 0.5, 0.5, 1.0]
    assert set(metrics["train"]["curves"]) == {"pdeg0", "pdeg10"}
    assert 0 <= metrics["train"]["curves"]["pdeg0"]["accuracy"] <= 1
    assert metrics["train"]["depth_width"]["deepest"] == 2
    lw = metrics["train"]["curves"]["pdeg0"]["layerwise"]
    assert len(lw["per_layer"]) == 2 and lw["per_layer"][-1] == lw["accuracy"]
    assert set(metrics["train"]["depth_width"]["layerwise"]) == {"t1_k4", "t2_k4"}
    claims = metrics["claims"]
    assert claims["construction_exact"]["verdict"] == "reproduced"
    assert claims["fig5_uniform"]["verdict"] == "not checkable at this scale"
    assert claims["cifar_depth_helps"]["verdict"] == "not checkable at this scale"
    assert "cifar" not in metrics  # never downloaded in a test
    assert open(cfg.paths.curve_plot).readline().strip() == "pdeg,j,analytic,empirical"
    assert open(cfg.paths.accuracy_plot).readline().strip() == \
        "pdeg,accuracy,published,layerwise"


def test_layerwise_trials_leave_end_to_end_ids_alone(study_params):
    cfg = study_params().fractal
    only_e2e = cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"methods": ["end_to_end"]})})
    specs, e2e = Fractal().trials(cfg), Fractal().trials(only_e2e)
    assert {s.id for s in e2e} < {s.id for s in specs}
    assert all("method" not in s.config for s in e2e)  # the ids of the e2e-only runs
    lw = [s for s in specs if s.config.get("method") == "layerwise"]
    # one run per (curve, width), at its deepest depth: it holds the shallower ones
    assert sorted((s.config["pdeg"], s.config["depth"]) for s in lw) == [(0, 2), (10, 2)]
    assert all(s.config["steps"] == cfg.train.layer_steps for s in lw)


def _tiny_layerwise(seeds, depth=3):
    c = {"fractal": "cantor", "dim": 2, "levels": 3, "negatives": "original", "pdeg": 0,
         "m": 200, "data_seed": 0}
    x, y, _, _ = (torch.as_tensor(a) for a in fractal_data(c))
    snapshots = []
    for stack in train_layerwise(x, y, 4, depth, seeds, lr=0.01, epochs=3, batch_size=50):
        snapshots.append((stack, {n: t.detach().clone() for n, t in
                                  [*zip(stack.names, stack.tensors), *stack.constants.items()]}))
    return snapshots


def test_layerwise_keeps_earlier_layers_frozen():
    seeds = [0, 1]
    steps = _tiny_layerwise(seeds)
    inits = [layerwise_init(2, 4, 3, s) for s in seeds]
    for l, (stack, after) in enumerate(steps):
        assert set(stack.constants) == {f"frozen.{j}.{p}" for j in range(l)
                                        for p in ("weight", "bias")}
        assert set(stack.names) == {"block.weight", "block.bias", "head.weight", "head.bias"}
        start = torch.stack([m[l][0][0] for m in inits]).float()  # the block trained
        assert not torch.allclose(after["block.weight"].transpose(1, 2), start)
        for j in range(l):  # every earlier block: as it left its own step, bit for bit
            trained = steps[j][1]
            assert torch.equal(after[f"frozen.{j}.weight"], trained["block.weight"])
            assert torch.equal(after[f"frozen.{j}.bias"], trained["block.bias"])
    for stack, at_yield in steps:  # later layers' training did not touch earlier stacks
        for n, t in zip(stack.names, stack.tensors):
            assert torch.equal(t, at_yield[n])


def test_layerwise_stacked_equals_alone():
    stacked, alone = _tiny_layerwise([0, 1, 2]), _tiny_layerwise([1])
    for (_, many), (_, one) in zip(stacked, alone):
        assert many.keys() == one.keys()
        for name in many:
            torch.testing.assert_close(many[name][1], one[name][0], rtol=1e-5, atol=1e-6)


def test_init_is_the_authors():
    stack = init_fractal_stack([2, 50, 1], [0, 1])
    w, b = stack.weights[0].detach(), stack.biases[0].detach()
    assert w.shape == (2, 2, 50) and float(b.min()) == float(b.max()) == pytest.approx(0.1)
    assert float(w.abs().max()) <= 2 / 2**0.5 + 1e-6  # truncated at two std, std 1/sqrt(2)
    assert not bool((w[0] == w[1]).all())  # seeds differ


def test_cifar_cnn_shape():
    import torch

    net = cifar_cnn(4, 8)
    assert net(torch.zeros(3, 3, 32, 32)).shape == (3, 10)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net) == 2
