"""The gating experiment: params errors naming the key, the choice of lr and alpha on
validation, and the test profile end to end (the models' maths is tested in
test_galu.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from theorydl.spine.config import ConfigError
from theorydl.studies.gating.analysis import generalise_choice, memorise_table
from theorydl.studies.gating.experiment import Gating, generalise_arrays


@pytest.mark.parametrize("sections, needle", [
    ({"gating": {"memorise": {"ratios": [0.3]}}}, "gating.memorise"),
    ({"gating": {"memorise": {"networks": ["tanh"]}}}, "gating.memorise.networks"),
    ({"gating": {"generalise": {"lrs": [0.0]}}}, "gating.generalise.lrs"),
    ({"gating": {"generalise": {"widhts": [3]}}}, "widhts"),
])
def test_bad_params_are_named(study_params, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        study_params(**sections)


def test_lr_and_alpha_are_chosen_on_validation_never_test():
    rows = [  # the candidate with the best validation error has the worse test error
        {"lr": 0.1, "alpha": 1.0, "validation_error": 0.10, "test_error": 0.30},
        {"lr": 0.01, "alpha": 1.0, "validation_error": 0.20, "test_error": 0.05},
        {"lr": 0.1, "alpha": 10.0, "validation_error": 0.15, "test_error": 0.01},
    ]
    df = pd.DataFrame([{"study": "generalise", "kind": "final", "status": "ok",
                        "network": "galu", "k": 8, "train_error": 0.0, **r} for r in rows])
    best = generalise_choice(df)
    assert len(best) == 1
    assert (best.lr[0], best.alpha[0], best.test_error[0]) == (0.1, 1.0, 0.30)


def test_memorisation_loss_is_a_fraction_of_the_targets_mean_square():
    # Two runs of one (network, kd/m): MSEs 0.4 and 0.9 on targets of mean square 0.5
    # and 1.5 leave fractions 0.8 and 0.6; the raw MSE is kept beside them.
    df = pd.DataFrame([{"study": "memorise", "kind": "final", "status": "ok",
                        "network": "galu_ls", "ratio": 0.5, "train_loss": loss,
                        "target_mean_square": ms} for loss, ms in ((0.4, 0.5), (0.9, 1.5))])
    row = memorise_table(df).iloc[0]
    assert row.loss == pytest.approx(0.7)
    assert row.mse == pytest.approx(0.65)
    assert row.n == 2


def test_gating_test_profile_end_to_end(study_params, run_study):
    cfg, metrics = run_study(Gating(), study_params())
    assert set(metrics["memorise"]) == {"galu_ls", "galu", "relu", "linear"}
    # Closed form: at kd/m = 1 nearly interpolates (a gate open on fewer than d of the
    # 32 points costs rank), well below kd/m = 1/2.
    ls = metrics["memorise"]["galu_ls"]
    assert ls["kd_m_100"] < 0.05 < ls["kd_m_050"]
    assert set(metrics["memorise_mse"]["galu_ls"]) == set(ls)
    assert set(metrics["generalise"]) == {"relu", "galu"}
    assert metrics["generalise"]["galu"]["k8"]["alpha"] == 1.0
    claims = json.loads(open(cfg.paths.claims).read())
    assert claims["mnist_k96_relu"]["verdict"] == "not checkable at this scale"
    arrays = generalise_arrays(cfg)  # PCA: whitened on the training set
    x = np.concatenate([arrays["x_fit"], arrays["x_val"]])
    np.testing.assert_allclose(x.std(0), 1.0, rtol=1e-3)
    assert x.shape[1] == 8
