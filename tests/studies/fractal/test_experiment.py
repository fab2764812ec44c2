"""The fractal study end to end on the test profile, and its params checks."""

from __future__ import annotations

import pytest

from theorydl.spine.config import ConfigError
from theorydl.studies.fractal.experiment import Fractal
from theorydl.studies.fractal.nets import cifar_cnn, init_fractal_stack


@pytest.mark.parametrize("sections, needle", [
    ({"fractal": {"train": {"steps": 3}}}, "steps"),
    ({"fractal": {"fractal": "vicsek", "dim": 3}}, "2-D only"),
    ({"fractal": {"gradient": {"curves": [0, 0]}}}, "repeated"),
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
    claims = metrics["claims"]
    assert claims["construction_exact"]["verdict"] == "reproduced"
    assert claims["fig5_uniform"]["verdict"] == "not checkable at this scale"
    assert claims["cifar_depth_helps"]["verdict"] == "not checkable at this scale"
    assert "cifar" not in metrics  # never downloaded in a test
    assert open(cfg.paths.curve_plot).readline().strip() == "pdeg,j,analytic,empirical"


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
